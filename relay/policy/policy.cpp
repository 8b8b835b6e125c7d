// Postfix smtpd_check.c semantics over a session snapshot. See policy.hpp for the contract.
//
// The structure follows Postfix on purpose, so that differences can be found by reading the two
// side by side: generic_checks() walks a restriction list, check_table_result() turns an access
// table answer into a decision, reject() is smtpd_check_reject() (the only place that builds a
// reject reply), and resolve() is the part of trivial-rewrite that smtpd consults (address class
// and the "routed" flag).
#include "relay/policy/policy.hpp"

#include "relay/maps/maps.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace relaylab::policy {
namespace {

using config::diagnostic;

constexpr std::size_t reply_bytes_max = 510;  // smtpd_check_reject() truncation
constexpr int recursion_max = 100;            // access table -> restriction nesting
constexpr int resolve_loops_extra = 100;      // resolve_addr(): addr_len + 100 iterations
constexpr std::size_t list_file_bytes_max = 1u << 20;

// ------------------------------------------------------------------------------------------
// Text helpers.

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string lower(std::string_view s) { return maps::fold_case(s); }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Splits a restriction or pattern list on ", \t\r\n", keeping "{...}" groups (inline tables)
// in one token, as Postfix 3.x's mystrtokq() does.
std::vector<std::string> split_restrictions(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : s) {
    if (depth == 0 && (is_space(c) || c == ',')) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    if (c == '{') ++depth;
    if (c == '}' && depth > 0) --depth;
    cur += c;
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

// Postfix dsn_valid(): "d.ddd.ddd" with a class digit 2, 4 or 5.
std::size_t dsn_length(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
  std::size_t i = 2, n = 0;
  while (i < s.size() && is_digit(s[i]) && n < 3) ++i, ++n;
  if (n == 0 || i >= s.size() || s[i] != '.') return 0;
  ++i;
  n = 0;
  while (i < s.size() && is_digit(s[i]) && n < 3) ++i, ++n;
  if (n == 0 || (i < s.size() && is_digit(s[i]))) return 0;
  return i;
}

// Postfix dsn_split(): an optional leading enhanced status code in table text.
struct dsn_text {
  std::string dsn;
  std::string text;
};
dsn_text dsn_split(std::string_view def, std::string_view text) {
  std::size_t n = dsn_length(text);
  if (n > 0 && (n == text.size() || is_space(text[n]))) {
    return {std::string(text.substr(0, n)), std::string(trim(text.substr(n)))};
  }
  return {std::string(def), std::string(text)};
}

// Postfix smtpd_dsn_fix(): address status codes that do not fit the rejected thing.
std::string dsn_fix(std::string dsn, std::string_view reply_class) {
  if (dsn.size() < 5 || dsn.compare(1, 3, ".1.") != 0) return dsn;
  std::string_view detail = std::string_view(dsn).substr(4);
  if (reply_class == "Sender address") {
    if (detail == "1" || detail == "3") return dsn.substr(0, 4) + "7";
    if (detail == "2") return dsn.substr(0, 4) + "8";
  } else if (reply_class == "Recipient address") {
    if (detail == "7") return dsn.substr(0, 4) + "1";
    if (detail == "8") return dsn.substr(0, 4) + "2";
  }
  return dsn;
}

// ------------------------------------------------------------------------------------------
// Addresses.

std::optional<std::array<unsigned char, 16>> parse_ip(std::string_view text, int& family) {
  if (text.size() > 63 || text.empty()) return std::nullopt;
  std::string s(text);
  std::array<unsigned char, 16> b{};
  if (s.find(':') != std::string::npos) {
    if (inet_pton(AF_INET6, s.c_str(), b.data()) != 1) return std::nullopt;
    family = AF_INET6;
  } else {
    if (inet_pton(AF_INET, s.c_str(), b.data()) != 1) return std::nullopt;
    family = AF_INET;
  }
  return b;
}

bool valid_ipv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (true) {
    std::size_t start = i;
    int v = 0;
    while (i < s.size() && is_digit(s[i]) && i - start < 3) v = v * 10 + (s[i++] - '0');
    if (i == start || v > 255 || (i < s.size() && is_digit(s[i]))) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
  return parts == 4;
}

bool valid_ipv6(std::string_view s) {
  int family = 0;
  return s.find(':') != std::string_view::npos && parse_ip(s, family) && family == AF_INET6;
}

// Postfix valid_mailhost_addr(): IPv4, or "IPv6:" followed by an IPv6 address.
bool valid_mailhost_addr(std::string_view s) {
  if (s.size() > 5 && iequals(s.substr(0, 5), "ipv6:")) return valid_ipv6(s.substr(5));
  return valid_ipv4(s);
}

bool valid_mailhost_literal(std::string_view s) {
  return s.size() > 2 && s.front() == '[' && s.back() == ']' &&
         valid_mailhost_addr(s.substr(1, s.size() - 2));
}

// Postfix dup_if_truncate(): drop one trailing dot, but not from "..".
std::string_view truncate_dot(std::string_view s) {
  if (s.size() > 1 && s.back() == '.' && s[s.size() - 2] != '.') s.remove_suffix(1);
  return s;
}

std::string namaddr(const session_state& s) { return s.client_name + "[" + s.client_addr + "]"; }

// ------------------------------------------------------------------------------------------
// Compiled configuration: immutable after create(), shared by every session's engine.

enum class status { dunno, ok, reject };
enum class error_class { policy, software, resource, bounce, protocol };

// A Postfix match_list (namadr_list, domain_list, string_list) of patterns.
struct match_list {
  struct pattern {
    bool negate = false;
    std::string text;  // lower-cased hostname pattern
    const maps::table* table = nullptr;
    bool is_net = false;
    int family = 0;
    std::array<unsigned char, 16> net{};
    int prefix = 0;
  };
  std::vector<pattern> patterns;
  bool parent_style = false;
};

struct compiled {
  // Restriction lists, in Postfix's names.
  std::vector<std::string> client, helo, sender, relay, recipient, data, eod;
  std::map<std::string, std::vector<std::string>> classes;
  std::map<std::string, std::unique_ptr<maps::table>> tables;  // by spec as written

  match_list mynetworks, relay_domains, mydestination, virtual_alias_domains,
      virtual_mailbox_domains, xclient_hosts;
  std::vector<std::array<unsigned char, 17>> own_addresses;  // family byte + address

  std::vector<const maps::table*> local_rcpt_maps, relay_rcpt_maps, virt_alias_maps,
      virt_mailbox_maps, canonical_maps, rcpt_canon_maps, sender_login_maps;
  bool local_rcpt_maps_set = false, relay_rcpt_maps_set = false, virt_mailbox_maps_set = false,
       sender_login_maps_set = false;

  bool delay_reject = true, relay_before_rcpt = true, allow_untrusted_routing = false,
       swap_bangpath = true, percent_hack = true, resolve_dequoted = true,
       resolve_numeric_domain = false, append_at_myorigin = true, append_dot_mydomain = false,
       show_unknown_table = true, reject_unlisted_rcpt = true, reject_unlisted_sender = false,
       soft_bounce = false, sasl_enable = false, access_parent_style = true;
  int relay_code = 554, local_rcpt_code = 550, relay_rcpt_code = 550, virt_alias_code = 550,
      virt_mailbox_code = 550, map_reject_code = 554, map_defer_code = 450, reject_code = 554,
      defer_code = 450, non_fqdn_code = 504, bad_name_code = 501, unk_client_code = 450,
      mul_rcpt_code = 550, plaintext_code = 450;
  std::string myhostname, myorigin, mydomain, rcpt_delim, null_key, double_bounce, empty_address;
};

bool match_net(const match_list::pattern& p, std::string_view addr) {
  int family = 0;
  auto a = parse_ip(addr, family);
  if (!a || family != p.family) return false;
  for (int bit = 0; bit < p.prefix; ++bit) {
    int mask = 0x80 >> (bit % 8);
    if ((p.net[bit / 8] & mask) != ((*a)[bit / 8] & mask)) return false;
  }
  return true;
}

// Postfix match_hostname(): exact name, or a parent domain (parent style: "example.com"
// matches "a.example.com"; otherwise only ".example.com" does).
bool match_hostname(const match_list& list, const match_list::pattern& p, std::string_view name) {
  std::string n = lower(name);
  if (p.table) {
    if (p.table->find(n)) return true;
    if (!p.table->fixed_string()) return false;
    for (std::size_t dot = n.find('.', 1); dot != std::string::npos; dot = n.find('.', dot + 1)) {
      if (p.table->find(list.parent_style ? n.substr(dot + 1) : n.substr(dot))) return true;
    }
    return false;
  }
  if (p.is_net) return false;
  if (n == p.text) return true;
  for (std::size_t dot = n.find('.', 1); dot != std::string::npos; dot = n.find('.', dot + 1)) {
    if (list.parent_style ? n.compare(dot + 1, std::string::npos, p.text) == 0
                          : (p.text[0] == '.' && n.compare(dot, std::string::npos, p.text) == 0)) {
      return true;
    }
  }
  return false;
}

bool match_hostaddr(const match_list::pattern& p, std::string_view addr) {
  if (addr.empty()) return false;
  if (p.table) return p.table->find(addr).has_value();
  if (p.is_net) return match_net(p, addr);
  return false;
}

// namadr_list_match() when addr is non-empty, domain/string_list_match() otherwise.
bool list_match(const match_list& list, std::string_view name, std::string_view addr) {
  for (const auto& p : list.patterns) {
    bool m = (!name.empty() && match_hostname(list, p, name)) || match_hostaddr(p, addr);
    if (m) return !p.negate;
  }
  return false;
}

// ------------------------------------------------------------------------------------------
// Address resolution (trivial-rewrite's resolve_addr(), as far as smtpd_check.c looks at it).

struct resolved {
  enum cls { local, alias, virtual_mailbox, relay, other };
  cls address_class = other;
  bool routed = false;
  bool error = false;
  std::string recipient;  // lower-cased user@domain
};

class resolver {
 public:
  explicit resolver(const compiled& c) : c_(c) {}

  bool is_local(std::string_view domain_in) const {
    std::string d = lower(truncate_dot(domain_in));
    if (d.empty()) return false;
    if (list_match(c_.mydestination, d, "")) return true;
    if (d.front() == '[' && valid_mailhost_literal(d)) {
      std::string_view inner = std::string_view(d).substr(1, d.size() - 2);
      if (inner.size() > 5 && iequals(inner.substr(0, 5), "ipv6:")) inner.remove_prefix(5);
      int family = 0;
      auto a = parse_ip(inner, family);
      if (!a) return false;
      for (const auto& own : c_.own_addresses) {
        if (own[0] == family &&
            std::equal(a->begin(), a->begin() + (family == AF_INET ? 4 : 16), own.begin() + 1)) {
          return true;
        }
      }
    }
    return false;
  }

  resolved resolve(std::string_view addr) const {
    resolved r;
    std::string a = rewrite(std::string(addr));
    std::string remote_domain;
    std::string saved_domain;
    bool have_remote = false;
    std::size_t loops_max = addr.size() + resolve_loops_extra;
    for (std::size_t loop = 0; loop < loops_max; ++loop) {
      strip_trailing_dot(a);
      std::size_t at = a.rfind('@');
      if (at != std::string::npos) {
        std::string domain = a.substr(at + 1);
        if (!domain.empty() && !is_local(domain)) {
          remote_domain = domain;
          have_remote = true;
          a.resize(at);
          break;
        }
        saved_domain = domain;
        a.resize(at);
      }
      // What is left is the local part. Any '@' in it came from a quoted string.
      bool quoted = needs_quoting(a);
      if (!quoted && ((c_.swap_bangpath && a.find('!') != std::string::npos) ||
                      (c_.percent_hack && a.find('%') != std::string::npos))) {
        a = rewrite(a);
        continue;
      }
      if (quoted && c_.resolve_dequoted) {
        std::size_t oper = a.rfind('@');
        if (oper == std::string::npos && c_.percent_hack) {
          oper = a.rfind('%');
          if (oper != std::string::npos) a[oper] = '@';
        }
        if (oper == std::string::npos && c_.swap_bangpath) oper = a.rfind('!');
        if (oper != std::string::npos) {
          a = rewrite(a);
          continue;
        }
      }
      if (a.empty()) a = c_.empty_address;
      break;
    }
    std::string domain = have_remote             ? remote_domain
                         : !saved_domain.empty() ? saved_domain
                                                 : c_.myhostname;
    r.recipient = lower(a + "@" + domain);
    std::string_view rcpt_domain = std::string_view(r.recipient).substr(a.size() + 1);
    if (!rcpt_domain.empty() && rcpt_domain.front() == '[') {
      r.error = !valid_mailhost_literal(rcpt_domain);
    } else if (!valid_hostname(rcpt_domain)) {
      if (c_.resolve_numeric_domain && valid_hostaddr(rcpt_domain)) {
        r.recipient = r.recipient.substr(0, a.size() + 1) + "[" + std::string(rcpt_domain) + "]";
        rcpt_domain = std::string_view(r.recipient).substr(a.size() + 1);
        if (is_local(rcpt_domain)) have_remote = false;
      } else {
        r.error = true;
      }
    }
    if (r.error) {
      r.address_class = resolved::other;
      return r;
    }
    std::size_t first_oper = r.recipient.find_first_of("@!%");
    r.routed = first_oper != a.size();
    std::string d(rcpt_domain);
    if (!have_remote) {
      r.address_class = resolved::local;
    } else if (list_match(c_.virtual_alias_domains, d, "")) {
      r.address_class = resolved::alias;
    } else if (list_match(c_.virtual_mailbox_domains, d, "")) {
      r.address_class = resolved::virtual_mailbox;
    } else if (list_match(c_.relay_domains, d, "")) {
      r.address_class = resolved::relay;
    }
    return r;
  }

 private:
  // quote_822_local(): a local-part with RFC 822 specials (other than '.') is one quoted
  // string token, so the routing operators inside it are not operators.
  static bool needs_quoting(std::string_view local) {
    return local.find_first_of("@ \"()<>,;:\\[]\t") != std::string_view::npos;
  }

  static void strip_trailing_dot(std::string& a) {
    std::size_t at = a.rfind('@');
    if (at == std::string::npos || a.size() < 2 || a.back() != '.') return;
    char prev = a[a.size() - 2];
    if (prev != '.' && prev != '@') a.pop_back();
  }

  // rewrite_tree() in the "local" context: source route, bang path, percent hack, @myorigin.
  std::string rewrite(std::string a) const {
    if (!a.empty() && a.front() == '@') {
      std::size_t colon = a.find(':');
      if (colon != std::string::npos && colon + 1 < a.size()) a = a.substr(colon + 1);
    }
    // An '@' anywhere (also one from a dequoted local-part) leaves the address alone.
    if (a.find('@') == std::string::npos) {
      std::size_t bang = a.find('!');
      std::size_t pct = a.rfind('%');
      if (c_.swap_bangpath && bang != std::string::npos) {
        a = a.substr(bang + 1) + "@" + a.substr(0, bang);
      } else if (c_.percent_hack && pct != std::string::npos) {
        a[pct] = '@';
      }
    }
    if (a.find('@') == std::string::npos && !a.empty() && c_.append_at_myorigin) {
      a += "@" + c_.myorigin;
    }
    if (c_.append_dot_mydomain) {
      std::size_t at = a.rfind('@');
      if (at != std::string::npos) {
        std::string_view d = std::string_view(a).substr(at + 1);
        if (!d.empty() && d.front() != '[' && d.find('.') == std::string_view::npos &&
            !c_.mydomain.empty()) {
          a += "." + c_.mydomain;
        }
      }
    }
    strip_trailing_dot(a);
    return a;
  }

  const compiled& c_;
};

// ------------------------------------------------------------------------------------------
// Names of restrictions that take the next token as their argument.

const std::set<std::string, std::less<>>& restrictions_with_argument() {
  static const std::set<std::string, std::less<>> names = {
      "check_client_access",
      "check_reverse_client_hostname_access",
      "check_helo_access",
      "check_sender_access",
      "check_recipient_access",
      "check_etrn_access",
      "check_client_mx_access",
      "check_client_ns_access",
      "check_reverse_client_hostname_mx_access",
      "check_reverse_client_hostname_ns_access",
      "check_helo_mx_access",
      "check_helo_ns_access",
      "check_sender_mx_access",
      "check_sender_ns_access",
      "check_recipient_mx_access",
      "check_recipient_ns_access",
      "check_ccert_access",
      "check_sasl_access",
      "check_policy_service",
      "sleep",
      "reject_rbl_client",
      "reject_rbl",
      "permit_dnswl_client",
      "reject_rhsbl_client",
      "permit_rhswl_client",
      "reject_rhsbl_reverse_client",
      "reject_rhsbl_helo",
      "reject_rhsbl_sender",
      "reject_rhsbl_recipient"};
  return names;
}

// Restrictions that need DNS, TLS, a policy server or the verify service: recognised, but they
// never decide anything here (a warning at create() says so).
const std::set<std::string, std::less<>>& unsupported_restrictions() {
  static const std::set<std::string, std::less<>> names = {
      "reject_unknown_helo_hostname",
      "reject_unknown_hostname",
      "reject_unknown_sender_domain",
      "reject_unknown_recipient_domain",
      "reject_unknown_address",
      "reject_unverified_sender",
      "reject_unverified_recipient",
      "permit_mx_backup",
      "permit_tls_clientcerts",
      "permit_tls_all_clientcerts",
      "check_client_mx_access",
      "check_client_ns_access",
      "check_reverse_client_hostname_mx_access",
      "check_reverse_client_hostname_ns_access",
      "check_helo_mx_access",
      "check_helo_ns_access",
      "check_sender_mx_access",
      "check_sender_ns_access",
      "check_recipient_mx_access",
      "check_recipient_ns_access",
      "check_ccert_access",
      "check_policy_service",
      "reject_rbl_client",
      "reject_rbl",
      "permit_dnswl_client",
      "reject_rhsbl_client",
      "permit_rhswl_client",
      "reject_rhsbl_reverse_client",
      "reject_rhsbl_helo",
      "reject_rhsbl_sender",
      "reject_rhsbl_recipient",
      "reject_maps_rbl",
      "check_etrn_access"};
  return names;
}

const std::set<std::string, std::less<>>& simple_restrictions() {
  static const std::set<std::string, std::less<>> names = {
      "permit",
      "reject",
      "defer",
      "defer_if_permit",
      "defer_if_reject",
      "warn_if_reject",
      "reject_unauth_pipelining",
      "reject_plaintext_session",
      "permit_mynetworks",
      "permit_inet_interfaces",
      "reject_unknown_client_hostname",
      "reject_unknown_client",
      "reject_unknown_reverse_client_hostname",
      "reject_invalid_helo_hostname",
      "reject_invalid_hostname",
      "reject_non_fqdn_helo_hostname",
      "reject_non_fqdn_hostname",
      "permit_naked_ip_address",
      "reject_non_fqdn_sender",
      "reject_unlisted_sender",
      "reject_sender_login_mismatch",
      "reject_authenticated_sender_login_mismatch",
      "reject_known_sender_login_mismatch",
      "reject_unauthenticated_sender_login_mismatch",
      "permit_auth_destination",
      "reject_unauth_destination",
      "defer_unauth_destination",
      "check_relay_domains",
      "permit_sasl_authenticated",
      "reject_non_fqdn_recipient",
      "reject_unlisted_recipient",
      "check_recipient_maps",
      "reject_multi_recipient_bounce"};
  return names;
}

// ------------------------------------------------------------------------------------------
// Per-session engine.

struct deferral {
  bool active = false;
  error_class cls = error_class::policy;
  int code = 0;
  std::string dsn;
  std::string reason;
};

class engine_impl final : public engine {
 public:
  explicit engine_impl(std::shared_ptr<const compiled> c) : c_(std::move(c)), resolver_(*c_) {}

  std::unique_ptr<engine> new_session() const override { return std::make_unique<engine_impl>(c_); }

  std::vector<rejection> take_warnings() override {
    std::vector<rejection> out;
    out.swap(warnings_);
    return out;
  }

  std::optional<rejection> check_client(session_state& s) override {
    if (c_->delay_reject) return std::nullopt;
    begin(s, "CONNECT");
    return finish(client_checks(s) == status::reject);
  }

  std::optional<rejection> check_helo(session_state& s) override {
    if (c_->delay_reject) return std::nullopt;
    begin(s, s.protocol == "ESMTP" ? "EHLO" : "HELO");
    return finish(helo_checks(s, s.helo_name) == status::reject);
  }

  std::optional<rejection> check_mail(session_state& s) override {
    if (c_->delay_reject) return std::nullopt;
    begin(s, "MAIL");
    return finish(mail_checks(s, &s.sender) == status::reject);
  }

  std::optional<rejection> check_rcpt(session_state& s) override {
    begin(s, "RCPT");
    return finish(rcpt_checks(s) == status::reject);
  }

  std::optional<rejection> check_data(session_state& s) override {
    begin(s, "DATA");
    return finish(data_checks(s, c_->data, "DATA", "Data command") == status::reject);
  }

  std::optional<rejection> check_end_of_data(session_state& s) override {
    begin(s, "END-OF-MESSAGE");
    return finish(data_checks(s, c_->eod, "END-OF-MESSAGE", "End-of-data") == status::reject);
  }

  void reset_transaction() override { defer_if_permit_sender_ = false; }
  void reset_session() override {
    defer_if_permit_client_ = defer_if_permit_helo_ = defer_if_permit_sender_ = false;
  }

  bool in_mynetworks(const std::string& addr) const override {
    return list_match(c_->mynetworks, "", addr);
  }
  bool is_local_domain(const std::string& domain) const override {
    return resolver_.is_local(domain);
  }
  bool xclient_authorized(const std::string& name, const std::string& addr) const override {
    return list_match(c_->xclient_hosts, name, addr);
  }
  bool is_relay_domain(const std::string& domain) const override {
    return list_match(c_->relay_domains, lower(truncate_dot(domain)), "");
  }

 private:
  // --- evaluation context (Postfix SMTPD_STATE fields used by smtpd_check.c) ---
  const session_state* s_ = nullptr;
  std::string where_;
  const std::string* helo_ = nullptr;       // nullptr: no HELO yet
  const std::string* sender_ = nullptr;     // nullptr: no MAIL FROM
  const std::string* recipient_ = nullptr;  // nullptr: not in RCPT (or several at DATA)
  int recursion_ = 0;
  int warn_if_reject_ = 0;
  deferral defer_if_reject_, defer_if_permit_;
  bool defer_if_permit_client_ = false, defer_if_permit_helo_ = false,
       defer_if_permit_sender_ = false;
  bool sender_rcptmap_checked_ = false, recipient_rcptmap_checked_ = false;
  std::string reject_reply_;  // the reply of the last real rejection
  std::vector<rejection> warnings_;
  std::size_t warnings_before_ = 0;

  std::shared_ptr<const compiled> c_;
  resolver resolver_;

  void begin(const session_state& s, std::string where) {
    s_ = &s;
    where_ = std::move(where);
    helo_ = s.helo_name.empty() ? nullptr : &s.helo_name;
    sender_ = s.in_transaction ? &s.sender : nullptr;
    recipient_ = nullptr;
    warnings_before_ = warnings_.size();
  }

  std::optional<rejection> finish(bool rejected) {
    std::string stage = where_ == "EHLO" ? "HELO" : where_;
    if (rejected) return rejection{reject_reply_, stage, false};
    if (warnings_.size() > warnings_before_) return warnings_[warnings_before_];
    return std::nullopt;
  }

  void check_reset() {
    recursion_ = 0;
    warn_if_reject_ = 0;
    defer_if_reject_.active = false;
  }

  // smtpd_check_reject(): the one place that builds a reject reply. Enforces a 4xx/5xx code
  // (else "450 4.7.1 Service unavailable"), a valid enhanced status code whose class follows
  // the reply code, the 510-octet limit, printable text, defer_if_reject and soft_bounce.
  status reject(error_class cls, int code, std::string_view dsn, const std::string& text) {
    bool warn =
        warn_if_reject_ != 0 && cls != error_class::software && cls != error_class::resource;
    std::string reply = std::to_string(code) + " " + std::string(dsn) + " " + text;
    if (code < 400 || code > 599 || dsn_length(dsn) != dsn.size()) {
      reply = "450 4.7.1 Service unavailable";
    }
    if (reply.size() > reply_bytes_max) reply.resize(reply_bytes_max);
    for (char& ch : reply) {
      auto u = static_cast<unsigned char>(ch);
      if (u < 0x20 || u == 0x7f) ch = ' ';
    }
    if (!warn && defer_if_reject_.active && reply[0] == '5') {
      warn_if_reject_ = 0;
      defer_if_reject_.active = false;
      return reject(defer_if_reject_.cls, defer_if_reject_.code, defer_if_reject_.dsn,
                    defer_if_reject_.reason);
    }
    if (c_->soft_bounce && reply[0] == '5') reply[0] = '4';
    reply[4] = reply[0];
    if (warn) {
      warnings_.push_back(rejection{reply, where_ == "EHLO" ? "HELO" : where_, true});
      return status::dunno;
    }
    reject_reply_ = reply;
    return status::reject;
  }

  status server_error() {
    return reject(error_class::software, 451, "4.3.5", "Server configuration error");
  }

  void defer_if(deferral& d, int code, std::string dsn, std::string reason) {
    if (d.active) return;  // keep the first reason
    d = deferral{true, error_class::policy, code, std::move(dsn), std::move(reason)};
  }

  // DEFER_IF_PERMIT*: with warn_if_reject it only warns.
  status defer_if_permit(int code, std::string dsn, std::string reason) {
    if (warn_if_reject_ == 0) {
      defer_if(defer_if_permit_, code, std::move(dsn), std::move(reason));
      return status::dunno;
    }
    reject(error_class::policy, code, dsn, reason);
    return status::dunno;
  }

  static std::string bracket(std::string_view name) { return "<" + std::string(name) + ">"; }

  // --- stage drivers (smtpd_check_client/helo/mail/rcpt/data/eod) ---

  status client_checks(const session_state& s) {
    if (s.client_name.empty() || s.client_addr.empty()) return status::dunno;
    defer_if_permit_.active = false;
    check_reset();
    status st = status::dunno;
    if (!c_->client.empty()) {
      st = generic_checks(c_->client, namaddr(s), "Client host", "check_client_access");
    }
    defer_if_permit_client_ = defer_if_permit_.active;
    return st;
  }

  status helo_checks(const session_state&, const std::string& helo) {
    if (helo.empty()) return status::dunno;
    const std::string* saved = helo_;
    helo_ = &helo;
    defer_if_permit_.active = defer_if_permit_client_;
    check_reset();
    status st = status::dunno;
    if (!c_->helo.empty()) {
      st = generic_checks(c_->helo, helo, "Helo command", "check_helo_access");
    }
    defer_if_permit_helo_ = defer_if_permit_.active;
    helo_ = saved;
    return st;
  }

  status mail_checks(const session_state&, const std::string* sender) {
    if (sender == nullptr) return status::dunno;
    const std::string* saved = sender_;
    sender_ = sender;
    defer_if_permit_.active = defer_if_permit_client_ || defer_if_permit_helo_;
    sender_rcptmap_checked_ = false;
    check_reset();
    status st = status::dunno;
    if (!c_->sender.empty()) {
      st = generic_checks(c_->sender, *sender, "Sender address", "check_sender_access");
    }
    defer_if_permit_sender_ = defer_if_permit_.active;
    if (c_->reject_unlisted_sender && st != status::reject && !sender_rcptmap_checked_ &&
        !sender->empty()) {
      st = check_sender_rcpt_maps(*sender);
    }
    sender_ = saved;
    return st;
  }

  status rcpt_checks(const session_state& s) {
    const std::string& recipient = s.recipient;
    // RFC 5321 section 4.5.1: "postmaster" is always accepted, even unqualified.
    if (iequals(recipient, "postmaster")) return status::dunno;
    recipient_ = &recipient;
    recipient_rcptmap_checked_ = false;
    // Postfix has already pushed the recipient: delayed client/helo/sender restrictions
    // (e.g. an access table answer "reject_unauth_destination") can look at it.
    if (c_->delay_reject) {
      if (client_checks(s) == status::reject ||
          (helo_ && helo_checks(s, *helo_) == status::reject) ||
          (sender_ && mail_checks(s, sender_) == status::reject)) {
        return status::reject;
      }
    }
    defer_if_permit_.active = defer_if_permit_sender_;
    check_reset();
    const std::vector<std::string>* lists[2] = {&c_->relay, &c_->recipient};
    if (!c_->relay_before_rcpt) std::swap(lists[0], lists[1]);
    status st = status::dunno;
    for (const auto* list : lists) {
      st = list->empty()
               ? status::dunno
               : generic_checks(*list, recipient, "Recipient address", "check_recipient_access");
      if (st == status::reject) break;
    }
    if (st != status::reject && defer_if_permit_.active) {
      st = reject(defer_if_permit_.cls, defer_if_permit_.code, defer_if_permit_.dsn,
                  defer_if_permit_.reason);
    }
    if (c_->reject_unlisted_rcpt && st != status::reject && !recipient_rcptmap_checked_) {
      st = check_recipient_rcpt_maps(recipient);
    }
    return st;
  }

  status data_checks(const session_state& s, const std::vector<std::string>& list,
                     const char* reply_name, const char* reply_class) {
    // Postfix names no recipient when there are several.
    recipient_ = (s.recipient_count <= 1 && !s.recipient.empty()) ? &s.recipient : nullptr;
    defer_if_permit_.active = false;
    check_reset();
    status st = list.empty() ? status::dunno : generic_checks(list, reply_name, reply_class, "");
    if (st != status::reject && defer_if_permit_.active) {
      st = reject(defer_if_permit_.cls, defer_if_permit_.code, defer_if_permit_.dsn,
                  defer_if_permit_.reason);
    }
    return st;
  }

  // --- generic_checks() ---

  status generic_checks(const std::vector<std::string>& list, const std::string& reply_name,
                        const char* reply_class, const std::string& def_acl) {
    int saved_recursion = recursion_++;
    status st = status::dunno;
    for (std::size_t i = 0; i < list.size(); ++i) {
      std::string name = list[i];
      std::string arg;
      bool implicit_table = false;
      if (name.find(':') != std::string::npos) {
        if (def_acl.empty()) {
          st = server_error();
          break;
        }
        arg = name;
        name = def_acl;
        implicit_table = true;
      }
      std::string key = lower(name);
      if (key == "warn_if_reject") {
        if (warn_if_reject_ == 0) warn_if_reject_ = recursion_;
        continue;
      }
      if (!implicit_table && restrictions_with_argument().count(key)) {
        if (i + 1 >= list.size()) {
          st = server_error();
          break;
        }
        arg = list[++i];
      }
      st = one_check(key, arg, reply_name, reply_class, def_acl);
      if (warn_if_reject_ >= recursion_) warn_if_reject_ = 0;
      if (st != status::dunno) break;
      if (defer_if_permit_.active && defer_if_reject_.active) break;
    }
    recursion_ = saved_recursion;
    if (warn_if_reject_ >= recursion_) warn_if_reject_ = 0;
    return st;
  }

  status one_check(const std::string& name, const std::string& arg, const std::string& reply_name,
                   const char* reply_class, const std::string& def_acl) {
    const session_state& s = *s_;
    const std::string rn = bracket(reply_name);
    // Generic restrictions.
    if (name == "permit") return status::ok;
    if (name == "defer") {
      return reject(error_class::policy, c_->defer_code, "4.3.2",
                    rn + ": " + reply_class + " rejected: Try again later");
    }
    if (name == "reject") {
      return reject(error_class::policy, c_->reject_code, "5.7.1",
                    rn + ": " + reply_class + " rejected: Access denied");
    }
    if (name == "reject_unauth_pipelining") {
      if (s.unauth_pipelining && (!iequals(s.protocol, "ESMTP") || where_ == "DATA")) {
        return reject(
            error_class::protocol, 503, "5.5.0",
            rn + ": " + reply_class + " rejected: Improper use of SMTP command pipelining");
      }
      return status::dunno;
    }
    if (name == "defer_if_permit") {
      return defer_if_permit(450, "4.7.0",
                             rn + ": " + reply_class + " rejected: defer_if_permit requested");
    }
    if (name == "defer_if_reject") {
      defer_if(defer_if_reject_, 450, "4.7.0",
               rn + ": " + reply_class + " rejected: defer_if_reject requested");
      return status::dunno;
    }
    if (name == "sleep") return all_digits(arg) ? status::dunno : server_error();
    if (name == "reject_plaintext_session") {
      return reject(error_class::policy, c_->plaintext_code, "4.7.1",
                    "Session encryption is required");
    }
    // Client restrictions.
    if (name == "reject_unknown_client_hostname" || name == "reject_unknown_client" ||
        name == "reject_unknown_reverse_client_hostname") {
      if (s.client_name == "unknown") {
        bool reverse = name == "reject_unknown_reverse_client_hostname";
        return reject(error_class::policy, c_->unk_client_code, "4.7.1",
                      std::string("Client host rejected: cannot find your ") +
                          (reverse ? "reverse " : "") + "hostname, [" + s.client_addr + "]");
      }
      return status::dunno;
    }
    if (name == "permit_inet_interfaces") {
      return own_address(s.client_addr) ? status::ok : status::dunno;
    }
    if (name == "permit_mynetworks") {
      return list_match(c_->mynetworks, s.client_name, s.client_addr) ? status::ok : status::dunno;
    }
    if (name == "check_client_access" || name == "check_reverse_client_hostname_access") {
      bool found = false;
      return check_namadr_access(arg, s.client_name, s.client_addr, found, namaddr(s),
                                 "Client host", def_acl);
    }
    if (name == "check_sasl_access") {
      if (!c_->sasl_enable || s.sasl_username.empty()) return status::dunno;
      bool found = false;
      return check_access(arg, s.sasl_username, false, found, s.sasl_username, "SASL login name",
                          def_acl);
    }
    // HELO restrictions.
    if (name == "check_helo_access") {
      if (!helo_) return status::dunno;
      bool found = false;
      return check_domain_access(arg, *helo_, false, found, *helo_, "Helo command", def_acl);
    }
    if (name == "reject_invalid_helo_hostname" || name == "reject_invalid_hostname") {
      if (!helo_) return status::dunno;
      if ((*helo_)[0] == '[') return reject_invalid_hostaddr(*helo_);
      std::string_view t = truncate_dot(*helo_);
      if (!valid_hostname(t) && !valid_hostaddr(t)) {
        return reject(error_class::policy, c_->bad_name_code, "5.5.2",
                      bracket(*helo_) + ": Helo command rejected: Invalid name");
      }
      return status::dunno;
    }
    if (name == "reject_non_fqdn_helo_hostname" || name == "reject_non_fqdn_hostname") {
      if (!helo_) return status::dunno;
      if ((*helo_)[0] == '[') return reject_invalid_hostaddr(*helo_);
      std::string_view t = truncate_dot(*helo_);
      if (!valid_hostname(t) || t.find('.') == std::string_view::npos) {
        return reject(error_class::policy, c_->non_fqdn_code, "5.5.2",
                      bracket(*helo_) + ": Helo command rejected: need fully-qualified hostname");
      }
      return status::dunno;
    }
    if (name == "permit_naked_ip_address") {
      if (!helo_ || helo_->find_first_not_of("0123456789.:") != std::string::npos) {
        return status::dunno;
      }
      status st = reject_invalid_hostaddr(*helo_);
      return st == status::dunno ? status::ok : st;
    }
    // Sender restrictions.
    if (name == "check_sender_access") {
      if (!sender_) return status::dunno;
      bool found = false;
      if (sender_->empty()) {
        return check_access(arg, c_->null_key, false, found, *sender_, "Sender address", def_acl);
      }
      return check_mail_access(arg, *sender_, found, *sender_, "Sender address", def_acl);
    }
    if (name == "reject_non_fqdn_sender") {
      if (!sender_ || sender_->empty()) return status::dunno;
      return reject_non_fqdn_address(*sender_, "Sender address");
    }
    if (name == "reject_unlisted_sender") {
      if (!sender_ || sender_->empty()) return status::dunno;
      return check_sender_rcpt_maps(*sender_);
    }
    if (name == "reject_sender_login_mismatch") {
      // A built-in restriction class in Postfix: both halves, in this order.
      status st = one_check("reject_authenticated_sender_login_mismatch", arg, reply_name,
                            reply_class, def_acl);
      if (st != status::dunno) return st;
      return one_check("reject_unauthenticated_sender_login_mismatch", arg, reply_name, reply_class,
                       def_acl);
    }
    if (name == "reject_authenticated_sender_login_mismatch" ||
        name == "reject_known_sender_login_mismatch" ||
        name == "reject_unauthenticated_sender_login_mismatch") {
      if (!c_->sasl_enable || !sender_ || sender_->empty()) return status::dunno;
      bool authenticated = !s.sasl_username.empty();
      if (name == "reject_authenticated_sender_login_mismatch") {
        return authenticated ? auth_sender_login_mismatch(*sender_, false) : status::dunno;
      }
      if (name == "reject_known_sender_login_mismatch" && authenticated) {
        return auth_sender_login_mismatch(*sender_, true);
      }
      return authenticated ? status::dunno : unauth_sender_login_mismatch(*sender_);
    }
    // Recipient restrictions.
    if (name == "check_recipient_access") {
      if (!recipient_) return status::dunno;
      bool found = false;
      return check_mail_access(arg, *recipient_, found, *recipient_, "Recipient address", def_acl);
    }
    if (name == "permit_auth_destination") {
      if (!recipient_) return status::dunno;
      return permit_auth_destination(*recipient_);
    }
    if (name == "reject_unauth_destination" || name == "defer_unauth_destination") {
      if (!recipient_) return status::dunno;
      if (permit_auth_destination(*recipient_) == status::ok) return status::dunno;
      bool defer = name == "defer_unauth_destination";
      return reject(error_class::policy, defer ? c_->relay_code - 100 : c_->relay_code,
                    defer ? "4.7.1" : "5.7.1", bracket(*recipient_) + ": Relay access denied");
    }
    if (name == "check_relay_domains") {
      if (!recipient_) return status::dunno;
      if (list_match(c_->relay_domains, s.client_name, "")) return status::ok;
      if (permit_auth_destination(*recipient_) == status::ok) return status::ok;
      return reject(error_class::policy, c_->relay_code, "5.7.1",
                    bracket(*recipient_) + ": " + reply_class + " rejected: Relay access denied");
    }
    if (name == "permit_sasl_authenticated") {
      return c_->sasl_enable && !s.sasl_method.empty() ? status::ok : status::dunno;
    }
    if (name == "reject_non_fqdn_recipient") {
      if (!recipient_) return status::dunno;
      return reject_non_fqdn_address(*recipient_, "Recipient address");
    }
    if (name == "reject_unlisted_recipient" || name == "check_recipient_maps") {
      if (!recipient_ || recipient_->empty()) return status::dunno;
      return check_recipient_rcpt_maps(*recipient_);
    }
    if (name == "reject_multi_recipient_bounce") {
      if (sender_ && sender_->empty() && s.recipient_count > (where_ == "DATA" ? 1 : 0)) {
        return reject(error_class::policy, c_->mul_rcpt_code, "5.5.3",
                      rn + ": " + reply_class + " rejected: Multi-recipient bounce");
      }
      return status::dunno;
    }
    if (unsupported_restrictions().count(name)) return status::dunno;
    // User-defined restriction class.
    if (auto it = c_->classes.find(name); it != c_->classes.end()) {
      return generic_checks(it->second, reply_name, reply_class, def_acl);
    }
    // Unknown restriction: Postfix logs "unknown smtpd restriction" and replies 451.
    return server_error();
  }

  bool own_address(std::string_view addr) const {
    int family = 0;
    auto a = parse_ip(addr, family);
    if (!a) return false;
    for (const auto& own : c_->own_addresses) {
      if (own[0] == family &&
          std::equal(a->begin(), a->begin() + (family == AF_INET ? 4 : 16), own.begin() + 1)) {
        return true;
      }
    }
    return false;
  }

  status reject_invalid_hostaddr(const std::string& helo) {
    std::string_view t = helo;
    if (t.size() > 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
    if (!valid_mailhost_addr(t)) {
      return reject(error_class::policy, c_->bad_name_code, "5.5.2",
                    bracket(helo) + ": Helo command rejected: invalid ip address");
    }
    return status::dunno;
  }

  status reject_non_fqdn_address(const std::string& addr, const char* reply_class) {
    std::size_t at = addr.rfind('@');
    std::string_view domain = at == std::string::npos ? "" : std::string_view(addr).substr(at + 1);
    if (!domain.empty() && domain.front() == '[' && domain.back() == ']') return status::dunno;
    domain = truncate_dot(domain);
    if (domain.empty() || !valid_hostname(domain) || domain.find('.') == std::string_view::npos) {
      return reject(error_class::policy, c_->non_fqdn_code, "4.5.2",
                    bracket(addr) + ": " + reply_class + " rejected: need fully-qualified address");
    }
    return status::dunno;
  }

  status permit_auth_destination(const std::string& recipient) {
    resolved r = resolver_.resolve(recipient);
    if (r.recipient.find('@') == std::string::npos) return status::ok;
    if (!c_->allow_untrusted_routing && r.routed) return status::dunno;
    if (r.address_class != resolved::other) return status::ok;  // final or relay
    return status::dunno;
  }

  // --- access tables ---

  const maps::table* table(const std::string& spec) const {
    auto it = c_->tables.find(spec);
    return it == c_->tables.end() ? nullptr : it->second.get();
  }

  // check_table_result(): an access table value to a decision.
  status table_result(const std::string& value, const std::string& reply_name,
                      const char* reply_class, const std::string& def_acl) {
    std::size_t cmd_len = value.find_first_of(" \t");
    if (cmd_len == std::string::npos) cmd_len = value.size();
    std::string cmd = lower(std::string_view(value).substr(0, cmd_len));
    std::string text(trim(std::string_view(value).substr(cmd_len)));
    const std::string rn = bracket(reply_name);
    const std::string head = rn + ": " + reply_class + " rejected: ";
    if (cmd == "dunno") return status::dunno;
    if (cmd == "reject") {
      auto d = dsn_split("5.7.1", text);
      return reject(error_class::policy, c_->map_reject_code, dsn_fix(d.dsn, reply_class),
                    head + (d.text.empty() ? "Access denied" : d.text));
    }
    if (cmd == "defer") {
      auto d = dsn_split("4.7.1", text);
      return reject(error_class::policy, c_->map_defer_code, dsn_fix(d.dsn, reply_class),
                    head + (d.text.empty() ? "Access denied" : d.text));
    }
    // Actions that the cleanup server carries out (not modelled here) or that only log.
    if (cmd == "warn" || cmd == "filter" || cmd == "hold" || cmd == "redirect" || cmd == "bcc" ||
        cmd == "prepend") {
      return status::dunno;
    }
    if (cmd == "discard") return status::ok;
    if (cmd == "defer_if_permit") {
      auto d = dsn_split("4.7.1", text);
      return defer_if_permit(c_->map_defer_code, dsn_fix(d.dsn, reply_class),
                             head + (d.text.empty() ? "Service unavailable" : d.text));
    }
    if (cmd == "defer_if_reject") {
      auto d = dsn_split("4.7.1", text);
      defer_if(defer_if_reject_, c_->map_defer_code, dsn_fix(d.dsn, reply_class),
               head + (d.text.empty() ? "Service unavailable" : d.text));
      return status::dunno;
    }
    if (all_digits(value)) return status::ok;
    if (cmd_len == 3 && !text.empty() && (value[0] == '4' || value[0] == '5') &&
        is_digit(value[1]) && is_digit(value[2])) {
      std::string def = "5.7.1";
      def[0] = value[0];
      auto d = dsn_split(def, text);
      return reject(error_class::policy, std::stoi(value.substr(0, 3)), dsn_fix(d.dsn, reply_class),
                    head + (d.text.empty() ? "Access denied" : d.text));
    }
    if (cmd == "ok" || cmd == "relay") return status::ok;
    if (value.find(':') != std::string::npos) return server_error();
    if (recursion_ > recursion_max) return server_error();
    std::vector<std::string> list = split_restrictions(value);
    if (list.empty()) return status::ok;
    return generic_checks(list, reply_name, reply_class, def_acl);
  }

  // check_access(): one lookup. Partial keys are only tried in fixed-string tables.
  status check_access(const std::string& spec, const std::string& key, bool partial, bool& found,
                      const std::string& reply_name, const char* reply_class,
                      const std::string& def_acl) {
    found = false;
    const maps::table* t = table(spec);
    if (!t) {
      found = true;
      return server_error();
    }
    if (partial && !t->fixed_string()) return status::dunno;
    if (auto v = t->find(key)) {
      found = true;
      return table_result(*v, reply_name, reply_class, def_acl);
    }
    return status::dunno;
  }

  // check_domain_access(): the name, then its parent domains.
  status check_domain_access(const std::string& spec, const std::string& domain, bool partial,
                             bool& found, const std::string& reply_name, const char* reply_class,
                             const std::string& def_acl) {
    found = false;
    bool maybe_numerical = true;
    std::size_t pos = 0;
    while (pos < domain.size()) {
      status st =
          check_access(spec, domain.substr(pos), partial, found, reply_name, reply_class, def_acl);
      if (st != status::dunno || found) return st;
      if (maybe_numerical && (maybe_numerical = valid_hostaddr(domain))) break;
      std::size_t next = domain.find('.', pos + 1);
      if (next == std::string::npos) break;
      pos = c_->access_parent_style ? next + 1 : next;
      partial = true;
    }
    return status::dunno;
  }

  // check_addr_access(): the address, then shorter network prefixes (a.b.c, a.b, a).
  status check_addr_access(const std::string& spec, const std::string& address, bool& found,
                           const std::string& reply_name, const char* reply_class,
                           const std::string& def_acl) {
    char delim = address.find(':') != std::string::npos ? ':' : '.';
    std::string addr = address;
    bool partial = false;
    while (true) {
      status st = check_access(spec, addr, partial, found, reply_name, reply_class, def_acl);
      if (st != status::dunno || found) return st;
      partial = true;
      std::size_t cut = addr.rfind(delim);
      if (cut == std::string::npos) break;
      addr.resize(cut);
    }
    return status::dunno;
  }

  status check_namadr_access(const std::string& spec, const std::string& name,
                             const std::string& addr, bool& found, const std::string& reply_name,
                             const char* reply_class, const std::string& def_acl) {
    status st = check_domain_access(spec, name, false, found, reply_name, reply_class, def_acl);
    if (st != status::dunno || found) return st;
    return check_addr_access(spec, addr, found, reply_name, reply_class, def_acl);
  }

  // Postfix strip_addr(): user+ext@domain -> user@domain, or nullopt without an extension.
  std::optional<std::string> strip_extension(const std::string& addr) const {
    if (c_->rcpt_delim.empty()) return std::nullopt;
    std::size_t at = addr.rfind('@');
    std::string local = addr.substr(0, at);
    std::size_t d = local.find_first_of(c_->rcpt_delim);
    if (d == std::string::npos || d == 0) return std::nullopt;
    return local.substr(0, d) + (at == std::string::npos ? "" : addr.substr(at));
  }

  // check_mail_access(): user+ext@domain, user@domain, domain (and parents), user+ext@, user@.
  status check_mail_access(const std::string& spec, const std::string& addr, bool& found,
                           const std::string& reply_name, const char* reply_class,
                           const std::string& def_acl) {
    resolved r = resolver_.resolve(addr);
    std::size_t at = r.recipient.rfind('@');
    if (at == std::string::npos) return status::dunno;
    std::string domain = r.recipient.substr(at + 1);
    auto bare = strip_extension(addr);
    bool suspicious = !c_->allow_untrusted_routing && r.routed &&
                      std::strcmp(reply_class, "Recipient address") == 0;
    auto done = [&](status st) { return st == status::ok && suspicious ? status::dunno : st; };
    status st = check_access(spec, r.recipient, false, found, reply_name, reply_class, def_acl);
    if (st != status::dunno || found) return done(st);
    if (bare) {
      st = check_access(spec, *bare, true, found, reply_name, reply_class, def_acl);
      if (st != status::dunno || found) return done(st);
    }
    st = check_domain_access(spec, domain, true, found, reply_name, reply_class, def_acl);
    if (st != status::dunno || found) return done(st);
    st = check_access(spec, r.recipient.substr(0, at + 1), true, found, reply_name, reply_class,
                      def_acl);
    if (st != status::dunno || found) return done(st);
    if (bare) {
      std::size_t bat = bare->rfind('@');
      st = check_access(spec, bat == std::string::npos ? *bare : bare->substr(0, bat + 1), true,
                        found, reply_name, reply_class, def_acl);
      if (st != status::dunno || found) return done(st);
    }
    return status::dunno;
  }

  // mail_addr_find(): user+ext@domain, user@domain, user+ext and user (local domains only),
  // @domain.
  bool mail_addr_find(const std::vector<const maps::table*>& tables, const std::string& addr,
                      std::string* value = nullptr) const {
    std::size_t at = addr.rfind('@');
    std::string domain = at == std::string::npos ? "" : addr.substr(at + 1);
    auto bare = strip_extension(addr);
    std::vector<std::string> keys = {addr};
    if (bare) keys.push_back(*bare);
    if (at != std::string::npos && resolver_.is_local(domain)) {
      keys.push_back(addr.substr(0, at));
      if (bare) keys.push_back(bare->substr(0, bare->rfind('@')));
    }
    if (at != std::string::npos) keys.push_back("@" + domain);
    for (std::size_t k = 0; k < keys.size(); ++k) {
      for (const auto* t : tables) {
        // Pattern tables see the full address only.
        if (k > 0 && !t->fixed_string()) continue;
        if (auto v = t->find(keys[k])) {
          if (value) *value = *v;
          return true;
        }
      }
    }
    return false;
  }

  status check_recipient_rcpt_maps(const std::string& recipient) {
    if (recipient_rcptmap_checked_) return status::dunno;
    if (warn_if_reject_ == 0) recipient_rcptmap_checked_ = true;
    return check_rcpt_maps(recipient, "Recipient address");
  }

  status check_sender_rcpt_maps(const std::string& sender) {
    if (sender_rcptmap_checked_) return status::dunno;
    if (warn_if_reject_ == 0) sender_rcptmap_checked_ = true;
    return check_rcpt_maps(sender, "Sender address");
  }

  static bool match_left(const std::string& who, const std::string& addr) {
    return addr.size() > who.size() && addr[who.size()] == '@' &&
           iequals(std::string_view(addr).substr(0, who.size()), who);
  }

  status check_rcpt_maps(const std::string& addr, const char* reply_class) {
    resolved r = resolver_.resolve(addr);
    if (mail_addr_find(c_->rcpt_canon_maps, r.recipient) ||
        mail_addr_find(c_->canonical_maps, r.recipient) ||
        mail_addr_find(c_->virt_alias_maps, r.recipient)) {
      return status::dunno;
    }
    bool sender = std::strcmp(reply_class, "Sender address") == 0;
    std::string dsn = sender ? "5.1.0" : "5.1.1";
    std::string head = bracket(addr) + ": " + reply_class + " rejected: User unknown";
    switch (r.address_class) {
      case resolved::alias:
        return reject(error_class::bounce, c_->virt_alias_code, dsn_fix(dsn, reply_class),
                      head + (c_->show_unknown_table ? " in virtual alias table" : ""));
      case resolved::local:
        if (c_->local_rcpt_maps_set && !match_left(c_->double_bounce, r.recipient) &&
            !match_left("postmaster", r.recipient) && !match_left("MAILER-DAEMON", r.recipient) &&
            !mail_addr_find(c_->local_rcpt_maps, r.recipient)) {
          return reject(error_class::bounce, c_->local_rcpt_code, dsn,
                        head + (c_->show_unknown_table ? " in local recipient table" : ""));
        }
        break;
      case resolved::virtual_mailbox:
        if (c_->virt_mailbox_maps_set && !mail_addr_find(c_->virt_mailbox_maps, r.recipient)) {
          return reject(error_class::bounce, c_->virt_mailbox_code, dsn,
                        head + (c_->show_unknown_table ? " in virtual mailbox table" : ""));
        }
        break;
      case resolved::relay:
        if (c_->relay_rcpt_maps_set && !mail_addr_find(c_->relay_rcpt_maps, r.recipient)) {
          return reject(error_class::bounce, c_->relay_rcpt_code, dsn,
                        head + (c_->show_unknown_table ? " in relay recipient table" : ""));
        }
        break;
      case resolved::other:
        break;
    }
    return status::dunno;
  }

  status auth_sender_login_mismatch(const std::string& sender, bool allow_unknown) {
    const session_state& s = *s_;
    if (!c_->sender_login_maps_set) return status::dunno;
    resolved r = resolver_.resolve(sender);
    std::string owners;
    bool found = false;
    if (mail_addr_find(c_->sender_login_maps, r.recipient, &owners)) {
      for (const auto& owner : split_restrictions(owners)) {
        if (iequals(owner, s.sasl_username)) {
          found = true;
          break;
        }
      }
    } else if (allow_unknown) {
      return status::dunno;
    }
    if (found) return status::dunno;
    return reject(
        error_class::policy, 553, "5.7.1",
        bracket(sender) + ": Sender address rejected: not owned by user " + s.sasl_username);
  }

  status unauth_sender_login_mismatch(const std::string& sender) {
    if (!c_->sender_login_maps_set) return status::dunno;
    resolved r = resolver_.resolve(sender);
    if (mail_addr_find(c_->sender_login_maps, r.recipient)) {
      return reject(error_class::policy, 553, "5.7.1",
                    bracket(sender) + ": Sender address rejected: not logged in");
    }
    return status::dunno;
  }
};

// ------------------------------------------------------------------------------------------
// create(): compile the lists and open every table once.

class builder {
 public:
  builder(const config::parameters& p, std::vector<diagnostic>& diags) : p_(p), diags_(diags) {}

  std::shared_ptr<compiled> build(bool& ok) {
    auto c = std::make_shared<compiled>();
    c_ = c.get();
    read_scalars();
    std::vector<std::string> parents =
        split_restrictions(p_.get("parent_domain_matches_subdomains"));
    auto parent = [&](const char* n) {
      return std::find(parents.begin(), parents.end(), n) != parents.end();
    };
    c->access_parent_style = parent("smtpd_access_maps");
    c->mynetworks = make_list("mynetworks", mynetworks_value(), parent("mynetworks"), true);
    c->relay_domains =
        make_list("relay_domains", p_.get("relay_domains"), parent("relay_domains"), false);
    c->mydestination = make_list("mydestination", p_.get("mydestination"), false, false);
    c->virtual_alias_domains =
        make_list("virtual_alias_domains", p_.get("virtual_alias_domains"), false, false);
    c->virtual_mailbox_domains =
        make_list("virtual_mailbox_domains", p_.get("virtual_mailbox_domains"), false, false);
    c->xclient_hosts =
        make_list("smtpd_authorized_xclient_hosts", p_.get("smtpd_authorized_xclient_hosts"),
                  parent("smtpd_authorized_xclient_hosts"), true);
    own_addresses(p_.get("inet_interfaces"));
    own_addresses(p_.get("proxy_interfaces"));

    c->local_rcpt_maps = open_maps("local_recipient_maps", c->local_rcpt_maps_set);
    c->relay_rcpt_maps = open_maps("relay_recipient_maps", c->relay_rcpt_maps_set);
    c->virt_mailbox_maps = open_maps("virtual_mailbox_maps", c->virt_mailbox_maps_set);
    bool unused = false;
    c->virt_alias_maps = open_maps("virtual_alias_maps", unused);
    c->canonical_maps = open_maps("canonical_maps", unused);
    c->rcpt_canon_maps = open_maps("recipient_canonical_maps", unused);
    c->sender_login_maps = open_maps("smtpd_sender_login_maps", c->sender_login_maps_set);

    c->client = restriction_list("smtpd_client_restrictions");
    c->helo = restriction_list("smtpd_helo_restrictions");
    c->sender = restriction_list("smtpd_sender_restrictions");
    c->relay = restriction_list("smtpd_relay_restrictions");
    c->recipient = restriction_list("smtpd_recipient_restrictions");
    c->data = restriction_list("smtpd_data_restrictions");
    c->eod = restriction_list("smtpd_end_of_data_restrictions");
    for (const auto& name : split_restrictions(p_.get("smtpd_restriction_classes"))) {
      std::string value = p_.get(name);
      if (trim(value).empty()) {
        fatal("smtpd_restriction_classes", "restriction class `" + name + "' needs a definition");
        continue;
      }
      c->classes[lower(name)] = restriction_list(name);
    }
    validate("smtpd_client_restrictions", c->client, "check_client_access");
    validate("smtpd_helo_restrictions", c->helo, "check_helo_access");
    validate("smtpd_sender_restrictions", c->sender, "check_sender_access");
    validate("smtpd_relay_restrictions", c->relay, "check_recipient_access");
    validate("smtpd_recipient_restrictions", c->recipient, "check_recipient_access");
    validate("smtpd_data_restrictions", c->data, "");
    validate("smtpd_end_of_data_restrictions", c->eod, "");
    for (const auto& [name, list] : c->classes) validate(name, list, "check_recipient_access");

    // People screw up the relay restrictions too often (Postfix's words): require one
    // restriction that rejects by default.
    if (!has_required(c->recipient, 0) && !has_required(c->relay, 0)) {
      fatal("smtpd_relay_restrictions",
            "in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at "
            "least one working instance of: reject_unauth_destination, "
            "defer_unauth_destination, reject, defer, defer_if_permit or check_relay_domains");
      hard_failure_ = true;
    }
    ok = !hard_failure_;
    return c;
  }

 private:
  const config::parameters& p_;
  std::vector<diagnostic>& diags_;
  compiled* c_ = nullptr;
  bool hard_failure_ = false;

  void fatal(const std::string& param, std::string msg) {
    diagnostic d;
    d.level = diagnostic::severity::fatal;
    d.parameter = param;
    d.message = std::move(msg);
    diags_.push_back(std::move(d));
  }
  void warning(const std::string& param, std::string msg) {
    diagnostic d;
    d.level = diagnostic::severity::warning;
    d.parameter = param;
    d.message = std::move(msg);
    diags_.push_back(std::move(d));
  }

  int int_param(const char* name, int def) {
    std::string v(trim(p_.get(name)));
    if (!all_digits(v) || v.size() > 4) return def;
    return std::stoi(v);
  }
  bool bool_param(const char* name, bool def) {
    std::string v = lower(trim(p_.get(name)));
    if (v == "yes") return true;
    if (v == "no") return false;
    return def;
  }

  void read_scalars() {
    compiled& c = *c_;
    c.delay_reject = bool_param("smtpd_delay_reject", true);
    c.relay_before_rcpt = bool_param("smtpd_relay_before_recipient_restrictions", true);
    c.allow_untrusted_routing = bool_param("allow_untrusted_routing", false);
    c.swap_bangpath = bool_param("swap_bangpath", true);
    c.percent_hack = bool_param("allow_percent_hack", true);
    c.resolve_dequoted = bool_param("resolve_dequoted_address", true);
    c.resolve_numeric_domain = bool_param("resolve_numeric_domain", false);
    c.append_at_myorigin = bool_param("append_at_myorigin", true);
    c.append_dot_mydomain = bool_param("append_dot_mydomain", false);
    c.show_unknown_table = bool_param("show_user_unknown_table_name", true);
    c.reject_unlisted_rcpt = bool_param("smtpd_reject_unlisted_recipient", true);
    c.reject_unlisted_sender = bool_param("smtpd_reject_unlisted_sender", false);
    c.soft_bounce = bool_param("soft_bounce", false);
    c.sasl_enable = bool_param("smtpd_sasl_auth_enable", false);
    c.relay_code = int_param("relay_domains_reject_code", 554);
    c.local_rcpt_code = int_param("unknown_local_recipient_reject_code", 550);
    c.relay_rcpt_code = int_param("unknown_relay_recipient_reject_code", 550);
    c.virt_alias_code = int_param("unknown_virtual_alias_reject_code", 550);
    c.virt_mailbox_code = int_param("unknown_virtual_mailbox_reject_code", 550);
    c.map_reject_code = int_param("access_map_reject_code", 554);
    c.map_defer_code = int_param("access_map_defer_code", 450);
    c.reject_code = int_param("reject_code", 554);
    c.defer_code = int_param("defer_code", 450);
    c.non_fqdn_code = int_param("non_fqdn_reject_code", 504);
    c.bad_name_code = int_param("invalid_hostname_reject_code", 501);
    c.unk_client_code = int_param("unknown_client_reject_code", 450);
    c.mul_rcpt_code = int_param("multi_recipient_bounce_reject_code", 550);
    c.plaintext_code = int_param("plaintext_reject_code", 450);
    c.myhostname = lower(trim(p_.get("myhostname")));
    c.mydomain = lower(trim(p_.get("mydomain")));
    c.myorigin = lower(trim(p_.get("myorigin")));
    if (c.myorigin.empty()) c.myorigin = c.myhostname;
    c.rcpt_delim = std::string(trim(p_.get("recipient_delimiter")));
    std::string null_key(trim(p_.get("smtpd_null_access_lookup_key")));
    c.null_key = null_key.empty() ? "<>" : null_key;
    std::string db(trim(p_.get("double_bounce_sender")));
    c.double_bounce = db.empty() ? "double-bounce" : db;
    std::string empty(trim(p_.get("empty_address_recipient")));
    c.empty_address = empty.empty() ? "MAILER-DAEMON" : empty;
  }

  // mynetworks as set, or computed from mynetworks_style when the value is empty.
  std::string mynetworks_value() {
    std::string v = p_.get("mynetworks");
    if (!trim(v).empty()) return v;
    std::string style = lower(trim(p_.get("mynetworks_style")));
    std::string out;
    for (const auto& net : p_.environment().interface_networks) {
      std::string n = net;
      auto slash = n.find('/');
      std::string addr = n.substr(0, slash);
      bool v6 = addr.find(':') != std::string::npos;
      if (style == "subnet" && slash != std::string::npos) {
        out += (v6 ? "[" + addr + "]" + n.substr(slash) : n) + " ";
      } else {
        out += (v6 ? "[" + addr + "]/128" : addr + "/32") + " ";
      }
    }
    return out;
  }

  const maps::table* open_table(const std::string& param, const std::string& spec) {
    if (auto it = c_->tables.find(spec); it != c_->tables.end()) return it->second.get();
    std::string error;
    std::vector<std::string> warnings;
    maps::open_options o;
    o.warnings = &warnings;
    o.aliases = param == "alias_maps";
    auto t = maps::open(spec, error, o);
    for (auto& w : warnings) warning(param, std::move(w));
    if (!t) {
      fatal(param, "table " + spec + ": " + error);
      hard_failure_ = true;
      return nullptr;
    }
    return (c_->tables[spec] = std::move(t)).get();
  }

  std::vector<const maps::table*> open_maps(const char* param, bool& set) {
    std::vector<const maps::table*> out;
    std::string value = p_.get(param);
    std::vector<std::string> aliases = split_restrictions(p_.get("alias_maps"));
    for (const auto& spec : split_restrictions(value)) {
      // NIS needs a domain name; Postfix disables NIS lookups without one (Debian's default
      // alias_maps names nis:mail.aliases), so such a table never matches.
      if (lower(spec.substr(0, 4)) == "nis:") {
        warning(param, "table " + spec + ": NIS lookups disabled");
        set = true;
        continue;
      }
      bool alias = std::find(aliases.begin(), aliases.end(), spec) != aliases.end();
      if (auto* t = open_table(alias ? "alias_maps" : param, spec)) out.push_back(t);
      set = true;
    }
    return out;
  }

  match_list make_list(const char* param, const std::string& value, bool parent_style,
                       bool networks) {
    match_list list;
    list.parent_style = parent_style;
    std::vector<std::string> items = split_restrictions(value);
    for (std::size_t i = 0; i < items.size() && i < 100000; ++i) {
      std::string item = items[i];
      match_list::pattern p;
      while (!item.empty() && item[0] == '!') {
        p.negate = !p.negate;
        item.erase(0, 1);
      }
      if (item.empty()) continue;
      if (item[0] == '/') {
        // "/file/name": patterns read from a file, in place.
        std::ifstream in(item);
        if (!in) {
          fatal(param, "open " + item + ": " + std::strerror(errno));
          hard_failure_ = true;
          continue;
        }
        std::ostringstream ss;
        ss << in.rdbuf();
        std::string text = ss.str().substr(0, list_file_bytes_max);
        std::string cleaned;
        std::istringstream lines(text);
        for (std::string line; std::getline(lines, line);) {
          auto t = trim(line);
          if (!t.empty() && t[0] != '#') cleaned += std::string(t) + " ";
        }
        auto more = split_restrictions(cleaned);
        items.insert(items.begin() + static_cast<long>(i) + 1, more.begin(), more.end());
        continue;
      }
      if (item.find(':') != std::string::npos && item[0] != '[' &&
          !(networks && parse_net(item, p))) {
        p.table = open_table(param, item);
        if (!p.table) continue;
      } else if (networks && parse_net(item, p)) {
        p.is_net = true;
      } else {
        p.text = lower(truncate_dot(item));
      }
      list.patterns.push_back(std::move(p));
    }
    return list;
  }

  // "1.2.3.0/24", "1.2.3.4", "[2001:db8::]/32", "[::1]", "2001:db8::/32".
  bool parse_net(std::string_view item, match_list::pattern& p) {
    std::string_view addr = item;
    std::optional<int> prefix;
    std::size_t slash = item.rfind('/');
    if (slash != std::string_view::npos) {
      addr = item.substr(0, slash);
      std::string_view len = item.substr(slash + 1);
      if (!all_digits(len) || len.size() > 3) return false;
      prefix = std::stoi(std::string(len));
    }
    if (addr.size() > 2 && addr.front() == '[' && addr.back() == ']') {
      addr = addr.substr(1, addr.size() - 2);
    }
    int family = 0;
    auto a = parse_ip(addr, family);
    if (!a) return false;
    int bits = family == AF_INET ? 32 : 128;
    if (prefix.value_or(bits) > bits) return false;
    p.family = family;
    p.net = *a;
    p.prefix = prefix.value_or(bits);
    p.is_net = true;
    return true;
  }

  void own_addresses(const std::string& value) {
    for (const auto& item : split_restrictions(value)) {
      std::vector<std::string> addrs;
      std::string l = lower(item);
      if (l == "all") {
        for (const auto& net : p_.environment().interface_networks) {
          addrs.push_back(net.substr(0, net.find('/')));
        }
      } else if (l == "loopback-only" || l == "localhost") {
        addrs = {"127.0.0.1", "::1"};
      } else {
        std::string_view a = item;
        if (a.size() > 2 && a.front() == '[' && a.back() == ']') a = a.substr(1, a.size() - 2);
        addrs.emplace_back(a);
      }
      for (const auto& a : addrs) {
        int family = 0;
        if (auto b = parse_ip(a, family)) {
          std::array<unsigned char, 17> own{};
          own[0] = static_cast<unsigned char>(family);
          std::copy(b->begin(), b->end(), own.begin() + 1);
          c_->own_addresses.push_back(own);
        }
      }
    }
  }

  std::vector<std::string> restriction_list(const std::string& param) {
    std::vector<std::string> list = split_restrictions(p_.get(param));
    // Open tables now (before any chroot, in Postfix): "type:name" tokens.
    for (const auto& item : list) {
      if (item.find(':') != std::string::npos) open_table(param, item);
    }
    return list;
  }

  // Unknown restriction names are fatal configuration errors for relaylab (Postfix only logs
  // "unknown smtpd restriction" and answers 451 4.3.5 when the name is reached).
  void validate(const std::string& param, const std::vector<std::string>& list,
                const std::string& def_acl) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string& item = list[i];
      std::string name = lower(item);
      if (item.find(':') != std::string::npos) {
        if (def_acl.empty()) {
          fatal(param,
                "specify one of (check_client_access, check_reverse_client_hostname_"
                "access, check_helo_access, check_sender_access, check_recipient_access, "
                "check_etrn_access) before restriction \"" +
                    item + "\"");
        }
        continue;
      }
      if (restrictions_with_argument().count(name)) {
        if (i + 1 >= list.size()) {
          fatal(param, "restriction " + item + " requires an argument");
        } else if (name.rfind("check_", 0) == 0 && name != "check_policy_service" &&
                   list[i + 1].find(':') == std::string::npos) {
          fatal(param, "restriction " + item + ": bad argument \"" + list[i + 1] +
                           "\": need maptype:mapname");
        }
        if (unsupported_restrictions().count(name)) {
          warning(param, "restriction \"" + item +
                             "\" is not supported by relaylab (needs DNS,"
                             " TLS or an external service) and never matches");
        }
        ++i;
        continue;
      }
      if (simple_restrictions().count(name) || c_->classes.count(name)) continue;
      if (unsupported_restrictions().count(name)) {
        warning(param, "restriction \"" + item +
                           "\" is not supported by relaylab (needs DNS,"
                           " TLS or an external service) and never matches");
        continue;
      }
      fatal(param, "unknown smtpd restriction: \"" + item + "\"");
    }
  }

  // has_required(): Postfix compares names case-sensitively and looks into classes.
  bool has_required(const std::vector<std::string>& list, int depth) {
    static const char* required[] = {
        "reject_unauth_destination", "defer_unauth_destination", "reject", "defer",
        "defer_if_permit",           "check_relay_domains"};
    if (depth > recursion_max) return false;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (list[i] == "warn_if_reject" && i + 1 < list.size()) {
        ++i;
        continue;
      }
      for (const char* r : required) {
        if (list[i] == r) return true;
      }
      if (auto it = c_->classes.find(list[i]); it != c_->classes.end()) {
        if (has_required(it->second, depth + 1)) return true;
      }
    }
    return false;
  }
};

}  // namespace

