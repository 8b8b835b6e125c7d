// The virtual clock, event ordering, the PRNG and the sim timer.
#include "harness/sim/world.hpp"
#include "harness/sim/timer.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <string>
#include <vector>

namespace relaylab::sim {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

TEST(world, events_run_in_time_then_sequence_order) {
  world w;
  std::string order;
  w.schedule_at(duration(5s), [&] { order += 'c'; });
  w.schedule_at(duration(1s), [&] { order += 'a'; });
  w.schedule_at(duration(5s), [&] { order += 'd'; });
  w.schedule_at(duration(1s), [&] { order += 'b'; });
  EXPECT_EQ(w.run(), run_end::idle);
  EXPECT_EQ(order, "abcd");
  EXPECT_EQ(w.now(), duration(5s));
}

TEST(world, clock_jumps_and_never_goes_back) {
  world w;
  std::vector<time_point> seen;
  w.schedule_at(duration(3h), [&] {
    seen.push_back(w.now());
    w.schedule_at(duration(1s), [&] { seen.push_back(w.now()); });  // in the past
  });
  w.run();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], duration(3h));
  EXPECT_EQ(seen[1], duration(3h));
}

TEST(world, cancelled_events_do_not_run) {
  world w;
  bool ran = false;
  auto h = w.schedule_after(1s, [&] { ran = true; });
  EXPECT_TRUE(h.pending());
  h.cancel();
  EXPECT_EQ(w.run(), run_end::idle);
  EXPECT_FALSE(ran);
}

TEST(world, time_limit_stops_at_the_limit) {
  world w;
  bool ran = false;
  w.schedule_at(duration(10s), [&] { ran = true; });
  run_limits lim;
  lim.until = duration(4s);
  EXPECT_EQ(w.run(lim), run_end::time_limit);
  EXPECT_FALSE(ran);
  EXPECT_EQ(w.now(), duration(4s));
  EXPECT_EQ(w.run(), run_end::idle);
  EXPECT_TRUE(ran);
}

TEST(world, same_seed_same_numbers_other_seed_other_numbers) {
  world a(world_options{42, {}}), b(world_options{42, {}}), c(world_options{43, {}});
  std::vector<std::uint64_t> xa, xb, xc;
  for (int i = 0; i < 16; ++i) {
    xa.push_back(a.random());
    xb.push_back(b.random());
    xc.push_back(c.random());
  }
  EXPECT_EQ(xa, xb);
  EXPECT_NE(xa, xc);
  for (int i = 0; i < 1000; ++i) {
    const auto v = a.random_between(10, 20);
    ASSERT_GE(v, 10u);
    ASSERT_LE(v, 20u);
  }
  EXPECT_FALSE(a.chance(0));
  EXPECT_TRUE(a.chance(1));
}

TEST(world, from_finds_the_owner_only_for_its_context) {
  world w;
  EXPECT_EQ(world::from(w.executor()), &w);
  asio::io_context other;
  EXPECT_EQ(world::from(other), nullptr);
}

asio::awaitable<void> sleeper(world& w, duration d, std::vector<std::pair<int, time_point>>& log,
                              int id) {
  timer t(co_await asio::this_coro::executor);
  t.expires_after(d);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  log.emplace_back(ec ? -id : id, w.now());
}

TEST(timer, coroutines_wake_at_virtual_deadlines_without_real_waiting) {
  world w;
  std::vector<std::pair<int, time_point>> log;
  asio::co_spawn(w.io(), sleeper(w, 5h, log, 2), asio::detached);
  asio::co_spawn(w.io(), sleeper(w, 30s, log, 1), asio::detached);
  EXPECT_EQ(w.run(), run_end::idle);
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0], std::make_pair(1, time_point(30s)));
  EXPECT_EQ(log[1], std::make_pair(2, time_point(5h)));
}

TEST(timer, cancel_completes_a_pending_wait_with_operation_aborted) {
  world w;
  timer t(w.executor());
  t.expires_after(1h);
  boost::system::error_code got = asio::error::would_block;
  t.async_wait([&](boost::system::error_code ec) { got = ec; });
  w.schedule_after(1s, [&] { EXPECT_EQ(t.cancel(), 1u); });
  w.run();
  EXPECT_EQ(got, asio::error::operation_aborted);
  EXPECT_EQ(w.now(), duration(1s));  // the 1 h expiry was never reached
  EXPECT_EQ(t.cancel(), 0u);
}

TEST(timer, expired_timer_completes_at_once_and_never_inline) {
  world w;
  timer t(w.executor());
  t.expires_after(0s);
  bool done = false;
  t.async_wait([&](boost::system::error_code ec) { done = !ec; });
  EXPECT_FALSE(done);  // posted, not run inside async_wait
  w.run();
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace relaylab::sim
