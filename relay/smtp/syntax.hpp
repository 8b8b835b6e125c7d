// SMTP command-line syntax as Postfix's smtpd reads it: tokens, RFC 3461 xtext, host names, IP
// address literals, RFC 5321 paths (extract_addr(), in rfc822_address.hpp) and Cyrus's base64 for
// AUTH responses. Pure functions on strings, shared by the server session's command handlers (and
// the fuzzers).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::smtp::syntax {

bool is_space(char c);

char to_upper(char c);

bool iequals(std::string_view a, std::string_view b);

bool istarts(std::string_view s, std::string_view p);

bool all_digits(std::string_view s);

std::string upper(std::string_view s);

// Postfix's smtpd_token(): white space separates tokens, except inside <...> (which nests, and
// may hold "...") and "..."; a backslash escapes the next byte; "FROM:" and "TO:" end a token
// at their colon. Each token is the line's bytes as they are. (The caller cuts at a NUL.)
std::vector<std::string_view> tokenize(std::string_view line);

/// The token holds a <...> or "..." that the line ended inside (SMTPD_TOK_ERROR).
bool token_unterminated(std::string_view tok);

// RFC 3461 xtext: printable ASCII except '+' and '=', with "+HH" escapes.
std::optional<std::string> xtext_decode(std::string_view s);

bool valid_hostname(std::string_view s);
/// RFC 3629 UTF-8 (no over-long forms, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

bool valid_ipv4(std::string_view s);

bool valid_ipv6(std::string_view s);

// extract_addr() without the policy's check (see rfc822_address.hpp): the one address in `tok`
// in internal form, nullopt when there are two or more, or none and !allow_empty.
std::optional<std::string> parse_address(std::string_view tok, bool allow_empty);

// An AUTH response decoded as Postfix has libsasl2's sasl_decode64() decode it; `error` gets
// libsasl2's text for the failure Postfix replies with: "bad protocol / cancel" (a character
// or "=" out of place), "another step is needed in authentication" (a partial quantum at the
// end), "generic failure" (a leading CR). relay/smtpd's tests check it against libsasl2.
std::optional<std::string> sasl_decode(std::string_view s, std::string& error);

}  // namespace relaylab::smtp::syntax
