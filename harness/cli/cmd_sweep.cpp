// relaylab sweep [--count N] [--seed S] [--keep-failures DIR [--keep-all]] [-j N] [-v]
//                [--no-relay-crash] [--work-dir DIR] [--shard I/N|auto] [--json F] [--junit F]
// Generates N random topologies with one scenario each (harness/sweep), runs them in the
// simulation and judges them with the runner's checkers. Case i uses seed S + i, so a failure
// replays alone with `relaylab sweep --count 1 --seed S+i`, or from its saved XML with
// `relaylab run DIR/sweep-SEED.xml --seed SEED`. With -j N, N worker processes share the cases
// (libsasl2 is one per process); a failed case is then run again here for its report, which
// also checks that it fails the same way twice. With --shard I/N this process runs only the
// I-th of N contiguous ranges of the cases (the same command line on every shard, or --shard
// auto from the batch scheduler's environment); `relaylab report merge` joins the shards'
// --json reports. Exit 0 all passed, 1 some failed, 2 bad options.
#include "harness/cli/commands.hpp"
#include "harness/runner/shard.hpp"
#include "harness/sweep/report.hpp"
#include "harness/sweep/sweep.hpp"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

namespace relaylab::cli {
namespace {

namespace fs = std::filesystem;

inline constexpr std::uint64_t count_max = 1000000;
inline constexpr unsigned jobs_max = 64;

struct sweep_args {
  std::uint64_t count = 100;
  std::optional<std::uint64_t> seed;
  std::string keep_dir;
  bool keep_all = false;
  unsigned jobs = 1;
  std::string work_dir;
  bool verbose = false;
  bool no_relay_crash = false;
  std::string shard;  // "" = the whole sweep
  std::string json, junit;
};

sweep::generator_options generator_options_for(const sweep_args& a) {
  sweep::generator_options g;
  g.relay_crash = !a.no_relay_crash;
  return g;
}

// What a worker tells the parent about one case: one line "INDEX PASSED VIRTUAL_NS EVENTS".
struct brief {
  bool passed = false;
  std::int64_t virtual_ns = 0;
  std::uint64_t events = 0;
};

std::string seconds_text(double s) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(3) << s << "s";
  return o.str();
}

// Each case writes the relay's configuration and a sasldb (libsasl2 syncs it) into the work
// directory: on tmpfs that costs nothing, on a disk it is most of a sweep's wall time.
std::string work_dir_for(const sweep_args& a) {
  const std::string pid = std::to_string(static_cast<long>(::getpid()));
  if (!a.work_dir.empty()) return a.work_dir + "/" + pid;
  std::error_code ec;
  const bool shm = fs::is_directory("/dev/shm", ec);
  return (shm ? "/dev/shm/relaylab-sweep-" : "/tmp/relaylab-sweep-") + pid;
}

runner::run_options run_options_for(const sweep_args& a) {
  runner::run_options o;
  o.work_dir = work_dir_for(a);
  return o;
}

void remove_work_dir(const runner::run_options& o) {
  std::error_code ignored;
  fs::remove_all(o.work_dir, ignored);  // our own scratch directory
}

// Runs cases index ≡ k (mod jobs) and writes their briefs to `fd`. Runs in a child process.
[[noreturn]] void worker(const sweep_args& a, std::uint64_t first, unsigned k, int fd) {
  const auto opt = run_options_for(a);
  const auto gen = generator_options_for(a);
  int status = 0;
  for (std::uint64_t i = k; i < a.count; i += a.jobs) {
    const auto r = sweep::run_case(first + i, gen, opt);
    const std::string line = std::to_string(i) + " " + (r.passed ? "1" : "0") + " " +
                             std::to_string(r.virtual_time.count()) + " " +
                             std::to_string(r.events) + "\n";
    std::size_t done = 0;
    while (done < line.size()) {
      const auto n = ::write(fd, line.data() + done, line.size() - done);
      if (n <= 0) {
        status = 1;
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    if (status != 0) break;
  }
  ::close(fd);
  remove_work_dir(opt);
  ::_exit(status);  // no atexit handlers or stdio flushes of the parent's state
}

// Forks the workers and collects every case's brief. Errors: fork or pipe failure (message
// in `error`).
std::map<std::uint64_t, brief> run_parallel(const sweep_args& a, std::uint64_t first,
                                            std::string& error) {
  std::cout.flush();
  std::cerr.flush();
  std::vector<pid_t> pids;
  std::vector<int> fds;
  for (unsigned k = 0; k < a.jobs && k < a.count; ++k) {
    int p[2];
    if (::pipe(p) != 0) {
      error = "pipe: " + std::string(std::strerror(errno));
      break;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      error = "fork: " + std::string(std::strerror(errno));
      ::close(p[0]);
      ::close(p[1]);
      break;
    }
    if (pid == 0) {
      ::close(p[0]);
      for (int fd : fds) ::close(fd);
      worker(a, first, k, p[1]);
    }
    ::close(p[1]);
    pids.push_back(pid);
    fds.push_back(p[0]);
  }
  std::map<std::uint64_t, brief> out;
  std::vector<std::string> partial(fds.size());
  std::size_t open = fds.size();
  const bool tty = ::isatty(2) != 0;
  while (open > 0) {
    std::vector<pollfd> pfds;
    for (int fd : fds) pfds.push_back({fd, POLLIN, 0});
    if (::poll(pfds.data(), pfds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      error = "poll: " + std::string(std::strerror(errno));
      break;
    }
    for (std::size_t i = 0; i < pfds.size(); ++i) {
      if (fds[i] < 0 || !(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const auto n = ::read(fds[i], buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i]);
        fds[i] = -1;
        --open;
        continue;
      }
      partial[i].append(buf, static_cast<std::size_t>(n));
      for (auto nl = partial[i].find('\n'); nl != std::string::npos; nl = partial[i].find('\n')) {
        std::istringstream line(partial[i].substr(0, nl));
        partial[i].erase(0, nl + 1);
        std::uint64_t index = 0;
        int passed = 0;
        brief b;
        if (line >> index >> passed >> b.virtual_ns >> b.events) {
          b.passed = passed == 1;
          out[index] = b;
        }
      }
      if (tty) std::cerr << "\r[" << out.size() << "/" << a.count << "]" << std::flush;
    }
  }
  if (tty) std::cerr << "\r" << std::string(24, ' ') << "\r" << std::flush;
  for (const pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  return out;
}

void print_failure(const sweep::case_result& r, const sweep_args& a, const std::string& note) {
  std::cout << "FAIL sweep-" << r.seed << "  " << r.summary << "\n";
  if (!note.empty()) std::cout << "  " << note << "\n";
  for (const auto& p : r.problems) std::cout << "  " << p << "\n";
  std::cout << "  replay: relaylab sweep --count 1 --seed " << r.seed << "\n";
  if (!a.keep_dir.empty()) {
    std::cout << "  replay: relaylab run " << (fs::path(a.keep_dir) / r.generated.file).string()
              << " --seed " << r.seed << "\n";
  }
}

bool write_file(const std::string& path, const std::string& text) {
  if (write_text_file(path, text)) return true;
  std::cerr << "relaylab sweep: cannot write " << path << "\n";
  return false;
}

sweep::case_row row_of(const sweep::case_result& r) {
  sweep::case_row row{r.seed, r.passed, r.virtual_time.count(), r.events, {}, {}};
  if (!r.passed) {
    row.summary = r.summary;
    row.problems = r.problems;
  }
  return row;
}

bool save(const sweep_args& a, const sweep::generated_case& g) {
  const auto path = fs::path(a.keep_dir) / g.file;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << g.xml;
  if (!out.flush()) {
    std::cerr << "relaylab sweep: cannot write " << path.string() << "\n";
    return false;
  }
  return true;
}

int run_cases(const sweep_args& a, std::uint64_t first, sweep::sweep_report& report);

int run(const sweep_args& a) {
  if (a.count == 0 || a.count > count_max) {
    std::cerr << "relaylab sweep: --count: expected 1.." << count_max << ", got " << a.count
              << "\n";
    return exit_usage;
  }
  if (a.jobs == 0 || a.jobs > jobs_max) {
    std::cerr << "relaylab sweep: --jobs: expected 1.." << jobs_max << ", got " << a.jobs << "\n";
    return exit_usage;
  }
  if (a.keep_all && a.keep_dir.empty()) {
    std::cerr << "relaylab sweep: --keep-all needs --keep-failures DIR\n";
    return exit_usage;
  }
  if (!a.keep_dir.empty()) {
    std::error_code ec;
    fs::create_directories(a.keep_dir, ec);
    if (ec || !fs::is_directory(a.keep_dir)) {
      std::cerr << "relaylab sweep: --keep-failures: cannot create directory " << a.keep_dir
                << (ec ? ": " + ec.message() : std::string()) << "\n";
      return exit_usage;
    }
  }
  std::uint64_t first = 0;
  if (a.seed) {
    first = *a.seed;
  } else {
    std::random_device rd;
    first = (static_cast<std::uint64_t>(rd()) << 32) | rd();
  }
  if (first > UINT64_MAX - (a.count - 1)) {
    std::cerr << "relaylab sweep: --seed: " << first << " + --count " << a.count
              << " overflows 64 bits\n";
    return exit_usage;
  }
  runner::shard shard;
  if (!a.shard.empty()) {
    std::string error;
    const auto sh = runner::resolve_shard(a.shard, runner::process_env, error);
    if (!sh) {
      std::cerr << "relaylab sweep: " << error << "\n";
      return exit_usage;
    }
    if (!a.seed) {
      std::cerr << "relaylab sweep: --shard needs --seed (every shard must run the same sweep)\n";
      return exit_usage;
    }
    shard = *sh;
  }
  std::cout << "relaylab sweep --count " << a.count << " --seed " << first << " --jobs " << a.jobs
            << (a.shard.empty() ? std::string()
                                : " --shard " + std::to_string(shard.index + 1) + "/" +
                                      std::to_string(shard.count) + " (" + shard.source + ")")
            << "\n"
            << std::flush;
  sweep::sweep_report report;
  report.first_seed = first;
  report.count = a.count;
  report.relay_crash = !a.no_relay_crash;
  report.shard_index = shard.index;
  report.shard_count = shard.count;
  // This process's cases: all of them, or the shard's range.
  sweep_args mine = a;
  mine.count = runner::shard_end(shard, a.count) - runner::shard_begin(shard, a.count);
  first += runner::shard_begin(shard, a.count);
  return run_cases(mine, first, report);
}

int run_cases(const sweep_args& a, std::uint64_t first, sweep::sweep_report& report) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto opt = run_options_for(a);
  const auto gen = generator_options_for(a);
  std::uint64_t passed = 0, failed = 0, events = 0;
  std::chrono::nanoseconds virtual_time{0};
  bool io_ok = true;
  const bool tty = ::isatty(2) != 0;

  if (a.jobs == 1) {
    for (std::uint64_t i = 0; i < a.count; ++i) {
      const auto r = sweep::run_case(first + i, gen, opt);
      report.cases.push_back(row_of(r));
      virtual_time += r.virtual_time;
      events += r.events;
      if (r.passed) {
        ++passed;
      } else {
        ++failed;
        print_failure(r, a, "");
      }
      if (a.verbose) {
        std::cout << (r.passed ? "PASS" : "FAIL") << " sweep-" << r.seed << "  " << r.summary
                  << "\n";
      }
      if (!a.keep_dir.empty() && (a.keep_all || !r.passed)) io_ok = save(a, r.generated) && io_ok;
      if (tty && (i % 25 == 24 || i + 1 == a.count)) {
        std::cerr << "\r[" << i + 1 << "/" << a.count << "] failed=" << failed << std::flush;
      }
    }
    if (tty) std::cerr << "\r" << std::string(40, ' ') << "\r" << std::flush;
  } else {
    std::string error;
    const auto briefs = run_parallel(a, first, error);
    if (!error.empty()) {
      std::cerr << "relaylab sweep: " << error << "\n";
      remove_work_dir(opt);
      return exit_failure;
    }
    for (std::uint64_t i = 0; i < a.count; ++i) {
      const auto it = briefs.find(i);
      if (it == briefs.end()) {
        ++failed;
        std::cout << "FAIL sweep-" << first + i << "  (its worker process died)\n"
                  << "  replay: relaylab sweep --count 1 --seed " << first + i << "\n";
        report.cases.push_back(
            {first + i, false, 0, 0, "(its worker process died)", {"its worker process died"}});
        continue;
      }
      virtual_time += std::chrono::nanoseconds(it->second.virtual_ns);
      events += it->second.events;
      const bool keep = !a.keep_dir.empty() && (a.keep_all || !it->second.passed);
      if (it->second.passed && !keep && !a.verbose) {
        ++passed;
        report.cases.push_back({first + i, true, it->second.virtual_ns, it->second.events, {}, {}});
        continue;
      }
      // Run again here: the report needs the details, and the same seed must fail the same way.
      const auto r = sweep::run_case(first + i, gen, opt);
      // The worker's verdict and counts: a rerun that disagrees is reported, not recorded.
      auto row = row_of(r);
      row.passed = it->second.passed;
      row.virtual_ns = it->second.virtual_ns;
      row.events = it->second.events;
      if (!row.passed && r.passed) {
        row.summary = r.summary;
        row.problems = {"nondeterministic: failed in a worker, passed when run again"};
      }
      if (row.passed) {
        row.summary.clear();
        row.problems.clear();
      }
      report.cases.push_back(std::move(row));
      if (it->second.passed) {
        ++passed;
      } else {
        ++failed;
        print_failure(
            r, a, r.passed ? "nondeterministic: failed in a worker, passed when run again" : "");
      }
      if (a.verbose) {
        std::cout << (it->second.passed ? "PASS" : "FAIL") << " sweep-" << r.seed << "  "
                  << r.summary << "\n";
      }
      if (keep) io_ok = save(a, r.generated) && io_ok;
    }
  }
  remove_work_dir(opt);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "sweep: " << a.count << " scenarios, " << passed << " passed, " << failed
            << " failed, virtual "
            << seconds_text(std::chrono::duration<double>(virtual_time).count()) << ", wall "
            << seconds_text(wall) << ", events " << events
            << (a.count == 0 ? std::string(" (no seeds in this shard)")
                             : " (seeds " + std::to_string(first) + ".." +
                                   std::to_string(first + a.count - 1) + ")")
            << "\n";
  if (!a.json.empty()) io_ok = write_file(a.json, sweep::to_json(report)) && io_ok;
  if (!a.junit.empty()) io_ok = write_file(a.junit, sweep::to_junit(report)) && io_ok;
  if (!io_ok) return exit_failure;
  return failed == 0 ? exit_ok : exit_failure;
}

}  // namespace

subcommand add_sweep(CLI::App& root) {
  subcommand c;
  c.app = root.add_subcommand("sweep",
                              "Generate random topologies and scenarios, run them, "
                              "and check the invariants");
  auto a = std::make_shared<sweep_args>();
  c.app->add_option("--count", a->count, "Number of generated scenarios (default 100)");
  c.app->add_option("--seed", a->seed, "First seed; case i uses seed+i (default: random)");
  c.app->add_option("--keep-failures", a->keep_dir,
                    "Write each failing case's topology to DIR/sweep-SEED.xml");
  c.app->add_flag("--keep-all", a->keep_all, "With --keep-failures: write every case");
  c.app->add_option("-j,--jobs", a->jobs, "Worker processes (default 1)");
  c.app->add_option("--work-dir", a->work_dir,
                    "Scratch directory (SASL files, relay config; default /dev/shm, else /tmp)");
  c.app->add_flag("-v,--verbose", a->verbose, "One line per case");
  c.app->add_flag("--no-relay-crash", a->no_relay_crash,
                  "Leave crashes of the relay host out of the fault mix");
  c.app->add_option("--shard", a->shard,
                    "Run shard I of N of the cases (I/N, 1-based), or auto: from the batch "
                    "scheduler's environment (needs --seed)");
  c.app->add_option("--json", a->json, "Write the report as JSON (relaylab report merge reads it)");
  c.app->add_option("--junit", a->junit, "Write the report as JUnit XML");
  c.run = [a] { return run(*a); };
  return c;
}

}  // namespace relaylab::cli
