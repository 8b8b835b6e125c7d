// libFuzzer target: the topology XML loader (harness/topology): XML syntax, the schema checks,
// addresses, CIDRs, durations, name references, scenarios and the network model built from
// them. Relative file="..." references resolve under a directory that does not exist, so the
// loader never reads the machine's files.
//
// Checked beyond the sanitizers: a document comes back exactly when there is no error, and every
// error names the file and a line inside the text.
#include "fuzz/fuzz_input.hpp"
#include "harness/topology/topology.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  relaylab::fuzz::fail("topology_fuzz", what, detail);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace relaylab::topology;
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  std::vector<diagnostic> errors;
  const auto doc = parse(xml, "fuzz.xml", "/nonexistent/relaylab-fuzz", errors);
  if (doc && !errors.empty()) fail("a document despite errors", errors.front().message);
  if (!doc && errors.empty()) fail("no document and no error", "");
  if (errors.size() > errors_max + 1) fail("more errors than errors_max", "");
  const long lines = std::count(xml.begin(), xml.end(), '\n') + 1;
  for (const auto& e : errors) {
    if (e.message.empty()) fail("an error without a message", "");
    if (e.where.file.empty()) fail("an error without a file", e.message);
    if (e.where.file == "fuzz.xml" && e.where.line > static_cast<std::size_t>(lines))
      fail("an error line outside the text", e.message);
  }
  return 0;
}
