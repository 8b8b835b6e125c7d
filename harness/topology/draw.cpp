#include "harness/topology/draw.hpp"

#include <map>
#include <sstream>

namespace relaylab::topology {
namespace {

std::string esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\l";
      continue;
    }
    out += c;
  }
  return out;
}

std::string id(const std::string& kind, const std::string& name) {
  std::string out = kind + "_";
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string ports(const sim::sg_rule& r) {
  if (r.port_from == 0 && r.port_to == 65535) return "all";
  if (r.port_from == r.port_to) return std::to_string(r.port_from);
  return std::to_string(r.port_from) + "-" + std::to_string(r.port_to);
}

std::string host_label(const document& doc, const host& h) {
  std::string label = h.net.name + "\\l";
  if (!h.net.ipv4.empty()) label += (h.net.subnet.empty() ? "" : "private ") + h.net.ipv4 + "\\l";
  if (!h.net.public_ipv4.empty()) label += "public " + h.net.public_ipv4 + "\\l";
  if (!h.net.ipv6.empty()) label += h.net.ipv6 + "\\l";
  if (h.relay) label += "[relay]\\l";
  for (const auto& m : h.mx) label += "[MX :" + std::to_string(m.port) + "]\\l";
  if (h.client) label += "[client]\\l";
  for (const auto& g : h.net.security_groups) {
    label += "SG " + esc(g) + "\\l";
    for (const auto& v : doc.network.vpcs) {
      for (const auto& sg : v.security_groups) {
        if (sg.name != g) continue;
        for (const auto& r : sg.ingress) {
          label += "  in " + r.protocol + " " + ports(r) + " from " +
                   esc(r.cidr.empty() ? r.group : r.cidr) + "\\l";
        }
        for (const auto& r : sg.egress) {
          label += "  out " + r.protocol + " " + ports(r) + " to " +
                   esc(r.cidr.empty() ? r.group : r.cidr) + "\\l";
        }
      }
    }
  }
  return label;
}

}  // namespace

std::string to_dot(const document& doc, const std::vector<drawn_hop>& mail_path) {
  std::ostringstream o;
  o << "digraph \"" << esc(doc.name) << "\" {\n"
    << "  graph [rankdir=LR, fontname=\"Helvetica\", label=\"" << esc(doc.name)
    << "\", labelloc=t];\n"
    << "  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n"
    << "  edge [fontname=\"Helvetica\", fontsize=9];\n"
    << "  internet [shape=ellipse, label=\"internet\"];\n";
  std::map<std::string, std::string> host_node;
  for (const auto& h : doc.hosts) host_node[h.net.name] = id("host", h.net.name);
  for (const auto& v : doc.network.vpcs) {
    o << "  subgraph \"cluster_" << id("vpc", v.name) << "\" {\n"
      << "    label=\"VPC " << esc(v.name) << "\\n"
      << v.cidr << (v.cidr6.empty() ? "" : "\\n" + v.cidr6) << "\"; style=rounded;\n";
    if (!v.internet_gateway.empty()) {
      o << "    " << id("igw", v.internet_gateway) << " [shape=hexagon, label=\"IGW "
        << esc(v.internet_gateway) << "\"];\n";
    }
    if (!v.egress_only_internet_gateway.empty()) {
      o << "    " << id("eigw", v.egress_only_internet_gateway)
        << " [shape=hexagon, label=\"egress-only IGW " << esc(v.egress_only_internet_gateway)
        << "\\nIPv6 out only\"];\n";
    }
    for (const auto& s : v.subnets) {
      o << "    subgraph \"cluster_" << id("subnet", s.name) << "\" {\n"
        << "      label=\"subnet " << esc(s.name) << "\\n"
        << s.cidr << "\\nroutes: " << esc(s.route_table)
        << (s.nacl.empty() ? "" : "\\nNACL " + esc(s.nacl)) << "\"; style=dashed;\n";
      for (const auto& n : v.nat_gateways) {
        if (n.subnet == s.name) {
          o << "      " << id("nat", n.name) << " [shape=hexagon, label=\"NAT " << esc(n.name)
            << "\\n"
            << n.public_ip << "\"];\n";
        }
      }
      for (const auto& h : doc.hosts) {
        if (h.net.subnet == s.name) {
          o << "      " << host_node[h.net.name] << " [label=\"" << host_label(doc, h) << "\""
            << (h.relay ? ", style=bold" : "") << "];\n";
        }
      }
      o << "    }\n";
    }
    o << "  }\n";
    if (!v.internet_gateway.empty()) {
      o << "  " << id("igw", v.internet_gateway) << " -> internet [dir=both, style=dotted];\n";
    }
    if (!v.egress_only_internet_gateway.empty()) {
      // Outbound only: connections start inside (replies come back on the same edge).
      o << "  " << id("eigw", v.egress_only_internet_gateway) << " -> internet [style=dotted];\n";
    }
    for (const auto& rt : v.route_tables) {
      for (const auto& s : v.subnets) {
        if (s.route_table != rt.name) continue;
        for (const auto& r : rt.routes) {
          std::string target;
          if (r.target == sim::route_target::internet_gateway) target = id("igw", r.target_name);
          if (r.target == sim::route_target::nat_gateway) target = id("nat", r.target_name);
          if (r.target == sim::route_target::egress_only_internet_gateway) {
            target = id("eigw", r.target_name);
          }
          if (target.empty()) continue;
          // One edge per subnet route, from the subnet's first host.
          for (const auto& h : doc.hosts) {
            if (h.net.subnet == s.name) {
              o << "  " << host_node[h.net.name] << " -> " << target << " [style=dotted, label=\""
                << r.destination << "\"];\n";
              break;
            }
          }
        }
      }
    }
  }
  for (const auto& h : doc.hosts) {
    if (!h.net.subnet.empty()) continue;
    o << "  " << host_node[h.net.name] << " [shape=box3d, label=\"" << host_label(doc, h)
      << "\"];\n"
      << "  internet -> " << host_node[h.net.name] << " [dir=both, style=dotted];\n";
  }
  int n = 0;
  for (const auto& hop : mail_path) {
    auto a = host_node.find(hop.from_host), b = host_node.find(hop.to_host);
    if (a == host_node.end() || b == host_node.end()) continue;
    o << "  " << a->second << " -> " << b->second << " [penwidth=2.5, color=\""
      << (hop.failed ? "red" : "blue") << "\", fontcolor=\"" << (hop.failed ? "red" : "blue")
      << "\", label=\"" << ++n << ". " << esc(hop.label) << "\"];\n";
  }
  o << "}\n";
  return o.str();
}

}  // namespace relaylab::topology
