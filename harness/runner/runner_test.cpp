// The runner end to end on the hands-on topology: scenarios pass, and the same seed gives the
// same results (maillog, virtual times) twice.
#include "harness/runner/runner.hpp"
#include "harness/runner/report.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <map>
#include <regex>
#include <set>
#include <stdexcept>

namespace relaylab::runner {
namespace {

const std::string handson = std::string(RELAYLAB_SOURCE_DIR) + "/topologies/handson/handson.xml";

topology::document load_handson() {
  std::vector<topology::diagnostic> errors;
  auto doc = topology::load(handson, errors);
  EXPECT_TRUE(doc) << (errors.empty() ? "" : errors.front().to_string());
  validate(*doc, errors);
  EXPECT_TRUE(errors.empty()) << (errors.empty() ? "" : errors.front().to_string());
  return std::move(*doc);
}

std::string describe(const scenario_result& r) {
  std::string out;
  for (const auto& f : r.failures) {
    out += f.where.to_string() + ": expected " + f.expected + "\n  got: " + f.got + "\n";
  }
  for (const auto& l : r.maillog) out += "  > " + l + "\n";
  return out;
}

TEST(runner, select_by_name_and_shard) {
  const auto doc = load_handson();
  run_options o;
  std::string error;
  EXPECT_EQ(select(doc, o, error).size(), doc.scenarios.size());
  o.shard_count = 2;
  o.shard_index = 1;
  const auto odd = select(doc, o, error);
  ASSERT_FALSE(odd.empty());
  EXPECT_EQ(odd[0]->name, doc.scenarios[1].name);
  o = {};
  o.scenario = "nope";
  EXPECT_TRUE(select(doc, o, error).empty());
  EXPECT_NE(error.find("nope"), std::string::npos);
}

class handson_scenario : public ::testing::TestWithParam<std::string> {};

TEST_P(handson_scenario, passes) {
  const auto doc = load_handson();
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  for (const auto& sc : doc.scenarios) {
    if (sc.name != GetParam()) continue;
    const auto r = run_scenario(doc, sc, 20201021, o);
    EXPECT_TRUE(r.passed) << describe(r);
    return;
  }
  FAIL() << "no scenario " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(handson, handson_scenario,
                         ::testing::Values("port25-mynetworks", "auth-plain-587",
                                           "no-auth-587-rejected", "sg-without-587",
                                           "template-forgot-587", "latent-bug-roaming-auth",
                                           "latent-bug-fix-main-cf", "latent-bug-fix-master-cf",
                                           "mx-tempfail-retry", "load-auth-587",
                                           "tls-submission-587", "tls-submission-no-starttls-530",
                                           "auth-guessing-cut-off"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

TEST(runner, same_seed_same_results) {
  const auto doc = load_handson();
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  report_input a, b;
  a.file = b.file = "handson.xml";
  a.seed = b.seed = 7;
  for (const auto* name : {"auth-plain-587", "mx-tempfail-retry"}) {
    for (const auto& sc : doc.scenarios) {
      if (sc.name != name) continue;
      a.results.push_back(run_scenario(doc, sc, 7, o));
      b.results.push_back(run_scenario(doc, sc, 7, o));
    }
  }
  ASSERT_EQ(a.results.size(), 2u);
  EXPECT_FALSE(a.results[0].maillog.empty());
  EXPECT_EQ(json(a), json(b));
  EXPECT_EQ(maillog(a), maillog(b));
}

// The progress callback sees the run advance (virtual time, events and messages never go back)
// and changes nothing: the report is the same bytes with and without it.
TEST(runner, progress_reports_without_changing_the_run) {
  const auto doc = load_handson();
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  topology::scenario sc;
  for (const auto& s : doc.scenarios) {
    if (s.name == "load-auth-587") sc = s;
  }
  // Long enough for several calls (one per 4096 events).
  for (auto& st : sc.steps) {
    if (st.kind == topology::step_kind::load) st.load.messages = 600;
  }
  sc.expectations.clear();
  report_input a, b;
  a.file = b.file = "handson.xml";
  a.results.push_back(run_scenario(doc, sc, 5, o));
  std::vector<progress_info> seen;
  o.progress = [&](const progress_info& p) { seen.push_back(p); };
  b.results.push_back(run_scenario(doc, sc, 5, o));
  EXPECT_TRUE(b.results[0].passed) << describe(b.results[0]);
  EXPECT_EQ(json(a), json(b));
  ASSERT_GE(seen.size(), 2u);
  EXPECT_GT(seen.back().messages, 0u);
  for (std::size_t i = 1; i < seen.size(); ++i) {
    EXPECT_GE(seen[i].virtual_time, seen[i - 1].virtual_time);
    EXPECT_GT(seen[i].events, seen[i - 1].events);
    EXPECT_GE(seen[i].messages, seen[i - 1].messages);
  }
  EXPECT_EQ(seen.front().scenario, "load-auth-587");
  EXPECT_EQ(seen.back().events % 4096, 0u);
}

topology::document load_file(const std::string& path) {
  std::vector<topology::diagnostic> errors;
  auto doc = topology::load(path, errors);
  EXPECT_TRUE(doc) << (errors.empty() ? "" : errors.front().to_string());
  if (doc) validate(*doc, errors);
  EXPECT_TRUE(errors.empty()) << (errors.empty() ? "" : errors.front().to_string());
  return doc ? std::move(*doc) : topology::document{};
}

const std::string crash_topology =
    std::string(RELAYLAB_SOURCE_DIR) + "/testdata/topology/runner/crash-under-load.xml";

// The relay's host crashes mid-load and restarts: the scenario's expectations and the checkers
// hold, and mail that the first boot accepted but had not delivered when it crashed is
// delivered by the second boot (the spool recovered it and the new queue manager adopted it).
TEST(runner, relay_crash_mid_load_recovers_the_queue) {
  const auto doc = load_file(crash_topology);
  ASSERT_EQ(doc.scenarios.size(), 1u);
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  for (const std::uint64_t seed : {7u, 8u}) {
    const auto r = run_scenario(doc, doc.scenarios[0], seed, o);
    EXPECT_TRUE(r.passed) << "seed " << seed << "\n" << describe(r);
    // Queue IDs by the boot whose smtpd accepted them (pids 2996, then 3196), and by the boot
    // whose smtp agent logged them sent (3000, 3200).
    const std::regex accepted(R"( postfix/smtpd\[(\d+)\]: ([0-9A-F]+): client=)");
    const std::regex sent(R"( postfix/smtp\[(\d+)\]: ([0-9A-F]+): to=<[^>]*>, .*status=sent)");
    std::map<std::string, std::string> accepted_by, sent_by;
    for (const auto& l : r.maillog) {
      std::smatch m;
      if (std::regex_search(l, m, accepted)) accepted_by[m[2]] = m[1];
      if (std::regex_search(l, m, sent)) sent_by[m[2]] = m[1];
    }
    std::size_t carried_over = 0;
    for (const auto& [id, pid] : accepted_by) {
      if (pid == "2996" && sent_by.count(id) && sent_by[id] == "3200") ++carried_over;
    }
    EXPECT_GT(carried_over, 0u) << "seed " << seed << ": no message accepted before the crash "
                                << "was delivered after the restart\n"
                                << describe(r);
    // Nothing the first boot did is logged after the crash.
    bool after_crash = false;
    for (const auto& l : r.maillog) {
      if (l.find("[3196]") != std::string::npos) after_crash = true;
      if (after_crash) {
        EXPECT_EQ(l.find("[2996]"), std::string::npos) << l;
        EXPECT_EQ(l.find("[3000]"), std::string::npos) << l;
        EXPECT_EQ(l.find("[2924]"), std::string::npos) << l;
      }
    }
  }
}

TEST(runner, relay_crash_replays_identically) {
  const auto doc = load_file(crash_topology);
  ASSERT_EQ(doc.scenarios.size(), 1u);
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  report_input a, b;
  a.file = b.file = crash_topology;
  a.seed = b.seed = 11;
  a.results.push_back(run_scenario(doc, doc.scenarios[0], 11, o));
  b.results.push_back(run_scenario(doc, doc.scenarios[0], 11, o));
  EXPECT_FALSE(a.results[0].maillog.empty());
  EXPECT_EQ(json(a), json(b));
}

// Without the restart the crashed relay's durable queue still counts: the checkers accept mail
// that is only on its disk. The load, still running when the scenario ends, is abandoned (its
// coroutines are destroyed with the world).
TEST(runner, crashed_relay_keeps_accepted_mail_queued) {
  auto doc = load_file(crash_topology);
  ASSERT_EQ(doc.scenarios.size(), 1u);
  auto& sc = doc.scenarios[0];
  std::vector<topology::step> steps;
  for (const auto& st : sc.steps) {
    if (st.kind == topology::step_kind::load || st.name == "crash") steps.push_back(st);
  }
  ASSERT_EQ(steps.size(), 2u);
  topology::step wait;
  wait.kind = topology::step_kind::wait;
  wait.wait_for = std::chrono::seconds(10);
  steps.push_back(wait);
  sc.steps = steps;
  sc.expectations.clear();
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  const auto r = run_scenario(doc, sc, 7, o);
  EXPECT_TRUE(r.passed) << describe(r);  // the checkers
  // Some mail was accepted before the crash and never delivered: it is only on the disk.
  const std::regex accepted(R"( postfix/smtpd\[\d+\]: ([0-9A-F]+): client=)");
  const std::regex sent(R"( postfix/smtp\[\d+\]: ([0-9A-F]+): to=<[^>]*>, .*status=sent)");
  std::set<std::string> ids, delivered;
  for (const auto& l : r.maillog) {
    std::smatch m;
    if (std::regex_search(l, m, accepted)) ids.insert(m[1]);
    if (std::regex_search(l, m, sent)) delivered.insert(m[1]);
  }
  std::size_t undelivered = 0;
  for (const auto& id : ids) undelivered += delivered.count(id) ? 0 : 1;
  EXPECT_GT(undelivered, 0u) << describe(r);
}

const std::string tls_topology = std::string(RELAYLAB_SOURCE_DIR) + "/topologies/tls/tls.xml";

class tls_scenario : public ::testing::TestWithParam<std::string> {};

// TLS on both sides over the sim streams: real handshakes on virtual time, with the run's CA.
TEST_P(tls_scenario, passes) {
  const auto doc = load_file(tls_topology);
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  for (const auto& sc : doc.scenarios) {
    if (sc.name != GetParam()) continue;
    const auto r = run_scenario(doc, sc, 3207, o);
    EXPECT_TRUE(r.passed) << describe(r);
    return;
  }
  FAIL() << "no scenario " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(
    tls, tls_scenario,
    ::testing::Values("verify-good-sent", "verify-expired-deferred", "verify-self-signed-deferred",
                      "encrypt-self-signed-untrusted-sent", "encrypt-no-starttls-deferred",
                      "may-no-starttls-sent-in-clear", "smtps-465-and-submission-load"),
    [](const auto& info) {
      std::string n = info.param;
      for (auto& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return n;
    });

const topology::scenario& scenario_named(const topology::document& doc, const std::string& n) {
  for (const auto& sc : doc.scenarios) {
    if (sc.name == n) return sc;
  }
  throw std::runtime_error("no scenario " + n);
}

// The expectations can fail: the verified scenario against the MX with the expired certificate
// reports the deferral instead of the delivery, and an expect-tls the session did not have.
TEST(runner_tls, a_certificate_that_does_not_verify_fails_the_verified_scenario) {
  auto doc = load_file(tls_topology);
  for (auto& h : doc.hosts) {
    if (h.net.name == "mx.good.example") h.mx.front().tls = "expired";
  }
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  const auto r = run_scenario(doc, scenario_named(doc, "verify-good-sent"), 3207, o);
  EXPECT_FALSE(r.passed);
  bool deferred = false;
  for (const auto& l : r.maillog) {
    deferred = deferred ||
               l.find("status=deferred (Server certificate not verified)") != std::string::npos;
  }
  EXPECT_TRUE(deferred) << describe(r);
}

TEST(runner_tls, expect_tls_fails_on_a_session_without_tls) {
  auto doc = load_file(tls_topology);
  auto sc = scenario_named(doc, "verify-good-sent");
  for (auto& st : sc.steps) {
    if (st.kind == topology::step_kind::send) st.send.expect_tls = "TLSv1.3";  // no tls="..."
  }
  sc.expectations.clear();
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  const auto r = run_scenario(doc, sc, 3207, o);
  ASSERT_FALSE(r.passed);
  EXPECT_EQ(r.failures.front().expected, "a session with TLS TLSv1.3");
  EXPECT_EQ(r.failures.front().got, "no TLS");
}

// Fail closed in the simulation too: a certificate file main.cf names is the one loaded, and a
// missing one stops the relay's set-up with the file's name (no silent fallback to the run's).
TEST(runner_tls, a_named_certificate_file_that_does_not_exist_stops_the_run) {
  auto doc = load_file(tls_topology);
  for (auto& h : doc.hosts) {
    if (h.relay) h.relay->main_cf.text += "\nsmtpd_tls_cert_file = /nonexistent/relay.pem\n";
  }
  run_options o;
  o.work_dir = "/tmp/relaylab-runner-test-" + std::to_string(::getpid());
  const auto r = run_scenario(doc, scenario_named(doc, "verify-good-sent"), 3207, o);
  ASSERT_FALSE(r.passed);
  EXPECT_NE(r.failures.front().got.find("/nonexistent/relay.pem"), std::string::npos)
      << describe(r);
}

}  // namespace
}  // namespace relaylab::runner
