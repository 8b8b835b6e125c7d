// Postfix parameters: built-in defaults, lazy $name expansion, typed getters, validation.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <climits>
#include <cstring>
#include <tuple>
#include <unordered_map>

#include "relay/config/config.hpp"
#include "relay/config/text.hpp"

namespace relaylab::config {
namespace {

struct default_entry {
  std::string_view name;
  std::string_view value;
};

// `postconf -d` of Postfix 3.7.11, sorted by name; regenerate with relay/config/gen-defaults.
constexpr default_entry defaults_table[] = {
#include "relay/config/defaults.inc"
};
constexpr std::string_view computed_marker = "@computed@";

const default_entry* find_default(std::string_view name) {
  auto it = std::lower_bound(std::begin(defaults_table), std::end(defaults_table), name,
                             [](const default_entry& e, std::string_view n) { return e.name < n; });
  if (it == std::end(defaults_table) || it->name != name) return nullptr;
  return it;
}

// Parameters whose default looks numeric or boolean but that Postfix reads as strings.
constexpr std::array<std::string_view, 6> string_typed = {
    "compatibility_level", "mail_release_date",         "process_id",
    "lmtp_tcp_port",       "smtpd_forbid_bare_newline", "mail_version"};

// Values that Postfix daemons load without $name expansion (CONFIG_RAW_TABLE entries), so
// postconf does not scan them for parameter references.
constexpr std::array<std::string_view, 10> raw_parameters = {"command_execution_directory",
                                                             "default_rbl_reply",
                                                             "forward_path",
                                                             "luser_relay",
                                                             "mailbox_command",
                                                             "postscreen_command_time_limit",
                                                             "postscreen_expansion_filter",
                                                             "postscreen_reject_footer",
                                                             "smtpd_expansion_filter",
                                                             "smtpd_reject_footer"};

// Suffixes that postconf appends to master.cf service names (postconf_service.c).
constexpr std::array<std::pair<std::string_view, std::string_view>, 17> service_suffixes = {{
    {"_time_limit", "command_time_limit"},  // pipe and spawn only
    {"_recipient_limit", "default_recipient_limit"},
    {"_extra_recipient_limit", "default_extra_recipient_limit"},
    {"_recipient_refill_limit", "default_recipient_refill_limit"},
    {"_recipient_refill_delay", "default_recipient_refill_delay"},
    {"_delivery_slot_cost", "default_delivery_slot_cost"},
    {"_delivery_slot_loan", "default_delivery_slot_loan"},
    {"_delivery_slot_discount", "default_delivery_slot_discount"},
    {"_minimum_delivery_slots", "default_minimum_delivery_slots"},
    {"_initial_destination_concurrency", "initial_destination_concurrency"},
    {"_destination_concurrency_limit", "default_destination_concurrency_limit"},
    {"_destination_recipient_limit", "default_destination_recipient_limit"},
    {"_destination_concurrency_positive_feedback",
     "default_destination_concurrency_positive_feedback"},
    {"_destination_concurrency_negative_feedback",
     "default_destination_concurrency_negative_feedback"},
    {"_destination_concurrency_failed_cohort_limit",
     "default_destination_concurrency_failed_cohort_limit"},
    {"_destination_rate_delay", "default_destination_rate_delay"},
    {"_transport_rate_delay", "default_transport_rate_delay"},
}};

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

bool valid_level(std::string_view s) {
  int parts = 0;
  for (;;) {
    auto dot = s.find('.');
    if (!all_digits(s.substr(0, dot))) return false;
    if (++parts > 3) return false;
    if (dot == std::string_view::npos) return true;
    s.remove_prefix(dot + 1);
  }
}

std::string quote_excerpt(std::string_view s) {
  constexpr std::size_t excerpt_bytes_max = 60;
  std::string out = "\"";
  out += printable(s.substr(0, excerpt_bytes_max));
  if (s.size() > excerpt_bytes_max) out += "...";
  out += '"';
  return out;
}

// The work budget of the outermost expansion running on this thread. The computed defaults an
// expansion reads (mynetworks, myhostname, ...) expand with a state of their own and charge
// this budget, so nesting them cannot multiply it.
thread_local std::size_t* outer_steps = nullptr;

// The computed defaults (myhostname, mydomain, mynetworks) that the outermost expansion on this
// thread has worked out. Every $mynetworks in one expansion reads the same settings, so it is
// computed once: recomputing it per reference made a fuzzed main.cf of 2,652 bytes take 1.7 s
// under ASan. The cache lives no longer than the outermost expansion, so a later set() cannot
// be missed.
using computed_defaults = std::map<std::string, std::string, std::less<>>;
thread_local computed_defaults* outer_computed = nullptr;

// One expansion: recursion depth, work budget and the first error.
struct expand_state {
  int depth = 0;
  std::size_t own_steps = 0;
  std::size_t* steps = outer_steps != nullptr ? outer_steps : &own_steps;
  computed_defaults own_computed;
  std::string error;
  // Real main.cf expansions take well under a thousand steps; a fuzzed config with nested
  // ${{$x} == {...} ? {...} : {...}} conditionals took 2.4 s (61 s under ASan) at 1 << 22.
  static constexpr std::size_t steps_max = 1u << 16;

