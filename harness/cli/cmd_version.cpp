#include "harness/cli/commands.hpp"

#include <iostream>

#ifndef RELAYLAB_VERSION
#define RELAYLAB_VERSION "unknown"
#endif

namespace relaylab::cli {

subcommand add_version(CLI::App& root) {
  subcommand c;
  c.app = root.add_subcommand("version", "Print relaylab's version");
  c.run = [] {
    std::cout << "relaylab " << RELAYLAB_VERSION << "\n";
    return exit_ok;
  };
  return c;
}

}  // namespace relaylab::cli
