// Access tables: check_access() and the lookup orders of check_domain_access(),
// check_addr_access() and check_mail_access(), and check_table_result(), which turns a table's
// answer (OK, REJECT text, 4xx text, DUNNO, a restriction list ...) into a decision.
#include "relay/policy/evaluator.hpp"
#include "relay/policy/reply.hpp"
#include "relay/policy/text.hpp"

#include <cstring>

namespace relaylab::policy::detail {
namespace {

constexpr int recursion_max = 100;  // access table -> restriction nesting

}  // namespace

const maps::table* evaluator::table(const std::string& spec) const {
  auto it = c_->tables.find(spec);
  return it == c_->tables.end() ? nullptr : it->second.get();
}

// check_table_result(): an access table value to a decision.
status evaluator::table_result(const std::string& value, const std::string& reply_name,
                               const char* reply_class, restriction def_acl) {
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
  if (cmd_len == 3 && !text.empty() && (value[0] == '4' || value[0] == '5') && is_digit(value[1]) &&
      is_digit(value[2])) {
    std::string def = "5.7.1";
    def[0] = value[0];
    auto d = dsn_split(def, text);
    return reject(error_class::policy, std::stoi(value.substr(0, 3)), dsn_fix(d.dsn, reply_class),
                  head + (d.text.empty() ? "Access denied" : d.text));
  }
  if (cmd == "ok" || cmd == "relay") return status::ok;
  if (value.find(':') != std::string::npos) return server_error();
  if (recursion_ > recursion_max) return server_error();
  // A restriction list as the answer: compiled per lookup (access tables mostly answer OK,
  // REJECT or a code).
  restriction_list list;
  list.name = value;
  list.tokens = split_restrictions(value);
  if (list.tokens.empty()) return status::ok;
  compile_steps(list, c_->classes);
  return generic_checks(list, reply_name, reply_class, def_acl);
}

// check_access(): one lookup. Partial keys are only tried in fixed-string tables.
status evaluator::check_access(const std::string& spec, const std::string& key, bool partial,
                               bool& found, const std::string& reply_name, const char* reply_class,
                               restriction def_acl) {
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
status evaluator::check_domain_access(const std::string& spec, const std::string& domain,
                                      bool partial, bool& found, const std::string& reply_name,
                                      const char* reply_class, restriction def_acl) {
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
status evaluator::check_addr_access(const std::string& spec, const std::string& address,
                                    bool& found, const std::string& reply_name,
                                    const char* reply_class, restriction def_acl) {
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

status evaluator::check_namadr_access(const std::string& spec, const std::string& name,
                                      const std::string& addr, bool& found,
                                      const std::string& reply_name, const char* reply_class,
                                      restriction def_acl) {
  status st = check_domain_access(spec, name, false, found, reply_name, reply_class, def_acl);
  if (st != status::dunno || found) return st;
  return check_addr_access(spec, addr, found, reply_name, reply_class, def_acl);
}

// check_mail_access(): user+ext@domain, user@domain, domain (and parents), user+ext@, user@.
status evaluator::check_mail_access(const std::string& spec, const std::string& addr, bool& found,
                                    const std::string& reply_name, const char* reply_class,
                                    restriction def_acl) {
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

}  // namespace relaylab::policy::detail
