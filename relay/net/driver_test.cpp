// The driver and daemon over real loopback TCP, with a small line engine standing in for
// smtp::server_session (same member functions), so the transport is tested on its own.
#include "relay/net/driver.hpp"
#include "relay/log/log.hpp"
#include "relay/net/daemon.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>

namespace relaylab::net {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Line engine: "QUIT" → "221 bye" and close; "WAIT" → reply only after run_pending();
// anything else → "250 <line>". Times out (421) when `timeout` passes without input.
class line_engine {
 public:
  explicit line_engine(timestamp now, timestamp timeout = timestamp(10s))
      : timeout_(timeout), deadline_(now + timeout) {
    out_ = "220 ready\r\n";
  }
  void receive(std::span<const char> bytes, timestamp now) {
    deadline_ = now + timeout_;
    in_.append(bytes.data(), bytes.size());
    for (std::size_t pos; !closing_ && (pos = in_.find("\r\n")) != std::string::npos;) {
      const std::string line = in_.substr(0, pos);
      in_.erase(0, pos + 2);
      ++lines_;
      if (line == "QUIT") {
        out_ += "221 bye\r\n";
        closing_ = true;
      } else if (line == "WAIT") {
        ++waiting_;
      } else {
        out_ += "250 " + line + "\r\n";
      }
    }
    max_output_ = std::max(max_output_.load(), out_.size());
  }
  void receive_eof(timestamp) {
    eof_ = true;
    closing_ = true;
  }
  void advance(timestamp now) {
    if (now >= deadline_ && !closing_) {
      out_ += "421 timeout\r\n";
      closing_ = true;
      timed_out_ = true;
    }
  }
  std::string_view output() const noexcept { return out_; }
  void consume_output(std::size_t n) noexcept { out_.erase(0, n); }
  std::optional<timestamp> deadline() const noexcept {
    if (closing_) return std::nullopt;
    return deadline_;
  }
  bool closing() const noexcept { return closing_; }

  void complete_waits() {
    for (; waiting_ > 0; --waiting_) out_ += "250 done\r\n";
  }

  std::atomic<std::size_t> max_output_{0};
  std::atomic<std::uint64_t> lines_{0};
  bool eof_ = false;
  bool timed_out_ = false;

