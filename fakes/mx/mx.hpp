// Fake MX receiver: a server_handler over the real relay/smtp engine, scripted per stage and per
// recipient (fakes/mx/script.hpp), keeping what it accepted in a mailbox tests can query.
//
// One `server` holds what is shared between sessions (script, counters, greylist table, rate
// window, mailbox); `server::open` makes one `connection` per client. A connection is what
// relay/net's run_connection drives: `connection::session()` returns the connection itself,
// which wraps the engine and withholds replies for scripted delays and hangs (time comes only
// from the timestamps passed in, so it runs on real sockets and on a virtual clock alike).
// Single-threaded: a server and its connections are used from one thread/executor.
#pragma once

#include "fakes/mx/script.hpp"
#include "relay/smtp/server_session.hpp"
#include "relay/tls/tls.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace relaylab::tls {
class server_context;
}

namespace relaylab::fakes::mx {

using timestamp = smtp::timestamp;

/// One accepted message: envelope and the exact content (dot-unstuffed, CRLF line ends).
struct message {
  std::uint64_t seq = 0;  // 1, 2, ... in acceptance order
  std::string queue_id;   // as in the 250 reply ("queued as ...")
  std::string client_addr;
  std::string helo;
  std::string auth_user;  // "" when not authenticated
  std::string sender;
  std::vector<std::string> recipients;
  std::string data;
  bool tls = false;          // the transaction ran under TLS (STARTTLS or wrapper mode)
  std::string tls_protocol;  // "TLSv1.3" ("" without TLS)
  std::string tls_cipher;    // "TLS_AES_256_GCM_SHA384"
};

/// Counts like smtp-sink's, plus what the script did.
struct counters {
  std::uint64_t sessions_total = 0;
  std::uint64_t sessions_active = 0;
  std::uint64_t sessions_refused = 0;  // over sessions_max
  std::uint64_t messages = 0;          // accepted at end of data
  std::uint64_t recipients = 0;        // recipients of accepted messages
  std::uint64_t bytes = 0;             // content bytes of accepted messages
  std::uint64_t rejected = 0;          // scripted 4xx/5xx replies (all stages)
  std::uint64_t greylisted = 0;
  std::uint64_t rate_limited = 0;
  std::uint64_t disconnects = 0;  // scripted disconnects
  std::uint64_t hangs = 0;
  std::uint64_t auth_success = 0;
  std::uint64_t auth_failure = 0;
  std::uint64_t maildir_errors = 0;
  std::uint64_t mailbox_dropped = 0;  // accepted but not kept (mailbox_max reached)
  std::uint64_t tls_sessions = 0;     // handshakes that succeeded
  std::uint64_t tls_failures = 0;     // handshakes that failed (the session ended)
};

struct server_options {
  /// Maildir to deliver into as well ("" = none): DIR/{tmp,new,cur} are created by the
  /// server; files are named "<seq>.<unique>" with the exact message bytes.
  std::string maildir;
  /// Makes Maildir file names unique across runs (the CLI passes time and pid; library code
  /// reads neither).
  std::string maildir_unique = "relaylab";
  /// Called for every accepted message (e.g. `relaylab mx -v` prints a line); may be empty.
  std::function<void(const message&)> on_message;
  /// TLS (nullptr = none): EHLO offers STARTTLS, or with the context's settings' wrappermode
  /// every session starts with the handshake (smtps). fakes/mx/tls.hpp makes one.
  std::shared_ptr<tls::server_context> tls;
};

class connection;

class server {
 public:
  explicit server(script behaviour, server_options options = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Prepares the Maildir if one is configured. Errors: a message naming the directory.
  bool prepare(std::string& error);

  /// A client connected; the greeting (or the scripted connect reply) is queued on return.
  /// The connection must be destroyed before the server.
  std::unique_ptr<connection> open(std::string client_addr, std::string client_port, timestamp now);

  const std::vector<message>& mailbox() const noexcept { return mailbox_; }
  const counters& counts() const noexcept { return counts_; }
  /// "sessions=3 messages=2 recipients=2 bytes=120 rejected=1 greylisted=0 ..."
  std::string summary() const;
  const script& behaviour() const noexcept { return script_; }
  /// Replaces the script for sessions opened later (and later commands of open ones).
  void set_behaviour(script s);
  /// The TLS context sessions use (nullptr without TLS); the transport wraps its stream in
  /// tls::server_stream when it is set.
  const std::shared_ptr<tls::server_context>& tls_context() const noexcept { return options_.tls; }

 private:
  friend class connection;
  const rule* match(stage where, std::string_view recipient);
  bool rate_exceeded(timestamp now);
  std::string next_queue_id();
  bool deliver(message m, std::string& error);

  script script_;
  server_options options_;
  std::vector<std::uint64_t> fired_;  // per rule: how often it fired (for `times`)
  counters counts_;
  std::vector<message> mailbox_;
  std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> greylist_;
  std::deque<timestamp> accepted_at_;  // acceptance times inside the rate window
  std::uint64_t seq_ = 0;
};

/// One SMTP session of the fake MX. Satisfies run_connection's Connection (session() returns
/// *this, which has the engine interface) and is the engine's server_handler.
class connection final : public smtp::server_handler {
 public:
  connection(server& srv, smtp::client_identity client, timestamp now);
  ~connection() override;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  connection& session() noexcept { return *this; }
  void run_pending(timestamp now);

