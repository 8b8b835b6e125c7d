// The queue manager (Postfix qmgr(8) with the parts of bounce(8) it needs): takes committed
// messages from the spool, resolves each recipient's next hop, hands recipients to delivery
// agents grouped by next hop under per-destination limits, records the outcomes durably, and
// retries, expires, bounces and removes mail as Postfix 3.7 does.
//
// Life of a message here:
//   notify_new_message(id) / queue scan ─► pending ─► activate (active/) ─► load ─► log
//   "ID: from=<s>, size=N, nrcpt=N (queue active)" ─► jobs per next hop (recipient_limit per
//   job, concurrency_limit jobs per destination) ─► agent ─► "sent" recipients marked done at
//   once (durable before anything else happens), bounced ones recorded as failed in the queue
//   file (spool::record_failures, Postfix's bounce logfile) before the agent's lines leave the
//   log gate ─► when every job is back:
//     - deferred recipients past maximal_queue_lifetime (bounce_queue_lifetime for the null
//       sender) become failures, recorded before "ID: from=<s>, status=expired, returned to
//       sender" is logged;
//     - failures of a non-null sender get one notification, queued as a new message from <>
//       (durable) before they are marked done: "ID: sender non-delivery notification: NEW";
//       the null sender's failures are only marked done (Postfix would tell the postmaster);
//     - deferred recipients left: defer() with their reasons and the next attempt at
//       now + clamp(now - arrival, minimal_backoff_time, maximal_backoff_time) (the delay
//       doubles per attempt, as Postfix's qmgr_active_done computes it);
//     - otherwise remove() and "ID: removed".
// A crash anywhere repeats at most the step in flight: a recipient marked done or recorded as
// failed is never handed to an agent again (a recorded failure is notified after the restart
// without being logged again); a failure may be notified twice, never not at all.
//
// Threading: everything runs on the runtime's executor; notify_new_message(), flush() and
// stop() may be called from any thread (they post). Spool calls block that executor (fsync):
// give the queue manager an executor of its own in a daemon.
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include "relay/delivery/agent.hpp"
#include "relay/log/log.hpp"
#include "relay/net/stream.hpp"
#include "relay/qmgr/router.hpp"
#include "relay/queue/spool.hpp"

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace relaylab::config {
class parameters;
}

namespace relaylab::qmgr {

using std::chrono::seconds;

struct transport_limits {
  std::size_t concurrency = 20;  // <transport>_destination_concurrency_limit
  std::size_t recipients = 50;   // <transport>_destination_recipient_limit
};

struct qmgr_options {
  std::string myhostname = "localhost";
  std::string mail_name = "Postfix";
  std::string syslog_name = "postfix";
  int pid = 0;
  net::duration queue_run_delay = seconds(300);
  net::duration minimal_backoff_time = seconds(300);
  net::duration maximal_backoff_time = seconds(4000);
  net::duration maximal_queue_lifetime = seconds(5 * 86400);
  net::duration bounce_queue_lifetime = seconds(5 * 86400);
  transport_limits default_limits;  // default_destination_{concurrency,recipient}_limit
  std::map<std::string, transport_limits, std::less<>> transport_limits_by_name;
  std::size_t message_active_limit = 20000;     // qmgr_message_active_limit
  std::size_t message_recipient_limit = 20000;  // qmgr_message_recipient_limit
  std::size_t bounce_size_limit_bytes = 50000;
  /// Holds the agents' log lines of a job until its outcomes are durable (may be null).
  class log_gate* gate = nullptr;
  /// Bytes of a message read into memory to build a bounce (the returned part is cut to
  /// bounce_size_limit anyway; larger messages return headers only).
  std::size_t bounce_read_bytes_max = 1u << 20;
};

/// Reads qmgr_options from main.cf parameters (time values, limits, and the
/// <transport>_destination_*_limit parameters of `transports`).
qmgr_options options_from_config(const config::parameters& p,
                                 const std::vector<std::string>& transports);

struct qmgr_stats {
  std::size_t active = 0;                                        // messages being worked on
  std::size_t pending = 0;                                       // waiting for an active slot
  std::size_t scheduled = 0;                                     // deferred, waiting for their time
  std::size_t deliveries = 0;                                    // agent calls
  std::size_t sent = 0, bounced = 0, deferred = 0, expired = 0;  // recipients
  std::size_t removed = 0, bounces_queued = 0;
  std::size_t spool_errors = 0;  // spool operations that failed (logged as warnings)
};

class manager {
 public:
  /// `spool`, `rt`, `log` must outlive the manager. Agents are added with add_transport().
  manager(queue::spool& spool, net::runtime& rt, log::logger& log, router routes,
          qmgr_options options);
  ~manager();
  manager(const manager&) = delete;
  manager& operator=(const manager&) = delete;