bool valid_hostname(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  bool non_numeric = false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char ch = name[i];
    bool last = i + 1 == name.size();
    if (is_alnum(ch) || ch == '_') {
      if (++label > 63) return false;
      if (!is_digit(ch)) non_numeric = true;
    } else if (ch == '.') {
      if (label == 0 || last) return false;
      label = 0;
    } else if (ch == '-') {
      non_numeric = true;
      if (++label == 1 || last || name[i + 1] == '.') return false;
    } else {
      return false;
    }
  }
  return non_numeric;
}

bool valid_hostaddr(std::string_view addr) {
  if (addr.find(':') != std::string_view::npos) return valid_ipv6(addr);
  return valid_ipv4(addr);
}

std::string internalize_address(std::string_view path) {
  path = trim(path);
  if (path.size() >= 2 && path.front() == '<' && path.back() == '>') {
    path = path.substr(1, path.size() - 2);
  }
  // Source route "@a,@b:user@domain": Postfix's smtpd keeps only user@domain.
  if (!path.empty() && path.front() == '@') {
    std::size_t colon = path.find(':');
    if (colon != std::string_view::npos) path = path.substr(colon + 1);
  }
  std::string out;
  bool quoted = false;
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '"') {
      quoted = !quoted;
      continue;
    }
    if (c == '\\' && quoted && i + 1 < path.size()) c = path[++i];
    out += c;
  }
  return out;
}

std::unique_ptr<engine> engine::create(const config::parameters& params,
                                       std::vector<config::diagnostic>& diags) {
  builder b(params, diags);
  bool ok = false;
  std::shared_ptr<compiled> c = b.build(ok);
  if (!ok) return nullptr;
  return std::make_unique<engine_impl>(std::move(c));
}

}  // namespace relaylab::policy
