// Which shard of a run or sweep this process is: `--shard I/N`, or `--shard auto` from the
// environment variables batch schedulers set, so one command line serves every array task,
// indexed job or matrix job. No coordinator: each shard computes its own share from I and N.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace relaylab::runner {

struct shard {
  std::uint64_t index = 0;  // 0-based
  std::uint64_t count = 1;
  std::string source;  // where it came from: "--shard", "SLURM_ARRAY_TASK_ID", ...
};

/// Reads an environment variable; nullopt when unset (std::getenv in the CLI, a map in tests).
using env_lookup = std::function<std::optional<std::string>(const char* name)>;

/// `spec` is "I/N" (1 <= I <= N, 1-based as printed) or "auto". "auto" takes the first of:
///   RELAYLAB_SHARD=I/N                                   (any scheduler; 1-based)
///   SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT          (Slurm job arrays; the index counts
///                                                         from SLURM_ARRAY_TASK_MIN, default 0)
///   JOB_COMPLETION_INDEX + RELAYLAB_SHARD_COUNT          (Kubernetes Indexed Jobs; 0-based;
///                                                         the Job's completions, which
///                                                         Kubernetes does not export)
///   CI_NODE_INDEX, CI_NODE_TOTAL                          (GitLab CI `parallel:`; 1-based)
///   RELAYLAB_SHARD_INDEX + RELAYLAB_SHARD_COUNT           (GitHub Actions matrix jobs:
///                                                         strategy.job-index / job-total;
///                                                         0-based)
/// Errors: nullopt with `error` naming the option or the variable and what was expected.
std::optional<shard> resolve_shard(std::string_view spec, const env_lookup& env,
                                   std::string& error);

/// std::getenv.
std::optional<std::string> process_env(const char* name);

/// Shard `s` of `total` items, as contiguous ranges that cover [0, total) once:
/// [total * index / count, total * (index + 1) / count).
std::uint64_t shard_begin(const shard& s, std::uint64_t total);
std::uint64_t shard_end(const shard& s, std::uint64_t total);

}  // namespace relaylab::runner
