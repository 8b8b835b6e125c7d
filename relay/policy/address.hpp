// Address syntax as Postfix's smtpd sees it: IP literals, valid_mailhost_addr(), and the host's
// own addresses (inet_interfaces, proxy_interfaces). The public part (valid_hostaddr) is in
// policy.hpp; valid_hostname() is smtp::syntax::valid_hostname.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <vector>

namespace relaylab::policy::detail {

/// IPv4 or IPv6 text to network-order bytes; `family` is set to AF_INET or AF_INET6.
std::optional<std::array<unsigned char, 16>> parse_ip(std::string_view text, int& family);

/// Postfix valid_ipv4_hostaddr() / valid_ipv6_hostaddr().
bool valid_ipv4(std::string_view s);
bool valid_ipv6(std::string_view s);

/// Postfix valid_mailhost_addr(): IPv4, or "IPv6:" followed by an IPv6 address.
bool valid_mailhost_addr(std::string_view s);
/// "[" valid_mailhost_addr "]".
bool valid_mailhost_literal(std::string_view s);

/// Postfix dup_if_truncate(): drop one trailing dot, but not from "..".
std::string_view truncate_dot(std::string_view s);

/// The host's own addresses: a family byte, then the address (16 bytes, IPv4 in the first 4).
using own_address = std::array<unsigned char, 17>;
/// True when `addr` (an IPv4 or IPv6 text, no brackets) is one of `own`.
bool is_own_address(const std::vector<own_address>& own, std::string_view addr);

}  // namespace relaylab::policy::detail
