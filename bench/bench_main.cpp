// main() for every relaylab_bench_* binary: Google Benchmark's, plus a non-zero exit status
// when a benchmark reported a failure through relaylab::bench::fail().
#include "bench/bench_support.hpp"

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>

namespace relaylab::bench {
namespace {
std::atomic<int> failures{0};
}

void fail(benchmark::State& state, const std::string& why) {
  failures.fetch_add(1);
  std::fprintf(stderr, "benchmark failure: %s\n", why.c_str());
  state.SkipWithError(why.c_str());
}

}  // namespace relaylab::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return relaylab::bench::failures.load() == 0 ? 0 : 1;
}
