// Postfix lookup tables read from their source text. See maps.hpp for the contract.
#include "relay/maps/maps.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <utility>

namespace relaylab::maps {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// Returns the text between a leading '{' and its matching '}' (trimmed), or nullopt when the
// braces do not balance or text follows the closing brace.
std::optional<std::string_view> brace_contents(std::string_view s) {
  s = trim(s);
  if (s.empty() || s.front() != '{') return std::nullopt;
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) {
      if (!trim(s.substr(i + 1)).empty()) return std::nullopt;
      return trim(s.substr(1, i - 1));
    }
  }
  return std::nullopt;
}

// Splits "a, b { c d }, e" into top-level items: bare words, or "{...}" groups (braces kept).
// Returns false on unbalanced braces.
bool split_items(std::string_view s, std::vector<std::string_view>& out) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (is_space(s[i]) || s[i] == ',') {
      ++i;
      continue;
    }
    std::size_t start = i;
    if (s[i] == '{') {
      int depth = 0;
      for (; i < s.size(); ++i) {
        if (s[i] == '{') ++depth;
        if (s[i] == '}' && --depth == 0) break;
      }
      if (i == s.size()) return false;
      ++i;
    } else {
      while (i < s.size() && !is_space(s[i]) && s[i] != ',') {
        if (s[i] == '{' || s[i] == '}') return false;
        ++i;
      }
    }
    out.push_back(s.substr(start, i - start));
  }
  return true;
}

struct logical_line {
  int line = 0;
  std::string text;
};

// Postfix readllines(): '#' comment lines and blank lines are skipped, a line that starts with
// whitespace continues the previous logical line.
std::vector<logical_line> logical_lines(std::string_view text) {
  std::vector<logical_line> out;
  int number = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    ++number;
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#') {
      if (end == text.size()) break;
      continue;
    }
    if (is_space(line.front()) && !out.empty()) {
      out.back().text += line;
    } else {
      out.push_back({number, std::string(line)});
    }
    if (end == text.size()) break;
  }
  return out;
}

bool read_file(const std::string& path, std::size_t bytes_max, std::string& text,
               std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot open table source: " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  text = ss.str();
  if (text.size() > bytes_max) {
    error = path + ": table source larger than " + std::to_string(bytes_max) + " bytes";
    return false;
  }
  return true;
}

void warn(const open_options& o, std::string msg) {
  if (o.warnings) o.warnings->push_back(std::move(msg));
}

class string_table : public table {
 public:
  explicit string_table(std::string name) : name_(std::move(name)) {}
  std::optional<std::string> find(std::string_view key) const override {
    auto it = entries_.find(fold_case(key));
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }
  const std::string& name() const noexcept override { return name_; }
  // Postfix keeps the first of duplicate keys (and warns).
  bool add(std::string key, std::string value) {
    return entries_.emplace(fold_case(key), std::move(value)).second;
  }
  std::size_t size() const { return entries_.size(); }
  std::vector<std::string> keys(std::size_t count_max) const override {
    std::vector<std::string> out;
    for (const auto& [key, value] : entries_) {
      if (out.size() >= count_max) break;
      out.push_back(key);
    }
    return out;
  }

 private:
  std::string name_;
  std::map<std::string, std::string, std::less<>> entries_;
};

class static_table : public table {
 public:
  static_table(std::string name, std::string value)
      : name_(std::move(name)), value_(std::move(value)) {}
  std::optional<std::string> find(std::string_view) const override { return value_; }
  const std::string& name() const noexcept override { return name_; }

 private:
  std::string name_;
  std::string value_;
};

