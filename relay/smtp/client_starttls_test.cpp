// STARTTLS in the client engine, as transcripts: "S:" is what the server sends (in one write
// when lines are joined), "C:" what the client must send next. The handshake itself is the
// owner's (relay/delivery); here tls_started() stands for a successful one.
#include "relay/smtp/client_session.hpp"

#include <gtest/gtest.h>

namespace relaylab::smtp {
namespace {

constexpr client_timestamp t0{1'000'000'000};

struct run {
  client_session s;
  explicit run(client_options::tls_use use) : s(make(use), t0) {}
  static client_options make(client_options::tls_use use) {
    client_options o;
    o.helo_name = "relay.example.com";
    o.starttls = use;
    return o;
  }
  void server(std::string_view text) {
    s.receive(std::span<const char>(text.data(), text.size()), t0);
  }
  std::string client() {
    std::string out(s.output());
    s.consume_output(out.size());
    return out;
  }
};

const char* const ehlo_tls = "250-mx.example.net\r\n250-PIPELINING\r\n250 STARTTLS\r\n";
const char* const ehlo_after = "250-mx.example.net\r\n250 PIPELINING\r\n";

TEST(ClientStartTls, MayUsesStartTlsWhenOfferedAndSaysEhloAgain) {
  run r(client_options::tls_use::may);
  r.server("220 mx.example.net ESMTP\r\n");
  EXPECT_EQ(r.client(), "EHLO relay.example.com\r\n");
  r.server(ehlo_tls);
  EXPECT_EQ(r.client(), "STARTTLS\r\n");
  r.server("220 2.0.0 Ready to start TLS\r\n");
  EXPECT_EQ(r.s.state(), client_state::tls);
  EXPECT_EQ(r.client(), "");
  r.s.tls_started(t0);
  EXPECT_TRUE(r.s.tls_active());
  EXPECT_EQ(r.client(), "EHLO relay.example.com\r\n");
  r.server(ehlo_after);
  EXPECT_EQ(r.s.state(), client_state::ready);
  EXPECT_FALSE(r.s.features().starttls);
}

TEST(ClientStartTls, RepliesInjectedAfterThe220AreDiscarded) {
  run r(client_options::tls_use::required);
  r.server("220 mx.example.net ESMTP\r\n");
  r.client();
  r.server(ehlo_tls);
  r.client();
  // A man in the middle appends a fake EHLO reply to the 220 in the same plaintext write.
  r.server("220 2.0.0 Ready to start TLS\r\n250-evil.example\r\n250 AUTH PLAIN\r\n");
  r.s.tls_started(t0);
  EXPECT_EQ(r.client(), "EHLO relay.example.com\r\n");
  EXPECT_EQ(r.s.state(), client_state::hello);  // still waiting for the real EHLO reply
  r.server(ehlo_after);
  EXPECT_EQ(r.s.state(), client_state::ready);
  EXPECT_FALSE(r.s.features().auth);
}

TEST(ClientStartTls, MayGoesOnInPlainTextWithoutTheOffer) {
  run r(client_options::tls_use::may);
  r.server("220 mx.example.net ESMTP\r\n");
  r.client();
  r.server(ehlo_after);
  EXPECT_EQ(r.s.state(), client_state::ready);
  EXPECT_FALSE(r.s.tls_active());
}

TEST(ClientStartTls, RequiredFailsWithoutTheOffer) {
  run r(client_options::tls_use::required);
  r.server("220 mx.example.net ESMTP\r\n");
  r.client();
  r.server(ehlo_after);
  ASSERT_EQ(r.s.state(), client_state::failed);
  EXPECT_EQ(r.s.error()->what, client_error::kind::tls);
  EXPECT_FALSE(r.s.error()->reply);
}

TEST(ClientStartTls, RequiredFailsWhenRefusedAndMayGoesOn) {
  run r(client_options::tls_use::required);
  r.server("220 mx.example.net ESMTP\r\n");
  r.client();
  r.server(ehlo_tls);
  r.client();
  r.server("454 4.7.0 TLS not available due to local problem\r\n");
  ASSERT_EQ(r.s.state(), client_state::failed);
  EXPECT_EQ(r.s.error()->what, client_error::kind::tls);
  ASSERT_TRUE(r.s.error()->reply);
  EXPECT_EQ(r.s.error()->reply->code, 454);

  run m(client_options::tls_use::may);
  m.server("220 mx.example.net ESMTP\r\n");
  m.client();
  m.server(ehlo_tls);
  m.client();
  m.server("454 4.7.0 TLS not available due to local problem\r\n");
  EXPECT_EQ(m.s.state(), client_state::ready);
}

}  // namespace
}  // namespace relaylab::smtp
