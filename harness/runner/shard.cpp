#include "harness/runner/shard.hpp"

#include <charconv>
#include <cstdlib>

namespace relaylab::runner {

namespace {

constexpr std::uint64_t shards_max = 1000000;

std::optional<std::uint64_t> number(std::string_view s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// "I/N", 1-based.
std::optional<shard> one_based(std::string_view text, std::string source, std::string& error) {
  const auto slash = text.find('/');
  const auto i = slash == std::string_view::npos ? std::nullopt : number(text.substr(0, slash));
  const auto n = slash == std::string_view::npos ? std::nullopt : number(text.substr(slash + 1));
  if (!i || !n || *i < 1 || *i > *n || *n > shards_max) {
    error = source + ": expected I/N with 1 <= I <= N <= " + std::to_string(shards_max) +
            ", got '" + std::string(text) + "'";
    return std::nullopt;
  }
  return shard{*i - 1, *n, std::move(source)};
}

// An index variable and a count variable; `base` is what the first index is (0 or 1).
std::optional<shard> pair(const char* index_name, const std::string& index_text,
                          const char* count_name, const std::optional<std::string>& count_text,
                          std::uint64_t base, std::string& error) {
  if (!count_text) {
    error = std::string("--shard auto: ") + index_name + " is set but " + count_name +
            " is not (it gives the number of shards)";
    return std::nullopt;
  }
  const auto i = number(index_text);
  const auto n = number(*count_text);
  if (!n || *n < 1 || *n > shards_max) {
    error = std::string("--shard auto: ") + count_name + ": expected a number from 1 to " +
            std::to_string(shards_max) + ", got '" + *count_text + "'";
    return std::nullopt;
  }
  if (!i || *i < base || *i - base >= *n) {
    error = std::string("--shard auto: ") + index_name + ": expected a number from " +
            std::to_string(base) + " to " + std::to_string(*n - 1 + base) + " (" + count_name +
            " = " + std::to_string(*n) + "), got '" + index_text + "'";
    return std::nullopt;
  }
  return shard{*i - base, *n, index_name};
}

}  // namespace

std::optional<std::string> process_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return std::nullopt;
  return std::string(v);
}

std::optional<shard> resolve_shard(std::string_view spec, const env_lookup& env,
                                   std::string& error) {
  if (spec != "auto") return one_based(spec, "--shard", error);
  if (auto v = env("RELAYLAB_SHARD")) return one_based(*v, "RELAYLAB_SHARD", error);
  if (auto id = env("SLURM_ARRAY_TASK_ID")) {
    std::uint64_t base = 0;
    if (auto min = env("SLURM_ARRAY_TASK_MIN")) {
      const auto m = number(*min);
      if (!m) {
        error = "--shard auto: SLURM_ARRAY_TASK_MIN: expected a number, got '" + *min + "'";
        return std::nullopt;
      }
      base = *m;
    }
    return pair("SLURM_ARRAY_TASK_ID", *id, "SLURM_ARRAY_TASK_COUNT", env("SLURM_ARRAY_TASK_COUNT"),
                base, error);
  }
  if (auto id = env("JOB_COMPLETION_INDEX")) {
    return pair("JOB_COMPLETION_INDEX", *id, "RELAYLAB_SHARD_COUNT", env("RELAYLAB_SHARD_COUNT"), 0,
                error);
  }
  if (auto id = env("CI_NODE_INDEX")) {
    return pair("CI_NODE_INDEX", *id, "CI_NODE_TOTAL", env("CI_NODE_TOTAL"), 1, error);
  }
  if (auto id = env("RELAYLAB_SHARD_INDEX")) {
    return pair("RELAYLAB_SHARD_INDEX", *id, "RELAYLAB_SHARD_COUNT", env("RELAYLAB_SHARD_COUNT"), 0,
                error);
  }
  error =
      "--shard auto: no shard in the environment (expected RELAYLAB_SHARD=I/N, "
      "SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, CI_NODE_INDEX or RELAYLAB_SHARD_INDEX)";
  return std::nullopt;
}

// floor(total * i / count) without overflow: total = q * count + r, and r * i < count^2 (count
// is at most shards_max).
static std::uint64_t split_point(std::uint64_t total, std::uint64_t i, std::uint64_t count) {
  return i * (total / count) + (total % count) * i / count;
}

std::uint64_t shard_begin(const shard& s, std::uint64_t total) {
  return split_point(total, s.index, s.count);
}

std::uint64_t shard_end(const shard& s, std::uint64_t total) {
  return split_point(total, s.index + 1, s.count);
}

}  // namespace relaylab::runner
