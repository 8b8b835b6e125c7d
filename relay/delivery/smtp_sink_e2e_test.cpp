// End to end: the smtp agent over real TCP (tcp_connector) into Postfix's smtp-sink on a
// loopback port; smtp-sink's dump file shows what it received.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "relay/delivery/smtp_agent.hpp"
#include "relay/net/tcp_stream.hpp"

extern char** environ;

namespace relaylab::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A resolver that must not be asked: the next hop is a numeric [address].
class no_dns final : public resolver {
 public:
  asio::awaitable<mx_answer> lookup_mx(std::string) override {
    ADD_FAILURE() << "unexpected MX lookup";
    co_return mx_answer{dns_status::servfail, {}};
  }
  asio::awaitable<address_answer> lookup_addresses(std::string, bool, bool) override {
    ADD_FAILURE() << "unexpected address lookup";
    co_return address_answer{dns_status::servfail, {}, {}};
  }
};

// smtp-sink on 127.0.0.1:<free port>, stopped (by its pid) at the end.
class smtp_sink {
 public:
  explicit smtp_sink(const std::filesystem::path& dir) {
    {
      asio::io_context io;
      asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
      port_ = a.local_endpoint().port();
    }
    std::filesystem::permissions(dir, std::filesystem::perms::all);
    const std::string listen = "127.0.0.1:" + std::to_string(port_);
    const std::string dump = (dir / "dump").string();
    std::vector<std::string> args = {RELAYLAB_SMTP_SINK, "-D", dump};
    if (::geteuid() == 0) {
      args.insert(args.end(), {"-u", "nobody"});
    }
    args.insert(args.end(), {listen, "10"});
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
  }
  ~smtp_sink() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  /// Waits (bounded) until the sink accepts connections.
  ::testing::AssertionResult wait_ready() const {
    if (pid_ <= 0) return ::testing::AssertionFailure() << "could not start smtp-sink";
    for (int i = 0; i < 100; ++i) {
      asio::io_context io;
      asio::ip::tcp::socket s(io);
      boost::system::error_code ec;
      s.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
      if (!ec) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(50ms);
    }
    return ::testing::AssertionFailure() << "smtp-sink did not listen on port " << port_;
  }
  std::uint16_t port() const { return port_; }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

TEST(smtp_sink_e2e, delivers_over_tcp_and_the_sink_receives_the_bytes) {
  char tmpl[] = "/tmp/relaylab-sink.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::filesystem::path dir = tmpl;
  {
    smtp_sink sink(dir);
    ASSERT_TRUE(sink.wait_ready());

    asio::io_context io;
    net::tcp_connector connector(io.get_executor());
    net::system_runtime runtime(io.get_executor());
    no_dns dns;
    log::logger logger(log::logger_options{"relay.example.com",
                                           [] { return std::chrono::system_clock::now(); }, 2000});
    auto mem = std::make_unique<log::memory_sink>(true);
    auto* lines = mem.get();
    logger.add_sink(std::move(mem));
    smtp_agent_options o;
    o.client.helo_name = "relay.example.com";
    o.connect_timeout = 5000ms;
    smtp_agent agent(o, connector, runtime, dns, logger, [](std::size_t b) { return b - 1; });

    const std::string content =
        "From: me@example.com\r\nSubject: e2e\r\n\r\nfirst line\r\n.leading dot\r\nlast\r\n";
    job j;
    j.queue_id = "ABCDEF123";
    j.sender = "me@example.com";
    j.recipients = {{0, "one@example.net", {}, 0}, {1, "two@example.net", {}, 0}};
    j.size = content.size();
    j.hop.host = "127.0.0.1";
    j.hop.port = sink.port();
    j.hop.no_mx = true;
    j.arrival = j.queued_active = j.handed_over = std::chrono::system_clock::now();
    j.read_content = [&](std::uint64_t off, std::size_t max, std::string& out) {
      if (off < content.size()) out = content.substr(off, std::min<std::size_t>(max, 10));
      return std::error_code();
    };
    std::vector<recipient_outcome> out;
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { out = co_await agent.deliver(j); }, asio::detached);
    io.run_for(30s);
    ASSERT_EQ(out.size(), 2u);
    for (const auto& o2 : out) {
      EXPECT_EQ(o2.status, outcome_status::sent) << o2.reason;
      EXPECT_EQ(o2.relay, "127.0.0.1[127.0.0.1]:" + std::to_string(sink.port()));
      EXPECT_EQ(o2.dsn, "2.0.0");
    }
    const auto texts = lines->texts();
    ASSERT_EQ(texts.size(), 2u);
    EXPECT_EQ(texts[0].rfind("ABCDEF123: to=<one@example.net>, relay=127.0.0.1[127.0.0.1]:", 0), 0u)
        << texts[0];
    EXPECT_NE(texts[0].find(", dsn=2.0.0, status=sent (250 2.0.0 Ok)"), std::string::npos)
        << texts[0];
  }  // the sink stops here and has flushed its dump
  std::ifstream in(dir / "dump");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string dump = ss.str();
  EXPECT_NE(dump.find("X-Helo-Args: relay.example.com\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("X-Mail-Args: <me@example.com>"), std::string::npos) << dump;
  EXPECT_NE(dump.find("X-Rcpt-Args: <one@example.net>\n"), std::string::npos) << dump;
  EXPECT_NE(dump.find("X-Rcpt-Args: <two@example.net>\n"), std::string::npos) << dump;
  // smtp-sink stores the content as received (dot-stuffing removed), lines ending in LF.
  EXPECT_NE(dump.find("Subject: e2e\n\nfirst line\n.leading dot\nlast\n"), std::string::npos)
      << dump;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace relaylab::delivery
