// relaylab draw FILE -o OUT.svg|OUT.dot: the topology as a Graphviz picture. SVG output runs
// Debian's `dot` binary (package graphviz). Exit 0, 1 when `dot` fails, 2 for a bad topology.
#include "harness/cli/commands.hpp"
#include "harness/topology/draw.hpp"
#include "harness/topology/topology.hpp"
#if RELAYLAB_HAVE_RUNNER
#include "harness/runner/runner.hpp"
#endif

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

extern char** environ;

namespace relaylab::cli {
namespace {

// Runs `dot -Tsvg -o OUT IN` without a shell.
int run_dot(const std::string& in, const std::string& out) {
  std::string a0 = "dot", a1 = "-Tsvg", a2 = "-o", a3 = out, a4 = in;
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), a4.data(), nullptr};
  pid_t pid = 0;
  if (posix_spawnp(&pid, "dot", nullptr, nullptr, argv, environ) != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

subcommand add_draw(CLI::App& root) {
  subcommand c;
  c.app = root.add_subcommand("draw", "Draw a topology with Graphviz (.svg or .dot)");
  struct opts {
    std::string file, out, scenario;
    std::uint64_t seed = 1;
  };
  auto o = std::make_shared<opts>();
  c.app->add_option("FILE", o->file, "Topology XML file")->required();
  c.app->add_option("-o,--output", o->out, "Output file: NAME.svg or NAME.dot")->required();
#if RELAYLAB_HAVE_RUNNER
  c.app->add_option("--scenario", o->scenario, "Run this scenario and draw the path its mail took");
  c.app->add_option("--seed", o->seed, "Seed for --scenario");
#endif
  c.run = [o] {
    std::vector<topology::diagnostic> errors;
    const auto doc = topology::load(o->file, errors);
    for (const auto& e : errors) std::cerr << e.to_string() << "\n";
    if (!doc) return exit_usage;
    std::vector<topology::drawn_hop> path;
#if RELAYLAB_HAVE_RUNNER
    if (!o->scenario.empty()) {
      runner::run_options ro;
      ro.scenario = o->scenario;
      ro.work_dir = "/tmp/relaylab-draw-" + std::to_string(static_cast<long>(::getpid()));
      std::string error;
      const auto chosen = runner::select(*doc, ro, error);
      if (chosen.empty()) {
        std::cerr << "relaylab draw: " << o->file << ": " << error << "\n";
        return exit_usage;
      }
      path = runner::run_scenario(*doc, *chosen.front(), o->seed, ro).path;
      std::error_code ignored;
      std::filesystem::remove_all(ro.work_dir, ignored);
    }
#endif
    const std::string dot = topology::to_dot(*doc, path);
    const bool svg = o->out.size() > 4 && o->out.compare(o->out.size() - 4, 4, ".svg") == 0;
    const bool dot_file = o->out.size() > 4 && o->out.compare(o->out.size() - 4, 4, ".dot") == 0;
    if (!svg && !dot_file) {
      std::cerr << "relaylab draw: " << o->out << ": expected a name ending in .svg or .dot\n";
      return exit_usage;
    }
    if (dot_file) {
      if (!write_text_file(o->out, dot)) {
        std::cerr << "relaylab draw: cannot write " << o->out << "\n";
        return exit_failure;
      }
      return exit_ok;
    }
    const std::string tmp = o->out + ".dot.tmp";
    if (!write_text_file(tmp, dot)) {
      std::cerr << "relaylab draw: cannot write " << tmp << "\n";
      return exit_failure;
    }
    const int rc = run_dot(tmp, o->out);
    std::remove(tmp.c_str());
    if (rc != 0) {
      std::cerr << "relaylab draw: `dot -Tsvg` failed (" << rc
                << "); is Graphviz installed (apt-get install graphviz)?\n";
      return exit_failure;
    }
    return exit_ok;
  };
  return c;
}

}  // namespace relaylab::cli
