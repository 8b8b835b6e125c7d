// One test per fake-MX behaviour: each checks the bytes the client saw and the mailbox. The
// sessions are driven sans-IO on a test clock; the last test runs one over loopback TCP through
// relay/net's driver.
#include "fakes/mx/mx.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "fakes/mx/tcp_listener.hpp"
#include "fakes/mx/tls.hpp"
#include "relay/net/driver.hpp"
#include "relay/net/tcp_stream.hpp"
#include "relay/tls/client.hpp"

namespace relaylab::fakes::mx {
namespace {

using namespace std::chrono_literals;

script must_parse(std::string_view text) {
  parse_error err;
  auto s = parse_script(text, "test", err);
  EXPECT_TRUE(s) << err.to_string();
  return s ? *s : script{};
}

// A client on a test clock: what it sent and what it saw.
struct client {
  server& srv;
  timestamp t{};
  std::unique_ptr<connection> c;
  explicit client(server& s, std::string addr = "192.0.2.1") : srv(s) {
    c = srv.open(std::move(addr), "40000", t);
  }
  std::string read() {
    std::string out(c->output());
    c->consume_output(out.size());
    return out;
  }
  std::string say(std::string_view line) {
    std::string data(line);
    data += "\r\n";
    c->receive(std::span<const char>(data.data(), data.size()), t);
    return read();
  }
  // Lets time pass in steps, firing deadlines as a driver would.
  std::string wait(std::chrono::milliseconds d) {
    const timestamp end = t + d;
    for (int i = 0; i < 1000; ++i) {
      const auto dl = c->deadline();
      if (!dl || *dl > end) break;
      t = std::max(t, *dl);
      c->advance(t);
    }
    t = end;
    c->advance(t);
    return read();
  }
  // A whole transaction; returns the reply lines after each command, joined by '|'.
  std::string send_mail(std::string_view from, std::initializer_list<std::string_view> to,
                        std::string_view body) {
    std::string r = say(std::string("MAIL FROM:<") + std::string(from) + ">");
    for (auto rc : to) r += "|" + say(std::string("RCPT TO:<") + std::string(rc) + ">");
    r += "|" + say("DATA");
    std::string content(body);
    content += ".\r\n";
    c->receive(std::span<const char>(content.data(), content.size()), t);
    r += "|" + read();
    return r;
  }
};

TEST(fake_mx, accepts_and_keeps_exact_bytes) {
  server srv(must_parse("hostname mx.test.example\n"));
  client cl(srv);
  EXPECT_EQ(cl.read(), "220 mx.test.example ESMTP relaylab-fake-mx\r\n");
  EXPECT_EQ(cl.say("EHLO c.example").substr(0, 22), "250-mx.test.example\r\n2");
  const auto r = cl.send_mail("a@c.example", {"b@x.example", "c@x.example"},
                              "Subject: hi\r\n\r\n..dot line\r\nbody\r\n");
  EXPECT_EQ(r,
            "250 2.1.0 Ok\r\n|250 2.1.5 Ok\r\n|250 2.1.5 Ok\r\n|354 End data with "
            "<CR><LF>.<CR><LF>\r\n|250 2.0.0 Ok: queued as FAKE00000001\r\n");
  ASSERT_EQ(srv.mailbox().size(), 1u);
  const auto& m = srv.mailbox()[0];
  EXPECT_EQ(m.sender, "a@c.example");
  EXPECT_EQ(m.recipients, (std::vector<std::string>{"b@x.example", "c@x.example"}));
  EXPECT_EQ(m.data, "Subject: hi\r\n\r\n.dot line\r\nbody\r\n");
  EXPECT_EQ(m.client_addr, "192.0.2.1");
  EXPECT_EQ(m.helo, "c.example");
  EXPECT_EQ(cl.say("QUIT"), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(cl.c->closing());
  EXPECT_EQ(srv.counts().messages, 1u);
  EXPECT_EQ(srv.counts().recipients, 2u);
}

TEST(fake_mx, rejects_one_recipient_with_scripted_reply) {
  server srv(must_parse(
      "rcpt bob@x.example reply \"550 5.1.1 <bob@x.example>: Recipient address rejected\"\n"));
  client cl(srv);
  cl.read();
  cl.say("HELO c.example");
  const auto r = cl.send_mail("a@c.example", {"BOB@x.example", "carol@x.example"}, "x\r\n");
  EXPECT_EQ(r,
            "250 2.1.0 Ok\r\n|550 5.1.1 <bob@x.example>: Recipient address rejected\r\n|"
            "250 2.1.5 Ok\r\n|354 End data with <CR><LF>.<CR><LF>\r\n|"
            "250 2.0.0 Ok: queued as FAKE00000001\r\n");
  ASSERT_EQ(srv.mailbox().size(), 1u);
  EXPECT_EQ(srv.mailbox()[0].recipients, std::vector<std::string>{"carol@x.example"});
  EXPECT_EQ(srv.counts().rejected, 1u);
}

TEST(fake_mx, stage_reply_with_fail_count) {
  server srv(must_parse("stage mail reply \"451 4.3.2 System busy\" times 2\n"));
  // Loop the fail point: the first two sessions fail at MAIL, the third succeeds.
  std::vector<std::string> seen;
  for (int n = 0; n < 5 && srv.mailbox().empty(); ++n) {
    client cl(srv);
    cl.read();
    cl.say("HELO c.example");
    seen.push_back(cl.say("MAIL FROM:<a@c.example>"));
    if (seen.back().starts_with("250")) cl.send_mail("a@c.example", {"b@x.example"}, "x\r\n");
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"451 4.3.2 System busy\r\n",
                                            "451 4.3.2 System busy\r\n", "250 2.1.0 Ok\r\n"}));
  EXPECT_EQ(srv.mailbox().size(), 1u);
}

TEST(fake_mx, greylists_per_triple) {
  server srv(must_parse("greylist 2\n"));
  client cl(srv);
  cl.read();
  cl.say("HELO c.example");
  cl.say("MAIL FROM:<a@c.example>");
  EXPECT_EQ(cl.say("RCPT TO:<b@x.example>"),
            "450 4.2.0 <b@x.example>: Recipient address rejected: Greylisted\r\n");
  EXPECT_EQ(cl.say("RCPT TO:<b@x.example>"),
            "450 4.2.0 <b@x.example>: Recipient address rejected: Greylisted\r\n");
  EXPECT_EQ(cl.say("RCPT TO:<b@x.example>"), "250 2.1.5 Ok\r\n");
  cl.say("RSET");
  // Another sender is another triple; another client address too.
  cl.say("MAIL FROM:<other@c.example>");
  EXPECT_EQ(cl.say("RCPT TO:<b@x.example>").substr(0, 3), "450");
  client cl2(srv, "192.0.2.2");
  cl2.read();
  cl2.say("HELO c.example");
  cl2.say("MAIL FROM:<a@c.example>");
  EXPECT_EQ(cl2.say("RCPT TO:<b@x.example>").substr(0, 3), "450");
  EXPECT_EQ(srv.counts().greylisted, 4u);
  EXPECT_TRUE(srv.mailbox().empty());
}

TEST(fake_mx, delays_a_stage_on_the_injected_clock) {
  server srv(must_parse("stage data delay 5s\n"));
  client cl(srv);
  cl.read();
  cl.say("HELO c.example");
  cl.say("MAIL FROM:<a@c.example>");
  cl.say("RCPT TO:<b@x.example>");
  EXPECT_EQ(cl.say("DATA"), "");
  EXPECT_EQ(cl.wait(4999ms), "");
  EXPECT_FALSE(cl.c->closing());
  EXPECT_EQ(cl.wait(1ms), "354 End data with <CR><LF>.<CR><LF>\r\n");
  std::string body = "x\r\n.\r\n";
  cl.c->receive(std::span<const char>(body.data(), body.size()), cl.t);
  EXPECT_EQ(cl.read(), "250 2.0.0 Ok: queued as FAKE00000001\r\n");
  EXPECT_EQ(srv.mailbox().size(), 1u);
}

TEST(fake_mx, delayed_replies_keep_order_when_pipelined) {
  server srv(must_parse("stage helo delay 1s\nstage mail delay 2s\n"));
  client cl(srv);
  cl.read();
  std::string burst = "EHLO c.example\r\nMAIL FROM:<a@c.example>\r\nQUIT\r\n";
  cl.c->receive(std::span<const char>(burst.data(), burst.size()), cl.t);
  EXPECT_EQ(cl.read(), "");
  EXPECT_EQ(cl.wait(1s).substr(0, 4), "250-");
  EXPECT_FALSE(cl.c->closing());
  EXPECT_EQ(cl.wait(2s), "250 2.1.0 Ok\r\n221 2.0.0 Bye\r\n");
  EXPECT_TRUE(cl.c->closing());
}

TEST(fake_mx, disconnects_at_a_stage) {
  server srv(must_parse("stage mail disconnect\n"));
  client cl(srv);
  cl.read();
  cl.say("HELO c.example");
  EXPECT_EQ(cl.say("MAIL FROM:<a@c.example>"), "");
  EXPECT_TRUE(cl.c->closing());
  EXPECT_EQ(srv.counts().disconnects, 1u);
  EXPECT_TRUE(srv.mailbox().empty());
}

TEST(fake_mx, disconnects_at_end_of_data_without_keeping_the_message) {
  server srv(must_parse("stage dot disconnect\n"));
  client cl(srv);
  cl.read();
  cl.say("HELO c.example");
  const auto r = cl.send_mail("a@c.example", {"b@x.example"}, "x\r\n");
  EXPECT_EQ(r, "250 2.1.0 Ok\r\n|250 2.1.5 Ok\r\n|354 End data with <CR><LF>.<CR><LF>\r\n|");
  EXPECT_TRUE(cl.c->closing());
  EXPECT_TRUE(srv.mailbox().empty());
}

TEST(fake_mx, hangs_until_its_own_timeout) {
  server srv(must_parse("timeout 30s\nstage rcpt hang\n"));
  client cl(srv);
  cl.read();
  cl.say("HELO c.example");
  cl.say("MAIL FROM:<a@c.example>");
  EXPECT_EQ(cl.say("RCPT TO:<b@x.example>"), "");
  EXPECT_EQ(cl.wait(29s), "");
  EXPECT_FALSE(cl.c->closing());
  EXPECT_EQ(cl.wait(2s), "");  // the engine's timeout reply stays behind the hang
  EXPECT_TRUE(cl.c->closing());
  EXPECT_EQ(srv.counts().hangs, 1u);
}

TEST(fake_mx, limits_concurrent_sessions) {
  server srv(must_parse("hostname mx.test.example\nsessions_max 1\n"));
  client a(srv);
  EXPECT_EQ(a.read().substr(0, 3), "220");
  {
    client b(srv);
    EXPECT_EQ(b.read(), "421 4.7.0 mx.test.example Error: too many connections\r\n");
    EXPECT_TRUE(b.c->closing());
  }
  a.c.reset();
  client c(srv);
  EXPECT_EQ(c.read().substr(0, 3), "220");
  EXPECT_EQ(srv.counts().sessions_refused, 1u);
  EXPECT_EQ(srv.counts().sessions_total, 3u);
}

TEST(fake_mx, rate_limit_451_in_the_clock_window) {
  server srv(must_parse("rate 2/60s 451\n"));
  client cl(srv);
  cl.read();
  cl.say("HELO c.example");
  EXPECT_TRUE(cl.send_mail("a@c.example", {"b@x.example"}, "1\r\n").ends_with("FAKE00000001\r\n"));
  EXPECT_TRUE(cl.send_mail("a@c.example", {"b@x.example"}, "2\r\n").ends_with("FAKE00000002\r\n"));
  EXPECT_EQ(cl.say("MAIL FROM:<a@c.example>"),
            "451 4.7.1 Error: too many messages from 192.0.2.1, try again later\r\n");
  EXPECT_FALSE(cl.c->closing());
  cl.t += 60s;  // the window has passed on the MX's clock
  EXPECT_EQ(cl.say("MAIL FROM:<a@c.example>"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(srv.counts().rate_limited, 1u);
  EXPECT_EQ(srv.mailbox().size(), 2u);
}

TEST(fake_mx, rate_limit_421_closes) {
  server srv(must_parse("hostname mx.test.example\nrate 1/1m 421\n"));
  client cl(srv);
  cl.read();
  cl.say("HELO c.example");
  cl.send_mail("a@c.example", {"b@x.example"}, "1\r\n");
  std::string burst = "MAIL FROM:<a@c.example>\r\nRCPT TO:<b@x.example>\r\n";
  cl.c->receive(std::span<const char>(burst.data(), burst.size()), cl.t);
  EXPECT_EQ(cl.read(),
            "421 4.7.0 mx.test.example Error: too many messages from 192.0.2.1, closing\r\n");
  EXPECT_TRUE(cl.c->closing());
}

TEST(fake_mx, requires_auth_plain_and_login) {
  server srv(must_parse("auth user smtp-auth relay-pass-1\nauth required\n"));
  client cl(srv);
  cl.read();
  EXPECT_NE(cl.say("EHLO c.example").find("250-AUTH PLAIN LOGIN\r\n"), std::string::npos);
  EXPECT_EQ(cl.say("MAIL FROM:<a@c.example>"), "530 5.7.0 Authentication required\r\n");
  // base64("\0smtp-auth\0wrong")
  EXPECT_EQ(cl.say("AUTH PLAIN AHNtdHAtYXV0aAB3cm9uZw=="),
            "535 5.7.8 Error: authentication failed: authentication failure\r\n");
  EXPECT_EQ(cl.say("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(cl.say("c210cC1hdXRo"), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(cl.say("cmVsYXktcGFzcy0x"), "235 2.7.0 Authentication successful\r\n");
  cl.send_mail("a@c.example", {"b@x.example"}, "x\r\n");
  ASSERT_EQ(srv.mailbox().size(), 1u);
  EXPECT_EQ(srv.mailbox()[0].auth_user, "smtp-auth");
  EXPECT_EQ(srv.counts().auth_success, 1u);
  EXPECT_EQ(srv.counts().auth_failure, 1u);
}

TEST(fake_mx, connect_and_end_of_data_replies) {
  server srv(
      must_parse("stage connect reply \"554 5.7.1 Go away\" times 1\n"
                 "stage dot reply \"452 4.3.1 Insufficient system storage\"\n"));
  {
    client cl(srv);
    EXPECT_EQ(cl.read(), "554 5.7.1 Go away\r\n");
  }
  client cl(srv);
  EXPECT_EQ(cl.read().substr(0, 4), "220 ");
  cl.say("HELO c.example");
  EXPECT_TRUE(cl.send_mail("a@c.example", {"b@x.example"}, "x\r\n")
                  .ends_with("|452 4.3.1 Insufficient system storage\r\n"));
  EXPECT_TRUE(srv.mailbox().empty());
  EXPECT_EQ(srv.counts().rejected, 2u);
}

TEST(fake_mx, writes_maildir) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("relaylab-fake-mx-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  server_options opt;
  opt.maildir = dir.string();
  opt.maildir_unique = "t";
  server srv(script{}, opt);
  std::string err;
  ASSERT_TRUE(srv.prepare(err)) << err;
  client cl(srv);
  cl.read();
  cl.say("HELO c.example");
  cl.send_mail("a@c.example", {"b@x.example"}, "Subject: m\r\n\r\nbody\r\n");
  std::ifstream in(dir / "new" / "1.t", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "Subject: m\r\n\r\nbody\r\n");
  std::filesystem::remove_all(dir);
}

// The same server over a real loopback socket through relay/net's driver.
TEST(fake_mx, serves_over_loopback_tcp) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  asio::io_context io;
  server srv(must_parse("rcpt bob@x.example reply \"550 5.1.1 no bob\"\n"));
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acc.local_endpoint().port();
  const auto start = std::chrono::steady_clock::now();
  net::clock_fn now = [start] { return std::chrono::steady_clock::now() - start; };
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto sock = co_await acc.async_accept(asio::use_awaitable);
        auto conn = srv.open(sock.remote_endpoint().address().to_string(), "0", now());
        co_await net::run_connection<asio::steady_timer>(sock, *conn, nullptr, now);
      },
      asio::detached);
  std::string transcript;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        tcp::socket s(io);
        co_await s.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                 asio::use_awaitable);
        asio::streambuf buf;
        auto line = [&]() -> asio::awaitable<void> {
          const auto n = co_await asio::async_read_until(s, buf, "\r\n", asio::use_awaitable);
          transcript.append(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + n);
          buf.consume(n);
        };
        co_await line();
        for (std::string cmd : {"HELO c", "MAIL FROM:<a@c>", "RCPT TO:<bob@x.example>",
                                "RCPT TO:<c@x.example>", "DATA"}) {
          cmd += "\r\n";
          co_await asio::async_write(s, asio::buffer(cmd), asio::use_awaitable);
          co_await line();
        }
        std::string body = "hello\r\n.\r\nQUIT\r\n";
        co_await asio::async_write(s, asio::buffer(body), asio::use_awaitable);
        co_await line();
        co_await line();
      },
      asio::detached);
  io.run_for(10s);
  EXPECT_EQ(transcript,
            "220 mx.fake.example ESMTP relaylab-fake-mx\r\n250 mx.fake.example\r\n250 2.1.0 "
            "Ok\r\n550 5.1.1 no bob\r\n250 2.1.5 Ok\r\n354 End data with "
            "<CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as FAKE00000001\r\n221 2.0.0 Bye\r\n");
  ASSERT_EQ(srv.mailbox().size(), 1u);
  EXPECT_EQ(srv.mailbox()[0].data, "hello\r\n");
  EXPECT_EQ(srv.mailbox()[0].client_addr, "127.0.0.1");
}

