// Text helpers shared by the policy modules: ASCII classes, case folding, trimming, and the
// tokenizer for restriction and pattern lists.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace relaylab::policy::detail {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// Postfix's lowercase() (ASCII only).
std::string lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
std::string_view trim(std::string_view s);
bool all_digits(std::string_view s);

/// Splits a restriction or pattern list on ", \t\r\n", keeping "{...}" groups (inline tables)
/// in one token, as Postfix 3.x's mystrtokq() does.
std::vector<std::string> split_restrictions(std::string_view s);

inline std::string bracket(std::string_view name) { return "<" + std::string(name) + ">"; }

}  // namespace relaylab::policy::detail
