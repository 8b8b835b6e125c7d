// Internal to harness/topology: reading the topology XML with locations (file:line:column)
// for every diagnostic. With the .cpp files of this folder, the only code that includes
// pugixml.
#pragma once

#include "harness/topology/topology.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::topology::detail {

namespace fs = std::filesystem;

inline bool read_file(const std::string& path, std::string& out, std::string& why) {
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

inline std::vector<std::string> split_words(std::string_view s) {
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

  /// An attribute whose value is one of `allowed` (`def` when absent); an error naming them
  /// otherwise.
  std::string keyword(const pugi::xml_node& n, const char* name,
                      std::initializer_list<const char*> allowed, std::string def = "") {
    auto a = n.attribute(name);
    if (!a) return def;
    const std::string v = a.value();
    std::string list;
    for (const char* x : allowed) {
      if (v == x) return v;
      list += std::string(list.empty() ? "'" : ", '") + x + "'";
    }
    error(at(n, name),
          "attribute '" + std::string(name) + "': expected one of " + list + ", got '" + v + "'");
    return def;
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
  // What the root's <import> brought in: a scenario's own <import> replaces these.
  std::set<std::string> imported_vpcs_, imported_hosts_;
};

/// Reads one <scenario> into doc.scenarios (scenario_reader.cpp).
void read_scenario(reader& r, const pugi::xml_node& n, document& doc);

/// Imports the network of an <import cfn="..."> element (import_reader.cpp); the templates'
/// errors are reported at their own file:line:column. nullopt after an error.
std::optional<sim::network_spec> read_import(reader& r, const pugi::xml_node& n);

}  // namespace relaylab::topology::detail
