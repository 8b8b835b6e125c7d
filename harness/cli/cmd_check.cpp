// relaylab check FILE: validates a topology file (schema, references, the network model and,
// when the runner is built in, the texts embedded in it: main.cf, master.cf and smtpd.conf with
// relay/config's parsers, zones, MX scripts, dialogues). Every error is printed as
// file:line:column: error: message (the topology's position for inline text, the external
// file's own for text read from one), then postconf-style warnings as file:line:column:
// warning: message. Exit 0 when valid (warnings allowed), 2 when not.
#include "harness/cli/commands.hpp"
#include "harness/topology/topology.hpp"
#if RELAYLAB_HAVE_RUNNER
#include "harness/runner/runner.hpp"
#endif

#include <iostream>

namespace relaylab::cli {

subcommand add_check(CLI::App& root) {
  subcommand c;
  c.app = root.add_subcommand("check", "Validate a topology file");
  auto file = std::make_shared<std::string>();
  c.app->add_option("FILE", *file, "Topology XML file")->required();
  c.run = [file] {
    std::vector<topology::diagnostic> errors, warnings;
    auto doc = topology::load(*file, errors);
#if RELAYLAB_HAVE_RUNNER
    if (doc) runner::validate(*doc, errors, warnings);
#endif
    for (const auto& e : errors) std::cerr << e.to_string() << "\n";
    for (const auto& w : warnings) {
      std::cerr << w.where.to_string() << ": warning: " << w.message << "\n";
    }
    if (!errors.empty()) {
      std::cerr << "relaylab: " << *file << ": " << errors.size()
                << (errors.size() == 1 ? " error" : " errors") << "\n";
      return exit_usage;
    }
    std::cout << *file << ": ok (" << doc->hosts.size() << " hosts, " << doc->scenarios.size()
              << " scenarios)\n";
    return exit_ok;
  };
  return c;
}

}  // namespace relaylab::cli
