// Helpers shared by the relay/queue tests (not part of the library).
#pragma once

#include "relay/queue/spool.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

namespace relaylab::queue::testing {

/// A manual clock: tests advance it explicitly.
struct manual_clock {
  time_point now = time_point(std::chrono::seconds(1795841773));  // Sat Nov 28 04:56:13 2026
  clock_function function() {
    return [this] {
      now += std::chrono::microseconds(37);  // distinct IDs per call, like real time passing
      return now;
    };
  }
};

inline random_function seeded_random(std::uint64_t seed) {
  auto engine = std::make_shared<std::mt19937_64>(seed);
  return [engine] { return (*engine)(); };
}

/// A fresh directory under the system temp dir, removed at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::mt19937_64 r(std::random_device{}());
    path_ = std::filesystem::temp_directory_path() / ("relaylab-queue-test-" + std::to_string(r()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Result of a commit as seen by its callback.
struct commit_probe {
  bool called = false;
  commit_status status;
  commit_callback callback() {
    return [this](const commit_status& s) {
      called = true;
      status = s;
    };
  }
};

/// Begins a message with `recipients` recipients and `content`.
inline incoming_message make_message(spool& s, std::string sender,
                                     std::vector<std::string> recipients,
                                     std::string_view content) {
  incoming_message m;
  EXPECT_FALSE(s.begin(m));
  m.set_sender(std::move(sender));
  m.add_attribute("client_name", "client.example.net");
  m.add_attribute("client_address", "203.0.113.9");
  m.add_attribute("sasl_username", "smtp-auth@example.com");
  for (auto& r : recipients) EXPECT_FALSE(m.add_recipient({std::move(r), "", 0}));
  EXPECT_FALSE(m.append_content(content));
  return m;
}

/// Commits in immediate mode or flushes a queued spool; returns the callback's status.
inline commit_status commit_now(spool& s, incoming_message&& m) {
  commit_probe probe;
  s.commit(std::move(m), probe.callback());
  if (!probe.called) s.flush();
  EXPECT_TRUE(probe.called);
  return probe.status;
}

}  // namespace relaylab::queue::testing
