// The structure follows Postfix's smtpd_check.c on purpose, so that differences can be found by
// reading the two side by side: generic_checks() walks a restriction list, reject() is
// smtpd_check_reject() (the only place that turns a decision into a reject reply).
#include "relay/policy/evaluator.hpp"

#include <algorithm>

#include "relay/policy/reply.hpp"
#include "relay/policy/text.hpp"

namespace relaylab::policy::detail {
namespace {

std::string namaddr(const session_state& s) { return s.namaddr(); }

}  // namespace

std::unique_ptr<engine> evaluator::new_session() const { return std::make_unique<evaluator>(c_); }

std::vector<rejection> evaluator::take_warnings() {
  std::vector<rejection> out;
  out.swap(warnings_);
  return out;
}

std::optional<rejection> evaluator::check_client(session_state& s) {
  if (c_->delay_reject) return std::nullopt;
  begin(s, "CONNECT");
  return finish(client_stage(s) == status::reject);
}

std::optional<rejection> evaluator::check_helo(session_state& s) {
  if (c_->delay_reject) return std::nullopt;
  begin(s, s.protocol == "ESMTP" ? "EHLO" : "HELO");
  return finish(helo_stage(s.helo_name) == status::reject);
}

std::optional<rejection> evaluator::check_mail(session_state& s) {
  if (c_->delay_reject) return std::nullopt;
  begin(s, "MAIL");
  return finish(mail_stage(&s.sender) == status::reject);
}

std::optional<rejection> evaluator::check_rcpt(session_state& s) {
  begin(s, "RCPT");
  return finish(rcpt_stage(s) == status::reject);
}

std::optional<rejection> evaluator::check_vrfy(session_state& s) {
  begin(s, "VRFY");
  return finish(rcpt_stage(s) == status::reject);
}

// smtpd_check_etrn(): the delayed client and helo restrictions, then smtpd_etrn_restrictions
// with the domain as the name in replies ("<domain>: Etrn command rejected: ..."), with the
// defer_if_permit of the client and helo stages still pending.
std::optional<rejection> evaluator::check_etrn(session_state& s) {
  begin(s, "ETRN");
  if (c_->delay_reject &&
      (client_stage(s) == status::reject || (helo_ && helo_stage(*helo_) == status::reject))) {
    return finish(true);
  }
  defer_if_permit_.active = defer_if_permit_client_ || defer_if_permit_helo_;
  check_reset();
  status st = c_->etrn.steps.empty() ? status::dunno
                                     : generic_checks(c_->etrn, s.etrn_name, "Etrn command",
                                                      restriction::check_etrn_access);
  if (st != status::reject && defer_if_permit_.active) {
    st = reject(defer_if_permit_.cls, defer_if_permit_.code, defer_if_permit_.dsn,
                defer_if_permit_.reason);
    decider_ = defer_if_permit_.decider;
  }
  return finish(st == status::reject);
}

std::optional<rejection> evaluator::check_data(session_state& s) {
  begin(s, "DATA");
  return finish(data_stage(s, c_->data, "DATA", "Data command") == status::reject);
}

std::optional<rejection> evaluator::check_end_of_data(session_state& s) {
  begin(s, "END-OF-MESSAGE");
  return finish(data_stage(s, c_->eod, "END-OF-MESSAGE", "End-of-data") == status::reject);
}

bool evaluator::in_mynetworks(const std::string& addr) const {
  return list_match(c_->mynetworks, "", addr);
}

bool evaluator::is_local_domain(const std::string& domain) const {
  return resolver_.is_local(domain);
}

bool evaluator::address_resolves(std::string_view address, bool smtputf8) const {
  if (address.empty()) return true;
  const auto r = resolver_.resolve(address);
  if (r.error || (!r.recipient.empty() && r.recipient.front() == '-')) return false;
  const auto at = r.recipient.rfind('@');
  if (smtputf8 || at == std::string::npos) return true;
  return std::all_of(r.recipient.begin() + static_cast<std::ptrdiff_t>(at) + 1, r.recipient.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool evaluator::is_relay_domain(const std::string& domain) const {
  return list_match(c_->relay_domains, lower(truncate_dot(domain)), "");
}

bool evaluator::xclient_authorized(const std::string& name, const std::string& addr) const {
  return list_match(c_->xclient_hosts, name, addr);
}

bool evaluator::bare_newline_excluded(const std::string& name, const std::string& addr) const {
  return list_match(c_->bare_newline_exclusions, name, addr);
}

bool evaluator::event_limit_excepted(const std::string& name, const std::string& addr) const {
  return list_match(c_->event_limit_exceptions, name, addr);
}

void evaluator::begin(const session_state& s, std::string where) {
  s_ = &s;
  where_ = std::move(where);
  helo_ = s.helo_name.empty() ? nullptr : &s.helo_name;
  sender_ = s.in_transaction ? &s.sender : nullptr;
  recipient_ = nullptr;
  warnings_before_ = warnings_.size();
  decider_.clear();
}

std::optional<rejection> evaluator::finish(bool rejected) {
  std::string stage = where_ == "EHLO" ? "HELO" : where_;
  if (rejected) return rejection{reject_reply_, stage, false};
  if (warnings_.size() > warnings_before_) return warnings_[warnings_before_];
  return std::nullopt;
}

void evaluator::check_reset() {
  recursion_ = 0;
  warn_if_reject_ = 0;
  defer_if_reject_.active = false;
}

// smtpd_check_reject(): format_reject() enforces the text rules; here defer_if_reject,
// warn_if_reject and soft_bounce.
status evaluator::reject(error_class cls, int code, std::string_view dsn, const std::string& text) {
  bool warn = warn_if_reject_ != 0 && cls != error_class::software && cls != error_class::resource;
  std::string reply = format_reject(code, dsn, text);
  if (!warn && defer_if_reject_.active && reply[0] == '5') {
    warn_if_reject_ = 0;
    defer_if_reject_.active = false;
    return reject(defer_if_reject_.cls, defer_if_reject_.code, defer_if_reject_.dsn,
                  defer_if_reject_.reason);
  }
  finish_reject(reply, c_->soft_bounce);
  if (warn) {
    warnings_.push_back(rejection{reply, where_ == "EHLO" ? "HELO" : where_, true});
    return status::dunno;
  }
  reject_reply_ = reply;
  return status::reject;
}

status evaluator::server_error() {
  return reject(error_class::software, 451, "4.3.5", "Server configuration error");
}

void evaluator::defer_if(deferral& d, int code, std::string dsn, std::string reason) {
  if (d.active) return;  // keep the first reason
  d = deferral{true, error_class::policy, code, std::move(dsn), std::move(reason), current_};
}

// DEFER_IF_PERMIT*: with warn_if_reject it only warns.
status evaluator::defer_if_permit(int code, std::string dsn, std::string reason) {
  if (warn_if_reject_ == 0) {
    defer_if(defer_if_permit_, code, std::move(dsn), std::move(reason));
    return status::dunno;
  }
  reject(error_class::policy, code, dsn, reason);
  return status::dunno;
}

// --- stage drivers (smtpd_check_client/helo/mail/rcpt/data/eod) ---

status evaluator::client_stage(const session_state& s) {
  if (s.client_name.empty() || s.client_addr.empty()) return status::dunno;
  defer_if_permit_.active = false;
  check_reset();
  status st = status::dunno;
  if (!c_->client.steps.empty()) {
    st = generic_checks(c_->client, namaddr(s), "Client host", restriction::check_client_access);
  }
  defer_if_permit_client_ = defer_if_permit_.active;
  return st;
}

status evaluator::helo_stage(const std::string& helo) {
  if (helo.empty()) return status::dunno;
  const std::string* saved = helo_;
  helo_ = &helo;
  defer_if_permit_.active = defer_if_permit_client_;
  check_reset();
  status st = status::dunno;
  if (!c_->helo.steps.empty()) {
    st = generic_checks(c_->helo, helo, "Helo command", restriction::check_helo_access);
  }
  defer_if_permit_helo_ = defer_if_permit_.active;
  helo_ = saved;
  return st;
}

status evaluator::mail_stage(const std::string* sender) {
  if (sender == nullptr) return status::dunno;
  const std::string* saved = sender_;
  sender_ = sender;
  defer_if_permit_.active = defer_if_permit_client_ || defer_if_permit_helo_;
  sender_rcptmap_checked_ = false;
  check_reset();
  status st = status::dunno;
  if (!c_->sender.steps.empty()) {
    st = generic_checks(c_->sender, *sender, "Sender address", restriction::check_sender_access);
  }
  defer_if_permit_sender_ = defer_if_permit_.active;
  if (c_->reject_unlisted_sender && st != status::reject && !sender_rcptmap_checked_ &&
      !sender->empty()) {
    st = check_sender_rcpt_maps(*sender);
    if (st == status::reject) decider_ = "smtpd_reject_unlisted_sender";
  }
  sender_ = saved;
  return st;
}

status evaluator::rcpt_stage(const session_state& s) {
  const std::string& recipient = s.recipient;
  // RFC 5321 section 4.5.1: "postmaster" is always accepted, even unqualified.
  if (iequals(recipient, "postmaster")) return status::dunno;
  recipient_ = &recipient;
  recipient_rcptmap_checked_ = false;
  // Postfix has already pushed the recipient: delayed client/helo/sender restrictions
  // (e.g. an access table answer "reject_unauth_destination") can look at it.
  if (c_->delay_reject) {
    if (client_stage(s) == status::reject || (helo_ && helo_stage(*helo_) == status::reject) ||
        (sender_ && mail_stage(sender_) == status::reject)) {
      return status::reject;
    }
  }
  defer_if_permit_.active = defer_if_permit_sender_;
  check_reset();
  const restriction_list* lists[2] = {&c_->relay, &c_->recipient};
  if (!c_->relay_before_rcpt) std::swap(lists[0], lists[1]);
  status st = status::dunno;
  for (const auto* list : lists) {
    st = list->steps.empty() ? status::dunno
                             : generic_checks(*list, recipient, "Recipient address",
                                              restriction::check_recipient_access);
    if (st == status::reject) break;
  }
  if (st != status::reject && defer_if_permit_.active) {
    st = reject(defer_if_permit_.cls, defer_if_permit_.code, defer_if_permit_.dsn,
                defer_if_permit_.reason);
    decider_ = defer_if_permit_.decider;
  }
  if (c_->reject_unlisted_rcpt && st != status::reject && !recipient_rcptmap_checked_) {
    st = check_recipient_rcpt_maps(recipient);
    if (st == status::reject) decider_ = "smtpd_reject_unlisted_recipient";
  }
  return st;
}

status evaluator::data_stage(const session_state& s, const restriction_list& list,
                             const char* reply_name, const char* reply_class) {
  // Postfix names no recipient when there are several.
  recipient_ = (s.recipient_count <= 1 && !s.recipient.empty()) ? &s.recipient : nullptr;
  defer_if_permit_.active = false;
  check_reset();
  status st = list.steps.empty() ? status::dunno
                                 : generic_checks(list, reply_name, reply_class, restriction::none);
  if (st != status::reject && defer_if_permit_.active) {
    st = reject(defer_if_permit_.cls, defer_if_permit_.code, defer_if_permit_.dsn,
                defer_if_permit_.reason);
    decider_ = defer_if_permit_.decider;
  }
  return st;
}

// --- generic_checks() ---

status evaluator::generic_checks(const restriction_list& list, const std::string& reply_name,
                                 const char* reply_class, restriction def_acl) {
  int saved_recursion = recursion_++;
  status st = status::dunno;
  for (const step& one : list.steps) {
    if (one.what != step::kind::restriction_class)
      current_ = list.name + ": " + one.text +
                 (one.arg.empty() || one.what == step::kind::table ? "" : " " + one.arg);
    switch (one.what) {
      case step::kind::warn_if_reject:
        if (warn_if_reject_ == 0) warn_if_reject_ = recursion_;
        continue;
      case step::kind::table:
        st = def_acl == restriction::none
                 ? server_error()
                 : run_builtin(check_call{one, def_acl, reply_name, reply_class, def_acl});
        break;
      case step::kind::builtin:
        st = run_builtin(check_call{one, one.id, reply_name, reply_class, def_acl});
        break;
      case step::kind::restriction_class:
        st = generic_checks(*one.class_list, reply_name, reply_class, def_acl);
        break;
      case step::kind::missing_argument:
      case step::kind::unknown:
        // Unknown restriction: Postfix logs "unknown smtpd restriction" and replies 451.
        st = server_error();
        break;
    }
    if (warn_if_reject_ >= recursion_) warn_if_reject_ = 0;
    if (st != status::dunno && one.what != step::kind::restriction_class) decider_ = current_;
    if (st != status::dunno) break;
    if (defer_if_permit_.active && defer_if_reject_.active) break;
  }
  recursion_ = saved_recursion;
  if (warn_if_reject_ >= recursion_) warn_if_reject_ = 0;
  return st;
}

status evaluator::run_builtin(const check_call& call) {
  switch (call.id) {
    case restriction::none:
    case restriction::warn_if_reject:
      return server_error();
    case restriction::permit:
    case restriction::reject:
    case restriction::defer:
    case restriction::defer_if_permit:
    case restriction::defer_if_reject:
    case restriction::reject_unauth_pipelining:
    case restriction::reject_plaintext_session:
    case restriction::sleep:
      return generic_restriction(call);
    case restriction::permit_mynetworks:
    case restriction::permit_inet_interfaces:
    case restriction::reject_unknown_client_hostname:
    case restriction::reject_unknown_reverse_client_hostname:
    case restriction::check_client_access:
    case restriction::check_sasl_access:
      return client_restriction(call);
    case restriction::check_helo_access:
    case restriction::reject_invalid_helo_hostname:
    case restriction::reject_non_fqdn_helo_hostname:
    case restriction::permit_naked_ip_address:
      return helo_restriction(call);
    case restriction::check_sender_access:
    case restriction::reject_non_fqdn_sender:
    case restriction::reject_unlisted_sender:
    case restriction::reject_sender_login_mismatch:
    case restriction::reject_authenticated_sender_login_mismatch:
    case restriction::reject_known_sender_login_mismatch:
    case restriction::reject_unauthenticated_sender_login_mismatch:
      return sender_restriction(call);
    case restriction::check_recipient_access:
    case restriction::permit_auth_destination:
    case restriction::reject_unauth_destination:
    case restriction::defer_unauth_destination:
    case restriction::check_relay_domains:
    case restriction::permit_sasl_authenticated:
    case restriction::reject_non_fqdn_recipient:
    case restriction::reject_unlisted_recipient:
    case restriction::reject_multi_recipient_bounce:
      return recipient_restriction(call);
    case restriction::check_etrn_access: {
      // Only ETRN has a domain to look up; elsewhere the restriction does nothing.
      if (s_->etrn_name.empty()) return status::dunno;
      bool found = false;
      return check_domain_access(call.st.arg, s_->etrn_name, false, found, s_->etrn_name,
                                 "Etrn command", call.def_acl);
    }
    case restriction::unsupported:
      return status::dunno;
  }
  return server_error();
}

status evaluator::generic_restriction(const check_call& call) {
  const session_state& s = *s_;
  const std::string rn = bracket(call.reply_name);
  const char* reply_class = call.reply_class;
  switch (call.id) {
    case restriction::permit:
      return status::ok;
    case restriction::defer:
      return reject(error_class::policy, c_->defer_code, "4.3.2",
                    rn + ": " + reply_class + " rejected: Try again later");
    case restriction::reject:
      return reject(error_class::policy, c_->reject_code, "5.7.1",
                    rn + ": " + reply_class + " rejected: Access denied");
    case restriction::reject_unauth_pipelining:
      if (s.unauth_pipelining) {
        return reject(
            error_class::protocol, 503, "5.5.0",
            rn + ": " + reply_class + " rejected: Improper use of SMTP command pipelining");
      }
      return status::dunno;
    case restriction::defer_if_permit:
      return defer_if_permit(450, "4.7.0",
                             rn + ": " + reply_class + " rejected: defer_if_permit requested");
    case restriction::defer_if_reject:
      defer_if(defer_if_reject_, 450, "4.7.0",
               rn + ": " + reply_class + " rejected: defer_if_reject requested");
      return status::dunno;
    case restriction::sleep:
      return all_digits(call.st.arg) ? status::dunno : server_error();
    case restriction::reject_plaintext_session:
      return reject(error_class::policy, c_->plaintext_code, "4.7.1",
                    "Session encryption is required");
    default:
      return server_error();
  }
}

}  // namespace relaylab::policy::detail
