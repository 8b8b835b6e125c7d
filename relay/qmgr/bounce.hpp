// Non-delivery notifications as Postfix's bounce daemon writes them (Postfix 3.7, observed:
// testdata/qmgr/postfix_bounce.eml): an RFC 3464 multipart/report with a text/plain part in
// Postfix's "This is the mail system at host ..." wording, a message/delivery-status part, and
// the returned message (message/rfc822), or only its headers (text/rfc822-headers) when the
// message is larger than bounce_size_limit. Pure functions, no I/O.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::qmgr {

using time_point = std::chrono::system_clock::time_point;

struct bounce_recipient {
  std::string address;
  std::string orcpt;   // "rfc822;user@example.com"; "" → "rfc822;" + address, as Postfix stores
  std::string dsn;     // "5.1.1", "4.4.1" (an expired deferral keeps its 4.x.x)
  std::string relay;   // agent's relay= value, "none" when there is none
  std::string reason;  // agent's parenthesised text
};

struct bounce_input {
  std::string queue_id;      // of the original message
  std::string new_queue_id;  // of the notification (Received:, Message-Id:)
  std::string sender;        // original sender: To: and X-Postfix-Sender:
  std::string myhostname;
  std::string mail_name = "Postfix";
  time_point arrival{};
  time_point now{};
  std::vector<bounce_recipient> recipients;
  std::string content;  // the original message (CRLF), as queued
  std::size_t bounce_size_limit_bytes = 50000;
};

/// The notification's content (CRLF line ends), ready for spool::incoming_message.
std::string compose_bounce(const bounce_input& in);

/// RFC 5322 date as Postfix writes it, in UTC: "Sat, 28 Nov 2026 05:44:02 +0000 (UTC)".
std::string rfc2822_date(time_point t);

/// Postfix line_wrap(): words packed into lines shorter than `width`, continuation lines
/// indented by `indent` spaces; words are never broken. Lines joined with "\r\n".
std::string wrap_text(std::string_view text, std::size_t width = 80, std::size_t indent = 4);

/// Splits an agent reason "host NAME[ADDR] said: REPLY (in reply to X command)" into the remote
/// MTA name and the reply text; false for reasons that are not a remote reply.
bool parse_remote_reply(std::string_view reason, std::string& mta, std::string& reply);

}  // namespace relaylab::qmgr
