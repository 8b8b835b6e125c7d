#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it

#include "fakes/mx/in_process.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstring>

namespace relaylab::fakes::mx {

namespace {

class in_process_stream final : public net::byte_stream {
 public:
  in_process_stream(server& srv, net::runtime& rt, std::string addr) : rt_(rt) {
    conn_ = srv.open(std::move(addr), "0", now());
  }

  timestamp now() { return rt_.now().time_since_epoch(); }

  boost::asio::awaitable<std::size_t> read_some(std::span<char> buffer, net::duration timeout,
                                                std::error_code& ec) override {
    ec.clear();
    // Yield once, as a socket read would, so that other coroutines (parallel clients) run.
    co_await boost::asio::post(co_await boost::asio::this_coro::executor,
                               boost::asio::use_awaitable);
    const timestamp give_up = now() + std::chrono::duration_cast<timestamp>(timeout);
    // Bounded: every round either returns or lets the MX's next deadline pass.
    for (int i = 0; i < 100000; ++i) {
      if (!conn_) break;
      const auto out = conn_->output();
      if (!out.empty()) {
        const std::size_t n = std::min(out.size(), buffer.size());
        std::memcpy(buffer.data(), out.data(), n);
        conn_->consume_output(n);
        co_return n;
      }
      if (conn_->closing()) break;
      const auto d = conn_->deadline();
      const timestamp wake = d ? std::min(*d, give_up) : give_up;
      const timestamp t = now();
      if (wake > t) {
        co_await rt_.sleep_for(std::chrono::ceil<net::duration>(wake - t));
      }
      conn_->advance(now());
      if (!d || *d > give_up) {
        if (!conn_->output().empty()) continue;
        ec = std::make_error_code(std::errc::timed_out);
        co_return 0;
      }
    }
    conn_.reset();
    ec = boost::system::error_code(boost::asio::error::eof);
    co_return 0;
  }

  boost::asio::awaitable<void> write_all(std::span<const char> data, net::duration,
                                         std::error_code& ec) override {
    ec.clear();
    if (!conn_ || conn_->closing()) {
      ec = std::make_error_code(std::errc::broken_pipe);
      co_return;
    }
    conn_->receive(data, now());
    co_return;
  }

  void close() noexcept override {
    if (conn_) conn_->receive_eof(now());
    conn_.reset();
  }
  std::string local_address() const override { return "192.0.2.1"; }

 private:
  net::runtime& rt_;
  std::unique_ptr<connection> conn_;
};

}  // namespace

in_process_connector::in_process_connector(server& srv, net::runtime& rt, std::string client_addr)
    : srv_(srv), rt_(rt), client_addr_(std::move(client_addr)) {}

boost::asio::awaitable<std::unique_ptr<net::byte_stream>> in_process_connector::connect(
    std::string, std::uint16_t, net::duration, std::error_code& ec) {
  ec.clear();
  co_return std::make_unique<in_process_stream>(srv_, rt_, client_addr_);
}

}  // namespace relaylab::fakes::mx
