#include "relay/queue/queue_id.hpp"

#include "relay/queue/test_support.hpp"

#include <gtest/gtest.h>

#include <set>

namespace relaylab::queue {
namespace {

TEST(queue_id, postfix_short_format_from_injected_clock) {
  const time_point t =
      time_point(std::chrono::seconds(1795841773)) + std::chrono::microseconds(0x2AE0E);
  queue_id_generator gen([t] { return t; }, [] { return std::uint64_t{0xA72260 - 0x100000}; });
  const std::string id = gen.next();
  EXPECT_EQ(id, "2AE0EA72261");
  EXPECT_TRUE(valid_queue_id(id));
}

TEST(queue_id, unique_under_a_frozen_clock) {
  const time_point t(std::chrono::seconds(1));
  queue_id_generator gen([t] { return t; }, testing::seeded_random(1));
  std::set<std::string> seen;
  for (int i = 0; i < 200000; ++i) ASSERT_TRUE(seen.insert(gen.next()).second) << i;
}

TEST(queue_id, same_seed_and_clock_replay_the_same_ids) {
  testing::manual_clock c1, c2;
  queue_id_generator a(c1.function(), testing::seeded_random(9));
  queue_id_generator b(c2.function(), testing::seeded_random(9));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(a.next(), b.next());
}

TEST(queue_id, counter_wraps_within_six_digits) {
  const time_point t(std::chrono::seconds(5));
  queue_id_generator gen([t] { return t; }, [] { return std::uint64_t{0xEFFFFE}; });
  EXPECT_EQ(gen.next(), "00000FFFFFF");
  EXPECT_EQ(gen.next(), "00000100000");
}

TEST(queue_id, validity) {
  EXPECT_TRUE(valid_queue_id("66857C01110"));
  EXPECT_FALSE(valid_queue_id("66857c01110"));
  EXPECT_FALSE(valid_queue_id("66857C01110.tmp"));
  EXPECT_FALSE(valid_queue_id("ABC"));
  EXPECT_FALSE(valid_queue_id(""));
  EXPECT_FALSE(valid_queue_id("../../etc/passwd"));
}

}  // namespace
}  // namespace relaylab::queue
