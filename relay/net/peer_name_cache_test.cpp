// peer_name_cache with a fake clock and a fake resolver that counts its calls.
#include "relay/net/peer_name_cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace relaylab::net {
namespace {

using namespace std::chrono_literals;

struct fake_world {
  std::chrono::nanoseconds now{1s};
  std::map<std::string, std::string> names;  // addr → verified name; others are "unknown"
  std::map<std::string, int> calls;

  peer_name_cache make(peer_name_cache_options o = {}) {
    return peer_name_cache([this] { return now; },
                           [this](const std::string& addr) {
                             ++calls[addr];
                             const auto it = names.find(addr);
                             return it == names.end() ? std::string("unknown") : it->second;
                           },
                           o);
  }
};

TEST(peer_name_cache, second_lookup_within_ttl_is_a_hit) {
  fake_world w;
  w.names["192.0.2.1"] = "mail.example.net";
  auto c = w.make();
  EXPECT_EQ(c.name("192.0.2.1"), "mail.example.net");
  w.now += 59s;
  EXPECT_EQ(c.name("192.0.2.1"), "mail.example.net");
  EXPECT_EQ(w.calls["192.0.2.1"], 1);
  EXPECT_EQ(c.counters().hits, 1u);
  EXPECT_EQ(c.counters().misses, 1u);
}

TEST(peer_name_cache, entry_expires_after_ttl_and_is_looked_up_again) {
  fake_world w;
  w.names["192.0.2.1"] = "old.example.net";
  auto c = w.make({.ttl_ms = 60s, .entries_max = 16});
  EXPECT_EQ(c.name("192.0.2.1"), "old.example.net");
  w.names["192.0.2.1"] = "new.example.net";
  w.now += 60s;  // exactly the TTL: no longer fresh
  EXPECT_EQ(c.name("192.0.2.1"), "new.example.net");
  EXPECT_EQ(w.calls["192.0.2.1"], 2);
  EXPECT_EQ(c.size(), 1u);
  // The refreshed entry lives another full TTL from the second lookup.
  w.now += 59s;
  EXPECT_EQ(c.name("192.0.2.1"), "new.example.net");
  EXPECT_EQ(w.calls["192.0.2.1"], 2);
}

TEST(peer_name_cache, unknown_is_cached_too) {
  fake_world w;
  auto c = w.make();
  EXPECT_EQ(c.name("198.51.100.7"), "unknown");
  EXPECT_EQ(c.name("198.51.100.7"), "unknown");
  EXPECT_EQ(w.calls["198.51.100.7"], 1);
  // A name that appears later is seen once the negative answer expires.
  w.names["198.51.100.7"] = "late.example.net";
  w.now += 61s;
  EXPECT_EQ(c.name("198.51.100.7"), "late.example.net");
  EXPECT_EQ(w.calls["198.51.100.7"], 2);
}

TEST(peer_name_cache, full_cache_evicts_the_least_recently_used) {
  fake_world w;
  auto c = w.make({.ttl_ms = 60s, .entries_max = 3});
  c.name("10.0.0.1");
  c.name("10.0.0.2");
  c.name("10.0.0.3");
  c.name("10.0.0.1");  // hit: 10.0.0.2 is now the least recently used
  c.name("10.0.0.4");  // evicts 10.0.0.2
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.counters().evictions, 1u);
  c.name("10.0.0.1");
  c.name("10.0.0.3");
  c.name("10.0.0.4");
  EXPECT_EQ(w.calls["10.0.0.1"], 1);
  EXPECT_EQ(w.calls["10.0.0.3"], 1);
  EXPECT_EQ(w.calls["10.0.0.4"], 1);
  c.name("10.0.0.2");  // was evicted: looked up again
  EXPECT_EQ(w.calls["10.0.0.2"], 2);
  EXPECT_EQ(c.size(), 3u);
}

TEST(peer_name_cache, size_never_exceeds_the_limit) {
  fake_world w;
  auto c = w.make({.ttl_ms = 60s, .entries_max = 8});
  for (int i = 0; i < 100; ++i) {
    c.name("10.1.0." + std::to_string(i));
    ASSERT_LE(c.size(), 8u);
  }
  EXPECT_EQ(c.counters().evictions, 92u);
}

TEST(peer_name_cache, zero_ttl_or_zero_entries_disables_caching) {
  for (const peer_name_cache_options o :
       {peer_name_cache_options{.ttl_ms = 0ms}, peer_name_cache_options{.entries_max = 0}}) {
    fake_world w;
    w.names["192.0.2.1"] = "mail.example.net";
    auto c = w.make(o);
    EXPECT_EQ(c.name("192.0.2.1"), "mail.example.net");
    EXPECT_EQ(c.name("192.0.2.1"), "mail.example.net");
    EXPECT_EQ(w.calls["192.0.2.1"], 2);
    EXPECT_EQ(c.size(), 0u);
  }
}

TEST(peer_name_cache, concurrent_callers_get_consistent_answers) {
  std::atomic<int> calls{0};
  peer_name_cache c([] { return std::chrono::nanoseconds(0); },
                    [&calls](const std::string& addr) {
                      ++calls;
                      return "h-" + addr;
                    },
                    {.ttl_ms = 60s, .entries_max = 4});
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, &wrong, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::string addr = "10.2.0." + std::to_string((i + t) % 6);
        if (c.name(addr) != "h-" + addr) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_LE(c.size(), 4u);
  const auto s = c.counters();
  EXPECT_EQ(s.hits + s.misses, 8000u);
  EXPECT_EQ(static_cast<std::uint64_t>(calls.load()), s.misses);
}

}  // namespace
}  // namespace relaylab::net
