// Whole SMTP transactions through the relay application (relay/smtpd): the real engine,
// policy, libsasl2 with a sasldb, logging (lines formatted, then dropped) and the spool over
// mem_storage with immediate commit. No sockets: bytes go in through session().receive().
// Also the memory an idle connection holds after the greeting.
#include "bench/bench_support.hpp"
#include "relay/log/log.hpp"
#include "relay/queue/spool.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtp/base64.hpp"
#include "relay/smtpd/smtpd.hpp"

#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace relaylab::bench {
namespace {

namespace fs = std::filesystem;

std::chrono::system_clock::time_point fixed_time() {
  return std::chrono::system_clock::time_point(std::chrono::seconds(1795841628));
}

/// Formats each line as the maillog file sink would, then forgets it.
class discard_sink final : public log::sink {
 public:
  void write(const log::record& r) override {
    line_ = log::format_line(r, true);
    bytes_ += line_.size();
  }
  void flush() override {}

 private:
  std::string line_;
  std::uint64_t bytes_ = 0;
};

/// libsasl2 is initialised once per process: one sasl directory serves every benchmark.
struct sasl_setup {
  scratch_dir dir{"smtpd-sasl"};
  std::shared_ptr<sasl::server_library> lib;
  std::string error;

  sasl_setup() {
    const std::string db = (dir.path() / "sasldb2").string();
    if (!sasl::set_sasldb_password(db, "smtp-auth", "example.com", "secret-pw", error)) return;
    std::ofstream(dir.path() / "smtpd.conf")
        << "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
        << "sasldb_path: " << db << "\n";
    sasl::server_config c;
    c.config_path = dir.path().string();
    c.server_fqdn = "relay.example.com";
    lib = sasl::server_library::init(c, error);
  }
};

sasl_setup& sasl_world() {
  static sasl_setup s;
  return s;
}

/// The seed tutorial's relay: port 25 for mynetworks, submission with AUTH required. The
/// submission service also gets the tutorial's fix (permit_sasl_authenticated before
/// reject_unauth_destination) so that authenticated relaying is accepted.
class relay {
 public:
  explicit relay(bool sasl_enable) {
    config::host_environment env;
    env.hostname = "relay.example.com";
    cfg_.main = config::parameters(env);
    cfg_.main.set("myhostname", "relay.example.com");
    cfg_.main.set("mydomain", "example.com");
    cfg_.main.set("compatibility_level", "3.6");
    cfg_.main.set("smtpd_banner", "$myhostname ESMTP $mail_name (Debian/GNU)");
    cfg_.main.set("mydestination", "$myhostname, localhost.$mydomain, localhost");
    cfg_.main.set("mynetworks", "127.0.0.0/8 [::1]/128");
    cfg_.main.set("local_recipient_maps", "inline:{ alice=ok, postmaster=ok }");
    cfg_.main.set("smtpd_recipient_restrictions", "permit_mynetworks, reject_unauth_destination");
    cfg_.main.set("smtpd_sasl_auth_enable", sasl_enable ? "yes" : "no");
    smtp_.name = "smtp";
    smtp_.type = "inet";
    smtp_.command = "smtpd";
    smtp_.listen_port = 25;
    submission_ = smtp_;
    submission_.name = "submission";
    submission_.listen_port = 587;
    submission_.overrides = {
        {"smtpd_client_restrictions", "permit_sasl_authenticated,reject"},
        {"smtpd_recipient_restrictions",
         "permit_mynetworks,permit_sasl_authenticated,reject_unauth_destination"}};

    log_ = std::make_unique<log::logger>(log::logger_options{"relay.example.com", fixed_time});
    log_->add_sink(std::make_unique<discard_sink>());
    queue::spool_options so;
    so.mode = queue::commit_mode::immediate;
    // Queue IDs come from the clock: let it advance so IDs never run out.
    auto tick = std::make_shared<std::int64_t>(0);
    spool_ = std::make_unique<queue::spool>(
        storage_, [tick] { return fixed_time() + std::chrono::microseconds(++*tick); },
        [n = std::uint64_t{0}]() mutable { return ++n; }, so);
    if (auto ec = spool_->open()) error_ = "spool open: " + ec.message();
  }

