// Sim stream semantics (ordering, EOF, timeouts, back pressure, resets after a crash) and the
// real relay/net driver running unchanged over a sim socket with sim timers.
#include "relay/tls/stream.hpp"
#include "harness/sim/network.hpp"
#include "harness/sim/test_support.hpp"
#include "relay/net/driver.hpp"
#include "relay/tls/client.hpp"
#include "relay/tls/pki.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <optional>

namespace relaylab::sim {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct streams : ::testing::Test {
  world w{world_options{11, {}}};
  std::vector<network_error> errors;
  network net{w, test::handson_network(), errors};
  std::unique_ptr<socket> server;
  std::unique_ptr<net::byte_stream> client;
  host_connector connector{net, "client"};

  void SetUp() override {
    ASSERT_TRUE(errors.empty());
    ASSERT_FALSE(net.listen("relay", 25, [this](accepted a) { server = std::move(a.stream); }));
    asio::co_spawn(
        w.io(),
        [this]() -> asio::awaitable<void> {
          std::error_code ec;
          client = co_await connector.connect("192.168.2.44", 25, 30s, ec);
          EXPECT_FALSE(ec);
        },
        asio::detached);
    w.run();
    ASSERT_TRUE(server);
    ASSERT_TRUE(client);
  }

  // Reads from the client side until `n` bytes, EOF, an error or the timeout.
  std::string client_read(std::size_t n, duration timeout, std::error_code& ec) {
    std::string got;
    asio::co_spawn(
        w.io(),
        [&]() -> asio::awaitable<void> {
          char buf[100];
          for (int i = 0; i < 1000 && got.size() < n; ++i) {
            const auto k = co_await client->read_some(
                std::span<char>(buf), std::chrono::duration_cast<net::duration>(timeout), ec);
            got.append(buf, k);
            if (ec) break;
          }
        },
        asio::detached);
    w.run();
    return got;
  }
};

TEST_F(streams, addresses_are_as_each_end_sees_them) {
  EXPECT_EQ(server->local_address(), "192.168.2.44");
  EXPECT_EQ(server->remote_address(), "192.168.3.10");
  EXPECT_EQ(server->local_port(), 25);
  EXPECT_EQ(client->local_address(), "192.168.3.10");
}

TEST_F(streams, bytes_arrive_in_order_then_eof_after_close) {
  std::string a = "220 hello\r\n", b = "250 second\r\n";
  server->async_write_some(asio::buffer(a), [](auto, auto) {});
  w.run();
  server->async_write_some(asio::buffer(b), [](auto, auto) {});
  server->close();
  std::error_code ec;
  const auto got = client_read(1000, 60s, ec);
  EXPECT_EQ(got, a + b);
  EXPECT_EQ(ec, std::error_code(boost::system::error_code(boost::asio::error::eof)))
      << ec.message();
}

// A segment waiting for a broken path holds back the later ones: after the partition heals the
// reader sees the bytes in the order they were written, as TCP guarantees.
TEST_F(streams, bytes_stay_in_order_across_a_partition_that_heals) {
  std::string a = "250 2.1.0 Ok\r\n", b = "250 2.1.5 Ok\r\n", c = "354 End data\r\n";
  net.partition({"relay"}, {"client"});
  server->async_write_some(asio::buffer(a), [](auto, auto) {});
  w.schedule_after(1500ms, [&] { server->async_write_some(asio::buffer(b), [](auto, auto) {}); });
  w.schedule_after(1900ms, [&] { server->async_write_some(asio::buffer(c), [](auto, auto) {}); });
  w.schedule_after(2100ms, [&] { net.heal(); });
  std::error_code ec;
  const auto got = client_read(a.size() + b.size() + c.size(), 60s, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got, a + b + c);
}

TEST_F(streams, read_times_out_on_the_virtual_clock) {
  std::error_code ec;
  const time_point start = w.now();
  const auto got = client_read(1, 300s, ec);
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(ec, std::errc::timed_out);
  EXPECT_EQ(w.now() - start, duration(300s));
}

TEST_F(streams, pending_read_is_aborted_by_close) {
  char buf[10];
  boost::system::error_code got;
  server->async_read_some(asio::buffer(buf), [&](auto ec, std::size_t) { got = ec; });
  w.schedule_after(1s, [&] { server->close(); });
  w.run();
  EXPECT_EQ(got, asio::error::operation_aborted);
}

TEST_F(streams, writer_is_held_back_when_the_reader_does_not_read) {
  const std::string big(net.limits().window_bytes * 3, 'x');
  std::size_t written = 0;
  bool finished = false;
  asio::co_spawn(
      w.io(),
      [&]() -> asio::awaitable<void> {
        std::error_code ec;
        co_await client->write_all(big, net::duration(10'000), ec);
        finished = !ec;
        written = ec ? 0 : big.size();
      },
      asio::detached);
  w.run();
  EXPECT_FALSE(finished);  // the window filled; the write timed out after 10 s
  std::string received;
  // Drain the server and write again: everything gets through.
  asio::co_spawn(
      w.io(),
      [&]() -> asio::awaitable<void> {
        std::error_code ec;
        co_await client->write_all(big, net::duration(60'000), ec);
        finished = !ec;
      },
      asio::detached);
  std::vector<char> buf(4096);
  std::function<void()> drain = [&] {
    server->async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t n) {
      received.append(buf.data(), n);
      if (!ec && received.size() < 4 * big.size()) drain();
    });
  };
  drain();
  w.run_until([&] { return finished && received.size() >= big.size(); });
  EXPECT_TRUE(finished);
  EXPECT_GE(received.size(), big.size());
}

TEST_F(streams, peer_crash_then_restart_resets_the_connection) {
  ASSERT_FALSE(net.crash_host("relay"));
  char buf[10];
  boost::system::error_code server_ec;
  server->async_read_some(asio::buffer(buf), [&](auto ec, std::size_t) { server_ec = ec; });
  w.run();
  EXPECT_EQ(server_ec, asio::error::connection_aborted);  // its own host died
  w.schedule_after(5s, [&] { ASSERT_FALSE(net.restart_host("relay")); });
  std::error_code ec;
  asio::co_spawn(
      w.io(),
      [&]() -> asio::awaitable<void> {
        co_await client->write_all(std::string("QUIT\r\n"), net::duration(600'000), ec);
        // The write is accepted locally; the reset shows on the next operation.
        char b[10];
        co_await client->read_some(std::span<char>(b), net::duration(600'000), ec);
      },
      asio::detached);
  w.run();
  EXPECT_EQ(ec, std::errc::connection_reset) << ec.message();
}

// A minimal engine with the members run_connection needs (see relay/net/driver.hpp).
class echo_engine {
 public:
  explicit echo_engine(net::timestamp now) : deadline_(now + net::timestamp(60s)) {
    out_ = "220 sim\r\n";
  }
  void receive(std::span<const char> bytes, net::timestamp now) {
    deadline_ = now + net::timestamp(60s);
    in_.append(bytes.data(), bytes.size());
    for (std::size_t pos; !closing_ && (pos = in_.find("\r\n")) != std::string::npos;) {
      const std::string line = in_.substr(0, pos);
      in_.erase(0, pos + 2);
      if (line == "QUIT") {
        out_ += "221 bye\r\n";
        closing_ = true;
      } else {
        out_ += "250 " + line + "\r\n";
      }
    }
  }
  void receive_eof(net::timestamp) { closing_ = true; }
  void advance(net::timestamp now) {
    if (now >= deadline_ && !closing_) {
      out_ += "421 timeout\r\n";
      closing_ = true;
    }
  }
  std::string_view output() const { return out_; }
  void consume_output(std::size_t n) { out_.erase(0, n); }
  std::optional<net::timestamp> deadline() const { return deadline_; }
  bool closing() const { return closing_; }

 private:
  std::string in_, out_;
  net::timestamp deadline_;
  bool closing_ = false;
};

struct echo_connection {
  echo_engine engine;
  echo_engine& session() { return engine; }
  void run_pending(net::timestamp) {}
};

TEST_F(streams, relay_net_driver_runs_unchanged_over_sim_streams) {
  auto clock = [this] { return net::timestamp(w.now()); };
  echo_connection conn{echo_engine(clock())};
  std::optional<net::driver_result> result;
  asio::co_spawn(
      w.io(),
      [&]() -> asio::awaitable<void> {
        result = co_await net::run_connection<timer>(*server, conn, nullptr, clock);
      },
      asio::detached);
  std::error_code ec;
  asio::co_spawn(
      w.io(),
      [&]() -> asio::awaitable<void> {
        co_await client->write_all(std::string("HELO x\r\nQUIT\r\n"), net::duration(1000), ec);
      },
      asio::detached);
  const auto got = client_read(1000, 60s, ec);
  EXPECT_EQ(got, "220 sim\r\n250 HELO x\r\n221 bye\r\n");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->end, net::driver_end::closed);
}

TEST_F(streams, driver_session_timeout_fires_on_virtual_time) {
  auto clock = [this] { return net::timestamp(w.now()); };
  echo_connection conn{echo_engine(clock())};
  std::optional<net::driver_result> result;
  asio::co_spawn(
      w.io(),
      [&]() -> asio::awaitable<void> {
        result = co_await net::run_connection<timer>(*server, conn, nullptr, clock);
      },
      asio::detached);
  std::error_code ec;
  const auto got = client_read(1000, 600s, ec);
  EXPECT_EQ(got, "220 sim\r\n421 timeout\r\n");
  ASSERT_TRUE(result);
  EXPECT_GE(w.now(), duration(60s));
}

// A coroutine that owns the socket it waits on, and one that owns the timer it waits on, form
// cycles with their pending operations; world::shutdown() must still destroy their frames (the
// objects they own go with them), and with nothing left pending.
TEST(shutdown, destroys_frames_suspended_on_sockets_and_timers_they_own) {
  world w{world_options{3, {}}};
  std::vector<network_error> errors;
  network n{w, test::handson_network(), errors};
  ASSERT_TRUE(errors.empty());
  auto frames_alive = std::make_shared<int>(0);
  struct sentinel {
    std::shared_ptr<int> count;
    explicit sentinel(std::shared_ptr<int> c) : count(std::move(c)) { ++*count; }
    ~sentinel() { --*count; }
  };
  ASSERT_FALSE(n.listen("relay", 25, [&](accepted a) {
    std::shared_ptr<socket> sock(std::move(a.stream));
    asio::co_spawn(
        w.executor(),
        [sock, frames_alive]() -> asio::awaitable<void> {
          sentinel s(frames_alive);
          char buf[16];
          boost::system::error_code ec;
          co_await sock->async_read_some(asio::buffer(buf),
                                         asio::redirect_error(asio::use_awaitable, ec));
        },
        asio::detached);
  }));
  host_connector connector{n, "client"};
  asio::co_spawn(
      w.executor(),
      [&connector, frames_alive]() -> asio::awaitable<void> {
        sentinel s(frames_alive);
        std::error_code ec;
        auto stream = co_await connector.connect("192.168.2.44", 25, 30s, ec);
        char buf[16];
        if (stream) co_await stream->read_some(std::span<char>(buf), net::duration::max(), ec);
      },
      asio::detached);
  asio::co_spawn(
      w.executor(),
      [frames_alive]() -> asio::awaitable<void> {
        sentinel s(frames_alive);
        timer t(co_await asio::this_coro::executor);
        t.expires_after(std::chrono::hours(1000));
        boost::system::error_code ec;
        co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      },
      asio::detached);
  w.run(run_limits{std::chrono::hours(1), 100000});
  EXPECT_EQ(*frames_alive, 3);  // all three are suspended
  EXPECT_EQ(w.operations_pending(), 3u);
  w.shutdown();
  EXPECT_EQ(*frames_alive, 0);
  EXPECT_EQ(w.operations_pending(), 0u);
}

// relay/tls over sim streams: the server side is tls::server_stream on a sim socket (as the
// relay's smtpd and the fake MX run it), the client side tls::client_stream on the
// byte_stream (as the delivery agent runs it). Certificates come from an in-memory CA on the
// world's virtual clock and are checked against that clock.
struct tls_streams : streams {
  tls::authority ca{"Sim CA", tls::key_kind::ed25519, w.wall_now()};

  std::shared_ptr<tls::server_context> server_context(const tls::issued& cert) {
    tls::server_settings s;
    s.level = tls::server_level::may;
    s.pem_pairs.push_back({cert.chain_pem, cert.key_pem});
    std::string error;
    auto ctx = tls::server_context::create(s, error);
    EXPECT_TRUE(ctx) << error;
    return ctx;
  }
  std::shared_ptr<tls::client_context> client_context() {
    tls::client_settings s;
    s.level = tls::client_level::verify;
    s.ca_pem = ca.ca_pem();
    std::string error;
    auto ctx = tls::client_context::create(s, error);
    EXPECT_TRUE(ctx) << error;
    return ctx;
  }

  // Handshakes, then the client sends "ping" and the server answers "pong".
  struct outcome {
    std::error_code client_ec;
    boost::system::error_code server_ec;
    tls::trust trust = tls::trust::untrusted;
    std::string verify_error;
    std::string server_got, client_got;
  };
  outcome run(const tls::issued& cert) {
    outcome o;
    tls::server_stream<socket> srv(*server, server_context(cert));
    tls::client_stream cli(std::move(client), client_context());
    cli.set_verify_time(w.wall_now());
    asio::co_spawn(
        w.io(),
        [&]() -> asio::awaitable<void> {
          co_await srv.async_start_tls(asio::redirect_error(asio::use_awaitable, o.server_ec));
          if (o.server_ec) co_return;
          std::string buf(16, '\0');
          const auto n = co_await srv.async_read_some(
              asio::buffer(buf), asio::redirect_error(asio::use_awaitable, o.server_ec));
          o.server_got = buf.substr(0, n);
          co_await asio::async_write(srv, asio::buffer(std::string_view("pong")),
                                     asio::redirect_error(asio::use_awaitable, o.server_ec));
        },
        asio::detached);
    asio::co_spawn(
        w.io(),
        [&]() -> asio::awaitable<void> {
          std::vector<std::string> names{"mx.example"};  // (GCC 12: no init-list in co_await)
          co_await cli.handshake("mx.example", names, net::duration(60'000), o.client_ec);
          o.trust = cli.peer_trust();
          o.verify_error = cli.verify_error();
          if (o.client_ec) co_return;
          co_await cli.write_all(std::string("ping"), net::duration(60'000), o.client_ec);
          std::string buf(16, '\0');
          const auto n =
              co_await cli.read_some(std::span<char>(buf), net::duration(60'000), o.client_ec);
          o.client_got = buf.substr(0, n);
        },
        asio::detached);
    w.run();
    return o;
  }
};

TEST_F(tls_streams, handshake_and_data_run_over_sim_streams_on_virtual_time) {
  const auto start = w.now();
  const auto o = run(ca.issue({"mx.example"}, tls::key_kind::ed25519));
  EXPECT_FALSE(o.client_ec) << o.client_ec.message();
  EXPECT_FALSE(o.server_ec) << o.server_ec.message();
  EXPECT_EQ(o.trust, tls::trust::verified) << o.verify_error;
  EXPECT_EQ(o.server_got, "ping");
  EXPECT_EQ(o.client_got, "pong");
  EXPECT_GT(w.now(), start);  // the handshake's flights took virtual time
}

TEST_F(tls_streams, a_certificate_expired_on_the_virtual_clock_does_not_verify) {
  const auto o = run(ca.issue({"mx.example"}, tls::key_kind::ed25519, -std::chrono::hours(48),
                              -std::chrono::hours(24)));
  EXPECT_FALSE(o.client_ec);  // the handshake completes; trust is judged after it
  EXPECT_EQ(o.trust, tls::trust::untrusted);
  EXPECT_EQ(o.verify_error, "certificate has expired");
}

TEST_F(tls_streams, a_self_signed_certificate_does_not_verify) {
  const auto o =
      run(tls::authority::self_signed("mx.example", tls::key_kind::ed25519, w.wall_now()));
  EXPECT_FALSE(o.client_ec);
  EXPECT_EQ(o.trust, tls::trust::untrusted);
  EXPECT_EQ(o.verify_error, "self-signed certificate");
}

TEST_F(tls_streams, handshake_bytes_have_the_same_length_every_run) {
  // With Ed25519 and X25519 every flight has a fixed size, so virtual time does not depend
  // on the keys drawn: two runs end at the same virtual instant.
  const auto start = w.now();
  run(ca.issue({"mx.example"}, tls::key_kind::ed25519));
  const auto first = w.now() - start;
  // A second, independent run of the same scenario (new keys, same sizes).
  struct another : tls_streams {
    void TestBody() override {}
  } again;
  again.SetUp();
  const auto start2 = again.w.now();
  again.run(again.ca.issue({"mx.example"}, tls::key_kind::ed25519));
  EXPECT_EQ(again.w.now() - start2, first);
}

}  // namespace
}  // namespace relaylab::sim
