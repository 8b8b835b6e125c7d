// The topology document: locations, durations, and parse()/load() of the XML (with
// reader.hpp and scenario_reader.cpp).
#include "harness/topology/topology.hpp"

#include "harness/topology/reader.hpp"

#include "harness/cfn/address_math.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

namespace relaylab::topology {

std::string location::to_string() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string diagnostic::to_string() const { return where.to_string() + ": error: " + message; }

const host* document::find_host(const std::string& name) const {
  for (const auto& h : hosts) {
    if (h.net.name == name) return &h;
  }
  return nullptr;
}

const host_group* document::find_group(const std::string& name) const {
  for (const auto& g : groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

location locate_in(const text_source& t, std::size_t line, std::size_t column) {
  location out = t.where;
  if (!t.path.empty()) {
    out.line = line;
    out.column = column;
    return out;
  }
  out.line = t.where.line + (line > 0 ? line - 1 : 0);
  const std::size_t start = line <= 1 ? t.where.column : 1;
  out.column = start + t.indent + (column > 0 ? column - 1 : 0);
  return out;
}

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) return std::nullopt;
  double v = 0;
  try {
    std::size_t used = 0;
    v = std::stod(std::string(text.substr(0, i)), &used);
    if (used != i) return std::nullopt;
  } catch (...) {
    return std::nullopt;
  }
  const auto unit = text.substr(i);
  double scale = 0;  // nanoseconds per unit
  if (unit == "us") {
    scale = 1e3;
  } else if (unit == "ms") {
    scale = 1e6;
  } else if (unit == "s") {
    scale = 1e9;
  } else if (unit == "m" || unit == "min") {
    scale = 60e9;
  } else if (unit == "h") {
    scale = 3600e9;
  } else if (unit == "d") {
    scale = 86400e9;
  } else if (!(unit.empty() && v == 0)) {
    return std::nullopt;
  }
  const double ns = v * scale;
  if (!std::isfinite(ns) || ns > 1e18) return std::nullopt;
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(ns)));
}

