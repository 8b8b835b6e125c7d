// The runner end to end on the hands-on topology: scenarios pass, and the same seed gives the
// same results (maillog, virtual times) twice.
#include "harness/runner/runner.hpp"
#include "harness/runner/report.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

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
                                           "latent-bug-roaming-auth", "latent-bug-fix-main-cf",
                                           "latent-bug-fix-master-cf", "mx-tempfail-retry"),
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

}  // namespace
}  // namespace relaylab::runner