class unix_table : public table {
 public:
  unix_table(std::string name, bool group) : name_(std::move(name)), group_(group) {}
  std::optional<std::string> find(std::string_view key) const override {
    std::string k = fold_case(key);
    std::array<char, 16384> buf{};
    if (!group_) {
      struct passwd pw {};
      struct passwd* res = nullptr;
      if (getpwnam_r(k.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || res == nullptr) {
        return std::nullopt;
      }
      return std::string(pw.pw_name) + ":" + pw.pw_passwd + ":" + std::to_string(pw.pw_uid) + ":" +
             std::to_string(pw.pw_gid) + ":" + pw.pw_gecos + ":" + pw.pw_dir + ":" + pw.pw_shell;
    }
    struct group gr {};
    struct group* res = nullptr;
    if (getgrnam_r(k.c_str(), &gr, buf.data(), buf.size(), &res) != 0 || res == nullptr) {
      return std::nullopt;
    }
    std::string out =
        std::string(gr.gr_name) + ":" + gr.gr_passwd + ":" + std::to_string(gr.gr_gid) + ":";
    for (char** m = gr.gr_mem; m && *m; ++m) {
      if (m != gr.gr_mem) out += ',';
      out += *m;
    }
    return out;
  }
  const std::string& name() const noexcept override { return name_; }

 private:
  std::string name_;
  bool group_;
};

// A parsed IPv4 or IPv6 address in network byte order.
struct ip_address {
  int family = 0;  // AF_INET or AF_INET6
  std::array<unsigned char, 16> bytes{};
  int bits() const { return family == AF_INET ? 32 : 128; }
};

std::optional<ip_address> parse_ip(std::string_view text) {
  if (text.size() > 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.size() > 5 && fold_case(text.substr(0, 5)) == "ipv6:") text.remove_prefix(5);
  if (text.empty() || text.size() > 63) return std::nullopt;
  std::string s(text);
  ip_address a;
  if (s.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
    a.family = AF_INET6;
  } else {
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
    a.family = AF_INET;
  }
  return a;
}

bool prefix_match(const ip_address& net, int prefix, const ip_address& a) {
  if (net.family != a.family) return false;
  for (int bit = 0; bit < prefix; ++bit) {
    int byte = bit / 8;
    int mask = 0x80 >> (bit % 8);
    if ((net.bytes[byte] & mask) != (a.bytes[byte] & mask)) return false;
  }
  return true;
}

bool host_bits_clear(const ip_address& net, int prefix) {
  for (int bit = prefix; bit < net.bits(); ++bit) {
    if (net.bytes[bit / 8] & (0x80 >> (bit % 8))) return false;
  }
  return true;
}

class cidr_table : public table {
 public:
  struct rule {
    enum class kind { match, if_start, endif } type = kind::match;
    bool negate = false;
    ip_address net;
    int prefix = 0;
    std::string value;
    std::size_t endif_index = 0;  // for if_start: the matching endif
  };
  cidr_table(std::string name, std::vector<rule> rules)
      : name_(std::move(name)), rules_(std::move(rules)) {}

  std::optional<std::string> find(std::string_view key) const override {
    auto addr = parse_ip(key);
    if (!addr) return std::nullopt;
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      const rule& r = rules_[i];
      if (r.type == rule::kind::endif) continue;
      bool m = prefix_match(r.net, r.prefix, *addr) != r.negate;
      // A pattern of the other address family never matches, negated or not (dict_cidr).
      if (r.net.family != addr->family) m = false;
      if (r.type == rule::kind::if_start) {
        if (!m) i = r.endif_index;
        continue;
      }
      if (m) return r.value;
    }
    return std::nullopt;
  }
  const std::string& name() const noexcept override { return name_; }
  bool fixed_string() const noexcept override { return false; }

 private:
  std::string name_;
  std::vector<rule> rules_;
};

// Parses "pattern" or "!pattern" of a cidr rule into r. Returns an error text or "".
std::string parse_cidr_pattern(std::string_view pat, cidr_table::rule& r) {
  if (!pat.empty() && pat.front() == '!') {
    r.negate = true;
    pat.remove_prefix(1);
  }
  std::string_view addr = pat;
  std::optional<int> prefix;
  if (auto slash = pat.rfind('/'); slash != std::string_view::npos) {
    addr = pat.substr(0, slash);
    std::string_view len = pat.substr(slash + 1);
    if (len.empty() || len.size() > 3) return "bad prefix length in \"" + std::string(pat) + "\"";
    int n = 0;
    for (char c : len) {
      if (c < '0' || c > '9') return "bad prefix length in \"" + std::string(pat) + "\"";
      n = n * 10 + (c - '0');
    }
    prefix = n;
  }
  auto ip = parse_ip(addr);
  if (!ip) {
    return "expected network_address or network_address/prefix_length, got \"" + std::string(pat) +
           "\"";
  }
  r.net = *ip;
  r.prefix = prefix.value_or(ip->bits());
  if (r.prefix > ip->bits()) return "bad prefix length in \"" + std::string(pat) + "\"";
  if (!host_bits_clear(r.net, r.prefix)) {
    return "non-null host address bits in \"" + std::string(pat) +
           "\", perhaps you should use a network address with the host bits cleared";
  }
  return "";
}

