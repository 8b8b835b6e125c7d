// Prints the parameter support table of docs/relay.md from support.inc and the service rules
// (relay/config/gen-support-doc splices it in; support_doc_test.sh checks they agree).
#include <iostream>
#include <map>
#include <string>

#include "relay/config/config.hpp"

namespace {
// Markdown table cell text: `*` and `|` would format or split the cell.
std::string md(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '|') out += '\\';
    out += c;
  }
  return out;
}
}  // namespace

int main() {
  using namespace relaylab::config;
  std::map<support_class, std::size_t> counts;
  for (const auto& e : support_table()) ++counts[e.level];
  std::cout << "Postfix 3.7.11 has " << support_table().size()
            << " built-in parameters: " << counts[support_class::implemented] << " implemented, "
            << counts[support_class::warned] << " warned, " << counts[support_class::refused]
            << " refused.\n\n"
            << "| parameter | class | reason |\n|---|---|---|\n";
  for (const auto& e : support_table()) {
    std::cout << "| `" << e.name << "` | " << to_string(e.level) << " | " << md(e.reason) << " |\n";
  }
  std::cout << "\nParameters that Postfix derives from master.cf service names (`SERVICE` is the "
               "service's name, e.g. `relay`):\n\n"
            << "| parameter | class | reason |\n|---|---|---|\n";
  for (const auto& r : service_support_rules()) {
    std::cout << "| `SERVICE" << r.suffix << "` | " << to_string(r.level) << " | " << md(r.reason);
    if (!r.implemented_for.empty()) {
      std::cout << "; implemented for";
      for (const auto& s : r.implemented_for) std::cout << " `" << s << "`";
    }
    std::cout << " |\n";
  }
  return 0;
}
