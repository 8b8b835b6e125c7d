// The scenario runner: builds one simulated world per scenario from a topology (network, fake
// DNS, the real relay — smtpd, queue manager, SMTP delivery agent — on its host, fake MX
// receivers, clients), plays the scenario's steps on virtual time, then judges: the scenario's
// expectations, and the checkers (every accepted message is delivered, bounced or still
// queued; none is delivered twice), which only read what the simulation left behind.
//
// Same topology + same seed → the same results, byte for byte (nothing reads the real clock
// or real randomness; wall time is measured by the CLI and kept out of the results).
#pragma once

#include "harness/topology/draw.hpp"
#include "harness/topology/topology.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace relaylab::runner {

/// The master.cf of a <relay> without <master-cf>: one smtpd on port 25.
inline constexpr const char* default_master_cf = "smtp inet n - n - - smtpd\n";

/// Where a running scenario is, for a progress display.
struct progress_info {
  std::string scenario;
  std::chrono::nanoseconds virtual_time{0};
  std::uint64_t events = 0;
  std::uint64_t messages = 0;  // accepted by the relays' smtpd (250 after DATA) so far
};

struct run_options {
  std::string scenario;  // "" = every scenario
  std::size_t shard_index = 0;
  std::size_t shard_count = 1;
  /// Scratch directory for files libsasl2 must read (smtpd.conf, sasldb) and the relay's
  /// configuration; created if missing. Nothing in it affects results. Concurrent runs need
  /// different directories (the CLI appends its pid).
  std::string work_dir = "/tmp/relaylab-run";
  bool verbose = false;  // keep client transcripts
  /// Called every few thousand events while a scenario runs (null = never). It only reads:
  /// the run is the same with and without it.
  std::function<void(const progress_info&)> progress;
};

struct failure {
  topology::location where;  // the expectation or step in the topology file
  std::string expected;
  std::string got;
};

struct scenario_result {
  std::string name;
  bool passed = false;
  std::chrono::nanoseconds virtual_time{0};
  std::vector<failure> failures;
  std::vector<std::string> maillog;     // every relay host's maillog, in order
  std::vector<std::string> transcript;  // clients' -v transcripts (verbose only)
  std::vector<topology::drawn_hop> path;
  std::uint64_t events = 0;
};

/// Scenarios selected by name and shard (shard i of n takes every n-th scenario from i), in
/// file order. Errors: an unknown scenario name → empty with `error` set.
std::vector<const topology::scenario*> select(const topology::document& doc,
                                              const run_options& options, std::string& error);

/// Runs one scenario with `seed`. Never throws for scenario failures; setup problems (bad
/// main.cf, SASL init) are failures of the scenario.
scenario_result run_scenario(const topology::document& doc, const topology::scenario& sc,
                             std::uint64_t seed, const run_options& options);

/// Checks the texts embedded in a topology with their own parsers (DNS zones, MX scripts,
/// dialogues, DNS fault records, and each relay's main.cf, master.cf and smtpd.conf with
/// relay/config's parsers, including scenario overrides), reporting file:line:column: in the
/// topology file for inline text, in the external file for text read from one. Errors: what
/// would stop the relay or a fake from starting (postconf's "fatal" diagnostics for main.cf and
/// master.cf: syntax, bad values; bad smtpd.conf lines). Warnings: what postconf only warns
/// about (unused or undefined parameters, overriding earlier entries).
void validate(const topology::document& doc, std::vector<topology::diagnostic>& errors,
              std::vector<topology::diagnostic>& warnings);
/// validate() without the warnings.
void validate(const topology::document& doc, std::vector<topology::diagnostic>& errors);

}  // namespace relaylab::runner
