// Which Postfix parameters relaylab implements, warns about or refuses, and the start-up check
// that applies the classification to main.cf and master.cf -o overrides.
#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "relay/config/config.hpp"
#include "relay/config/text.hpp"

namespace relaylab::config {
namespace {

// The reasons shared by the service-derived rules below.
constexpr std::string_view scheduling_reason =
    "queue manager scheduling tuning (concurrency feedback, delivery slots, recipient batching)";

// relay/tls checks the delivery agent's TLS promises in the -o lines of smtp and lmtp services.
bool read_per_delivery_service(const master_service& s, std::string_view name) {
  if (s.command != "smtp" && s.command != "lmtp") return false;
  return name.rfind("smtp_tls_", 0) == 0 || name == "smtp_use_tls" || name == "smtp_enforce_tls";
}

// Names that only choose how log lines are labelled: an -o override that relaylab does not
// read changes nothing else.
constexpr std::string_view logging_only[] = {"syslog_name"};

bool same_words(const std::string& a, const std::string& b) {
  return split_list(a) == split_list(b);
}

bool same_words_nocase(const std::string& a, const std::string& b) {
  auto x = split_list(a), y = split_list(b);
  if (x.size() != y.size()) return false;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (x[i].size() != y[i].size()) return false;
    for (std::size_t k = 0; k < x[i].size(); ++k) {
      if (std::tolower(static_cast<unsigned char>(x[i][k])) !=
          std::tolower(static_cast<unsigned char>(y[i][k]))) {
        return false;
      }
    }
  }
  return true;
}

std::string excerpt(std::string_view s) {
  constexpr std::size_t excerpt_bytes_max = 60;
  std::string out = printable(s.substr(0, excerpt_bytes_max));
  if (s.size() > excerpt_bytes_max) out += "...";
  return out;
}

// The diagnostic for a warned or refused parameter whose value is not its default.
diagnostic judge(const parameters& p, const std::string& name, const support_entry& e,
                 const parameters::origin& where) {
  diagnostic d;
  d.file = where.file;
  d.line = where.line;
  d.parameter = name;
  const std::string value = excerpt(p.raw(name).value_or(""));
  if (e.level == support_class::warned) {
    d.level = diagnostic::severity::warning;
    d.message = name + " is not implemented by relaylab; ignored (" + std::string(e.reason) + ")";
  } else {
    d.level = diagnostic::severity::fatal;
    d.message = name + " = " + value + " is not implemented by relaylab and would change what " +
                "the relay promises (" + std::string(e.reason) + "); remove it or set it to " +
                "its default \"" + excerpt(p.default_value(name).value_or("")) + "\"";
  }
  return d;
}

}  // namespace

std::string_view to_string(support_class c) {
  switch (c) {
    case support_class::implemented:
      return "implemented";
    case support_class::warned:
      return "warned";
    case support_class::refused:
      return "refused";
  }
  return "?";
}

const std::vector<support_entry>& support_table() {
  static const std::vector<support_entry> table = {
#include "relay/config/support.inc"
  };
  return table;
}

const std::vector<service_support_rule>& service_support_rules() {
  using c = support_class;
  // The suffixes of parameters::add_service_parameters; per-transport limits are read by the
  // queue manager for the smtp and relay transports (local's are built-in names).
  static const std::vector<service_support_rule> rules = {
      {"_time_limit", c::warned, "pipe(8) and spawn(8) time limit; relaylab runs neither", {}},
      {"_recipient_limit", c::warned, scheduling_reason, {}},
      {"_extra_recipient_limit", c::warned, scheduling_reason, {}},
      {"_recipient_refill_limit", c::warned, scheduling_reason, {}},
      {"_recipient_refill_delay", c::warned, scheduling_reason, {}},
      {"_delivery_slot_cost", c::warned, scheduling_reason, {}},
      {"_delivery_slot_loan", c::warned, scheduling_reason, {}},
      {"_delivery_slot_discount", c::warned, scheduling_reason, {}},
      {"_minimum_delivery_slots", c::warned, scheduling_reason, {}},
      {"_initial_destination_concurrency", c::warned, scheduling_reason, {}},
      {"_destination_concurrency_limit",
       c::refused,
       "relaylab reads per-transport limits only for the smtp, relay and local transports",
       {"smtp", "relay"}},
      {"_destination_recipient_limit",
       c::refused,
       "relaylab reads per-transport limits only for the smtp, relay and local transports",
       {"smtp", "relay"}},
      {"_destination_concurrency_positive_feedback", c::warned, scheduling_reason, {}},
      {"_destination_concurrency_negative_feedback", c::warned, scheduling_reason, {}},
      {"_destination_concurrency_failed_cohort_limit", c::warned, scheduling_reason, {}},
      {"_destination_rate_delay", c::refused, "a limit relaylab does not enforce", {}},
      {"_transport_rate_delay", c::refused, "a limit relaylab does not enforce", {}},
  };
  return rules;
}

