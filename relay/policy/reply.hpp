// The reject-reply rules of Postfix's smtpd_check_reject() and the enhanced status code helpers
// that access tables use (dsn_split, smtpd_dsn_fix). evaluator::reject() is the one caller that
// turns a decision into a reply; these functions hold its text rules.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace relaylab::policy::detail {

/// Postfix dsn_valid(): the length of a leading "d.ddd.ddd" with class 2, 4 or 5, else 0.
std::size_t dsn_length(std::string_view s);

/// Postfix dsn_split(): an optional leading enhanced status code in table text.
struct dsn_text {
  std::string dsn;
  std::string text;
};
dsn_text dsn_split(std::string_view def, std::string_view text);

/// Postfix smtpd_dsn_fix(): address status codes that do not fit the rejected thing
/// ("Sender address" or "Recipient address").
std::string dsn_fix(std::string dsn, std::string_view reply_class);

/// "CODE DSN TEXT" with a 4xx/5xx code and a valid enhanced status code (else "450 4.7.1
/// Service unavailable"), control characters made spaces. Not cut to 510 octets: Postfix
/// 3.7.11's smtpd_check_reject() calls vstring_truncate(error_text, 510), which moves the
/// write position without terminating the string, so the whole text is sent and logged (a VRFY
/// of a 600-character address gets all of it back; testdata/dialogues/reply-long.dlg). The
/// length stays bounded by its parts: addresses by line_length_limit, texts by the tables.
std::string format_reject(int code, std::string_view dsn, std::string_view text);

/// soft_bounce turns 5xx into 4xx; the enhanced code's class follows the reply code.
void finish_reject(std::string& reply, bool soft_bounce);

}  // namespace relaylab::policy::detail
