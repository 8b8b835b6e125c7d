// The real-socket side of `relaylab relay`: one acceptor per listen address, an accept loop per
// acceptor, a bound on concurrent connections, and a graceful stop.
//
// The daemon knows nothing of SMTP: each accepted socket goes to a `connection_handler`
// coroutine (smtpd_handler() in smtpd_glue.hpp opens an smtpd::connection and drives it).
// Single-threaded: every member function must be called on the io_context's thread.
#pragma once

#include "relay/log/log.hpp"
#include "relay/net/driver.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace relaylab::net {

struct listen_address {
  std::string host;        // numeric IPv4 or IPv6 address, no brackets
  std::uint16_t port = 0;  // 0 = any free port (tests); see daemon::endpoints()
};

/// The text form of an address, as address::to_string() gives it (IPv4 without inet_ntop).
std::string address_text(const boost::asio::ip::address& a);

/// Addresses one master.cf inet service listens on, as Postfix derives them: its own host part
/// if it has one ("127.0.0.1:2525", "[::1]:25"), else inet_interfaces ("all" → 0.0.0.0 and/or
/// ::, "loopback-only" → 127.0.0.1 and/or ::1, or listed numeric addresses) filtered by
/// inet_protocols ("all", "ipv4", "ipv6"). Errors (returned empty, `error` set): unknown
/// protocol, a host name instead of an address (no DNS here), no address left.
std::vector<std::string> listen_hosts(std::string_view service_host,
                                      const std::vector<std::string>& inet_interfaces,
                                      const std::vector<std::string>& inet_protocols,
                                      std::string& error);

/// Reverse lookup of a numeric address (getnameinfo NI_NAMEREQD) confirmed by a forward lookup
/// of the name (getaddrinfo must return the address), as Postfix smtpd verifies client names.
/// Returns "unknown" on any failure. Blocking: it uses the system resolver (/etc/hosts, DNS),
/// so only the CLI calls it, and only when smtpd_peername_lookup = yes, through a
/// peer_name_cache (smtpd_glue.hpp).
std::string verified_peer_name(const std::string& addr);

/// What the handler learns about an accepted connection.
struct accepted_connection {
  std::string remote_addr, remote_port;
  std::string local_addr, local_port;
  std::size_t listener = 0;  // index in listen order
  /// Already registered with the daemon: give signal->notifier() to smtpd::service::open and
  /// pass the signal to run_connection so stop() can close the connection.
  std::shared_ptr<connection_signal> signal;
};

using connection_handler =
    std::function<boost::asio::awaitable<void>(boost::asio::ip::tcp::socket, accepted_connection)>;

struct daemon_options {
  std::size_t connections_max = 100;  // Postfix default_process_limit
  /// After stop(): how long open connections may go on before they are closed.
  std::chrono::milliseconds drain_timeout_ms{10000};
  int listen_backlog = 100;
  /// While it runs, log lines are flushed this long after the first line of a batch; 0: at
  /// the end of the io_context turn that logged it (see log_flush_scheduler).
  std::chrono::milliseconds log_flush_delay_ms{0};
};

/// Flushes a logger from an io_context: at the end of the current turn (delay 0), or `delay`
/// after the first request of a batch, so that a busy loop writes its lines once per delay
/// instead of once per turn. request() may be called from any thread (it posts); copies share
/// one timer. The logger must outlive the io_context's handlers.
class log_flush_scheduler {
 public:
  /// With `alive`, nothing is flushed once *alive is false (its owner, e.g. the daemon, is
  /// gone and the logger may be too).
  log_flush_scheduler(boost::asio::io_context::executor_type ex, log::logger& log,
                      std::chrono::milliseconds delay, std::shared_ptr<bool> alive = nullptr);
  void request() const;

 private:
  struct state;
  std::shared_ptr<state> state_;
};

class daemon {
 public:
  daemon(boost::asio::io_context& io, daemon_options options, log::logger* log, log::origin origin);
  ~daemon();
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;

  /// Opens, binds (SO_REUSEADDR; IPV6_V6ONLY for IPv6 so "0.0.0.0" and "::" coexist) and
  /// listens. Errors: invalid address, the socket/bind/listen error; `error` reads
  /// "bind 127.0.0.1 port 25: Address already in use".
  std::error_code listen(const listen_address& address, connection_handler handler,
                         std::string& error);
  /// Bound endpoints in listen order (actual ports when listen_address::port was 0).
  std::vector<boost::asio::ip::tcp::endpoint> endpoints() const;
  /// Starts the accept loops. With a logger, also makes it batch (logger::set_flush_hook): the
  /// lines logged during one turn of the io_context (or, with log_flush_delay_ms, within that
  /// time of the batch's first line), by any thread without a flush hook of its own, leave in
  /// one write(2) when the flush scheduled on the io_context runs. The logger must outlive the
  /// daemon; one daemon per logger batches (a second one would replace the first one's hook).
  void start();
  /// Stops accepting now; open connections get drain_timeout_ms to finish, then are asked to
  /// stop (connection_signal::request_stop). io_context::run() returns once all are gone; by
  /// then the logger writes each line at once again (its hook removed, what it held flushed).
  void stop();
  std::size_t active_connections() const noexcept { return connections_.size(); }
  std::uint64_t accepted_total() const noexcept { return accepted_total_; }

 private:
  struct listener;
  boost::asio::awaitable<void> accept_loop(std::size_t index);
  void connection_ended(std::uint64_t id);
  void end_log_batching();

  boost::asio::io_context& io_;
  daemon_options options_;
  log::logger* log_;
  log::origin origin_;
  std::vector<std::unique_ptr<listener>> listeners_;
  std::map<std::uint64_t, std::shared_ptr<connection_signal>> connections_;
  std::uint64_t next_id_ = 1;
  std::uint64_t accepted_total_ = 0;
  bool stopping_ = false;
  bool log_batching_ = false;
  boost::asio::steady_timer slot_timer_;   // wakes accept loops waiting for a free slot
  boost::asio::steady_timer drain_timer_;  // bounds the drain after stop()
  std::shared_ptr<bool> alive_;
};

}  // namespace relaylab::net
