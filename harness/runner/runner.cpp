#include "harness/runner/runner.hpp"

#include "fakes/client/dialogue.hpp"
#include "fakes/client/mailx.hpp"
#include "fakes/dns/dns.hpp"
#include "fakes/mx/mx.hpp"
#include "fakes/mx/script.hpp"
#include "harness/sim/network.hpp"
#include "relay/config/config.hpp"
#include "relay/delivery/smtp_agent.hpp"
#include "relay/log/log.hpp"
#include "relay/net/driver.hpp"
#include "relay/qmgr/local_agent.hpp"
#include "relay/qmgr/qmgr.hpp"
#include "relay/qmgr/router.hpp"
#include "relay/queue/spool.hpp"
#include "relay/queue/storage.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtpd/smtpd.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace relaylab::runner {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::vector<const topology::scenario*> select(const topology::document& doc,
                                              const run_options& options, std::string& error) {
  std::vector<const topology::scenario*> out;
  const std::size_t n = std::max<std::size_t>(1, options.shard_count);
  for (std::size_t i = 0; i < doc.scenarios.size(); ++i) {
    const auto& sc = doc.scenarios[i];
    if (!options.scenario.empty() && sc.name != options.scenario) continue;
    out.push_back(&sc);
  }
  if (!options.scenario.empty() && out.empty()) {
    error = "no scenario named '" + options.scenario + "'";
    return out;
  }
  std::vector<const topology::scenario*> shard;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (i % n == options.shard_index) shard.push_back(out[i]);
  }
  return shard;
}

void validate(const topology::document& doc, std::vector<topology::diagnostic>& errors) {
  auto report = [&](const topology::text_source& t, std::size_t line, std::size_t col,
                    const std::string& msg) {
    errors.push_back({topology::locate_in(t, line, col), msg});
  };
  for (const auto& z : doc.zones) {
    fakes::dns::fake_resolver r;
    fakes::dns::zone_error e;
    if (z.present && !r.load(z.text, z.where.file, e)) report(z, e.line, e.column, e.message);
  }
  auto check_script = [&](const topology::text_source& t) {
    if (!t.present) return;
    fakes::mx::parse_error e;
    if (!fakes::mx::parse_script(t.text, t.where.file, e)) report(t, e.line, e.column, e.message);
  };
  for (const auto& h : doc.hosts) {
    for (const auto& m : h.mx) check_script(m.script);
  }
  std::set<std::string> smtpd_confs;
  for (const auto& h : doc.hosts) {
    if (h.relay && h.relay->smtpd_conf.present) smtpd_confs.insert(h.relay->smtpd_conf.text);
  }
  if (smtpd_confs.size() > 1) {
    errors.push_back({doc.hosts.front().where,
                      "relays with different smtpd.conf texts: libsasl2 reads one per process"});
  }
  for (const auto& sc : doc.scenarios) {
    for (const auto& o : sc.overrides) check_script(o.mx_script);
    for (const auto& st : sc.steps) {
      if (st.kind == topology::step_kind::dialogue && st.dialogue.present) {
        fakes::client::dialogue_error e;
        if (!fakes::client::parse_dialogue(st.dialogue.text, st.dialogue.where.file, e)) {
          report(st.dialogue, e.line, e.column, e.message);
        }
      }
      if (st.kind == topology::step_kind::fault && st.fault.kind == topology::fault_kind::dns &&
          st.fault.records.present) {
        fakes::dns::fake_resolver r;
        fakes::dns::zone_error e;
        if (!r.load(st.fault.records.text, st.fault.records.where.file, e)) {
          report(st.fault.records, e.line, e.column, e.message);
        }
      }
    }
  }
}

namespace {

// Forwards every relay host's log lines into one memory sink, in the order they happen.
class shared_sink final : public log::sink {
 public:
  explicit shared_sink(log::memory_sink& target) : target_(target) {}
  void write(const log::record& r) override { target_.write(r); }
  void flush() override {}

