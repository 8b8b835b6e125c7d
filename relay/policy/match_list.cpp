#include "relay/policy/match_list.hpp"

#include "relay/policy/address.hpp"
#include "relay/policy/text.hpp"

#include <sys/socket.h>

#include <optional>

namespace relaylab::policy::detail {
namespace {

bool match_net(const match_list::pattern& p, std::string_view addr) {
  int family = 0;
  auto a = parse_ip(addr, family);
  if (!a || family != p.family) return false;
  for (int bit = 0; bit < p.prefix; ++bit) {
    int mask = 0x80 >> (bit % 8);
    if ((p.net[bit / 8] & mask) != ((*a)[bit / 8] & mask)) return false;
  }
  return true;
}

// Postfix match_hostname(): exact name, or a parent domain (parent style: "example.com"
// matches "a.example.com"; otherwise only ".example.com" does).
bool match_hostname(const match_list& list, const match_list::pattern& p, std::string_view name) {
  std::string n = lower(name);
  if (p.table) {
    if (p.table->find(n)) return true;
    if (!p.table->fixed_string()) return false;
    for (std::size_t dot = n.find('.', 1); dot != std::string::npos; dot = n.find('.', dot + 1)) {
      if (p.table->find(list.parent_style ? n.substr(dot + 1) : n.substr(dot))) return true;
    }
    return false;
  }
  if (p.is_net) return false;
  if (n == p.text) return true;
  for (std::size_t dot = n.find('.', 1); dot != std::string::npos; dot = n.find('.', dot + 1)) {
    if (list.parent_style ? n.compare(dot + 1, std::string::npos, p.text) == 0
                          : (p.text[0] == '.' && n.compare(dot, std::string::npos, p.text) == 0)) {
      return true;
    }
  }
  return false;
}

bool match_hostaddr(const match_list::pattern& p, std::string_view addr) {
  if (addr.empty()) return false;
  if (p.table) return p.table->find(addr).has_value();
  if (p.is_net) return match_net(p, addr);
  return false;
}

}  // namespace

bool parse_net(std::string_view item, match_list::pattern& p) {
  std::string_view addr = item;
  std::optional<int> prefix;
  std::size_t slash = item.rfind('/');
  if (slash != std::string_view::npos) {
    addr = item.substr(0, slash);
    std::string_view len = item.substr(slash + 1);
    if (!all_digits(len) || len.size() > 3) return false;
    prefix = std::stoi(std::string(len));
  }
  if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') {
    addr = addr.substr(1, addr.size() - 2);
  }
  int family = 0;
  auto a = parse_ip(addr, family);
  if (!a) return false;
  int bits = family == AF_INET ? 32 : 128;
  if (prefix.value_or(bits) > bits) return false;
  p.family = family;
  p.net = *a;
  p.prefix = prefix.value_or(bits);
  p.is_net = true;
  return true;
}

bool list_match(const match_list& list, std::string_view name, std::string_view addr) {
  for (const auto& p : list.patterns) {
    bool m = (!name.empty() && match_hostname(list, p, name)) || match_hostaddr(p, addr);
    if (m) return !p.negate;
  }
  return false;
}

}  // namespace relaylab::policy::detail
