// The imported network as topology XML (write_topology in cfn.hpp).
#include "harness/cfn/cfn.hpp"

#include <sstream>

namespace relaylab::cfn {

namespace {

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// "--" may not appear inside an XML comment.
std::string comment_text(std::string s) {
  for (std::size_t k = s.find("--"); k != std::string::npos; k = s.find("--", k))
    s.replace(k, 2, "- -");
  return s;
}

std::string ports(std::uint16_t from, std::uint16_t to) {
  if (from == 0 && to == 65535) return "all";
  if (from == to) return std::to_string(from);
  return std::to_string(from) + "-" + std::to_string(to);
}

}  // namespace

std::string write_topology(const import_result& r, const std::string& name,
                           const std::string& generated_by) {
  std::ostringstream o;
  auto from = [&](const char* kind, const std::string& n, const std::string& indent) {
    if (const origin* x = r.find(kind, n)) {
      o << indent << "<!-- " << comment_text(x->where.to_string() + " " + x->logical) << " -->\n";
    }
  };
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<!-- " << comment_text(generated_by) << " -->\n"
    << "<topology xmlns=\"urn:relaylab:topology:1\" name=\"" << esc(name) << "\">\n";
  for (const auto& v : r.network.vpcs) {
    from("vpc", v.name, "  ");
    o << "  <vpc name=\"" << esc(v.name) << "\" cidr=\"" << esc(v.cidr) << "\"";
    if (!v.cidr6.empty()) o << " ipv6-cidr=\"" << esc(v.cidr6) << "\"";
    o << ">\n";
    if (!v.internet_gateway.empty()) {
      from("gateway", v.internet_gateway, "    ");
      o << "    <internet-gateway name=\"" << esc(v.internet_gateway) << "\"/>\n";
    }
    if (!v.egress_only_internet_gateway.empty()) {
      from("gateway", v.egress_only_internet_gateway, "    ");
      o << "    <egress-only-internet-gateway name=\"" << esc(v.egress_only_internet_gateway)
        << "\"/>\n";
    }
    for (const auto& n : v.nat_gateways) {
      from("gateway", n.name, "    ");
      o << "    <nat-gateway name=\"" << esc(n.name) << "\" subnet=\"" << esc(n.subnet)
        << "\" public-ip=\"" << esc(n.public_ip) << "\"/>\n";
    }
    for (const auto& t : v.route_tables) {
      from("route-table", t.name, "    ");
      o << "    <route-table name=\"" << esc(t.name) << "\">\n";
      for (const auto& rt : t.routes) {
        const std::string target = rt.target == sim::route_target::local       ? "local"
                                   : rt.target == sim::route_target::blackhole ? "blackhole"
                                                                               : rt.target_name;
        o << "      <route destination=\"" << esc(rt.destination) << "\" target=\"" << esc(target)
          << "\"/>\n";
      }
      o << "    </route-table>\n";
    }
    for (const auto& a : v.nacls) {
      from("network-acl", a.name, "    ");
      o << "    <network-acl name=\"" << esc(a.name) << "\">\n";
      for (const auto* list : {&a.inbound, &a.outbound}) {
        for (const auto& e : *list) {
          o << "      <" << (list == &a.inbound ? "inbound" : "outbound") << " number=\""
            << e.number << "\" action=\"" << (e.allow ? "allow" : "deny") << "\" protocol=\""
            << e.protocol << "\" ports=\"" << ports(e.port_from, e.port_to) << "\" cidr=\""
            << esc(e.cidr) << "\"/>\n";
        }
      }
      o << "    </network-acl>\n";
    }
    for (const auto& g : v.security_groups) {
      from("security-group", g.name, "    ");
      o << "    <security-group name=\"" << esc(g.name) << "\">\n";
      for (const auto* list : {&g.ingress, &g.egress}) {
        for (const auto& e : *list) {
          o << "      <" << (list == &g.ingress ? "ingress" : "egress") << " protocol=\""
            << e.protocol << "\" ports=\"" << ports(e.port_from, e.port_to) << "\"";
          if (!e.cidr.empty()) o << " cidr=\"" << esc(e.cidr) << "\"";
          if (!e.group.empty()) o << " group=\"" << esc(e.group) << "\"";
          if (!e.description.empty()) o << " description=\"" << esc(e.description) << "\"";
          o << "/>\n";
        }
      }
      o << "    </security-group>\n";
    }
    for (const auto& s : v.subnets) {
      from("subnet", s.name, "    ");
      o << "    <subnet name=\"" << esc(s.name) << "\" cidr=\"" << esc(s.cidr) << "\"";
      if (!s.cidr6.empty()) o << " ipv6-cidr=\"" << esc(s.cidr6) << "\"";
      o << " route-table=\"" << esc(s.route_table) << "\"";
      if (!s.nacl.empty()) o << " network-acl=\"" << esc(s.nacl) << "\"";
      o << "/>\n";
    }
    o << "  </vpc>\n";
  }
  for (const auto& h : r.network.hosts) {
    from("host", h.name, "  ");
    o << "  <host name=\"" << esc(h.name) << "\" subnet=\"" << esc(h.subnet) << "\" ipv4=\""
      << esc(h.ipv4) << "\"";
    if (!h.public_ipv4.empty()) o << " public-ipv4=\"" << esc(h.public_ipv4) << "\"";
    if (!h.ipv6.empty()) o << " ipv6=\"" << esc(h.ipv6) << "\"";
    if (!h.security_groups.empty()) {
      std::string g;
      for (const auto& x : h.security_groups) g += (g.empty() ? "" : " ") + x;
      o << " security-groups=\"" << esc(g) << "\"";
    }
    if (h.secondary_ipv4.empty()) {
      o << "/>\n";
      continue;
    }
    o << ">\n";
    for (const auto& a : h.secondary_ipv4) {
      o << "    <secondary-ipv4 address=\"" << esc(a.address) << "\"";
      if (!a.public_ipv4.empty()) o << " public-ipv4=\"" << esc(a.public_ipv4) << "\"";
      o << "/>\n";
    }
    o << "  </host>\n";
  }
  o << "</topology>\n";
  return o.str();
}

}  // namespace relaylab::cfn
