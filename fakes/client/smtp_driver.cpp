#include "fakes/client/smtp_driver.hpp"

#include <algorithm>

namespace relaylab::fakes::client {

smtp_driver::smtp_driver(smtp::client_session& session, net::byte_stream& stream, net::runtime& rt,
                         std::function<void(char, std::string_view)> trace)
    : s_(session), stream_(stream), rt_(rt), trace_(std::move(trace)) {}

boost::asio::awaitable<void> smtp_driver::flush() {
  for (int i = 0; i < iterations_max && !s_.output().empty(); ++i) {
    // Copied: the session's output may change while the write is in flight.
    out_.assign(s_.output());
    s_.consume_output(out_.size());
    if (trace_) trace_('C', out_);
    std::error_code ec;
    const auto timeout = std::chrono::milliseconds(300000);
    co_await stream_.write_all(std::span<const char>(out_.data(), out_.size()), timeout, ec);
    if (ec) {
      s_.receive_eof(client_now(rt_));
      co_return;
    }
  }
}

boost::asio::awaitable<void> smtp_driver::pump(const std::function<bool()>& done) {
  using smtp::client_state;
  for (int i = 0; i < iterations_max; ++i) {
    co_await flush();
    const auto st = s_.state();
    if (done() || st == client_state::failed || st == client_state::closed) co_return;
    if (!s_.output().empty()) continue;  // done() may have fed the session (body, quit)
    net::duration timeout(300000);
    if (const auto d = s_.deadline()) {
      const auto now = client_now(rt_);
      timeout = *d > now ? std::chrono::ceil<net::duration>(*d - now) : net::duration(0);
    }
    timeout = std::max(timeout, net::duration(1));
    std::error_code ec;
    const std::size_t n = co_await stream_.read_some(std::span<char>(in_, sizeof in_), timeout, ec);
    if (n > 0) {
      if (trace_) trace_('S', std::string_view(in_, n));
      s_.receive(std::span<const char>(in_, n), client_now(rt_));
    } else if (ec == std::errc::timed_out) {
      s_.advance(client_now(rt_));
    } else {
      s_.receive_eof(client_now(rt_));
    }
  }
}

}  // namespace relaylab::fakes::client
