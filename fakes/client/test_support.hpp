// Test helpers for fakes: a runtime whose time moves only when something sleeps on it.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it

#include "relay/net/stream.hpp"

#include <boost/asio/io_context.hpp>

namespace relaylab::fakes::test {

class virtual_runtime final : public net::runtime {
 public:
  explicit virtual_runtime(boost::asio::io_context& io) : io_(io) {}
  boost::asio::any_io_executor executor() override { return io_.get_executor(); }
  std::chrono::system_clock::time_point now() override { return now_; }
  boost::asio::awaitable<void> sleep_for(net::duration d) override {
    now_ += d;
    co_return;
  }
  std::chrono::system_clock::time_point now_{std::chrono::seconds(1700000000)};

 private:
  boost::asio::io_context& io_;
};

}  // namespace relaylab::fakes::test
