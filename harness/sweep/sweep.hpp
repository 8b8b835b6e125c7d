// Runs generated cases (harness/sweep/generator.hpp) through the real topology loader and the
// scenario runner. Case i of a sweep started at seed S is generated and run with seed S + i,
// so `relaylab sweep --count 1 --seed S+i` replays it alone, and the XML it came from, saved
// with --keep-failures, replays with `relaylab run FILE --seed S+i`.
#pragma once

#include "harness/runner/runner.hpp"
#include "harness/sweep/generator.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace relaylab::sweep {

struct case_result {
  std::uint64_t seed = 0;
  std::string summary;  // what the generator chose
  bool passed = false;
  /// Why it failed: loader or validation diagnostics ("file:line:column: error: ..."), or the
  /// runner's failures ("file:line:column: expected ...; got ..."). Empty when it passed.
  std::vector<std::string> problems;
  std::chrono::nanoseconds virtual_time{0};
  std::uint64_t events = 0;
  generated_case generated;  // the XML, for --keep-failures
};

/// Generates case `seed`, parses it with topology::parse (as `relaylab run` would read the
/// saved file), validates its embedded texts with runner::validate, and runs its scenario with
/// runner::run_scenario and the same seed. A generated file that the loader or validate()
/// rejects is a failed case (a generator bug), never an exception.
case_result run_case(std::uint64_t seed, const generator_options& gen,
                     const runner::run_options& run);

}  // namespace relaylab::sweep
