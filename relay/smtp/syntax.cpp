// SMTP command-line syntax (see syntax.hpp).
#include "relay/smtp/syntax.hpp"

#include <algorithm>
#include <cctype>
#include <string>

#include "relay/smtp/rfc822_address.hpp"

namespace relaylab::smtp::syntax {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
char to_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_upper(a[i]) != to_upper(b[i])) return false;
  return true;
}
bool istarts(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && iequals(s.substr(0, p.size()), p);
}
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
std::string upper(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = to_upper(c);
  return r;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  auto tail = [&](std::size_t k) { return k < n && (at(k) & 0xc0) == 0x80; };
  while (i < n) {
    const unsigned char c = at(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;  // over-long
      if (c == 0xed) hi = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;  // over-long
      if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
      return false;
    }
    if (i + 1 >= n || at(i + 1) < lo || at(i + 1) > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if (!tail(i + k)) return false;
    }
    i += len;
  }
  return true;
}

namespace {

// smtp_quoted(): from just after an opening '<' or '"' to just after its match. Inside <...>
// a "..." nests and so does another <...>; inside "..." nothing does; a backslash takes the next
// byte. `closed` is false when the line ends first (Postfix's SMTPD_TOK_ERROR).
std::size_t skip_quoted(std::string_view s, std::size_t i, char last, bool& closed) {
  std::string wanted(1, last);
  closed = false;
  while (i < s.size()) {
    const char c = s[i++];
    if (c == '\\') {
      if (i >= s.size()) break;
      ++i;
    } else if (c == wanted.back()) {
      wanted.pop_back();
      if (wanted.empty()) {
        closed = true;
        return i;
      }
    } else if (c == '"') {
      wanted += '"';
    } else if (c == '<' && wanted.back() == '>') {
      wanted += '>';
    }
  }
  return i;
}

// One token of smtp_next_token() starting at `b` (not white space); returns its end.
std::size_t token_end(std::string_view line, std::size_t b, bool& unterminated) {
  unterminated = false;
  std::size_t i = b;
  while (i < line.size() && !is_space(line[i])) {
    const char c = line[i++];
    bool closed = true;
    if (c == '<' || c == '"') {
      i = skip_quoted(line, i, c == '<' ? '>' : '"', closed);
      if (!closed) unterminated = true;
    } else if (c == ':') {
      // "MAIL FROM:<a>" is three tokens: the keyword ends after its colon.
      const auto t = line.substr(b, i - b);
      if (iequals(t, "FROM:") || iequals(t, "TO:")) break;
    } else if (c == '\\' && i < line.size()) {
      ++i;
    }
  }
  return i;
}

}  // namespace

std::vector<std::string_view> tokenize(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size()) break;
    bool unterminated = false;
    const std::size_t e = token_end(line, i, unterminated);
    out.push_back(line.substr(i, e - i));
    i = e;
  }
  return out;
}

bool token_unterminated(std::string_view tok) {
  bool unterminated = false;
  for (std::size_t i = 0; i < tok.size() && !unterminated;) i = token_end(tok, i, unterminated);
  return unterminated;
}

// RFC 3461 xtext: printable ASCII except '+' and '=', with "+HH" escapes.
std::optional<std::string> xtext_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c < 33 || c > 126 || c == '=') {
      return std::nullopt;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool valid_hostname(std::string_view s) {
  // Postfix's valid_hostname(): labels of letters, digits, '_' and inner '-', no empty label
  // (so no trailing dot), and not digits and dots only ("numeric hostname").
  if (s.empty() || s.size() > 255) return false;
  std::size_t label = 0;
  bool non_numeric = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool last = i + 1 == s.size();
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
      non_numeric = true;
      if (++label > 63) return false;
    } else if (c >= '0' && c <= '9') {
      if (++label > 63) return false;
    } else if (c == '.') {
      if (label == 0 || last) return false;
      label = 0;
    } else if (c == '-') {
      non_numeric = true;
      if (++label == 1 || last || s[i + 1] == '.') return false;
    } else {
      return false;
    }
  }
  return non_numeric;
}

