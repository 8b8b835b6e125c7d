// A net::runtime on virtual time, for tests and the simulation: an io_context whose clock
// moves only when nothing is runnable, straight to the earliest sleeper. Single-threaded:
// call everything on the thread that runs it.
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include "relay/net/stream.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <utility>

namespace relaylab::qmgr {

class virtual_runtime final : public net::runtime {
 public:
  using time_point = std::chrono::system_clock::time_point;
  explicit virtual_runtime(time_point start);

  boost::asio::any_io_executor executor() override { return io_.get_executor(); }
  time_point now() override { return now_; }
  boost::asio::awaitable<void> sleep_for(net::duration d) override;

  boost::asio::io_context& io() noexcept { return io_; }
  /// Runs ready work; when none is left, moves the clock to the earliest sleeper not after
  /// `until` and wakes it. Returns when nothing is runnable before `until` (the clock is then
  /// `until`, if that is later) or after `handlers_max` handlers. Returns the handlers run.
  std::size_t run_until(time_point until, std::size_t handlers_max = 10'000'000);
  std::size_t run_for(net::duration d, std::size_t handlers_max = 10'000'000) {
    return run_until(now_ + d, handlers_max);
  }
  /// Runs ready work only; the clock does not move.
  std::size_t poll();
  std::size_t sleepers() const noexcept { return sleepers_.size(); }

 private:
  boost::asio::io_context io_;
  time_point now_;
  std::uint64_t sequence_ = 0;
  std::map<std::pair<time_point, std::uint64_t>, std::function<void()>> sleepers_;
};

}  // namespace relaylab::qmgr
