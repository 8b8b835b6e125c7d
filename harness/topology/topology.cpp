// The only file that includes pugixml.
#include "harness/topology/topology.hpp"

#include <pugixml.hpp>

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

namespace fs = std::filesystem;

bool read_file(const std::string& path, std::string& out, std::string& why) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) {
    why = ec.message();
    return false;
  }
  if (size > file_bytes_max) {
    why = "larger than " + std::to_string(file_bytes_max) + " bytes";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = "cannot open";
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(in), {});
  return true;
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

class reader {
 public:
  reader(std::string_view src, std::string file, std::string base_dir,
         std::vector<diagnostic>& errors)
      : src_(src), file_(std::move(file)), base_dir_(std::move(base_dir)), errors_(errors) {}

  location at_offset(std::ptrdiff_t offset) const {
    location l{file_, 1, 1};
    if (offset < 0) return l;
    const auto end = std::min<std::size_t>(static_cast<std::size_t>(offset), src_.size());
    // Line by binary search over the line starts (found once per file), column by counting
    // within the line: documents with thousands of elements stay linear overall.
    if (line_starts_.empty()) {
      line_starts_.push_back(0);
      for (std::size_t i = 0; i < src_.size(); ++i)
        if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), end) - 1;
    l.line = static_cast<std::size_t>(it - line_starts_.begin()) + 1;
    for (std::size_t i = *it; i < end; ++i) {
      // Count characters, not UTF-8 continuation bytes.
      if ((static_cast<unsigned char>(src_[i]) & 0xc0) != 0x80) ++l.column;
    }
    return l;
  }
  // pugixml reports an element's offset at its name; point at the '<'.
  location at(const pugi::xml_node& n) const {
    auto off = n.offset_debug();
    if (n.type() == pugi::node_element && off > 0 &&
        src_[static_cast<std::size_t>(off) - 1] == '<') {
      --off;
    }
    return at_offset(off);
  }
  // Attributes carry no offset: find `name=` inside the element's start tag.
  location at(const pugi::xml_node& n, const char* attr) const {
    const auto start = static_cast<std::size_t>(std::max<std::ptrdiff_t>(0, n.offset_debug()));
    const auto tag_end = src_.find('>', start);
    const std::string key = attr;
    for (std::size_t pos = src_.find(key, start); pos != std::string_view::npos && pos < tag_end;
         pos = src_.find(key, pos + 1)) {
      const char before = pos > 0 ? src_[pos - 1] : ' ';
      std::size_t after = pos + key.size();
      while (after < src_.size() && (src_[after] == ' ' || src_[after] == '\t')) ++after;
      if ((before == ' ' || before == '\t' || before == '\n' || before == '\r') &&
          after < src_.size() && src_[after] == '=') {
        return at_offset(static_cast<std::ptrdiff_t>(pos));
      }
    }
    return at(n);
  }

  void error(location where, std::string message) {
    if (errors_.size() < errors_max) errors_.push_back({std::move(where), std::move(message)});
  }
  bool failed() const { return !errors_.empty(); }

  // Reports attributes outside `allowed` and missing `required` ones.
  void attrs(const pugi::xml_node& n, std::initializer_list<const char*> allowed,
             std::initializer_list<const char*> required = {}) {
    for (auto a : n.attributes()) {
      if (std::none_of(allowed.begin(), allowed.end(),
                       [&](const char* x) { return std::strcmp(x, a.name()) == 0; })) {
        std::string list;
        for (const char* x : allowed) list += std::string(list.empty() ? "" : ", ") + x;
        error(at(n, a.name()), "unknown attribute '" + std::string(a.name()) + "' on <" + n.name() +
                                   ">; expected one of: " + (list.empty() ? "(none)" : list));
      }
    }
    for (const char* r : required) {
      if (!n.attribute(r)) {
        error(at(n), "<" + std::string(n.name()) + "> needs attribute '" + r + "'");
      }
    }
  }

  // Reports child elements outside `allowed`, and stray text where none belongs.
  void children(const pugi::xml_node& n, std::initializer_list<const char*> allowed,
                bool text_allowed = false) {
    for (auto c : n.children()) {
      if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) {
        if (!text_allowed && !split_words(c.value()).empty()) {
          error(at(c), "unexpected text inside <" + std::string(n.name()) + ">");
        }
        continue;
      }
      if (c.type() != pugi::node_element) continue;
      if (std::none_of(allowed.begin(), allowed.end(),
                       [&](const char* x) { return std::strcmp(x, c.name()) == 0; })) {
        std::string list;
        for (const char* x : allowed) list += std::string(list.empty() ? "" : ", ") + "<" + x + ">";
        error(at(c), "unexpected element <" + std::string(c.name()) + "> inside <" + n.name() +
                         ">; expected " + (list.empty() ? "no child elements" : list));
      }
    }
  }

  std::string str(const pugi::xml_node& n, const char* name, std::string def = "") {
    auto a = n.attribute(name);
    return a ? std::string(a.value()) : def;
  }

  std::string name_attr(const pugi::xml_node& n, const char* name = "name") {
    auto a = n.attribute(name);
    if (!a) return "";
    std::string v = a.value();
    if (v.empty() || v.find_first_of(" \t\r\n") != std::string::npos) {
      error(at(n, name), "attribute '" + std::string(name) + "' must be a non-empty name " +
                             "without spaces, got '" + v + "'");
    }
    return v;
  }

  std::optional<std::uint64_t> number(const pugi::xml_node& n, const char* name,
                                      std::uint64_t max = UINT64_MAX) {
    auto a = n.attribute(name);
    if (!a) return std::nullopt;
    const std::string v = a.value();
    std::uint64_t x = 0;
    const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (ec != std::errc() || p != v.data() + v.size() || v.empty() || x > max) {
      error(at(n, name), "attribute '" + std::string(name) +
                             "': expected a whole number from 0 to " + std::to_string(max) +
                             ", got '" + v + "'");
      return std::nullopt;
    }
    return x;
  }

  std::optional<std::chrono::milliseconds> dur(const pugi::xml_node& n, const char* name) {
    auto a = n.attribute(name);
    if (!a) return std::nullopt;
    auto d = parse_duration_ms(a.value());
    if (!d) {
      error(at(n, name), "attribute '" + std::string(name) +
                             "': expected a duration such as 250ms, 30s, 5m, 2h, got '" +
                             a.value() + "'");
    }
    return d;
  }

  std::string address(const pugi::xml_node& n, const char* name, int family) {
    auto a = n.attribute(name);
    if (!a) return "";
    const auto ip = sim::parse_address(a.value());
    if (!ip || (family == 4 && ip->v6) || (family == 6 && !ip->v6)) {
      error(at(n, name), "attribute '" + std::string(name) + "': expected a numeric " +
                             (family == 4   ? "IPv4"
                              : family == 6 ? "IPv6"
                                            : "IP") +
                             " address, got '" + a.value() + "'");
    }
    return a.value();
  }

  std::string cidr(const pugi::xml_node& n, const char* name, int family = 0) {
    auto a = n.attribute(name);
    if (!a) return "";
    const auto c = sim::parse_cidr(a.value());
    if (!c || std::string_view(a.value()).find('/') == std::string_view::npos ||
        (family == 4 && c->base.v6) || (family == 6 && !c->base.v6)) {
      error(at(n, name), "attribute '" + std::string(name) + "': expected a CIDR block such as " +
                             (family == 6 ? "2001:db8::/56" : "192.168.0.0/16") + ", got '" +
                             a.value() + "'");
    }
    return a.value();
  }

  // "587", "1024-65535", "all"
  void ports(const pugi::xml_node& n, const char* name, std::uint16_t& from, std::uint16_t& to) {
    from = 0;
    to = 65535;
    auto a = n.attribute(name);
    if (!a || std::string_view(a.value()) == "all") return;
    const std::string v = a.value();
    const auto dash = v.find('-');
    auto one = [](std::string_view s, std::uint16_t& out) {
      unsigned x = 0;
      const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
      if (ec != std::errc() || p != s.data() + s.size() || s.empty() || x > 65535) return false;
      out = static_cast<std::uint16_t>(x);
      return true;
    };
    bool ok = dash == std::string::npos
                  ? one(v, from) && one(v, to)
                  : one(std::string_view(v).substr(0, dash), from) &&
                        one(std::string_view(v).substr(dash + 1), to) && from <= to;
    if (!ok) {
      error(at(n, name), "attribute '" + std::string(name) +
                             "': expected a port (587), a range (1024-65535) or 'all', got '" + v +
                             "'");
    }
  }

  std::string protocol(const pugi::xml_node& n, const char* def) {
    std::string p = str(n, "protocol", def);
    if (p != "tcp" && p != "all") {
      error(at(n, "protocol"), "attribute 'protocol': expected 'tcp' or 'all', got '" + p + "'");
    }
    return p;
  }

  std::optional<std::chrono::nanoseconds> fine_dur(const pugi::xml_node& n, const char* name) {
    auto a = n.attribute(name);
    if (!a) return std::nullopt;
    auto d = parse_duration(a.value());
    if (!d) {
      error(at(n, name), "attribute '" + std::string(name) +
                             "': expected a duration such as 100us, 2ms, 1s, got '" + a.value() +
                             "'");
    }
    return d;
  }

  sim::link_spec link(const pugi::xml_node& n, sim::link_spec def = {}) {
    if (auto d = fine_dur(n, "latency")) def.latency = *d;
    if (auto d = fine_dur(n, "jitter")) def.jitter = *d;
    if (auto a = n.attribute("bandwidth")) {
      std::string v = a.value();
      std::uint64_t scale = 1;
      for (auto [suffix, k] : {std::pair<const char*, std::uint64_t>{"Gbps", 1000000000ull},
                               {"Mbps", 1000000ull},
                               {"kbps", 1000ull},
                               {"bps", 1ull}}) {
        const std::size_t len = std::strlen(suffix);
        if (v.size() > len && v.compare(v.size() - len, len, suffix) == 0) {
          v.resize(v.size() - len);
          scale = k;
          break;
        }
      }
      std::uint64_t x = 0;
      const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
      if (ec != std::errc() || p != v.data() + v.size() || v.empty()) {
        error(at(n, "bandwidth"), std::string("attribute 'bandwidth': expected a rate such as ") +
                                      "100Mbps or 1Gbps, got '" + a.value() + "'");
      } else {
        def.bandwidth_bps = x * scale;
      }
    }
    if (auto a = n.attribute("loss")) {
      char* end = nullptr;
      const double v = std::strtod(a.value(), &end);
      if (end == a.value() || *end != '\0' || !(v >= 0 && v <= 1)) {
        error(at(n, "loss"), "attribute 'loss': expected a probability from 0 to 1, got '" +
                                 std::string(a.value()) + "'");
      } else {
        def.loss = v;
      }
    }
    return def;
  }

  // Inline text (dedented, leading newline dropped) or file="..." beside the XML.
  text_source text(const pugi::xml_node& n) {
    text_source t;
    if (auto f = n.attribute("file")) {
      if (!split_words(n.text().get()).empty()) {
        error(at(n), "<" + std::string(n.name()) + "> has both file=\"...\" and inline text; " +
                         "expected one of them");
      }
      t.path = (fs::path(base_dir_) / f.value()).string();
      std::string why;
      if (!read_file(t.path, t.text, why)) {
        error(at(n, "file"), "cannot read '" + t.path + "': " + why);
        return t;
      }
      t.where = location{t.path, 1, 1};
      t.present = true;
      return t;
    }
    pugi::xml_node body;
    for (auto c : n.children()) {
      if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) {
        body = c;
        break;
      }
    }
    if (!body) return t;
    std::string raw = body.value();
    location where = at(body);
    if (body.type() == pugi::node_cdata) where.column += 9;  // "<![CDATA["
    // Drop the rest of the opening line when it is blank.
    const auto first_nl = raw.find('\n');
    if (first_nl != std::string::npos && split_words(raw.substr(0, first_nl)).empty()) {
      raw.erase(0, first_nl + 1);
      ++where.line;
      where.column = 1;
    }
    // Common indentation of non-blank lines (main.cf treats leading space as continuation).
    std::size_t indent = std::string::npos;
    std::istringstream lines(raw);
    for (std::string line; std::getline(lines, line);) {
      const auto k = line.find_first_not_of(" \t");
      if (k == std::string::npos) continue;
      indent = std::min(indent, k);
    }
    if (indent == std::string::npos) indent = 0;
    std::string out;
    std::istringstream again(raw);
    for (std::string line; std::getline(again, line);) {
      const auto k = line.find_first_not_of(" \t");
      if (k != std::string::npos) out += line.substr(indent);
      out += '\n';
    }
    // Trailing indentation before the closing tag.
    while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') {
      out.pop_back();
    }
    if (first_nl != std::string::npos || indent > 0) where.column = 1;
    t.text = std::move(out);
    t.where = where;
    t.indent = indent;
    t.present = true;
    return t;
  }

  std::string_view src_;
  std::string file_;
  std::string base_dir_;
  std::vector<diagnostic>& errors_;
  mutable std::vector<std::size_t> line_starts_;  // offsets where lines begin; built on first use
};

