#include "fakes/load/load.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "fakes/client/test_support.hpp"
#include "fakes/mx/in_process.hpp"
#include "fakes/mx/tcp_listener.hpp"
#include "fakes/mx/tls.hpp"
#include "relay/net/tcp_stream.hpp"
#include "relay/tls/client.hpp"

namespace relaylab::fakes::load {
namespace {

namespace asio = boost::asio;

mx::script script_of(std::string_view text) {
  mx::parse_error err;
  auto s = mx::parse_script(text, "t", err);
  EXPECT_TRUE(s) << err.to_string();
  return s ? *s : mx::script{};
}

load_report run_in_process(mx::server& srv, load_options o) {
  asio::io_context io;
  test::virtual_runtime rt(io);
  mx::in_process_connector conn(srv, rt);
  auto f = asio::co_spawn(io, run_load(o, conn, rt), asio::use_future);
  io.run();
  return f.get();
}

TEST(load, counts_agree_with_the_mailbox) {
  mx::server srv(script_of(""));
  load_options o;
  o.sessions = 3;
  o.messages = 10;
  o.message_bytes = 500;
  o.from = "src@load.example";
  o.to = "dst@x.example";
  o.recipients = 2;
  const auto r = run_in_process(srv, o);
  EXPECT_EQ(r.messages_ok, 10u);
  EXPECT_EQ(r.messages_failed, 0u);
  EXPECT_EQ(r.connections, 10u);  // one per message without -d
  EXPECT_EQ(r.recipients_ok, 20u);
  ASSERT_EQ(srv.mailbox().size(), 10u);
  EXPECT_EQ(srv.mailbox()[0].recipients,
            (std::vector<std::string>{"1dst@x.example", "2dst@x.example"}));
  EXPECT_EQ(srv.mailbox()[0].data, make_message(o));
  EXPECT_EQ(r.latency[static_cast<std::size_t>(phase::mail)].count(), 10u);
  EXPECT_EQ(r.latency[static_cast<std::size_t>(phase::connect)].count(), 10u);
}

TEST(load, message_size_is_what_was_asked) {
  load_options o;
  o.message_bytes = 1000;
  const auto m = make_message(o);
  const auto headers = m.find("\r\n\r\n") + 4;
  EXPECT_EQ(m.size() - headers, 1000u);
  for (std::size_t p = headers; p < m.size(); p = m.find("\r\n", p) + 2) {
    EXPECT_LE(m.find("\r\n", p) - p, 76u);
  }
}

TEST(load, reuses_connections_and_authenticates) {
  mx::server srv(script_of("auth user u pw\nauth required\n"));
  load_options o;
  o.sessions = 2;
  o.messages = 6;
  o.reuse_connection = true;
  o.auth = auth_credentials{"PLAIN", "u", "pw"};
  const auto r = run_in_process(srv, o);
  EXPECT_EQ(r.messages_ok, 6u);
  EXPECT_EQ(r.connections, 2u);
  EXPECT_EQ(r.auth_ok, 2u);
  EXPECT_EQ(srv.counts().auth_success, 2u);
  EXPECT_EQ(srv.counts().sessions_total, 2u);
  o.auth = auth_credentials{"LOGIN", "u", "pw"};
  o.reuse_connection = false;
  const auto r2 = run_in_process(srv, o);
  EXPECT_EQ(r2.messages_ok, 6u);
  EXPECT_EQ(r2.auth_ok, 6u);
}

TEST(load, errors_by_reply_code) {
  mx::server srv(
      script_of("stage mail reply \"451 4.3.2 busy\" times 2\n"
                "stage connect reply \"421 4.3.2 go away\" times 1\n"));
  load_options o;
  o.messages = 6;
  o.pipelining = true;
  const auto r = run_in_process(srv, o);
  EXPECT_EQ(r.messages_ok, 3u);
  EXPECT_EQ(r.messages_failed, 3u);
  EXPECT_EQ(r.errors.at("451"), 2u);
  EXPECT_EQ(r.errors.at("421"), 1u);
  EXPECT_EQ(srv.mailbox().size(), 3u);
  const auto j = r.format_json();
  EXPECT_NE(j.find("\"errors\":{\"421\":1,\"451\":2}"), std::string::npos) << j;
  EXPECT_NE(r.format_text().find("errors: [421]=1 [451]=2"), std::string::npos);
}

TEST(load, percentiles) {
  histogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) h.add(v * 100);
  EXPECT_EQ(h.count(), 100u);
  // Bucket lower bounds, within the histogram's 1/16 resolution.
  EXPECT_NEAR(static_cast<double>(h.quantile(0.5)), 5000.0, 5000.0 / 16);
  EXPECT_NEAR(static_cast<double>(h.quantile(0.99)), 9900.0, 9900.0 / 16);
  EXPECT_EQ(histogram().quantile(0.5), 0u);
}

// Over real loopback TCP: relay/net's TCP connector and the fake MX on an acceptor.
TEST(load, over_loopback_tcp_against_the_fake_mx) {
  using tcp = asio::ip::tcp;
  asio::io_context io;
  mx::server srv(script_of("rcpt 3dst@x.example reply \"550 5.1.1 no\"\n"));
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      io, mx::serve_tcp(acc, srv, [start] { return std::chrono::steady_clock::now() - start; }),
      asio::detached);
  net::tcp_connector conn(io.get_executor());
  net::system_runtime rt(io.get_executor());
  load_options o;
  o.port = acc.local_endpoint().port();
  o.sessions = 4;
  o.messages = 20;
  o.recipients = 3;
  o.to = "dst@x.example";
  o.pipelining = true;
  auto f = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<load_report> {
        auto r = co_await run_load(o, conn, rt);
        acc.close();
        co_return r;
      },
      asio::use_future);
  io.run_for(std::chrono::seconds(60));
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  const auto r = f.get();
  EXPECT_EQ(r.messages_ok, 20u);
  EXPECT_EQ(r.recipients_ok, 40u);
  EXPECT_EQ(srv.counts().messages, 20u);
  EXPECT_EQ(srv.counts().sessions_total, 20u);
  EXPECT_EQ(srv.counts().rejected, 20u);
}