 private:
  log::memory_sink& target_;
};

asio::awaitable<void> drive_smtpd(std::shared_ptr<sim::socket> sock,
                                  std::shared_ptr<smtpd::connection> conn,
                                  std::shared_ptr<net::connection_signal> signal,
                                  net::clock_fn clock) {
  co_await net::run_connection<sim::timer>(*sock, *conn, signal, clock);
}

asio::awaitable<void> drive_mx(std::shared_ptr<sim::socket> sock,
                               std::shared_ptr<fakes::mx::connection> conn, net::clock_fn clock) {
  co_await net::run_connection<sim::timer>(*sock, *conn, nullptr, clock);
}

// Postfix hands a message from qmgr to a delivery agent process over IPC; the seed's maillog
// shows that step ("delays=a/b/..", b = 0.01 s) and that the client's disconnect is logged
// before the first connect attempt. This wrapper gives the hand-over that virtual time.
class handover_agent final : public delivery::agent {
 public:
  handover_agent(delivery::agent& inner, net::runtime& rt, net::duration delay)
      : inner_(inner), rt_(rt), delay_(delay) {}
  asio::awaitable<std::vector<delivery::recipient_outcome>> deliver(
      const delivery::job& j) override {
    co_await rt_.sleep_for(delay_);
    co_return co_await inner_.deliver(j);
  }

 private:
  delivery::agent& inner_;
  net::runtime& rt_;
  net::duration delay_;
};

inline constexpr net::duration agent_handover_delay{10};

struct relay_host {
  std::string host;
  config::configuration cfg;
  std::unique_ptr<queue::mem_storage> storage;
  std::unique_ptr<queue::spool> spool;
  std::unique_ptr<log::logger> logger;
  std::unique_ptr<sim::host_connector> connector;
  std::unique_ptr<delivery::smtp_agent> smtp;
  std::unique_ptr<handover_agent> smtp_handover;
  std::unique_ptr<qmgr::local_agent> local;
  std::unique_ptr<qmgr::manager> qmgr;
  std::vector<std::unique_ptr<smtpd::service>> services;
  std::vector<std::string> accepted;  // queue IDs smtpd committed
};

struct mx_host {
  std::string host;
  std::uint16_t port = 25;
  std::unique_ptr<fakes::mx::server> server;
};

struct client_outcome {
  bool done = false;
  fakes::client::mailx_result result;
  sim::time_point started{0}, finished{0};
};

asio::awaitable<void> run_mailx(fakes::client::mailx_settings settings,
                                fakes::client::mailx_message_input msg,
                                fakes::client::mailx_environment env,
                                std::shared_ptr<sim::host_connector> connector,
                                std::shared_ptr<sim::sim_runtime> rt,
                                std::shared_ptr<client_outcome> out,
                                std::shared_ptr<std::ostringstream> verbose, sim::world* w) {
  out->result = co_await fakes::client::mailx_send(std::move(settings), std::move(msg),
                                                   std::move(env), *connector, *rt, verbose.get());
  out->finished = w->now();
  out->done = true;
}

struct dialogue_outcome {
  bool done = false;
  std::error_code connect_error;
  fakes::client::play_result result;
  sim::time_point finished{0};
};

asio::awaitable<void> run_dialogue(std::shared_ptr<fakes::client::dialogue> d,
                                   std::shared_ptr<sim::host_connector> connector,
                                   std::string server, std::uint16_t port,
                                   std::shared_ptr<dialogue_outcome> out, sim::world* w) {
  std::error_code ec;
  auto stream = co_await connector->connect(server, port, 30s, ec);
  if (!stream) {
    out->connect_error = ec;
  } else {
    out->result = co_await fakes::client::play(*d, *stream);
    stream->close();
  }
  out->finished = w->now();
  out->done = true;
}

std::string ms_text(std::chrono::nanoseconds d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  std::ostringstream o;
  o << ms / 1000 << "." << std::setfill('0') << std::setw(3) << ms % 1000 << "s";
  return o.str();
}

bool glob(const std::string& pattern, const std::string& text) {
  return fakes::client::glob_match(pattern, text);
}

class scenario_run {
 public:
  scenario_run(const topology::document& doc, const topology::scenario& sc, std::uint64_t seed,
               const run_options& options)
      : doc_(doc),
        sc_(sc),
        options_(options),
        world_(sim::world_options{seed, doc.epoch}),
        sink_(true, 1000000) {}

  scenario_result run() {
    result_.name = sc_.name;
    if (setup()) play();
    check_invariants();
    result_.virtual_time = world_.now();
    result_.maillog = sink_.lines();
    trace_deliveries();
    result_.events = world_.events_run();
    result_.passed = result_.failures.empty();
    teardown();
    world_.shutdown();  // suspended coroutines go while what they refer to still exists
    return std::move(result_);
  }

 private:
  void fail(const topology::location& where, std::string expected, std::string got) {
    result_.failures.push_back({where, std::move(expected), std::move(got)});
  }

  net::clock_fn clock() {
    return [w = &world_] { return net::timestamp(w->now()); };
  }

