#include "harness/runner/runner.hpp"

#include "harness/runner/expectations.hpp"
#include "harness/runner/incarnation.hpp"
#include "harness/runner/invariants.hpp"
#include "harness/runner/matrix_step.hpp"
#include "harness/runner/tasks.hpp"

#include "fakes/client/dialogue.hpp"
#include "fakes/client/mailx.hpp"
#include "fakes/dns/dns.hpp"
#include "fakes/load/load.hpp"
#include "fakes/mx/mx.hpp"
#include "fakes/mx/script.hpp"
#include "fakes/mx/tls.hpp"
#include "harness/sim/network.hpp"
#include "relay/config/config.hpp"
#include "relay/delivery/agent_tls.hpp"
#include "relay/delivery/smtp_agent.hpp"
#include "relay/log/log.hpp"
#include "relay/net/driver.hpp"
#include "relay/qmgr/local_agent.hpp"
#include "relay/qmgr/log_gate.hpp"
#include "relay/qmgr/qmgr.hpp"
#include "relay/qmgr/router.hpp"
#include "relay/queue/spool.hpp"
#include "relay/queue/storage.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtpd/smtpd.hpp"
#include "relay/tls/client.hpp"
#include "relay/tls/pki.hpp"
#include "relay/tls/settings.hpp"
#include "relay/tls/stream.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include <unistd.h>

#include <cstdlib>
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

