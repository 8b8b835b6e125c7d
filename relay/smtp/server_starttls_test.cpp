// STARTTLS dialogues for the server engine, as transcripts: "C:" lines are sent, "S:" lines
// are the replies expected, "== TLS" is the handshake (the transport's job; here it always
// succeeds unless the test says otherwise). Reply texts are Postfix 3.7.11's.
#include "relay/smtp/server_session.hpp"

#include <gtest/gtest.h>

#include <sstream>

namespace relaylab::smtp {
namespace {

using namespace std::chrono_literals;

class handler : public server_handler {
 public:
  std::vector<std::string> events;
  verdict on_connect(const client_identity&) override { return std::nullopt; }
  verdict on_helo(const client_identity& c) override {
    events.push_back("helo " + c.helo);
    return std::nullopt;
  }
  verdict on_mail(const client_identity&, const mail_command&) override { return std::nullopt; }
  verdict on_rcpt(const client_identity&, const rcpt_command&) override { return std::nullopt; }
  verdict on_data(const client_identity&) override { return std::nullopt; }
  void on_body(std::span<const char>) override {}
  void on_message_end(const client_identity&, bool) override {}
  void on_reset() override { events.push_back("reset"); }
  auth_step on_auth_start(const client_identity&, std::string_view mech,
                          std::optional<std::string_view>) override {
    events.push_back("auth " + std::string(mech));
    return {auth_step::status::success, "", "235 2.7.0 Authentication successful"};
  }
  auth_step on_auth_continue(const client_identity&, std::string_view) override {
    return {auth_step::status::failure, "", "535 5.7.8 Error: authentication failed"};
  }
  void on_auth_abort() override {}
  verdict on_vrfy(const client_identity&, std::string_view) override { return std::nullopt; }
  void on_xclient(const client_identity&) override {}
  void on_disconnect(const client_identity&, std::string_view reason) override {
    events.push_back("disconnect " + std::string(reason));
  }
};

server_options submission(bool encrypt, bool auth_only) {
  server_options o;
  o.myhostname = "relay.example.com";
  o.banner = "relay.example.com ESMTP Postfix (Debian/GNU)";
  o.sasl_auth_enable = true;
  o.sasl_mechanisms = {"PLAIN", "LOGIN"};
  o.error_sleep_time = 0ms;
  o.tls_offered = true;
  o.tls_required = encrypt;
  o.tls_auth_only = auth_only;
  return o;
}

struct run {
  handler h;
  client_identity id;
  std::unique_ptr<server_session> s;
  timestamp t{};
  explicit run(server_options o) {
    id.addr = "127.0.0.1";
    s = std::make_unique<server_session>(std::move(o), h, id, t);
    s->start(t);
  }
  std::string take() {
    std::string r(s->output());
    s->consume_output(r.size());
    return r;
  }
};

// Plays a transcript. Client lines are sent one write per line, except lines joined with
// "\\n" inside one "C:" (one write: pipelining or injection).
void play(run& r, const std::string& transcript) {
  std::istringstream in(transcript);
  std::string line, expected;
  auto check = [&] {
    std::string got = r.take();
    EXPECT_EQ(got, expected) << "transcript:\n" << transcript;
    expected.clear();
  };
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("S: ", 0) == 0) {
      expected += line.substr(3) + "\r\n";
    } else if (line.rfind("C: ", 0) == 0) {
      check();
      std::string data = line.substr(3);
      for (std::size_t p; (p = data.find("\\n")) != std::string::npos;) data.replace(p, 2, "\r\n");
      data += "\r\n";
      r.s->receive(std::span<const char>(data.data(), data.size()), r.t);
    } else if (line == "== TLS") {
      check();
      ASSERT_TRUE(r.s->tls_wanted()) << transcript;
      r.s->tls_started(r.t);
      ASSERT_TRUE(r.s->tls_active());
    } else {
      FAIL() << "bad transcript line: " << line;
    }
  }
  check();
}

TEST(ServerStartTls, EncryptGivesTheFive30BeforeTlsAndHidesAuth) {
  // relay/smtpd sets tls_auth_only at encrypt, as Postfix does (checked in the oracle test).
  run r(submission(true, true));
  play(r, R"(
S: 220 relay.example.com ESMTP Postfix (Debian/GNU)
C: EHLO client.example
S: 250-relay.example.com
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-VRFY
S: 250-ETRN
S: 250-STARTTLS
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-DSN
S: 250-SMTPUTF8
S: 250 CHUNKING
C: AUTH PLAIN AHVzZXIAcGFzcw==
S: 530 5.7.0 Must issue a STARTTLS command first
C: MAIL FROM:<a@example.com>
S: 530 5.7.0 Must issue a STARTTLS command first
C: RSET
S: 530 5.7.0 Must issue a STARTTLS command first
C: NOOP
S: 250 2.0.0 Ok
C: STARTTLS extra
S: 501 5.5.4 Syntax: STARTTLS
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
== TLS
C: EHLO client.example
S: 250-relay.example.com
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-VRFY
S: 250-ETRN
S: 250-AUTH PLAIN LOGIN
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-DSN
S: 250-SMTPUTF8
S: 250 CHUNKING
C: STARTTLS
S: 554 5.5.1 Error: TLS already active
C: AUTH PLAIN AHVzZXIAcGFzcw==
S: 235 2.7.0 Authentication successful
C: QUIT
S: 221 2.0.0 Bye
)");
  EXPECT_EQ(r.s->command_counts(),
            "ehlo=2 starttls=1/3 auth=1/2 mail=0/1 rset=0/1 noop=1 quit=1 commands=6/11");
}

