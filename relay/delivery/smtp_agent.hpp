// The SMTP delivery agent (Postfix smtp(8)): next hop → MX/addresses → one SMTP session per
// address until the recipients are done, with Postfix's per-recipient log lines.
//
// Connection cache (smtp_connection_cache_on_demand, smtp_connection_cache_time_limit,
// smtp_connection_reuse_time_limit): a session that ended a transaction cleanly goes to an idle
// pool keyed by address and port instead of QUIT; the next delivery to that address starts its
// MAIL FROM there, and logs conn_use=N as Postfix does. An idle session is closed with QUIT
// after the time limit. Unlike Postfix, which caches only while a destination has a backlog,
// every clean session is kept (for at most the time limit). Sessions that authenticated with
// SASL are never cached. A cached session that turns out dead before the server's first reply
// is dropped, and the delivery connects afresh.
//
// Depends on injected interfaces only: net::connector (TCP or simulated), net::runtime (clock),
// delivery::resolver (DNS), log::logger, a random source (equal-preference MX order) and,
// for smtp_sasl_auth_enable, relay/sasl's client library.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp (via the contracts), which needs it

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "relay/config/config.hpp"
#include "relay/delivery/agent.hpp"
#include "relay/delivery/resolver.hpp"
#include "relay/log/log.hpp"
#include "relay/maps/maps.hpp"
#include "relay/net/stream.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtp/client_session.hpp"
#include "relay/tls/client.hpp"

namespace relaylab::delivery {

enum class address_preference { any, ipv4, ipv6 };  // smtp_address_preference

struct smtp_agent_options {
  /// smtp_helo_name, timeouts (smtp_helo/mail/rcpt/data_init/data_xfer/data_done/quit/rset_
  /// timeout), smtp_always_send_ehlo, smtp_never_send_ehlo.
  smtp::client_options client;
  std::chrono::milliseconds connect_timeout{30000};  // smtp_connect_timeout
  bool inet_ipv4 = true;                             // inet_protocols
  bool inet_ipv6 = true;
  address_preference preference = address_preference::any;
  std::size_t mx_address_limit = 5;  // smtp_mx_address_limit (0 = no limit)
  std::size_t mx_session_limit = 2;  // smtp_mx_session_limit (0 = no limit)
  bool skip_5xx_greeting = true;     // smtp_skip_5xx_greeting
  // SASL (smtp_sasl_auth_enable, smtp_sasl_password_maps, smtp_sasl_security_options,
  // smtp_sasl_mechanism_filter). `sasl_library` must be set when sasl_auth_enable.
  bool sasl_auth_enable = false;
  std::shared_ptr<const maps::table> sasl_password_maps;
  sasl::security_options sasl_security;            // Postfix default: noplaintext, noanonymous
  std::vector<std::string> sasl_mechanism_filter;  // empty = no filter
  std::shared_ptr<sasl::client_library> sasl_library;
  std::size_t content_chunk_bytes = 64 * 1024;  // read_content chunk and body write size
  std::size_t io_iterations_max = 1'000'000;    // bound on reads/writes per session
  /// smtp_connection_cache_time_limit when smtp_connection_cache_on_demand = yes; 0 = no cache.
  std::chrono::milliseconds cache_time_limit{0};
  std::chrono::milliseconds reuse_time_limit{300000};  // smtp_connection_reuse_time_limit
  std::size_t cache_sessions_max = 100;                // idle sessions kept in all
  log::origin origin{"postfix", "smtp", 0};
  /// The transport (master.cf service) this agent serves: jobs for any other are deferred.
  std::string transport = "smtp";
  /// smtp_tls_*: STARTTLS towards the server (client.starttls says may or required), or TLS
  /// right after connect when the context's settings have wrappermode; null for
  /// smtp_tls_security_level = none.
  std::shared_ptr<tls::client_context> tls;
};

/// Returns a value in [0, bound); used to shuffle equal-preference MX hosts.
using random_source = std::function<std::size_t(std::size_t bound)>;

/// The options Postfix's smtp(8) takes from main.cf: smtp_helo_name, smtp_connect_timeout and
/// the other smtp_*_timeout values, inet_protocols; logs as syslog_name/smtp[pid].
smtp_agent_options smtp_agent_options_from_config(const config::parameters& p, int pid);

class smtp_agent final : public agent {
 public:
  /// All references must outlive the agent.
  smtp_agent(smtp_agent_options options, net::connector& connector, net::runtime& runtime,
             resolver& dns, log::logger& logger, random_source random);
  /// Closes the idle cached sessions (without QUIT).
  ~smtp_agent() override;
  /// Delivers to every recipient of `j` (options.transport; others are deferred with
  /// "4.3.5 ... mail transport unavailable"). Never throws; every recipient gets an outcome.
  boost::asio::awaitable<std::vector<recipient_outcome>> deliver(const job& j) override;
  /// Idle sessions in the connection cache now.
  std::size_t cached_sessions() const;

 private:
  struct state;
  struct session_pool;
  /// Closes the idle session `key`/`generation` with QUIT after `after`, unless it was taken.
  static boost::asio::awaitable<void> expire(std::shared_ptr<session_pool> pool, net::runtime& rt,
                                             std::chrono::milliseconds after, std::string key,
                                             std::uint64_t generation);
  std::shared_ptr<session_pool> pool_;
  smtp_agent_options options_;
  net::connector& connector_;
  net::runtime& runtime_;
  resolver& dns_;
  log::logger& logger_;
  random_source random_;
};

/// Postfix's format_tv with 2 significant digits and delay_logging_resolution_limit=2:
/// 1.2, 0.06, 0.01, 0, 12, 123.
std::string format_delay(std::chrono::microseconds d);

/// The per-recipient log text: "ID: to=<a>, [orig_to=<o>, ]relay=R, delay=D,
/// delays=a/b/c/d, dsn=X, status=S (reason)".
struct delivery_times {
  time_point arrival, queued_active, handed_over;
  std::optional<time_point> conn_setup_done;
  time_point done;
  std::size_t conn_use = 1;  // transactions on this connection so far, this one included
};
std::string delivery_log_line(std::string_view queue_id, const job_recipient& r,
                              const recipient_outcome& o, const delivery_times& t);

}  // namespace relaylab::delivery
