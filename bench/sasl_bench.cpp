// AUTH through the real libsasl2 and its sasldb auxprop plugin (relay/sasl), with a sasldb in a
// scratch directory written by relay/sasl's set_sasldb_password (the saslpasswd2 format).
//
// To show the sasldb plugin's share of an AUTH, the same libsasl2 configuration is measured
// four ways: a whole AUTH PLAIN (fresh handle + PLAIN mechanism + two sasldb lookups), the
// password check alone (sasl_checkpass: one auxprop lookup and compare, no mechanism), the
// per-connection handle alone (sasl_server_new), and all of them against a one-user and a
// large sasldb (the plugin opens the Berkeley DB file on every lookup).
//
// The sasldb is read by relaylab's reader (relay/sasl/sasldb_reader.cpp: the Berkeley DB stays
// open while the file is unchanged) unless RELAYLAB_BENCH_SASL_READER=cyrus selects libsasl2's
// own sasldb plugin. Running both shows what the plugin costs.
#include "bench/bench_support.hpp"
#include "relay/sasl/sasl.hpp"

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace relaylab::bench {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view bench_user = "smtp-auth";
constexpr std::string_view bench_realm = "example.com";
constexpr std::string_view bench_password = "secret-pw";

/// Users in the "large" sasldb; RELAYLAB_BENCH_SASLDB_USERS overrides (the smoke test uses a
/// small number to stay quick).
std::size_t large_users() {
  if (const char* v = std::getenv("RELAYLAB_BENCH_SASLDB_USERS"); v != nullptr && *v != '\0')
    return static_cast<std::size_t>(std::strtoull(v, nullptr, 10));
  return 10000;
}

/// "relaylab" (default) or "cyrus": which code reads the sasldb (one per process).
bool cyrus_reader() {
  const char* v = std::getenv("RELAYLAB_BENCH_SASL_READER");
  return v != nullptr && std::string_view(v) == "cyrus";
}

/// One libsasl2 initialisation per process (libsasl2 reads one smtpd.conf per process). The
/// configured sasldb_path is a symlink that use_db() points at the tiny or the large file:
/// the plugin opens the file per lookup, so the switch takes effect at once.
class sasl_world {
 public:
  static sasl_world& get() {
    static sasl_world w;
    return w;
  }

  enum class db { tiny, large };

  /// Errors: returns false with `error` set.
  bool use_db(db which, std::string& error) {
    if (ok_ && which == db::large && !large_made_) large_made_ = make_large();
    if (!ok_ || (which == db::large && !large_made_)) {
      error = error_;
      return false;
    }
    const fs::path target = dir_.path() / (which == db::tiny ? "tiny.db" : "large.db");
    const fs::path tmp = dir_.path() / "sasldb2.new";
    std::error_code ec;
    fs::remove(tmp, ec);
    fs::create_symlink(target, tmp, ec);
    if (!ec) fs::rename(tmp, link_, ec);
    if (ec) {
      error = "cannot point " + link_.string() + " at " + target.string() + ": " + ec.message();
      return false;
    }
    return true;
  }

  std::shared_ptr<sasl::server_library> library() const { return lib_; }
  std::uintmax_t db_bytes(db which) const {
    std::error_code ec;
    auto n = fs::file_size(dir_.path() / (which == db::tiny ? "tiny.db" : "large.db"), ec);
    return ec ? 0 : n;
  }

 private:
  sasl_world() : dir_("sasl"), link_(dir_.path() / "sasldb2") {
    std::ofstream(dir_.path() / "smtpd.conf")
        << "pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
        << "sasldb_path: " << link_.string() << "\n";
    sasl::server_config c;
    c.config_path = dir_.path().string();
    c.server_fqdn = "relay.example.com";
    c.keep_sasldb_open = !cyrus_reader();
    lib_ = sasl::server_library::init(c, error_);
    if (!lib_) return;
    const std::string tiny = (dir_.path() / "tiny.db").string();
    if (!sasl::set_sasldb_password(tiny, bench_user, bench_realm, bench_password, error_)) return;
    ok_ = true;
  }

  /// Made on first use: libsasl2's store syncs the file per user (about 10 ms each here).
  bool make_large() {
    const std::string large = (dir_.path() / "large.db").string();
    // The bench user sits in the middle of the large file's insertion order.
    const std::size_t n = large_users();
    for (std::size_t i = 0; i <= n; ++i) {
      if (i == n / 2 &&
          !sasl::set_sasldb_password(large, bench_user, bench_realm, bench_password, error_)) {
        return false;
      }
      if (i < n && !sasl::set_sasldb_password(large, "user" + std::to_string(i), bench_realm,
                                              "password-" + std::to_string(i), error_)) {
        return false;
      }
    }
    return true;
  }

  scratch_dir dir_;
  fs::path link_;
  std::shared_ptr<sasl::server_library> lib_;
  std::string error_;
  bool ok_ = false;
  bool large_made_ = false;
};

std::string plain_response(std::string_view password) {
  std::string r;
  r += '\0';
  r += bench_user;
  r += '@';
  r += bench_realm;
  r += '\0';
  r += password;
  return r;
}

sasl_world::db db_arg(const benchmark::State& state) {
  return state.range(0) == 0 ? sasl_world::db::tiny : sasl_world::db::large;
}

void label_db(benchmark::State& state) {
  const auto which = db_arg(state);
  state.SetLabel(std::string(cyrus_reader() ? "cyrus reader, " : "relaylab reader, ") +
                 (which == sasl_world::db::tiny
                      ? "sasldb: 1 user"
                      : "sasldb: " + std::to_string(large_users() + 1) + " users"));
  state.counters["sasldb_bytes"] =
      benchmark::Counter(static_cast<double>(sasl_world::get().db_bytes(which)));
}

std::unique_ptr<sasl::server_session> new_session(benchmark::State& state) {
  std::string error;
  if (!sasl_world::get().use_db(db_arg(state), error)) {
    fail(state, error);
    return nullptr;
  }
  auto s = sasl::server_session::create(sasl_world::get().library(), "192.0.2.1;587",
                                        "203.0.113.9;40000", error);
  if (!s) fail(state, error);
  return s;
}

/// A whole AUTH PLAIN with an initial response, as smtpd does it: a fresh libsasl2 handle
/// (sasl_dispose + sasl_server_new), then sasl_server_start with PLAIN, which looks the user up
/// in sasldb (userPassword, cmusaslsecretPLAIN) and canonicalises the authorization identity.
void BM_sasl_auth_plain(benchmark::State& state) {
  auto s = new_session(state);
  if (!s) return;
  const std::string good = plain_response(bench_password);
  for (auto _ : state) {
    sasl::step_result r = s->start("PLAIN", good);
    if (r.state != sasl::step_result::status::success) {
      fail(state, "AUTH PLAIN failed: " + r.reason);
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  label_db(state);
}
BENCHMARK(BM_sasl_auth_plain)->ArgName("large_db")->Arg(0)->Arg(1);

/// The same with a wrong password: libsasl2 logs "Password verification failed".
void BM_sasl_auth_plain_wrong_password(benchmark::State& state) {
  auto s = new_session(state);
  if (!s) return;
  const std::string bad = plain_response("wrong-pw!");
  for (auto _ : state) {
    sasl::step_result r = s->start("PLAIN", bad);
    if (r.state != sasl::step_result::status::failure) {
      fail(state, "AUTH PLAIN with a wrong password did not fail");
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  label_db(state);
}
BENCHMARK(BM_sasl_auth_plain_wrong_password)->ArgName("large_db")->Arg(0)->Arg(1);

/// The password store alone: sasl_checkpass on a live handle (auxprop sasldb lookup and
/// compare), no mechanism and no new handle. Subtract from BM_sasl_auth_plain to see what the
/// PLAIN mechanism, the handle and the second lookup cost.
void BM_sasl_check_password(benchmark::State& state) {
  auto s = new_session(state);
  if (!s) return;
  const std::string user = std::string(bench_user) + "@" + std::string(bench_realm);
  for (auto _ : state) {
    sasl::step_result r = s->check_password(user, bench_password);
    if (r.state != sasl::step_result::status::success) {
      fail(state, "sasl_checkpass failed: " + r.reason);
      break;
    }
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  label_db(state);
}
BENCHMARK(BM_sasl_check_password)->ArgName("large_db")->Arg(0)->Arg(1);

/// The per-connection handle: sasl_server_new + sasl_setprop + sasl_dispose (smtpd makes one
/// per connection and one more per AUTH command). No sasldb access.
void BM_sasl_session_new(benchmark::State& state) {
  std::string error;
  auto lib = sasl_world::get().library();
  if (!lib) {
    sasl_world::get().use_db(sasl_world::db::tiny, error);
    fail(state, "no SASL library: " + error);
    return;
  }
  for (auto _ : state) {
    auto s = sasl::server_session::create(lib, "192.0.2.1;587", "203.0.113.9;40000", error);
    if (!s) {
      fail(state, error);
      break;
    }
    benchmark::DoNotOptimize(s.get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_sasl_session_new);

}  // namespace
}  // namespace relaylab::bench
