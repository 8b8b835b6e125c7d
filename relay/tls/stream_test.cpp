// server_stream over loopback TCP: plain text first, then STARTTLS in place, with a real
// OpenSSL client verifying the test CA.
#include "relay/tls/stream.hpp"

#include "relay/tls/pki.hpp"
#include "relay/tls/settings.hpp"
#include "relay/tls/test_files.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace relaylab::tls {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct outcome {
  std::string server_got;
  std::string client_got;
  boost::system::error_code server_ec;
  boost::system::error_code client_ec;
  session_info info;
};

std::shared_ptr<server_context> make_server(const testing::temp_dir& dir, const issued& cert) {
  config::parameters p;
  p.set("smtpd_tls_security_level", "may");
  p.set("smtpd_tls_cert_file", dir.write("srv.crt", cert.chain_pem));
  p.set("smtpd_tls_key_file", dir.write("srv.key", cert.key_pem));
  std::vector<config::diagnostic> d;
  auto s = server_settings_from(p, d);
  if (!s) return nullptr;
  std::string error;
  auto ctx = server_context::create(*s, error);
  EXPECT_TRUE(ctx) << error;
  return ctx;
}

// One STARTTLS-like exchange: server says "220 go" in plain text, both sides handshake, the
// client sends "ping" over TLS and the server answers "pong".
outcome run(std::shared_ptr<server_context> server_ctx, asio::ssl::context& client_ctx,
            const std::string& sni) {
  asio::io_context io;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acc.local_endpoint().port();
  outcome out;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        tcp::socket sock = co_await acc.async_accept(asio::use_awaitable);
        server_stream<tcp::socket> s(sock, server_ctx);
        boost::system::error_code ec;
        co_await asio::async_write(s, asio::buffer(std::string("220 go\r\n")),
                                   asio::redirect_error(asio::use_awaitable, ec));
        co_await s.async_start_tls(asio::redirect_error(asio::use_awaitable, ec));
        out.server_ec = ec;
        if (ec) co_return;
        out.info = s.tls_info();
        char buf[64];
        std::size_t n = co_await s.async_read_some(asio::buffer(buf),
                                                   asio::redirect_error(asio::use_awaitable, ec));
        out.server_got.assign(buf, n);
        co_await asio::async_write(s, asio::buffer(std::string("pong")),
                                   asio::redirect_error(asio::use_awaitable, ec));
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::ssl::stream<tcp::socket> c(io, client_ctx);
        co_await c.next_layer().async_connect(
            tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), asio::use_awaitable);
        asio::streambuf greeting;
        co_await asio::async_read_until(c.next_layer(), greeting, "\r\n", asio::use_awaitable);
        SSL_set_tlsext_host_name(c.native_handle(), sni.c_str());
        SSL_set1_host(c.native_handle(), sni.c_str());
        boost::system::error_code ec;
        co_await c.async_handshake(asio::ssl::stream_base::client,
                                   asio::redirect_error(asio::use_awaitable, ec));
        out.client_ec = ec;
        if (ec) co_return;
        co_await asio::async_write(c, asio::buffer(std::string("ping")), asio::use_awaitable);
        char buf[64];
        std::size_t n = co_await c.async_read_some(asio::buffer(buf),
                                                   asio::redirect_error(asio::use_awaitable, ec));
        out.client_got.assign(buf, n);
      },
      asio::detached);
  io.run_for(std::chrono::seconds(20));
  return out;
}

TEST(TlsStream, StartTlsInPlaceEcdsa) {
  testing::temp_dir dir;
  authority ca("Relaylab Test CA");
  auto server = make_server(dir, ca.issue({"mx.example"}));
  ASSERT_TRUE(server);
  asio::ssl::context client(asio::ssl::context::tls_client);
  client.add_certificate_authority(asio::buffer(ca.ca_pem()));
  client.set_verify_mode(asio::ssl::verify_peer);
  auto r = run(server, client, "mx.example");
  ASSERT_FALSE(r.server_ec) << r.server_ec.message();
  ASSERT_FALSE(r.client_ec) << r.client_ec.message();
  EXPECT_EQ(r.server_got, "ping");
  EXPECT_EQ(r.client_got, "pong");
  EXPECT_EQ(r.info.protocol, "TLSv1.3");
  EXPECT_EQ(r.info.signature, "ECDSA (P-256)");
  EXPECT_EQ(r.info.kex, "X25519");
  EXPECT_EQ(r.info.digest, "SHA256");
  EXPECT_EQ(describe(r.info).rfind("TLSv1.3 with cipher TLS_", 0), 0u) << describe(r.info);
}

TEST(TlsStream, RsaServerSignsWithPss) {
  testing::temp_dir dir;
  authority ca("Relaylab Test CA", key_kind::rsa_2048);
  auto server = make_server(dir, ca.issue({"mx.example"}, key_kind::rsa_2048));
  ASSERT_TRUE(server);
  asio::ssl::context client(asio::ssl::context::tls_client);
  client.add_certificate_authority(asio::buffer(ca.ca_pem()));
  client.set_verify_mode(asio::ssl::verify_peer);
  auto r = run(server, client, "mx.example");
  ASSERT_FALSE(r.client_ec) << r.client_ec.message();
  EXPECT_EQ(r.info.signature, "RSA-PSS (2048 bits)");
}

TEST(TlsStream, ClientThatDoesNotTrustTheCaFailsTheHandshake) {
  testing::temp_dir dir;
  authority ca("Relaylab Test CA");
  auto server = make_server(dir, authority::self_signed("mx.example"));
  ASSERT_TRUE(server);
  asio::ssl::context client(asio::ssl::context::tls_client);
  client.add_certificate_authority(asio::buffer(ca.ca_pem()));
  client.set_verify_mode(asio::ssl::verify_peer);
  auto r = run(server, client, "mx.example");
  EXPECT_TRUE(r.client_ec);
  EXPECT_TRUE(r.server_ec);
  EXPECT_TRUE(r.server_got.empty());
}

TEST(TlsStream, HandshakeFailureLinesAreThoseOfPostfix) {
  auto f = handshake_failure("unknown[127.0.0.1]", true, {});
  EXPECT_EQ(f.info, "SSL_accept error from unknown[127.0.0.1]: lost connection");
  f = handshake_failure("unknown[127.0.0.1]", false,
                        {"error:0A00010B:SSL routines::wrong version number:x.c:1:"});
  EXPECT_EQ(f.info, "SSL_accept error from unknown[127.0.0.1]: -1");
  ASSERT_EQ(f.warnings.size(), 1u);
  EXPECT_EQ(f.warnings[0],
            "TLS library problem: error:0A00010B:SSL routines::wrong version number:x.c:1:");
}

}  // namespace
}  // namespace relaylab::tls