  expand_state() {
    if (outer_steps == nullptr) outer_steps = &own_steps;
    if (outer_computed == nullptr) outer_computed = &own_computed;
  }
  ~expand_state() {
    if (outer_steps == &own_steps) outer_steps = nullptr;
    if (outer_computed == &own_computed) outer_computed = nullptr;
  }
  expand_state(const expand_state&) = delete;
  expand_state& operator=(const expand_state&) = delete;
};

}  // namespace

// ---- helpers shared with other units -----------------------------------------------------

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  std::size_t i = 0;
  auto is_sep = [](char c) { return c == ',' || std::isspace(static_cast<unsigned char>(c)); };
  while (i < text.size()) {
    while (i < text.size() && is_sep(text[i])) ++i;
    if (i >= text.size()) break;
    std::size_t start = i;
    int level = 0;
    while (i < text.size() && (level > 0 || !is_sep(text[i]))) {
      if (text[i] == '{') {
        ++level;
      } else if (text[i] == '}' && level > 0) {
        --level;
      }
      ++i;
    }
    out.emplace_back(text.substr(start, i - start));
  }
  return out;
}

std::optional<long long> parse_time_seconds(std::string_view text, char default_unit) {
  // As Postfix's conv_time(): optional leading whitespace and sign, digits, one unit letter.
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  if (i < text.size() && text[i] == '+') ++i;
  std::size_t digits_start = i;
  long long value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    value = value * 10 + (text[i] - '0');
    if (value > INT_MAX) return std::nullopt;
    ++i;
  }
  if (i == digits_start) return std::nullopt;
  char unit = default_unit;
  if (i < text.size()) {
    unit = text[i++];
    if (i != text.size()) return std::nullopt;
  }
  long long factor = 0;
  switch (unit) {
    case 's':
      factor = 1;
      break;
    case 'm':
      factor = 60;
      break;
    case 'h':
      factor = 3600;
      break;
    case 'd':
      factor = 86400;
      break;
    case 'w':
      factor = 7 * 86400;
      break;
    default:
      return std::nullopt;
  }
  if (value > INT_MAX / factor) return std::nullopt;
  return value * factor;
}

