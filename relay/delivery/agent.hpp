// The queue manager hands messages to delivery agents (Postfix: qmgr → smtp/local).
//
// CONTRACT (between relay/qmgr and relay/delivery; change only together).
// - The agent delivers one message to some of its recipients (all sharing one next hop) and
//   returns one outcome per recipient. It writes Postfix's per-recipient log lines itself
//   ("smtp[pid]: ID: to=<..>, relay=..., delay=.., delays=a/b/c/d, dsn=.., status=..") and the
//   per-address "connect to host[ip]:port: reason" lines. The queue manager records the outcomes
//   (done marks, deferral reasons), bounces and logs "removed".
#pragma once

// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace relaylab::delivery {

using time_point = std::chrono::system_clock::time_point;

struct job_recipient {
  std::uint32_t index = 0;  // recipient index in the queue file
  std::string address;
  std::string orcpt;
  std::uint8_t notify = 0;
};

/// Where to send: resolved by the queue manager from transport_maps, relayhost or the
/// recipient domain, in Postfix's syntax.
struct next_hop {
  std::string transport = "smtp";  // "smtp", "local", "error", "discard" ...
  std::string host;                // domain (MX lookup) or host (with `no_mx`)
  std::uint16_t port = 25;
  bool no_mx = false;  // "[host]" form: no MX lookup
  std::string text;    // for "error:"/"discard:" the reason; else as written
};

struct job {
  std::string queue_id;
  std::string sender;
  std::vector<job_recipient> recipients;
  std::uint64_t size = 0;  // content bytes (what qmgr logs as size=)
  next_hop hop;
  /// Attributes stored with the message (client_name, sasl_username ...).
  std::vector<std::pair<std::string, std::string>> attributes;
  // Timestamps for Postfix's delay= and delays=a/b/c/d.
  time_point arrival{};        // message arrival (delay= counts from here)
  time_point queued_active{};  // entered the active queue (end of "a")
  time_point handed_over{};    // handed to this agent (end of "b")
  /// Reads content bytes [offset, offset + bytes_max); fewer at the end.
  std::function<std::error_code(std::uint64_t offset, std::size_t bytes_max, std::string& out)>
      read_content;
};

enum class outcome_status { sent, deferred, bounced };

struct recipient_outcome {
  std::uint32_t index = 0;
  outcome_status status = outcome_status::deferred;
  std::string dsn;     // "2.0.0", "4.4.1", "5.1.1" ...
  std::string relay;   // "mx.example.com[192.0.2.1]:25", "none", "local"
  std::string reason;  // Postfix's parenthesised text: "250 2.0.0 Ok: queued as X", "connect to
                       // mx[..]:25: Connection refused", "host mx[..] said: 550 ... (in reply
                       // to RCPT TO command)"
};

class agent {
 public:
  virtual ~agent() = default;
  virtual boost::asio::awaitable<std::vector<recipient_outcome>> deliver(const job& j) = 0;
};

}  // namespace relaylab::delivery