 private:
  timestamp timeout_;
  timestamp deadline_;
  std::string in_, out_;
  bool closing_ = false;
  int waiting_ = 0;
};

struct fake_connection {
  explicit fake_connection(timestamp now, timestamp timeout = timestamp(10s))
      : engine(now, timeout) {}
  line_engine& session() { return engine; }
  void run_pending(timestamp) {
    ++pending_runs;
    engine.complete_waits();
  }
  line_engine engine;
  int pending_runs = 0;
};

timestamp steady_now() {
  return std::chrono::duration_cast<timestamp>(std::chrono::steady_clock::now().time_since_epoch());
}

// A server io_context on its own thread, one accepted socket driven by run_connection, and a
// blocking client socket for the test body.
class driver_fixture : public ::testing::Test {
 protected:
  void start(clock_fn now, driver_options opt = {}, timestamp timeout = timestamp(10s),
             bool small_kernel_buffers = false) {
    tcp::acceptor acceptor(server_io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    if (small_kernel_buffers) {
      // So that back-pressure reaches the driver after kilobytes, not megabytes.
      client_.open(tcp::v4());
      client_.set_option(asio::socket_base::receive_buffer_size(4096));
    }
    client_.connect(acceptor.local_endpoint());
    tcp::socket server_sock = acceptor.accept();
    if (small_kernel_buffers) server_sock.set_option(asio::socket_base::send_buffer_size(4096));
    conn_ = std::make_unique<fake_connection>(now(), timeout);
    auto ex = server_io_.get_executor();
    signal_ = make_connection_signal([ex](std::function<void()> f) { asio::post(ex, f); });
    result_ = asio::co_spawn(
        server_io_,
        [this, s = std::move(server_sock), now, opt]() mutable -> asio::awaitable<driver_result> {
          co_return co_await run_connection<asio::steady_timer>(s, *conn_, signal_, now, opt);
        },
        asio::use_future);
    thread_ = std::thread([this] { server_io_.run(); });
  }
  void TearDown() override {
    if (thread_.joinable()) {
      if (result_.valid()) result_.wait_for(10s);
      server_io_.stop();
      thread_.join();
    }
  }
  std::string read_line() {
    const std::size_t n = asio::read_until(client_, rbuf_, "\r\n");
    std::string line(asio::buffers_begin(rbuf_.data()), asio::buffers_begin(rbuf_.data()) + n);
    rbuf_.consume(n);
    return line.substr(0, line.size() - 2);
  }
  void send(const std::string& s) { asio::write(client_, asio::buffer(s)); }
  ::testing::AssertionResult wait_result(driver_end want) {
    if (result_.wait_for(20s) != std::future_status::ready) {
      return ::testing::AssertionFailure() << "driver did not finish";
    }
    const auto r = result_.get();
    if (r.end != want) {
      return ::testing::AssertionFailure()
             << "driver ended with " << to_string(r.end) << " (" << r.error.message() << ")";
    }
    return ::testing::AssertionSuccess();
  }

  asio::io_context server_io_;
  asio::io_context client_io_;
  tcp::socket client_{client_io_};
  asio::streambuf rbuf_;
  std::unique_ptr<fake_connection> conn_;
  std::shared_ptr<connection_signal> signal_;
  std::future<driver_result> result_;
  std::thread thread_;
};

TEST_F(driver_fixture, greeting_replies_and_close_after_quit) {
  start(steady_now);
  EXPECT_EQ(read_line(), "220 ready");
  send("HELO a\r\nNOOP\r\n");
  EXPECT_EQ(read_line(), "250 HELO a");
  EXPECT_EQ(read_line(), "250 NOOP");
  send("QUIT\r\n");
  EXPECT_EQ(read_line(), "221 bye");
  EXPECT_TRUE(wait_result(driver_end::closed));
  // The server closed its side: the client sees EOF.
  boost::system::error_code ec;
  char c;
  client_.read_some(asio::buffer(&c, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);
}

TEST_F(driver_fixture, peer_eof_reaches_the_session) {
  start(steady_now);
  EXPECT_EQ(read_line(), "220 ready");
  client_.shutdown(tcp::socket::shutdown_send);
  EXPECT_TRUE(wait_result(driver_end::peer_eof));
  EXPECT_TRUE(conn_->engine.eof_);
}

TEST_F(driver_fixture, notify_from_another_thread_runs_pending_work) {
  start(steady_now);
  EXPECT_EQ(read_line(), "220 ready");
  send("WAIT\r\n");
  // The reply only comes after run_pending(): notify from a foreign thread, as the queue's
  // committer does. Wait until the engine has seen the line first.
  for (int i = 0; i < 20000 && conn_->engine.lines_.load() < 1; ++i) std::this_thread::yield();
  ASSERT_EQ(conn_->engine.lines_.load(), 1u);
  std::thread([n = signal_->notifier()] { n(); }).join();
  EXPECT_EQ(read_line(), "250 done");
  send("QUIT\r\n");
  EXPECT_EQ(read_line(), "221 bye");
  EXPECT_TRUE(wait_result(driver_end::closed));
  EXPECT_EQ(conn_->pending_runs, 1);
}

TEST_F(driver_fixture, deadline_from_the_injected_clock_closes_the_session) {
  // A fake clock: time moves only when the test says so. The timer waits the (long) fake
  // remaining time; a notify wakes the loop, which sees the deadline passed on the fake clock.
  auto fake = std::make_shared<std::atomic<std::int64_t>>(0);
  start([fake] { return timestamp(fake->load()); }, {}, timestamp(300s));
  EXPECT_EQ(read_line(), "220 ready");
  fake->store(timestamp(301s).count());
  signal_->notifier()();
  EXPECT_EQ(read_line(), "421 timeout");
  EXPECT_TRUE(wait_result(driver_end::closed));
  EXPECT_TRUE(conn_->engine.timed_out_);
}

TEST_F(driver_fixture, deadline_timer_fires_without_other_events) {
  start(steady_now, {}, timestamp(20ms));
  EXPECT_EQ(read_line(), "220 ready");
  EXPECT_EQ(read_line(), "421 timeout");
  EXPECT_TRUE(wait_result(driver_end::closed));
}

TEST_F(driver_fixture, pipelined_flood_keeps_output_bounded) {
  driver_options opt;
  opt.read_buffer_bytes = 512;
  opt.output_bytes_max = 4096;
  opt.write_chunk_bytes = 1024;
  start(steady_now, opt, timestamp(60s), true);
  EXPECT_EQ(read_line(), "220 ready");
  constexpr int lines = 200000;  // ~1.2 MB in, ~2 MB of replies
  std::thread writer([this] {
    std::string chunk;
    for (int i = 0; i < 1000; ++i) chunk += "NOOP\r\n";
    for (int i = 0; i < lines / 1000; ++i) asio::write(client_, asio::buffer(chunk));
    asio::write(client_, asio::buffer(std::string("QUIT\r\n")));
  });
  // Let the server fill the socket buffers before the client reads anything: the reader, which
  // writes its replies itself, must stop reading while its write waits, not queue replies.
  std::uint64_t seen = 0;
  for (int still = 0, i = 0; still < 2000 && i < 2000000; ++i) {
    const std::uint64_t now_seen = conn_->engine.lines_.load();
    still = now_seen == seen ? still + 1 : 0;
    seen = now_seen;
    std::this_thread::yield();
  }
  EXPECT_LT(seen, static_cast<std::uint64_t>(lines));  // it stopped before the end
  int replies = 0;
  for (std::string l; (l = read_line()) != "221 bye";) {
    ASSERT_EQ(l, "250 NOOP");
    ++replies;
  }
  writer.join();
  EXPECT_EQ(replies, lines);
  EXPECT_TRUE(wait_result(driver_end::closed));
  // One read's worth of replies may land on top of the bound (512 bytes → at most 86 lines).
  EXPECT_LE(conn_->engine.max_output_.load(), opt.output_bytes_max + 86 * 10);
}

TEST_F(driver_fixture, stop_request_closes_the_connection) {
  start(steady_now);
  EXPECT_EQ(read_line(), "220 ready");
  asio::post(server_io_, [s = signal_] { s->request_stop(); });
  EXPECT_TRUE(wait_result(driver_end::stopped));
}

// ---- daemon ------------------------------------------------------------------------------

TEST(address_text, matches_asio_to_string) {
  for (const char* text : {"0.0.0.0", "1.2.3.4", "9.10.99.100", "127.0.0.1", "192.168.200.255",
                           "255.255.255.255", "::1", "2001:db8::5", "::ffff:10.0.0.1"}) {
    const auto a = boost::asio::ip::make_address(text);
    EXPECT_EQ(address_text(a), a.to_string()) << text;
    EXPECT_EQ(address_text(a), text);
  }
}

TEST(listen_hosts, inet_interfaces_and_protocols) {
  std::string err;
  EXPECT_EQ(listen_hosts("", {"all"}, {"all"}, err), (std::vector<std::string>{"0.0.0.0", "::"}));
  EXPECT_EQ(listen_hosts("", {"all"}, {"ipv4"}, err), (std::vector<std::string>{"0.0.0.0"}));
  EXPECT_EQ(listen_hosts("", {"loopback-only"}, {"all"}, err),
            (std::vector<std::string>{"127.0.0.1", "::1"}));
  EXPECT_EQ(listen_hosts("", {"127.0.0.1", "[::1]"}, {"ipv6"}, err),
            (std::vector<std::string>{"::1"}));
  EXPECT_EQ(listen_hosts("[::1]", {"all"}, {"all"}, err), (std::vector<std::string>{"::1"}));
  EXPECT_EQ(listen_hosts("127.0.0.2", {"all"}, {"ipv4"}, err),
            (std::vector<std::string>{"127.0.0.2"}));
  EXPECT_TRUE(listen_hosts("", {"mail.example.com"}, {"all"}, err).empty());
  EXPECT_NE(err.find("mail.example.com"), std::string::npos);
  EXPECT_TRUE(listen_hosts("", {"all"}, {"ipv5"}, err).empty());
  EXPECT_NE(err.find("ipv5"), std::string::npos);
  EXPECT_TRUE(listen_hosts("::1", {"all"}, {"ipv4"}, err).empty());
}

// Counts the logger's flushes.
struct counting_sink : log::sink {
  void write(const log::record&) override { ++lines; }
  void flush() override { ++flushes; }
  int lines = 0;
  int flushes = 0;
};

TEST(log_flush_scheduler, a_delay_gathers_the_requests_of_that_time_into_one_flush) {
  for (const auto delay : {std::chrono::milliseconds(0), std::chrono::milliseconds(30)}) {
    SCOPED_TRACE(delay.count());
    asio::io_context io;
    log::logger lg({"relay", [] { return std::chrono::system_clock::time_point{}; }});
    auto owned = std::make_unique<counting_sink>();
    counting_sink& sink = *owned;
    lg.add_sink(std::move(owned));
    lg.set_flush_hook([f = log_flush_scheduler(io.get_executor(), lg, delay)] { f.request(); });
    const log::origin o{"postfix", "smtpd", 1};
    lg.info(o, "one");
    lg.info(o, "two");
    io.poll();  // the posted request runs
    EXPECT_EQ(sink.flushes, delay.count() == 0 ? 1 : 0);
    lg.info(o, "three");  // joins the pending batch (with a delay) or starts the next one
    io.restart();         // poll() ran out of work above
    for (int i = 0; i < 100 && sink.flushes < 2 && delay.count() == 0; ++i) io.poll();
    for (int i = 0; i < 100 && sink.flushes < 1; ++i) io.run_one_for(std::chrono::seconds(1));
    EXPECT_EQ(sink.flushes, delay.count() == 0 ? 2 : 1);
    EXPECT_EQ(sink.lines, 3);
  }
}

TEST(daemon, serves_connections_and_stops_gracefully) {
  asio::io_context io;
  auto sink = std::make_unique<log::memory_sink>(true);
  log::logger lg({"relay.example.com", [] { return std::chrono::system_clock::time_point{}; }});
  lg.add_sink(std::move(sink));
  daemon_options opt;
  opt.drain_timeout_ms = 10s;
  daemon d(io, opt, &lg, {"postfix", "master", 1});
  std::vector<std::string> peers;
  auto handler = [&](tcp::socket s, accepted_connection info) -> asio::awaitable<void> {
    peers.push_back(info.remote_addr);
    fake_connection conn(steady_now());
    co_await run_connection<asio::steady_timer>(s, conn, info.signal, steady_now);
  };
  std::string err;
  ASSERT_FALSE(d.listen({"127.0.0.1", 0}, handler, err)) << err;
  const auto ep = d.endpoints().at(0);
  EXPECT_NE(ep.port(), 0);
  // A second bind to the same port fails with a message naming it.
  daemon other(io, opt, &lg, {"postfix", "master", 1});
  EXPECT_TRUE(other.listen({"127.0.0.1", ep.port()}, handler, err));
  EXPECT_NE(err.find("127.0.0.1 port " + std::to_string(ep.port())), std::string::npos) << err;
  d.start();
  std::thread server([&] { io.run(); });

  asio::io_context cio;
  tcp::socket a(cio), b(cio);
  a.connect(ep);
  b.connect(ep);
  asio::streambuf ba, bb;
  asio::read_until(a, ba, "\r\n");
  asio::read_until(b, bb, "\r\n");
  // Close one session normally; stop the daemon while the other is open, then finish it.
  asio::write(a, asio::buffer(std::string("QUIT\r\n")));
  asio::read_until(a, ba, "221 bye\r\n");
  asio::post(io, [&] { d.stop(); });
  // No new connections after stop(): connect fails, or the connection gets no greeting. It is
  // normally reset when the listener closes, but a handshake that races the close can leave
  // the client side established with nobody behind it: the read is bounded (SO_RCVTIMEO).
  {
    tcp::socket c(cio);
    boost::system::error_code ec;
    c.connect(ep, ec);
    if (!ec) {
      const timeval bound{2, 0};
      ASSERT_EQ(::setsockopt(c.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &bound, sizeof bound), 0);
      char ch;
      // recv(2) itself: Asio's blocking read would poll again after the timeout.
      const ssize_t n = ::recv(c.native_handle(), &ch, 1, 0);
      EXPECT_LE(n, 0) << "a connection accepted after stop() was greeted";
    }
  }
  asio::write(b, asio::buffer(std::string("NOOP\r\nQUIT\r\n")));
  asio::read_until(b, bb, "221 bye\r\n");
  server.join();  // run() returns: no acceptors, no connections left
  EXPECT_EQ(d.active_connections(), 0u);
  EXPECT_EQ(d.accepted_total(), 2u);
  EXPECT_EQ(peers, (std::vector<std::string>{"127.0.0.1", "127.0.0.1"}));
}

TEST(daemon, drain_timeout_closes_idle_connections) {
  asio::io_context io;
  daemon_options opt;
  opt.drain_timeout_ms = 10ms;
  daemon d(io, opt, nullptr, {"postfix", "master", 1});
  driver_end end = driver_end::closed;
  std::string err;
  ASSERT_FALSE(d.listen(
      {"127.0.0.1", 0},
      [&](tcp::socket s, accepted_connection info) -> asio::awaitable<void> {
        fake_connection conn(steady_now());
        auto r = co_await run_connection<asio::steady_timer>(s, conn, info.signal, steady_now);
        end = r.end;
      },
      err))
      << err;
  d.start();
  std::thread server([&] { io.run(); });
  asio::io_context cio;
  tcp::socket a(cio);
  a.connect(d.endpoints().at(0));
  asio::streambuf ba;
  asio::read_until(a, ba, "\r\n");
  asio::post(io, [&] { d.stop(); });
  boost::system::error_code ec;
  asio::read_until(a, ba, "never", ec);
  EXPECT_EQ(ec, asio::error::eof);
  server.join();
  EXPECT_EQ(end, driver_end::stopped);
}

std::vector<std::string> file_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(daemon, batches_log_lines_per_turn_until_stopped) {
  const auto path = (std::filesystem::temp_directory_path() /
                     ("relaylab_daemon_log." + std::to_string(::getpid())))
                        .string();
  std::filesystem::remove(path);
  std::error_code ec;
  log::logger lg({"relay.example.com", [] { return std::chrono::system_clock::time_point{}; }});
  lg.add_sink(log::open_file_sink(path, {.utc = true}, ec));
  ASSERT_FALSE(ec) << ec.message();
  const log::origin o{"postfix", "smtpd", 1};
  asio::io_context io;
  daemon d(io, {}, &lg, {"postfix", "master", 1});
  std::string err;
  ASSERT_FALSE(d.listen(
      {"127.0.0.1", 0},
      [](tcp::socket, accepted_connection) -> asio::awaitable<void> { co_return; }, err))
      << err;
  lg.info(o, "before start");
  EXPECT_EQ(file_lines(path).size(), 1u) << "without the daemon's hook each line is written";
  d.start();
  std::size_t during_turn = 99, next_turn = 99, after_stop = 99;
  std::thread other;
  asio::post(io, [&] {
    lg.info(o, "turn 1 a");
    // Another thread logs into the same batch (the queue manager does).
    other = std::thread([&] { lg.info(o, "turn 1 from another thread"); });
    other.join();
    lg.info(o, "turn 1 b");
    during_turn = file_lines(path).size();
    // Queued behind the flush that the first line posted.
    asio::post(io, [&] {
      next_turn = file_lines(path).size();
      d.stop();  // no connections: batching ends at once
      lg.info(o, "after stop");
      after_stop = file_lines(path).size();
    });
  });
  io.run();
  EXPECT_EQ(during_turn, 1u);
  EXPECT_EQ(next_turn, 4u);
  EXPECT_EQ(after_stop, 5u);
  const auto lines = file_lines(path);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_NE(lines[1].find("turn 1 a"), std::string::npos);
  EXPECT_NE(lines[2].find("turn 1 from another thread"), std::string::npos);
  EXPECT_NE(lines[3].find("turn 1 b"), std::string::npos);
  std::filesystem::remove(path);
}

TEST(verified_peer_name, loopback_and_bad_input) {
  // /etc/hosts maps 127.0.0.1 to localhost on Debian; confirmed by the forward lookup.
  EXPECT_EQ(verified_peer_name("127.0.0.1"), "localhost");
  EXPECT_EQ(verified_peer_name("not-an-address"), "unknown");
}

}  // namespace
}  // namespace relaylab::net