// STARTTLS (or wrapper mode) over loopback: a tls::client_stream that trusts the test CA sees
// the certificate the MX was asked for, and the message is marked as received under TLS.
struct tls_outcome {
  std::string transcript;  // replies, plain and under TLS
  bool handshake_ok = false;
  tls::trust trust = tls::trust::untrusted;
  std::string verify_error;
};

tls_outcome tls_session(server& srv, const std::string& ca_pem, bool wrapper) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  asio::io_context io;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acc.local_endpoint().port();
  const auto start = std::chrono::steady_clock::now();
  net::clock_fn now = [start] { return std::chrono::steady_clock::now() - start; };
  asio::co_spawn(io, serve_tcp(acc, srv, now, 1), asio::detached);
  tls_outcome out;
  tls::client_settings cs;
  cs.level = tls::client_level::encrypt;
  cs.ca_pem = ca_pem;
  std::string error;
  auto cctx = tls::client_context::create(cs, error);
  EXPECT_TRUE(cctx) << error;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        tcp::socket sock(io);
        co_await sock.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                    asio::use_awaitable);
        std::unique_ptr<net::byte_stream> s =
            std::make_unique<net::tcp_byte_stream>(std::move(sock));
        std::error_code ec;
        std::string pending;
        // Reads one reply (all its lines) into the transcript.
        auto reply = [&]() -> asio::awaitable<void> {
          for (int i = 0; i < 100; ++i) {
            const auto eol = pending.find("\r\n");
            if (eol != std::string::npos) {
              const std::string line = pending.substr(0, eol + 2);
              pending.erase(0, eol + 2);
              out.transcript += line;
              if (line.size() < 4 || line[3] != '-') co_return;
              continue;
            }
            std::vector<char> buf(4096);
            const auto n = co_await s->read_some(buf, 5s, ec);
            if (ec) co_return;
            pending.append(buf.data(), n);
          }
        };
        auto say = [&](std::string cmd) -> asio::awaitable<void> {
          cmd += "\r\n";
          co_await s->write_all(cmd, 5s, ec);
          if (!ec) co_await reply();
        };
        auto secure = [&]() -> asio::awaitable<bool> {
          auto c = std::make_unique<tls::client_stream>(std::move(s), cctx);
          std::vector<std::string> names{"mx.fake.example"};
          co_await c->handshake("mx.fake.example", std::move(names), 5s, ec);
          out.handshake_ok = !ec;
          out.trust = c->peer_trust();
          out.verify_error = c->verify_error();
          s = std::move(c);
          co_return !ec;
        };
        if (wrapper && !co_await secure()) co_return;
        co_await reply();
        co_await say("EHLO c.example");
        if (!wrapper) {
          co_await say("STARTTLS");
          if (!co_await secure()) co_return;
          co_await say("EHLO c.example");
        }
        for (std::string cmd : {"MAIL FROM:<a@c.example>", "RCPT TO:<b@x.example>", "DATA"})
          co_await say(cmd);
        co_await say("hello\r\n.");
        co_await say("QUIT");
      },
      asio::detached);
  io.run_for(10s);
  return out;
}

