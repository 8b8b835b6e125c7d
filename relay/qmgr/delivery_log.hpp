// The per-recipient delivery line that Postfix's delivery agents log, for the agents that
// relay/qmgr provides (local, error, discard):
//   "ID: to=<user@example.com>, relay=local, delay=0.02, delays=0.01/0.02/0/0, dsn=2.0.0,
//    status=sent (delivered to mailbox)"
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include "relay/delivery/agent.hpp"

#include <chrono>
#include <string>

namespace relaylab::qmgr {

/// Postfix's delay formatting: "0" for nothing, two significant digits below 10 s ("0.07",
/// "1.2"), whole seconds from 10 s on ("18").
std::string format_delay(std::chrono::duration<double> d);

/// "to=<..>, relay=.., delay=.., delays=a/b/c/d, dsn=.., status=.. (reason)" prefixed by
/// "ID: ". a = arrival → active, b = active → handed over, c = connection setup (`setup_done`,
/// = handed_over for local delivery), d = the rest until `now`.
std::string delivery_line(const delivery::job& j, const delivery::job_recipient& r,
                          const delivery::recipient_outcome& o, delivery::time_point setup_done,
                          delivery::time_point now);

/// "sent", "deferred", "bounced".
const char* to_string(delivery::outcome_status s) noexcept;

}  // namespace relaylab::qmgr