  bool setup() {
    // The network, with the scenario's changes.
    std::vector<sim::network_error> errors;
    net_ = std::make_unique<sim::network>(world_, doc_.network, errors);
    for (const auto& e : errors) fail(sc_.where, "a valid network", e.what);
    if (!errors.empty()) return false;
    runtime_ = std::make_shared<sim::sim_runtime>(world_);
    dns_ = std::make_unique<fakes::dns::fake_resolver>(runtime_.get());
    for (const auto& z : doc_.zones) {
      fakes::dns::zone_error e;
      if (z.present && !dns_->load(z.text, z.where.file, e)) {
        fail(z.where, "a valid zone", e.to_string());
        return false;
      }
    }
    for (const auto& h : doc_.hosts) {
      for (const auto& m : h.mx) {
        if (!setup_mx(h, m)) return false;
      }
      if (h.relay && !setup_relay(h)) return false;
    }
    return true;
  }

  const topology::override_spec* override_for(const std::string& host) const {
    for (const auto& o : sc_.overrides) {
      if (o.host == host) return &o;
    }
    return nullptr;
  }

  bool setup_mx(const topology::host& h, const topology::mx_spec& m) {
    fakes::mx::script script;
    const auto* ov = override_for(h.net.name);
    const topology::text_source& text =
        ov && ov->mx_script.present && &m == &h.mx.front() ? ov->mx_script : m.script;
    if (text.present) {
      fakes::mx::parse_error e;
      auto s = fakes::mx::parse_script(text.text, text.where.file, e);
      if (!s) {
        fail(text.where, "a valid MX script", e.to_string());
        return false;
      }
      script = std::move(*s);
    }
    auto mx = std::make_unique<mx_host>();
    mx->host = h.net.name;
    mx->port = m.port;
    mx->server = std::make_unique<fakes::mx::server>(std::move(script));
    std::string error;
    if (!mx->server->prepare(error)) {
      fail(m.where, "an MX that starts", error);
      return false;
    }
    auto* srv = mx->server.get();
    auto ck = clock();
    auto ex = world_.executor();
    net_->listen(h.net.name, m.port, [srv, ck, ex](sim::accepted a) {
      std::shared_ptr<sim::socket> sock(std::move(a.stream));
      std::shared_ptr<fakes::mx::connection> conn =
          srv->open(a.remote_address, std::to_string(a.remote_port), ck());
      asio::co_spawn(ex, drive_mx(sock, conn, ck), asio::detached);
    });
    mxs_.push_back(std::move(mx));
    return true;
  }