namespace {

using namespace detail;

// A simulated connection served as on TCP: through tls::server_stream when the service offers
// TLS (the sim socket carries the real TLS bytes, on virtual time), else on the socket itself.
asio::awaitable<void> drive_smtpd(std::shared_ptr<sim::socket> sock,
                                  std::shared_ptr<smtpd::connection> conn,
                                  std::shared_ptr<net::connection_signal> signal,
                                  net::clock_fn clock) {
  if (auto ctx = conn->tls_context()) {
    tls::server_stream<sim::socket> stream(*sock, std::move(ctx));
    co_await net::run_connection<sim::timer>(stream, *conn, signal, clock);
  } else {
    co_await net::run_connection<sim::timer>(*sock, *conn, signal, clock);
  }
}

asio::awaitable<void> drive_mx(std::shared_ptr<sim::socket> sock,
                               std::shared_ptr<fakes::mx::connection> conn, net::clock_fn clock) {
  if (auto ctx = conn->tls_context()) {
    tls::server_stream<sim::socket> stream(*sock, std::move(ctx));
    co_await net::run_connection<sim::timer>(stream, *conn, nullptr, clock);
  } else {
    co_await net::run_connection<sim::timer>(*sock, *conn, nullptr, clock);
  }
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
    if (options_.progress) {
      world_.on_progress([this] {
        std::uint64_t messages = 0;
        for (const auto& r : relays_) messages += r->accepted.size();
        options_.progress({sc_.name, world_.now(), world_.events_run(), messages});
      });
    }
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

  // The run's own certificate authority, made when something first needs TLS: Ed25519 keys
  // (fixed-size handshakes, so a run takes the same virtual time every time), validity from
  // the scenario's epoch on the virtual clock. Every relay's delivery agent and every client
  // trusts it.
  const tls::authority& authority() {
    if (!ca_)
      ca_ = std::make_unique<tls::authority>("Relaylab simulation CA " + doc_.name,
                                             tls::key_kind::ed25519, world_.wall_now());
    return *ca_;
  }

  // The CA certificate as a file, for clients that read a CA file (mailx's ssl-ca-file).
  std::string authority_file() {
    if (ca_file_.empty()) {
      const fs::path dir = fs::path(options_.work_dir) / "tls";
      std::error_code ec;
      fs::create_directories(dir, ec);
      ca_file_ = (dir / "ca.pem").string();
      std::ofstream(ca_file_, std::ios::trunc) << authority().ca_pem();
    }
    return ca_file_;
  }

  bool setup() {
    // The network, with the scenario's changes.
    std::vector<sim::network_error> errors;
    net_ = std::make_unique<sim::network>(world_, sc_.network_or(doc_.network), errors);
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
    fakes::mx::server_options mo;
    if (!m.tls.empty()) {
      fakes::mx::tls_options to;
      to.wrappermode = m.tls_wrapper;
      std::string error;
      mo.tls = fakes::mx::make_tls_context(
          authority(), *fakes::mx::parse_cert_kind(m.tls),
          m.tls_names.empty() ? std::vector<std::string>{h.net.name} : m.tls_names,
          tls::key_kind::ed25519, error, to, world_.wall_now());
      if (!mo.tls) {
        fail(m.where, "the MX's TLS certificate", error);
        return false;
      }
    }
    mx->server = std::make_unique<fakes::mx::server>(std::move(script), std::move(mo));
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
    if (!spec.tls.empty()) main_cf += "\nsmtpd_tls_security_level = " + spec.tls + "\n";
    if (ov && ov->main_cf_append.present) main_cf += ov->main_cf_append.text;
    std::string master_cf = ov && ov->master_cf.present ? ov->master_cf.text
                            : spec.master_cf.present    ? spec.master_cf.text
                                                        : std::string(default_master_cf);
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
      for (const auto& v : sc_.network_or(doc_.network).vpcs) {
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
    r->sasl = sasl_lib;
    // A certificate from the run's CA for every name the relay answers to, offered by the
    // services whose configuration asks for TLS and names no certificate file.
    bool server_tls = false;
    for (const auto& s : cfg.services) {
      server_tls = server_tls || tls::server_tls_requested(cfg.main.with_service_overrides(s));
    }
    if (server_tls) {
      std::vector<std::string> names{cfg.main.get("myhostname")};
      for (const auto* n : {&h.net.name, &h.net.ipv4, &h.net.public_ipv4, &h.net.ipv6}) {
        if (!n->empty() && std::find(names.begin(), names.end(), *n) == names.end()) {
          names.push_back(*n);
        }
      }
      const auto cert = authority().issue(names, tls::key_kind::ed25519);
      r->tls_certificates.push_back({cert.chain_pem, cert.key_pem});
    }
    r->dir = dir;
    r->index = relays_.size();
    r->disk = std::make_unique<queue::mem_storage>();
    auto* rp = r.get();
    relays_.push_back(std::move(r));
    return boot_relay(*rp, spec.where);
  }

  // Starts an incarnation of the relay on its host: the spool recovers what the disk kept, the
  // queue manager adopts it, smtpd listens. Called at setup and by a restart after a crash.
  bool boot_relay(relay_host& r, const topology::location& where) {
    auto inc = std::make_unique<relay_incarnation>();
    const auto& cfg = r.cfg;
    const fence up = inc->up;
    inc->storage = std::make_unique<fenced_storage>(*r.disk, up);
    queue::spool_options so;
    so.mode = queue::commit_mode::immediate;
    // The same spool as `relaylab relay`: the journal and the first-delivery cache (a crash
    // drops what mem_storage never synced, journal segments included).
    so.journal = true;
    so.cache_bytes_max = 64u << 20;
    so.message_size_limit_bytes =
        static_cast<std::uint64_t>(cfg.main.get_int("message_size_limit"));
    inc->spool = std::make_unique<queue::spool>(
        *inc->storage, [w = &world_] { return w->wall_now(); },
        [w = &world_] { return w->random(); }, so);
    if (auto e = inc->spool->open()) {
      fail(where, "the queue to open", e.message());
      return false;
    }
    queue::recovery_report report;
    if (auto e = inc->spool->recover(report)) {
      fail(where, "the queue to recover", e.message());
      return false;
    }
    auto clock = [w = &world_] { return w->wall_now(); };
    inc->logger =
        std::make_unique<log::logger>(log::logger_options{cfg.main.get("myhostname"), clock});
    inc->logger->add_sink(std::make_unique<shared_sink>(sink_, up));
    inc->agent_logger =
        std::make_unique<log::logger>(log::logger_options{cfg.main.get("myhostname"), clock});
    auto gate_sink = std::make_unique<qmgr::log_gate>(*inc->logger);
    qmgr::log_gate* gate = gate_sink.get();
    inc->agent_logger->add_sink(std::move(gate_sink));

    std::string route_error;
    auto routing = qmgr::routing_from_config(cfg.main, route_error);
    if (!routing) {
      fail(where, "valid routing parameters", route_error);
      return false;
    }
    inc->host_connector = std::make_unique<sim::host_connector>(*net_, r.host);
    inc->connector = std::make_unique<fenced_connector>(*inc->host_connector, up);
    // Each boot gets fresh process ids, as a rebooted Postfix does.
    const int base_pid = 2900 + static_cast<int>(r.index) * 1000 + static_cast<int>(r.boots) * 200;
    ++r.boots;
    auto ao = delivery::smtp_agent_options_from_config(cfg.main, base_pid + 100);
    {
      std::vector<config::diagnostic> diags;
      // The run's CA only when the agent uses TLS (runs without TLS make no keys).
      std::vector<config::diagnostic> scratch;
      const auto client = tls::client_settings_from(cfg.main, scratch);
      const std::string ca_pem = client && client->wants_tls() ? authority().ca_pem() : "";
      const bool ok = delivery::configure_agent_tls(cfg, ao, diags, ca_pem);
      for (const auto& d : diags) {
        if (d.level == config::diagnostic::severity::fatal) {
          fail(where, "valid smtp_tls_* settings", d.to_string());
        }
      }
      if (!ok) return false;
    }
    inc->smtp = std::make_unique<delivery::smtp_agent>(
        ao, *inc->connector, *runtime_, *dns_, *inc->agent_logger,
        [w = &world_](std::size_t bound) {
          return bound == 0 ? 0 : static_cast<std::size_t>(w->random() % bound);
        });
    qmgr::local_options lo;
    lo.mail_spool_directory = r.dir / "mail";
    lo.myhostname = cfg.main.get("myhostname");
    std::error_code ec;
    fs::create_directories(lo.mail_spool_directory, ec);
    inc->local = std::make_unique<qmgr::local_agent>(
        lo, *runtime_, inc->agent_logger.get(),
        log::origin{cfg.main.get("syslog_name"), "local", base_pid + 101});
    auto qo = qmgr::options_from_config(cfg.main, {"smtp", "relay", "local"});
    qo.pid = base_pid + 24;
    qo.gate = gate;
    inc->qmgr = std::make_unique<qmgr::manager>(*inc->spool, *runtime_, *inc->logger,
                                                qmgr::router(std::move(*routing)), qo);
    inc->smtp_handover =
        std::make_unique<handover_agent>(*inc->smtp, *runtime_, agent_handover_delay);
    inc->qmgr->add_transport("smtp", *inc->smtp_handover);
    inc->qmgr->add_transport("relay", *inc->smtp_handover);
    inc->qmgr->add_transport("local", *inc->local);
    inc->qmgr->adopt(report);
    inc->qmgr->start();

    int svc_pid = base_pid + 96;
    for (const auto& svc : cfg.services) {
      smtpd::dependencies deps;
      deps.log = inc->logger.get();
      deps.spool = inc->spool.get();
      deps.sasl = r.sasl;
      deps.wall_clock = clock;
      deps.pid = svc_pid++;
      deps.tls_certificates = r.tls_certificates;
      auto* qm = inc->qmgr.get();
      deps.on_queued = [rp = &r, qm](const std::string& id) {
        rp->accepted.push_back(id);
        qm->notify_new_message(id);
      };
      std::vector<config::diagnostic> diags;
      auto service = smtpd::service::create(cfg, svc, deps, diags);
      for (const auto& d : diags) {
        if (d.level == config::diagnostic::severity::fatal) {
          fail(where, "a valid smtpd service " + svc.name, d.to_string());
        }
      }
      if (!service) return false;
      auto* sp = service.get();
      auto ck = this->clock();
      auto ex = world_.executor();
      net_->listen(r.host, svc.listen_port, [sp, ck, ex](sim::accepted a) {
        std::shared_ptr<sim::socket> sock(std::move(a.stream));
        auto signal = net::make_connection_signal(
            [ex](std::function<void()> f) { asio::post(ex, std::move(f)); });
        smtpd::endpoint remote{a.remote_address, std::to_string(a.remote_port), "unknown"};
        smtpd::endpoint local{a.local_address, std::to_string(a.local_port), "unknown"};
        std::shared_ptr<smtpd::connection> conn = sp->open(remote, local, ck(), signal->notifier());
        if (!conn) return;
        asio::co_spawn(ex, drive_smtpd(sock, conn, signal, ck), asio::detached);
      });
      inc->services.push_back(std::move(service));
    }
    r.live = std::move(inc);
    return true;
  }

  relay_host* relay_on(const std::string& host) {
    for (auto& r : relays_) {
      if (r->host == host) return r.get();
    }
    return nullptr;
  }

  // The host went down: the running incarnation stops where it is (see relay_incarnation) and
  // the disk keeps only what was synced.
  void crash_relay(relay_host& r) {
    if (!r.live) return;
    *r.live->up = false;
    r.live->qmgr->stop();
    for (const auto& svc : r.cfg.services) net_->unlisten(r.host, svc.listen_port);
    r.disk->crash();
    r.down_listing.reset();
    r.crashed.push_back(std::move(r.live));
  }

  // What the host's disk holds now (its durable state while the relay is down).
  void list_queue(relay_host& r, std::vector<queue::queue_entry>& entries) {
    if (r.live) {
      r.live->spool->list(entries);
      return;
    }
    // Nothing writes the disk while the host is down (the crashed incarnation is fenced): read
    // it once.
    if (!r.down_listing) {
      queue::spool view(
          *r.disk, [w = &world_] { return w->wall_now(); }, [] { return std::uint64_t{0}; }, {});
      view.list(r.down_listing.emplace());
    }
    entries = *r.down_listing;
  }

  bool queue_empty() {
    for (const auto& r : relays_) {
      // qmgr first: it is cheap, and busy while mail moves (the listing reads every file).
      if (r->live && !r->live->qmgr->idle()) return false;
      std::vector<queue::queue_entry> entries;
      list_queue(*r, entries);
      if (!entries.empty()) return false;
    }
    return true;
  }

  bool loads_done() const {
    for (const auto& [name, l] : loads_) {
      if (!l->done) return false;
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
        if (st.wait_until == "loads-done") {
          const sim::duration max = st.wait_for.count() > 0 ? sim::duration(st.wait_for) : left;
          run_until([this] { return loads_done(); }, std::min(max, left));
          if (!loads_done()) {
            fail(st.where, "every load to finish within " + ms_text(std::min(max, left)),
                 "a load is still running at " + ms_text(world_.now()));
          }
        } else if (st.wait_until == "queue-empty") {
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
        return start_load(st);
      case topology::step_kind::matrix:
        return run_matrix(st);
    }
  }

  // <matrix>: the relay's policy table from the configuration this scenario runs (overrides
  // applied); no virtual time passes.
  void run_matrix(const topology::step& st) {
    for (const auto& r : relays_) {
      if (r->host != st.matrix.relay) continue;
      const auto* h = doc_.find_host(r->host);
      auto t = run_matrix_step(
          st, r->cfg, h && h->relay ? h->relay->sasl_users : std::vector<topology::sasl_user>{},
          result_.failures);
      if (t) matrices_[st.name] = std::move(*t);
      return;
    }
    fail(st.where, "relay host " + st.matrix.relay + " to be set up", "it is not");
  }

  // Starts the load generator on its host and returns at once: the load goes on while later
  // steps run (its outcome is judged by <expect-load>).
  void start_load(const topology::step& st) {
    const auto& l = st.load;
    fakes::load::load_options o;
    o.host = l.server;
    o.port = l.port;
    o.sessions = static_cast<std::size_t>(std::max<std::uint64_t>(1, l.concurrency));
    o.messages = l.messages;
    o.message_bytes = static_cast<std::size_t>(l.message_bytes);
    o.from = l.from;
    o.to = l.to;
    o.pipelining = l.pipelining;
    if (!l.auth.empty()) {
      o.auth =
          fakes::load::auth_credentials{l.auth == "login" ? "LOGIN" : "PLAIN", l.user, l.password};
    }
    if (!l.tls.empty()) {
      o.tls_use = l.tls == "implicit" ? fakes::load::load_options::tls_mode::implicit
                                      : fakes::load::load_options::tls_mode::starttls;
      tls::client_settings cs;
      cs.level = tls::client_level::encrypt;
      cs.ca_pem = authority().ca_pem();
      std::string error;
      o.tls = tls::client_context::create(cs, error);
      if (!o.tls) {
        fail(st.where, "a TLS client context for the load", error);
        return;
      }
      o.tls_verify = true;
    }
    // Who sends how many: the host, or each host of the group.
    std::vector<std::pair<const std::string*, std::uint64_t>> senders;
    if (l.group.empty()) {
      senders.emplace_back(&l.host, l.messages);
    } else if (const auto* g = doc_.find_group(l.group)) {
      senders.reserve(g->count);
      for (std::size_t i = 0; i < g->count; ++i) {
        const std::uint64_t n =
            l.per_host ? l.messages : l.messages / g->count + (i < l.messages % g->count);
        if (n > 0) senders.emplace_back(&doc_.hosts[g->first + i].net.name, n);
      }
    }
    auto sum = std::make_shared<load_sum>();
    sum->out = std::make_shared<load_outcome>();
    sum->pending = senders.size();
    sum->out->done = senders.empty();
    const std::string key = st.name.empty() ? "#" + std::to_string(loads_.size()) : st.name;
    loads_.emplace_back(key, sum->out);
    for (const auto& [host, messages] : senders) {
      auto mine = o;
      mine.messages = messages;
      mine.helo_name = *host;
      load_connectors_.push_back(std::make_unique<sim::host_connector>(*net_, *host));
      asio::co_spawn(world_.executor(),
                     run_load_task(std::move(mine), *load_connectors_.back(), *runtime_, sum),
                     asio::detached);
    }
    // For `relaylab draw`: a group's hop starts at its first host.
    if (!senders.empty()) {
      result_.path.push_back(
          {*senders.front().first, host_at(l.server), std::to_string(l.port) + " load", false});
    }
  }

  void run_send(const topology::step& st, sim::duration left) {
    const auto& s = st.send;
    fakes::client::mailx_settings settings;
    const bool v6 = s.server.find(':') != std::string::npos;
    settings.set(std::string(s.tls == "implicit" ? "smtp=smtps://" : "smtp=smtp://") +
                 (v6 ? "[" + s.server + "]" : s.server) + ":" + std::to_string(s.port));
    if (s.tls == "starttls") settings.set("smtp-use-starttls");
    if (!s.tls.empty()) {
      settings.set("ssl-verify=" + s.tls_verify);
      settings.set("ssl-ca-file=" + authority_file());
    }
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
    const auto& tls_state = out->result.tls;
    if (!s.expect_tls.empty() && !tls_matches(s.expect_tls, tls_state)) {
      fail(st.where, "a session with TLS " + s.expect_tls,
           tls_state ? tls::describe(*tls_state) : std::string("no TLS"));
    }
  }

  // The host holding an address: a map built on first use (trace_deliveries asks once per
  // delivery line, and a topology at scale has 10,000 hosts: a scan each time was
  // messages x hosts).
  std::string host_at(const std::string& address) {
    if (hosts_by_address_.empty()) {
      for (const auto& h : doc_.hosts) {
        for (const auto* a : {&h.net.ipv4, &h.net.public_ipv4, &h.net.ipv6}) {
          if (!a->empty()) hosts_by_address_.emplace(*a, h.net.name);  // the first one wins
        }
      }
    }
    const auto it = hosts_by_address_.find(address);
    return it == hosts_by_address_.end() ? "" : it->second;
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
        if (auto* r = relay_on(f.target); r && !ec) crash_relay(*r);
        break;
      case topology::fault_kind::restart:
        ec = net_->restart_host(f.target);
        if (auto* r = relay_on(f.target); r && !ec && !r->live) boot_relay(*r, st.where);
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
    const auto lines = sink_.lines();
    queue_counts counts;
    bool counted = false;
    observed o{
        lines,
        [this](const std::string& host) -> const fakes::mx::server* {
          for (const auto& m : mxs_) {
            if (m->host == host) return m->server.get();
          }
          return nullptr;
        },
        [&]() -> queue_counts {
          if (counted) return counts;
          counted = true;
          for (const auto& r : relays_) {
            std::vector<queue::queue_entry> entries;
            list_queue(*r, entries);
            for (const auto& e : entries) {
              counts.incoming += e.state == queue::queue_state::incoming;
              counts.active += e.state == queue::queue_state::active;
              counts.deferred += e.state == queue::queue_state::deferred;
            }
          }
          return counts;
        },
        [this](const std::string& step) -> const load_outcome* {
          for (const auto& [name, l] : loads_) {
            if (name == step) return l.get();
          }
          return nullptr;
        },
        step_times_,
        world_.now(),
    };
    if (x.kind == topology::expect_kind::matrix_cell) {
      const auto it = matrices_.find(x.step);
      judge_matrix_cell(x, it == matrices_.end() ? nullptr : &it->second, result_.failures);
      return;
    }
    judge(x, o, result_.failures);
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

  // Checkers: judge what the simulation left, independently of the expectations. Every message
  // smtpd committed (the 250 comes after the commit) was delivered or bounced and then removed,
  // or is still queued (on the disk of a relay that is down). No recipient is logged as sent
  // twice. Tolerated: after a crash between an MX's 250 and the durable done mark, the next boot
  // delivers that recipient again (at-least-once); the MX then holds two copies, but the log
  // gate dropped the first "status=sent" line with the mark, so the log still shows one.
  void check_invariants() {
    const auto lines = sink_.lines();
    for (const auto& r : relays_) {
      std::vector<queue::queue_entry> entries;
      list_queue(*r, entries);
      std::set<std::string> queued;
      for (const auto& e : entries) queued.insert(e.queue_id);
      for (auto& f : check_accepted_mail(lines, r->accepted, queued))
        fail(sc_.where, std::move(f.expected), std::move(f.got));
    }
  }

  void teardown() {
    for (auto& r : relays_) {
      if (r->live) r->live->qmgr->stop();
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
  std::unique_ptr<tls::authority> ca_;  // see authority()
  std::string ca_file_;
  std::unique_ptr<sim::network> net_;
  std::shared_ptr<sim::sim_runtime> runtime_;
  std::unique_ptr<fakes::dns::fake_resolver> dns_;
  std::vector<std::unique_ptr<mx_host>> mxs_;
  std::vector<std::unique_ptr<relay_host>> relays_;
  std::map<std::string, matrix::table> matrices_;  // <matrix> step name -> its table
  std::vector<std::unique_ptr<sim::host_connector>> load_connectors_;
  std::vector<std::pair<std::string, std::shared_ptr<load_outcome>>> loads_;  // by step name
  std::vector<std::shared_ptr<sasl::server_library>> sasl_libs_;
  std::map<std::string, std::chrono::nanoseconds> step_times_;
  std::map<std::string, std::string> hosts_by_address_;  // see host_at()
  scenario_result result_;
};

}  // namespace

scenario_result run_scenario(const topology::document& doc, const topology::scenario& sc,
                             std::uint64_t seed, const run_options& options) {
  scenario_run run(doc, sc, seed, options);
  return run.run();
}

}  // namespace relaylab::runner