int compare_compatibility_levels(std::string_view a, std::string_view b) {
  auto next = [](std::string_view& s) {
    long long v = 0;
    std::size_t i = 0;
    for (; i < s.size() && s[i] != '.'; ++i) {
      if (std::isdigit(static_cast<unsigned char>(s[i])) && v < (1LL << 40))
        v = v * 10 + (s[i] - '0');
    }
    s.remove_prefix(i < s.size() ? i + 1 : i);
    return v;
  };
  for (int part = 0; part < 3; ++part) {
    long long x = next(a), y = next(b);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

// ---- the expansion engine -----------------------------------------------------------------

class expander {
 public:
  explicit expander(const parameters& p) : p_(p) {}

  void expand(std::string_view text, std::string& out, expand_state& st) const {
    if (++st.depth > parameters::expansion_depth_max) {
      fail(st, "unreasonable macro call nesting: " + quote_excerpt(text));
      --st.depth;
      return;
    }
    std::size_t i = 0;
    while (i < text.size() && st.error.empty()) {
      if (++*st.steps > expand_state::steps_max) {
        fail(st, "expansion takes too many steps (more than " +
                     std::to_string(expand_state::steps_max) + " lookups)");
        break;
      }
      char c = text[i];
      if (c != '$' || i + 1 >= text.size()) {
        auto dollar = text.find('$', i + 1);
        std::size_t end = dollar == std::string_view::npos ? text.size() : dollar;
        out.append(text.substr(i, end - i));
        i = end;
        if (c == '$' && end == text.size()) break;
        continue;
      }
      char n = text[i + 1];
      if (n == '$') {
        out += '$';
        i += 2;
      } else if (n == '{' || n == '(') {
        char close = n == '{' ? '}' : ')';
        int level = 1;
        std::size_t j = i + 2;
        for (; j < text.size(); ++j) {
          if (text[j] == n) {
            ++level;
          } else if (text[j] == close && --level == 0) {
            break;
          }
        }
        if (j >= text.size()) {
          fail(st, "truncated macro reference: " + quote_excerpt(text.substr(i)));
          break;
        }
        std::string_view payload = text.substr(i + 2, j - i - 2);
        if (payload.empty()) {
          fail(st, "empty macro name: " + quote_excerpt(text.substr(i, j + 1 - i)));
          break;
        }
        expression(payload, out, st);
        i = j + 1;
      } else if (is_name_char(n)) {
        std::size_t j = i + 1;
        while (j < text.size() && is_name_char(text[j])) ++j;
        use(text.substr(i + 1, j - i - 1), out, st);
        i = j;
      } else {
        out += '$';
        ++i;
      }
      if (out.size() > parameters::expansion_bytes_max) {
        fail(st, "expansion is longer than " + std::to_string(parameters::expansion_bytes_max) +
                     " bytes");
      }
    }
    --st.depth;
  }

  // The value of a parameter, for computed defaults that depend on other parameters.
  std::string value_of(std::string_view name, expand_state& st) const {
    std::string out;
    use(name, out, st);
    return out;
  }

 private:
  static void fail(expand_state& st, std::string message) {
    if (st.error.empty()) st.error = std::move(message);
  }

  static std::string_view skip_space(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    return s.substr(i);
  }

  // `s` starts with '{': returns the balanced payload and advances `s` past it and any
  // whitespace after it.
  static std::optional<std::string_view> curly(std::string_view& s, expand_state& st) {
    int level = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '{') {
        ++level;
      } else if (s[i] == '}' && --level == 0) {
        std::string_view payload = s.substr(1, i - 1);
        s = skip_space(s.substr(i + 1));
        return payload;
      }
    }
    fail(st, "unbalanced {} in attribute expression: " + quote_excerpt(s));
    return std::nullopt;
  }

  void use(std::string_view name, std::string& out, expand_state& st) const {
    auto raw = p_.raw(name);
    if (!raw || raw->empty()) return;
    if (raw->find('$') == std::string::npos) {
      out += *raw;
      return;
    }
    ++st.depth;  // count the name itself so that a = $a stops at the depth limit
    if (st.depth > parameters::expansion_depth_max) {
      fail(st, "unreasonable macro call nesting: \"" + printable(name) + "\"");
    } else {
      expand(*raw, out, st);
    }
    --st.depth;
  }

  bool logical(std::string_view& s, expand_state& st) const {
    auto left = curly(s, st);
    if (!left) return false;
    std::size_t op_len = 0;
    while (op_len < s.size() && std::strchr("<>!=?+-*/~&|%", s[op_len]) != nullptr &&
           s[op_len] != '\0') {
      ++op_len;
    }
    std::string op(s.substr(0, op_len));
    s.remove_prefix(op_len);
    bool level_op = false;
    if (s.substr(0, 5) == "level") {
      level_op = true;
      s.remove_prefix(5);
    }
    static constexpr std::array<std::string_view, 6> ops = {"==", "!=", "<", "<=", ">", ">="};
    if (std::find(ops.begin(), ops.end(), op) == ops.end()) {
      fail(st,
           "\"==\", \"!=\", \"<\", \"<=\", \">=\", \">\" or the same with \"level\" "
           "expected at: \"...{" +
               printable(*left) + "}>>>" + printable(s.substr(0, 20)) + "\"");
      return false;
    }
    s = skip_space(s);
    if (s.empty() || s.front() != '{') {
      fail(st, "\"{expression}\" expected at: \"...{" + printable(*left) + "} " + op +
                   (level_op ? "level" : "") + ">>>" + printable(s.substr(0, 20)) + "\"");
      return false;
    }
    auto right = curly(s, st);
    if (!right) return false;
    std::string l, r;
    expand(*left, l, st);
    expand(*right, r, st);
    if (!st.error.empty()) return false;
    int cmp = 0;
    if (level_op) {
      for (const auto& v : {l, r}) {
        if (!valid_level(v)) {
          fail(st, "bad compatibility level value: \"" + printable(v) +
                       "\" (expected digits separated by dots, like 3.6)");
          return false;
        }
      }
      cmp = compare_compatibility_levels(l, r);
    } else if (all_digits(l) && all_digits(r) && op != "==" && op != "!=") {
      auto strip = [](const std::string& v) {
        auto nz = v.find_first_not_of('0');
        return nz == std::string::npos ? std::string("0") : v.substr(nz);
      };
      std::string a = strip(l), b = strip(r);
      cmp = a.size() != b.size() ? (a.size() < b.size() ? -1 : 1) : a.compare(b);
    } else {
      cmp = l.compare(r);
    }
    bool result = op == "=="   ? cmp == 0
                  : op == "!=" ? cmp != 0
                  : op == "<"  ? cmp < 0
                  : op == "<=" ? cmp <= 0
                  : op == ">"  ? cmp > 0
                               : cmp >= 0;
    return result;
  }

  void expression(std::string_view payload, std::string& out, expand_state& st) const {
    std::string_view cp = skip_space(payload);
    bool defined_nonempty = false;
    char ch = 0;
    std::optional<std::string> use_name;
    if (!cp.empty() && cp.front() == '{') {
      defined_nonempty = logical(cp, st);
      if (!st.error.empty()) return;
      if (!cp.empty()) {
        ch = cp.front();
        if (ch != '?' && ch != ':') {
          fail(st, "\"?\" or \":\" expected at: \"...}>>>" + printable(cp.substr(0, 20)) + "\"");
          return;
        }
        cp.remove_prefix(1);
      } else {
        if (defined_nonempty) out += "true";
        return;
      }
    } else {
      cp = payload;
      std::size_t i = 0;
      for (; i < cp.size(); ++i) {
        if (cp[i] == '?' || cp[i] == ':') {
          ch = cp[i];
          break;
        }
        if (!is_name_char(cp[i])) {
          fail(st, "attribute name syntax error at: \"..." + printable(cp.substr(0, i)) + ">>>" +
                       printable(cp.substr(i, 20)) + "\"");
          return;
        }
      }
      std::string_view name = cp.substr(0, i);
      if (ch == 0) {
        use(name, out, st);
        return;
      }
      // Conditional forms test the raw value, as Postfix's lookup in test mode.
      auto raw = p_.raw(name);
      defined_nonempty = raw && !raw->empty();
      cp.remove_prefix(i + 1);
    }
    if (ch == '?') {
      std::string_view iftrue;
      std::string_view rest = skip_space(cp);
      if (!rest.empty() && rest.front() == '{') {
        auto v = curly(rest, st);
        if (!v) return;
        iftrue = *v;
        cp = rest;
      } else {
        iftrue = cp;
        cp = {};
      }
      if (defined_nonempty) expand(iftrue, out, st);
      if (cp.empty()) return;
      if (cp.front() != ':') {
        fail(st, "\":\" expected at: \"..." + printable(iftrue) + "}>>>" +
                     printable(cp.substr(0, 20)) + "\"");
        return;
      }
      cp.remove_prefix(1);
    }
    // ':' branch, also reached after "?{text}:".
    std::string_view iffalse;
    std::string_view rest = skip_space(cp);
    if (!rest.empty() && rest.front() == '{') {
      auto v = curly(rest, st);
      if (!v) return;
      iffalse = *v;
      cp = rest;
    } else {
      iffalse = cp;
      cp = {};
    }
    if (!defined_nonempty) expand(iffalse, out, st);
    if (!cp.empty()) {
      fail(st, "unexpected input at: \"..." + printable(iffalse) + "}>>>" +
                   printable(cp.substr(0, 20)) + "\"");
    }
  }

  const parameters& p_;
};

