// relaylab relay --config-dir DIR: the real relay on real sockets.
//
// Order: load main.cf/master.cf (warnings to stderr; fatal → exit 2), print the resolved
// options, open the maillog, initialise SASL when a service enables it, open and recover the
// spool, start the queue manager (with the local delivery agent and one smtp delivery agent
// per master.cf smtp service, "smtp" always) on a thread of its own, build one smtpd::service per
// inet service, bind every listener, write queue_directory/pid/master.pid, then signal readiness:
// "ready" on stdout (a line of its own, flushed), or "ready\n" written to --ready-fd and that
// descriptor closed. SIGTERM/SIGINT: stop accepting, let sessions finish (bounded), stop the queue
// manager, exit 0. SIGUSR1: flush the deferred queue (what `relaylab queue flush` sends, like
// Postfix's postqueue -f).
#include <utility>  // before Boost 1.74 awaitable.hpp, which needs it

#include "harness/cli/commands.hpp"
#include "relay/config/config.hpp"
#include "relay/delivery/agent_tls.hpp"
#include "relay/delivery/smtp_agent.hpp"
#include "relay/delivery/system_resolver.hpp"
#include "relay/log/log.hpp"
#include "relay/net/daemon.hpp"
#include "relay/net/smtpd_glue.hpp"
#include "relay/net/tcp_stream.hpp"
#include "relay/qmgr/local_agent.hpp"
#include "relay/qmgr/log_gate.hpp"
#include "relay/qmgr/qmgr.hpp"
#include "relay/queue/spool.hpp"
#include "relay/queue/storage.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtpd/sasl_setup.hpp"
#include "relay/smtpd/smtpd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <thread>

#ifndef RELAYLAB_VERSION
#define RELAYLAB_VERSION "unknown"
#endif