std::optional<support_entry> classify(std::string_view name, const parameters& p) {
  const auto& table = support_table();
  auto it = std::lower_bound(table.begin(), table.end(), name,
                             [](const support_entry& e, std::string_view n) { return e.name < n; });
  if (it != table.end() && it->name == name) return *it;
  if (!p.is_known(name)) return std::nullopt;
  // A service-derived name: the longest matching suffix decides.
  const service_support_rule* best = nullptr;
  for (const auto& r : service_support_rules()) {
    if (name.size() > r.suffix.size() && name.substr(name.size() - r.suffix.size()) == r.suffix &&
        (!best || r.suffix.size() > best->suffix.size())) {
      best = &r;
    }
  }
  if (!best) return std::nullopt;
  std::string_view service = name.substr(0, name.size() - best->suffix.size());
  bool read = std::find(best->implemented_for.begin(), best->implemented_for.end(), service) !=
              best->implemented_for.end();
  if (read) return support_entry{name, support_class::implemented, "read by the queue manager"};
  return support_entry{name, best->level, best->reason};
}

// Values of refused parameters that describe what relaylab does anyway, so they promise
// nothing it breaks (Debian's postinst writes mailbox_size_limit = 0).
struct kept_value {
  std::string_view name;
  std::string_view value;
};
constexpr kept_value kept_values[] = {{"mailbox_size_limit", "0"}};

bool keeps_value(const parameters& p, std::string_view name) {
  for (const auto& k : kept_values)
    if (k.name == name && same_words(p.get(name), std::string(k.value))) return true;
  return false;
}

bool has_default_value(const parameters& p, std::string_view name) {
  auto def = p.default_value(name);
  if (!def) return false;
  const std::string raw = p.raw(name).value_or("");
  if (same_words(raw, *def)) return true;
  // Raw parameters are expanded per request ($client_address in smtpd_reject_footer): only
  // their text counts.
  if (parameters_is_raw(name)) return false;
  const std::string value = p.get(name);
  const std::string expanded_default = p.expand(*def).value;
  if (p.type_of(name) == value_type::boolean) return same_words_nocase(value, expanded_default);
  return same_words(value, expanded_default);
}

std::vector<diagnostic> check_support(const parameters& p) {
  std::vector<diagnostic> out;
  for (const auto& name : p.set_names()) {
    auto where = p.origin_of(name);
    if (!where) continue;
    auto e = classify(name, p);
    if (!e || e->level == support_class::implemented) continue;
    if (has_default_value(p, name) || keeps_value(p, name)) continue;
    out.push_back(judge(p, name, *e, *where));
  }
  std::stable_sort(out.begin(), out.end(), [](const diagnostic& a, const diagnostic& b) {
    return std::tie(a.file, a.line) < std::tie(b.file, b.line);
  });
  return out;
}

std::vector<diagnostic> check_service_support(const parameters& main,
                                              const master_service& service) {
  std::vector<diagnostic> out;
  if (service.overrides.empty()) return out;
  const parameters view = main.with_service_overrides(service);
  const bool honoured = service.type == "inet" && service.command == "smtpd";
  const parameters::origin where{service.file, service.line};
  std::set<std::string, std::less<>> seen;
  for (auto it = service.overrides.rbegin(); it != service.overrides.rend(); ++it) {
    const std::string& name = it->first;
    if (!seen.insert(name).second) continue;  // the last -o of a name is the one that counts
    auto e = classify(name, view);
    if (!e) continue;
    if (e->level != support_class::implemented) {
      if (!has_default_value(view, name) && !keeps_value(view, name))
        out.push_back(judge(view, name, *e, where));
      continue;
    }
    if (honoured || read_per_delivery_service(service, name) ||
        same_words(view.get(name), main.get(name))) {
      continue;
    }
    const bool logging =
        std::find(std::begin(logging_only), std::end(logging_only), name) != std::end(logging_only);
    diagnostic d;
    d.file = service.file;
    d.line = service.line;
    d.parameter = name;
    const std::string what = name + " = " + excerpt(it->second) + " in service " + service.name +
                             " (" + service.type + " " + service.command + ")";
    if (logging) {
      d.level = diagnostic::severity::warning;
      d.message = what +
                  " is not implemented by relaylab; ignored (relaylab reads -o overrides only on "
                  "inet smtpd services; this one only names log lines)";
    } else {
      d.level = diagnostic::severity::fatal;
      d.message = what +
                  " is not implemented by relaylab and would change what the relay promises "
                  "(relaylab reads -o overrides only on inet smtpd services, and uses main.cf's "
                  "value here); move it to main.cf or remove it";
    }
    out.push_back(std::move(d));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace relaylab::config