  /// Null with `error()` set on failure.
  std::unique_ptr<smtpd::service> make(const config::master_service& def) {
    if (!error_.empty()) return nullptr;
    smtpd::dependencies deps;
    deps.log = log_.get();
    deps.spool = spool_.get();
    deps.sasl = sasl_world().lib;
    if (!deps.sasl) {
      error_ = "SASL: " + sasl_world().error;
      return nullptr;
    }
    deps.wall_clock = fixed_time;
    deps.pid = 4242;
    std::vector<config::diagnostic> diags;
    auto svc = smtpd::service::create(cfg_, def, deps, diags);
    for (auto& d : diags) error_ += d.to_string() + "; ";
    return svc;
  }

  const config::master_service& smtp() const { return smtp_; }
  const config::master_service& submission() const { return submission_; }
  queue::spool& spool() { return *spool_; }
  const std::string& error() const { return error_; }

 private:
  config::configuration cfg_;
  config::master_service smtp_, submission_;
  queue::mem_storage storage_;
  std::unique_ptr<queue::spool> spool_;
  std::unique_ptr<log::logger> log_;
  std::string error_;
};

/// One client connection driven in lock-step (one command, then its reply), as mailx does.
struct client {
  std::unique_ptr<smtpd::connection> conn;
  int notified = 0;
  smtp::timestamp now{};
  std::string out;

