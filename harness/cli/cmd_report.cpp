// relaylab report merge SHARD.json... [--json OUT] [--junit OUT]
// Joins the --json reports of a sharded `relaylab sweep` (any order) into the report of the
// whole sweep: the same bytes the unsharded sweep writes. Prints the totals and every failing
// seed with the command that replays it. Exit 0 every case passed, 1 a case failed, 2 bad
// input (a file that cannot be read, is not a shard report, or a shard missing or twice).
#include "harness/cli/commands.hpp"
#include "harness/sweep/report.hpp"

#include <fstream>
#include <iostream>
#include <sstream>

namespace relaylab::cli {
namespace {

struct merge_args {
  std::vector<std::string> files;
  std::string json, junit;
};

bool write_file(const std::string& path, const std::string& text) {
  if (write_text_file(path, text)) return true;
  std::cerr << "relaylab report merge: cannot write " << path << "\n";
  return false;
}

int merge(const merge_args& a) {
  std::vector<sweep::sweep_report> shards;
  for (const auto& f : a.files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      std::cerr << "relaylab report merge: " << f << ": cannot read\n";
      return exit_usage;
    }
    std::ostringstream text;
    text << in.rdbuf();
    std::string error;
    auto r = sweep::read_json(text.str(), f, error);
    if (!r) {
      std::cerr << "relaylab report merge: " << error << "\n";
      return exit_usage;
    }
    shards.push_back(std::move(*r));
  }
  std::string error;
  const auto all = sweep::merge(shards, a.files, error);
  if (!all) {
    std::cerr << "relaylab report merge: " << error << "\n";
    return exit_usage;
  }
  std::uint64_t failed = 0;
  for (const auto& c : all->cases) {
    if (c.passed) continue;
    ++failed;
    std::cout << "FAIL sweep-" << c.seed << "  " << c.summary << "\n";
    for (const auto& p : c.problems) std::cout << "  " << p << "\n";
    std::cout << "  replay: " << sweep::replay_command(*all, c.seed) << "\n";
  }
  std::cout << "merged " << shards.size() << " shards: " << all->cases.size() << " scenarios, "
            << all->cases.size() - failed << " passed, " << failed << " failed (seeds "
            << all->first_seed << ".." << all->first_seed + all->count - 1 << ")\n";
  bool ok = true;
  if (!a.json.empty()) ok = write_file(a.json, sweep::to_json(*all)) && ok;
  if (!a.junit.empty()) ok = write_file(a.junit, sweep::to_junit(*all)) && ok;
  if (!ok) return exit_failure;
  return failed == 0 ? exit_ok : exit_failure;
}

}  // namespace

subcommand add_report(CLI::App& root) {
  subcommand c;
  c.app = root.add_subcommand("report", "Work with the reports runs and sweeps write");
  c.app->require_subcommand(1);
  auto a = std::make_shared<merge_args>();
  auto* m = c.app->add_subcommand(
      "merge", "Join the --json reports of a sharded sweep into the whole sweep's report");
  m->add_option("files", a->files, "The shards' --json reports, in any order")->required();
  m->add_option("--json", a->json, "Write the merged report as JSON");
  m->add_option("--junit", a->junit, "Write the merged report as JUnit XML");
  c.run = [a] { return merge(*a); };
  return c;
}

}  // namespace relaylab::cli