struct tls_mx {
  tls::authority ca{"Relaylab Test CA"};
  std::unique_ptr<server> srv;
  explicit tls_mx(cert_kind kind, bool wrapper = false) {
    std::string error;
    server_options o;
    tls_options t;
    t.wrappermode = wrapper;
    o.tls = make_tls_context(ca, kind, {"mx.fake.example"}, tls::key_kind::ecdsa_p256, error, t);
    EXPECT_TRUE(o.tls) << error;
    srv = std::make_unique<server>(script{}, o);
  }
};

TEST(fake_mx_tls, starttls_with_a_good_certificate_verifies) {
  tls_mx mx(cert_kind::good);
  const auto out = tls_session(*mx.srv, mx.ca.ca_pem(), false);
  ASSERT_TRUE(out.handshake_ok) << out.transcript;
  EXPECT_EQ(out.trust, tls::trust::verified) << out.verify_error;
  EXPECT_NE(out.transcript.find("250-STARTTLS\r\n"), std::string::npos) << out.transcript;
  EXPECT_NE(out.transcript.find("220 2.0.0 Ready to start TLS\r\n"), std::string::npos);
  EXPECT_NE(out.transcript.find("250 2.0.0 Ok: queued as FAKE00000001\r\n"), std::string::npos)
      << out.transcript;
  ASSERT_EQ(mx.srv->mailbox().size(), 1u);
  const auto& m = mx.srv->mailbox()[0];
  EXPECT_TRUE(m.tls);
  EXPECT_EQ(m.tls_protocol.rfind("TLSv1.", 0), 0u) << m.tls_protocol;
  EXPECT_FALSE(m.tls_cipher.empty());
  EXPECT_EQ(m.data, "hello\r\n");
  EXPECT_EQ(mx.srv->counts().tls_sessions, 1u);
  EXPECT_NE(mx.srv->summary().find(" tls=1 tls_failed=0"), std::string::npos);
}

