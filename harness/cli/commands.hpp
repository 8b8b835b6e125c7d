// relaylab's subcommands. Each lives in its own cmd_<name>.cpp and registers itself on the root
// CLI11 app; main() parses once and runs the chosen one. Exit codes: 0 ok, 1 runtime failure,
// 2 usage or configuration error.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace relaylab::cli {

struct subcommand {
  CLI::App* app = nullptr;
  std::function<int()> run;  // called after a successful parse when `app` was chosen
};

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_usage = 2;

/// Writes `text` to `path` (replacing it); false when it cannot be written or flushed.
bool write_text_file(const std::string& path, const std::string& text);

subcommand add_version(CLI::App& root);
#if RELAYLAB_HAVE_SASLDB
subcommand add_sasldb(CLI::App& root);
#endif
#if RELAYLAB_HAVE_RELAY
subcommand add_relay(CLI::App& root);
subcommand add_queue(CLI::App& root);
#endif
#if RELAYLAB_HAVE_TOPOLOGY
subcommand add_check(CLI::App& root);
subcommand add_draw(CLI::App& root);
#endif
#if RELAYLAB_HAVE_CFN
subcommand add_import(CLI::App& root);
#endif
#if RELAYLAB_HAVE_RUNNER
subcommand add_run(CLI::App& root);
#endif
#if RELAYLAB_HAVE_SWEEP
subcommand add_sweep(CLI::App& root);
subcommand add_report(CLI::App& root);
#endif
#if RELAYLAB_HAVE_MATRIX
subcommand add_matrix(CLI::App& root);
#endif
#if RELAYLAB_HAVE_FAKES
subcommand add_mx(CLI::App& root);
subcommand add_send(CLI::App& root);
subcommand add_load(CLI::App& root);
subcommand add_dialogue(CLI::App& root);
#endif

}  // namespace relaylab::cli