std::optional<std::chrono::milliseconds> parse_duration_ms(std::string_view text) {
  const auto d = parse_duration(text);
  if (!d) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

namespace {

using namespace detail;

struct names {
  std::map<std::string, location> subnets, route_tables, nacls, sgs, gateways, hosts;
};

void read_vpc(reader& r, const pugi::xml_node& n, sim::network_spec& net, names& seen,
              std::vector<std::pair<std::string, pugi::xml_node>>& deferred_checks) {
  r.attrs(n, {"name", "cidr", "ipv6-cidr"}, {"name", "cidr"});
  r.children(n, {"internet-gateway", "egress-only-internet-gateway", "nat-gateway", "route-table",
                 "network-acl", "security-group", "subnet"});
  sim::vpc_spec v;
  v.name = r.name_attr(n);
  v.cidr = r.cidr(n, "cidr", 4);
  v.cidr6 = r.cidr(n, "ipv6-cidr", 6);
  auto unique = [&](std::map<std::string, location>& m, const std::string& name,
                    const pugi::xml_node& at, const char* what) {
    if (name.empty()) return;
    auto [it, fresh] = m.emplace(name, r.at(at));
    if (!fresh) {
      r.error(r.at(at, "name"), std::string(what) + " '" + name + "' is already defined at " +
                                    it->second.to_string());
    }
  };
  for (auto g : n.children("internet-gateway")) {
    r.attrs(g, {"name"}, {"name"});
    r.children(g, {});
    if (!v.internet_gateway.empty()) {
      r.error(r.at(g), "a VPC has at most one <internet-gateway>");
    }
    v.internet_gateway = r.name_attr(g);
    unique(seen.gateways, v.internet_gateway, g, "gateway");
  }
  for (auto g : n.children("egress-only-internet-gateway")) {
    r.attrs(g, {"name"}, {"name"});
    r.children(g, {});
    if (!v.egress_only_internet_gateway.empty()) {
      r.error(r.at(g), "a VPC has at most one <egress-only-internet-gateway>");
    }
    v.egress_only_internet_gateway = r.name_attr(g);
    unique(seen.gateways, v.egress_only_internet_gateway, g, "gateway");
  }
  for (auto g : n.children("nat-gateway")) {
    r.attrs(g, {"name", "subnet", "public-ip"}, {"name", "subnet", "public-ip"});
    r.children(g, {});
    sim::nat_gateway_spec s{r.name_attr(g), r.str(g, "subnet"), r.address(g, "public-ip", 4)};
    unique(seen.gateways, s.name, g, "gateway");
    deferred_checks.emplace_back("subnet", g);
    v.nat_gateways.push_back(s);
  }
  for (auto t : n.children("route-table")) {
    r.attrs(t, {"name"}, {"name"});
    r.children(t, {"route"});
    sim::route_table_spec rt;
    rt.name = r.name_attr(t);
    unique(seen.route_tables, rt.name, t, "route table");
    for (auto e : t.children("route")) {
      r.attrs(e, {"destination", "target"}, {"destination", "target"});
      r.children(e, {});
      sim::route_spec route;
      route.destination = r.cidr(e, "destination");
      const std::string target = r.str(e, "target");
      if (target == "local") {
        route.target = sim::route_target::local;
      } else if (target == "blackhole") {
        route.target = sim::route_target::blackhole;
      } else if (target == v.internet_gateway && !target.empty()) {
        route.target = sim::route_target::internet_gateway;
        route.target_name = target;
      } else if (target == v.egress_only_internet_gateway && !target.empty()) {
        route.target = sim::route_target::egress_only_internet_gateway;
        route.target_name = target;
        // AWS refuses an IPv4 destination for an egress-only internet gateway.
        if (const auto c = sim::parse_cidr(route.destination); c && !c->base.v6) {
          r.error(r.at(e, "destination"),
                  "attribute 'destination': egress-only internet gateway '" + target +
                      "' carries IPv6 only; got the IPv4 block '" + route.destination + "'");
        }
      } else {
        route.target = sim::route_target::nat_gateway;
        route.target_name = target;
        bool found = false;
        for (auto g : n.children("nat-gateway")) found = found || r.str(g, "name") == target;
        if (!found) {
          r.error(r.at(e, "target"),
                  "attribute 'target': expected 'local', 'blackhole', or the name of this VPC's " +
                      std::string("internet gateway, egress-only internet gateway or a NAT "
                                  "gateway, got '") +
                      target + "'");
        }
      }
      rt.routes.push_back(route);
    }
    v.route_tables.push_back(rt);
  }
  for (auto a : n.children("network-acl")) {
    r.attrs(a, {"name"}, {"name"});
    r.children(a, {"inbound", "outbound"});
    sim::nacl_spec acl;
    acl.name = r.name_attr(a);
    unique(seen.nacls, acl.name, a, "network ACL");
    for (auto e : a.children()) {
      if (e.type() != pugi::node_element) continue;
      const bool in = std::strcmp(e.name(), "inbound") == 0;
      if (!in && std::strcmp(e.name(), "outbound") != 0) continue;
      r.attrs(e, {"number", "action", "protocol", "ports", "cidr"}, {"number", "action"});
      r.children(e, {});
      sim::nacl_rule rule;
      rule.number = static_cast<int>(r.number(e, "number", 32766).value_or(0));
      const std::string action = r.str(e, "action");
      if (action != "allow" && action != "deny") {
        r.error(r.at(e, "action"),
                "attribute 'action': expected 'allow' or 'deny', got '" + action + "'");
      }
      rule.allow = action == "allow";
      rule.protocol = r.protocol(e, "all");
      r.ports(e, "ports", rule.port_from, rule.port_to);
      rule.cidr = e.attribute("cidr") ? r.cidr(e, "cidr") : "0.0.0.0/0";
      (in ? acl.inbound : acl.outbound).push_back(rule);
    }
    v.nacls.push_back(acl);
  }
  for (auto g : n.children("security-group")) {
    r.attrs(g, {"name", "description"}, {"name"});
    r.children(g, {"ingress", "egress"});
    sim::security_group_spec sg;
    sg.name = r.name_attr(g);
    unique(seen.sgs, sg.name, g, "security group");
    for (auto e : g.children()) {
      if (e.type() != pugi::node_element) continue;
      const bool in = std::strcmp(e.name(), "ingress") == 0;
      if (!in && std::strcmp(e.name(), "egress") != 0) continue;
      r.attrs(e, {"protocol", "ports", "cidr", "group", "description"});
      r.children(e, {});
      sim::sg_rule rule;
      rule.protocol = r.protocol(e, "tcp");
      r.ports(e, "ports", rule.port_from, rule.port_to);
      rule.cidr = r.cidr(e, "cidr");
      rule.group = r.str(e, "group");
      rule.description = r.str(e, "description");
      if (rule.cidr.empty() == rule.group.empty()) {
        r.error(r.at(e), "<" + std::string(e.name()) +
                             "> needs exactly one of the attributes 'cidr' and 'group'");
      }
      if (!rule.group.empty()) deferred_checks.emplace_back("group", e);
      (in ? sg.ingress : sg.egress).push_back(rule);
    }
    v.security_groups.push_back(sg);
  }
  for (auto s : n.children("subnet")) {
    r.attrs(s,
            {"name", "cidr", "ipv6-cidr", "route-table", "network-acl", "latency", "jitter",
             "bandwidth", "loss"},
            {"name", "cidr", "route-table"});
    r.children(s, {});
    sim::subnet_spec sub;
    sub.name = r.name_attr(s);
    unique(seen.subnets, sub.name, s, "subnet");
    sub.cidr = r.cidr(s, "cidr", 4);
    sub.cidr6 = r.cidr(s, "ipv6-cidr", 6);
    sub.route_table = r.str(s, "route-table");
    sub.nacl = r.str(s, "network-acl");
    sub.link = r.link(s);
    const auto vc = sim::parse_cidr(v.cidr), sc = sim::parse_cidr(sub.cidr);
    if (vc && sc && (sc->prefix < vc->prefix || !vc->contains(sc->base))) {
      r.error(r.at(s, "cidr"), "subnet " + sub.cidr + " is not inside the VPC's " + v.cidr);
    }
    deferred_checks.emplace_back("route-table", s);
    if (!sub.nacl.empty()) deferred_checks.emplace_back("network-acl", s);
    v.subnets.push_back(sub);
  }
  net.vpcs.push_back(std::move(v));
}

void read_mx_and_client(reader& r, const pugi::xml_node& h, host& out) {
  for (auto m : h.children("mx")) {
    r.attrs(m, {"port", "tls", "tls-wrapper", "tls-names"});
    r.children(m, {"script"});
    mx_spec mx;
    mx.where = r.at(m);
    mx.port = static_cast<std::uint16_t>(r.number(m, "port", 65535).value_or(25));
    mx.tls = r.keyword(m, "tls", {"good", "self-signed", "expired"});
    mx.tls_wrapper = r.keyword(m, "tls-wrapper", {"yes", "no"}, "no") == "yes";
    mx.tls_names = split_words(r.str(m, "tls-names"));
    if (mx.tls.empty() && (m.attribute("tls-wrapper") || m.attribute("tls-names"))) {
      r.error(r.at(m), "attributes 'tls-wrapper' and 'tls-names' need attribute 'tls'");
    }
    for (auto s : m.children("script")) {
      r.attrs(s, {"file"});
      r.children(s, {}, true);
      mx.script = r.text(s);
    }
    out.mx.push_back(std::move(mx));
  }
  for (auto c : h.children("client")) {
    r.attrs(c, {});
    r.children(c, {});
    out.client = true;
  }
}

// <hosts>: `count` hosts named prefix1 .. prefixN. Addresses come in order from the block:
// in a subnet, from its fifth address on (AWS reserves the first four and the last, as for
// imported instances); on the internet (cidr=), from the block's second address to the one
// before its last (network and broadcast addresses). Addresses that other hosts, groups or NAT
// gateways hold are skipped. `taken` holds them and gets the new ones.
void read_host_group(reader& r, const pugi::xml_node& h, document& doc, names& seen,
                     std::set<std::string>& taken,
                     std::vector<std::pair<std::string, pugi::xml_node>>& checks) {
  r.attrs(h,
          {"name", "count", "prefix", "subnet", "cidr", "security-groups", "latency", "jitter",
           "bandwidth", "loss"},
          {"count", "prefix"});
  r.children(h, {"mx", "client"});
  const std::size_t errors_before = r.errors_.size();
  host_group g;
  g.where = r.at(h);
  g.name = r.name_attr(h);
  if (!g.name.empty()) {
    if (const auto* other = doc.find_group(g.name)) {
      r.error(r.at(h, "name"),
              "host group '" + g.name + "' is already defined at " + other->where.to_string());
    }
  }
  g.prefix = r.name_attr(h, "prefix");
  const auto count = r.number(h, "count", group_hosts_max);
  if (count && *count == 0) {
    r.error(r.at(h, "count"), "attribute 'count': expected a whole number from 1 to " +
                                  std::to_string(group_hosts_max) + ", got '0'");
  }
  host proto;
  proto.where = g.where;
  proto.net.subnet = r.str(h, "subnet");
  proto.net.security_groups = split_words(r.str(h, "security-groups"));
  proto.net.link = r.link(h);
  std::string block;
  if (h.attribute("subnet") && h.attribute("cidr")) {
    r.error(r.at(h, "cidr"),
            "<hosts> takes 'subnet' (a subnet's name) or 'cidr' (a block on "
            "the internet), not both");
  } else if (h.attribute("subnet")) {
    for (const auto& v : doc.network.vpcs) {
      for (const auto& sn : v.subnets) {
        if (sn.name == proto.net.subnet) block = sn.cidr;
      }
    }
    if (block.empty()) {
      r.error(r.at(h, "subnet"), "attribute 'subnet': no subnet named '" + proto.net.subnet + "'");
    }
  } else if (h.attribute("cidr")) {
    block = r.cidr(h, "cidr", 4);
    if (!proto.net.security_groups.empty()) {
      r.error(r.at(h, "security-groups"),
              "hosts outside every VPC (cidr=, no 'subnet') have no 'security-groups'");
    }
  } else {
    r.error(r.at(h),
            "<hosts> needs attribute 'subnet' (a subnet's name) or 'cidr' (a block on "
            "the internet)");
  }
  if (!proto.net.security_groups.empty()) checks.emplace_back("security-groups", h);
  read_mx_and_client(r, h, proto);
  if (r.errors_.size() != errors_before || !count) return;
  const auto c = sim::parse_cidr(block);
  if (!c || c->base.v6) return;  // reported above
  // Addresses, in order.
  const auto net = cfn::network_of(c->base, c->prefix);
  const std::uint64_t size = cfn::block_size(*c);
  const std::uint64_t first = proto.net.subnet.empty() ? 1 : 4;
  std::vector<std::string> addresses;
  addresses.reserve(static_cast<std::size_t>(*count));
  std::uint64_t held = 0;
  for (std::uint64_t k = first; k + 1 < size && addresses.size() < *count; ++k) {
    const auto a = cfn::add_shifted(net, k, 0);
    if (!a) break;
    std::string text = a->to_string();
    if (taken.count(text)) {
      ++held;
      continue;
    }
    addresses.push_back(std::move(text));
  }
  if (addresses.size() < *count) {
    r.error(r.at(h, "count"),
            "attribute 'count': " + std::to_string(*count) + " hosts do not fit in " +
                (proto.net.subnet.empty() ? "block " + block
                                          : "subnet " + proto.net.subnet + " (" + block + ")") +
                ": it has " + std::to_string(addresses.size()) + " free addresses (" +
                (proto.net.subnet.empty() ? "the first and the last are reserved"
                                          : "AWS reserves the first four and the last") +
                (held ? "; other hosts hold " + std::to_string(held) : std::string()) + ")");
    return;
  }
  // Names: every one new.
  for (std::uint64_t i = 1; i <= *count; ++i) {
    const std::string name = g.prefix + std::to_string(i);
    auto [it, fresh] = seen.hosts.emplace(name, g.where);
    if (!fresh) {
      r.error(r.at(h, "prefix"), "host '" + name + "' of this <hosts> is already defined at " +
                                     it->second.to_string());
      return;  // one is enough: the rest would clash the same way
    }
  }
  g.first = doc.hosts.size();
  g.count = static_cast<std::size_t>(*count);
  doc.hosts.reserve(doc.hosts.size() + g.count);
  doc.network.hosts.reserve(doc.network.hosts.size() + g.count);
  for (std::size_t i = 0; i < g.count; ++i) {
    host out = proto;
    out.net.name = g.prefix + std::to_string(i + 1);
    out.net.ipv4 = addresses[i];
    taken.insert(addresses[i]);
    doc.network.hosts.push_back(out.net);
    doc.hosts.push_back(std::move(out));
  }
  doc.groups.push_back(std::move(g));
}

}  // namespace

std::optional<document> parse(std::string_view xml, const std::string& file,
                              const std::string& base_dir, std::vector<diagnostic>& errors) {
  const std::size_t errors_before = errors.size();
  reader r(xml, file, base_dir, errors);
  pugi::xml_document x;
  // Not parse_default's trimming: inline main.cf text must stay as written. Line ends are
  // normalised (parse_eol) so offsets still count every source byte before them.
  const auto res = x.load_buffer(
      xml.data(), xml.size(), pugi::parse_default | pugi::parse_declaration, pugi::encoding_utf8);
  if (!res) {
    r.error(r.at_offset(res.offset), std::string("XML syntax: ") + res.description());
    return std::nullopt;
  }
  const auto root = x.document_element();
  if (std::strcmp(root.name(), "topology") != 0) {
    r.error(r.at(root),
            "the root element is <" + std::string(root.name()) + ">; expected <topology>");
    return std::nullopt;
  }
  r.attrs(root, {"name", "seed", "epoch", "xmlns", "xmlns:xsi", "xsi:schemaLocation"}, {"name"});
  r.children(root,
             {"description", "internet", "import", "vpc", "dns", "host", "hosts", "scenario"});
  document doc;
  doc.file = file;
  doc.name = r.str(root, "name");
  doc.seed = r.number(root, "seed");
  if (auto a = root.attribute("epoch")) {
    // 2020-10-21T02:21:14Z
    std::tm tm{};
    std::istringstream in(a.value());
    in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
    // Virtual time counts nanoseconds in 64 bits from the epoch, and the wall clock it maps to
    // does too (from 1970): a year past kEpochYearMax would overflow both.
    constexpr int kEpochYearMin = 1970;
    constexpr int kEpochYearMax = 2200;
    if (in.fail() || in.peek() != EOF) {
      r.error(r.at(root, "epoch"), "attribute 'epoch': expected UTC time like " +
                                       std::string("2020-10-21T02:21:14Z, got '") + a.value() +
                                       "'");
    } else if (tm.tm_year + 1900 < kEpochYearMin || tm.tm_year + 1900 > kEpochYearMax) {
      r.error(r.at(root, "epoch"), "attribute 'epoch': expected a year from " +
                                       std::to_string(kEpochYearMin) + " to " +
                                       std::to_string(kEpochYearMax) + ", got '" + a.value() + "'");
    } else {
      doc.epoch = std::chrono::system_clock::from_time_t(timegm(&tm));
    }
  }
  names seen;
  std::vector<std::pair<std::string, pugi::xml_node>> checks;
  for (auto e : root.children("internet")) {
    r.attrs(e, {"latency", "jitter", "bandwidth", "loss"});
    r.children(e, {});
    sim::link_spec def;
    def.latency = std::chrono::milliseconds(10);
    doc.network.internet = r.link(e, def);
  }
  // Imported networks: their VPCs as they are, their hosts for <host> elements to take by name.
  std::map<std::string, sim::host_spec> imported;
  for (auto im : root.children("import")) {
    auto net = read_import(r, im);
    if (!net) continue;
    const location at = r.at(im);
    for (auto& v : net->vpcs) {
      r.imported_vpcs_.insert(v.name);
      if (!v.internet_gateway.empty()) seen.gateways.emplace(v.internet_gateway, at);
      if (!v.egress_only_internet_gateway.empty()) {
        seen.gateways.emplace(v.egress_only_internet_gateway, at);
      }
      for (const auto& g : v.nat_gateways) seen.gateways.emplace(g.name, at);
      for (const auto& t : v.route_tables) seen.route_tables.emplace(t.name, at);
      for (const auto& a : v.nacls) seen.nacls.emplace(a.name, at);
      for (const auto& g : v.security_groups) seen.sgs.emplace(g.name, at);
      for (const auto& sn : v.subnets) seen.subnets.emplace(sn.name, at);
      doc.network.vpcs.push_back(std::move(v));
    }
    for (auto& h : net->hosts) {
      r.imported_hosts_.insert(h.name);
      imported.emplace(h.name, std::move(h));
    }
  }
  for (auto v : root.children("vpc")) read_vpc(r, v, doc.network, seen, checks);
  for (auto d : root.children("dns")) {
    r.attrs(d, {});
    r.children(d, {"zone"});
    for (auto z : d.children("zone")) {
      r.attrs(z, {"file"});
      r.children(z, {}, true);
      auto t = r.text(z);
      if (!t.present && !z.attribute("file")) {
        r.error(r.at(z), "<zone> needs zone text or file=\"...\"");
      }
      doc.zones.push_back(std::move(t));
    }
  }
  for (auto h : root.children("host")) {
    r.attrs(h,
            {"name", "subnet", "ipv4", "public-ipv4", "ipv6", "security-groups", "latency",
             "jitter", "bandwidth", "loss"},
            {"name"});
    r.children(h, {"secondary-ipv4", "relay", "mx", "client"});
    host out;
    out.where = r.at(h);
    out.net.name = r.name_attr(h);
    if (!out.net.name.empty()) {
      auto [it, fresh] = seen.hosts.emplace(out.net.name, out.where);
      if (!fresh) {
        r.error(r.at(h, "name"),
                "host '" + out.net.name + "' is already defined at " + it->second.to_string());
      }
    }
    if (auto it = imported.find(out.net.name); it != imported.end()) {
      // A role on an imported host: the network is the import's.
      for (const char* a : {"subnet", "ipv4", "public-ipv4", "ipv6", "security-groups"}) {
        if (h.attribute(a)) {
          r.error(r.at(h, a), "host '" + out.net.name + "' comes from <import>: attribute '" + a +
                                  "' is the template's");
        }
      }
      if (auto a = h.child("secondary-ipv4")) {
        r.error(r.at(a), "host '" + out.net.name +
                             "' comes from <import>: its <secondary-ipv4> addresses are the "
                             "template's");
      }
      out.net = it->second;
      imported.erase(it);
      out.net.link = r.link(h, out.net.link);
    } else {
      out.net.subnet = r.str(h, "subnet");
      if (!out.net.subnet.empty()) checks.emplace_back("subnet", h);
      out.net.ipv4 = r.address(h, "ipv4", 4);
      out.net.public_ipv4 = r.address(h, "public-ipv4", 4);
      out.net.ipv6 = r.address(h, "ipv6", 6);
      for (auto a : h.children("secondary-ipv4")) {
        r.attrs(a, {"address", "public-ipv4"}, {"address"});
        r.children(a, {});
        out.net.secondary_ipv4.push_back(
            {r.address(a, "address", 4), r.address(a, "public-ipv4", 4)});
      }
      if (!out.net.secondary_ipv4.empty() && r.str(h, "subnet").empty()) {
        r.error(r.at(h), "<secondary-ipv4> is for a host in a subnet (with 'subnet')");
      }
      out.net.security_groups = split_words(r.str(h, "security-groups"));
      if (!out.net.security_groups.empty()) checks.emplace_back("security-groups", h);
      out.net.link = r.link(h);
      if (out.net.ipv4.empty() && out.net.ipv6.empty()) {
        r.error(r.at(h), "<host> needs attribute 'ipv4' or 'ipv6'");
      }
      if (out.net.subnet.empty() &&
          (!out.net.public_ipv4.empty() || !out.net.security_groups.empty())) {
        r.error(r.at(h), "a host outside every VPC (no 'subnet') has no 'public-ipv4' or " +
                             std::string("'security-groups'; its 'ipv4' is already public"));
      }
    }
    for (auto rl : h.children("relay")) {
      r.attrs(rl, {"myhostname", "tls"});
      r.children(rl, {"main-cf", "master-cf", "smtpd-conf", "sasl-user"});
      if (out.relay) r.error(r.at(rl), "a host runs at most one <relay>");
      relay_spec rs;
      rs.where = r.at(rl);
      rs.myhostname = r.str(rl, "myhostname");
      rs.tls = r.keyword(rl, "tls", {"none", "may", "encrypt"});
      for (auto [tag, dst] : {std::pair<const char*, text_source*>{"main-cf", &rs.main_cf},
                              {"master-cf", &rs.master_cf},
                              {"smtpd-conf", &rs.smtpd_conf}}) {
        for (auto t : rl.children(tag)) {
          r.attrs(t, {"file"});
          r.children(t, {}, true);
          *dst = r.text(t);
        }
      }
      for (auto u : rl.children("sasl-user")) {
        r.attrs(u, {"name", "realm", "password"}, {"name", "password"});
        r.children(u, {});
        rs.sasl_users.push_back(
            {r.str(u, "name"), r.str(u, "realm"), r.str(u, "password"), r.at(u)});
      }
      if (!rs.main_cf.present) r.error(r.at(rl), "<relay> needs <main-cf>");
      out.relay = std::move(rs);
    }
    read_mx_and_client(r, h, out);
    doc.network.hosts.push_back(out.net);
    doc.hosts.push_back(std::move(out));
  }
  // Imported hosts without a role are on the network all the same.
  for (auto& [name, net] : imported) {
    host out;
    out.where = r.at(root.child("import"));
    out.net = std::move(net);
    seen.hosts.emplace(name, out.where);
    doc.network.hosts.push_back(out.net);
    doc.hosts.push_back(std::move(out));
  }
  // Host groups, after every single host: their addresses skip the ones those hold.
  if (root.child("hosts")) {
    std::set<std::string> taken;
    for (const auto& h : doc.network.hosts) {
      for (const auto* a : {&h.ipv4, &h.public_ipv4}) {
        if (!a->empty()) taken.insert(*a);
      }
    }
    for (const auto& v : doc.network.vpcs) {
      for (const auto& g : v.nat_gateways) taken.insert(g.public_ip);
    }
    for (auto g : root.children("hosts")) read_host_group(r, g, doc, seen, taken, checks);
  }
  // References, now that every name is known.
  for (const auto& check : checks) {
    const auto& [kind, node_ref] = check;
    const auto& node = node_ref;  // a plain reference: clang 14 cannot capture a binding
    auto need = [&](const std::map<std::string, location>& m, const char* attr,
                    const std::string& value, const char* what) {
      if (!value.empty() && !m.count(value)) {
        r.error(r.at(node, attr),
                "attribute '" + std::string(attr) + "': no " + what + " named '" + value + "'");
      }
    };
    if (kind == "subnet") need(seen.subnets, "subnet", r.str(node, "subnet"), "subnet");
    if (kind == "route-table") {
      need(seen.route_tables, "route-table", r.str(node, "route-table"), "route table");
    }
    if (kind == "network-acl") {
      need(seen.nacls, "network-acl", r.str(node, "network-acl"), "network ACL");
    }
    if (kind == "group") need(seen.sgs, "group", r.str(node, "group"), "security group");
    if (kind == "security-groups") {
      for (const auto& g : split_words(r.str(node, "security-groups"))) {
        need(seen.sgs, "security-groups", g, "security group");
      }
    }
  }
  for (auto s : root.children("scenario")) read_scenario(r, s, doc);
  for (auto& sc : doc.scenarios) {
    for (auto& st : sc.steps) {
      if (st.kind == step_kind::fault && st.fault.kind == fault_kind::sg_add &&
          !seen.sgs.count(st.fault.target)) {
        r.error(st.where, "<fault>: no security group named '" + st.fault.target + "'");
      }
    }
  }
  if (errors.size() == errors_before) {
    // The network model's own checks (addresses inside subnets ...), at the root element.
    sim::world w;
    std::vector<sim::network_error> net_errors;
    sim::network n(w, doc.network, net_errors);
    for (const auto& e : net_errors) {
      location where = r.at(root);
      for (const auto& h : doc.hosts) {
        if (e.what.rfind("host " + h.net.name + ":", 0) == 0) where = h.where;
      }
      r.error(where, e.what);
    }
  }
  if (errors.size() != errors_before) return std::nullopt;
  return doc;
}

std::optional<document> load(const std::string& path, std::vector<diagnostic>& errors) {
  std::string text, why;
  if (!read_file(path, text, why)) {
    errors.push_back({location{path, 1, 1}, "cannot read the topology file: " + why});
    return std::nullopt;
  }
  const auto dir = fs::path(path).parent_path().string();
  return parse(text, path, dir.empty() ? "." : dir, errors);
}

}  // namespace relaylab::topology