// ---- computed defaults --------------------------------------------------------------------

namespace {

struct net_entry {
  int family = AF_INET;
  std::array<unsigned char, 16> addr{};
  int prefix = 32;
};

std::optional<net_entry> parse_net(std::string_view text) {
  std::string s(text);
  int prefix = -1;
  if (auto slash = s.find('/'); slash != std::string::npos) {
    auto digits = std::string_view(s).substr(slash + 1);
    if (!all_digits(digits) || digits.size() > 3) return std::nullopt;
    prefix = std::stoi(std::string(digits));
    s.resize(slash);
  }
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (auto pct = s.find('%'); pct != std::string::npos) s.resize(pct);  // fe80::1%eth0
  net_entry e;
  if (inet_pton(AF_INET, s.c_str(), e.addr.data()) == 1) {
    e.family = AF_INET;
    e.prefix = prefix < 0 ? 32 : std::min(prefix, 32);
    return e;
  }
  if (inet_pton(AF_INET6, s.c_str(), e.addr.data()) == 1) {
    e.family = AF_INET6;
    e.prefix = prefix < 0 ? 128 : std::min(prefix, 128);
    return e;
  }
  return std::nullopt;
}

bool same_address(const net_entry& a, const net_entry& b) {
  std::size_t n = a.family == AF_INET ? 4 : 16;
  return a.family == b.family && std::memcmp(a.addr.data(), b.addr.data(), n) == 0;
}

bool is_loopback(const net_entry& e) {
  if (e.family == AF_INET) return e.addr[0] == 127;
  static constexpr std::array<unsigned char, 16> one = {0, 0, 0, 0, 0, 0, 0, 0,
                                                        0, 0, 0, 0, 0, 0, 0, 1};
  return e.addr == one;
}

std::string format_network(net_entry e, const std::string& style) {
  int bits = e.family == AF_INET ? 32 : 128;
  int prefix = e.prefix;
  if (style == "host") {
    prefix = bits;
  } else if (style == "class" && e.family == AF_INET) {
    unsigned char b = e.addr[0];
    if (b < 128) {
      prefix = 8;
    } else if (b < 192) {
      prefix = 16;
    } else if (b < 224) {
      prefix = 24;
    } else if (b < 240) {
      prefix = 4;
    } else {
      return {};  // class E: Postfix refuses the address
    }
  }  // IPv6 has no classes: "class" works as "subnet", as in Postfix
  for (int i = 0; i < bits / 8; ++i) {
    int keep = std::clamp(prefix - i * 8, 0, 8);
    e.addr[static_cast<std::size_t>(i)] &= static_cast<unsigned char>(0xff00 >> keep);
  }
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(e.family, e.addr.data(), buf, sizeof buf);
  if (e.family == AF_INET) return std::string(buf) + "/" + std::to_string(prefix);
  return "[" + std::string(buf) + "]/" + std::to_string(prefix);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

// ---- parameters ---------------------------------------------------------------------------

parameters::parameters(host_environment env) : env_(std::move(env)) {}

const host_environment& parameters::environment() const noexcept { return env_; }

const std::vector<std::string>& parameters::builtin_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& e : defaults_table) v.emplace_back(e.name);
    return v;
  }();
  return names;
}

