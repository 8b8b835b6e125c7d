// Numeric IPv4/IPv6 addresses and CIDR blocks for the network model.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace relaylab::sim {

struct ip_address {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  // v4 uses the first four
  bool operator==(const ip_address&) const = default;
  auto operator<=>(const ip_address&) const = default;
  std::string to_string() const;
};

/// Parses "192.0.2.1" or "2001:db8::1" (no brackets). nullopt when not numeric.
std::optional<ip_address> parse_address(std::string_view text);

struct cidr {
  ip_address base;
  int prefix = 0;  // bits
  bool contains(const ip_address& a) const noexcept;
  std::string to_string() const;
};

/// Parses "10.0.0.0/16", "::/0" or a bare address (a /32 or /128). nullopt when malformed.
std::optional<cidr> parse_cidr(std::string_view text);

}  // namespace relaylab::sim
