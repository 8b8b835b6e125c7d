// Generated scenarios for sweeps (`relaylab sweep`): from one seed, a random but valid topology
// with one scenario, as topology XML text (the same text `relaylab run` reads, so a failing
// seed can be saved and replayed as a file).
//
// What a seed picks: a VPC (public subnet with the relay, private subnet with clients,
// sometimes IPv6), a relay policy (mynetworks on 25; submission on 587 with AUTH, with the
// seed tutorial's latent bug or either of its fixes), delivery by MX lookup or through a
// relayhost, 1-3 fake MX hosts with scripts (accept, tempfail then accept, greylisting,
// delays, 5xx for one recipient, disconnects), DNS (MX/A/AAAA, sometimes a backup MX,
// NXDOMAIN, SERVFAIL), 1-3 clients sending 1-5 messages each at random virtual times, and
// fault windows at random virtual times (links, crashes of MX hosts and of the relay,
// partitions, security-group rules, DNS records; some never healed).
//
// Expectations are only what must hold whatever the faults do, or what is certain by
// construction: each send's outcome (the generator models security groups, links and
// partitions on the client's path, and the relay policy), an empty queue when every fault was
// healed and every recipient has a final answer, exact delivery counts for recipients no fault
// can redirect, mailbox contents when nothing at all went wrong. The runner's checkers (every
// accepted message delivered, bounced or still queued; none delivered twice) judge the rest.
#pragma once

#include <cstdint>
#include <string>

namespace relaylab::sweep {

struct generator_options {
  std::size_t mx_hosts_max = 3;             // 1..this fake MX hosts for recipient domains
  std::size_t clients_max = 3;              // 1..this client hosts
  std::size_t messages_per_client_max = 5;  // 1..this messages per client
  std::size_t fault_windows_max = 4;        // 0..this fault windows
  /// Crash (and usually restart) the relay host too: its spool keeps only synced writes, and
  /// the next incarnation recovers the queue (harness/runner). `relaylab sweep
  /// --no-relay-crash` turns it off.
  bool relay_crash = true;
};

struct generated_case {
  std::uint64_t seed = 0;
  std::string file;      // "sweep-<seed>.xml": the name diagnostics use, and --keep-failures
  std::string scenario;  // the scenario's name
  std::string xml;       // the whole topology document
  /// One line: what the seed chose ("policy=submission-fixed delivery=mx mx=2 ...").
  std::string summary;
};

/// Generates case `seed`. Deterministic: the same seed and options give the same bytes on
/// every platform (own PRNG, no std distributions). Never fails.
generated_case generate(std::uint64_t seed, const generator_options& options = {});

}  // namespace relaylab::sweep
