// The restriction catalogue: every restriction name relaylab knows, whether it takes an
// argument, and which check carries it out. One table, used both to validate restriction lists
// at create() and to compile them into steps the evaluator dispatches on without comparing
// strings.
#pragma once

#include "relay/config/config.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::policy::detail {

/// A built-in restriction. Aliases share one value (reject_unknown_client is
/// reject_unknown_client_hostname; check_recipient_maps is reject_unlisted_recipient).
enum class restriction : std::uint8_t {
  none,  // no default access restriction (data and end-of-data lists)
  // Generic.
  permit,
  reject,
  defer,
  defer_if_permit,
  defer_if_reject,
  warn_if_reject,
  reject_unauth_pipelining,
  reject_plaintext_session,
  sleep,
  // Client.
  permit_mynetworks,
  permit_inet_interfaces,
  reject_unknown_client_hostname,
  reject_unknown_reverse_client_hostname,
  check_client_access,
  check_sasl_access,
  // HELO.
  check_helo_access,
  reject_invalid_helo_hostname,
  reject_non_fqdn_helo_hostname,
  permit_naked_ip_address,
  // Sender.
  check_sender_access,
  reject_non_fqdn_sender,
  reject_unlisted_sender,
  reject_sender_login_mismatch,
  reject_authenticated_sender_login_mismatch,
  reject_known_sender_login_mismatch,
  reject_unauthenticated_sender_login_mismatch,
  // Recipient.
  check_recipient_access,
  permit_auth_destination,
  reject_unauth_destination,
  defer_unauth_destination,
  check_relay_domains,
  permit_sasl_authenticated,
  reject_non_fqdn_recipient,
  reject_unlisted_recipient,
  reject_multi_recipient_bounce,
  // ETRN.
  check_etrn_access,
  // Needs DNS, TLS, a policy server or the verify service: recognised, never decides.
  unsupported,
};

struct restriction_info {
  std::string_view name;
  restriction id;
  bool takes_argument;
};

/// Appends a diagnostic naming `param`.
void add_diagnostic(std::vector<config::diagnostic>& diags, config::diagnostic::severity level,
                    const std::string& param, std::string msg);

/// The catalogue entry for a lower-cased restriction name, or nullptr.
const restriction_info* find_restriction(std::string_view name);

/// A restriction list (a parameter or a restriction class) compiled into steps.
struct restriction_list;
struct step {
  enum class kind : std::uint8_t {
    builtin,            // `id` (with `arg` when it takes one)
    table,              // "type:name" alone: the list's default access check on `arg`
    restriction_class,  // `class_list`
    warn_if_reject,
    missing_argument,  // a restriction that takes an argument, at the end of the list
    unknown,           // not a restriction: "451 4.3.5 Server configuration error"
  };
  kind what = kind::unknown;
  restriction id = restriction::none;
  std::string text;  // the restriction as written, e.g. "check_client_access"
  std::string arg;   // its argument (or the table of kind::table)
  const restriction_list* class_list = nullptr;
};

struct restriction_list {
  std::string name;                 // "smtpd_recipient_restrictions", or the class name
  std::vector<std::string> tokens;  // as split from the parameter value
  std::vector<step> steps;
};

/// smtpd_restriction_classes by lower-cased name.
using class_map = std::map<std::string, restriction_list, std::less<>>;

/// Compiles `list.tokens` into `list.steps` (built-ins first, then classes, as Postfix looks
/// them up).
void compile_steps(restriction_list& list, const class_map& classes);

/// Checks `list` as Postfix would at start-up, and stricter: unknown restriction names are
/// fatal (Postfix only logs "unknown smtpd restriction" and answers 451 4.3.5 when it reaches
/// one), so are a table without a default access restriction (data lists) and a missing or
/// non-table argument; unsupported restrictions are warned. `def_acl` is none for data lists.
void validate_list(const restriction_list& list, const std::string& param, restriction def_acl,
                   const class_map& classes, std::vector<config::diagnostic>& diags);

/// Postfix's check for a restriction that rejects by default (reject_unauth_destination, ...),
/// looking into restriction classes; names compare case-sensitively, as in Postfix.
bool has_required(const restriction_list& list, const class_map& classes, int depth = 0);

}  // namespace relaylab::policy::detail
