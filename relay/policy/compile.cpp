// engine::create(): reads one service's parameters, opens every table once, compiles the
// restriction lists into steps and validates them.
#include "relay/policy/compiled.hpp"
#include "relay/policy/evaluator.hpp"
#include "relay/policy/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace relaylab::policy {
namespace detail {
namespace {

using config::diagnostic;

constexpr std::size_t list_file_bytes_max = 1u << 20;

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
    // Postfix matches these as mynetworks: same syntax and parent-domain style. The default
    // "$mynetworks" must see mynetworks_style's value when mynetworks itself is unset.
    const std::string excl_raw{
        trim(p_.raw("smtpd_forbid_bare_newline_exclusions").value_or("$mynetworks"))};
    c->bare_newline_exclusions = make_list("smtpd_forbid_bare_newline_exclusions",
                                           excl_raw == "$mynetworks" || excl_raw == "${mynetworks}"
                                               ? mynetworks_value()
                                               : p_.get("smtpd_forbid_bare_newline_exclusions"),
                                           parent("mynetworks"), true);
    // smtpd_client_event_limit_exceptions' default is
    // ${smtpd_client_connection_limit_exceptions:$mynetworks}: mynetworks (with
    // mynetworks_style when unset) unless the old parameter name is set.
    const std::string hog_raw{trim(p_.raw("smtpd_client_event_limit_exceptions")
                                       .value_or("${smtpd_client_connection_limit_exceptions:"
                                                 "$mynetworks}"))};
    const bool hog_mynetworks =
        hog_raw == "$mynetworks" || hog_raw == "${mynetworks}" ||
        (hog_raw == "${smtpd_client_connection_limit_exceptions:$mynetworks}" &&
         trim(p_.raw("smtpd_client_connection_limit_exceptions").value_or("")).empty());
    c->event_limit_exceptions = make_list(
        "smtpd_client_event_limit_exceptions",
        hog_mynetworks ? mynetworks_value() : p_.get("smtpd_client_event_limit_exceptions"),
        parent("smtpd_client_event_limit_exceptions"), true);
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

    c->client = read_list("smtpd_client_restrictions");
    c->helo = read_list("smtpd_helo_restrictions");
    c->sender = read_list("smtpd_sender_restrictions");
    c->relay = read_list("smtpd_relay_restrictions");
    c->recipient = read_list("smtpd_recipient_restrictions");
    c->data = read_list("smtpd_data_restrictions");
    c->eod = read_list("smtpd_end_of_data_restrictions");
    c->etrn = read_list("smtpd_etrn_restrictions");
    for (const auto& name : split_restrictions(p_.get("smtpd_restriction_classes"))) {
      std::string value = p_.get(name);
      if (trim(value).empty()) {
        fatal("smtpd_restriction_classes", "restriction class `" + name + "' needs a definition");
        continue;
      }
      c->classes[lower(name)] = read_list(name);
    }
    // Steps name classes, so every class exists before any list is compiled.
    for (auto* list : {&c->client, &c->helo, &c->sender, &c->relay, &c->recipient, &c->data,
                       &c->eod, &c->etrn}) {
      compile_steps(*list, c->classes);
    }
    for (auto& [name, list] : c->classes) compile_steps(list, c->classes);

    using r = restriction;
    validate_list(c->client, "smtpd_client_restrictions", r::check_client_access, c->classes,
                  diags_);
    validate_list(c->helo, "smtpd_helo_restrictions", r::check_helo_access, c->classes, diags_);
    validate_list(c->sender, "smtpd_sender_restrictions", r::check_sender_access, c->classes,
                  diags_);
    validate_list(c->relay, "smtpd_relay_restrictions", r::check_recipient_access, c->classes,
                  diags_);
    validate_list(c->recipient, "smtpd_recipient_restrictions", r::check_recipient_access,
                  c->classes, diags_);
    validate_list(c->data, "smtpd_data_restrictions", r::none, c->classes, diags_);
    validate_list(c->eod, "smtpd_end_of_data_restrictions", r::none, c->classes, diags_);
    validate_list(c->etrn, "smtpd_etrn_restrictions", r::check_etrn_access, c->classes, diags_);
    for (const auto& [name, list] : c->classes) {
      validate_list(list, name, r::check_recipient_access, c->classes, diags_);
    }

    // People screw up the relay restrictions too often (Postfix's words): require one
    // restriction that rejects by default.
    if (!has_required(c->recipient, c->classes) && !has_required(c->relay, c->classes)) {
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
    add_diagnostic(diags_, diagnostic::severity::fatal, param, std::move(msg));
  }
  void warning(const std::string& param, std::string msg) {
    add_diagnostic(diags_, diagnostic::severity::warning, param, std::move(msg));
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

  restriction_list read_list(const std::string& param) {
    restriction_list list;
    list.name = param;
    list.tokens = split_restrictions(p_.get(param));
    // Open tables now (before any chroot, in Postfix): "type:name" tokens.
    for (const auto& item : list.tokens) {
      if (item.find(':') != std::string::npos) open_table(param, item);
    }
    return list;
  }
};

}  // namespace
}  // namespace detail

std::unique_ptr<engine> engine::create(const config::parameters& params,
                                       std::vector<config::diagnostic>& diags) {
  detail::builder b(params, diags);
  bool ok = false;
  std::shared_ptr<detail::compiled> c = b.build(ok);
  if (!ok) return nullptr;
  return std::make_unique<detail::evaluator>(std::move(c));
}

}  // namespace relaylab::policy