TEST(fake_mx_tls, self_signed_certificate_is_untrusted) {
  tls_mx mx(cert_kind::self_signed);
  const auto out = tls_session(*mx.srv, mx.ca.ca_pem(), false);
  ASSERT_TRUE(out.handshake_ok) << out.transcript;
  EXPECT_EQ(out.trust, tls::trust::untrusted);
  EXPECT_EQ(out.verify_error, "self-signed certificate");
  ASSERT_EQ(mx.srv->mailbox().size(), 1u);
  EXPECT_TRUE(mx.srv->mailbox()[0].tls);
}

TEST(fake_mx_tls, expired_certificate_is_untrusted) {
  tls_mx mx(cert_kind::expired);
  const auto out = tls_session(*mx.srv, mx.ca.ca_pem(), false);
  ASSERT_TRUE(out.handshake_ok) << out.transcript;
  EXPECT_EQ(out.trust, tls::trust::untrusted);
  EXPECT_EQ(out.verify_error, "certificate has expired");
}

TEST(fake_mx_tls, wrapper_mode_handshakes_before_the_greeting) {
  tls_mx mx(cert_kind::good, true);
  const auto out = tls_session(*mx.srv, mx.ca.ca_pem(), true);
  ASSERT_TRUE(out.handshake_ok) << out.transcript;
  EXPECT_EQ(out.trust, tls::trust::verified);
  EXPECT_EQ(out.transcript.rfind("220 mx.fake.example ESMTP", 0), 0u) << out.transcript;
  EXPECT_EQ(out.transcript.find("STARTTLS"), std::string::npos);
  ASSERT_EQ(mx.srv->mailbox().size(), 1u);
  EXPECT_TRUE(mx.srv->mailbox()[0].tls);
}

TEST(fake_mx_tls, plain_mail_before_starttls_is_not_marked) {
  tls_mx mx(cert_kind::good);
  client c(*mx.srv);
  c.read();
  EXPECT_NE(c.say("EHLO c.example").find("250-STARTTLS"), std::string::npos);
  EXPECT_EQ(c.send_mail("a@c", {"b@x"}, "hi\r\n").substr(0, 3), "250");
  ASSERT_EQ(mx.srv->mailbox().size(), 1u);
  EXPECT_FALSE(mx.srv->mailbox()[0].tls);
}

}  // namespace
}  // namespace relaylab::fakes::mx
