// What `relaylab run` prints and writes: the text report (seed and options first, one line per
// scenario, failures with the expectation, what happened and the replay command), JUnit XML,
// JSON and the maillog. All deterministic: wall time is passed in separately and only the
// text report's optional wall column shows it.
#pragma once

#include "harness/runner/runner.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace relaylab::runner {

struct report_input {
  std::string file;
  std::uint64_t seed = 0;
  run_options options;
  std::vector<scenario_result> results;
  std::vector<double> wall_ms;  // per result; empty = leave wall time out
};

/// The header: "relaylab run FILE", "seed = N", resolved options.
/// Text for an XML attribute or element: <, >, &, " escaped; control characters other than
/// tab and newline become '?'.
std::string xml_escape(std::string_view s);

std::string text_header(const report_input& in);
/// One scenario: "PASS name  virtual=1.234s[  wall=5ms]" and, on failure, the details and
/// "  replay: relaylab run FILE --scenario NAME --seed N".
std::string text_scenario(const report_input& in, std::size_t index);
std::string text_summary(const report_input& in);
std::string junit_xml(const report_input& in);
std::string json(const report_input& in);
/// Every scenario's maillog, each block headed by "# scenario NAME".
std::string maillog(const report_input& in);

}  // namespace relaylab::runner
