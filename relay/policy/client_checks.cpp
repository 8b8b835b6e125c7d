// Client restrictions: who is connecting (address, name, SASL login).
#include "relay/policy/evaluator.hpp"
#include "relay/policy/text.hpp"

namespace relaylab::policy::detail {

status evaluator::client_restriction(const check_call& call) {
  const session_state& s = *s_;
  bool found = false;
  switch (call.id) {
    case restriction::reject_unknown_client_hostname:
    case restriction::reject_unknown_reverse_client_hostname:
      if (s.client_name == "unknown") {
        bool reverse = call.id == restriction::reject_unknown_reverse_client_hostname;
        // Postfix 3.7: 4.7.25 (RFC 7372) when the name does not verify, still 4.7.1 when
        // there is no reverse name at all.
        return reject(error_class::policy, c_->unk_client_code, reverse ? "4.7.1" : "4.7.25",
                      std::string("Client host rejected: cannot find your ") +
                          (reverse ? "reverse " : "") + "hostname, [" + s.client_addr + "]");
      }
      return status::dunno;
    case restriction::permit_inet_interfaces:
      return is_own_address(c_->own_addresses, s.client_addr) ? status::ok : status::dunno;
    case restriction::permit_mynetworks:
      return list_match(c_->mynetworks, s.client_name, s.client_addr) ? status::ok : status::dunno;
    case restriction::check_client_access:
      return check_namadr_access(call.st.arg, s.client_name, s.client_addr, found, s.namaddr(),
                                 "Client host", call.def_acl);
    case restriction::check_sasl_access:
      if (!c_->sasl_enable || s.sasl_username.empty()) return status::dunno;
      return check_access(call.st.arg, s.sasl_username, false, found, s.sasl_username,
                          "SASL login name", call.def_acl);
    default:
      return server_error();
  }
}

}  // namespace relaylab::policy::detail
