// Small text helpers shared by the relay/config units (not part of the contract).
#pragma once

#include <cctype>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::config {

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

/// Escapes bytes that would garble a diagnostic (controls, NUL, non-ASCII) as \xNN.
inline std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

/// A logical line of main.cf/master.cf: physical lines joined as Postfix's readlline() does.
struct logical_line {
  std::string text;
  int line = 0;  // first physical line, 1-based
  bool has_nul = false;
};

/// Splits `text` into logical lines. A whitespace-led block with nothing to continue is reported
/// through `orphan` (Postfix warns "logical line must not start with whitespace" and skips it).
template <typename Orphan>
std::vector<logical_line> logical_lines(std::string_view text, Orphan&& orphan) {
  std::vector<logical_line> out;
  logical_line cur;
  bool have = false;
  bool orphan_block = false;
  int lineno = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view phys =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++lineno;
    std::size_t first = 0;
    while (first < phys.size() && std::isspace(static_cast<unsigned char>(phys[first]))) ++first;
    if (first == phys.size() || phys[first] == '#') continue;  // blank or comment
    bool continuation = first > 0;
    if (continuation) {
      if (have) {
        cur.text.append(phys);
      } else if (!orphan_block) {
        orphan_block = true;
        orphan(lineno, phys);
      }
      continue;
    }
    orphan_block = false;
    if (have) out.push_back(std::move(cur));
    cur = logical_line{std::string(phys), lineno, false};
    have = true;
  }
  if (have) out.push_back(std::move(cur));
  for (auto& l : out) {
    if (auto z = l.text.find('\0'); z != std::string::npos) {
      l.has_nul = true;
      l.text.resize(z);  // Postfix reads C strings: text after a NUL is lost
    }
  }
  return out;
}

bool parameters_is_raw(std::string_view name);

}  // namespace relaylab::config
