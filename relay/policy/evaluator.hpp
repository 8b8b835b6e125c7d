// The per-session evaluator: Postfix's generic_checks() over compiled restriction lists, the
// stage drivers (smtpd_check_client/helo/mail/rcpt/data/eod), the deferral flags and reject().
//
// One class, its member functions spread over one file per concept:
//   evaluator.cpp        stage drivers, generic_checks(), dispatch, reject(), generic restrictions
//   client_checks.cpp    permit_mynetworks, check_client_access, reject_unknown_client_hostname ...
//   helo_checks.cpp      check_helo_access, reject_invalid_helo_hostname ...
//   sender_checks.cpp    check_sender_access, reject_*_sender_login_mismatch ...
//   recipient_checks.cpp reject_unauth_destination, check_recipient_access ...
//   address_checks.cpp   what sender and recipient checks share: FQDN test, recipient maps,
//                        permit_auth_destination
//   access_maps.cpp      check_access() and its domain/address/mail-address variants,
//                        check_table_result()
#pragma once

#include "relay/policy/address_class.hpp"
#include "relay/policy/compiled.hpp"
#include "relay/policy/policy.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace relaylab::policy::detail {

struct deferral {
  bool active = false;
  error_class cls = error_class::policy;
  int code = 0;
  std::string dsn;
  std::string reason;
  std::string decider;  // the restriction that asked for it (last_decider())
};

/// One restriction being evaluated: the step, and what the enclosing list rejects.
struct check_call {
  const step& st;                 // as written (a bare table is the default access check)
  restriction id;                 // what to run
  const std::string& reply_name;  // "<name>" in reject texts: client, helo, address, ...
  const char* reply_class;        // "Client host", "Sender address", ...
  restriction def_acl;            // what a bare "type:name" in the list means
};

class evaluator final : public engine {
 public:
  explicit evaluator(std::shared_ptr<const compiled> c) : c_(std::move(c)), resolver_(*c_) {}

  std::unique_ptr<engine> new_session() const override;
  std::vector<rejection> take_warnings() override;
  std::string last_decider() const override { return decider_; }

  std::optional<rejection> check_client(session_state& s) override;
  std::optional<rejection> check_helo(session_state& s) override;
  std::optional<rejection> check_mail(session_state& s) override;
  std::optional<rejection> check_rcpt(session_state& s) override;
  std::optional<rejection> check_vrfy(session_state& s) override;
  std::optional<rejection> check_etrn(session_state& s) override;
  std::optional<rejection> check_data(session_state& s) override;
  std::optional<rejection> check_end_of_data(session_state& s) override;

  void reset_transaction() override { defer_if_permit_sender_ = false; }
  void reset_session() override {
    defer_if_permit_client_ = defer_if_permit_helo_ = defer_if_permit_sender_ = false;
  }

  bool in_mynetworks(const std::string& addr) const override;
  bool is_local_domain(const std::string& domain) const override;
  bool is_relay_domain(const std::string& domain) const override;
  bool address_resolves(std::string_view address, bool smtputf8) const override;
  bool xclient_authorized(const std::string& name, const std::string& addr) const override;
  bool bare_newline_excluded(const std::string& name, const std::string& addr) const override;
  bool event_limit_excepted(const std::string& name, const std::string& addr) const override;

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
  std::string decider_;  // last_decider()
  std::string current_;  // the restriction being run, "LIST: NAME [ARG]"

  std::shared_ptr<const compiled> c_;
  resolver resolver_;

  // evaluator.cpp
  void begin(const session_state& s, std::string where);
  std::optional<rejection> finish(bool rejected);
  void check_reset();
  status reject(error_class cls, int code, std::string_view dsn, const std::string& text);
  status server_error();
  void defer_if(deferral& d, int code, std::string dsn, std::string reason);
  status defer_if_permit(int code, std::string dsn, std::string reason);

  status client_stage(const session_state& s);
  status helo_stage(const std::string& helo);
  status mail_stage(const std::string* sender);
  status rcpt_stage(const session_state& s);
  status data_stage(const session_state& s, const restriction_list& list, const char* reply_name,
                    const char* reply_class);

  status generic_checks(const restriction_list& list, const std::string& reply_name,
                        const char* reply_class, restriction def_acl);
  status run_builtin(const check_call& call);
  status generic_restriction(const check_call& call);

  // client_checks.cpp, helo_checks.cpp, sender_checks.cpp, recipient_checks.cpp
  status client_restriction(const check_call& call);
  status helo_restriction(const check_call& call);
  status reject_invalid_hostaddr(const std::string& helo);
  status sender_restriction(const check_call& call);
  status auth_sender_login_mismatch(const std::string& sender, bool allow_unknown);
  status unauth_sender_login_mismatch(const std::string& sender);
  status recipient_restriction(const check_call& call);

  // address_checks.cpp
  status reject_non_fqdn_address(const std::string& addr, const char* reply_class);
  status permit_auth_destination(const std::string& recipient);
  bool mail_addr_find(const std::vector<const maps::table*>& tables, const std::string& addr,
                      std::string* value = nullptr) const;
  status check_recipient_rcpt_maps(const std::string& recipient);
  status check_sender_rcpt_maps(const std::string& sender);
  status check_rcpt_maps(const std::string& addr, const char* reply_class);
  std::optional<std::string> strip_extension(const std::string& addr) const;

  // access_maps.cpp
  const maps::table* table(const std::string& spec) const;
  status table_result(const std::string& value, const std::string& reply_name,
                      const char* reply_class, restriction def_acl);
  status check_access(const std::string& spec, const std::string& key, bool partial, bool& found,
                      const std::string& reply_name, const char* reply_class, restriction def_acl);
  status check_domain_access(const std::string& spec, const std::string& domain, bool partial,
                             bool& found, const std::string& reply_name, const char* reply_class,
                             restriction def_acl);
  status check_addr_access(const std::string& spec, const std::string& address, bool& found,
                           const std::string& reply_name, const char* reply_class,
                           restriction def_acl);
  status check_namadr_access(const std::string& spec, const std::string& name,
                             const std::string& addr, bool& found, const std::string& reply_name,
                             const char* reply_class, restriction def_acl);
  status check_mail_access(const std::string& spec, const std::string& addr, bool& found,
                           const std::string& reply_name, const char* reply_class,
                           restriction def_acl);
};

}  // namespace relaylab::policy::detail
