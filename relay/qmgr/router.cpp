#include "relay/qmgr/router.hpp"

#include "relay/config/config.hpp"

#include <algorithm>
#include <charconv>

namespace relaylab::qmgr {

namespace {

std::string_view domain_of(std::string_view address) {
  const auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

bool parse_port(std::string_view text, std::uint16_t& port) {
  if (text.empty()) return false;
  unsigned value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || p != text.data() + text.size() || value == 0 || value > 65535)
    return false;
  port = static_cast<std::uint16_t>(value);
  return true;
}

}  // namespace

bool parse_nexthop(std::string_view text, delivery::next_hop& hop) {
  hop.port = 25;
  hop.no_mx = false;
  if (text.empty()) return false;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    hop.host = std::string(text.substr(1, close - 1));
    hop.no_mx = true;
    const auto rest = text.substr(close + 1);
    if (rest.empty()) return true;
    return rest.front() == ':' && parse_port(rest.substr(1), hop.port);
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    hop.host = std::string(text);
    return true;
  }
  hop.host = std::string(text.substr(0, colon));
  return !hop.host.empty() && parse_port(text.substr(colon + 1), hop.port);
}

std::string hop_key(const delivery::next_hop& hop) {
  std::string key = hop.transport + ":";
  if (hop.transport == "error" || hop.transport == "discard") return key + hop.text;
  if (hop.no_mx) {
    key += "[" + hop.host + "]";
  } else {
    key += hop.host;
  }
  if (hop.port != 25) key += ":" + std::to_string(hop.port);
  return key;
}

router::router(routing_options options) : options_(std::move(options)) {
  for (auto& d : options_.mydestination) d = maps::fold_case(d);
}

bool router::is_local_domain(std::string_view domain) const {
  const auto folded = maps::fold_case(domain);
  return std::find(options_.mydestination.begin(), options_.mydestination.end(), folded) !=
         options_.mydestination.end();
}

std::optional<std::string> router::lookup_transport(std::string_view address,
                                                    std::string_view domain) const {
  if (options_.transport_maps.empty()) return std::nullopt;
  std::vector<std::string> keys;
  keys.push_back(maps::fold_case(address));
  if (!domain.empty()) {
    std::string d = maps::fold_case(domain);
    keys.push_back(d);
    for (auto dot = d.find('.'); dot != std::string::npos; dot = d.find('.', dot + 1))
      keys.push_back(d.substr(dot));
  }
  keys.emplace_back("*");
  for (const auto& key : keys) {
    for (const auto& t : options_.transport_maps) {
      if (auto v = t->find(key)) return v;
    }
  }
  return std::nullopt;
}

delivery::next_hop router::apply(std::string_view value, delivery::next_hop base) const {
  // Trim surrounding blanks of a table value.
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  std::string_view transport = value, nexthop;
  if (!value.empty() && value.front() == '[') {
    transport = {};
    nexthop = value;
  } else if (const auto colon = value.find(':'); colon != std::string_view::npos) {
    transport = value.substr(0, colon);
    nexthop = value.substr(colon + 1);
  }
  delivery::next_hop hop = base;
  if (!transport.empty()) hop.transport = std::string(transport);
  if (hop.transport == "error" || hop.transport == "discard") {
    hop.text = std::string(nexthop);
    hop.host.clear();
    hop.port = 25;
    hop.no_mx = false;
    return hop;
  }
  if (!nexthop.empty()) {
    hop.text = std::string(nexthop);
    if (!parse_nexthop(nexthop, hop)) {
      delivery::next_hop bad;
      bad.transport = "error";
      bad.text = "bad next hop \"" + std::string(nexthop) + "\" in transport table";
      return bad;
    }
  }
  return hop;
}

delivery::next_hop router::resolve(std::string_view recipient) const {
  const auto domain = domain_of(recipient);
  const bool local = domain.empty() || is_local_domain(domain);
  // The defaults of the address class, as the transport_maps result overrides them.
  delivery::next_hop base;
  base.transport = "smtp";
  if (local) {
    base.host = options_.myhostname;
    base = apply(options_.local_transport, base);
    if (base.host.empty()) base.host = options_.myhostname;
  } else {
    base.host = std::string(domain);
    if (!options_.relayhost.empty()) {
      base.text = options_.relayhost;
      if (!parse_nexthop(options_.relayhost, base)) {
        delivery::next_hop bad;
        bad.transport = "error";
        bad.text = "bad relayhost \"" + options_.relayhost + "\"";
        return bad;
      }
    }
    base = apply(options_.default_transport, base);
  }
  if (auto v = lookup_transport(recipient, domain)) return apply(*v, base);
  return base;
}

std::optional<routing_options> routing_from_config(const config::parameters& p,
                                                   std::string& error) {
  routing_options o;
  for (const auto& spec : p.get_list("transport_maps")) {
    auto t = maps::open(spec, error);
    if (!t) {
      error = "transport_maps: " + error;
      return std::nullopt;
    }
    o.transport_maps.push_back(std::move(t));
  }
  o.relayhost = p.get("relayhost");
  o.default_transport = p.get("default_transport");
  o.local_transport = p.get("local_transport");
  o.mydestination = p.get_list("mydestination");
  o.myhostname = p.get("myhostname");
  return o;
}

}  // namespace relaylab::qmgr
