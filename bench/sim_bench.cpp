// The simulation's speed: whole scenarios through harness/runner, the real relay (smtpd with
// libsasl2 and a sasldb, queue, qmgr, SMTP delivery agent) inside harness/sim with fake MX and
// DNS on virtual time. A handson-like topology: a client in a private subnet sends N messages
// with AUTH PLAIN on 587 to the relay in the public subnet, which delivers each to a fake MX on
// the internet (IPv6 address unreachable first, then IPv4, as in the seed).
//
// items_per_second: messages relayed end to end per wall-second (each is two SMTP
// transactions: client → relay with AUTH, relay → MX); counters give SMTP transactions,
// virtual seconds and simulation events per wall-second. Per-iteration setup (world, relay
// configuration, SASL, the sasldb write) is included: it is part of every scenario run.
#include "bench/bench_support.hpp"
#include "harness/runner/runner.hpp"
#include "harness/sweep/sweep.hpp"
#include "harness/topology/topology.hpp"

#include <benchmark/benchmark.h>

#include <chrono>
#include <sstream>
#include <string>

namespace relaylab::bench {
namespace {

std::string topology_xml(std::int64_t messages) {
  std::ostringstream o;
  o << R"(<?xml version="1.0" encoding="UTF-8"?>
<topology xmlns="urn:relaylab:topology:1" name="sim-bench" seed="1">
  <internet latency="15ms" jitter="2ms"/>
  <vpc name="vpc" cidr="192.168.0.0/16">
    <internet-gateway name="igw"/>
    <route-table name="rt-public">
      <route destination="192.168.0.0/16" target="local"/>
      <route destination="0.0.0.0/0" target="igw"/>
    </route-table>
    <route-table name="rt-private">
      <route destination="192.168.0.0/16" target="local"/>
    </route-table>
    <security-group name="sg-relay">
      <ingress protocol="tcp" ports="587" cidr="0.0.0.0/0"/>
      <egress protocol="all" cidr="0.0.0.0/0"/>
    </security-group>
    <subnet name="public" cidr="192.168.2.0/24" route-table="rt-public" latency="100us"/>
    <subnet name="private" cidr="192.168.3.0/24" route-table="rt-private" latency="100us"/>
  </vpc>
  <dns>
    <zone>
      gmail.com MX 5 aspmx.l.google.com
      aspmx.l.google.com AAAA 2404:6800:4008:c07::1a
      aspmx.l.google.com A 108.177.97.26
    </zone>
  </dns>
  <host name="relay" subnet="public" ipv4="192.168.2.44" public-ipv4="203.0.113.44"
        security-groups="sg-relay">
    <relay>
      <main-cf>
        compatibility_level = 3.6
        myhostname = ip-192-168-2-44.ap-northeast-1.compute.internal
        mydomain = example.com
        mydestination = $myhostname, localhost.$mydomain, localhost
        mynetworks = 127.0.0.0/8
        smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
        smtpd_sasl_auth_enable = yes
      </main-cf>
      <master-cf>
        submission inet n       -       n       -       -       smtpd
          -o smtpd_client_restrictions=permit_sasl_authenticated,reject
          -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
      </master-cf>
      <smtpd-conf>
        pwcheck_method: auxprop
        mech_list: PLAIN
      </smtpd-conf>
      <sasl-user name="smtp-auth" realm="example.com" password="bench-pass"/>
    </relay>
  </host>
  <host name="client" subnet="private" ipv4="192.168.3.10"><client/></host>
  <host name="aspmx.l.google.com" ipv4="108.177.97.26" ipv6="2404:6800:4008:c07::1a"
        latency="5ms">
    <mx port="25"/>
  </host>
  <scenario name="relay-auth-587">
)";
  for (std::int64_t i = 0; i < messages; ++i) {
    o << "    <send host=\"client\" server=\"192.168.2.44\" port=\"587\" "
         "from=\"hogehoge@fugafuga.com\" to=\"r"
      << i % 10 << "@gmail.com\" subject=\"bench " << i
      << "\" body=\"smtp-handson\" auth=\"plain\" user=\"smtp-auth@example.com\" "
         "password=\"bench-pass\"/>\n";
  }
  o << "    <wait until=\"queue-empty\" for=\"1h\"/>\n"
    << "    <expect-mailbox host=\"aspmx.l.google.com\" count=\"" << messages << "\"/>\n"
    << "  </scenario>\n</topology>\n";
  return o.str();
}

void BM_sim_relay_auth587(benchmark::State& state) {
  const auto messages = state.range(0);
  std::vector<topology::diagnostic> errors;
  const auto doc = topology::parse(topology_xml(messages), "sim-bench.xml", ".", errors);
  if (!doc || !errors.empty()) {
    fail(state, errors.empty() ? "topology not loaded" : errors.front().to_string());
    return;
  }
  scratch_dir dir("sim");
  runner::run_options opt;
  opt.work_dir = dir.path().string();
  std::uint64_t seed = 1;
  double virtual_s = 0;
  std::uint64_t events = 0;
  for (auto _ : state) {
    const auto r = runner::run_scenario(*doc, doc->scenarios.front(), seed++, opt);
    if (!r.passed) {
      fail(state, r.failures.empty()
                      ? "scenario failed"
                      : r.failures.front().expected + "; got " + r.failures.front().got);
      return;
    }
    virtual_s += std::chrono::duration<double>(r.virtual_time).count();
    events += r.events;
  }
  const auto iterations = static_cast<double>(state.iterations());
  state.SetItemsProcessed(state.iterations() * messages);
  state.counters["transactions_per_second"] = benchmark::Counter(
      iterations * static_cast<double>(2 * messages), benchmark::Counter::kIsRate);
  state.counters["virtual_seconds_per_second"] =
      benchmark::Counter(virtual_s, benchmark::Counter::kIsRate);
  state.counters["events_per_second"] =
      benchmark::Counter(static_cast<double>(events), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_sim_relay_auth587)
    ->Arg(1)
    ->Arg(10)
    ->Arg(100)
    ->Arg(1000)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Generated sweep cases (harness/sweep), one per iteration with consecutive seeds, as
// `relaylab sweep` runs them: items_per_second is scenarios per wall-second.
void BM_sim_sweep_case(benchmark::State& state) {
  scratch_dir dir("sweep");
  runner::run_options opt;
  opt.work_dir = dir.path().string();
  std::uint64_t seed = 1;
  double virtual_s = 0;
  for (auto _ : state) {
    const auto r = sweep::run_case(seed, {}, opt);
    if (!r.passed) {
      fail(state, "sweep case " + std::to_string(seed) +
                      " failed: " + (r.problems.empty() ? std::string() : r.problems.front()));
      return;
    }
    ++seed;
    virtual_s += std::chrono::duration<double>(r.virtual_time).count();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["virtual_seconds_per_second"] =
      benchmark::Counter(virtual_s, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_sim_sweep_case)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace relaylab::bench