// Postfix's valid_ipv4_hostaddr(): four dot-separated decimal octets of any length up to 255
// each (an octet written 0102 is valid; the resolver then reads it as octal), and a first octet
// of 0 only in 0.0.0.0.
bool valid_ipv4(std::string_view s) {
  int octets = 0;
  int value = 0;
  bool in_octet = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c >= '0' && c <= '9') {
      if (!in_octet) {
        in_octet = true;
        value = 0;
        ++octets;
      }
      value = value * 10 + (c - '0');
      if (value > 255) return false;
    } else if (c == '.') {
      if (!in_octet || i + 1 == s.size()) return false;
      if (octets == 1 && value == 0 && s.find_first_not_of("0.") != std::string_view::npos)
        return false;
      in_octet = false;
    } else {
      return false;
    }
  }
  return octets == 4;
}

bool valid_ipv6(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;
  int groups = 0, doubles = 0;
  std::size_t i = 0;
  if (s.substr(0, 2) == "::") {
    doubles = 1;
    i = 2;
  }
  while (i < s.size()) {
    std::size_t j = i;
    while (j < s.size() && std::isxdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j < s.size() && s[j] == '.') return valid_ipv4(s.substr(i)) && groups + 2 <= 8;
    if (j == i || j - i > 4) return false;
    ++groups;
    if (j == s.size()) break;
    if (s[j] != ':') return false;
    if (j + 1 < s.size() && s[j + 1] == ':') {
      if (++doubles > 1) return false;
      i = j + 2;
      if (i == s.size()) break;
    } else {
      i = j + 1;
      if (i == s.size()) return false;
    }
  }
  return doubles ? groups < 8 : groups == 8;
}

std::optional<std::string> parse_address(std::string_view tok, bool allow_empty) {
  auto x = rfc822::extract(tok);
  if (x.addresses > 1 || (x.address.empty() && !allow_empty)) return std::nullopt;
  return std::move(x.address);
}

// libsasl2 2.1.28's sasl_decode64() as Postfix's xsasl_cyrus_server_first()/_next() call it:
// a leading CR fails outright; quanta are read in order and need two base64 characters, then a
// character or "=" twice, "=" only as "xx==" or "xxx=" and nothing after it; a partial quantum
// at the end is SASL_CONTINUE unless a "=" came before. Bits left over beside the padding are
// ignored, so "QR==" reads as "A".
std::optional<std::string> sasl_decode(std::string_view s, std::string& error) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (!s.empty() && s.front() == '\r') {
    error = "generic failure";  // SASL_FAIL
    return std::nullopt;
  }
  std::string out;
  out.reserve(s.size() / 4 * 3);
  bool saw_equal = false;
  std::size_t i = 0;
  for (; s.size() - i > 3; i += 4) {
    const char c2 = s[i + 2], c3 = s[i + 3];
    const int v0 = value(s[i]), v1 = value(s[i + 1]), v2 = value(c2), v3 = value(c3);
    if (saw_equal || v0 < 0 || v1 < 0 || (c2 != '=' && v2 < 0) || (c3 != '=' && v3 < 0) ||
        (c2 == '=' && c3 != '=')) {
      error = "bad protocol / cancel";  // SASL_BADPROT
      return std::nullopt;
    }
    saw_equal = c2 == '=' || c3 == '=';
    out += static_cast<char>((v0 << 2) | (v1 >> 4));
    if (c2 == '=') continue;
    out += static_cast<char>(((v1 << 4) & 0xf0) | (v2 >> 2));
    if (c3 == '=') continue;
    out += static_cast<char>(((v2 << 6) & 0xc0) | v3);
  }
  if (i != s.size()) {
    error = saw_equal ? "bad protocol / cancel" : "another step is needed in authentication";
    return std::nullopt;
  }
  return out;
}

}  // namespace relaylab::smtp::syntax
