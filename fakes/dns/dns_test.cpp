#include "fakes/dns/dns.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace relaylab::fakes::dns {
namespace {

using namespace std::chrono_literals;
using delivery::dns_status;
namespace asio = boost::asio;

// A runtime whose time only moves when someone sleeps on it.
class virtual_runtime final : public net::runtime {
 public:
  explicit virtual_runtime(asio::io_context& io) : io_(io) {}
  asio::any_io_executor executor() override { return io_.get_executor(); }
  std::chrono::system_clock::time_point now() override { return now_; }
  asio::awaitable<void> sleep_for(net::duration d) override {
    now_ += d;
    co_return;
  }
  std::chrono::system_clock::time_point now_{};

 private:
  asio::io_context& io_;
};

template <class T>
T run(asio::io_context& io, asio::awaitable<T> a) {
  auto f = asio::co_spawn(io, std::move(a), asio::use_future);
  io.restart();
  io.run();
  return f.get();
}

struct zone_fixture : ::testing::Test {
  asio::io_context io;
  virtual_runtime rt{io};
  fake_resolver dns{&rt, 30s};
  void SetUp() override {
    zone_error err;
    ASSERT_TRUE(dns.load_file(RELAYLAB_FAKES_TESTDATA "/example.zone", err)) << err.to_string();
  }
};

TEST_F(zone_fixture, mx_in_answer_order) {
  auto a = run(io, dns.lookup_mx("X.example."));
  EXPECT_EQ(a.status, dns_status::ok);
  ASSERT_EQ(a.records.size(), 2u);
  EXPECT_EQ(a.records[0].preference, 10);
  EXPECT_EQ(a.records[0].host, "mx1.x.example");
  EXPECT_EQ(a.records[1].host, "mx2.x.example");
}

TEST_F(zone_fixture, null_mx) {
  auto a = run(io, dns.lookup_mx("nullmx.example"));
  EXPECT_EQ(a.status, dns_status::ok);
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].preference, 0);
  EXPECT_EQ(a.records[0].host, "");
}

TEST_F(zone_fixture, addresses_aaaa_then_a_and_by_family) {
  auto both = run(io, dns.lookup_addresses("mx1.x.example", true, true));
  EXPECT_EQ(both.status, dns_status::ok);
  EXPECT_EQ(both.addresses, (std::vector<std::string>{"2001:db8::25", "192.0.2.25"}));
  auto v4 = run(io, dns.lookup_addresses("mx1.x.example", true, false));
  EXPECT_EQ(v4.addresses, std::vector<std::string>{"192.0.2.25"});
  auto v6only = run(io, dns.lookup_addresses("mx2.x.example", false, true));
  EXPECT_EQ(v6only.status, dns_status::nodata);
  EXPECT_TRUE(v6only.addresses.empty());
}

TEST_F(zone_fixture, cname_is_followed) {
  auto a = run(io, dns.lookup_addresses("mail.x.example", true, false));
  EXPECT_EQ(a.status, dns_status::ok);
  EXPECT_EQ(a.canonical_name, "mx1.x.example");
  EXPECT_EQ(a.addresses, std::vector<std::string>{"192.0.2.25"});
}

TEST_F(zone_fixture, nodata_nxdomain_servfail) {
  EXPECT_EQ(run(io, dns.lookup_mx("mx1.x.example")).status, dns_status::nodata);
  EXPECT_EQ(run(io, dns.lookup_mx("unknown.example")).status, dns_status::nxdomain);
  EXPECT_EQ(run(io, dns.lookup_mx("gone.example")).status, dns_status::nxdomain);
  EXPECT_EQ(run(io, dns.lookup_mx("broken.example")).status, dns_status::servfail);
  EXPECT_EQ(rt.now_, std::chrono::system_clock::time_point{});
}

TEST_F(zone_fixture, timeout_takes_the_runtimes_time) {
  auto a = run(io, dns.lookup_addresses("slow.example", true, true));
  EXPECT_EQ(a.status, dns_status::timeout);
  EXPECT_EQ(rt.now_ - std::chrono::system_clock::time_point{}, 30s);
}

TEST_F(zone_fixture, records_change_at_run_time) {
  name_records r;
  r.mx.push_back({10, "mx9.x.example"});
  dns.replace("x.example", r);
  auto a = run(io, dns.lookup_mx("x.example"));
  ASSERT_EQ(a.records.size(), 1u);
  EXPECT_EQ(a.records[0].host, "mx9.x.example");
  dns.set_failure("x.example", failure::servfail);
  EXPECT_EQ(run(io, dns.lookup_mx("x.example")).status, dns_status::servfail);
  dns.remove("x.example");
  EXPECT_EQ(run(io, dns.lookup_mx("x.example")).status, dns_status::nxdomain);
  EXPECT_EQ(dns.query_log().back(), "MX x.example");
}

TEST(fake_dns, cname_loop_is_servfail) {
  asio::io_context io;
  fake_resolver dns;
  dns.set_cname("a.example", "b.example");
  dns.set_cname("b.example", "a.example");
  EXPECT_EQ(run(io, dns.lookup_addresses("a.example", true, true)).status, dns_status::servfail);
}

std::string zone_error_of(std::string_view text) {
  fake_resolver dns;
  zone_error err;
  if (dns.load(text, "z.zone", err)) return "loaded";
  return err.to_string();
}

TEST(fake_dns, bad_zones_name_file_line_column) {
  EXPECT_EQ(zone_error_of("x.example MX ten mx.example\n"),
            "z.zone:1:14: bad MX preference \"ten\" (0-65535)");
  EXPECT_EQ(zone_error_of("\nh.example A 300.1.1.1\n"),
            "z.zone:2:13: bad IPv4 address \"300.1.1.1\"");
  EXPECT_EQ(zone_error_of("h.example AAAA 192.0.2.1\n"),
            "z.zone:1:16: bad IPv6 address \"192.0.2.1\"");
  EXPECT_EQ(zone_error_of("h.example TXT hello\n"),
            "z.zone:1:11: unknown record type \"TXT\" (MX, A, AAAA, CNAME, NXDOMAIN, SERVFAIL, "
            "TIMEOUT)");
  EXPECT_EQ(zone_error_of("h.example MX 10\n"), "z.zone:1:17: usage: NAME MX PREFERENCE HOST");
  EXPECT_EQ(zone_error_of("h.example A 192.0.2.1 extra\n"), "z.zone:1:23: unexpected \"extra\"");
  EXPECT_EQ(zone_error_of("h.example A 192.0.2.1\nh.example CNAME x.example\n"),
            "z.zone:2:1: CNAME next to other data");
  EXPECT_EQ(zone_error_of("h.example\n"), "z.zone:1:11: expected a record type");
}

}  // namespace
}  // namespace relaylab::fakes::dns
