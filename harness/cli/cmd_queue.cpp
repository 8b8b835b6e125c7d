// relaylab queue list|flush|delete ID|requeue ID (--queue-dir DIR | --config-dir DIR): the
// queue tools, after Postfix's mailq/postqueue and postsuper.
//
// - list: what `mailq` prints (relay/queue's format_mailq), read-only, safe while the relay runs.
// - flush: asks the running relay (queue_directory/pid/master.pid) to try every deferred
//   message now (SIGUSR1); "Cannot flush mail queue - mail system is down" when none runs.
// - delete ID / requeue ID: postsuper -d / -r. They change queue files, which only one process
//   may do, so they refuse while a relay runs on the queue. requeue moves the message to
//   incoming/, which the next start delivers first.
// Exit codes: 0 ok, 1 failure (message not found, relay state), 2 usage.
#include "harness/cli/commands.hpp"
#include "relay/config/config.hpp"
#include "relay/queue/mailq.hpp"
#include "relay/queue/spool.hpp"
#include "relay/queue/storage.hpp"

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace relaylab::cli {

namespace {

struct queue_args {
  std::string action;
  std::string queue_id;
  std::string queue_dir;
  std::string config_dir;
};

/// The pid of a live relay on `queue_dir`, or 0.
pid_t running_relay(const std::filesystem::path& queue_dir) {
  std::ifstream in(queue_dir / "pid" / "master.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0) return 0;
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return 0;
  return static_cast<pid_t>(pid);
}

std::chrono::seconds local_utc_offset() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  return std::chrono::seconds(tm.tm_gmtoff);
}

int run_queue(const queue_args& a) {
  std::string queue_dir = a.queue_dir;
  if (queue_dir.empty()) {
    auto cfg = config::load(a.config_dir, config::host_environment::from_system());
    for (const auto& d : cfg.diagnostics)
      if (d.level == config::diagnostic::severity::fatal) std::cerr << d.to_string() << "\n";
    if (!cfg.ok()) return exit_usage;
    queue_dir = cfg.main.get("queue_directory");
  }
  const std::filesystem::path root(queue_dir);
  if (!std::filesystem::is_directory(root)) {
    std::cerr << "relaylab queue: fatal: queue_directory " << queue_dir << ": not a directory\n";
    return exit_failure;
  }
  const pid_t relay = running_relay(root);

  if (a.action == "flush") {
    if (relay == 0 || ::kill(relay, SIGUSR1) != 0) {
      std::cerr << "relaylab queue: fatal: Cannot flush mail queue - mail system is down\n";
      return exit_failure;
    }
    return exit_ok;
  }

  queue::fs_storage storage{root};
  std::random_device rd;
  queue::spool spool(
      storage, [] { return std::chrono::system_clock::now(); },
      [&rd] { return (static_cast<std::uint64_t>(rd()) << 32) | rd(); }, queue::spool_options{});

  if (a.action == "list") {
    std::vector<queue::queue_entry> entries;
    if (auto ec = spool.list(entries)) {
      std::cerr << "relaylab queue: fatal: " << queue_dir << ": " << ec.message() << "\n";
      return exit_failure;
    }
    std::cout << queue::format_mailq(entries, {local_utc_offset()});
    return exit_ok;
  }

  // delete / requeue
  if (a.queue_id.empty()) {
    std::cerr << "relaylab queue: " << a.action << " needs a queue ID\n";
    return exit_usage;
  }
  if (relay != 0) {
    std::cerr << "relaylab queue: fatal: a relay (pid " << relay << ") is running on " << queue_dir
              << ": stop it first\n";
    return exit_failure;
  }
  queue::recovery_report report;
  if (auto ec = spool.open(); ec || (ec = spool.recover(report))) {
    std::cerr << "relaylab queue: fatal: " << queue_dir << ": " << ec.message() << "\n";
    return exit_failure;
  }
  const auto state = spool.state_of(a.queue_id);
  if (!state) {
    std::cerr << "relaylab queue: " << a.queue_id << ": no such message\n";
    return exit_failure;
  }
  if (a.action == "delete") {
    if (auto ec = spool.remove(a.queue_id)) {
      std::cerr << "relaylab queue: fatal: " << a.queue_id << ": " << ec.message() << "\n";
      return exit_failure;
    }
    std::cout << "relaylab queue: " << a.queue_id << ": removed\n"
              << "relaylab queue: Deleted: 1 message\n";
    return exit_ok;
  }
  {
    if (auto ec = spool.requeue(a.queue_id)) {
      std::cerr << "relaylab queue: fatal: " << a.queue_id << ": " << ec.message() << "\n";
      return exit_failure;
    }
  }
  std::cout << "relaylab queue: " << a.queue_id << ": requeued\n"
            << "relaylab queue: Requeued: 1 message\n";
  return exit_ok;
}

}  // namespace

subcommand add_queue(CLI::App& root) {
  auto a = std::make_shared<queue_args>();
  subcommand c;
  c.app = root.add_subcommand("queue",
                              "Show or change the mail queue (mailq, postqueue -f, "
                              "postsuper -d/-r)");
  c.app->add_option("action", a->action, "list, flush, delete or requeue")
      ->required()
      ->check(CLI::IsMember({"list", "flush", "delete", "requeue"}));
  c.app->add_option("id", a->queue_id, "queue ID (delete, requeue)");
  auto* qd = c.app->add_option("--queue-dir", a->queue_dir, "the relay's queue_directory");
  auto* cd = c.app->add_option("--config-dir", a->config_dir, "read queue_directory from main.cf")
                 ->check(CLI::ExistingDirectory);
  qd->excludes(cd);
  cd->excludes(qd);
  c.app->require_option(1, 0);
  c.run = [a] {
    if (a->queue_dir.empty() && a->config_dir.empty()) {
      std::cerr << "relaylab queue: --queue-dir or --config-dir is required\n";
      return exit_usage;
    }
    return run_queue(*a);
  };
  return c;
}

}  // namespace relaylab::cli
