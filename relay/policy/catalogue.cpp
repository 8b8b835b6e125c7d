#include "relay/policy/catalogue.hpp"

#include "relay/policy/text.hpp"

#include <array>

namespace relaylab::policy::detail {
namespace {

using r = restriction;
constexpr bool arg = true;

constexpr std::array catalogue = {
    // Generic.
    restriction_info{"permit", r::permit, false},
    restriction_info{"reject", r::reject, false},
    restriction_info{"defer", r::defer, false},
    restriction_info{"defer_if_permit", r::defer_if_permit, false},
    restriction_info{"defer_if_reject", r::defer_if_reject, false},
    restriction_info{"warn_if_reject", r::warn_if_reject, false},
    restriction_info{"reject_unauth_pipelining", r::reject_unauth_pipelining, false},
    restriction_info{"reject_plaintext_session", r::reject_plaintext_session, false},
    restriction_info{"sleep", r::sleep, arg},
    // Client.
    restriction_info{"permit_mynetworks", r::permit_mynetworks, false},
    restriction_info{"permit_inet_interfaces", r::permit_inet_interfaces, false},
    restriction_info{"reject_unknown_client_hostname", r::reject_unknown_client_hostname, false},
    restriction_info{"reject_unknown_client", r::reject_unknown_client_hostname, false},
    restriction_info{"reject_unknown_reverse_client_hostname",
                     r::reject_unknown_reverse_client_hostname, false},
    restriction_info{"check_client_access", r::check_client_access, arg},
    // Without DNS the reverse name is the client name.
    restriction_info{"check_reverse_client_hostname_access", r::check_client_access, arg},
    restriction_info{"check_sasl_access", r::check_sasl_access, arg},
    // HELO.
    restriction_info{"check_helo_access", r::check_helo_access, arg},
    restriction_info{"reject_invalid_helo_hostname", r::reject_invalid_helo_hostname, false},
    restriction_info{"reject_invalid_hostname", r::reject_invalid_helo_hostname, false},
    restriction_info{"reject_non_fqdn_helo_hostname", r::reject_non_fqdn_helo_hostname, false},
    restriction_info{"reject_non_fqdn_hostname", r::reject_non_fqdn_helo_hostname, false},
    restriction_info{"permit_naked_ip_address", r::permit_naked_ip_address, false},
    // Sender.
    restriction_info{"check_sender_access", r::check_sender_access, arg},
    restriction_info{"reject_non_fqdn_sender", r::reject_non_fqdn_sender, false},
    restriction_info{"reject_unlisted_sender", r::reject_unlisted_sender, false},
    restriction_info{"reject_sender_login_mismatch", r::reject_sender_login_mismatch, false},
    restriction_info{"reject_authenticated_sender_login_mismatch",
                     r::reject_authenticated_sender_login_mismatch, false},
    restriction_info{"reject_known_sender_login_mismatch", r::reject_known_sender_login_mismatch,
                     false},
    restriction_info{"reject_unauthenticated_sender_login_mismatch",
                     r::reject_unauthenticated_sender_login_mismatch, false},
    // Recipient.
    restriction_info{"check_recipient_access", r::check_recipient_access, arg},
    restriction_info{"permit_auth_destination", r::permit_auth_destination, false},
    restriction_info{"reject_unauth_destination", r::reject_unauth_destination, false},
    restriction_info{"defer_unauth_destination", r::defer_unauth_destination, false},
    restriction_info{"check_relay_domains", r::check_relay_domains, false},
    restriction_info{"permit_sasl_authenticated", r::permit_sasl_authenticated, false},
    restriction_info{"reject_non_fqdn_recipient", r::reject_non_fqdn_recipient, false},
    restriction_info{"reject_unlisted_recipient", r::reject_unlisted_recipient, false},
    restriction_info{"check_recipient_maps", r::reject_unlisted_recipient, false},
    restriction_info{"reject_multi_recipient_bounce", r::reject_multi_recipient_bounce, false},
    // Unsupported: they need DNS, TLS, a policy server or the verify service.
    restriction_info{"reject_unknown_helo_hostname", r::unsupported, false},
    restriction_info{"reject_unknown_hostname", r::unsupported, false},
    restriction_info{"reject_unknown_sender_domain", r::unsupported, false},
    restriction_info{"reject_unknown_recipient_domain", r::unsupported, false},
    restriction_info{"reject_unknown_address", r::unsupported, false},
    restriction_info{"reject_unverified_sender", r::unsupported, false},
    restriction_info{"reject_unverified_recipient", r::unsupported, false},
    restriction_info{"permit_mx_backup", r::unsupported, false},
    restriction_info{"permit_tls_clientcerts", r::unsupported, false},
    restriction_info{"permit_tls_all_clientcerts", r::unsupported, false},
    restriction_info{"reject_maps_rbl", r::unsupported, false},
    restriction_info{"check_etrn_access", r::check_etrn_access, arg},
    restriction_info{"check_client_mx_access", r::unsupported, arg},
    restriction_info{"check_client_ns_access", r::unsupported, arg},
    restriction_info{"check_reverse_client_hostname_mx_access", r::unsupported, arg},
    restriction_info{"check_reverse_client_hostname_ns_access", r::unsupported, arg},
    restriction_info{"check_helo_mx_access", r::unsupported, arg},
    restriction_info{"check_helo_ns_access", r::unsupported, arg},
    restriction_info{"check_sender_mx_access", r::unsupported, arg},
    restriction_info{"check_sender_ns_access", r::unsupported, arg},
    restriction_info{"check_recipient_mx_access", r::unsupported, arg},
    restriction_info{"check_recipient_ns_access", r::unsupported, arg},
    restriction_info{"check_ccert_access", r::unsupported, arg},
    restriction_info{"check_policy_service", r::unsupported, arg},
    restriction_info{"reject_rbl_client", r::unsupported, arg},
    restriction_info{"reject_rbl", r::unsupported, arg},
    restriction_info{"permit_dnswl_client", r::unsupported, arg},
    restriction_info{"reject_rhsbl_client", r::unsupported, arg},
    restriction_info{"permit_rhswl_client", r::unsupported, arg},
    restriction_info{"reject_rhsbl_reverse_client", r::unsupported, arg},
    restriction_info{"reject_rhsbl_helo", r::unsupported, arg},
    restriction_info{"reject_rhsbl_sender", r::unsupported, arg},
    restriction_info{"reject_rhsbl_recipient", r::unsupported, arg},
};

void warn_unsupported(std::vector<config::diagnostic>& diags, const std::string& param,
                      const std::string& item) {
  add_diagnostic(diags, config::diagnostic::severity::warning, param,
                 "restriction \"" + item +
                     "\" is not supported by relaylab (needs DNS,"
                     " TLS or an external service) and never matches");
}

}  // namespace

void add_diagnostic(std::vector<config::diagnostic>& diags, config::diagnostic::severity level,
                    const std::string& param, std::string msg) {
  config::diagnostic d;
  d.level = level;
  d.parameter = param;
  d.message = std::move(msg);
  diags.push_back(std::move(d));
}

const restriction_info* find_restriction(std::string_view name) {
  for (const auto& info : catalogue) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

void compile_steps(restriction_list& list, const class_map& classes) {
  const auto& tokens = list.tokens;
  list.steps.clear();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    step st;
    st.text = tokens[i];
    if (tokens[i].find(':') != std::string::npos) {
      st.what = step::kind::table;
      st.arg = tokens[i];
      list.steps.push_back(std::move(st));
      continue;
    }
    std::string key = lower(tokens[i]);
    const restriction_info* info = find_restriction(key);
    if (info && info->id == restriction::warn_if_reject) {
      st.what = step::kind::warn_if_reject;
      st.id = restriction::warn_if_reject;
    } else if (info) {
      st.what = step::kind::builtin;
      st.id = info->id;
      if (info->takes_argument) {
        if (i + 1 >= tokens.size()) {
          st.what = step::kind::missing_argument;
        } else {
          st.arg = tokens[++i];
        }
      }
    } else if (auto it = classes.find(key); it != classes.end()) {
      st.what = step::kind::restriction_class;
      st.class_list = &it->second;
    } else {
      st.what = step::kind::unknown;
    }
    list.steps.push_back(std::move(st));
  }
}

void validate_list(const restriction_list& list, const std::string& param, restriction def_acl,
                   const class_map& classes, std::vector<config::diagnostic>& diags) {
  using sev = config::diagnostic::severity;
  const auto& tokens = list.tokens;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const std::string& item = tokens[i];
    std::string name = lower(item);
    if (item.find(':') != std::string::npos) {
      if (def_acl == restriction::none) {
        add_diagnostic(diags, sev::fatal, param,
                       "specify one of (check_client_access, check_reverse_client_hostname_"
                       "access, check_helo_access, check_sender_access, check_recipient_access, "
                       "check_etrn_access) before restriction \"" +
                           item + "\"");
      }
      continue;
    }
    const restriction_info* info = find_restriction(name);
    if (info && info->takes_argument) {
      if (i + 1 >= tokens.size()) {
        add_diagnostic(diags, sev::fatal, param, "restriction " + item + " requires an argument");
      } else if (name.rfind("check_", 0) == 0 && name != "check_policy_service" &&
                 tokens[i + 1].find(':') == std::string::npos) {
        add_diagnostic(diags, sev::fatal, param,
                       "restriction " + item + ": bad argument \"" + tokens[i + 1] +
                           "\": need maptype:mapname");
      }
      if (info->id == restriction::unsupported) warn_unsupported(diags, param, item);
      ++i;
      continue;
    }
    if ((info && info->id != restriction::unsupported) || classes.count(name)) continue;
    if (info) {
      warn_unsupported(diags, param, item);
      continue;
    }
    add_diagnostic(diags, sev::fatal, param, "unknown smtpd restriction: \"" + item + "\"");
  }
}

bool has_required(const restriction_list& list, const class_map& classes, int depth) {
  static constexpr std::string_view required[] = {
      "reject_unauth_destination", "defer_unauth_destination", "reject", "defer",
      "defer_if_permit",           "check_relay_domains"};
  constexpr int depth_max = 100;
  if (depth > depth_max) return false;
  const auto& tokens = list.tokens;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == "warn_if_reject" && i + 1 < tokens.size()) {
      ++i;
      continue;
    }
    for (std::string_view r : required) {
      if (tokens[i] == r) return true;
    }
    if (auto it = classes.find(tokens[i]); it != classes.end()) {
      if (has_required(it->second, classes, depth + 1)) return true;
    }
  }
  return false;
}

}  // namespace relaylab::policy::detail
