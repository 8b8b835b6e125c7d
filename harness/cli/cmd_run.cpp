// relaylab run FILE [--scenario NAME] [--seed N] [--junit OUT.xml] [--json OUT] [--maillog OUT]
//                   [--shard I/N] [-v]
// Runs a topology's scenarios in the simulation. Standard output is the seed and resolved options
// first, then one line per scenario with its virtual time and wall time, failures with the
// replay command, a summary. Everything but the `wall=` field is deterministic (same seed and
// files → the same bytes); the JUnit, JSON and maillog files carry no wall time at all, so they
// are byte-identical. The wall clock is read here only. When standard error is a terminal, a
// progress line ("[3/9] running NAME ...") stands there while each scenario runs; standard output
// is the same either way. Exit 0 all passed, 1 a scenario failed, 2 usage or topology error.
#include "harness/cli/commands.hpp"
#include "harness/runner/report.hpp"
#include "harness/runner/runner.hpp"
#include "harness/runner/shard.hpp"
#include "harness/topology/topology.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

namespace relaylab::cli {
namespace {

struct run_args {
  std::string file, scenario, junit, json, maillog, shard, work_dir;
  std::optional<std::uint64_t> seed;
  bool verbose = false;
};

int run(const run_args& a) {
  runner::run_options opt;
  opt.scenario = a.scenario;
  opt.verbose = a.verbose;
  opt.work_dir = a.work_dir.empty()
                     ? "/tmp/relaylab-run-" + std::to_string(static_cast<long>(::getpid()))
                     : a.work_dir;
  if (!a.shard.empty()) {
    std::string error;
    const auto sh = runner::resolve_shard(a.shard, runner::process_env, error);
    if (!sh) {
      std::cerr << "relaylab run: " << error << "\n";
      return exit_usage;
    }
    opt.shard_index = static_cast<std::size_t>(sh->index);
    opt.shard_count = static_cast<std::size_t>(sh->count);
  }
  std::vector<topology::diagnostic> errors;
  auto doc = topology::load(a.file, errors);
  if (doc) runner::validate(*doc, errors);
  for (const auto& e : errors) std::cerr << e.to_string() << "\n";
  if (!errors.empty()) return exit_usage;
  std::string error;
  const auto chosen = runner::select(*doc, opt, error);
  if (!error.empty()) {
    std::cerr << "relaylab run: " << a.file << ": " << error << "\n";
    return exit_usage;
  }
  runner::report_input rep;
  rep.file = a.file;
  if (a.seed) {
    rep.seed = *a.seed;
  } else if (doc->seed) {
    rep.seed = *doc->seed;
  } else {
    std::random_device rd;
    rep.seed = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  }
  rep.options = opt;
  std::cout << runner::text_header(rep) << std::flush;
  const bool progress = ::isatty(STDERR_FILENO) == 1;
  // On a terminal, the running scenario's line: virtual and wall time, messages and events with
  // their rates per wall-second, at most four times a second. Standard error only: standard
  // output stays the same bytes for the same seed.
  auto t0 = std::chrono::steady_clock::now();
  auto shown = t0;
  std::string position;
  if (progress) {
    opt.progress = [&](const runner::progress_info& p) {
      const auto now = std::chrono::steady_clock::now();
      if (now - shown < std::chrono::milliseconds(250)) return;
      shown = now;
      const double wall = std::chrono::duration<double>(now - t0).count();
      char line[256];
      std::snprintf(line, sizeof line,
                    "%s %s  virtual %.3fs  wall %.1fs  %llu msgs (%.0f/s)  %llu events (%.0f/s)",
                    position.c_str(), p.scenario.c_str(),
                    std::chrono::duration<double>(p.virtual_time).count(), wall,
                    static_cast<unsigned long long>(p.messages), p.messages / wall,
                    static_cast<unsigned long long>(p.events), p.events / wall);
      std::cerr << "\r\033[K" << line << std::flush;
    };
  }
  for (const auto* sc : chosen) {
    position =
        "[" + std::to_string(rep.results.size() + 1) + "/" + std::to_string(chosen.size()) + "]";
    if (progress)
      std::cerr << "\r\033[K" << position << " running " << sc->name << " ..." << std::flush;
    t0 = shown = std::chrono::steady_clock::now();
    rep.results.push_back(runner::run_scenario(*doc, *sc, rep.seed, opt));
    rep.wall_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (progress) std::cerr << "\r\033[K" << std::flush;
    std::cout << runner::text_scenario(rep, rep.results.size() - 1) << std::flush;
  }
  std::cout << runner::text_summary(rep);
  if (a.work_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(opt.work_dir, ignored);  // our own scratch directory
  }
  bool ok = true;
  auto out = [&](const std::string& path, const std::string& text) {
    if (!path.empty() && !write_text_file(path, text)) {
      std::cerr << "relaylab run: cannot write " << path << "\n";
      ok = false;
    }
  };
  out(a.junit, runner::junit_xml(rep));
  out(a.json, runner::json(rep));
  out(a.maillog, runner::maillog(rep));
  if (!ok) return exit_failure;
  for (const auto& r : rep.results) {
    if (!r.passed) return exit_failure;
  }
  return exit_ok;
}

}  // namespace

subcommand add_run(CLI::App& root) {
  subcommand c;
  c.app = root.add_subcommand("run", "Run a topology's scenarios in the simulation");
  auto a = std::make_shared<run_args>();
  c.app->add_option("FILE", a->file, "Topology XML file")->required();
  c.app->add_option("--scenario", a->scenario, "Run only this scenario");
  c.app->add_option("--seed", a->seed, "PRNG seed (default: the topology's, else random)");
  c.app->add_option("--junit", a->junit, "Write a JUnit XML report");
  c.app->add_option("--json", a->json, "Write a JSON report");
  c.app->add_option("--maillog", a->maillog, "Write every scenario's maillog");
  c.app->add_option("--shard", a->shard,
                    "Run shard I of N (I/N, 1-based), or auto: from the batch scheduler's "
                    "environment (docs/sweep.md)");
  c.app->add_option("--work-dir", a->work_dir, "Scratch directory (SASL files, relay config)");
  c.app->add_flag("-v,--verbose", a->verbose, "Print client transcripts and maillogs");
  c.run = [a] { return run(*a); };
  return c;
}

}  // namespace relaylab::cli
