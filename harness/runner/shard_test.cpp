// --shard I/N and --shard auto from the environment variables of batch schedulers.
#include "harness/runner/shard.hpp"

#include <gtest/gtest.h>

#include <map>

namespace relaylab::runner {
namespace {

env_lookup env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

shard resolved(std::string_view spec, std::map<std::string, std::string> vars) {
  std::string error;
  const auto s = resolve_shard(spec, env(std::move(vars)), error);
  EXPECT_TRUE(s) << error;
  return s.value_or(shard{});
}

std::string refused(std::string_view spec, std::map<std::string, std::string> vars) {
  std::string error;
  EXPECT_FALSE(resolve_shard(spec, env(std::move(vars)), error));
  return error;
}

TEST(shard, explicit_one_based) {
  const auto s = resolved("2/5", {{"SLURM_ARRAY_TASK_ID", "0"}});  // the option wins
  EXPECT_EQ(s.index, 1u);
  EXPECT_EQ(s.count, 5u);
  EXPECT_EQ(s.source, "--shard");
  for (const char* bad : {"0/5", "6/5", "1/0", "x/2", "1/", "/2", "1/2/3", "", "auto/3"}) {
    EXPECT_NE(refused(bad, {}).find("expected I/N"), std::string::npos) << bad;
  }
}

TEST(shard, schedulers) {
  auto s = resolved("auto", {{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_COUNT", "4"}});
  EXPECT_EQ(s.index, 3u);
  EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(s.source, "SLURM_ARRAY_TASK_ID");
  // `sbatch --array=1-4`: the index counts from SLURM_ARRAY_TASK_MIN.
  s = resolved("auto", {{"SLURM_ARRAY_TASK_ID", "1"},
                        {"SLURM_ARRAY_TASK_MIN", "1"},
                        {"SLURM_ARRAY_TASK_COUNT", "4"}});
  EXPECT_EQ(s.index, 0u);
  s = resolved("auto", {{"JOB_COMPLETION_INDEX", "0"}, {"RELAYLAB_SHARD_COUNT", "8"}});
  EXPECT_EQ(s.index, 0u);
  EXPECT_EQ(s.count, 8u);
  EXPECT_EQ(s.source, "JOB_COMPLETION_INDEX");
  s = resolved("auto", {{"CI_NODE_INDEX", "2"}, {"CI_NODE_TOTAL", "2"}});  // GitLab: 1-based
  EXPECT_EQ(s.index, 1u);
  EXPECT_EQ(s.count, 2u);
  s = resolved("auto", {{"RELAYLAB_SHARD_INDEX", "0"}, {"RELAYLAB_SHARD_COUNT", "3"}});
  EXPECT_EQ(s.index, 0u);
  EXPECT_EQ(s.count, 3u);
  s = resolved("auto", {{"RELAYLAB_SHARD", "3/3"}, {"SLURM_ARRAY_TASK_ID", "0"}});
  EXPECT_EQ(s.index, 2u);
  EXPECT_EQ(s.source, "RELAYLAB_SHARD");
}

TEST(shard, bad_environment_is_named) {
  EXPECT_NE(refused("auto", {}).find("no shard in the environment"), std::string::npos);
  EXPECT_NE(refused("auto", {{"JOB_COMPLETION_INDEX", "0"}}).find("RELAYLAB_SHARD_COUNT"),
            std::string::npos);
  EXPECT_NE(refused("auto", {{"CI_NODE_INDEX", "0"}, {"CI_NODE_TOTAL", "2"}})
                .find("CI_NODE_INDEX: expected a number from 1 to 2"),
            std::string::npos);
  EXPECT_NE(refused("auto", {{"SLURM_ARRAY_TASK_ID", "4"}, {"SLURM_ARRAY_TASK_COUNT", "4"}})
                .find("SLURM_ARRAY_TASK_ID"),
            std::string::npos);
  EXPECT_NE(refused("auto", {{"RELAYLAB_SHARD", "0/1"}}).find("RELAYLAB_SHARD"), std::string::npos);
}

TEST(shard, ranges_cover_every_item_once) {
  for (std::uint64_t total : {0u, 1u, 7u, 100u, 1001u}) {
    for (std::uint64_t n : {1u, 2u, 3u, 8u, 13u}) {
      std::uint64_t next = 0;
      for (std::uint64_t i = 0; i < n; ++i) {
        const shard s{i, n, ""};
        EXPECT_EQ(shard_begin(s, total), next);
        EXPECT_LE(shard_begin(s, total), shard_end(s, total));
        next = shard_end(s, total);
      }
      EXPECT_EQ(next, total);
    }
  }
}

}  // namespace
}  // namespace relaylab::runner