std::optional<std::string> parameters::lookup(std::string_view name) const {
  if (auto it = set_.find(name); it != set_.end()) return it->second;
  if (auto it = service_defaults_.find(name); it != service_defaults_.end()) return it->second;
  return default_value(name);
}

std::optional<std::string> parameters::raw(std::string_view name) const { return lookup(name); }

namespace {

// The host-dependent defaults, from the environment and the other settings.
std::string computed_default(const parameters& p, std::string_view name, expand_state& st) {
  const host_environment& env = p.environment();
  expander x(p);
  st.depth = 1;  // computed defaults read other parameters; keep loops bounded
  if (name == "myhostname") {
    std::string host = env.hostname.empty() ? std::string("localhost") : env.hostname;
    if (host.find('.') != std::string::npos) return host;
    // Postfix appends $mydomain when it is set, else "localdomain".
    std::string domain = p.is_set("mydomain") ? x.value_of("mydomain", st) : "";
    return host + "." + (domain.empty() ? std::string("localdomain") : domain);
  }
  if (name == "mydomain") {
    std::string host = x.value_of("myhostname", st);
    auto dot = host.find('.');
    if (dot == std::string::npos) return std::string("localdomain");
    return host.substr(dot + 1);
  }
  if (name == "mynetworks") {
    std::string style = lower(trim(x.value_of("mynetworks_style", st)));
    auto protocols = split_list(lower(x.value_of("inet_protocols", st)));
    bool v4 = false, v6 = false;
    for (const auto& p : protocols) {
      if (p == "all") v4 = v6 = true;
      if (p == "ipv4") v4 = true;
      if (p == "ipv6") v6 = true;
    }
    std::vector<net_entry> own;
    for (const auto& n : env.interface_networks) {
      if (auto e = parse_net(n)) own.push_back(*e);
    }
    std::vector<net_entry> chosen;
    auto add = [&](const net_entry& e) {
      for (const auto& c : chosen) {
        if (same_address(c, e)) return;
      }
      chosen.push_back(e);
    };
    auto interfaces = split_list(lower(x.value_of("inet_interfaces", st)));
    bool all = std::find(interfaces.begin(), interfaces.end(), "all") != interfaces.end();
    if (all) {
      for (int family : {AF_INET, AF_INET6}) {
        for (const auto& e : own) {
          if (e.family == family) add(e);
        }
      }
    } else {
      for (const auto& item : interfaces) {
        if (item == "loopback-only" || item == "localhost") {
          for (int family : {AF_INET, AF_INET6}) {
            for (const auto& e : own) {
              if (e.family == family && is_loopback(e)) add(e);
            }
          }
          continue;
        }
        auto e = parse_net(item);
        if (!e) continue;  // host names would need DNS, which this library does not do
        auto match = std::find_if(own.begin(), own.end(),
                                  [&](const net_entry& o) { return same_address(o, *e); });
        add(match != own.end() ? *match : *e);
      }
    }
    std::string out;
    for (const auto& e : chosen) {
      if ((e.family == AF_INET && !v4) || (e.family == AF_INET6 && !v6)) continue;
      std::string s = format_network(e, style);
      if (s.empty()) continue;
      if (!out.empty()) out += ' ';
      out += s;
    }
    return out;
  }
  return std::string{};
}

}  // namespace

