#include "harness/sweep/sweep.hpp"

#include "harness/topology/topology.hpp"

namespace relaylab::sweep {

case_result run_case(std::uint64_t seed, const generator_options& gen,
                     const runner::run_options& run) {
  case_result out;
  out.seed = seed;
  out.generated = generate(seed, gen);
  out.summary = out.generated.summary;
  std::vector<topology::diagnostic> errors;
  auto doc = topology::parse(out.generated.xml, out.generated.file, ".", errors);
  if (doc) runner::validate(*doc, errors);
  for (const auto& e : errors) out.problems.push_back(e.to_string());
  if (!doc || !errors.empty()) {
    if (out.problems.empty()) out.problems.push_back(out.generated.file + ": not loaded");
    return out;
  }
  for (const auto& sc : doc->scenarios) {
    auto r = runner::run_scenario(*doc, sc, seed, run);
    out.virtual_time += r.virtual_time;
    out.events += r.events;
    for (const auto& f : r.failures) {
      out.problems.push_back(f.where.to_string() + ": expected " + f.expected + "; got " + f.got);
    }
  }
  out.passed = out.problems.empty();
  return out;
}

}  // namespace relaylab::sweep