  bool setup_relay(const topology::host& h) {
    const auto* ov = override_for(h.net.name);
    const auto& spec = *h.relay;
    auto r = std::make_unique<relay_host>();
    r->host = h.net.name;
    // Files libsasl2 and config::load read.
    const fs::path dir = fs::path(options_.work_dir) / "hosts" / h.net.name;
    const fs::path sasl_dir = fs::path(options_.work_dir) / "sasl";
    std::error_code ec;
    fs::create_directories(dir, ec);
    fs::create_directories(sasl_dir, ec);
    std::string main_cf = spec.main_cf.text;
    if (ov && ov->main_cf_append.present) main_cf += ov->main_cf_append.text;
    std::string master_cf = ov && ov->master_cf.present ? ov->master_cf.text
                            : spec.master_cf.present    ? spec.master_cf.text
                                                     : std::string("smtp inet n - n - - smtpd\n");
    const std::string sasldb = (sasl_dir / "sasldb2").string();
    std::string smtpd_conf = spec.smtpd_conf.text;
    smtpd_conf += "sasldb_path: " + sasldb + "\n";
    {
      std::ofstream(dir / "main.cf", std::ios::trunc) << main_cf;
      std::ofstream(dir / "master.cf", std::ios::trunc) << master_cf;
      std::ofstream(sasl_dir / "smtpd.conf", std::ios::trunc) << smtpd_conf;
    }
    config::host_environment env;
    env.hostname = spec.myhostname.empty() ? h.net.name : spec.myhostname;
    if (!h.net.ipv4.empty()) {
      std::string prefix = "/32";
      for (const auto& v : doc_.network.vpcs) {
        for (const auto& s : v.subnets) {
          if (s.name == h.net.subnet) prefix = s.cidr.substr(s.cidr.find('/'));
        }
      }
      env.interface_networks.push_back(h.net.ipv4 + prefix);
    }
    r->cfg = config::load(dir, env);
    for (const auto& d : r->cfg.diagnostics) {
      if (d.level == config::diagnostic::severity::fatal) {
        fail(spec.where, "a valid relay configuration", d.to_string());
      }
    }
    if (!r->cfg.ok()) return false;
    r->cfg.main.set("cyrus_sasl_config_path", sasl_dir.string());
    auto& cfg = r->cfg;

    r->logger = std::make_unique<log::logger>(
        log::logger_options{cfg.main.get("myhostname"), [w = &world_] { return w->wall_now(); }});
    r->logger->add_sink(std::make_unique<shared_sink>(sink_));

    bool sasl_wanted = false;
    for (const auto& s : cfg.services) {
      if (cfg.main.with_overrides(s.overrides).get_bool("smtpd_sasl_auth_enable")) {
        sasl_wanted = true;
      }
    }
    std::shared_ptr<sasl::server_library> sasl_lib;
    if (sasl_wanted) {
      sasl::server_config sc;
      sc.config_path = sasl_dir.string();
      sc.app_name = cfg.main.get("smtpd_sasl_path");
      sc.service = cfg.main.get("smtpd_sasl_service");
      sc.server_fqdn = cfg.main.get("myhostname");
      sc.user_realm = cfg.main.get("smtpd_sasl_local_domain");
      std::string error;
      auto sec = sasl::security_options::parse(cfg.main.get("smtpd_sasl_security_options"), error);
      if (sec) sc.security = *sec;
      sasl_lib = sasl::server_library::init(sc, error);
      if (!sasl_lib) {
        fail(spec.where, "SASL to initialise", error);
        return false;
      }
      fs::remove(sasldb, ec);
      for (const auto& u : spec.sasl_users) {
        const std::string realm = u.realm.empty() ? cfg.main.get("myhostname") : u.realm;
        if (!sasl::set_sasldb_password(sasldb, u.name, realm, u.password, error)) {
          fail(u.where, "the sasldb user to be created", error);
          return false;
        }
      }
    }
    sasl_libs_.push_back(sasl_lib);

    r->storage = std::make_unique<queue::mem_storage>();
    queue::spool_options so;
    so.mode = queue::commit_mode::immediate;
    so.message_size_limit_bytes =
        static_cast<std::uint64_t>(cfg.main.get_int("message_size_limit"));
    r->spool = std::make_unique<queue::spool>(
        *r->storage, [w = &world_] { return w->wall_now(); }, [w = &world_] { return w->random(); },
        so);
    if (auto e = r->spool->open()) {
      fail(spec.where, "the queue to open", e.message());
      return false;
    }
    queue::recovery_report report;
    r->spool->recover(report);

    std::string route_error;
    auto routing = qmgr::routing_from_config(cfg.main, route_error);
    if (!routing) {
      fail(spec.where, "valid routing parameters", route_error);
      return false;
    }
    r->connector = std::make_unique<sim::host_connector>(*net_, h.net.name);
    const int base_pid = 2900 + static_cast<int>(relays_.size()) * 1000;
    auto ao = delivery::smtp_agent_options_from_config(cfg.main, base_pid + 100);
    r->smtp = std::make_unique<delivery::smtp_agent>(
        ao, *r->connector, *runtime_, *dns_, *r->logger, [w = &world_](std::size_t bound) {
          return bound == 0 ? 0 : static_cast<std::size_t>(w->random() % bound);
        });
    qmgr::local_options lo;
    lo.mail_spool_directory = dir / "mail";
    lo.myhostname = cfg.main.get("myhostname");
    fs::create_directories(lo.mail_spool_directory, ec);
    r->local = std::make_unique<qmgr::local_agent>(
        lo, *runtime_, r->logger.get(),
        log::origin{cfg.main.get("syslog_name"), "local", base_pid + 101});
    auto qo = qmgr::options_from_config(cfg.main, {"smtp", "relay", "local"});
    qo.pid = base_pid + 24;
    r->qmgr = std::make_unique<qmgr::manager>(*r->spool, *runtime_, *r->logger,
                                              qmgr::router(std::move(*routing)), qo);
    r->smtp_handover = std::make_unique<handover_agent>(*r->smtp, *runtime_, agent_handover_delay);
    r->qmgr->add_transport("smtp", *r->smtp_handover);
    r->qmgr->add_transport("relay", *r->smtp_handover);
    r->qmgr->add_transport("local", *r->local);
    r->qmgr->adopt(report);
    r->qmgr->start();

    int svc_pid = base_pid + 96;
    for (const auto& svc : cfg.services) {
      smtpd::dependencies deps;
      deps.log = r->logger.get();
      deps.spool = r->spool.get();
      deps.sasl = sasl_lib;
      deps.wall_clock = [w = &world_] { return w->wall_now(); };
      deps.pid = svc_pid++;
      auto* rp = r.get();
      deps.on_queued = [rp](const std::string& id) {
        rp->accepted.push_back(id);
        rp->qmgr->notify_new_message(id);
      };
      std::vector<config::diagnostic> diags;
      auto service = smtpd::service::create(cfg, svc, deps, diags);
      for (const auto& d : diags) {
        if (d.level == config::diagnostic::severity::fatal) {
          fail(spec.where, "a valid smtpd service " + svc.name, d.to_string());
        }
      }
      if (!service) return false;
      auto* sp = service.get();
      auto ck = clock();
      auto ex = world_.executor();
      net_->listen(h.net.name, svc.listen_port, [sp, ck, ex](sim::accepted a) {
        std::shared_ptr<sim::socket> sock(std::move(a.stream));
        auto signal = net::make_connection_signal(
            [ex](std::function<void()> f) { asio::post(ex, std::move(f)); });
        smtpd::endpoint remote{a.remote_address, std::to_string(a.remote_port), "unknown"};
        smtpd::endpoint local{a.local_address, std::to_string(a.local_port), "unknown"};
        std::shared_ptr<smtpd::connection> conn = sp->open(remote, local, ck(), signal->notifier());
        if (!conn) return;
        asio::co_spawn(ex, drive_smtpd(sock, conn, signal, ck), asio::detached);
      });
      r->services.push_back(std::move(service));
    }
    relays_.push_back(std::move(r));
    return true;
  }