struct names {
  std::map<std::string, location> subnets, route_tables, nacls, sgs, gateways, hosts;
};

void read_vpc(reader& r, const pugi::xml_node& n, sim::network_spec& net, names& seen,
              std::vector<std::pair<std::string, pugi::xml_node>>& deferred_checks) {
  r.attrs(n, {"name", "cidr", "ipv6-cidr"}, {"name", "cidr"});
  r.children(n, {"internet-gateway", "nat-gateway", "route-table", "network-acl", "security-group",
                 "subnet"});
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
      } else {
        route.target = sim::route_target::nat_gateway;
        route.target_name = target;
        bool found = false;
        for (auto g : n.children("nat-gateway")) found = found || r.str(g, "name") == target;
        if (!found) {
          r.error(r.at(e, "target"),
                  "attribute 'target': expected 'local', 'blackhole', or the name of this VPC's " +
                      std::string("internet gateway or a NAT gateway, got '") + target + "'");
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

step_kind step_of(const char* name, bool& ok) {
  ok = true;
  const std::string_view n = name;
  if (n == "send") return step_kind::send;
  if (n == "dialogue") return step_kind::dialogue;
  if (n == "load") return step_kind::load;
  if (n == "fault") return step_kind::fault;
  if (n == "wait") return step_kind::wait;
  ok = false;
  return step_kind::wait;
}

void read_scenario(reader& r, const pugi::xml_node& n, document& doc) {
  r.attrs(n, {"name", "description", "time-max"}, {"name"});
  r.children(n, {"override", "send", "dialogue", "load", "fault", "wait", "expect-maillog",
                 "expect-maillog-sequence", "expect-mailbox", "expect-queue", "expect-duration",
                 "expect-load"});
  scenario sc;
  sc.name = r.name_attr(n);
  sc.description = r.str(n, "description");
  sc.where = r.at(n);
  if (auto d = r.dur(n, "time-max")) sc.time_max = *d;
  for (const auto& other : doc.scenarios) {
    if (other.name == sc.name) {
      r.error(r.at(n, "name"),
              "scenario '" + sc.name + "' is already defined at " + other.where.to_string());
    }
  }
  std::set<std::string> step_names;
  for (auto o : n.children("override")) {
    r.attrs(o, {"host"}, {"host"});
    r.children(o, {"main-cf", "master-cf", "script"});
    override_spec ov;
    ov.where = r.at(o);
    ov.host = r.str(o, "host");
    const host* h = doc.find_host(ov.host);
    if (!ov.host.empty() && !h) {
      r.error(r.at(o, "host"), "attribute 'host': no <host name=\"" + ov.host + "\">");
    }
    for (auto [tag, dst] : {std::pair<const char*, text_source*>{"main-cf", &ov.main_cf_append},
                            {"master-cf", &ov.master_cf},
                            {"script", &ov.mx_script}}) {
      for (auto t : o.children(tag)) {
        r.attrs(t, {"file"});
        r.children(t, {}, true);
        *dst = r.text(t);
        const bool relay_part = std::strcmp(tag, "script") != 0;
        if (h && relay_part && !h->relay) {
          r.error(r.at(t), "<" + std::string(tag) + "> overrides a relay, but host '" + ov.host +
                               "' runs no <relay>");
        }
        if (h && !relay_part && h->mx.empty()) {
          r.error(r.at(t), "<script> overrides an MX, but host '" + ov.host + "' runs no <mx>");
        }
      }
    }
    sc.overrides.push_back(std::move(ov));
  }
  for (auto e : n.children()) {
    if (e.type() != pugi::node_element) continue;
    if (std::strcmp(e.name(), "override") == 0) continue;
    bool is_step = false;
    const step_kind kind = step_of(e.name(), is_step);
    if (is_step) {
      step s;
      s.kind = kind;
      s.where = r.at(e);
      s.name = r.name_attr(e);
      if (!s.name.empty() && !step_names.insert(s.name).second) {
        r.error(r.at(e, "name"), "step name '" + s.name + "' is used twice in this scenario");
      }
      if (auto d = r.dur(e, "at")) s.at = *d;
      auto need_host = [&](const std::string& h, const char* attr) {
        if (!h.empty() && !doc.find_host(h)) {
          r.error(r.at(e, attr), "attribute '" + std::string(attr) + "': no <host name=\"" + h +
                                     "\"> in this topology");
        }
      };
      switch (kind) {
        case step_kind::send: {
          r.attrs(e,
                  {"name", "at", "host", "server", "port", "from", "to", "subject", "body", "auth",
                   "user", "password", "expect", "expect-reply"},
                  {"host", "server", "from", "to"});
          r.children(e, {});
          auto& m = s.send;
          m.host = r.str(e, "host");
          need_host(m.host, "host");
          m.server = r.address(e, "server", 0);
          m.port = static_cast<std::uint16_t>(r.number(e, "port", 65535).value_or(25));
          m.from = r.str(e, "from");
          m.to = split_words(r.str(e, "to"));
          m.subject = r.str(e, "subject");
          m.body = r.str(e, "body");
          m.auth = r.str(e, "auth");
          if (!m.auth.empty() && m.auth != "plain" && m.auth != "login") {
            r.error(r.at(e, "auth"),
                    "attribute 'auth': expected 'plain' or 'login', got '" + m.auth + "'");
          }
          m.user = r.str(e, "user");
          m.password = r.str(e, "password");
          m.expect = r.str(e, "expect", "sent");
          static const std::set<std::string> outcomes = {"sent", "rejected", "timeout",
                                                         "unreachable", "refused"};
          if (!outcomes.count(m.expect)) {
            r.error(r.at(e, "expect"), "attribute 'expect': expected one of sent, rejected, " +
                                           std::string("timeout, unreachable, refused, got '") +
                                           m.expect + "'");
          }
          m.expect_reply = r.str(e, "expect-reply");
          break;
        }
        case step_kind::dialogue:
          r.attrs(e, {"name", "at", "host", "server", "port", "file"}, {"host", "server"});
          r.children(e, {}, true);
          s.dialogue_host = r.str(e, "host");
          need_host(s.dialogue_host, "host");
          s.dialogue_server = r.address(e, "server", 0);
          s.dialogue_port = static_cast<std::uint16_t>(r.number(e, "port", 65535).value_or(25));
          s.dialogue = r.text(e);
          if (!s.dialogue.present) {
            r.error(r.at(e), "<dialogue> needs a transcript: inline text or file=\"...\"");
          }
          break;
        case step_kind::load: {
          r.attrs(e,
                  {"name", "at", "host", "server", "port", "messages", "concurrency", "from", "to",
                   "user", "password", "auth", "pipelining", "message-bytes"},
                  {"host", "server"});
          r.children(e, {});
          auto& l = s.load;
          l.host = r.str(e, "host");
          need_host(l.host, "host");
          l.server = r.address(e, "server", 0);
          l.port = static_cast<std::uint16_t>(r.number(e, "port", 65535).value_or(25));
          l.messages = r.number(e, "messages", 10000000).value_or(1);
          l.concurrency = r.number(e, "concurrency", 10000).value_or(1);
          l.from = r.str(e, "from", "load@example.com");
          l.to = r.str(e, "to", "sink@example.net");
          l.user = r.str(e, "user");
          l.password = r.str(e, "password");
          l.auth = r.str(e, "auth");
          if (!l.auth.empty() && l.auth != "plain" && l.auth != "login") {
            r.error(r.at(e, "auth"),
                    "attribute 'auth': expected 'plain' or 'login', got '" + l.auth + "'");
          }
          if (!l.auth.empty() && l.user.empty()) {
            r.error(r.at(e, "auth"), "attribute 'auth' needs attribute 'user'");
          }
          const std::string pipe = r.str(e, "pipelining", "false");
          if (pipe != "true" && pipe != "false") {
            r.error(r.at(e, "pipelining"),
                    "attribute 'pipelining': expected 'true' or 'false', got '" + pipe + "'");
          }
          l.pipelining = pipe == "true";
          l.message_bytes = r.number(e, "message-bytes", 64u << 20).value_or(0);
          break;
        }
        case step_kind::fault: {
          r.attrs(e,
                  {"name", "at", "kind", "target", "a", "b", "direction", "protocol", "ports",
                   "cidr", "group", "file"},
                  {"kind"});
          r.children(e, {}, true);
          auto& f = s.fault;
          const std::string k = r.str(e, "kind");
          static const std::map<std::string, fault_kind> kinds = {
              {"link-down", fault_kind::link_down},
              {"link-up", fault_kind::link_up},
              {"crash", fault_kind::crash},
              {"restart", fault_kind::restart},
              {"partition", fault_kind::partition},
              {"heal", fault_kind::heal},
              {"sg-add", fault_kind::sg_add},
              {"sg-remove", fault_kind::sg_remove},
              {"dns", fault_kind::dns}};
          if (auto it = kinds.find(k); it != kinds.end()) {
            f.kind = it->second;
          } else {
            r.error(r.at(e, "kind"), "attribute 'kind': expected one of link-down, link-up, " +
                                         std::string("crash, restart, partition, heal, sg-add, ") +
                                         "sg-remove, dns, got '" + k + "'");
          }
          f.target = r.str(e, "target");
          f.a = split_words(r.str(e, "a"));
          f.b = split_words(r.str(e, "b"));
          for (const auto* side : {&f.a, &f.b}) {
            for (const auto& h : *side) {
              if (!doc.find_host(h)) {
                r.error(r.at(e, side == &f.a ? "a" : "b"), "no <host name=\"" + h + "\">");
              }
            }
          }
          const bool needs_target = f.kind != fault_kind::partition && f.kind != fault_kind::heal;
          if (needs_target && f.target.empty()) {
            r.error(r.at(e), "<fault kind=\"" + k + "\"> needs attribute 'target'");
          }
          if (f.kind == fault_kind::partition && (f.a.empty() || f.b.empty())) {
            r.error(r.at(e), "<fault kind=\"partition\"> needs host lists 'a' and 'b'");
          }
          if ((f.kind == fault_kind::crash || f.kind == fault_kind::restart) && !f.target.empty()) {
            need_host(f.target, "target");
          }
          const std::string dir = r.str(e, "direction", "ingress");
          if (dir != "ingress" && dir != "egress") {
            r.error(r.at(e, "direction"), "attribute 'direction': expected 'ingress' or " +
                                              std::string("'egress', got '") + dir + "'");
          }
          f.ingress = dir == "ingress";
          f.rule.protocol = r.protocol(e, "tcp");
          r.ports(e, "ports", f.rule.port_from, f.rule.port_to);
          f.rule.cidr = r.cidr(e, "cidr");
          f.rule.group = r.str(e, "group");
          if ((f.kind == fault_kind::sg_add || f.kind == fault_kind::sg_remove) &&
              f.rule.cidr.empty() == f.rule.group.empty()) {
            r.error(r.at(e), "<fault kind=\"" + k + "\"> needs exactly one of 'cidr' and 'group'");
          }
          if (f.kind == fault_kind::dns) f.records = r.text(e);
          break;
        }
        case step_kind::wait: {
          r.attrs(e, {"name", "at", "for", "until"});
          r.children(e, {});
          if (auto d = r.dur(e, "for")) s.wait_for = *d;
          s.wait_until = r.str(e, "until");
          if (!s.wait_until.empty() && s.wait_until != "queue-empty" &&
              s.wait_until != "loads-done") {
            r.error(r.at(e, "until"), "attribute 'until': expected 'queue-empty' or " +
                                          std::string("'loads-done', got '") + s.wait_until + "'");
          }
          if (!e.attribute("for") && s.wait_until.empty()) {
            r.error(r.at(e), "<wait> needs 'for' (a duration) or until=\"queue-empty\" or " +
                                 std::string("until=\"loads-done\""));
          }
          break;
        }
      }
      sc.steps.push_back(std::move(s));
      continue;
    }
    expectation x;
    x.where = r.at(e);
    x.after_step = sc.steps.size();
    const std::string_view en = e.name();
    if (en == "expect-maillog") {
      r.attrs(e, {"pattern", "count", "absent"}, {"pattern"});
      r.children(e, {});
      x.kind = expect_kind::maillog;
      x.patterns.push_back(r.str(e, "pattern"));
      x.count = r.number(e, "count", 1000000);
      x.absent = r.str(e, "absent") == "true";
    } else if (en == "expect-maillog-sequence") {
      r.attrs(e, {});
      r.children(e, {"line"});
      x.kind = expect_kind::maillog_sequence;
      for (auto l : e.children("line")) {
        r.attrs(l, {});
        r.children(l, {}, true);
        x.patterns.push_back(l.text().get());
      }
      if (x.patterns.empty()) {
        r.error(r.at(e), "<expect-maillog-sequence> needs at least one <line>");
      }
    } else if (en == "expect-mailbox") {
      r.attrs(e, {"host", "recipient", "contains", "count"}, {"host"});
      r.children(e, {});
      x.kind = expect_kind::mailbox;
      x.host = r.str(e, "host");
      if (!x.host.empty() && !doc.find_host(x.host)) {
        r.error(r.at(e, "host"), "attribute 'host': no <host name=\"" + x.host + "\">");
      }
      x.recipient = r.str(e, "recipient");
      x.contains = r.str(e, "contains");
      x.count = r.number(e, "count", 1000000);
    } else if (en == "expect-queue") {
      r.attrs(e, {"incoming", "active", "deferred"});
      r.children(e, {});
      x.kind = expect_kind::queue;
      x.incoming = r.number(e, "incoming", 1000000);
      x.active = r.number(e, "active", 1000000);
      x.deferred = r.number(e, "deferred", 1000000);
    } else if (en == "expect-duration") {
      r.attrs(e, {"step", "min", "max"}, {"step"});
      r.children(e, {});
      x.kind = expect_kind::duration;
      x.step = r.str(e, "step");
      if (!step_names.count(x.step)) {
        r.error(r.at(e, "step"),
                "attribute 'step': no step named '" + x.step + "' before this expectation");
      }
      x.min = r.dur(e, "min");
      x.max = r.dur(e, "max");
    } else if (en == "expect-load") {
      r.attrs(e, {"step", "accepted", "failed", "accepted-min", "accepted-max"}, {"step"});
      r.children(e, {});
      x.kind = expect_kind::load;
      x.step = r.str(e, "step");
      bool is_load = false;
      for (const auto& st : sc.steps)
        is_load = is_load || (st.name == x.step && st.kind == step_kind::load);
      if (!is_load) {
        r.error(r.at(e, "step"),
                "attribute 'step': no <load> step named '" + x.step + "' before this expectation");
      }
      x.accepted = r.number(e, "accepted", 10000000);
      x.failed = r.number(e, "failed", 10000000);
      x.accepted_min = r.number(e, "accepted-min", 10000000);
      x.accepted_max = r.number(e, "accepted-max", 10000000);
    } else {
      continue;  // reported by children()
    }
    sc.expectations.push_back(std::move(x));
  }
  doc.scenarios.push_back(std::move(sc));
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
  r.children(root, {"description", "internet", "vpc", "dns", "host", "scenario"});
  document doc;
  doc.file = file;
  doc.name = r.str(root, "name");
  doc.seed = r.number(root, "seed");
  if (auto a = root.attribute("epoch")) {
    // 2020-10-21T02:21:14Z
    std::tm tm{};
    std::istringstream in(a.value());
    in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%SZ");
    if (in.fail() || in.peek() != EOF) {
      r.error(r.at(root, "epoch"), "attribute 'epoch': expected UTC time like " +
                                       std::string("2020-10-21T02:21:14Z, got '") + a.value() +
                                       "'");
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
    r.children(h, {"relay", "mx", "client"});
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
    out.net.subnet = r.str(h, "subnet");
    if (!out.net.subnet.empty()) checks.emplace_back("subnet", h);
    out.net.ipv4 = r.address(h, "ipv4", 4);
    out.net.public_ipv4 = r.address(h, "public-ipv4", 4);
    out.net.ipv6 = r.address(h, "ipv6", 6);
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
    for (auto rl : h.children("relay")) {
      r.attrs(rl, {"myhostname"});
      r.children(rl, {"main-cf", "master-cf", "smtpd-conf", "sasl-user"});
      if (out.relay) r.error(r.at(rl), "a host runs at most one <relay>");
      relay_spec rs;
      rs.where = r.at(rl);
      rs.myhostname = r.str(rl, "myhostname");
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
    for (auto m : h.children("mx")) {
      r.attrs(m, {"port"});
      r.children(m, {"script"});
      mx_spec mx;
      mx.where = r.at(m);
      mx.port = static_cast<std::uint16_t>(r.number(m, "port", 65535).value_or(25));
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
    doc.network.hosts.push_back(out.net);
    doc.hosts.push_back(std::move(out));
  }
  // References, now that every name is known.
  for (const auto& [kind, node] : checks) {
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
