// `mailq` / `postqueue -p` output for `relaylab queue list`, laid out as Postfix 3.7's
// showq_compat (short queue IDs): a heading, one block per message ("*" after the ID of active
// mail), the last deferral reason right-aligned in parentheses above the recipients it applies
// to, and a "-- N Kbytes in M Requests." summary, or "Mail queue is empty".
#pragma once

#include "relay/queue/spool.hpp"

#include <chrono>
#include <span>
#include <string>

namespace relaylab::queue {

struct mailq_options {
  /// Added to UTC before formatting arrival times (Postfix prints local time; the CLI passes
  /// the host's offset, tests a fixed one).
  std::chrono::seconds utc_offset{0};
};

std::string format_mailq(std::span<const queue_entry> entries, const mailq_options& options = {});

}  // namespace relaylab::queue