  bool queue_empty() {
    for (const auto& r : relays_) {
      std::vector<queue::queue_entry> entries;
      r->spool->list(entries);
      if (!entries.empty() || !r->qmgr->idle()) return false;
    }
    return true;
  }

  void run_for(sim::duration d) {
    sim::run_limits lim;
    lim.until = world_.now() + d;
    world_.run(lim);
  }

  void run_until(const std::function<bool()>& done, sim::duration max) {
    sim::run_limits lim;
    lim.until = world_.now() + max;
    world_.run_until(done, lim);
  }

  void play() {
    const sim::time_point start = world_.now();
    const sim::duration limit = sc_.time_max;
    std::size_t next_expectation = 0;
    auto check_due = [&](std::size_t steps_done) {
      while (next_expectation < sc_.expectations.size() &&
             sc_.expectations[next_expectation].after_step <= steps_done) {
        check(sc_.expectations[next_expectation++]);
      }
    };
    check_due(0);
    for (std::size_t i = 0; i < sc_.steps.size(); ++i) {
      const auto& st = sc_.steps[i];
      if (st.at.count() >= 0) {
        const sim::time_point at = start + st.at;
        if (at > world_.now()) run_for(at - world_.now());
      }
      const sim::time_point began = world_.now();
      run_step(st, start + limit);
      step_times_[st.name] = world_.now() - began;
      check_due(i + 1);
    }
    check_due(sc_.steps.size());
  }

  void run_step(const topology::step& st, sim::time_point deadline) {
    const sim::duration left = deadline > world_.now() ? deadline - world_.now() : sim::duration(0);
    switch (st.kind) {
      case topology::step_kind::send:
        return run_send(st, left);
      case topology::step_kind::dialogue:
        return run_dialogue_step(st, left);
      case topology::step_kind::wait:
        if (st.wait_until == "queue-empty") {
          const sim::duration max = st.wait_for.count() > 0 ? sim::duration(st.wait_for) : left;
          run_until([this] { return queue_empty(); }, std::min(max, left));
          if (!queue_empty()) {
            fail(st.where, "the queue to empty within " + ms_text(std::min(max, left)),
                 "mail is still queued at " + ms_text(world_.now()));
          }
        } else {
          run_for(std::min<sim::duration>(st.wait_for, left));
        }
        return;
      case topology::step_kind::fault:
        return run_fault(st);
      case topology::step_kind::load:
        fail(st.where, "a load step", "not supported by this runner yet (fakes/load not wired)");
        return;
    }
  }

