// Address arithmetic for Fn::Cidr and address assignment: the n-th address of a block.
#pragma once

#include "harness/sim/address.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace relaylab::cfn {

inline int address_bits(const sim::ip_address& a) { return a.v6 ? 128 : 32; }

/// `a` with every bit below `prefix` cleared.
inline sim::ip_address network_of(sim::ip_address a, int prefix) {
  const int bits = address_bits(a);
  for (int b = prefix; b < bits; ++b)
    a.bytes[b / 8] &= static_cast<std::uint8_t>(~(0x80 >> (b % 8)));
  return a;
}

/// `a` + (value << shift); nullopt when the sum leaves the address space.
inline std::optional<sim::ip_address> add_shifted(sim::ip_address a, std::uint64_t value,
                                                  int shift) {
  const int nbytes = address_bits(a) / 8;
  for (int bit = 0; bit < 64 && (value >> bit) != 0; ++bit) {
    if (((value >> bit) & 1) == 0) continue;
    const int pos = shift + bit;  // from the least significant bit
    if (pos >= nbytes * 8) return std::nullopt;
    unsigned carry = 1u << (pos % 8);
    for (int k = nbytes - 1 - pos / 8; k >= 0 && carry; --k) {
      const unsigned s = a.bytes[static_cast<std::size_t>(k)] + carry;
      a.bytes[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(s & 0xff);
      carry = s >> 8;
    }
    if (carry) return std::nullopt;
  }
  return a;
}

/// Number of addresses in a block, saturated at 2^63.
inline std::uint64_t block_size(const sim::cidr& c) {
  const int host = address_bits(c.base) - c.prefix;
  return host >= 63 ? (std::uint64_t{1} << 63) : (std::uint64_t{1} << host);
}

}  // namespace relaylab::cfn