  // The engine interface (see relay/net/driver.hpp).
  void receive(std::span<const char> bytes, timestamp now);
  void receive_eof(timestamp now);
  void advance(timestamp now);
  std::string_view output() const noexcept;
  void consume_output(std::size_t n) noexcept;
  std::optional<timestamp> deadline() const noexcept;
  bool closing() const noexcept;
  bool want_input() const noexcept { return engine_->want_input(); }
  bool tls_wanted() const noexcept { return engine_->tls_wanted(); }

  // TLS, as relay/net's driver reports it (like smtpd::connection).
  std::shared_ptr<tls::server_context> tls_context() const { return srv_.options_.tls; }
  /// The handshake succeeded: later messages are marked TLS.
  void tls_established(const tls::session_info& info, timestamp now);
  /// The handshake failed or timed out: the session ends.
  void tls_failed(bool peer_closed, const std::vector<std::string>& openssl_errors, timestamp now);

  // server_handler
  smtp::verdict on_connect(const smtp::client_identity& client) override;
  smtp::verdict on_helo(const smtp::client_identity& client) override;
  smtp::verdict on_mail(const smtp::client_identity& client,
                        const smtp::mail_command& mail) override;
  smtp::verdict on_rcpt(const smtp::client_identity& client,
                        const smtp::rcpt_command& rcpt) override;
  smtp::verdict on_data(const smtp::client_identity& client) override;
  void on_body(std::span<const char> chunk) override;
  void on_message_end(const smtp::client_identity& client, bool size_exceeded) override;
  void on_reset() override;
  smtp::auth_step on_auth_start(const smtp::client_identity& client, std::string_view mechanism,
                                std::optional<std::string_view> initial) override;
  smtp::auth_step on_auth_continue(const smtp::client_identity& client,
                                   std::string_view response) override;
  void on_auth_abort() override;
  smtp::verdict on_vrfy(const smtp::client_identity& client, std::string_view address) override;
  void on_xclient(const smtp::client_identity& client) override;
  void on_disconnect(const smtp::client_identity& client, std::string_view reason) override;

 private:
  struct hold {
    std::uint64_t position = 0;  // output bytes before this position may go out
    std::chrono::milliseconds delay{0};
    bool forever = false;  // hang
  };
  std::uint64_t produced() const noexcept;
  /// Applies a scripted action at the current output position; returns the verdict to give.
  smtp::verdict apply(const rule* r, stage where);
  void after_engine_call();
  void start_next_hold();
  smtp::auth_step check_credentials(std::string_view user, std::string_view password);

  server& srv_;
  std::unique_ptr<smtp::server_session> engine_;
  timestamp now_{};
  std::uint64_t consumed_ = 0;
  std::deque<hold> holds_;                 // front() is the active one
  std::optional<timestamp> hold_until_;    // when front() ends (nullopt while forever)
  std::optional<std::uint64_t> close_at_;  // close once output up to here is written
  std::optional<std::uint64_t> close_after_reply_from_;  // 421: close after the next reply
  std::optional<smtp::reply> pending_finish_;
  // The transaction.
  message current_;
  bool in_transaction_ = false;
  bool size_exceeded_ = false;
  // AUTH exchange.
  std::string auth_mechanism_;
  std::string auth_user_;  // LOGIN: username given so far; after success: the user
  int auth_step_ = 0;
  std::optional<tls::session_info> tls_;
};

}  // namespace relaylab::fakes::mx
