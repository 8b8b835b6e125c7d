// Recipient restrictions: where the mail goes (relay control), and whether it may.
#include "relay/policy/evaluator.hpp"
#include "relay/policy/text.hpp"

namespace relaylab::policy::detail {

status evaluator::recipient_restriction(const check_call& call) {
  const session_state& s = *s_;
  switch (call.id) {
    case restriction::permit_sasl_authenticated:
      return c_->sasl_enable && !s.sasl_method.empty() ? status::ok : status::dunno;
    case restriction::reject_multi_recipient_bounce:
      if (sender_ && sender_->empty() && s.recipient_count > (where_ == "DATA" ? 1 : 0)) {
        return reject(error_class::policy, c_->mul_rcpt_code, "5.5.3",
                      bracket(call.reply_name) + ": " + call.reply_class +
                          " rejected: Multi-recipient bounce");
      }
      return status::dunno;
    default:
      break;
  }
  if (!recipient_) return status::dunno;
  const std::string& recipient = *recipient_;
  switch (call.id) {
    case restriction::check_recipient_access: {
      bool found = false;
      return check_mail_access(call.st.arg, recipient, found, recipient, "Recipient address",
                               call.def_acl);
    }
    case restriction::permit_auth_destination:
      return permit_auth_destination(recipient);
    case restriction::reject_unauth_destination:
    case restriction::defer_unauth_destination: {
      if (permit_auth_destination(recipient) == status::ok) return status::dunno;
      bool defer = call.id == restriction::defer_unauth_destination;
      return reject(error_class::policy, defer ? c_->relay_code - 100 : c_->relay_code,
                    defer ? "4.7.1" : "5.7.1", bracket(recipient) + ": Relay access denied");
    }
    case restriction::check_relay_domains:
      if (list_match(c_->relay_domains, s.client_name, "")) return status::ok;
      if (permit_auth_destination(recipient) == status::ok) return status::ok;
      return reject(
          error_class::policy, c_->relay_code, "5.7.1",
          bracket(recipient) + ": " + call.reply_class + " rejected: Relay access denied");
    case restriction::reject_non_fqdn_recipient:
      return reject_non_fqdn_address(recipient, "Recipient address");
    case restriction::reject_unlisted_recipient:
      if (recipient.empty()) return status::dunno;
      return check_recipient_rcpt_maps(recipient);
    default:
      return server_error();
  }
}

}  // namespace relaylab::policy::detail
