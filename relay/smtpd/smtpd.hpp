// The relay's SMTP server application: Postfix smtpd's policy/SASL/queue half, wired to the
// sans-IO protocol engine. One `service` per master.cf inet smtpd service; one `connection` per
// accepted client. Transport-agnostic: relay/net drives it over TCP, harness/sim over sim streams.
//
// CONTRACT (used by relay/net, harness and tests; change only together).
#pragma once

#include "relay/config/config.hpp"
#include "relay/smtp/server_session.hpp"
#include "relay/tls/tls.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::log {
class logger;
}
namespace relaylab::queue {
class spool;
}
namespace relaylab::sasl {
class server_library;
}
namespace relaylab::tls {
class server_context;
}

namespace relaylab::smtpd {

/// Everything a service needs from outside, injected (no globals, no real clock inside).
struct dependencies {
  log::logger* log = nullptr;                  // maillog; required
  queue::spool* spool = nullptr;               // where accepted mail goes; required
  std::shared_ptr<sasl::server_library> sasl;  // null when smtpd_sasl_auth_enable = no
  /// Wall-clock time for Received: headers and log stamps.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
  int pid = 0;  // shown as postfix/smtpd[pid]
  /// Called once a message is durably queued (before the 250 reply is sent), from the spool's
  /// committer thread: the queue manager's notify_new_message. May be empty.
  std::function<void(const std::string& queue_id)> on_queued;
  /// Certificates the host provides (the simulation's per-run ones), used only when the
  /// service's parameters name no certificate file (tls::server_settings_from).
  std::vector<tls::key_pair_pem> tls_certificates;
};

struct endpoint {
  std::string addr;              // numeric IP, no brackets
  std::string port;              // numeric
  std::string name = "unknown";  // verified reverse name for the remote end, else "unknown"
};

class connection {
 public:
  virtual ~connection() = default;
  virtual smtp::server_session& session() = 0;
  /// Completes work finished outside receive()/advance() (e.g. a queue commit). Call on the
  /// connection's own executor after `notify` (given to service::open) fired.
  virtual void run_pending(smtp::timestamp now) = 0;
  /// The service's TLS context when it offers STARTTLS or runs in wrapper mode, else null.
  /// The transport wraps its stream in tls::server_stream only then, and runs the handshake
  /// when session().tls_wanted() (see relay/net/driver.hpp).
  virtual std::shared_ptr<tls::server_context> tls_context() const = 0;
  /// The handshake succeeded: logs it (smtpd_tls_loglevel), switches SASL to
  /// smtpd_sasl_tls_security_options and tells the session.
  virtual void tls_established(const tls::session_info& info, smtp::timestamp now) = 0;
  /// The handshake failed (`peer_closed`: the client went away; `openssl_errors` from
  /// tls::take_openssl_errors): logs Postfix's lines and ends the session.
  virtual void tls_failed(bool peer_closed, const std::vector<std::string>& openssl_errors,
                          smtp::timestamp now) = 0;
  /// The restriction that decided the latest policy check (policy::engine::last_decider()),
  /// then "" until the next check; "" also when the last command consulted no policy.
  /// For relaylab matrix, which drives connections command by command.
  virtual std::string take_policy_decider() { return {}; }
};

class service {
 public:
  /// Errors: fatal diagnostics (bad restriction, unreadable table, SASL init failure ...).
  static std::unique_ptr<service> create(const config::configuration& cfg,
                                         const config::master_service& definition,
                                         dependencies deps, std::vector<config::diagnostic>& diags);
  virtual ~service() = default;
  virtual const config::master_service& definition() const = 0;
  /// A client connected. `notify` may be called from any thread; the transport then calls
  /// connection::run_pending() on its executor. The greeting is queued on return.
  /// `waiting_input`: the bytes the client had sent by the time the greeting was due, peeked
  /// and still to be read (smtp::server_session::start: Postfix's pre-greeting check).
  virtual std::unique_ptr<connection> open(const endpoint& remote, const endpoint& local,
                                           smtp::timestamp now, std::function<void()> notify,
                                           std::string_view waiting_input = {}) = 0;
};

/// Warnings (file:line of the master.cf service) for settings that leave the service open to a
/// known attack, each with the fix: smtpd_forbid_bare_newline = no (SMTP smuggling), and
/// clients still excluded from it. Never fatal: Postfix 3.7's defaults are legal, only unsafe.
std::vector<config::diagnostic> exposure_warnings(const config::configuration& cfg,
                                                  const config::master_service& service);

}  // namespace relaylab::smtpd
