// HELO restrictions: the name the client gave in HELO/EHLO.
#include "relay/policy/address.hpp"
#include "relay/policy/evaluator.hpp"
#include "relay/policy/text.hpp"
#include "relay/smtp/syntax.hpp"

namespace relaylab::policy::detail {

status evaluator::helo_restriction(const check_call& call) {
  if (!helo_) return status::dunno;
  const std::string& helo = *helo_;
  switch (call.id) {
    case restriction::check_helo_access: {
      bool found = false;
      return check_domain_access(call.st.arg, helo, false, found, helo, "Helo command",
                                 call.def_acl);
    }
    case restriction::reject_invalid_helo_hostname: {
      if (helo[0] == '[') return reject_invalid_hostaddr(helo);
      std::string_view t = truncate_dot(helo);
      if (!smtp::syntax::valid_hostname(t) && !valid_hostaddr(t)) {
        return reject(error_class::policy, c_->bad_name_code, "5.5.2",
                      bracket(helo) + ": Helo command rejected: Invalid name");
      }
      return status::dunno;
    }
    case restriction::reject_non_fqdn_helo_hostname: {
      if (helo[0] == '[') return reject_invalid_hostaddr(helo);
      std::string_view t = truncate_dot(helo);
      if (!smtp::syntax::valid_hostname(t) || t.find('.') == std::string_view::npos) {
        return reject(error_class::policy, c_->non_fqdn_code, "5.5.2",
                      bracket(helo) + ": Helo command rejected: need fully-qualified hostname");
      }
      return status::dunno;
    }
    case restriction::permit_naked_ip_address: {
      if (helo.find_first_not_of("0123456789.:") != std::string::npos) return status::dunno;
      status st = reject_invalid_hostaddr(helo);
      return st == status::dunno ? status::ok : st;
    }
    default:
      return server_error();
  }
}

status evaluator::reject_invalid_hostaddr(const std::string& helo) {
  std::string_view t = helo;
  if (t.size() > 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  if (!valid_mailhost_addr(t)) {
    return reject(error_class::policy, c_->bad_name_code, "5.5.2",
                  bracket(helo) + ": Helo command rejected: invalid ip address");
  }
  return status::dunno;
}

}  // namespace relaylab::policy::detail
