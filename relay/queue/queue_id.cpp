#include "relay/queue/queue_id.hpp"

#include <cstdio>

namespace relaylab::queue {
namespace {
// The counter stays in [counter_low, counter_high] so it always prints as 6 hex digits and IDs
// have Postfix's usual 11 characters.
constexpr std::uint32_t counter_low = 0x100000;
constexpr std::uint32_t counter_high = 0xFFFFFF;
}  // namespace

queue_id_generator::queue_id_generator(clock_function clock, random_function random)
    : clock_(std::move(clock)),
      counter_(counter_low + static_cast<std::uint32_t>(random() % (counter_high - counter_low))) {}

std::string queue_id_generator::next() {
  const auto since_epoch = clock_().time_since_epoch();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(since_epoch).count();
  const auto usec = static_cast<unsigned>(((us % 1000000) + 1000000) % 1000000);
  counter_ = counter_ == counter_high ? counter_low : counter_ + 1;
  char buf[24];
  const int n = std::snprintf(buf, sizeof buf, "%05X%X", usec, counter_);
  return std::string(buf, static_cast<std::size_t>(n));
}

bool valid_queue_id(std::string_view name) noexcept {
  if (name.size() < 6 || name.size() > 20) return false;
  for (char c : name)
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  return true;
}

}  // namespace relaylab::queue