std::optional<std::string> parameters::default_value(std::string_view name) const {
  const default_entry* d = find_default(name);
  if (d == nullptr) {
    if (auto it = service_defaults_.find(name); it != service_defaults_.end()) return it->second;
    return std::nullopt;
  }
  if (d->value != computed_marker) return std::string(d->value);
  // A computed default that reads itself back (myhostname = a.$mydomain, whose default is
  // computed from myhostname) sees it undefined, as Postfix does: it evaluates myhostname while
  // mydomain is not defined yet, so that example gives mydomain "" and myhostname "a.".
  thread_local std::vector<std::string_view> computing;
  if (std::find(computing.begin(), computing.end(), name) != computing.end()) return std::nullopt;
  if (name == "process_id") return std::to_string(::getpid());
  // Apart from the settings, a computed default depends only on which computed defaults are
  // being computed around it (those read as undefined), so that set is part of the key.
  std::vector<std::string_view> around(computing);
  std::sort(around.begin(), around.end());
  std::string key(name);
  for (const auto& c : around) (key += '\0') += c;
  expand_state st;  // outermost when called directly: then the cache lives for this call only
  if (auto it = outer_computed->find(key); it != outer_computed->end()) return it->second;
  computing.push_back(name);
  struct pop {
    ~pop() { computing.pop_back(); }
  } const popper;
  std::string value = computed_default(*this, name, st);
  outer_computed->emplace(std::move(key), value);
  return value;
}

inet_protocol_set inet_protocols(const parameters& p) {
  inet_protocol_set out;
  for (const auto& v : p.get_list("inet_protocols")) {
    const std::string name = lower(v);
    if (name == "all" || name == "ipv4") out.ipv4 = true;
    if (name == "all" || name == "ipv6") out.ipv6 = true;
  }
  return out;
}

expansion parameters::expand(std::string_view text) const {
  expansion r;
  expand_state st;
  expander(*this).expand(text, r.value, st);
  r.error = std::move(st.error);
  return r;
}

expansion parameters::expand_parameter(std::string_view name) const {
  expansion r;
  expand_state st;
  r.value = expander(*this).value_of(name, st);
  r.error = std::move(st.error);
  return r;
}

