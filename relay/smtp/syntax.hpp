// SMTP command-line syntax as Postfix's smtpd reads it: tokens, RFC 3461 xtext, host names, IP
// address literals, RFC 5321 paths (extract_addr()) and Cyrus's base64 for AUTH responses.
// Pure functions on strings, shared by the server session's command handlers (and the fuzzers).
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

// Token rules of Postfix's smtpd_token(): whitespace separates, NUL ends a C string.
std::vector<std::string_view> tokenize(std::string_view line);

// RFC 3461 xtext: printable ASCII except '+' and '=', with "+HH" escapes.
std::optional<std::string> xtext_decode(std::string_view s);

bool valid_hostname(std::string_view s);
/// RFC 3629 UTF-8 (no over-long forms, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

bool valid_ipv4(std::string_view s);

bool valid_ipv6(std::string_view s);

// Address syntax as Postfix's extract_addr() accepts it: quoted strings and backslash escapes
// are fine, unquoted white space or control characters are not, nothing may follow '>'.
std::optional<std::string> parse_address(std::string_view tok, bool allow_empty);

// Cyrus sasl_decode64 as Postfix uses it: full quanta are checked first ("bad protocol /
// cancel"), a trailing partial quantum means "another step is needed in authentication".
std::optional<std::string> sasl_decode(std::string_view s, std::string& error);

}  // namespace relaylab::smtp::syntax
