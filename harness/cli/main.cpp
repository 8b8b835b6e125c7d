#include "harness/cli/commands.hpp"

#include <fstream>
#include <iostream>
#include <vector>

bool relaylab::cli::write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out.flush());
}

int main(int argc, char** argv) {
  using namespace relaylab::cli;
  CLI::App root("relaylab: a lab for SMTP relays", "relaylab");
  root.require_subcommand(1);
  std::vector<subcommand> commands;
  commands.push_back(add_version(root));
#if RELAYLAB_HAVE_SASLDB
  commands.push_back(add_sasldb(root));
#endif
#if RELAYLAB_HAVE_RELAY
  commands.push_back(add_relay(root));
  commands.push_back(add_queue(root));
#endif
#if RELAYLAB_HAVE_TOPOLOGY
  commands.push_back(add_check(root));
  commands.push_back(add_draw(root));
#endif
#if RELAYLAB_HAVE_CFN
  commands.push_back(add_import(root));
#endif
#if RELAYLAB_HAVE_RUNNER
  commands.push_back(add_run(root));
#endif
#if RELAYLAB_HAVE_SWEEP
  commands.push_back(add_sweep(root));
  commands.push_back(add_report(root));
#endif
#if RELAYLAB_HAVE_MATRIX
  commands.push_back(add_matrix(root));
#endif
#if RELAYLAB_HAVE_FAKES
  commands.push_back(add_mx(root));
  commands.push_back(add_send(root));
  commands.push_back(add_load(root));
  commands.push_back(add_dialogue(root));
#endif
  try {
    root.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return root.exit(e);  // --help
  } catch (const CLI::ParseError& e) {
    // CLI11's message names the option ("The following argument was not expected: --x",
    // "--config-dir is required", "--ready-fd: Value x could not be converted").
    std::cerr << "relaylab: " << e.what() << "\n"
              << "Run with --help for usage.\n";
    return exit_usage;
  }
  for (const auto& c : commands) {
    if (c.app->parsed()) return c.run();
  }
  return exit_usage;
}