std::unique_ptr<table> open_cidr(const std::string& spec, std::string_view source,
                                 const std::string& where, std::string& error,
                                 const open_options& o) {
  std::vector<cidr_table::rule> rules;
  std::vector<std::size_t> open_ifs;
  for (const auto& ll : logical_lines(source)) {
    std::string at = where + ":" + std::to_string(ll.line) + ": ";
    std::string_view t = trim(ll.text);
    std::size_t sp = 0;
    while (sp < t.size() && !is_space(t[sp])) ++sp;
    std::string_view first = t.substr(0, sp);
    std::string_view rest = trim(t.substr(sp));
    cidr_table::rule r;
    if (fold_case(first) == "endif") {
      if (open_ifs.empty()) {
        error = at + "endif without matching if";
        return nullptr;
      }
      r.type = cidr_table::rule::kind::endif;
      rules[open_ifs.back()].endif_index = rules.size();
      open_ifs.pop_back();
      rules.push_back(std::move(r));
      continue;
    }
    if (fold_case(first) == "if") {
      r.type = cidr_table::rule::kind::if_start;
      if (std::string e = parse_cidr_pattern(rest, r); !e.empty()) {
        error = at + e;
        return nullptr;
      }
      open_ifs.push_back(rules.size());
      rules.push_back(std::move(r));
      continue;
    }
    if (rest.empty()) {
      error = at + "expected format: pattern whitespace result";
      return nullptr;
    }
    if (std::string e = parse_cidr_pattern(first, r); !e.empty()) {
      error = at + e;
      return nullptr;
    }
    r.value = std::string(rest);
    rules.push_back(std::move(r));
    if (rules.size() > o.entries_max) {
      error = at + "more than " + std::to_string(o.entries_max) + " rules";
      return nullptr;
    }
  }
  if (!open_ifs.empty()) {
    error = where + ": missing endif for the if at rule " + std::to_string(open_ifs.back() + 1);
    return nullptr;
  }
  return std::make_unique<cidr_table>(spec, std::move(rules));
}

// postmap(1) source: "key whitespace value"; aliases(5) source: "name: value".
std::unique_ptr<table> open_source(const std::string& spec, const std::string& path, bool aliases,
                                   std::string& error, const open_options& o) {
  std::string text;
  if (!read_file(path, o.file_bytes_max, text, error)) return nullptr;
  auto t = std::make_unique<string_table>(spec);
  for (const auto& ll : logical_lines(text)) {
    std::string at = path + ", line " + std::to_string(ll.line) + ": ";
    std::string_view line = trim(ll.text);
    std::string key;
    std::string_view value;
    if (aliases) {
      std::size_t colon;
      if (line.front() == '"') {
        auto close = line.find('"', 1);
        if (close == std::string_view::npos) {
          warn(o, at + "unbalanced quote; need name:value pair");
          continue;
        }
        key = std::string(line.substr(1, close - 1));
        colon = line.find_first_not_of(" \t", close + 1);
        if (colon == std::string_view::npos || line[colon] != ':') {
          warn(o, at + "need name:value pair");
          continue;
        }
      } else {
        colon = line.find(':');
        if (colon == std::string_view::npos) {
          warn(o, at + "need name:value pair");
          continue;
        }
        key = std::string(trim(line.substr(0, colon)));
      }
      value = trim(line.substr(colon + 1));
      if (key.empty() || value.empty()) {
        warn(o, at + "need name:value pair");
        continue;
      }
    } else {
      std::size_t sp = 0;
      while (sp < line.size() && !is_space(line[sp])) ++sp;
      key = std::string(line.substr(0, sp));
      value = trim(line.substr(sp));
      if (value.empty()) {
        warn(o, at + "expected format: key whitespace value");
        continue;
      }
      if (key.back() == ':') {
        warn(o, at + "record is in \"key: value\" format; is this an alias file?");
      }
    }
    if (!t->add(key, std::string(value))) {
      warn(o, at + "duplicate entry: \"" + fold_case(key) + "\"");
    }
    if (t->size() > o.entries_max) {
      error = at + "more than " + std::to_string(o.entries_max) + " entries";
      return nullptr;
    }
  }
  return t;
}