  void run_send(const topology::step& st, sim::duration left) {
    const auto& s = st.send;
    fakes::client::mailx_settings settings;
    const bool v6 = s.server.find(':') != std::string::npos;
    settings.set("smtp=smtp://" + (v6 ? "[" + s.server + "]" : s.server) + ":" +
                 std::to_string(s.port));
    if (!s.auth.empty()) {
      settings.set("smtp-auth=" + s.auth);
      settings.set("smtp-auth-user=" + s.user);
      settings.set("smtp-auth-password=" + s.password);
    }
    fakes::client::mailx_message_input msg;
    msg.from = s.from;
    msg.to = s.to;
    msg.subject = s.subject;
    msg.body = s.body + "\n";
    fakes::client::mailx_environment env;
    env.now = world_.wall_now();
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < 16; ++i) env.random16 += alphabet[world_.random() % 62];
    env.hostname = s.host;
    auto out = std::make_shared<client_outcome>();
    out->started = world_.now();
    auto verbose = std::make_shared<std::ostringstream>();
    auto connector = std::make_shared<sim::host_connector>(*net_, s.host);
    asio::co_spawn(world_.executor(),
                   run_mailx(std::move(settings), std::move(msg), std::move(env), connector,
                             runtime_, out, verbose, &world_),
                   asio::detached);
    run_until([&] { return out->done; }, left);
    if (options_.verbose) {
      std::istringstream lines(verbose->str());
      for (std::string l; std::getline(lines, l);) result_.transcript.push_back(s.host + " " + l);
    }
    const bool sent = out->done && out->result.exit_status == 0;
    const std::string& err = out->result.error;
    std::string outcome = !out->done                                     ? "unfinished"
                          : sent                                         ? "sent"
                          : err.find("timed out") != std::string::npos   ? "timeout"
                          : err.find("unreachable") != std::string::npos ? "unreachable"
                          : err.find("refused") != std::string::npos     ? "refused"
                                                                         : "rejected";
    topology::drawn_hop hop{
        s.host, host_at(s.server),
        std::to_string(s.port) + (s.auth.empty() ? "" : " AUTH") + " " + outcome, !sent};
    result_.path.push_back(hop);
    if (outcome != s.expect) {
      fail(st.where, "send " + s.expect, outcome + (err.empty() ? "" : " (" + err + ")"));
      return;
    }
    if (!s.expect_reply.empty() && !glob("*" + s.expect_reply + "*", err)) {
      fail(st.where, "a reply matching \"" + s.expect_reply + "\"",
           err.empty() ? std::string("no error reply") : err);
    }
  }

  std::string host_at(const std::string& address) const {
    for (const auto& h : doc_.hosts) {
      if (h.net.ipv4 == address || h.net.public_ipv4 == address || h.net.ipv6 == address) {
        return h.net.name;
      }
    }
    return "";
  }

  void run_dialogue_step(const topology::step& st, sim::duration left) {
    fakes::client::dialogue_error e;
    auto d = fakes::client::parse_dialogue(st.dialogue.text, st.dialogue.where.file, e);
    if (!d) {
      fail(topology::locate_in(st.dialogue, e.line, e.column), "a valid dialogue", e.message);
      return;
    }
    auto dp = std::make_shared<fakes::client::dialogue>(std::move(*d));
    auto out = std::make_shared<dialogue_outcome>();
    auto connector = std::make_shared<sim::host_connector>(*net_, st.dialogue_host);
    asio::co_spawn(world_.executor(),
                   run_dialogue(dp, connector, st.dialogue_server, st.dialogue_port, out, &world_),
                   asio::detached);
    run_until([&] { return out->done; }, left);
    if (options_.verbose) {
      for (const auto& l : out->result.transcript) result_.transcript.push_back(l);
    }
    if (!out->done) {
      fail(st.where, "the dialogue to finish", "still running at " + ms_text(world_.now()));
    } else if (out->connect_error) {
      fail(st.where, "a connection", out->connect_error.message());
    } else {
      for (const auto& f : out->result.failures) fail(st.where, "the dialogue's replies", f);
    }
  }

  void run_fault(const topology::step& st) {
    const auto& f = st.fault;
    std::error_code ec;
    switch (f.kind) {
      case topology::fault_kind::link_down:
        ec = net_->set_link_up(f.target, false);
        break;
      case topology::fault_kind::link_up:
        ec = net_->set_link_up(f.target, true);
        break;
      case topology::fault_kind::crash:
        ec = net_->crash_host(f.target);
        break;
      case topology::fault_kind::restart:
        ec = net_->restart_host(f.target);
        break;
      case topology::fault_kind::partition:
        net_->partition(f.a, f.b);
        break;
      case topology::fault_kind::heal:
        net_->heal();
        break;
      case topology::fault_kind::sg_add:
      case topology::fault_kind::sg_remove:
        ec = net_->change_sg_rule(f.target, f.ingress, f.rule,
                                  f.kind == topology::fault_kind::sg_add);
        break;
      case topology::fault_kind::dns: {
        dns_->remove(f.target);
        fakes::dns::zone_error e;
        if (f.records.present && !dns_->load(f.records.text, f.records.where.file, e)) {
          fail(st.where, "valid DNS records", e.to_string());
        }
        break;
      }
    }
    if (ec) fail(st.where, "the fault to apply", ec.message());
  }