namespace relaylab::cli {

namespace {

struct relay_args {
  std::string config_dir;
  std::string spool_format = "journal";  // or "files": one queue file per message
  std::string maillog;  // "" = maillog_file from main.cf, else stderr; "-" = stdout
  std::string json_log;
  std::string queue_dir;
  std::string pid_file;
  int ready_fd = -1;
  std::chrono::milliseconds drain_ms{10000};
  std::chrono::microseconds commit_delay{300};
};

net::timestamp steady_now() {
  return std::chrono::duration_cast<net::timestamp>(
      std::chrono::steady_clock::now().time_since_epoch());
}

int run_relay(const relay_args& a) {
  // 1. Configuration.
  auto cfg = config::load(a.config_dir, config::host_environment::from_system());
  for (const auto& d : cfg.diagnostics) std::cerr << d.to_string() << "\n";
  if (!cfg.ok()) return exit_usage;
  // One SMTP delivery agent per master.cf smtp service ("smtp", "relay", an "smtps" with
  // -o smtp_tls_wrappermode=yes ...), each with its TLS (smtp_tls_* from main.cf and the
  // service's -o lines): what one cannot keep stops start-up.
  const auto transports = delivery::smtp_transports(cfg);
  std::vector<delivery::smtp_agent_options> transport_tls(transports.size());
  {
    std::vector<config::diagnostic> tls_diags;
    bool tls_ok = delivery::refuse_lmtp_tls_overrides(cfg, tls_diags);
    for (std::size_t i = 0; i < transports.size(); ++i)
      tls_ok = delivery::configure_transport_tls(cfg, transports[i], transport_tls[i], tls_diags) &&
               tls_ok;
    // Transports that share main.cf's values share their diagnostics: each is said once.
    std::vector<std::string> said;
    for (const auto& d : tls_diags) {
      std::string line = d.to_string();
      if (std::find(said.begin(), said.end(), line) != said.end()) continue;
      std::cerr << line << "\n";
      said.push_back(std::move(line));
    }
    if (!tls_ok) return exit_usage;
  }
  if (!a.queue_dir.empty()) cfg.main.set("queue_directory", a.queue_dir);
  const std::string queue_dir = cfg.main.get("queue_directory");
  const std::string maillog =
      !a.maillog.empty() ? a.maillog
                         : (cfg.main.get("maillog_file").empty() ? std::string("(stderr)")
                                                                 : cfg.main.get("maillog_file"));
  const bool sasl_wanted = smtpd::sasl_wanted(cfg);
  const auto inet_interfaces = cfg.main.get_list("inet_interfaces");
  const auto inet_protocols = cfg.main.get_list("inet_protocols");

  // 2. Resolved options, first thing on stdout.
  std::cout << "relaylab relay " << RELAYLAB_VERSION << "\n"
            << "config_directory = " << cfg.config_dir.string() << "\n"
            << "queue_directory = " << queue_dir << "\n"
            << "maillog = " << maillog << "\n"
            << "json_log = " << (a.json_log.empty() ? "(none)" : a.json_log) << "\n"
            << "sasl_config_path = "
            << (sasl_wanted ? cfg.sasl_config_path().string() : std::string("(sasl off)")) << "\n"
            << "myhostname = " << cfg.main.get("myhostname") << "\n";
  std::cout.flush();

  // 3. Logging.
  log::logger logger({cfg.main.get("myhostname"), [] { return std::chrono::system_clock::now(); }});
  std::error_code ec;
  if (maillog == "(stderr)") {
    logger.add_sink(log::make_stderr_sink());
  } else {
    auto sink = log::open_file_sink(maillog, {}, ec);
    if (!sink) {
      std::cerr << "relaylab relay: fatal: open maillog " << maillog << ": " << ec.message()
                << "\n";
      return exit_failure;
    }
    logger.add_sink(std::move(sink));
  }
  if (!a.json_log.empty()) {
    auto sink = log::open_file_sink(a.json_log, {.format = log::line_format::json}, ec);
    if (!sink) {
      std::cerr << "relaylab relay: fatal: open --json-log " << a.json_log << ": " << ec.message()
                << "\n";
      return exit_failure;
    }
    logger.add_sink(std::move(sink));
  }
  const int pid = static_cast<int>(::getpid());
  const log::origin master{cfg.main.get("syslog_name"), "master", pid};

  // 4. SASL.
  std::shared_ptr<sasl::server_library> sasl_lib;
  if (sasl_wanted) {
    std::string error;
    sasl_lib = smtpd::init_sasl(cfg, error);
    if (!sasl_lib) {
      std::cerr << "relaylab relay: fatal: " << error << "\n";
      logger.write(master, log::severity::fatal, error);
      // A bad smtpd_sasl_security_options value is a configuration error.
      return error.rfind("smtpd_sasl_security_options", 0) == 0 ? exit_usage : exit_failure;
    }
  }

  // 5. Spool.
  std::error_code mk;
  std::filesystem::create_directories(queue_dir, mk);
  queue::fs_storage storage{std::filesystem::path(queue_dir)};
  queue::spool_options so;
  so.queue_minfree_bytes = static_cast<std::uint64_t>(cfg.main.get_int("queue_minfree"));
  so.message_size_limit_bytes = static_cast<std::uint64_t>(cfg.main.get_int("message_size_limit"));
  // Freshly queued mail is delivered from memory (see spool.hpp "Content cache").
  so.cache_bytes_max = 64u << 20;
  // Group commits append to the queue journal: one fdatasync per group (spool.hpp "Journal").
  so.journal = a.spool_format == "journal";
  // Zeros 1 MiB ahead of the segment's end: group commits overwrite allocated blocks, so their
  // fdatasync writes data only (half the latency of an appending one on ext4).
  so.journal_preallocate_bytes = 1u << 20;
  // Delivered mail's 'X' records wait up to 5 ms for new mail's group commit (one fdatasync
  // for both); only the status=sent line waits meanwhile.
  so.completion_delay_us = std::chrono::milliseconds(5);
  // New mail waits up to --commit-delay-us for the sessions still receiving a message to
  // join its group commit (spool.hpp commit_delay_us).
  so.commit_delay_us = a.commit_delay;
  // One statvfs per second serves the queue_minfree checks, less what we committed since.
  so.free_space_sample_ms = std::chrono::milliseconds(1000);
  std::random_device rd;
  queue::spool spool(
      storage, [] { return std::chrono::system_clock::now(); },
      [&rd] { return (static_cast<std::uint64_t>(rd()) << 32) | rd(); }, so);
  if (auto e = spool.open()) {
    std::cerr << "relaylab relay: fatal: queue_directory " << queue_dir << ": " << e.message()
              << "\n";
    return exit_failure;
  }
  queue::recovery_report report;
  if (auto e = spool.recover(report)) {
    std::cerr << "relaylab relay: fatal: queue recovery in " << queue_dir << ": " << e.message()
              << "\n";
    return exit_failure;
  }
  spool.start_background();

  // 5b. Queue manager and delivery agents, on an io_context and thread of their own: spool
  // fsyncs and delivery must never stall the smtpd sessions.
  boost::asio::io_context qmgr_io;
  net::system_runtime qmgr_runtime(qmgr_io.get_executor());
  net::tcp_connector connector(qmgr_io.get_executor());
  delivery::system_resolver resolver;
  std::string route_error;
  auto routing = qmgr::routing_from_config(cfg.main, route_error);
  if (!routing) {
    std::cerr << "relaylab relay: fatal: " << route_error << "\n";
    return exit_usage;
  }
  auto agent_random = std::make_shared<std::mt19937_64>(rd());
  // The agents log through a gate: their "status=sent" lines reach the maillog only after
  // the queue manager made the done marks durable (see relay/qmgr/log_gate.hpp).
  log::logger agent_logger(
      {cfg.main.get("myhostname"), [] { return std::chrono::system_clock::now(); }});
  auto gate_sink = std::make_unique<qmgr::log_gate>(logger);
  qmgr::log_gate* gate = gate_sink.get();
  agent_logger.add_sink(std::move(gate_sink));
  std::vector<std::unique_ptr<delivery::smtp_agent>> smtp_agents;
  for (std::size_t i = 0; i < transports.size(); ++i) {
    auto ao = delivery::smtp_agent_options_from_config(cfg.main, pid);
    ao.transport = transports[i].name;
    ao.tls = transport_tls[i].tls;
    ao.client.starttls = transport_tls[i].client.starttls;
    smtp_agents.push_back(std::make_unique<delivery::smtp_agent>(
        ao, connector, qmgr_runtime, resolver, agent_logger,
        [agent_random](std::size_t bound) { return bound == 0 ? 0 : (*agent_random)() % bound; }));
  }
  qmgr::local_options lo;
  lo.mail_spool_directory = cfg.main.get("mail_spool_directory");
  lo.home_mailbox = cfg.main.get("home_mailbox");
  lo.myhostname = cfg.main.get("myhostname");
  for (const auto& spec : cfg.main.get_list("local_recipient_maps")) {
    std::string error;
    if (auto t = maps::open(spec, error)) {
      lo.local_recipient_maps.push_back(std::move(t));
    } else {
      std::cerr << "relaylab relay: warning: local_recipient_maps: " << error << "\n";
    }
  }
  qmgr::local_agent local_agent(lo, qmgr_runtime, &agent_logger,
                                {cfg.main.get("syslog_name"), "local", pid});
  std::vector<std::string> transport_names{"smtp", "relay", "local"};
  for (const auto& t : transports)
    if (std::find(transport_names.begin(), transport_names.end(), t.name) == transport_names.end())
      transport_names.push_back(t.name);
  auto qo = qmgr::options_from_config(cfg.main, transport_names);
  qo.pid = pid;
  qo.gate = gate;
  qmgr::manager qmgr(spool, qmgr_runtime, logger, qmgr::router(std::move(*routing)), qo);
  for (std::size_t i = 0; i < transports.size(); ++i)
    qmgr.add_transport(transports[i].name, *smtp_agents[i]);
  qmgr.add_transport("local", local_agent);
  qmgr.adopt(report);
  qmgr.start();
  auto qmgr_work = boost::asio::make_work_guard(qmgr_io);
  // Log lines are written at most every 5 ms per event loop (one write for all the lines of
  // that time) instead of once per loop turn; see docs/relay.md.
  const auto log_flush_delay = std::chrono::milliseconds(5);
  std::thread qmgr_thread([&qmgr_io, &logger, log_flush_delay] {
    // Lines logged here are flushed at the end of this loop's turn, not by waking the smtpd
    // thread's loop (see logger::set_thread_flush_hook).
    log::logger::set_thread_flush_hook(
        [flush = net::log_flush_scheduler(qmgr_io.get_executor(), logger, log_flush_delay)] {
          flush.request();
        });
    qmgr_io.run();
  });
  struct qmgr_stopper {
    qmgr::manager& qm;
    decltype(qmgr_work)& work;
    boost::asio::io_context& io;
    std::thread& thread;
    ~qmgr_stopper() {
      qm.stop();
      work.reset();
      io.stop();
      if (thread.joinable()) thread.join();
    }
  } stop_qmgr{qmgr, qmgr_work, qmgr_io, qmgr_thread};

  // 6. Services and listeners.
  boost::asio::io_context io;
  net::daemon_options dopt;
  dopt.connections_max = static_cast<std::size_t>(cfg.main.get_int("default_process_limit"));
  dopt.drain_timeout_ms = a.drain_ms;
  dopt.log_flush_delay_ms = log_flush_delay;
  net::daemon daemon(io, dopt, &logger, master);
  std::vector<std::unique_ptr<smtpd::service>> services;
  for (const auto& svc : cfg.services) {
    smtpd::dependencies deps;
    deps.log = &logger;
    deps.spool = &spool;
    deps.sasl = sasl_lib;
    deps.wall_clock = [] { return std::chrono::system_clock::now(); };
    deps.pid = pid;
    deps.on_queued = [&qmgr](const std::string& id) { qmgr.notify_new_message(id); };
    std::vector<config::diagnostic> diags;
    auto service = smtpd::service::create(cfg, svc, deps, diags);
    bool fatal = false;
    for (const auto& d : diags) {
      std::cerr << d.to_string() << "\n";
      fatal = fatal || d.level == config::diagnostic::severity::fatal;
    }
    if (!service || fatal) return exit_usage;
    for (const auto& d : smtpd::exposure_warnings(cfg, svc)) std::cerr << d.to_string() << "\n";
    std::string error;
    const auto hosts = net::listen_hosts(svc.listen_host, inet_interfaces, inet_protocols, error);
    if (hosts.empty()) {
      std::cerr << svc.file << ":" << svc.line << ": fatal: service " << svc.name << ": " << error
                << "\n";
      return exit_usage;
    }
    net::smtpd_glue_options gopt;
    gopt.peername_lookup = cfg.main.with_overrides(svc.overrides).get_bool("smtpd_peername_lookup");
    for (const auto& h : hosts) {
      if (auto e = daemon.listen({h, svc.listen_port},
                                 net::smtpd_handler(*service, steady_now, gopt), error)) {
        // IPv6 may be missing on the host: a wildcard or loopback IPv6 listener derived from
        // inet_interfaces is then skipped with a warning, as Postfix does for inet_protocols.
        const bool derived_v6 = svc.listen_host.empty() && (h == "::" || h == "::1");
        std::cerr << (derived_v6 ? "warning: " : "fatal: ") << "service " << svc.name << ": "
                  << error << "\n";
        if (!derived_v6) return exit_failure;
      }
    }
    services.push_back(std::move(service));
  }
  const auto endpoints = daemon.endpoints();
  if (endpoints.empty()) {
    std::cerr << "relaylab relay: fatal: no inet smtpd service to listen on\n";
    return exit_usage;
  }
  for (const auto& ep : endpoints) {
    const auto addr = ep.address().to_string();
    std::cout << "listening " << (ep.address().is_v6() ? "[" + addr + "]" : addr) << ":"
              << ep.port() << "\n";
  }

  // 7. Signals, pid file, readiness.
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::signal_set flush_signal(io, SIGUSR1);
  signals.async_wait([&](const boost::system::error_code& e, int signo) {
    if (e) return;
    logger.info(master, "terminating on signal " + std::to_string(signo));
    daemon.stop();
    flush_signal.cancel();
  });
  if (!a.pid_file.empty()) {
    std::ofstream(a.pid_file) << pid << "\n";
  }
  // Where `relaylab queue flush` finds the relay, as Postfix keeps master.pid.
  std::filesystem::create_directories(std::filesystem::path(queue_dir) / "pid", mk);
  std::ofstream(std::filesystem::path(queue_dir) / "pid" / "master.pid")
      << std::setw(10) << pid << "\n";
  std::function<void()> await_flush = [&] {
    flush_signal.async_wait([&](const boost::system::error_code& e, int) {
      if (e) return;
      qmgr.flush();
      await_flush();
    });
  };
  await_flush();
  logger.info(master, std::string("daemon started -- version relaylab ") + RELAYLAB_VERSION +
                          ", configuration " + cfg.config_dir.string());
  daemon.start();
  if (a.ready_fd >= 0) {
    const char msg[] = "ready\n";
    if (::write(a.ready_fd, msg, sizeof msg - 1) < 0) {
      std::cerr << "relaylab relay: warning: --ready-fd " << a.ready_fd << ": write failed\n";
    }
    ::close(a.ready_fd);
  } else {
    std::cout << "ready" << std::endl;
  }

  io.run();
  qmgr.stop();
  qmgr_work.reset();
  qmgr_io.stop();
  qmgr_thread.join();
  std::filesystem::remove(std::filesystem::path(queue_dir) / "pid" / "master.pid", mk);
  spool.stop_background();
  logger.info(master, "daemon stopped");
  logger.flush();
  std::cout << "stopped" << std::endl;
  return exit_ok;
}

}  // namespace

subcommand add_relay(CLI::App& root) {
  auto a = std::make_shared<relay_args>();
  subcommand c;
  c.app = root.add_subcommand("relay", "Run the relay on real sockets (main.cf + master.cf)");
  c.app->add_option("--config-dir", a->config_dir, "directory with main.cf and master.cf")
      ->required()
      ->check(CLI::ExistingDirectory);
  c.app->add_option("--maillog", a->maillog,
                    "maillog file, '-' for stdout (default: maillog_file, else stderr)");
  c.app->add_option("--json-log", a->json_log, "also write JSON lines to this file");
  c.app->add_option("--queue-dir", a->queue_dir, "overrides queue_directory");
  c.app
      ->add_option("--spool", a->spool_format,
                   "how new mail becomes durable: journal (one fdatasync per group commit, "
                   "default) or files (one queue file and fsync per message, as Postfix)")
      ->check(CLI::IsMember({"journal", "files"}));
  c.app
      ->add_option_function<long>(
          "--commit-delay-us", [a](long us) { a->commit_delay = std::chrono::microseconds(us); },
          "how long new mail waits for sessions still receiving a message to share its "
          "fdatasync (default 300; 0: commit at once)")
      ->check(CLI::Range(0L, 100000L));
  c.app->add_option("--pid-file", a->pid_file, "write the process id here");
  c.app
      ->add_option("--ready-fd", a->ready_fd,
                   "write 'ready\\n' to this descriptor once listening, instead of stdout")
      ->check(CLI::NonNegativeNumber);
  c.app
      ->add_option_function<long>(
          "--drain-ms", [a](long ms) { a->drain_ms = std::chrono::milliseconds(ms); },
          "after SIGTERM, how long sessions may go on (default 10000)")
      ->check(CLI::NonNegativeNumber);
  c.run = [a] { return run_relay(*a); };
  return c;
}

}  // namespace relaylab::cli
