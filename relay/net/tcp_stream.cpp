#include "relay/net/tcp_stream.hpp"

#include "relay/net/write_now.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cstring>
#include <memory>

namespace relaylab::net {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// The connect timeout: shared between the connect and its timer, which may fire after the
// connect completed (both handlers already queued), so it must know not to touch the socket.
struct op_state {
  bool done = false;
  bool expired = false;
};

// Arms a timer that runs `on_expiry` unless the operation finished first.
template <class F>
std::shared_ptr<op_state> arm(asio::steady_timer& timer, duration timeout, F on_expiry) {
  auto st = std::make_shared<op_state>();
  timer.expires_after(timeout);
  timer.async_wait([st, on_expiry](const boost::system::error_code& e) mutable {
    if (!e && !st->done) {
      st->expired = true;
      on_expiry();
    }
  });
  return st;
}

}  // namespace

std::error_code normalize_error(const std::error_code& ec) {
  if (!ec) return ec;
  for (const std::errc e : {std::errc::network_unreachable, std::errc::connection_refused,
                            std::errc::timed_out, std::errc::host_unreachable}) {
    if (ec == e) return std::make_error_code(e);
  }
  return ec;
}

std::string error_text(const std::error_code& ec) {
  const std::error_code n = normalize_error(ec);
  if (n.category() == std::generic_category() || n.category() == std::system_category()) {
    char buf[256];
    // GNU strerror_r returns the text (not always in buf).
    return ::strerror_r(n.value(), buf, sizeof buf);
  }
  return n.message();
}

struct tcp_byte_stream::watchdog {
  using clock = std::chrono::steady_clock;
  explicit watchdog(tcp::socket& s) : timer(s.get_executor()), socket(&s) {}
  asio::steady_timer timer;
  tcp::socket* socket;                                     // null once the stream is closed
  clock::time_point deadline = clock::time_point::max();   // of the operation in flight
  clock::time_point armed_for = clock::time_point::max();  // max: the timer is not set
  bool expired = false;

  static void arm(const std::shared_ptr<watchdog>& w, clock::time_point at) {
    w->armed_for = at;
    w->timer.expires_at(at);  // cancels an earlier wait: its handler sees operation_aborted
    w->timer.async_wait([w](const boost::system::error_code& e) {
      if (e == asio::error::operation_aborted) return;  // re-armed or closed meanwhile
      w->armed_for = clock::time_point::max();
      if (w->socket == nullptr || w->deadline == clock::time_point::max()) return;
      if (clock::now() >= w->deadline) {
        w->expired = true;
        boost::system::error_code ignored;
        w->socket->cancel(ignored);
      } else {
        arm(w, w->deadline);  // set for an earlier operation: wait for this one's deadline
      }
    });
  }
};

tcp_byte_stream::tcp_byte_stream(tcp::socket socket)
    : socket_(std::move(socket)), watchdog_(std::make_shared<watchdog>(socket_)) {
  // write_now() tries a write without waiting: the socket must not block.
  detail::make_non_blocking(socket_);
}

tcp_byte_stream::~tcp_byte_stream() { close(); }

void tcp_byte_stream::begin(duration timeout) {
  auto& w = *watchdog_;
  w.expired = false;
  w.deadline = watchdog::clock::now() + timeout;
  if (w.armed_for > w.deadline) watchdog::arm(watchdog_, w.deadline);
}

bool tcp_byte_stream::end() noexcept {
  watchdog_->deadline = watchdog::clock::time_point::max();
  return watchdog_->expired;
}

asio::awaitable<std::size_t> tcp_byte_stream::read_some(std::span<char> buffer, duration timeout,
                                                        std::error_code& ec) {
  ec.clear();
  begin(timeout);
  boost::system::error_code bec;
  const std::size_t n = co_await socket_.async_read_some(
      asio::buffer(buffer.data(), buffer.size()), asio::redirect_error(asio::use_awaitable, bec));
  if (end()) {
    ec = std::make_error_code(std::errc::timed_out);
  } else if (bec) {
    ec = normalize_error(bec);
  }
  co_return n;
}

asio::awaitable<void> tcp_byte_stream::write_all(std::span<const char> data, duration timeout,
                                                 std::error_code& ec) {
  ec.clear();
  begin(timeout);
  boost::system::error_code bec;
  co_await asio::async_write(socket_, asio::buffer(data.data(), data.size()),
                             asio::redirect_error(asio::use_awaitable, bec));
  if (end()) {
    ec = std::make_error_code(std::errc::timed_out);
  } else if (bec) {
    ec = normalize_error(bec);
  }
}

std::size_t tcp_byte_stream::write_now(std::span<const char> data) noexcept {
  return detail::write_now(socket_, asio::buffer(data.data(), data.size()));
}

void tcp_byte_stream::close() noexcept {
  boost::system::error_code ignored;
  if (watchdog_) {
    watchdog_->socket = nullptr;
    watchdog_->timer.cancel();
  }
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

std::string tcp_byte_stream::local_address() const {
  boost::system::error_code ec;
  const auto ep = socket_.local_endpoint(ec);
  if (ec) return {};
  return ep.address().to_string();
}

tcp_connector::tcp_connector(asio::any_io_executor executor) : executor_(std::move(executor)) {}

asio::awaitable<std::unique_ptr<byte_stream>> tcp_connector::connect(std::string address,
                                                                     std::uint16_t port,
                                                                     duration timeout,
                                                                     std::error_code& ec) {
  ec.clear();
  boost::system::error_code bec;
  const auto addr = asio::ip::make_address(address, bec);
  if (bec) {
    ec = std::make_error_code(std::errc::invalid_argument);
    co_return nullptr;
  }
  tcp::socket socket(executor_);
  asio::steady_timer timer(executor_);
  auto st = arm(timer, timeout, [&socket] {
    boost::system::error_code ignored;
    socket.close(ignored);
  });
  co_await socket.async_connect(tcp::endpoint(addr, port),
                                asio::redirect_error(asio::use_awaitable, bec));
  st->done = true;
  timer.cancel();
  if (st->expired) {
    ec = std::make_error_code(std::errc::timed_out);
    co_return nullptr;
  }
  if (bec) {
    ec = normalize_error(bec);
    co_return nullptr;
  }
  socket.set_option(tcp::no_delay(true), bec);
  co_return std::make_unique<tcp_byte_stream>(std::move(socket));
}

system_runtime::system_runtime(asio::any_io_executor executor) : executor_(std::move(executor)) {}

asio::any_io_executor system_runtime::executor() { return executor_; }

std::chrono::system_clock::time_point system_runtime::now() {
  return std::chrono::system_clock::now();
}

asio::awaitable<void> system_runtime::sleep_for(duration d) {
  asio::steady_timer timer(executor_);
  timer.expires_after(d);
  boost::system::error_code ignored;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

}  // namespace relaylab::net
