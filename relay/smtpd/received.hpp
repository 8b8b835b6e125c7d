// What smtpd adds to and learns from a message on its way into the queue: the Received:
// header Postfix's smtpd prepends, and the Message-ID that cleanup logs.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace relaylab::smtpd {

struct received_header_fields {
  std::string helo;         // HELO/EHLO argument; the client name is used when empty
  std::string client_name;  // "unknown" when unverified
  std::string client_addr;  // numeric; IPv6 gets Postfix's "IPv6:" prefix
  std::string myhostname;
  std::string mail_name = "Postfix";
  std::string protocol = "ESMTP";  // SMTP, ESMTP, ESMTPA ...
  std::string queue_id;
  /// smtpd_tls_received_header: lines after the "from" line, "\n\t"-separated without the
  /// first tab, e.g. "(using TLSv1.3 with cipher ... bits)\n\t(No client certificate requested)".
  std::string tls_note;
  std::string recipient;  // only with exactly one recipient (Postfix adds "for <...>")
  std::chrono::system_clock::time_point time;
  bool utc = false;  // date in UTC instead of the local zone (tests, simulation)
};

/// The header as Postfix's smtpd writes it, folded, with CRLF line ends:
///   Received: from HELO (NAME [ADDR])\r\n
///   \tby MYHOSTNAME (Postfix) with ESMTPA id QUEUEID\r\n
///   \tfor <rcpt>; Sat, 28 Nov 2026 04:54:05 +0000 (UTC)\r\n
std::string format_received_header(const received_header_fields& f);

/// RFC 5322 date as Postfix's mail_date() writes it: "Sat, 28 Nov 2026 04:54:05 +0000 (UTC)".
std::string format_mail_date(std::chrono::system_clock::time_point t, bool utc);

/// Finds the Message-ID header in the header section of a message fed in arbitrary chunks.
/// Bounded: header lines beyond `line_bytes_max` are skipped, not buffered.
class header_scanner {
 public:
  static constexpr std::size_t line_bytes_max = 4096;
  /// Feeds content bytes (CRLF lines). Sets `message_id` to the value found ("<...>"), once.
  void feed(std::string_view bytes, std::string& message_id);
  /// End of content: a last header line without a following line end still counts.
  void finish(std::string& message_id);
  void reset();
  /// Received: headers seen so far (cleanup's hop count, before smtpd's own Received:).
  std::size_t received_headers() const noexcept { return received_; }

 private:
  void finish_line(std::string& message_id);
  std::string line_;  // current logical header (with folded continuations)
  bool in_body_ = false;
  bool overflow_ = false;
  bool found_ = false;
  bool at_line_start_ = true;
  std::size_t received_ = 0;
};

/// Postfix cleanup's content normalisation, applied to the content as it streams in:
/// - a bare LF ends a line and is stored as CRLF (Postfix keeps lines as records);
/// - a stray CR (not followed by LF) becomes a space (cleanup_replace_stray_cr_lf = yes), so no
///   bare CR or LF is relayed on (outbound SMTP smuggling);
/// - a header (with its continuation lines) longer than header_size_limit loses the excess.
/// Output is appended to `out`; state carries across chunk boundaries.
class content_cleanup {
 public:
  content_cleanup(bool replace_stray_cr_lf, std::size_t header_size_limit)
      : replace_stray_(replace_stray_cr_lf), header_bytes_max_(header_size_limit) {}
  void feed(std::string_view bytes, std::string& out);
  /// End of content: a trailing stray CR is flushed.
  void finish(std::string& out);

 private:
  void emit(char c, std::string& out);
  // A run of bytes without CR or LF, as emit() of each in turn would (in one append).
  void emit_run(std::string_view run, std::string& out);
  void end_line(std::string& out);
  bool replace_stray_;
  std::size_t header_bytes_max_;
  bool pending_cr_ = false;
  bool in_body_ = false;
  bool at_line_start_ = true;
  bool line_empty_ = true;
  bool line_written_ = false;     // some byte of this physical line was kept
  std::size_t header_bytes_ = 0;  // bytes of the current logical header so far
};

}  // namespace relaylab::smtpd
