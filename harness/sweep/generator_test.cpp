#include "harness/sweep/generator.hpp"
#include "harness/sweep/sweep.hpp"

#include "harness/runner/runner.hpp"
#include "harness/topology/topology.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

namespace relaylab::sweep {
namespace {

runner::run_options scratch() {
  runner::run_options o;
  o.work_dir = "/tmp/relaylab-sweep-test-" + std::to_string(static_cast<long>(::getpid()));
  return o;
}

TEST(generator, same_seed_same_bytes) {
  for (std::uint64_t seed : {0ULL, 1ULL, 42ULL, 18446744073709551615ULL}) {
    const auto a = generate(seed);
    const auto b = generate(seed);
    EXPECT_EQ(a.xml, b.xml) << "seed " << seed;
    EXPECT_EQ(a.summary, b.summary);
    EXPECT_EQ(a.file, "sweep-" + std::to_string(seed) + ".xml");
  }
}

TEST(generator, different_seeds_differ) {
  std::set<std::string> seen;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) seen.insert(generate(seed).xml);
  EXPECT_EQ(seen.size(), 200u);
}

// Every generated file is one `relaylab check` accepts: the loader (network model included)
// and the runner's validation of the embedded texts (zones, MX scripts, DNS fault records).
TEST(generator, every_case_loads_and_validates) {
  for (std::uint64_t seed = 1; seed <= 400; ++seed) {
    const auto g = generate(seed);
    std::vector<topology::diagnostic> errors;
    auto doc = topology::parse(g.xml, g.file, ".", errors);
    if (doc) runner::validate(*doc, errors);
    std::string text;
    for (const auto& e : errors) text += e.to_string() + "\n";
    ASSERT_TRUE(doc && errors.empty()) << text << g.xml;
    ASSERT_EQ(doc->scenarios.size(), 1u);
    EXPECT_EQ(doc->scenarios.front().name, g.scenario);
    EXPECT_EQ(doc->seed, seed);
  }
}

// The space the issue asks for is actually visited: every relay policy, delivery mode, fault
// kind and MX behaviour shows up within a few hundred seeds, as do fault-free cases and cases
// left to the checkers alone.
TEST(generator, covers_the_space) {
  std::string all;
  for (std::uint64_t seed = 1; seed <= 400; ++seed) all += generate(seed).summary + "\n";
  for (const char* want : {"policy=mynetworks",
                           "policy=submission-fixed",
                           "policy=latent-bug",
                           "policy=main-cf-fix",
                           "delivery=mx",
                           "delivery=relayhost ",
                           "delivery=relayhost-ip",
                           "ipv6=yes",
                           "ipv6=no",
                           "tempfail",
                           "greylist",
                           "delay",
                           "reject",
                           "disconnect",
                           "421",
                           "rate",
                           "+backup",
                           "faults=none",
                           "link-down public",
                           "link-down private",
                           "link-down internet",
                           "link-down roamer-",
                           "link-down mx.",
                           "crash mx.",
                           "partition relay|client-",
                           "partition relay|roamer-",
                           "partition relay|1mx",
                           "sg-remove egress",
                           "sg-remove ingress 587/any",
                           "sg-remove ingress 25/vpc",
                           "dns-servfail",
                           "dns-nxdomain",
                           "dns-timeout",
                           "dns-mx",
                           "dns-host",
                           "..never",
                           "end=queue-empty",
                           "end=checkers-only",
                           "crash relay@"}) {
    EXPECT_NE(all.find(want), std::string::npos) << want;
  }
}

TEST(generator, options_bound_the_case) {
  generator_options o;
  o.fault_windows_max = 0;
  o.clients_max = 1;
  o.messages_per_client_max = 1;
  o.mx_hosts_max = 1;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    const auto g = generate(seed, o);
    EXPECT_NE(g.summary.find("faults=none"), std::string::npos) << g.summary;
    EXPECT_NE(g.summary.find(" clients=1 messages=1 "), std::string::npos) << g.summary;
    EXPECT_EQ(g.xml.find("<fault "), std::string::npos);
    EXPECT_EQ(g.xml.find("mx.dest2.example"), std::string::npos);
  }
  o.relay_crash = false;
  o.fault_windows_max = 4;
  std::string all;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) all += generate(seed, o).summary;
  EXPECT_EQ(all.find("crash relay"), std::string::npos);
  EXPECT_NE(all.find("crash mx."), std::string::npos);
}

// A handful of cases through the runner: they pass, and their results are reproducible.
TEST(run_case, runs_and_replays) {
  const auto opt = scratch();
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    const auto a = run_case(seed, {}, opt);
    std::string why;
    for (const auto& p : a.problems) why += p + "\n";
    EXPECT_TRUE(a.passed) << "seed " << seed << " " << a.summary << "\n" << why;
    EXPECT_GT(a.events, 0u);
    const auto b = run_case(seed, {}, opt);
    EXPECT_EQ(a.passed, b.passed);
    EXPECT_EQ(a.events, b.events);
    EXPECT_EQ(a.virtual_time, b.virtual_time);
  }
  std::error_code ignored;
  std::filesystem::remove_all(opt.work_dir, ignored);
}

// Seeds the sweep once failed on, now regressions. 501664: after a partition healed, segments
// that had waited for it arrived out of order (harness/sim delivered each on its own backoff),
// so the relay read the MX's replies shuffled and bounced mail. 512266: the relay crashed
// after a recipient was rejected with 550 but before its message finished; nothing durable
// said it had failed, so after the restart it was tried, logged "status=bounced" and notified
// again (relay/qmgr now records the failure in the queue file when its job ends).
TEST(run_case, former_failures_pass) {
  const auto opt = scratch();
  for (const std::uint64_t seed : {501664ull, 512266ull}) {
    const auto r = run_case(seed, {}, opt);
    std::string why;
    for (const auto& p : r.problems) why += p + "\n";
    EXPECT_TRUE(r.passed) << "seed " << seed << " " << r.summary << "\n" << why;
  }
  std::error_code ignored;
  std::filesystem::remove_all(opt.work_dir, ignored);
}

// A fault-free case with an accepting MX delivers everything, and the generated expectations
// say so: the mailbox counts at the MX are there and hold.
TEST(run_case, fault_free_cases_expect_their_deliveries) {
  generator_options o;
  o.fault_windows_max = 0;
  const auto opt = scratch();
  int with_mailbox = 0;
  for (std::uint64_t seed = 100; seed < 110; ++seed) {
    const auto r = run_case(seed, o, opt);
    std::string why;
    for (const auto& p : r.problems) why += p + "\n";
    EXPECT_TRUE(r.passed) << r.summary << "\n" << why;
    if (r.generated.xml.find("<expect-mailbox ") != std::string::npos) ++with_mailbox;
  }
  EXPECT_GT(with_mailbox, 0);
  std::error_code ignored;
  std::filesystem::remove_all(opt.work_dir, ignored);
}

}  // namespace
}  // namespace relaylab::sweep
