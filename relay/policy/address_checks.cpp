// What sender and recipient restrictions share: the FQDN test, the recipient maps
// (smtpd_reject_unlisted_recipient/sender, reject_unlisted_*), and relay control's
// permit_auth_destination.
#include "relay/policy/evaluator.hpp"
#include "relay/policy/reply.hpp"
#include "relay/policy/text.hpp"
#include "relay/smtp/syntax.hpp"

#include <cstring>

namespace relaylab::policy::detail {
namespace {

bool match_left(const std::string& who, const std::string& addr) {
  return addr.size() > who.size() && addr[who.size()] == '@' &&
         iequals(std::string_view(addr).substr(0, who.size()), who);
}

}  // namespace

status evaluator::reject_non_fqdn_address(const std::string& addr, const char* reply_class) {
  std::size_t at = addr.rfind('@');
  std::string_view domain = at == std::string::npos ? "" : std::string_view(addr).substr(at + 1);
  if (!domain.empty() && domain.front() == '[' && domain.back() == ']') return status::dunno;
  domain = truncate_dot(domain);
  if (domain.empty() || !smtp::syntax::valid_hostname(domain) ||
      domain.find('.') == std::string_view::npos) {
    return reject(error_class::policy, c_->non_fqdn_code, "4.5.2",
                  bracket(addr) + ": " + reply_class + " rejected: need fully-qualified address");
  }
  return status::dunno;
}

status evaluator::permit_auth_destination(const std::string& recipient) {
  resolved r = resolver_.resolve(recipient);
  if (r.recipient.find('@') == std::string::npos) return status::ok;
  if (!c_->allow_untrusted_routing && r.routed) return status::dunno;
  if (r.address_class != resolved::other) return status::ok;  // final or relay
  return status::dunno;
}

// Postfix strip_addr(): user+ext@domain -> user@domain, or nullopt without an extension.
std::optional<std::string> evaluator::strip_extension(const std::string& addr) const {
  if (c_->rcpt_delim.empty()) return std::nullopt;
  std::size_t at = addr.rfind('@');
  std::string local = addr.substr(0, at);
  std::size_t d = local.find_first_of(c_->rcpt_delim);
  if (d == std::string::npos || d == 0) return std::nullopt;
  return local.substr(0, d) + (at == std::string::npos ? "" : addr.substr(at));
}

// mail_addr_find(): user+ext@domain, user@domain, user+ext and user (local domains only),
// @domain.
bool evaluator::mail_addr_find(const std::vector<const maps::table*>& tables,
                               const std::string& addr, std::string* value) const {
  std::size_t at = addr.rfind('@');
  std::string domain = at == std::string::npos ? "" : addr.substr(at + 1);
  auto bare = strip_extension(addr);
  std::vector<std::string> keys = {addr};
  if (bare) keys.push_back(*bare);
  if (at != std::string::npos && resolver_.is_local(domain)) {
    keys.push_back(addr.substr(0, at));
    if (bare) keys.push_back(bare->substr(0, bare->rfind('@')));
  }
  if (at != std::string::npos) keys.push_back("@" + domain);
  for (std::size_t k = 0; k < keys.size(); ++k) {
    for (const auto* t : tables) {
      // Pattern tables see the full address only.
      if (k > 0 && !t->fixed_string()) continue;
      if (auto v = t->find(keys[k])) {
        if (value) *value = *v;
        return true;
      }
    }
  }
  return false;
}

status evaluator::check_recipient_rcpt_maps(const std::string& recipient) {
  if (recipient_rcptmap_checked_) return status::dunno;
  if (warn_if_reject_ == 0) recipient_rcptmap_checked_ = true;
  return check_rcpt_maps(recipient, "Recipient address");
}

status evaluator::check_sender_rcpt_maps(const std::string& sender) {
  if (sender_rcptmap_checked_) return status::dunno;
  if (warn_if_reject_ == 0) sender_rcptmap_checked_ = true;
  return check_rcpt_maps(sender, "Sender address");
}

status evaluator::check_rcpt_maps(const std::string& addr, const char* reply_class) {
  resolved r = resolver_.resolve(addr);
  if (mail_addr_find(c_->rcpt_canon_maps, r.recipient) ||
      mail_addr_find(c_->canonical_maps, r.recipient) ||
      mail_addr_find(c_->virt_alias_maps, r.recipient)) {
    return status::dunno;
  }
  bool sender = std::strcmp(reply_class, "Sender address") == 0;
  std::string dsn = sender ? "5.1.0" : "5.1.1";
  std::string head = bracket(addr) + ": " + reply_class + " rejected: User unknown";
  switch (r.address_class) {
    case resolved::alias:
      return reject(error_class::bounce, c_->virt_alias_code, dsn_fix(dsn, reply_class),
                    head + (c_->show_unknown_table ? " in virtual alias table" : ""));
    case resolved::local:
      if (c_->local_rcpt_maps_set && !match_left(c_->double_bounce, r.recipient) &&
          !match_left("postmaster", r.recipient) && !match_left("MAILER-DAEMON", r.recipient) &&
          !mail_addr_find(c_->local_rcpt_maps, r.recipient)) {
        return reject(error_class::bounce, c_->local_rcpt_code, dsn,
                      head + (c_->show_unknown_table ? " in local recipient table" : ""));
      }
      break;
    case resolved::virtual_mailbox:
      if (c_->virt_mailbox_maps_set && !mail_addr_find(c_->virt_mailbox_maps, r.recipient)) {
        return reject(error_class::bounce, c_->virt_mailbox_code, dsn,
                      head + (c_->show_unknown_table ? " in virtual mailbox table" : ""));
      }
      break;
    case resolved::relay:
      if (c_->relay_rcpt_maps_set && !mail_addr_find(c_->relay_rcpt_maps, r.recipient)) {
        return reject(error_class::bounce, c_->relay_rcpt_code, dsn,
                      head + (c_->show_unknown_table ? " in relay recipient table" : ""));
      }
      break;
    case resolved::other:
      break;
  }
  return status::dunno;
}

}  // namespace relaylab::policy::detail
