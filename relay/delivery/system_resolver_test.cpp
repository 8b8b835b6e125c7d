#include "relay/delivery/system_resolver.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <thread>

namespace relaylab::delivery {
namespace {

namespace asio = boost::asio;

// Only names the host answers from local data (/etc/hosts, numeric): no DNS query leaves.
TEST(system_resolver, localhost_from_etc_hosts_on_the_pool) {
  asio::io_context io;
  system_resolver r;
  address_answer a;
  std::thread::id resumed_on;
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        a = co_await r.lookup_addresses("localhost", true, false);
        resumed_on = std::this_thread::get_id();
        finished = true;
      },
      asio::detached);
  io.run_for(std::chrono::seconds(10));
  ASSERT_TRUE(finished);
  EXPECT_EQ(resumed_on, std::this_thread::get_id());  // back on the io thread
  ASSERT_EQ(a.status, dns_status::ok);
  EXPECT_NE(std::find(a.addresses.begin(), a.addresses.end(), "127.0.0.1"), a.addresses.end());
  for (const auto& addr : a.addresses) EXPECT_EQ(addr.find(':'), std::string::npos) << addr;
}

TEST(system_resolver, numeric_addresses_need_no_lookup) {
  const auto a = system_lookup_addresses("::1", false, true);
  ASSERT_EQ(a.status, dns_status::ok);
  EXPECT_EQ(a.addresses, std::vector<std::string>{"::1"});
  const auto b = system_lookup_addresses("127.0.0.1", false, true);  // IPv4 only wanted v6
  EXPECT_NE(b.status, dns_status::ok);
}

TEST(system_resolver, in_flight_limit_answers_temporary_failure) {
  asio::io_context io;
  system_resolver r(system_resolver_options{1, 0});
  mx_answer a;
  asio::co_spawn(
      io, [&]() -> asio::awaitable<void> { a = co_await r.lookup_mx("example.com"); },
      asio::detached);
  io.run_for(std::chrono::seconds(10));
  EXPECT_EQ(a.status, dns_status::timeout);
}

}  // namespace
}  // namespace relaylab::delivery