  void check(const topology::expectation& x) {
    using topology::expect_kind;
    const auto lines = sink_.lines();
    switch (x.kind) {
      case expect_kind::maillog: {
        std::uint64_t n = 0;
        for (const auto& l : lines) n += glob(x.patterns[0], l) ? 1 : 0;
        if (x.absent && n > 0) {
          fail(x.where, "no maillog line matching \"" + x.patterns[0] + "\"",
               std::to_string(n) + " matching lines");
        } else if (x.count && n != *x.count) {
          fail(x.where,
               std::to_string(*x.count) + " maillog lines matching \"" + x.patterns[0] + "\"",
               std::to_string(n) + " lines" + (lines.empty() ? " (the maillog is empty)" : ""));
        } else if (!x.absent && !x.count && n == 0) {
          fail(x.where, "a maillog line matching \"" + x.patterns[0] + "\"",
               lines.empty() ? "the maillog is empty" : "none; last line: " + lines.back());
        }
        return;
      }
      case expect_kind::maillog_sequence: {
        std::size_t at = 0;
        for (std::size_t p = 0; p < x.patterns.size(); ++p) {
          while (at < lines.size() && !glob(x.patterns[p], lines[at])) ++at;
          if (at == lines.size()) {
            fail(x.where,
                 "maillog line " + std::to_string(p + 1) + " of the sequence: \"" + x.patterns[p] +
                     "\"",
                 "no such line after the earlier ones (" + std::to_string(lines.size()) +
                     " lines in the maillog)");
            return;
          }
          ++at;
        }
        return;
      }
      case expect_kind::mailbox: {
        const fakes::mx::server* srv = nullptr;
        for (const auto& m : mxs_) {
          if (m->host == x.host) srv = m->server.get();
        }
        if (!srv) {
          fail(x.where, "an MX on " + x.host, "none");
          return;
        }
        std::uint64_t n = 0;
        for (const auto& m : srv->mailbox()) {
          bool rcpt_ok = x.recipient.empty();
          for (const auto& r : m.recipients) rcpt_ok = rcpt_ok || r == x.recipient;
          const bool content_ok = x.contains.empty() || glob(x.contains, m.data);
          n += rcpt_ok && content_ok ? 1 : 0;
        }
        const std::uint64_t want = x.count.value_or(1);
        if (x.count ? n != want : n == 0) {
          fail(
              x.where,
              (x.count ? std::to_string(want) : std::string("at least one")) + " message(s) at " +
                  x.host + (x.recipient.empty() ? "" : " for " + x.recipient) +
                  (x.contains.empty() ? "" : " containing \"" + x.contains + "\""),
              std::to_string(n) + " (mailbox holds " + std::to_string(srv->mailbox().size()) + ")");
        }
        return;
      }
      case expect_kind::queue: {
        std::uint64_t in = 0, act = 0, def = 0;
        for (const auto& r : relays_) {
          std::vector<queue::queue_entry> entries;
          r->spool->list(entries);
          for (const auto& e : entries) {
            in += e.state == queue::queue_state::incoming;
            act += e.state == queue::queue_state::active;
            def += e.state == queue::queue_state::deferred;
          }
        }
        auto cmp = [&](const char* what, const std::optional<std::uint64_t>& want,
                       std::uint64_t got) {
          if (want && *want != got) {
            fail(x.where, std::string(what) + " = " + std::to_string(*want),
                 std::string(what) + " = " + std::to_string(got));
          }
        };
        cmp("incoming", x.incoming, in);
        cmp("active", x.active, act);
        cmp("deferred", x.deferred, def);
        return;
      }
      case expect_kind::duration: {
        const auto it = step_times_.find(x.step);
        if (it == step_times_.end()) {
          fail(x.where, "step " + x.step + " to have run", "it did not");
          return;
        }
        const auto took = it->second;
        if ((x.min && took < *x.min) || (x.max && took > *x.max)) {
          fail(x.where,
               "step " + x.step + " to take" + (x.min ? " at least " + ms_text(*x.min) : "") +
                   (x.max ? " at most " + ms_text(*x.max) : ""),
               ms_text(took));
        }
        return;
      }
    }
  }

