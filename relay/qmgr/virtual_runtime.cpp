#include "relay/qmgr/virtual_runtime.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <memory>

namespace relaylab::qmgr {

virtual_runtime::virtual_runtime(time_point start) : now_(start) {}

boost::asio::awaitable<void> virtual_runtime::sleep_for(net::duration d) {
  const auto wake = now_ + std::max(d, net::duration::zero());
  co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void()>(
      [this, wake](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        sleepers_.emplace(std::pair(wake, sequence_++), [h] { (*h)(); });
      },
      boost::asio::use_awaitable);
}

std::size_t virtual_runtime::poll() {
  std::size_t n = 0;
  if (io_.stopped()) io_.restart();
  n += io_.poll();
  return n;
}

std::size_t virtual_runtime::run_until(time_point until, std::size_t handlers_max) {
  std::size_t n = 0;
  while (n < handlers_max) {
    if (io_.stopped()) io_.restart();
    const auto ran = io_.poll_one();
    if (ran != 0) {
      n += ran;
      continue;
    }
    if (sleepers_.empty() || sleepers_.begin()->first.first > until) break;
    auto node = sleepers_.extract(sleepers_.begin());
    if (node.key().first > now_) now_ = node.key().first;
    boost::asio::post(io_, std::move(node.mapped()));
  }
  if (until > now_ && n < handlers_max) now_ = until;
  return n;
}

}  // namespace relaylab::qmgr