// TLS load over loopback: STARTTLS or implicit TLS, verified against the test CA or not.
struct tls_run {
  load_report report;
  std::unique_ptr<mx::server> srv;
};

tls_run tls_load(mx::cert_kind kind, load_options::tls_mode mode, bool verify,
                 bool resume = false) {
  using tcp = asio::ip::tcp;
  tls::authority ca("Relaylab Test CA");
  std::string error;
  mx::server_options so;
  mx::tls_options t;
  t.wrappermode = mode == load_options::tls_mode::implicit;
  so.tls = mx::make_tls_context(ca, kind, {"127.0.0.1"}, tls::key_kind::ecdsa_p256, error, t);
  EXPECT_TRUE(so.tls) << error;
  auto srv = std::make_unique<mx::server>(mx::script{}, so);
  asio::io_context io;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      io, mx::serve_tcp(acc, *srv, [start] { return std::chrono::steady_clock::now() - start; }),
      asio::detached);
  net::tcp_connector conn(io.get_executor());
  net::system_runtime rt(io.get_executor());
  load_options o;
  o.port = acc.local_endpoint().port();
  o.sessions = 2;
  o.messages = 4;
  o.tls_use = mode;
  o.tls_verify = verify;
  tls::client_settings cs;
  cs.level = tls::client_level::encrypt;
  cs.ca_pem = ca.ca_pem();
  o.tls = tls::client_context::create(cs, error);
  EXPECT_TRUE(o.tls) << error;
  if (resume && o.tls) o.tls->enable_resumption();
  auto f = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<load_report> {
        auto r = co_await run_load(o, conn, rt);
        acc.close();
        co_return r;
      },
      asio::use_future);
  io.run_for(std::chrono::seconds(60));
  EXPECT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  return {f.get(), std::move(srv)};
}

TEST(load_tls, starttls_verified) {
  const auto [r, srv] = tls_load(mx::cert_kind::good, load_options::tls_mode::starttls, true);
  EXPECT_EQ(r.messages_ok, 4u);
  EXPECT_EQ(srv->counts().tls_sessions, 4u);
  ASSERT_EQ(srv->mailbox().size(), 4u);
  EXPECT_TRUE(srv->mailbox()[0].tls);
}

// --tls-resume: each of the 2 sessions does a full handshake first; its next connection
// presents a ticket the server sent, and the resumed session is still "Verified".
TEST(load_tls, resumed_sessions_stay_verified) {
  const auto [r, srv] = tls_load(mx::cert_kind::good, load_options::tls_mode::starttls, true, true);
  EXPECT_EQ(r.messages_ok, 4u);
  EXPECT_EQ(r.tls_sessions, 4u);
  EXPECT_EQ(r.tls_resumed, 2u);
  EXPECT_EQ(srv->counts().tls_sessions, 4u);
  const auto full = tls_load(mx::cert_kind::good, load_options::tls_mode::starttls, true);
  EXPECT_EQ(full.report.tls_sessions, 4u);
  EXPECT_EQ(full.report.tls_resumed, 0u);
}

TEST(load_tls, implicit_tls) {
  const auto [r, srv] = tls_load(mx::cert_kind::good, load_options::tls_mode::implicit, true);
  EXPECT_EQ(r.messages_ok, 4u);
  EXPECT_EQ(srv->counts().tls_sessions, 4u);
}

TEST(load_tls, untrusted_fails_only_when_verifying) {
  auto strict = tls_load(mx::cert_kind::self_signed, load_options::tls_mode::starttls, true);
  EXPECT_EQ(strict.report.messages_ok, 0u);
  EXPECT_EQ(strict.report.errors["tls: untrusted (self-signed certificate)"], 4u);
  EXPECT_EQ(strict.srv->counts().messages, 0u);
  const auto lax = tls_load(mx::cert_kind::self_signed, load_options::tls_mode::starttls, false);
  EXPECT_EQ(lax.report.messages_ok, 4u);
}

TEST(load_tls, starttls_not_offered) {
  using tcp = asio::ip::tcp;
  asio::io_context io;
  mx::server srv(mx::script{});
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      io, mx::serve_tcp(acc, srv, [start] { return std::chrono::steady_clock::now() - start; }),
      asio::detached);
  net::tcp_connector conn(io.get_executor());
  net::system_runtime rt(io.get_executor());
  load_options o;
  o.port = acc.local_endpoint().port();
  o.messages = 2;
  o.tls_use = load_options::tls_mode::starttls;
  std::string error;
  o.tls = tls::client_context::create(tls::client_settings{}, error);
  auto f = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<load_report> {
        auto r = co_await run_load(o, conn, rt);
        acc.close();
        co_return r;
      },
      asio::use_future);
  io.run_for(std::chrono::seconds(60));
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  auto r = f.get();
  EXPECT_EQ(r.messages_ok, 0u);
  EXPECT_EQ(r.errors["tls: not offered"], 2u);
  EXPECT_EQ(srv.counts().messages, 0u);
}

}  // namespace
}  // namespace relaylab::fakes::load
