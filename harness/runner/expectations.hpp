// A scenario's expectations (<expect-maillog>, <expect-maillog-sequence>, <expect-mailbox>,
// <expect-queue>, <expect-load>, <expect-duration>) judged against what the run observed, and
// the small texts failures are written in. Internal to harness/runner (runner.cpp).
#pragma once

#include "harness/runner/runner.hpp"
#include "harness/runner/tasks.hpp"
#include "harness/topology/topology.hpp"
#include "relay/tls/tls.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace relaylab::runner::detail {

struct queue_counts {
  std::uint64_t incoming = 0, active = 0, deferred = 0;
};

/// What the run shows an expectation, at the moment it is checked.
struct observed {
  const std::vector<std::string>& maillog;  // every relay's lines, in order
  std::function<const fakes::mx::server*(const std::string& host)> mailbox;  // null: no MX
  std::function<queue_counts()> queue;  // over every relay (a down one: its disk)
  std::function<const load_outcome*(const std::string& step)> load;  // null: never started
  const std::map<std::string, std::chrono::nanoseconds>& step_times;
  std::chrono::nanoseconds now;  // virtual time
};

/// Appends a failure (the expectation's location, what was expected, what was found) for each
/// way `x` does not hold.
void judge(const topology::expectation& x, const observed& o, std::vector<failure>& out);

/// "12.345s".
std::string ms_text(std::chrono::nanoseconds d);
/// The topology's globs ('*').
bool glob(const std::string& pattern, const std::string& text);
/// expect-tls and <expect-mailbox tls>: "yes", "no" or the protocol ("TLSv1.3").
bool tls_matches(const std::string& want, const std::optional<tls::session_info>& got);

}  // namespace relaylab::runner::detail
