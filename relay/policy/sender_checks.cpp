// Sender restrictions: the MAIL FROM address, and who may use it (smtpd_sender_login_maps).
#include "relay/policy/evaluator.hpp"
#include "relay/policy/text.hpp"

namespace relaylab::policy::detail {

status evaluator::sender_restriction(const check_call& call) {
  if (!sender_) return status::dunno;
  const std::string& sender = *sender_;
  bool authenticated = !s_->sasl_username.empty();
  bool login_check = c_->sasl_enable && !sender.empty();
  switch (call.id) {
    case restriction::check_sender_access: {
      bool found = false;
      if (sender.empty()) {
        return check_access(call.st.arg, c_->null_key, false, found, sender, "Sender address",
                            call.def_acl);
      }
      return check_mail_access(call.st.arg, sender, found, sender, "Sender address", call.def_acl);
    }
    case restriction::reject_non_fqdn_sender:
      if (sender.empty()) return status::dunno;
      return reject_non_fqdn_address(sender, "Sender address");
    case restriction::reject_unlisted_sender:
      if (sender.empty()) return status::dunno;
      return check_sender_rcpt_maps(sender);
    case restriction::reject_sender_login_mismatch:
      // A built-in restriction class in Postfix: both halves, in this order.
      if (!login_check) return status::dunno;
      return authenticated ? auth_sender_login_mismatch(sender, false)
                           : unauth_sender_login_mismatch(sender);
    case restriction::reject_authenticated_sender_login_mismatch:
      if (!login_check || !authenticated) return status::dunno;
      return auth_sender_login_mismatch(sender, false);
    case restriction::reject_known_sender_login_mismatch:
      if (!login_check) return status::dunno;
      return authenticated ? auth_sender_login_mismatch(sender, true)
                           : unauth_sender_login_mismatch(sender);
    case restriction::reject_unauthenticated_sender_login_mismatch:
      if (!login_check || authenticated) return status::dunno;
      return unauth_sender_login_mismatch(sender);
    default:
      return server_error();
  }
}

status evaluator::auth_sender_login_mismatch(const std::string& sender, bool allow_unknown) {
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

status evaluator::unauth_sender_login_mismatch(const std::string& sender) {
  if (!c_->sender_login_maps_set) return status::dunno;
  resolved r = resolver_.resolve(sender);
  if (mail_addr_find(c_->sender_login_maps, r.recipient)) {
    return reject(error_class::policy, 553, "5.7.1",
                  bracket(sender) + ": Sender address rejected: not logged in");
  }
  return status::dunno;
}

}  // namespace relaylab::policy::detail