TEST(ServerStartTls, AuthOnlyHoldsAuthBackUntilTls) {
  run r(submission(false, true));
  play(r, R"(
S: 220 relay.example.com ESMTP Postfix (Debian/GNU)
C: EHLO c
S: 250-relay.example.com
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-VRFY
S: 250-ETRN
S: 250-STARTTLS
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-DSN
S: 250-SMTPUTF8
S: 250 CHUNKING
C: AUTH PLAIN AHVzZXIAcGFzcw==
S: 503 5.5.1 Error: authentication not enabled
C: MAIL FROM:<a@example.com>
S: 250 2.1.0 Ok
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
== TLS
C: MAIL FROM:<a@example.com>
S: 250 2.1.0 Ok
C: RSET
S: 250 2.0.0 Ok
C: EHLO c
S: 250-relay.example.com
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-VRFY
S: 250-ETRN
S: 250-AUTH PLAIN LOGIN
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-DSN
S: 250-SMTPUTF8
S: 250 CHUNKING
C: AUTH PLAIN AHVzZXIAcGFzcw==
S: 235 2.7.0 Authentication successful
)");
  // Nobody saw a password before TLS: the first AUTH never reached the handler.
  EXPECT_EQ(std::count(r.h.events.begin(), r.h.events.end(), "auth PLAIN"), 1);
}

TEST(ServerStartTls, PlaintextInjectedAfterStartTlsIsDiscarded) {
  run r(submission(false, false));
  play(r, R"(
S: 220 relay.example.com ESMTP Postfix (Debian/GNU)
C: EHLO c\nSTARTTLS\nRSET\nMAIL FROM:<evil@example.com>
S: 250-relay.example.com
S: 250-PIPELINING
S: 250-SIZE 10240000
S: 250-VRFY
S: 250-ETRN
S: 250-STARTTLS
S: 250-AUTH PLAIN LOGIN
S: 250-ENHANCEDSTATUSCODES
S: 250-8BITMIME
S: 250-DSN
S: 250-SMTPUTF8
S: 250 CHUNKING
S: 220 2.0.0 Ready to start TLS
== TLS
C: NOOP
S: 250 2.0.0 Ok
)");
  EXPECT_EQ(r.s->command_counts(), "ehlo=1 starttls=1 noop=1 commands=3");
}

TEST(ServerStartTls, NotOfferedGetsFive02) {
  auto o = submission(false, false);
  o.tls_offered = false;
  run r(o);
  play(r, R"(
S: 220 relay.example.com ESMTP Postfix (Debian/GNU)
C: STARTTLS
S: 502 5.5.1 Error: command not implemented
)");
  EXPECT_FALSE(r.s->tls_wanted());
}

TEST(ServerStartTls, TlsResetsHeloAndTransaction) {
  auto o = submission(false, false);
  o.helo_required = true;
  run r(o);
  play(r, R"(
S: 220 relay.example.com ESMTP Postfix (Debian/GNU)
C: HELO c
S: 250 relay.example.com
C: MAIL FROM:<a@example.com>
S: 250 2.1.0 Ok
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
== TLS
C: MAIL FROM:<a@example.com>
S: 503 5.5.1 Error: send HELO/EHLO first
)");
}

TEST(ServerStartTls, WrapperModeGreetsAfterTheHandshake) {
  auto o = submission(false, false);
  o.tls_wrappermode = true;
  o.tls_offered = false;  // implicit TLS: STARTTLS is never offered
  run r(o);
  EXPECT_TRUE(r.s->tls_wanted());
  EXPECT_TRUE(r.s->output().empty());
  EXPECT_FALSE(r.s->deadline());  // the transport bounds the handshake
  play(r, R"(
== TLS
S: 220 relay.example.com ESMTP Postfix (Debian/GNU)
C: STARTTLS
S: 554 5.5.1 Error: TLS already active
)");
}

TEST(ServerStartTls, FailedHandshakeEndsTheSession) {
  run r(submission(false, false));
  play(r, R"(
S: 220 relay.example.com ESMTP Postfix (Debian/GNU)
C: STARTTLS
S: 220 2.0.0 Ready to start TLS
)");
  r.s->tls_failed(r.t);
  EXPECT_TRUE(r.s->closing());
  EXPECT_EQ(r.s->last_command(), "STARTTLS");
  EXPECT_EQ(r.h.events.back(), "disconnect lost connection");
}

TEST(ServerStartTls, MechanismsCanChangeUnderTls) {
  auto o = submission(false, false);
  o.sasl_mechanisms = {"CRAM-MD5"};  // e.g. noplaintext before TLS
  run r(o);
  r.take();
  std::string cmd = "STARTTLS\r\n";
  r.s->receive(std::span<const char>(cmd.data(), cmd.size()), r.t);
  r.take();
  r.s->tls_started(r.t, std::vector<std::string>{"PLAIN", "LOGIN"});
  cmd = "EHLO c\r\n";
  r.s->receive(std::span<const char>(cmd.data(), cmd.size()), r.t);
  EXPECT_NE(r.take().find("250-AUTH PLAIN LOGIN\r\n"), std::string::npos);
}

}  // namespace
}  // namespace relaylab::smtp
