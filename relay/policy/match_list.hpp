// Postfix match lists (namadr_list, domain_list, string_list): mynetworks, relay_domains,
// mydestination, the virtual domain lists, smtpd_authorized_xclient_hosts. Patterns are host
// names (parent-domain matching per parent_domain_matches_subdomains), networks, lookup
// tables, each optionally negated with '!'; the first pattern that matches decides.
#pragma once

#include "relay/maps/maps.hpp"

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::policy::detail {

struct match_list {
  struct pattern {
    bool negate = false;
    std::string text;  // lower-cased hostname pattern
    const maps::table* table = nullptr;
    bool is_net = false;
    int family = 0;
    std::array<unsigned char, 16> net{};
    int prefix = 0;
  };
  std::vector<pattern> patterns;
  bool parent_style = false;
};

/// "1.2.3.0/24", "1.2.3.4", "[2001:db8::]/32", "[::1]", "2001:db8::/32" into `p` (is_net set).
bool parse_net(std::string_view item, match_list::pattern& p);

/// namadr_list_match() when addr is non-empty, domain/string_list_match() otherwise.
bool list_match(const match_list& list, std::string_view name, std::string_view addr);

}  // namespace relaylab::policy::detail