std::unique_ptr<table> open_inline(const std::string& spec, std::string_view body,
                                   std::string& error) {
  auto contents = brace_contents(body);
  if (!contents) {
    error = spec + ": expected inline:{ key=value, { key = text } ... } with balanced braces";
    return nullptr;
  }
  std::vector<std::string_view> items;
  if (!split_items(*contents, items)) {
    error = spec + ": unbalanced braces in inline table";
    return nullptr;
  }
  auto t = std::make_unique<string_table>(spec);
  for (std::string_view item : items) {
    std::string_view kv = item;
    if (item.front() == '{') kv = *brace_contents(item);
    auto eq = kv.find('=');
    std::string_view key = eq == std::string_view::npos ? kv : trim(kv.substr(0, eq));
    if (eq == std::string_view::npos || key.empty()) {
      error = spec + ": expected \"key=value\" or \"{ key = value }\", got \"" + std::string(item) +
              "\"";
      return nullptr;
    }
    t->add(std::string(key), std::string(trim(kv.substr(eq + 1))));
  }
  return t;
}

bool is_source_db_type(std::string_view type) {
  return type == "hash" || type == "lmdb" || type == "btree" || type == "dbm" || type == "sdbm";
}

}  // namespace

std::string fold_case(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::unique_ptr<table> open(std::string_view spec, std::string& error) {
  return open(spec, error, open_options{});
}

std::unique_ptr<table> open(std::string_view spec_in, std::string& error, const open_options& o) {
  std::string spec(trim(spec_in));
  std::string_view rest = spec;
  // proxymap only relays lookups to the same table: strip the prefix.
  for (int i = 0; i < 4 && (starts_with(rest, "proxy:") || starts_with(rest, "proxywrite:")); ++i) {
    rest.remove_prefix(rest.find(':') + 1);
  }
  auto colon = rest.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    error = "\"" + spec + "\": expected type:name";
    return nullptr;
  }
  std::string type = fold_case(rest.substr(0, colon));
  std::string_view name = rest.substr(colon + 1);
  if (type == "inline") return open_inline(spec, name, error);
  if (type == "static") {
    if (!name.empty() && name.front() == '{') {
      auto c = brace_contents(name);
      if (!c) {
        error = spec + ": expected static:{ text } with balanced braces";
        return nullptr;
      }
      return std::make_unique<static_table>(spec, std::string(*c));
    }
    return std::make_unique<static_table>(spec, std::string(name));
  }
  if (type == "unix") {
    if (name == "passwd.byname") return std::make_unique<unix_table>(spec, false);
    if (name == "group.byname") return std::make_unique<unix_table>(spec, true);
    error = spec + ": expected unix:passwd.byname or unix:group.byname";
    return nullptr;
  }
  if (name.empty()) {
    error = spec + ": expected " + type + ":/path/name";
    return nullptr;
  }
  if (type == "cidr") {
    if (name.front() == '{') {
      auto c = brace_contents(name);
      std::vector<std::string_view> items;
      if (!c || !split_items(*c, items)) {
        error = spec + ": expected cidr:{ { rule }, { rule } ... } with balanced braces";
        return nullptr;
      }
      std::string text;
      for (auto item : items) {
        text += item.front() == '{' ? std::string(*brace_contents(item)) : std::string(item);
        text += '\n';
      }
      return open_cidr(spec, text, spec, error, o);
    }
    std::string text;
    if (!read_file(std::string(name), o.file_bytes_max, text, error)) return nullptr;
    return open_cidr(spec, text, std::string(name), error, o);
  }
  if (type == "texthash") return open_source(spec, std::string(name), false, error, o);
  if (is_source_db_type(type)) {
    bool aliases = o.aliases || name == "aliases" ||
                   (name.size() >= 8 && name.substr(name.size() - 8) == "/aliases");
    return open_source(spec, std::string(name), aliases, error, o);
  }
  error = spec + ": unsupported table type \"" + type +
          "\" (expected inline, texthash, cidr, static, unix, proxy, hash, lmdb, btree)";
  return nullptr;
}

}  // namespace relaylab::maps
