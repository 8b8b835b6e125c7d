// Sweep reports: JSON written and read back, and shards merged into the whole sweep's report.
#include "harness/sweep/report.hpp"

#include <gtest/gtest.h>

namespace relaylab::sweep {
namespace {

sweep_report whole(std::uint64_t count) {
  sweep_report r;
  r.first_seed = 40;
  r.count = count;
  for (std::uint64_t i = 0; i < count; ++i) {
    case_row c{40 + i, i % 3 != 1, static_cast<std::int64_t>(i * 1000000007), i * 11, {}, {}};
    if (!c.passed) {
      c.summary = "mynetworks, 2 MX \"quoted\"";
      c.problems = {"sweep-" + std::to_string(40 + i) + ".xml:3:4: expected x; got <y>"};
    }
    r.cases.push_back(c);
  }
  return r;
}

sweep_report shard_of(const sweep_report& r, std::uint64_t index, std::uint64_t n) {
  sweep_report s = r;
  s.shard_index = index;
  s.shard_count = n;
  const std::uint64_t lo = r.count * index / n, hi = r.count * (index + 1) / n;
  s.cases.assign(r.cases.begin() + static_cast<std::ptrdiff_t>(lo),
                 r.cases.begin() + static_cast<std::ptrdiff_t>(hi));
  return s;
}

TEST(sweep_report, json_round_trip) {
  const auto r = whole(7);
  const auto text = to_json(r);
  std::string error;
  const auto back = read_json(text, "r.json", error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(to_json(*back), text);
  EXPECT_NE(text.find("\"replay\":\"relaylab sweep --count 1 --seed 41\""), std::string::npos);
  EXPECT_NE(to_junit(r).find("<testcase classname=\"sweep\" name=\"sweep-41\""), std::string::npos);
}

TEST(sweep_report, shards_merge_into_the_whole_report) {
  const auto r = whole(10);
  const std::vector<sweep_report> shards{shard_of(r, 2, 3), shard_of(r, 0, 3), shard_of(r, 1, 3)};
  std::string error;
  const auto m = merge(shards, {"c.json", "a.json", "b.json"}, error);
  ASSERT_TRUE(m) << error;
  EXPECT_EQ(to_json(*m), to_json(r));
  EXPECT_EQ(to_junit(*m), to_junit(r));
}

TEST(sweep_report, merge_refuses_what_is_not_one_whole_sweep) {
  const auto r = whole(10);
  std::string error;
  EXPECT_FALSE(merge({shard_of(r, 0, 3), shard_of(r, 2, 3)}, {"a.json", "c.json"}, error));
  EXPECT_EQ(error, "shard 2/3 is missing");
  EXPECT_FALSE(merge({shard_of(r, 0, 2), shard_of(r, 0, 2)}, {"a.json", "b.json"}, error));
  EXPECT_EQ(error, "b.json: shard 1/2 is also a.json");
  auto other = shard_of(r, 1, 2);
  other.first_seed = 41;
  EXPECT_FALSE(merge({shard_of(r, 0, 2), other}, {"a.json", "b.json"}, error));
  EXPECT_NE(error.find("b.json: not a shard of the same sweep as a.json"), std::string::npos);
  auto cut = shard_of(r, 1, 2);
  cut.cases.pop_back();
  EXPECT_FALSE(merge({shard_of(r, 0, 2), cut}, {"a.json", "b.json"}, error));
  EXPECT_NE(error.find("b.json: shard 2/2 should hold the cases of seeds 45..49 (5), it holds 4"),
            std::string::npos)
      << error;
}

TEST(sweep_report, bad_json_is_named) {
  std::string error;
  EXPECT_FALSE(read_json("{", "x.json", error));
  EXPECT_EQ(error.rfind("x.json: not JSON: ", 0), 0u) << error;
  EXPECT_FALSE(read_json("{\"relaylab\":\"run\"}", "x.json", error));
  EXPECT_NE(error.find("not a relaylab sweep report"), std::string::npos);
  auto text = to_json(whole(2));
  text.replace(text.find("\"events\":0"), 10, "\"events\":-1");
  EXPECT_FALSE(read_json(text, "x.json", error));
  EXPECT_EQ(error, "x.json: case 1: \"events\": expected a number >= 0");
  text = to_json(whole(2));
  text.replace(text.find("\"index\":1"), 9, "\"index\":2");
  EXPECT_FALSE(read_json(text, "x.json", error));
  EXPECT_NE(error.find("\"shard\": expected 1 <= index <= count"), std::string::npos);
}

}  // namespace
}  // namespace relaylab::sweep
