// Secondary private IPv4 addresses of a network interface (an AWS::EC2::NetworkInterface or an
// instance's NetworkInterfaces entry): PrivateIpAddresses entries that are not Primary, and
// SecondaryPrivateIpAddressCount more assigned as AWS would, after the primary address, in the
// order of the names (skipping AWS's reserved addresses and the ones taken). They become the
// host's <secondary-ipv4> addresses; an EIPAssociation with one of them as PrivateIpAddress
// gives it its public address (builder_addresses.cpp).
#include "harness/cfn/builder.hpp"

namespace relaylab::cfn::detail {

namespace {

constexpr std::uint64_t secondary_max = 49;  // AWS's most per interface (50 with the primary)

}  // namespace

void builder::read_private_addresses(host_info& h, const resource& src,
                                     const std::optional<node>& list,
                                     const std::optional<node>& count,
                                     std::optional<node>& primary) {
  if (list && !list->is_sequence()) {
    error(list->where, src.logical, "PrivateIpAddresses: expected a list");
  } else if (list) {
    std::optional<node> listed_primary;
    for (const auto& e : list->items) {
      const node* a = e.find("PrivateIpAddress");
      const node* p = e.find("Primary");
      if (!a || !a->is_scalar()) {
        error(e.where, src.logical, "PrivateIpAddresses: each entry needs PrivateIpAddress");
        continue;
      }
      const bool is_primary =
          p && ev_.boolean(*p, src.logical + ": PrivateIpAddresses: Primary").value_or(false);
      if (is_primary && listed_primary) {
        error(a->where, src.logical,
              "PrivateIpAddresses: a second Primary address (" + a->value + ", and " +
                  listed_primary->value + " at " + listed_primary->where.to_string() + ")");
      } else if (is_primary) {
        listed_primary = *a;
      } else {
        h.secondary.push_back({a->value, "", "", a->where});
      }
    }
    if (listed_primary) {
      if (primary && primary->is_scalar() && primary->value != listed_primary->value) {
        error(listed_primary->where, src.logical,
              "PrivateIpAddresses: the Primary address " + listed_primary->value +
                  " is not PrivateIpAddress " + primary->value);
      } else if (!primary) {
        primary = listed_primary;
      }
    } else if (!h.secondary.empty() && !primary) {
      error(list->where, src.logical,
            "PrivateIpAddresses: one entry must be Primary: true (AWS needs the primary "
            "address)");
    }
  }
  if (count) {
    std::uint64_t n = 0;
    const auto& v = count->value;
    const bool number = count->is_scalar() && !v.empty() && v.size() < 4 &&
                        v.find_first_not_of("0123456789") == std::string::npos;
    if (number) n = std::stoull(v);
    if (!number || n + h.secondary.size() > secondary_max) {
      error(count->where, src.logical,
            "SecondaryPrivateIpAddressCount: expected 0 to " + std::to_string(secondary_max) +
                " addresses with the listed ones, got '" + v + "'");
    } else {
      h.secondary_count = n;
    }
  }
}

void builder::assign_secondary(host_info& h, const resource& r, const sim::cidr& block,
                               std::set<std::string>& taken, std::uint64_t& next, bool given) {
  const auto net = network_of(block.base, block.prefix);
  if (given) {
    for (auto& x : h.secondary) {
      const auto a = sim::parse_address(x.given);
      const bool reserved = a && (network_of(*a, address_bits(*a) - 2) == net ||
                                  *a == *add_shifted(net, block_size(block) - 1, 0));
      if (!a || a->v6 || !block.contains(*a) || reserved) {
        error(x.at, r.logical,
              "secondary address " + x.given + " is not an address AWS can assign in subnet " +
                  block.to_string() +
                  (reserved ? " (AWS reserves the first four and the last)" : ""));
      } else if (!taken.insert(a->to_string()).second) {
        error(x.at, r.logical, "secondary address " + x.given + " is already taken");
      } else {
        x.address = a->to_string();
      }
    }
    return;
  }
  for (std::uint64_t i = 0; i < h.secondary_count; ++i) {
    bool placed = false;
    for (; next + 1 < block_size(block) && next < 65536 && !placed; ++next) {
      const auto a = add_shifted(net, next, 0);
      if (a && taken.insert(a->to_string()).second) {
        h.secondary.push_back({"", a->to_string(), "", r.where});
        placed = true;
      }
    }
    if (!placed) {
      error(r.where, r.logical,
            "subnet " + block.to_string() + " has no free address left for a secondary address");
      return;
    }
  }
  h.secondary_count = 0;
}

}  // namespace relaylab::cfn::detail
