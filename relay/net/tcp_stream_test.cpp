#include "relay/net/tcp_stream.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <string>

namespace relaylab::net {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// Runs `body` as a coroutine on a fresh io_context until it finishes.
template <class F>
void run(asio::io_context& io, F body) {
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await body();
        finished = true;
      },
      asio::detached);
  io.run_for(10s);
  ASSERT_TRUE(finished) << "coroutine did not finish";
}

// A loopback listener whose first connection, `peer`, runs `script` (and stays open after it
// unless the script closes it), and a connector for the client side.
struct loopback {
  asio::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)};
  tcp::socket peer{io};
  tcp_connector connector{io.get_executor()};

  template <class Script>
  void serve(Script script) {
    asio::co_spawn(
        io,
        [this, script]() -> asio::awaitable<void> {
          peer = co_await acceptor.async_accept(asio::use_awaitable);
          co_await script(peer);
        },
        asio::detached);
  }
  // The client's stream (null, with a failure recorded, if the connect fails).
  asio::awaitable<std::unique_ptr<byte_stream>> connect() {
    std::error_code ec;
    auto s = co_await connector.connect("127.0.0.1", acceptor.local_endpoint().port(), 5s, ec);
    EXPECT_FALSE(ec) << ec.message();
    co_return s;
  }
};

std::uint16_t closed_port(asio::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();  // closed again when `a` goes
}

TEST(tcp_stream, round_trip_on_loopback) {
  loopback lo;  // the peer stays open so that the client's last read times out
  std::string got;
  lo.serve([&](tcp::socket& peer) -> asio::awaitable<void> {
    co_await asio::async_write(peer, asio::buffer(std::string("220 hi\r\n")), asio::use_awaitable);
    char buf[64];
    const auto n = co_await peer.async_read_some(asio::buffer(buf), asio::use_awaitable);
    got.assign(buf, n);
  });
  run(lo.io, [&]() -> asio::awaitable<void> {
    auto s = co_await lo.connect();
    if (!s) co_return;
    EXPECT_EQ(s->local_address(), "127.0.0.1");
    std::error_code ec;
    char buf[64];
    const auto n = co_await s->read_some(buf, 5s, ec);
    EXPECT_EQ(std::string(buf, n), "220 hi\r\n");
    const std::string hello = "EHLO x\r\n";
    co_await s->write_all(hello, 5s, ec);
    EXPECT_FALSE(ec);
    // The peer wrote nothing more: the read times out.
    co_await s->read_some(buf, 50ms, ec);
    EXPECT_EQ(ec, std::errc::timed_out);
  });
  EXPECT_EQ(got, "EHLO x\r\n");
}

// One timer serves the stream: each operation's own timeout must still hold, whether it is
// shorter or longer than the one before.
TEST(tcp_stream, each_operation_gets_its_own_timeout) {
  loopback lo;  // the peer never reads: the last write cannot finish
  lo.serve([&](tcp::socket& peer) -> asio::awaitable<void> {
    co_await asio::async_write(peer, asio::buffer(std::string("a")), asio::use_awaitable);
    asio::steady_timer t(lo.io, 300ms);
    co_await t.async_wait(asio::use_awaitable);
    co_await asio::async_write(peer, asio::buffer(std::string("b")), asio::use_awaitable);
  });
  run(lo.io, [&]() -> asio::awaitable<void> {
    auto s = co_await lo.connect();
    if (!s) co_return;
    std::error_code ec;
    char buf[8];
    std::size_t n = co_await s->read_some(buf, 5s, ec);
    EXPECT_FALSE(ec);
    EXPECT_EQ(std::string(buf, n), "a");
    co_await s->read_some(buf, 50ms, ec);  // shorter than the one before
    EXPECT_EQ(ec, std::errc::timed_out);
    n = co_await s->read_some(buf, 5s, ec);  // longer: the 50 ms one must not end it
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(std::string(buf, n), "b");
    co_await s->read_some(buf, 30ms, ec);
    EXPECT_EQ(ec, std::errc::timed_out);
    const std::string big(64u << 20, 'x');  // more than the socket buffers hold
    co_await s->write_all(big, 100ms, ec);
    EXPECT_EQ(ec, std::errc::timed_out);
  });
}

TEST(tcp_stream, connection_refused_on_closed_port) {
  asio::io_context io;
  const auto port = closed_port(io);
  tcp_connector c(io.get_executor());
  run(io, [&]() -> asio::awaitable<void> {
    std::error_code ec;
    auto s = co_await c.connect("127.0.0.1", port, 5s, ec);
    EXPECT_EQ(s, nullptr);
    EXPECT_EQ(ec, std::make_error_code(std::errc::connection_refused));
    EXPECT_EQ(error_text(ec), "Connection refused");
  });
}

TEST(tcp_stream, non_numeric_address_is_rejected) {
  asio::io_context io;
  tcp_connector c(io.get_executor());
  run(io, [&]() -> asio::awaitable<void> {
    std::error_code ec;
    auto s = co_await c.connect("localhost", 25, 1s, ec);
    EXPECT_EQ(s, nullptr);
    EXPECT_EQ(ec, std::errc::invalid_argument);
  });
}

TEST(tcp_stream, eof_and_write_to_closed_peer) {
  loopback lo;
  lo.serve([](tcp::socket& peer) -> asio::awaitable<void> {
    peer.close();
    co_return;
  });
  run(lo.io, [&]() -> asio::awaitable<void> {
    auto s = co_await lo.connect();
    if (!s) co_return;
    std::error_code ec;
    char buf[16];
    const auto n = co_await s->read_some(buf, 5s, ec);
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(ec, boost::asio::error::make_error_code(boost::asio::error::eof));
    // The first write may still be accepted by the kernel; the RST makes a later one fail.
    const std::string chunk(64 * 1024, 'x');
    std::error_code wec;
    for (int i = 0; i < 50 && !wec; ++i) co_await s->write_all(chunk, 5s, wec);
    EXPECT_TRUE(wec == std::errc::broken_pipe || wec == std::errc::connection_reset)
        << wec.message();
  });
}

TEST(tcp_stream, runtime_sleeps_and_reads_wall_clock) {
  asio::io_context io;
  system_runtime rt(io.get_executor());
  run(io, [&]() -> asio::awaitable<void> {
    const auto before = rt.now();
    co_await rt.sleep_for(20ms);
    EXPECT_GE(rt.now() - before, 20ms);
  });
}

TEST(tcp_stream, error_mapping) {
  EXPECT_EQ(normalize_error(std::error_code(ENETUNREACH, std::system_category())),
            std::make_error_code(std::errc::network_unreachable));
  EXPECT_EQ(error_text(std::make_error_code(std::errc::network_unreachable)),
            "Network is unreachable");
  EXPECT_EQ(error_text(std::make_error_code(std::errc::timed_out)), "Connection timed out");
}

}  // namespace
}  // namespace relaylab::net