  /// Registers the agent for a transport name ("smtp", "relay", "local" ...). "error" and
  /// "discard" are built in. Call before start(). Recipients routed to an unknown transport
  /// are deferred ("mail transport unavailable", 4.3.0), as Postfix does.
  void add_transport(std::string name, delivery::agent& agent);

  /// Takes over the messages a spool recovery reported: incoming ones are processed now,
  /// deferred ones at their next attempt time. Call before start().
  void adopt(const queue::recovery_report& report);
  /// Starts the periodic queue scan (every queue_run_delay) on the runtime's executor.
  void start();
  /// Stops scanning and taking new work; jobs in flight finish (their outcomes are recorded).
  void stop();

  /// The smtpd hook: a message was committed to incoming/. Thread-safe.
  void notify_new_message(std::string queue_id);
  /// Postfix "postqueue -f": every deferred message is due now. Thread-safe.
  void flush();

  qmgr_stats stats() const;
  /// True when nothing is active or pending (deferred mail may be waiting).
  bool idle() const;

 private:
  struct message_state;
  struct destination;
  class error_agent;
  class discard_agent;

  void enqueue(std::string queue_id);
  void pump();
  boost::asio::awaitable<void> scan_loop();
  void scan_due();
  boost::asio::awaitable<void> process(std::string queue_id);
  boost::asio::awaitable<void> run_job(std::shared_ptr<message_state> m, delivery::next_hop hop,
                                       std::vector<delivery::job_recipient> recipients);
  boost::asio::awaitable<void> finish(std::shared_ptr<message_state> m);
  boost::asio::awaitable<bool> send_bounce(message_state& m,
                                           const std::vector<std::uint32_t>& failed);
  /// Starts a spool operation that reports on the spool's committer thread (commit, complete)
  /// and resumes on the runtime's executor with its status.
  using spool_operation = std::function<void(queue::commit_callback)>;
  boost::asio::awaitable<queue::commit_status> spool_call(const spool_operation& start);
  boost::asio::awaitable<void> acquire(destination& d);
  void release(destination& d);
  const transport_limits& limits_for(const std::string& transport) const;
  void spool_warning(const std::string& what, std::error_code ec);

  queue::spool& spool_;
  net::runtime& rt_;
  log::logger& log_;
  router routes_;
  qmgr_options options_;
  log::origin qmgr_origin_, bounce_origin_;
  std::map<std::string, delivery::agent*, std::less<>> agents_;
  std::unique_ptr<delivery::agent> error_agent_, discard_agent_;

  // Executor-only state.
  std::deque<std::string> pending_;
  std::set<std::string, std::less<>> known_;  // pending or active
  std::map<std::string, std::chrono::system_clock::time_point, std::less<>> schedule_;
  std::map<std::string, std::unique_ptr<destination>, std::less<>> destinations_;
  std::size_t active_ = 0;
  std::size_t active_recipients_ = 0;
  bool running_ = false;
  bool stopped_ = false;
  qmgr_stats stats_;
  std::shared_ptr<bool> alive_;
};

}  // namespace relaylab::qmgr
