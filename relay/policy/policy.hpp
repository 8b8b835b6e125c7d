// Postfix SMTP access policy (smtpd_check.c's job): restriction lists, stages, delay-reject,
// address classes. Pure computation over a session snapshot: no I/O except table files read at
// construction.
//
// CONTRACT (used by relay/smtpd; change only together):
// - engine::create() compiles the restriction lists of one master.cf service's parameters.
// - Each check_*() returns nullopt (go on) or the complete reply Postfix would send, byte for
//   byte, e.g. "554 5.7.1 <a@b.c>: Relay access denied". Every reject reply is built by one
//   function that enforces 4xx/5xx, the enhanced status code and the length.
// - smtpd_delay_reject: with yes (default), client/helo/sender restrictions run at RCPT (and
//   ETRN) time, in Postfix's order; check_client/check_helo/check_mail then return nullopt.
// - smtpd_relay_before_recipient_restrictions and the compatibility_level defaults are honoured.
//
// Inside (namespace detail, one concept per file): text, address (host/IP syntax), match_list
// (mynetworks, domain lists), address_class (trivial-rewrite's resolve), catalogue (every
// restriction name, list compilation and validation), compile (engine::create), reply (the
// reject-reply rules), evaluator (stages and generic_checks) with client/helo/sender/recipient
// checks, address_checks and access_maps.
#pragma once

#include "relay/config/config.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::policy {

/// What restrictions may look at. The owner (relay/smtpd) keeps it current.
struct session_state {
  std::string client_name = "unknown";
  std::string client_addr;
  /// Postfix's state->namaddr, "name[addr]", which replies naming the client show (client
  /// restrictions, check_client_access). It follows client_name and client_addr except after
  /// an XCLIENT that failed part-way: the attributes before the bad one are in force, the name
  /// stays as it was. "" = client_name[client_addr].
  std::string client_namaddr;
  std::string client_port;
  std::string helo_name;  // "" before HELO/EHLO
  std::string protocol = "SMTP";
  std::string sender;           // current MAIL FROM, "" null sender
  bool in_transaction = false;  // MAIL FROM accepted
  std::string recipient;        // RCPT being checked
  std::string etrn_name;        // the ETRN domain being checked ("" outside ETRN)
  int recipient_count = 0;      // accepted so far in this transaction
  std::string sasl_method;      // "" when not authenticated
  std::string sasl_username;
  bool unauth_pipelining = false;
  std::string queue_id;  // "" = NOQUEUE

  std::string namaddr() const {
    return client_namaddr.empty() ? client_name + "[" + client_addr + "]" : client_namaddr;
  }
};

/// A decision that stops the command. `reply` is what the client sees; `log_reply` is the text
/// for the "NOQUEUE: reject: RCPT from ...: <log_reply>; from=<..> to=<..> proto=.. helo=<..>"
/// line (Postfix logs the same reply text; kept separate for warn_if_reject / defer_if_*).
struct rejection {
  std::string reply;
  std::string stage;       // "CONNECT", "HELO", "MAIL", "RCPT", "DATA", "END-OF-MESSAGE", "VRFY"
  bool warn_only = false;  // warn_if_reject: log "reject_warning", do not reject
};

class engine {
 public:
  /// Errors: fatal diagnostics naming the parameter (unknown restriction, bad table, ...).
  static std::unique_ptr<engine> create(const config::parameters& params,
                                        std::vector<config::diagnostic>& diags);
  virtual ~engine() = default;

  virtual std::optional<rejection> check_client(session_state& s) = 0;
  virtual std::optional<rejection> check_helo(session_state& s) = 0;
  virtual std::optional<rejection> check_mail(session_state& s) = 0;
  virtual std::optional<rejection> check_rcpt(session_state& s) = 0;
  /// VRFY: smtpd_check_rcpt() for s.recipient with stage "VRFY" (delayed client/helo/sender
  /// restrictions, relay and recipient restrictions, the recipient tables).
  virtual std::optional<rejection> check_vrfy(session_state& s) { return check_rcpt(s); }
  /// ETRN: smtpd_check_etrn() for s.etrn_name with stage "ETRN" (with smtpd_delay_reject the
  /// client and helo restrictions first, then smtpd_etrn_restrictions).
  virtual std::optional<rejection> check_etrn(session_state& s) {
    (void)s;
    return std::nullopt;
  }
  virtual std::optional<rejection> check_data(session_state& s) = 0;
  virtual std::optional<rejection> check_end_of_data(session_state& s) = 0;
  /// A new HELO, MAIL or XCLIENT invalidates results cached for the session/transaction.
  virtual void reset_transaction() = 0;
  virtual void reset_session() = 0;

  /// Address classes, exposed for delivery routing and tests.
  virtual bool in_mynetworks(const std::string& addr) const = 0;
  virtual bool is_local_domain(const std::string& domain) const = 0;  // mydestination
  virtual bool is_relay_domain(const std::string& domain) const = 0;  // relay_domains
  /// smtpd_check_addr(): a non-empty MAIL/RCPT/VRFY address (internal form) resolves without
  /// trivial-rewrite's error flag (a bad domain or address literal, a local part that starts
  /// with '-'), and its domain is ASCII unless the client sent SMTPUTF8.
  virtual bool address_resolves(std::string_view address, bool smtputf8) const {
    (void)address;
    (void)smtputf8;
    return true;
  }
  /// smtpd_authorized_xclient_hosts matches the client (name or address).
  virtual bool xclient_authorized(const std::string& name, const std::string& addr) const {
    (void)name;
    (void)addr;
    return false;
  }
  /// smtpd_forbid_bare_newline_exclusions matches the client (name or address).
  virtual bool bare_newline_excluded(const std::string& name, const std::string& addr) const {
    (void)name;
    (void)addr;
    return false;
  }
  /// smtpd_client_event_limit_exceptions matches the client: no anvil counting or limits.
  virtual bool event_limit_excepted(const std::string& name, const std::string& addr) const {
    (void)name;
    (void)addr;
    return false;
  }

  // --- Additions (relay/policy) ---

  /// A fresh engine for another SMTP session. It shares the compiled lists and open tables
  /// (immutable) and has its own per-session state (the defer_if_permit flags that Postfix
  /// keeps per client/helo/sender stage). Cheap: call it once per connection.
  /// (Not pure so that fakes of `engine` elsewhere keep compiling; the default returns null.)
  virtual std::unique_ptr<engine> new_session() const { return nullptr; }
  /// "reject_warning" replies produced by warn_if_reject since the last call, oldest first.
  /// check_*() also returns the first of them (warn_only = true) when nothing else rejected.
  virtual std::vector<rejection> take_warnings() { return {}; }
  /// The restriction that answered last (permit, reject or defer) in the latest check_*() call,
  /// as "LIST: RESTRICTION [ARG]", e.g. "smtpd_recipient_restrictions: reject_unauth_destination"
  /// (LIST is a restriction class's name inside a class); implicit checks are named by their
  /// parameter ("smtpd_reject_unlisted_recipient"). "" when every restriction said dunno.
  /// For tools that explain decisions (relaylab matrix); the relay itself does not need it.
  virtual std::string last_decider() const { return {}; }
};

/// Postfix's valid_hostaddr() (IPv4 or IPv6 literal). Its valid_hostname() is
/// smtp::syntax::valid_hostname.
bool valid_hostaddr(std::string_view addr);

}  // namespace relaylab::policy
