// Postfix-style short queue IDs: five hex digits of the microseconds within the second, then
// the hex digits of an inode-like counter ("2AE0EA72261"). Postfix uses the queue file's inode
// number; relaylab uses a counter seeded from the injected random source, so IDs never depend
// on the host and replay identically under the same seed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace relaylab::queue {

using clock_function = std::function<std::chrono::system_clock::time_point()>;
using random_function = std::function<std::uint64_t()>;

class queue_id_generator {
 public:
  queue_id_generator(clock_function clock, random_function random);
  /// Next ID: never the same as an earlier one from this generator until the counter wraps
  /// (2^24 - 2^20 IDs in one microsecond slot); the spool also checks IDs in use.
  std::string next();

 private:
  clock_function clock_;
  std::uint32_t counter_;
};

/// True for names a spool accepts as queue IDs: 6 to 20 characters of [0-9A-F].
bool valid_queue_id(std::string_view name) noexcept;

}  // namespace relaylab::queue
