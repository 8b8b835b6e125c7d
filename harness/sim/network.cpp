#include "harness/sim/connection.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace relaylab::sim {

namespace {

// A representative ephemeral port for stateless return-traffic checks (Linux's range starts
// here; AWS documents 1024-65535 for NACL return rules).
constexpr std::uint16_t ephemeral_port_probe = 32768;

link_spec combine(const link_spec& a, const link_spec& b) {
  link_spec out;
  out.latency = a.latency + b.latency;
  out.jitter = a.jitter + b.jitter;
  if (a.bandwidth_bps == 0) {
    out.bandwidth_bps = b.bandwidth_bps;
  } else if (b.bandwidth_bps == 0) {
    out.bandwidth_bps = a.bandwidth_bps;
  } else {
    out.bandwidth_bps = std::min(a.bandwidth_bps, b.bandwidth_bps);
  }
  out.loss = 1 - (1 - a.loss) * (1 - b.loss);
  return out;
}

bool port_in(std::uint16_t p, std::uint16_t from, std::uint16_t to) { return p >= from && p <= to; }

bool tcp_protocol(const std::string& proto) {
  return proto == "tcp" || proto == "all" || proto == "-1" || proto == "6";
}

}  // namespace

std::string_view to_string(verdict v) noexcept {
  switch (v) {
    case verdict::connected:
      return "connected";
    case verdict::unreachable:
      return "unreachable";
    case verdict::dropped:
      return "dropped";
    case verdict::refused:
      return "refused";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// network model

struct network::subnet_state {
  const subnet_spec* spec = nullptr;
  const vpc_spec* vpc = nullptr;
  cidr v4;
  std::optional<cidr> v6;
  const route_table_spec* routes = nullptr;
  const nacl_spec* nacl = nullptr;
};

struct network::vpc_state {
  const vpc_spec* spec = nullptr;
  std::map<std::string, subnet_state> subnets;
};

struct network::host_state {
  const host_spec* spec = nullptr;
  const subnet_state* subnet = nullptr;  // null: on the internet
  std::optional<ip_address> v4, public_v4, v6;
  std::vector<std::pair<ip_address, std::optional<ip_address>>> secondary_v4;  // private, public
  bool up = true;
  std::uint64_t incarnation = 0;
  std::map<std::uint16_t, accept_handler> listeners;
};

network::network(world& w, network_spec spec, std::vector<network_error>& errors,
                 network_limits limits)
    : world_(w), spec_(std::move(spec)), limits_(limits) {
  auto err = [&](std::string s) { errors.push_back({std::move(s)}); };
  std::map<std::string, const subnet_state*> subnets;
  std::map<std::string, const nacl_spec*> nacls;
  for (const auto& v : spec_.vpcs) {
    auto vs = std::make_unique<vpc_state>();
    vs->spec = &v;
    if (!parse_cidr(v.cidr)) err("vpc " + v.name + ": bad cidr '" + v.cidr + "'");
    for (const auto& sg : v.security_groups) sgs_[sg.name] = sg;
    for (const auto& n : v.nacls) nacls[n.name] = &n;
    for (const auto& s : v.subnets) {
      subnet_state st;
      st.spec = &s;
      st.vpc = &v;
      if (auto c = parse_cidr(s.cidr)) {
        st.v4 = *c;
      } else {
        err("subnet " + s.name + ": bad cidr '" + s.cidr + "'");
      }
      if (!s.cidr6.empty()) {
        st.v6 = parse_cidr(s.cidr6);
        if (!st.v6) err("subnet " + s.name + ": bad cidr6 '" + s.cidr6 + "'");
      }
      for (const auto& rt : v.route_tables) {
        if (rt.name == s.route_table) st.routes = &rt;
      }
      if (!st.routes) err("subnet " + s.name + ": unknown route table '" + s.route_table + "'");
      if (!s.nacl.empty()) {
        for (const auto& n : v.nacls) {
          if (n.name == s.nacl) st.nacl = &n;
        }
        if (!st.nacl) err("subnet " + s.name + ": unknown network ACL '" + s.nacl + "'");
      }
      auto [it, fresh] = vs->subnets.emplace(s.name, st);
      if (!fresh) err("subnet " + s.name + ": defined twice");
      subnets[s.name] = &it->second;
    }
    for (const auto& rt : v.route_tables) {
      for (const auto& r : rt.routes) {
        if (!parse_cidr(r.destination)) {
          err("route table " + rt.name + ": bad destination '" + r.destination + "'");
        }
        if (r.target == route_target::internet_gateway && r.target_name != v.internet_gateway) {
          err("route table " + rt.name + ": unknown internet gateway '" + r.target_name + "'");
        }
        if (r.target == route_target::nat_gateway &&
            std::none_of(v.nat_gateways.begin(), v.nat_gateways.end(),
                         [&](const auto& n) { return n.name == r.target_name; })) {
          err("route table " + rt.name + ": unknown NAT gateway '" + r.target_name + "'");
        }
        if (r.target == route_target::egress_only_internet_gateway) {
          if (r.target_name.empty() || r.target_name != v.egress_only_internet_gateway) {
            err("route table " + rt.name + ": unknown egress-only internet gateway '" +
                r.target_name + "'");
          }
          // AWS: "egress-only internet gateways support IPv6 traffic only".
          if (const auto c = parse_cidr(r.destination); c && !c->base.v6) {
            err("route table " + rt.name + ": egress-only internet gateway " + r.target_name +
                " carries IPv6 only, not " + r.destination);
          }
        }
      }
    }
    vpcs_.push_back(std::move(vs));
  }
  for (const auto& h : spec_.hosts) {
    auto hs = std::make_unique<host_state>();
    hs->spec = &h;
    if (!h.subnet.empty()) {
      auto it = subnets.find(h.subnet);
      if (it == subnets.end()) {
        err("host " + h.name + ": unknown subnet '" + h.subnet + "'");
      } else {
        hs->subnet = it->second;
      }
    }
    auto addr = [&](const std::string& text, const char* what, bool want_v6) {
      std::optional<ip_address> a;
      if (text.empty()) return a;
      a = parse_address(text);
      if (!a || a->v6 != want_v6) {
        err("host " + h.name + ": bad " + what + " '" + text + "'");
        a.reset();
      }
      return a;
    };
    hs->v4 = addr(h.ipv4, "ipv4", false);
    hs->public_v4 = addr(h.public_ipv4, "public ipv4", false);
    hs->v6 = addr(h.ipv6, "ipv6", true);
    if (hs->subnet && hs->v4 && !hs->subnet->v4.contains(*hs->v4)) {
      err("host " + h.name + ": " + h.ipv4 + " is not in subnet " + h.subnet + " (" +
          hs->subnet->spec->cidr + ")");
    }
    for (const auto& a : h.secondary_ipv4) {
      if (!hs->subnet) {
        err("host " + h.name + ": secondary ipv4 " + a.address +
            ": only a host in a subnet has secondary addresses");
        continue;
      }
      auto priv = addr(a.address, "secondary ipv4", false);
      auto pub = addr(a.public_ipv4, "secondary public ipv4", false);
      if (!priv) continue;
      if (!hs->subnet->v4.contains(*priv)) {
        err("host " + h.name + ": secondary ipv4 " + a.address + " is not in subnet " + h.subnet +
            " (" + hs->subnet->spec->cidr + ")");
      }
      if (hs->v4 && *priv == *hs->v4) {
        err("host " + h.name + ": secondary ipv4 " + a.address + " is its primary address");
      }
      for (const auto& [other, _] : hs->secondary_v4) {
        if (other == *priv) err("host " + h.name + ": secondary ipv4 " + a.address + " twice");
      }
      hs->secondary_v4.emplace_back(*priv, pub);
    }
    if (hs->subnet && hs->v6 && (!hs->subnet->v6 || !hs->subnet->v6->contains(*hs->v6))) {
      err("host " + h.name + ": " + h.ipv6 + " is not in subnet " + h.subnet + "'s IPv6 block");
    }
    for (const auto& g : h.security_groups) {
      if (!sgs_.count(g)) err("host " + h.name + ": unknown security group '" + g + "'");
    }
    if (!hosts_.emplace(h.name, std::move(hs)).second) err("host " + h.name + ": defined twice");
  }
  // Who answers at an address: the first host by name that has it, as a scan of hosts_ in
  // order would find (addresses never change after construction), so a connect costs a lookup,
  // not a pass over every host.
  for (const auto& entry : hosts_) {
    const auto& h = entry.second;  // not a structured binding: clang 14 cannot capture one
    auto add = [&](const std::optional<ip_address>& a, bool via_public) {
      if (a) owners_.emplace(*a, address_owner{h.get(), via_public});
    };
    if (!h->subnet) {
      add(h->v4, true);
      add(h->v6, true);
    } else {
      add(h->public_v4, true);
      add(h->v6, true);  // VPC IPv6 addresses are global
      add(h->v4, false);
      for (const auto& [priv, pub] : h->secondary_v4) {
        add(priv, false);
        add(pub, true);
      }
    }
  }
}

network::~network() {
  for (auto* c : connections_) c->net = nullptr;
}

bool network::has_host(const std::string& name) const { return hosts_.count(name) != 0; }

const network::host_state* network::find_host(const std::string& name) const {
  auto it = hosts_.find(name);
  return it == hosts_.end() ? nullptr : it->second.get();
}

const network::host_state* network::owner_of(const ip_address& a, bool& via_public) const {
  const auto it = owners_.find(a);
  via_public = it != owners_.end() && it->second.via_public;
  return it == owners_.end() ? nullptr : it->second.host;
}

link_spec network::link_of(const host_state& h) const {
  return h.subnet ? h.subnet->spec->link : h.spec->link;
}

bool network::sg_allows(const host_state& h, bool ingress, std::uint16_t port,
                        const ip_address& peer, const host_state* peer_host, std::string& why,
                        std::vector<std::string>* hops) const {
  const char* dir = ingress ? "ingress" : "egress";
  auto allowed = [&](const std::string& group, const sg_rule& r, const std::string& peer_text) {
    if (hops) {
      const bool all_ports = r.port_from == 0 && r.port_to == 65535;
      hops->push_back("security group " + group + " " + dir + " " +
                      (r.protocol == "all"        ? std::string("all traffic")
                       : all_ports                ? "tcp all ports"
                       : r.port_from == r.port_to ? "tcp " + std::to_string(r.port_from)
                                                  : "tcp " + std::to_string(r.port_from) + "-" +
                                                        std::to_string(r.port_to)) +
                      (ingress ? " from " : " to ") + peer_text + ": allowed" +
                      (r.description.empty() ? "" : " (" + r.description + ")"));
    }
    return true;
  };
  if (h.spec->security_groups.empty()) {
    if (hops) hops->push_back(h.spec->name + " has no security groups: " + dir + " unfiltered");
    return true;
  }
  for (const auto& g : h.spec->security_groups) {
    auto it = sgs_.find(g);
    if (it == sgs_.end()) continue;
    for (const auto& r : ingress ? it->second.ingress : it->second.egress) {
      if (!tcp_protocol(r.protocol) || !port_in(port, r.port_from, r.port_to)) continue;
      if (!r.cidr.empty()) {
        if (auto c = parse_cidr(r.cidr); c && c->contains(peer)) return allowed(g, r, r.cidr);
      }
      if (!r.group.empty() && peer_host) {
        const auto& groups = peer_host->spec->security_groups;
        if (std::find(groups.begin(), groups.end(), r.group) != groups.end()) {
          return allowed(g, r, "members of " + r.group);
        }
      }
    }
  }
  why = "security groups of " + h.spec->name + " allow no " + (ingress ? "inbound" : "outbound") +
        " TCP " + std::to_string(port) + (ingress ? " from " : " to ") + peer.to_string();
  if (hops) {
    std::string names;
    for (const auto& g : h.spec->security_groups) names += (names.empty() ? "" : ", ") + g;
    why += " (" + names + ": no " + dir + " rule matches)";
  }
  return false;
}

bool network::nacl_allows(const subnet_state& s, bool inbound, std::uint16_t port,
                          const ip_address& peer, std::string& why,
                          std::vector<std::string>* hops) const {
  if (!s.nacl) return true;
  std::vector<const nacl_rule*> rules;
  for (const auto& r : inbound ? s.nacl->inbound : s.nacl->outbound) rules.push_back(&r);
  std::stable_sort(rules.begin(), rules.end(),
                   [](const nacl_rule* a, const nacl_rule* b) { return a->number < b->number; });
  for (const auto* r : rules) {
    if (!tcp_protocol(r->protocol) || !port_in(port, r->port_from, r->port_to)) continue;
    const auto c = parse_cidr(r->cidr);
    if (!c || !c->contains(peer)) continue;
    if (r->allow) {
      if (hops) {
        hops->push_back("network ACL " + s.nacl->name + " " + (inbound ? "inbound" : "outbound") +
                        " rule " + std::to_string(r->number) + " allows TCP " +
                        std::to_string(port) + (inbound ? " from " : " to ") + peer.to_string());
      }
      return true;
    }
    why = "network ACL " + s.nacl->name + " rule " + std::to_string(r->number) + " denies " +
          (inbound ? "inbound" : "outbound") + " TCP " + std::to_string(port) +
          (inbound ? " from " : " to ") + peer.to_string();
    return false;
  }
  why = "network ACL " + s.nacl->name + " has no rule allowing " +
        (inbound ? "inbound" : "outbound") + " TCP " + std::to_string(port) +
        (inbound ? " from " : " to ") + peer.to_string();
  return false;
}

path_decision network::decide(const std::string& source, const std::string& address,
                              std::uint16_t port, bool explain) const {
  path_decision d;
  std::vector<std::string>* hops = explain ? &d.hops : nullptr;
  const host_state* src = find_host(source);
  if (!src) {
    d.outcome = verdict::unreachable;
    d.reason = "unknown host " + source;
    return d;
  }
  const auto dst_ip = parse_address(address);
  if (!dst_ip) {
    d.outcome = verdict::unreachable;
    d.reason = "not a numeric address: " + address;
    return d;
  }
  const auto& src_ip = dst_ip->v6 ? src->v6 : src->v4;
  if (!src_ip) {
    d.outcome = verdict::unreachable;
    d.reason = source + " has no " + (dst_ip->v6 ? "IPv6" : "IPv4") + " address";
    return d;
  }
  d.source_address = src_ip->to_string();
  d.links.push_back(src->subnet ? src->subnet->spec->name : src->spec->name);
  d.path = link_of(*src);

  bool via_public = false;
  const host_state* dst = owner_of(*dst_ip, via_public);
  std::optional<ip_address> seen;  // the client address at the destination
  bool crosses_internet = false;

  if (!src->subnet) {
    crosses_internet = true;
    seen = src_ip;
    if (dst && dst->subnet && !via_public) dst = nullptr;  // private addresses are not routed
  } else {
    // Longest prefix match in the source subnet's route table.
    const route_spec* best = nullptr;
    int best_prefix = -1;
    for (const auto& r : src->subnet->routes->routes) {
      const auto c = parse_cidr(r.destination);
      if (c && c->contains(*dst_ip) && c->prefix > best_prefix) {
        best = &r;
        best_prefix = c->prefix;
      }
    }
    if (!best) {
      d.outcome = verdict::unreachable;
      d.reason = "no route to " + address + " in route table " + src->subnet->routes->name;
      return d;
    }
    std::string why;
    if (hops) {
      hops->push_back("route table " + src->subnet->routes->name + " of subnet " +
                      src->subnet->spec->name + ": " + best->destination + " → " +
                      (best->target == route_target::local       ? std::string("local")
                       : best->target == route_target::blackhole ? std::string("blackhole")
                       : best->target == route_target::egress_only_internet_gateway
                           ? "egress-only internet gateway " + best->target_name
                           : best->target_name));
    }
    switch (best->target) {
      case route_target::blackhole:
        d.outcome = verdict::dropped;
        d.reason = "blackhole route " + best->destination;
        return d;
      case route_target::local: {
        // A VPC host's IPv6 address is global and also its address inside the VPC.
        const bool own_v6 = dst && dst_ip->v6 && dst->subnet && dst->v6 && *dst->v6 == *dst_ip;
        if (dst &&
            ((via_public && !own_v6) || !dst->subnet || dst->subnet->vpc != src->subnet->vpc)) {
          dst = nullptr;
        }
        if (own_v6) via_public = false;  // private traffic: groups match on membership
        seen = src_ip;
        break;
      }
      case route_target::internet_gateway:
        crosses_internet = true;
        seen = dst_ip->v6 ? src->v6 : src->public_v4;
        if (!seen) {
          d.outcome = verdict::dropped;
          d.reason = source + " has no public IPv4 address (replies cannot return)";
          return d;
        }
        if (dst && !via_public) dst = nullptr;
        break;
      case route_target::egress_only_internet_gateway:
        // Out with the host's own IPv6 address (no NAT); the gateway lets the replies back.
        if (!dst_ip->v6) {
          d.outcome = verdict::dropped;
          d.reason = "egress-only internet gateway " + best->target_name +
                     " carries IPv6 only, not " + address;
          return d;
        }
        crosses_internet = true;
        seen = src->v6;
        if (dst && !via_public) dst = nullptr;
        break;
      case route_target::nat_gateway: {
        crosses_internet = true;
        const nat_gateway_spec* nat = nullptr;
        for (const auto& n : src->subnet->vpc->nat_gateways) {
          if (n.name == best->target_name) nat = &n;
        }
        seen = nat ? parse_address(nat->public_ip) : std::nullopt;
        if (!seen || dst_ip->v6) {
          d.outcome = verdict::dropped;
          d.reason = "NAT gateway " + best->target_name + " cannot forward to " + address;
          return d;
        }
        d.links.push_back(nat->subnet);
        if (dst && !via_public) dst = nullptr;
        break;
      }
    }
    if (!sg_allows(*src, false, port, *dst_ip, via_public ? nullptr : dst, why, hops)) {
      d.outcome = verdict::dropped;
      d.reason = why;
      return d;
    }
    const bool same_subnet = dst && dst->subnet == src->subnet && !via_public;
    if (!same_subnet &&
        (!nacl_allows(*src->subnet, false, port, *dst_ip, why, hops) ||
         !nacl_allows(*src->subnet, true, ephemeral_port_probe, *dst_ip, why, hops))) {
      d.outcome = verdict::dropped;
      d.reason = why;
      return d;
    }
  }
  if (crosses_internet) {
    if (hops) {
      hops->push_back("across the internet, the source seen as " +
                      (seen ? seen->to_string() : std::string("?")));
    }
    d.links.push_back("internet");
    d.path = combine(d.path, spec_.internet);
  }
  if (!dst) {
    d.outcome = verdict::dropped;
    d.reason = "no host answers at " + address;
    return d;
  }
  d.destination_host = dst->spec->name;
  d.seen_address = seen->to_string();
  d.links.push_back(dst->subnet ? dst->subnet->spec->name : dst->spec->name);
  d.path = combine(d.path, link_of(*dst));
  std::string why;
  if (dst->subnet && crosses_internet) {
    // In through the VPC's internet gateway; the reply must find its way back out.
    const route_spec* back_route = nullptr;
    int best_prefix = -1;
    for (const auto& r : dst->subnet->routes->routes) {
      const auto c = parse_cidr(r.destination);
      if (c && c->contains(*seen) && c->prefix > best_prefix) {
        best_prefix = c->prefix;
        back_route = &r;
      }
    }
    if (back_route && back_route->target == route_target::egress_only_internet_gateway) {
      // The reply would leave through the egress-only gateway, which passes only replies to
      // connections started inside: a connection from the internet never gets through.
      d.outcome = verdict::dropped;
      d.reason = "egress-only internet gateway " + back_route->target_name + " of VPC " +
                 dst->subnet->vpc->name + " lets no connection in from the internet (route table " +
                 dst->subnet->routes->name + " sends the reply to " + seen->to_string() +
                 " through it)";
      return d;
    }
    if (dst->subnet->vpc->internet_gateway.empty()) {
      d.outcome = verdict::dropped;
      d.reason = "VPC " + dst->subnet->vpc->name + " has no internet gateway";
      return d;
    }
    const bool back = back_route && back_route->target == route_target::internet_gateway;
    if (!back) {
      d.outcome = verdict::dropped;
      d.reason = "route table " + dst->subnet->routes->name + " has no route to " +
                 seen->to_string() + " through the internet gateway";
      return d;
    }
    if (hops) {
      hops->push_back("internet gateway " + dst->subnet->vpc->internet_gateway + " to " +
                      dst->spec->name + "; route table " + dst->subnet->routes->name +
                      " sends the reply back through it");
    }
  }
  if (dst->subnet && (crosses_internet || dst->subnet != src->subnet)) {
    if (!nacl_allows(*dst->subnet, true, port, *seen, why, hops) ||
        !nacl_allows(*dst->subnet, false, ephemeral_port_probe, *seen, why, hops)) {
      d.outcome = verdict::dropped;
      d.reason = why;
      return d;
    }
  }
  if (!sg_allows(*dst, true, port, *seen, crosses_internet ? nullptr : src, why, hops)) {
    d.outcome = verdict::dropped;
    d.reason = why;
    return d;
  }
  if (!src->up || !dst->up) {
    d.outcome = verdict::dropped;
    d.reason = (!dst->up ? dst->spec->name : source) + " is down";
    return d;
  }
  if (!path_open(d.links, source, dst->spec->name)) {
    d.outcome = verdict::dropped;
    d.reason = "the path from " + source + " to " + dst->spec->name + " is cut";
    return d;
  }
  if (!dst->listeners.count(port)) {
    d.outcome = verdict::refused;
    d.reason = "nothing listens on " + dst->spec->name + " port " + std::to_string(port);
    return d;
  }
  d.outcome = verdict::connected;
  return d;
}

bool network::path_open(const std::vector<std::string>& links, const std::string& a,
                        const std::string& b) const {
  for (const auto& l : links) {
    if (links_down_.count(l)) return false;
  }
  const auto* ha = find_host(a);
  const auto* hb = find_host(b);
  if (!ha || !hb || !ha->up || !hb->up) return false;
  for (const auto& [x, y] : partitions_) {
    if ((x.count(a) && y.count(b)) || (x.count(b) && y.count(a))) return false;
  }
  return true;
}

std::uint64_t network::incarnation(const std::string& host) const {
  const auto* h = find_host(host);
  return h ? h->incarnation : 0;
}

void network::forget(connection_state* c) { connections_.erase(c); }

std::error_code network::listen(const std::string& host, std::uint16_t port,
                                accept_handler handler) {
  auto it = hosts_.find(host);
  if (it == hosts_.end()) return std::make_error_code(std::errc::no_such_device_or_address);
  if (!it->second->listeners.emplace(port, std::move(handler)).second) {
    return std::make_error_code(std::errc::address_in_use);
  }
  return {};
}

void network::unlisten(const std::string& host, std::uint16_t port) {
  if (auto it = hosts_.find(host); it != hosts_.end()) it->second->listeners.erase(port);
}

void network::async_connect(const std::string& source, const std::string& address,
                            std::uint16_t port, duration timeout,
                            std::function<void(std::error_code, std::unique_ptr<socket>)> done) {
  const path_decision d = decide(source, address, port);
  auto fire_at = [this](time_point at, std::function<void()> fn) {
    world_.schedule_at(at, std::move(fn));
  };
  const time_point give_up =
      timeout >= time_point::max() - world_.now() ? time_point::max() : world_.now() + timeout;
  auto timed_out = [done] { done(std::make_error_code(std::errc::timed_out), nullptr); };
  switch (d.outcome) {
    case verdict::unreachable:
      asio::post(world_.executor(),
                 [done] { done(std::make_error_code(std::errc::network_unreachable), nullptr); });
      return;
    case verdict::dropped:
      fire_at(give_up, timed_out);
      return;
    default:
      break;
  }
  auto one_way = [&] {
    duration t = d.path.latency;
    if (d.path.jitter.count() > 0) {
      t += duration(world_.random_between(0, static_cast<std::uint64_t>(d.path.jitter.count())));
    }
    if (d.path.loss > 0 && world_.chance(d.path.loss)) t += limits_.syn_retransmit;
    return t;
  };
  const duration there = one_way();
  const duration back = one_way();
  if (world_.now() + there + back > give_up) {
    fire_at(give_up, timed_out);
    return;
  }
  if (d.outcome == verdict::refused) {
    fire_at(world_.now() + there + back,
            [done] { done(std::make_error_code(std::errc::connection_refused), nullptr); });
    return;
  }
  const auto port_local = static_cast<std::uint16_t>(world_.random_between(32768, 60999));
  // The SYN reaches the server: if it still listens, the connection exists from now on.
  fire_at(world_.now() + there, [this, d, source, address, port, port_local, back, done] {
    auto* dst = hosts_.count(d.destination_host) ? hosts_[d.destination_host].get() : nullptr;
    const auto lit =
        dst ? dst->listeners.find(port) : std::map<std::uint16_t, accept_handler>::iterator{};
    if (!dst || !dst->up || lit == dst->listeners.end()) {
      world_.schedule_after(
          back, [done] { done(std::make_error_code(std::errc::connection_refused), nullptr); });
      return;
    }
    auto c = std::make_shared<connection_state>();
    c->net = this;
    c->w = &world_;
    c->path = d.path;
    c->links = d.links;
    auto& client = c->ends[0];
    client.host = source;
    client.address = d.source_address;
    client.port = port_local;
    client.peer_address = address;
    client.peer_port = port;
    client.incarnation = incarnation(source);
    auto& server = c->ends[1];
    server.host = d.destination_host;
    server.address = address;
    if (dst->subnet && dst->public_v4 && address == dst->public_v4->to_string() && dst->v4) {
      server.address = dst->v4->to_string();  // 1:1 NAT at the internet gateway
    }
    for (const auto& [priv, pub] : dst->secondary_v4) {
      if (dst->subnet && pub && address == pub->to_string()) server.address = priv.to_string();
    }
    server.port = port;
    server.peer_address = d.seen_address;
    server.peer_port = port_local;
    server.incarnation = dst->incarnation;
    connections_.insert(c.get());
    accepted a;
    a.stream = std::make_unique<socket>(c, 1);
    a.remote_address = server.peer_address;
    a.remote_port = port_local;
    a.local_address = server.address;
    a.local_port = port;
    auto client_sock = std::make_shared<std::unique_ptr<socket>>(std::make_unique<socket>(c, 0));
    auto handler = lit->second;  // a copy: the handler may stop listening
    handler(std::move(a));
    world_.schedule_after(back, [done, client_sock] { done({}, std::move(*client_sock)); });
  });
}

std::error_code network::set_link_up(const std::string& link, bool up) {
  bool known = link == "internet" || hosts_.count(link);
  for (const auto& v : vpcs_) known = known || v->subnets.count(link);
  if (!known) return std::make_error_code(std::errc::no_such_device);
  if (up) {
    links_down_.erase(link);
  } else {
    links_down_.insert(link);
  }
  return {};
}

std::error_code network::crash_host(const std::string& host) {
  auto it = hosts_.find(host);
  if (it == hosts_.end()) return std::make_error_code(std::errc::no_such_device_or_address);
  it->second->up = false;
  ++it->second->incarnation;
  std::vector<std::shared_ptr<connection_state>> affected;
  for (auto* c : connections_) {
    if (c->ends[0].host == host || c->ends[1].host == host) {
      affected.push_back(c->shared_from_this());
    }
  }
  for (auto& c : affected) {
    for (int side = 0; side < 2; ++side) {
      if (c->ends[side].host != host || c->ends[side].dead) continue;
      c->ends[side].dead = true;
      c->fail(side, asio::error::connection_aborted);
    }
  }
  return {};
}

std::error_code network::restart_host(const std::string& host) {
  auto it = hosts_.find(host);
  if (it == hosts_.end()) return std::make_error_code(std::errc::no_such_device_or_address);
  it->second->up = true;
  return {};
}

bool network::host_up(const std::string& host) const {
  const auto* h = find_host(host);
  return h && h->up;
}

void network::partition(std::vector<std::string> a, std::vector<std::string> b) {
  partitions_.emplace_back(std::set<std::string>(a.begin(), a.end()),
                           std::set<std::string>(b.begin(), b.end()));
}

void network::heal() { partitions_.clear(); }

std::error_code network::change_sg_rule(const std::string& group, bool ingress, const sg_rule& rule,
                                        bool add) {
  auto it = sgs_.find(group);
  if (it == sgs_.end()) return std::make_error_code(std::errc::invalid_argument);
  auto& rules = ingress ? it->second.ingress : it->second.egress;
  if (add) {
    rules.push_back(rule);
    return {};
  }
  // The description does not identify a rule (AWS matches protocol, ports and peer).
  auto r = std::find_if(rules.begin(), rules.end(), [&](const sg_rule& x) {
    return x.protocol == rule.protocol && x.port_from == rule.port_from &&
           x.port_to == rule.port_to && x.cidr == rule.cidr && x.group == rule.group;
  });
  if (r == rules.end()) return std::make_error_code(std::errc::no_such_file_or_directory);
  rules.erase(r);
  return {};
}

// ---------------------------------------------------------------------------------------------

asio::awaitable<std::unique_ptr<net::byte_stream>> host_connector::connect(std::string address,
                                                                           std::uint16_t port,
                                                                           net::duration timeout,
                                                                           std::error_code& ec) {
  ec = {};
  auto ex = net_.owner().executor();
  // The callback may outlive this frame (the coroutine can be destroyed while connecting), so
  // what it writes is shared, and it reaches the timer only while the frame exists.
  struct shared_result {
    bool finished = false;
    std::error_code ec;
    std::unique_ptr<socket> sock;
    timer* wake = nullptr;
  };
  auto r = std::make_shared<shared_result>();
  timer wake(ex);
  wake.expires_at(time_point::max());
  r->wake = &wake;
  struct unhook {
    shared_result& r;
    ~unhook() { r.wake = nullptr; }
  } guard{*r};
  net_.async_connect(host_, address, port, clamp(timeout),
                     [r](std::error_code e, std::unique_ptr<socket> s) {
                       r->finished = true;
                       r->ec = e;
                       r->sock = std::move(s);
                       if (r->wake) r->wake->cancel();
                     });
  for (int i = 0; i < 4 && !r->finished; ++i) {
    bec ignored;
    co_await wake.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  if (!r->finished) {
    ec = std::make_error_code(std::errc::timed_out);
    co_return nullptr;
  }
  ec = r->ec;
  if (ec) co_return nullptr;
  co_return std::make_unique<byte_stream_adapter>(std::move(r->sock));
}

asio::awaitable<void> sim_runtime::sleep_for(net::duration d) {
  timer t(world_.executor());
  t.expires_after(d);
  bec ignored;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace relaylab::sim
