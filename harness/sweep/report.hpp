// What `relaylab sweep` writes for CI and batch schedulers (--json, --junit), and
// `relaylab report merge`, which joins the reports of a sweep's shards into the report the
// unsharded sweep writes, byte for byte. Wall time is nowhere in them: the same seeds and
// options give the same bytes on any machine, in one process or in N shards.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::sweep {

struct case_row {
  std::uint64_t seed = 0;
  bool passed = false;
  std::int64_t virtual_ns = 0;
  std::uint64_t events = 0;
  // Failed cases only (a passed case carries no details, so -j N and -j 1 write the same):
  std::string summary;                // what the generator chose
  std::vector<std::string> problems;  // the failed expectations and checkers
};

struct sweep_report {
  std::uint64_t first_seed = 0;
  std::uint64_t count = 0;        // cases in the whole sweep (every shard)
  bool relay_crash = true;        // --no-relay-crash leaves it false
  std::uint64_t shard_index = 0;  // 0-based
  std::uint64_t shard_count = 1;
  std::vector<case_row> cases;  // this shard's, by seed
};

/// "relaylab sweep --count 1 --seed X" (plus --no-relay-crash when the sweep had it).
std::string replay_command(const sweep_report& r, std::uint64_t seed);

/// JSON: one object, one line per case (see docs/sweep.md for the fields).
std::string to_json(const sweep_report& r);
/// JUnit XML: one testcase per case (name sweep-SEED, time = virtual seconds), failures with
/// the generator's choice, each problem and the replay command.
std::string to_junit(const sweep_report& r);

/// Reads what to_json wrote. Errors: nullopt with `error` = "FILE: what was wrong".
std::optional<sweep_report> read_json(std::string_view text, const std::string& file,
                                      std::string& error);

/// Joins shard reports (any order) into the report of the whole sweep (shard 1/1). Every shard
/// of the same sweep (first seed, count, options, shard count) exactly once, each with the
/// cases of its range; otherwise nullopt with `error` naming the file and what is wrong.
std::optional<sweep_report> merge(const std::vector<sweep_report>& shards,
                                  const std::vector<std::string>& files, std::string& error);

}  // namespace relaylab::sweep