std::string parameters::get(std::string_view name) const { return expand_parameter(name).value; }

value_type parameters::type_of(std::string_view name) const {
  static const std::unordered_map<std::string, value_type> types = [] {
    std::unordered_map<std::string, value_type> m;
    const parameters base;
    for (const auto& e : defaults_table) {
      std::string_view n = e.name;
      value_type t = value_type::string;
      if (std::find(string_typed.begin(), string_typed.end(), n) == string_typed.end()) {
        std::string v = base.get(n);
        std::string_view body = v;
        if (!body.empty() && (body.front() == '-' || body.front() == '+')) body.remove_prefix(1);
        if (v == "yes" || v == "no") {
          t = value_type::boolean;
        } else if (all_digits(body)) {
          t = value_type::integer;
        } else if (v.size() >= 2 && all_digits(std::string_view(v).substr(0, v.size() - 1)) &&
                   std::strchr("smhdw", v.back()) != nullptr) {
          t = value_type::time;
        }
      }
      m.emplace(std::string(n), t);
    }
    return m;
  }();
  if (auto it = types.find(std::string(name)); it != types.end()) return it->second;
  if (auto it = service_defaults_.find(name); it != service_defaults_.end()) {
    std::string_view ref = it->second;
    if (!ref.empty() && ref.front() == '$') return type_of(ref.substr(1));
  }
  return value_type::string;
}

namespace {
std::optional<long long> parse_int(std::string_view v) {
  // As sscanf("%ld%c"): optional leading whitespace and sign, digits, nothing after.
  std::size_t i = 0;
  while (i < v.size() && std::isspace(static_cast<unsigned char>(v[i]))) ++i;
  bool neg = false;
  if (i < v.size() && (v[i] == '+' || v[i] == '-')) neg = v[i++] == '-';
  long long out = 0;
  auto [ptr, ec] = std::from_chars(v.data() + i, v.data() + v.size(), out);
  if (ec != std::errc{} || ptr != v.data() + v.size() || ptr == v.data() + i) return std::nullopt;
  return neg ? -out : out;
}

std::optional<bool> parse_bool(std::string_view v) {
  // Postfix compares with strcasecmp: no surrounding whitespace is allowed.
  std::string l = lower(v);
  if (l == "yes") return true;
  if (l == "no") return false;
  return std::nullopt;
}
}  // namespace

// The built-in default expanded against the current settings: the fallback of typed getters
// when a value is malformed (validate() reports those).
std::string expanded_default(const parameters& p, std::string_view name) {
  auto d = p.default_value(name);
  return d ? p.expand(*d).value : std::string{};
}

bool parameters::get_bool(std::string_view name) const {
  if (auto b = parse_bool(get(name))) return *b;
  return parse_bool(expanded_default(*this, name)).value_or(false);
}

long long parameters::get_int(std::string_view name) const {
  if (auto v = parse_int(get(name))) return *v;
  return parse_int(expanded_default(*this, name)).value_or(0);
}

std::uint64_t parameters::get_size(std::string_view name) const {
  long long v = get_int(name);
  return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

namespace {
char default_time_unit(const parameters& p, std::string_view name) {
  std::string d = expanded_default(p, name);
  if (!d.empty() && std::isalpha(static_cast<unsigned char>(d.back()))) return d.back();
  return 's';
}
}  // namespace

std::chrono::milliseconds parameters::get_time(std::string_view name) const {
  char unit = default_time_unit(*this, name);
  auto secs = parse_time_seconds(get(name), unit);
  if (!secs) secs = parse_time_seconds(expanded_default(*this, name), unit);
  return std::chrono::seconds(secs.value_or(0));
}

std::vector<std::string> parameters::get_list(std::string_view name) const {
  return split_list(get(name));
}

bool parameters::is_known(std::string_view name) const {
  return find_default(name) != nullptr || service_defaults_.count(name) > 0;
}

bool parameters::is_set(std::string_view name) const { return set_.count(name) > 0; }

void parameters::set(std::string name, std::string value) {
  origins_.erase(name);
  set_.insert_or_assign(std::move(name), std::move(value));
}

void parameters::set(std::string name, std::string value, origin where) {
  origins_.insert_or_assign(name, std::move(where));
  set_.insert_or_assign(std::move(name), std::move(value));
}

void parameters::erase(std::string_view name) {
  if (auto it = set_.find(name); it != set_.end()) set_.erase(it);
  if (auto it = origins_.find(name); it != origins_.end()) origins_.erase(it);
}

std::optional<parameters::origin> parameters::origin_of(std::string_view name) const {
  if (auto it = origins_.find(name); it != origins_.end()) return it->second;
  return std::nullopt;
}

std::vector<std::string> parameters::set_names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : set_) out.push_back(k);
  return out;
}

