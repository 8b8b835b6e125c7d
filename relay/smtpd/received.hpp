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

 private:
  void finish_line(std::string& message_id);
  std::string line_;  // current logical header (with folded continuations)
  bool in_body_ = false;
  bool overflow_ = false;
  bool found_ = false;
  bool at_line_start_ = true;
};

}  // namespace relaylab::smtpd
