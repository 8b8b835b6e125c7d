// Policy evaluation per RCPT (relay/policy): the seed tutorial's restrictions, and a larger
// configuration with texthash and cidr access tables. Each check_rcpt() runs every stage that
// smtpd_delay_reject=yes puts at RCPT time (client, helo, sender, relay, recipient).
#include "bench/bench_support.hpp"
#include "relay/policy/policy.hpp"

#include <benchmark/benchmark.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace relaylab::bench {
namespace {

constexpr int table_entries = 10000;  // texthash keys in the large configuration
constexpr int cidr_rules = 1000;      // cidr rules (Postfix scans them in order)

config::parameters seed_parameters() {
  config::host_environment env;
  env.hostname = "relay.example.com";
  config::parameters p(env);
  p.set("myhostname", "relay.example.com");
  p.set("mydomain", "example.com");
  p.set("compatibility_level", "3.6");
  p.set("mydestination", "$myhostname, localhost.$mydomain, localhost");
  p.set("mynetworks", "127.0.0.0/8 10.0.0.0/16 [::1]/128");
  p.set("smtpd_sasl_auth_enable", "yes");
  // Local users without reading /etc/passwd (Postfix's default is unix:passwd.byname).
  p.set("local_recipient_maps", "inline:{ alice=ok, postmaster=ok }");
  // The seed's main.cf line (smtpd_relay_restrictions keeps its 3.6 default).
  p.set("smtpd_recipient_restrictions", "permit_mynetworks, reject_unauth_destination");
  return p;
}

/// Files for the large configuration, written once per process.
struct large_tables {
  scratch_dir dir{"policy"};
  std::string recipients, senders, clients;

  large_tables() {
    recipients = (dir.path() / "recipient_access").string();
    senders = (dir.path() / "sender_access").string();
    clients = (dir.path() / "client_access.cidr").string();
    std::ofstream r(recipients), s(senders), c(clients);
    for (int i = 0; i < table_entries; ++i) {
      r << "user" << i << "@customer" << i % 500 << ".example REJECT mailbox closed\n";
      s << "spammer" << i << "@bulk" << i % 300 << ".example REJECT\n";
    }
    r << "blocked.example REJECT domain blocked\n";
    // Rules that the benchmark clients do not match, so every lookup scans them all.
    for (int i = 0; i < cidr_rules; ++i) {
      c << "198." << 18 + i / 256 % 2 << "." << i % 256 << ".0/24 REJECT listed\n";
    }
    c << "203.0.113.0/24 OK\n";
  }
};

large_tables& tables() {
  static large_tables t;
  return t;
}

config::parameters large_parameters() {
  config::parameters p = seed_parameters();
  auto& t = tables();
  p.set("relay_domains", "relay.example.org, partner.example, customer1.example");
  p.set("smtpd_client_restrictions", "check_client_access cidr:" + t.clients);
  p.set("smtpd_helo_restrictions",
        "permit_mynetworks, reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname");
  p.set("smtpd_sender_restrictions",
        "reject_non_fqdn_sender, check_sender_access texthash:" + t.senders);
  p.set("smtpd_relay_restrictions",
        "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination");
  p.set("smtpd_recipient_restrictions",
        "reject_non_fqdn_recipient, check_recipient_access texthash:" + t.recipients +
            ", check_client_access cidr:" + t.clients +
            ", permit_mynetworks, reject_unauth_destination");
  return p;
}

struct rcpt_case {
  const char* label;
  const char* client_addr;
  const char* recipient;
  const char* sasl_username;
  bool rejected;  // expected outcome, checked on the first call
};

// Seed configuration cases: inside mynetworks, outside to a local domain, outside relaying
// (the seed's "Relay access denied"), and an authenticated outside client (also denied by the
// seed's recipient restrictions: the tutorial's bug).
const rcpt_case seed_cases[] = {
    {"mynetworks client, remote rcpt: permit", "10.0.1.5", "friend@gmail.com", "", false},
    {"outside client, local rcpt: permit", "198.51.100.7", "alice@relay.example.com", "", false},
    {"outside client, remote rcpt: Relay access denied", "198.51.100.7", "friend@gmail.com", "",
     true},
    {"sasl client, remote rcpt: Relay access denied (seed bug)", "198.51.100.7", "friend@gmail.com",
     "smtp-auth@example.com", true},
};

// Large configuration cases: every check runs (cidr scan of 1000 rules twice, texthash partial
// keys for sender and recipient) before the outcome.
const rcpt_case large_cases[] = {
    {"outside client, relay_domains rcpt: permit", "198.51.100.7", "bob@customer1.example", "",
     false},
    {"outside client, rcpt in texthash: reject", "198.51.100.7", "user1@customer1.example", "",
     true},
    {"outside client, remote rcpt: Relay access denied", "198.51.100.7", "friend@gmail.com", "",
     true},
    {"mynetworks client, remote rcpt: permit", "10.0.1.5", "friend@gmail.com", "", false},
};

void run_rcpt(benchmark::State& state, const config::parameters& params, const rcpt_case& c) {
  std::vector<config::diagnostic> diags;
  auto compiled = policy::engine::create(params, diags);
  if (!compiled) {
    std::string why = "policy::engine::create failed";
    for (auto& d : diags) why += "; " + d.to_string();
    fail(state, why);
    return;
  }
  auto engine = compiled->new_session();
  if (!engine) engine = std::move(compiled);
  policy::session_state s;
  s.client_name = "client.example.net";
  s.client_addr = c.client_addr;
  s.client_port = "40000";
  s.helo_name = "client.example.net";
  s.protocol = "ESMTP";
  s.sender = "hogehoge@fugafuga.com";
  s.in_transaction = true;
  s.recipient = c.recipient;
  if (*c.sasl_username != '\0') {
    s.sasl_method = "PLAIN";
    s.sasl_username = c.sasl_username;
  }
  auto first = engine->check_rcpt(s);
  if (first.has_value() != c.rejected) {
    fail(state, std::string("unexpected outcome for ") + c.label + ": " +
                    (first ? first->reply : std::string("no rejection")));
    return;
  }
  for (auto _ : state) {
    auto r = engine->check_rcpt(s);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(c.label) + (first ? " [" + first->reply + "]" : std::string()));
}

void BM_policy_rcpt_seed(benchmark::State& state) {
  run_rcpt(state, seed_parameters(), seed_cases[state.range(0)]);
}
BENCHMARK(BM_policy_rcpt_seed)->ArgName("case")->DenseRange(0, 3);

void BM_policy_rcpt_large(benchmark::State& state) {
  run_rcpt(state, large_parameters(), large_cases[state.range(0)]);
}
BENCHMARK(BM_policy_rcpt_large)->ArgName("case")->DenseRange(0, 3);

/// Per connection: policy::engine::new_session() (smtpd makes one per connection).
void BM_policy_new_session(benchmark::State& state) {
  std::vector<config::diagnostic> diags;
  auto compiled = policy::engine::create(large_parameters(), diags);
  if (!compiled) {
    fail(state, "policy::engine::create failed");
    return;
  }
  for (auto _ : state) {
    auto e = compiled->new_session();
    benchmark::DoNotOptimize(e.get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_policy_new_session);

}  // namespace
}  // namespace relaylab::bench
