// The address inside an SMTP path as Postfix's smtpd extracts it (extract_addr()): the text is
// read as an RFC 822 address list with Postfix's tokenizer and parser (tok822), so comments and
// white space between tokens are dropped, a display name before <route-addr> is allowed, two
// words side by side or a second <...> start a second address, and the address comes out in
// internal form (quotes and backslashes removed: "a b"@example.com is a b@example.com).
// Sans-IO and pure; relay/smtp's MAIL, RCPT and VRFY handlers use it through syntax.hpp.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace relaylab::smtp::rfc822 {

struct extraction {
  std::size_t addresses = 0;  // address forms at the top level
  std::size_t others = 0;     // anything else there: phrases, comments, commas, group names
  std::string address;        // the last address form, internal form ("" when there is none)
};

/// Postfix's extract_addr() on one SMTP command argument, before the policy's own checks:
/// <...> around the whole argument is removed, then a leading source route "@a,@b:", then the
/// rest is parsed. The caller decides: more than one address is a syntax error.
extraction extract(std::string_view argument);

/// True when `local` needs to be a quoted string on the wire (quote_822_local(): it is not a
/// dot-atom: empty, a leading, trailing or doubled '.', white space, control characters or
/// RFC 822 specials). 8-bit bytes are left alone, as with SMTPUTF8.
bool local_part_needs_quotes(std::string_view local);

/// The internal-form address as it goes on the wire in MAIL FROM/RCPT TO: the local part
/// (before the last '@') quoted when needed, with '"' and '\' escaped.
std::string externalize(std::string_view internal);

}  // namespace relaylab::smtp::rfc822
