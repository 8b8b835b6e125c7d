#include "relay/policy/address.hpp"

#include "relay/policy/policy.hpp"
#include "relay/policy/text.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <string>

namespace relaylab::policy {
namespace detail {

std::optional<std::array<unsigned char, 16>> parse_ip(std::string_view text, int& family) {
  if (text.size() > 63 || text.empty()) return std::nullopt;
  std::string s(text);
  std::array<unsigned char, 16> b{};
  if (s.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, s.c_str(), b.data()) != 1) return std::nullopt;
    family = AF_INET6;
  } else {
    if (inet_pton(AF_INET, s.c_str(), b.data()) != 1) return std::nullopt;
    family = AF_INET;
  }
  return b;
}

bool valid_ipv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    int v = 0;
    while (i < s.size() && is_digit(s[i]) && i - start < 3) v = v * 10 + (s[i++] - '0');
    if (i == start || v > 255 || (i < s.size() && is_digit(s[i]))) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
  return parts == 4;
}

bool valid_ipv6(std::string_view s) {
  int family = 0;
  return s.find(':') != std::string_view::npos && parse_ip(s, family) && family == AF_INET6;
}

bool valid_mailhost_addr(std::string_view s) {
  if (s.size() > 5 && iequals(s.substr(0, 5), "ipv6:")) return valid_ipv6(s.substr(5));
  return valid_ipv4(s);
}

bool valid_mailhost_literal(std::string_view s) {
  return s.size() > 2 && s.front() == '[' && s.back() == ']' &&
         valid_mailhost_addr(s.substr(1, s.size() - 2));
}

std::string_view truncate_dot(std::string_view s) {
  if (s.size() > 1 && s.back() == '.' && s[s.size() - 2] != '.') s.remove_suffix(1);
  return s;
}

bool is_own_address(const std::vector<own_address>& own, std::string_view addr) {
  int family = 0;
  auto a = parse_ip(addr, family);
  if (!a) return false;
  for (const auto& o : own) {
    if (o[0] == family &&
        std::equal(a->begin(), a->begin() + (family == AF_INET ? 4 : 16), o.begin() + 1)) {
      return true;
    }
  }
  return false;
}

}  // namespace detail

using namespace detail;

bool valid_hostaddr(std::string_view addr) {
  if (addr.find(':') != std::string_view::npos) return valid_ipv6(addr);
  return valid_ipv4(addr);
}

}  // namespace relaylab::policy