  // The relay's outbound hops, read back from its smtp log lines, for `relaylab draw`.
  void trace_deliveries() {
    std::string relay_host_name;
    for (const auto& h : doc_.hosts) {
      if (h.relay) relay_host_name = h.net.name;
    }
    if (relay_host_name.empty()) return;
    auto addr_of = [](const std::string& l, std::size_t from) {
      const auto a = l.find('[', from), b = l.find(']', a == std::string::npos ? from : a);
      return a == std::string::npos || b == std::string::npos ? std::string()
                                                              : l.substr(a + 1, b - a - 1);
    };
    for (const auto& l : result_.maillog) {
      if (l.find("/smtp[") == std::string::npos) continue;
      if (const auto p = l.find(": connect to "); p != std::string::npos) {
        const auto addr = addr_of(l, p);
        const auto colon = l.find("]:", p);
        const auto reason = colon == std::string::npos ? "" : l.substr(l.find(": ", colon) + 2);
        result_.path.push_back({relay_host_name, host_at(addr), "25 " + reason, true});
      } else if (const auto q = l.find(", relay="); q != std::string::npos) {
        const auto st = l.find("status=");
        const auto status = st == std::string::npos ? "" : l.substr(st, l.find(' ', st) - st);
        result_.path.push_back(
            {relay_host_name, host_at(addr_of(l, q)), "25 " + status, status != "status=sent"});
      }
    }
  }

  // Checkers: judge what the simulation left, independently of the expectations.
  void check_invariants() {
    const auto lines = sink_.lines();
    for (const auto& r : relays_) {
      std::vector<queue::queue_entry> entries;
      r->spool->list(entries);
      std::set<std::string> queued;
      for (const auto& e : entries) queued.insert(e.queue_id);
      for (const auto& id : r->accepted) {
        std::map<std::string, int> sent;
        bool removed = false, finished_some = false;
        for (const auto& l : lines) {
          const auto p = l.find(" " + id + ": ");
          if (p == std::string::npos) continue;
          const std::string rest = l.substr(p + id.size() + 3);
          if (rest == "removed") removed = true;
          if (rest.rfind("to=<", 0) == 0) {
            const std::string rcpt = rest.substr(4, rest.find('>') - 4);
            if (rest.find("status=sent") != std::string::npos) {
              ++sent[rcpt];
              finished_some = true;
            }
            if (rest.find("status=bounced") != std::string::npos ||
                rest.find("status=expired") != std::string::npos) {
              finished_some = true;
            }
          }
        }
        for (const auto& [rcpt, n] : sent) {
          if (n > 1) {
            fail(sc_.where, "checker: " + id + " delivered to <" + rcpt + "> at most once",
                 std::to_string(n) + " deliveries");
          }
        }
        if (!queued.count(id) && !(removed && finished_some)) {
          fail(sc_.where,
               "checker: accepted message " + id + " is delivered, bounced or still queued",
               removed ? "removed without a delivery or bounce" : "gone from the queue");
        }
      }
    }
  }

  void teardown() {
    for (auto& r : relays_) {
      if (r->qmgr) r->qmgr->stop();
    }
    // Let coroutines see their streams close, then drop everything in reverse order.
    sim::run_limits lim;
    lim.until = world_.now() + std::chrono::seconds(1);
    lim.steps_max = 100000;
    world_.run(lim);
  }

  const topology::document& doc_;
  const topology::scenario& sc_;
  const run_options& options_;
  sim::world world_;
  log::memory_sink sink_;
  std::unique_ptr<sim::network> net_;
  std::shared_ptr<sim::sim_runtime> runtime_;
  std::unique_ptr<fakes::dns::fake_resolver> dns_;
  std::vector<std::unique_ptr<mx_host>> mxs_;
  std::vector<std::unique_ptr<relay_host>> relays_;
  std::vector<std::shared_ptr<sasl::server_library>> sasl_libs_;
  std::map<std::string, std::chrono::nanoseconds> step_times_;
  scenario_result result_;
};

}  // namespace

scenario_result run_scenario(const topology::document& doc, const topology::scenario& sc,
                             std::uint64_t seed, const run_options& options) {
  scenario_run run(doc, sc, seed, options);
  return run.run();
}

}  // namespace relaylab::runner
