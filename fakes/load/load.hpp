// Load generator (`relaylab load`): smtp-source's main options plus AUTH, PIPELINING and a
// duration, over net::connector/net::runtime (TCP or simulated), one thread, coroutines.
//
// Cost: the message (headers + -l bytes of body) is built once; every worker owns one
// client_session per connection and one read buffer; latencies go into fixed log-linear
// histograms (no allocation per sample). Measured cost per message: docs/fakes.md.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it

#include "relay/net/stream.hpp"

#include <boost/asio/awaitable.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace relaylab::tls {
class client_context;
}

namespace relaylab::fakes::load {

/// Latencies in microseconds, log-linear buckets (16 per power of two: about 6% resolution).
class histogram {
 public:
  void add(std::uint64_t us) noexcept;
  std::uint64_t count() const noexcept { return count_; }
  /// The q-quantile (0 < q <= 1) as the lower bound of its bucket; 0 when empty.
  std::uint64_t quantile(double q) const noexcept;
  static constexpr std::size_t buckets = 64 * 16;

 private:
  std::array<std::uint64_t, buckets> b_{};
  std::uint64_t count_ = 0;
};

enum class phase { connect, ehlo, auth, mail, rcpt, data };
inline constexpr std::size_t phase_count = 6;
std::string_view to_string(phase p) noexcept;

struct auth_credentials {
  std::string mechanism;  // "PLAIN" or "LOGIN"
  std::string user;
  std::string password;
};

struct load_options {
  std::string host = "127.0.0.1";  // numeric
  std::uint16_t port = 25;
  std::size_t sessions = 1;            // -s: sessions in parallel
  std::uint64_t messages = 1;          // -m: messages in total (with duration: upper bound)
  std::size_t message_bytes = 0;       // -l: body bytes added to the headers
  bool reuse_connection = false;       // -d: several messages per connection
  std::string from = "foo@localhost";  // -f
  std::string to = "foo@localhost";    // -t
  std::size_t recipients = 1;          // -r: recipients per message ("1foo@x", "2foo@x", ...)
  std::string helo_name = "localhost";
  std::optional<auth_credentials> auth;
  bool pipelining = false;
  std::optional<std::chrono::milliseconds> duration;  // stop starting messages after this
  std::chrono::milliseconds connect_timeout{30000};
  std::chrono::milliseconds reply_timeout{300000};
  /// TLS: STARTTLS after EHLO (required: a server without it fails each session with
  /// "tls: not offered"), or implicit TLS from the first byte. `tls` must be set unless none;
  /// its settings' CAs decide trust, which the load generator does not enforce (the CLI does
  /// with --tls-ca: untrusted sessions count as "tls: untrusted ...").
  enum class tls_mode { none, starttls, implicit };
  tls_mode tls_use = tls_mode::none;
  std::shared_ptr<tls::client_context> tls;
  bool tls_verify = false;  // an unverified certificate fails the session
  // Resumption is the context's: tls->enable_resumption() (relaylab load --tls-resume).
};

struct load_report {
  std::uint64_t messages_ok = 0;
  std::uint64_t messages_failed = 0;
  std::uint64_t recipients_ok = 0;
  std::uint64_t connections = 0;
  std::uint64_t auth_ok = 0;
  std::uint64_t auth_failed = 0;
  std::uint64_t tls_sessions = 0;  // handshakes that succeeded
  std::uint64_t tls_resumed = 0;   // of those, resumed from a cached session (--tls-resume)
  /// Failures by reply code ("550", "421") or kind ("connect: Connection refused",
  /// "timeout", "lost connection").
  std::map<std::string, std::uint64_t> errors;
  double elapsed_s = 0;  // runtime time from start to the last message
  std::array<histogram, phase_count> latency;
  double cpu_s = 0;  // filled in by the CLI (getrusage) when measured
  std::string format_text() const;
  std::string format_json() const;
};

/// Called after every finished message (count done so far) for -c and progress displays.
using progress_fn = std::function<void(const load_report&)>;

/// Runs the load. Never throws on network trouble: failures are counted in the report.
boost::asio::awaitable<load_report> run_load(load_options options, net::connector& connector,
                                             net::runtime& rt, progress_fn progress = {});

/// The message every transaction sends: headers and `body_bytes` of text in 76-byte lines.
std::string make_message(const load_options& options);

}  // namespace relaylab::fakes::load