  void open(smtpd::service& svc, const std::string& addr, int port) {
    smtpd::endpoint remote{addr, "40000", "unknown"};
    smtpd::endpoint local{"192.0.2.1", std::to_string(port), "relay.example.com"};
    notified = 0;
    conn = svc.open(remote, local, now, [this] { ++notified; });
    take();
  }
  /// Sends bytes; `out` gets every reply they produced.
  const std::string& send(std::string_view bytes) {
    conn->session().receive(std::span<const char>(bytes.data(), bytes.size()), now);
    for (int i = 0; i < 4 && notified > 0; ++i) {
      notified = 0;
      conn->run_pending(now);
    }
    return take();
  }
  const std::string& take() {
    out.assign(conn->session().output());
    conn->session().consume_output(out.size());
    return out;
  }
};

std::string message_1k() {
  std::string m =
      "From: hogehoge@fugafuga.com\r\nTo: friend@gmail.com\r\nSubject: smtp-handson\r\n"
      "Message-ID: <bench.1@fugafuga.com>\r\nDate: Sat, 28 Nov 2026 04:57:30 +0000\r\n\r\n";
  std::string line;
  for (int i = 0; i < 70; ++i) line += static_cast<char>('a' + i % 26);
  line += "\r\n";
  while (m.size() + line.size() <= 1024) m += line;
  return m + ".\r\n";
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

/// One whole connection per iteration: connect (greeting), EHLO, [AUTH PLAIN], MAIL, RCPT,
/// DATA, 1 KiB of content, QUIT; every reply checked by its first bytes. Accepted messages are
/// removed from the spool every 64 transactions outside the timed region (mem_storage::sync_dir
/// copies the whole directory map, so a backlog would make every commit slower).
void run_transactions(benchmark::State& state, bool with_auth) {
  relay r(true);
  auto svc = r.make(with_auth ? r.submission() : r.smtp());
  if (!svc) {
    fail(state, "service: " + r.error());
    return;
  }
  const std::string addr = with_auth ? "203.0.113.9" : "127.0.0.1";
  const std::string auth =
      "AUTH PLAIN " + smtp::base64_encode(std::string("\0smtp-auth@example.com\0secret-pw", 32)) +
      "\r\n";
  const std::string message = message_1k();
  std::vector<std::string> queued;
  client c;
  auto expect = [&](std::string_view reply, std::string_view prefix, const char* step) {
    if (starts_with(reply, prefix)) return true;
    fail(state, std::string(step) + ": unexpected reply: " + std::string(reply));
    return false;
  };
  for (auto _ : state) {
    c.open(*svc, addr, with_auth ? 587 : 25);
    if (!expect(c.out, "220 ", "greeting")) break;
    if (!expect(c.send("EHLO client.example.net\r\n"), "250-", "EHLO")) break;
    if (with_auth && !expect(c.send(auth), "235 ", "AUTH")) break;
    if (!expect(c.send("MAIL FROM:<hogehoge@fugafuga.com>\r\n"), "250 ", "MAIL")) break;
    if (!expect(c.send("RCPT TO:<friend@gmail.com>\r\n"), "250 ", "RCPT")) break;
    if (!expect(c.send("DATA\r\n"), "354 ", "DATA")) break;
    if (!expect(c.send(message), "250 2.0.0 Ok: queued as ", "end of DATA")) break;
    queued.push_back(c.out.substr(24, c.out.size() - 26));
    if (!expect(c.send("QUIT\r\n"), "221 ", "QUIT")) break;
    c.conn.reset();
    if (queued.size() == 64) {
      state.PauseTiming();
      for (auto& id : queued) (void)r.spool().remove(id);
      queued.clear();
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(with_auth ? "submission: EHLO AUTH MAIL RCPT DATA(1 KiB) QUIT"
                           : "smtp from mynetworks: EHLO MAIL RCPT DATA(1 KiB) QUIT");
}

void BM_smtpd_transaction_auth(benchmark::State& state) { run_transactions(state, true); }
BENCHMARK(BM_smtpd_transaction_auth);

void BM_smtpd_transaction_noauth(benchmark::State& state) { run_transactions(state, false); }
BENCHMARK(BM_smtpd_transaction_noauth);

struct memory_snapshot {
  std::size_t heap_bytes = 0;  // mallinfo2: bytes in use (arena + mmapped)
  std::size_t rss_bytes = 0;   // /proc/self/statm resident pages
};

memory_snapshot snapshot() {
  memory_snapshot s;
  const struct mallinfo2 mi = ::mallinfo2();
  s.heap_bytes = mi.uordblks + mi.hblkhd;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    unsigned long size = 0, resident = 0;
    if (std::fscanf(f, "%lu %lu", &size, &resident) == 2)
      s.rss_bytes = resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    std::fclose(f);
  }
  return s;
}

/// Memory per idle connection: 10,000 connections opened (greeting queued and taken), nothing
/// else sent. With smtpd_sasl_auth_enable=yes each holds a libsasl2 handle too.
void BM_smtpd_idle_sessions(benchmark::State& state) {
  const bool sasl_enable = state.range(0) != 0;
  constexpr std::size_t sessions = 10000;
  relay r(sasl_enable);
  auto svc = r.make(r.smtp());
  if (!svc) {
    fail(state, "service: " + r.error());
    return;
  }
  std::vector<client> clients(sessions);
  memory_snapshot before{}, after{};
  for (auto _ : state) {
    ::malloc_trim(0);  // hand freed pages back first, so the RSS delta is the sessions'
    before = snapshot();
    for (std::size_t i = 0; i < sessions; ++i) {
      clients[i].open(*svc, "198.51.100." + std::to_string(1 + i % 250), 25);
      if (!starts_with(clients[i].out, "220 ")) {
        fail(state, "greeting: " + clients[i].out);
        return;
      }
      clients[i].out = std::string();  // keep only what the connection itself holds
    }
    after = snapshot();
    state.PauseTiming();
    for (auto& c : clients) c.conn.reset();
    state.ResumeTiming();
  }
  const double n = static_cast<double>(sessions);
  state.counters["sessions"] = benchmark::Counter(n);
  state.counters["heap_bytes_per_session"] =
      benchmark::Counter((static_cast<double>(after.heap_bytes) - before.heap_bytes) / n);
  state.counters["rss_bytes_per_session"] =
      benchmark::Counter((static_cast<double>(after.rss_bytes) - before.rss_bytes) / n);
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(sessions));
  state.SetLabel(sasl_enable ? "smtpd_sasl_auth_enable=yes (seed)" : "smtpd_sasl_auth_enable=no");
}
BENCHMARK(BM_smtpd_idle_sessions)->ArgName("sasl")->Arg(1)->Arg(0)->Iterations(1);

}  // namespace
}  // namespace relaylab::bench
