// Where each recipient goes: Postfix trivial-rewrite's resolve step for the queue manager.
//
// Order (Postfix 3.7, transport(5), trivial-rewrite(8)):
//   1. transport_maps: the full address "user@domain", then "domain", then each parent as
//      ".parent.domain" ... ".tld" (parent_domain_matches_transport_maps does not list
//      transport_maps by default), then "*". A result "transport:nexthop" with an empty part
//      keeps that part's default.
//   2. Otherwise the address class: a domain in mydestination (or no domain) is local and goes
//      to local_transport (default "local:$myhostname"); anything else goes to
//      default_transport (default "smtp") with relayhost as next hop, or the recipient domain
//      when relayhost is empty.
//
// Next-hop syntax (relayhost, the nexthop part of a transport): "[host]:port" and "[host]"
// (no MX lookup), "host:port" and "host" (MX lookup). Transport values: "smtp:[h]:p",
// "smtp:h", "relay:h", "local:", "local", "error:text", "discard:text", ":[h]" (default
// transport, given next hop); a value starting with "[" is read as a next hop for the default
// transport (relaylab leniency).
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include "relay/delivery/agent.hpp"
#include "relay/maps/maps.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::config {
class parameters;
}

namespace relaylab::qmgr {

struct routing_options {
  /// Opened transport_maps tables, searched in order.
  std::vector<std::shared_ptr<const maps::table>> transport_maps;
  std::string relayhost;                   // "" = deliver to the recipient domain
  std::string default_transport = "smtp";  // "transport[:nexthop]"
  std::string local_transport = "local:localhost";
  std::vector<std::string> mydestination;  // domains, lower case
  std::string myhostname = "localhost";
};

/// Reads routing_options from main.cf parameters (opens transport_maps). Errors: a table that
/// cannot be opened (`error` names it); nullopt is returned.
std::optional<routing_options> routing_from_config(const config::parameters& p, std::string& error);

/// Parses a next hop ("[host]:port", "host:port", "[host]", "host") into `hop` (host, port,
/// no_mx). Errors: empty host, bad port, unbalanced "[": returns false.
bool parse_nexthop(std::string_view text, delivery::next_hop& hop);

class router {
 public:
  explicit router(routing_options options);
  /// The next hop for `recipient`. Never fails: a malformed table value resolves to the
  /// "error" transport with a text that says why (Postfix defers such mail with a
  /// configuration error; relaylab bounces nothing silently: see qmgr's handling of "error").
  delivery::next_hop resolve(std::string_view recipient) const;
  /// True when `domain` is in mydestination (case-insensitive).
  bool is_local_domain(std::string_view domain) const;
  const routing_options& options() const noexcept { return options_; }

 private:
  std::optional<std::string> lookup_transport(std::string_view address,
                                              std::string_view domain) const;
  /// Applies a "transport:nexthop" value over the defaults (`base`).
  delivery::next_hop apply(std::string_view value, delivery::next_hop base) const;
  routing_options options_;
};

/// "smtp:[127.0.0.1]:2525" style key of a next hop (destination queue name, for limits).
std::string hop_key(const delivery::next_hop& hop);

}  // namespace relaylab::qmgr