parameters parameters::with_overrides(
    const std::vector<std::pair<std::string, std::string>>& o) const {
  parameters copy = *this;
  for (const auto& [k, v] : o) copy.set(k, v);
  return copy;
}

parameters parameters::with_service_overrides(const master_service& service) const {
  parameters copy = *this;
  for (const auto& [k, v] : service.overrides) copy.set(k, v, origin{service.file, service.line});
  return copy;
}

void parameters::add_service_parameters(std::string_view service, std::string_view command) {
  static constexpr std::array<std::string_view, 5> delivery = {"local", "error", "virtual", "smtp",
                                                               "lmtp"};
  bool is_delivery = std::find(delivery.begin(), delivery.end(), command) != delivery.end();
  bool is_pipe = command == "pipe";
  bool is_spawn = command == "spawn";
  if (!is_delivery && !is_pipe && !is_spawn) return;
  for (std::size_t i = 0; i < service_suffixes.size(); ++i) {
    bool time_limit = i == 0;
    if (time_limit ? !(is_pipe || is_spawn) : is_spawn) continue;
    std::string name = std::string(service) + std::string(service_suffixes[i].first);
    if (find_default(name) != nullptr) continue;  // e.g. local_destination_concurrency_limit
    service_defaults_.insert_or_assign(name, "$" + std::string(service_suffixes[i].second));
  }
}

std::vector<diagnostic> parameters::validate() const {
  std::vector<diagnostic> out;
  for (const auto& [name, value] : set_) {
    diagnostic d;
    d.level = diagnostic::severity::fatal;
    d.parameter = name;
    if (auto o = origin_of(name)) {
      d.file = o->file;
      d.line = o->line;
    }
    bool raw_param =
        std::find(raw_parameters.begin(), raw_parameters.end(), name) != raw_parameters.end();
    expansion e = raw_param ? expansion{value, {}} : expand_parameter(name);
    if (!e.error.empty()) {
      d.message =
          "macro processing error in " + name + " = " + quote_excerpt(value) + ": " + e.error;
      out.push_back(d);
      continue;
    }
    switch (type_of(name)) {
      case value_type::boolean:
        if (!parse_bool(e.value)) {
          d.message = "bad boolean configuration: " + name + " = " + printable(e.value) +
                      " (expected yes or no)";
          out.push_back(d);
        }
        break;
      case value_type::integer:
        if (!parse_int(e.value)) {
          d.message = "bad numerical configuration: " + name + " = " + printable(e.value) +
                      " (expected an integer)";
          out.push_back(d);
        }
        break;
      case value_type::time:
        if (!parse_time_seconds(e.value, default_time_unit(*this, name))) {
          d.message = "parameter " + name + ": bad time value or unit: " + printable(e.value) +
                      " (expected a number with an optional unit s, m, h, d or w)";
          out.push_back(d);
        }
        break;
      case value_type::string:
        break;
    }
    if (name == "mynetworks_style") {
      std::string v = lower(trim(e.value));
      if (v != "host" && v != "subnet" && v != "class") {
        d.message = "bad mynetworks_style value: " + printable(e.value) +
                    "; specify exactly one of host, subnet, class";
        out.push_back(d);
      }
    } else if (name == "compatibility_level" && !valid_level(trim(e.value))) {
      d.message = "bad compatibility_level value: " + printable(e.value) +
                  " (expected a level like 0, 2 or 3.6)";
      out.push_back(d);
    }
  }
  // File order reads best; the map above is in name order.
  std::stable_sort(out.begin(), out.end(), [](const diagnostic& a, const diagnostic& b) {
    return std::tie(a.file, a.line) < std::tie(b.file, b.line);
  });
  return out;
}

bool parameters_is_raw(std::string_view name) {
  return std::find(raw_parameters.begin(), raw_parameters.end(), name) != raw_parameters.end();
}

}  // namespace relaylab::config
