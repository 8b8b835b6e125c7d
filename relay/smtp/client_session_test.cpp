#include "relay/smtp/client_session.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace relaylab::smtp {
namespace {

using namespace std::chrono_literals;

constexpr client_timestamp t0{1'000'000'000};

const char* const ehlo_pipelining =
    "250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
    "250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-SMTPUTF8\r\n"
    "250 CHUNKING\r\n";
const char* const ehlo_plain = "250-mx.example.net\r\n250 8BITMIME\r\n";

// Feeds server text either at once or byte by byte, and collects what the client sends.
class transcript {
 public:
  static client_options opts() {
    client_options o;
    o.helo_name = "relay.example.com";
    return o;
  }
  transcript(bool bytewise, client_options o) : bytewise_(bytewise), s_(std::move(o), t0) {}

  void server(std::string_view text) {
    if (bytewise_) {
      for (const char c : text) s_.receive(std::span<const char>(&c, 1), now_);
    } else {
      s_.receive(std::span<const char>(text.data(), text.size()), now_);
    }
  }
  std::string client() {
    std::string out(s_.output());
    s_.consume_output(out.size());
    return out;
  }
  client_session& session() { return s_; }
  client_timestamp now_ = t0;

 private:
  bool bytewise_;
  client_session s_;
};

client_envelope envelope(std::vector<std::string> rcpts, std::uint64_t size = 0) {
  client_envelope e;
  e.sender = "me@example.com";
  e.recipients = std::move(rcpts);
  e.size = size;
  return e;
}

class client_transcript : public ::testing::TestWithParam<bool> {};

TEST_P(client_transcript, pipelined_transaction_with_mixed_recipients_then_quit) {
  transcript t(GetParam(), transcript::opts());
  auto& s = t.session();
  EXPECT_EQ(t.client(), "");
  t.server("220 mx.example.net ESMTP\r\n");
  EXPECT_EQ(t.client(), "EHLO relay.example.com\r\n");
  t.server(ehlo_pipelining);
  ASSERT_EQ(s.state(), client_state::ready);
  EXPECT_TRUE(s.features().pipelining);
  EXPECT_EQ(s.features().size_limit, 10240000u);
  EXPECT_EQ(s.features().auth_mechanisms, "PLAIN LOGIN");
  EXPECT_TRUE(s.features().dsn && s.features().smtputf8 && s.features().chunking);
  EXPECT_EQ(s.features().server_name, "mx.example.net");

  auto e = envelope({"ok@x.test", "defer@x.test", "bounce@x.test"}, 306);
  e.body_8bit = true;
  ASSERT_TRUE(s.start(e, t.now_));
  EXPECT_EQ(t.client(),
            "MAIL FROM:<me@example.com> SIZE=306 BODY=8BITMIME\r\nRCPT TO:<ok@x.test>\r\n"
            "RCPT TO:<defer@x.test>\r\nRCPT TO:<bounce@x.test>\r\nDATA\r\n");
  EXPECT_EQ(s.stage(), client_stage::mail);
  t.server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n451 4.3.0 <defer@x.test>: Temporary failure\r\n");
  EXPECT_EQ(s.stage(), client_stage::rcpt);
  t.server("550 5.1.1 <bounce@x.test>: User unknown\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
  ASSERT_TRUE(s.wants_body());
  EXPECT_EQ(s.stage(), client_stage::body);
  const std::string part1 = "Subject: t\r\n\r\nhel";
  const std::string part2 = "lo\r\n.dot\r\n";
  s.body(part1);
  s.body(part2);
  s.body(std::string_view(".x"));
  s.end_body(t.now_);
  EXPECT_EQ(t.client(), "Subject: t\r\n\r\nhello\r\n..dot\r\n..x\r\n.\r\n");
  EXPECT_EQ(s.stage(), client_stage::dot);
  EXPECT_FALSE(s.take_result());
  t.server("250 2.0.0 Ok: queued as ABC123\r\n");
  auto r = s.take_result();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->delivered());
  EXPECT_EQ(r->accepted(), 1u);
  EXPECT_EQ(r->rcpt[1].code, 451);
  EXPECT_EQ(r->rcpt[1].dsn, "4.3.0");
  EXPECT_EQ(r->rcpt[2].dsn, "5.1.1");
  EXPECT_EQ(r->end_of_data->text, "250 2.0.0 Ok: queued as ABC123");
  EXPECT_EQ(s.state(), client_state::ready);
  s.quit(t.now_);
  EXPECT_EQ(t.client(), "QUIT\r\n");
  t.server("221 2.0.0 Bye\r\n");
  EXPECT_EQ(s.state(), client_state::closed);
}

TEST_P(client_transcript, without_pipelining_commands_wait_for_replies) {
  transcript t(GetParam(), transcript::opts());
  auto& s = t.session();
  t.server("220 mx ESMTP\r\n");
  t.client();
  t.server(ehlo_plain);
  ASSERT_TRUE(s.start(envelope({"a@x.test", "b@x.test"}, 10), t.now_));
  EXPECT_EQ(t.client(), "MAIL FROM:<me@example.com>\r\n");
  t.server("250 ok\r\n");
  EXPECT_EQ(t.client(), "RCPT TO:<a@x.test>\r\n");
  t.server("250 ok\r\n");
  EXPECT_EQ(t.client(), "RCPT TO:<b@x.test>\r\n");
  t.server("250 ok\r\n");
  EXPECT_EQ(t.client(), "DATA\r\n");
  t.server("354 go\r\n");
  s.body(std::string_view("bare\nlf\n"));
  s.end_body(t.now_);
  EXPECT_EQ(t.client(), "bare\r\nlf\r\n.\r\n");
  t.server("250 queued\r\n");
  auto r = s.take_result();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->delivered());
  EXPECT_EQ(r->end_of_data->dsn, "2.0.0");  // no enhanced code: class default

  // A second transaction on the same connection, with every recipient refused: then RSET.
  ASSERT_TRUE(s.start(envelope({"c@x.test"}), t.now_));
  EXPECT_EQ(t.client(), "MAIL FROM:<me@example.com>\r\n");
  t.server("250 ok\r\n");
  EXPECT_EQ(t.client(), "RCPT TO:<c@x.test>\r\n");
  t.server("550 no\r\n");
  EXPECT_EQ(t.client(), "");  // no DATA without recipients
  r = s.take_result();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->delivered());
  EXPECT_FALSE(r->data);
  EXPECT_EQ(r->rcpt[0].dsn, "5.0.0");
  ASSERT_TRUE(s.start(envelope({"d@x.test"}), t.now_));
  EXPECT_EQ(t.client(), "RSET\r\n");
  t.server("250 ok\r\n");
  EXPECT_EQ(t.client(), "MAIL FROM:<me@example.com>\r\n");
  t.server("452 4.3.1 full\r\n");
  r = s.take_result();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->mail.code, 452);
  EXPECT_EQ(r->rcpt[0].code, 0);
  EXPECT_EQ(s.state(), client_state::ready);
  ASSERT_TRUE(s.start(envelope({"e@x.test"}), t.now_));
  EXPECT_EQ(t.client(), "MAIL FROM:<me@example.com>\r\n");  // no RSET after a failed MAIL
}

TEST_P(client_transcript, multiline_reply_text_and_one_line) {
  transcript t(GetParam(), transcript::opts());
  auto& s = t.session();
  t.server("220 mx ESMTP\r\n");
  t.server("250-mx\r\n250 PIPELINING\r\n");
  s.start(envelope({"a@x.test"}), t.now_);
  t.client();
  t.server("250 ok\r\n550-5.7.1 first line\r\n550 5.7.1 second line\r\n554 5.5.1 no rcpts\r\n");
  auto r = s.take_result();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->rcpt[0].text, "550-5.7.1 first line\n550 5.7.1 second line");
  EXPECT_EQ(r->rcpt[0].one_line(), "550-5.7.1 first line 550 5.7.1 second line");
  EXPECT_EQ(r->rcpt[0].dsn, "5.7.1");
  EXPECT_EQ(r->data->code, 554);
}

TEST_P(client_transcript, data_354_without_recipients_is_closed_empty) {
  transcript t(GetParam(), transcript::opts());
  auto& s = t.session();
  t.server("220 mx ESMTP\r\n250-mx\r\n250 PIPELINING\r\n");
  s.start(envelope({"a@x.test"}), t.now_);
  t.client();
  t.server("250 ok\r\n550 no\r\n354 go ahead anyway\r\n");
  EXPECT_FALSE(s.wants_body());
  EXPECT_EQ(t.client(), ".\r\n");
  EXPECT_FALSE(s.take_result());
  t.server("554 empty\r\n");
  auto r = s.take_result();
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->end_of_data);
}

TEST_P(client_transcript, ehlo_rejected_falls_back_to_helo) {
  transcript t(GetParam(), transcript::opts());
  auto& s = t.session();
  t.server("220 old.example SMTP\r\n");
  EXPECT_EQ(t.client(), "EHLO relay.example.com\r\n");
  t.server("502 5.5.2 Error: command not recognized\r\n");
  EXPECT_EQ(t.client(), "HELO relay.example.com\r\n");
  EXPECT_EQ(s.stage(), client_stage::helo);
  t.server("250 old.example\r\n");
  EXPECT_EQ(s.state(), client_state::ready);
  EXPECT_FALSE(s.features().esmtp);
  auto e = envelope({"a@x.test"}, 99);
  e.body_8bit = true;
  s.start(e, t.now_);
  EXPECT_EQ(t.client(), "MAIL FROM:<me@example.com>\r\n");  // no SIZE/BODY without ESMTP
}

TEST_P(client_transcript, ehlo_421_is_refusal) {
  transcript t(GetParam(), transcript::opts());
  t.server("220 mx ESMTP\r\n421 4.3.2 shutting down\r\n");
  auto& s = t.session();
  ASSERT_EQ(s.state(), client_state::failed);
  EXPECT_EQ(s.error()->what, client_error::kind::refused);
  EXPECT_EQ(s.error()->stage, client_stage::ehlo);
}

TEST_P(client_transcript, greeting_5xx_is_refusal) {
  transcript t(GetParam(), transcript::opts());
  t.server("554-5.7.1 go away\r\n554 5.7.1 really\r\n");
  auto& s = t.session();
  ASSERT_EQ(s.state(), client_state::failed);
  EXPECT_EQ(s.error()->what, client_error::kind::refused);
  EXPECT_EQ(s.error()->stage, client_stage::greeting);
  EXPECT_EQ(s.error()->reply->one_line(), "554-5.7.1 go away 554 5.7.1 really");
  EXPECT_EQ(t.client(), "");
}

TEST_P(client_transcript, never_send_ehlo_and_smtp_greeting_heuristic) {
  client_options o = transcript::opts();
  o.always_send_ehlo = false;
  transcript a(GetParam(), o);
  a.server("220 mx SMTP ready\r\n");
  EXPECT_EQ(a.client(), "HELO relay.example.com\r\n");
  transcript b(GetParam(), o);
  b.server("220 mx ESMTP ready\r\n");
  EXPECT_EQ(b.client(), "EHLO relay.example.com\r\n");
  o.never_send_ehlo = true;
  transcript c(GetParam(), o);
  c.server("220 mx ESMTP ready\r\n");
  EXPECT_EQ(c.client(), "HELO relay.example.com\r\n");
}

TEST_P(client_transcript, auth_plain_with_initial_response) {
  transcript t(GetParam(), transcript::opts());
  auto& s = t.session();
  plain_authenticator a("", "smtp-auth@example.com", "pass");
  s.set_authenticator(&a);
  t.server("220 mx ESMTP\r\n");
  t.client();
  t.server(ehlo_pipelining);
  EXPECT_EQ(s.state(), client_state::auth);
  EXPECT_EQ(t.client(), "AUTH PLAIN AHNtdHAtYXV0aEBleGFtcGxlLmNvbQBwYXNz\r\n");
  t.server("235 2.7.0 Authentication successful\r\n");
  EXPECT_EQ(s.state(), client_state::ready);
  EXPECT_TRUE(s.authenticated());
}

// A LOGIN-like exchange through the injected step function.
class login_authenticator final : public client_authenticator {
 public:
  client_auth_step start(std::string_view) override { return {true, "LOGIN", std::nullopt, {}}; }
  client_auth_step step(std::string_view challenge) override {
    seen.emplace_back(challenge);
    return {true, {}, seen.size() == 1 ? "user" : "secret", {}};
  }
  std::vector<std::string> seen;
};

TEST_P(client_transcript, auth_challenges_and_failure_reply) {
  transcript t(GetParam(), transcript::opts());
  auto& s = t.session();
  login_authenticator a;
  s.set_authenticator(&a);
  t.server("220 mx ESMTP\r\n");
  t.server(ehlo_pipelining);
  EXPECT_EQ(t.client(), "EHLO relay.example.com\r\nAUTH LOGIN\r\n");
  t.server("334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(t.client(), "dXNlcg==\r\n");
  t.server("334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(t.client(), "c2VjcmV0\r\n");
  EXPECT_EQ(a.seen, (std::vector<std::string>{"Username:", "Password:"}));
  t.server("535 5.7.8 Error: authentication failed: authentication failure\r\n");
  ASSERT_EQ(s.state(), client_state::failed);
  EXPECT_EQ(s.error()->what, client_error::kind::auth_failed);
  EXPECT_EQ(s.error()->reply->dsn, "5.7.8");
}

TEST_P(client_transcript, authenticator_without_mechanism_fails) {
  transcript t(GetParam(), transcript::opts());
  auto& s = t.session();
  plain_authenticator a("", "u", "p");
  s.set_authenticator(&a);
  t.server("220 mx ESMTP\r\n250-mx\r\n250 AUTH CRAM-MD5\r\n");
  ASSERT_EQ(s.state(), client_state::failed);
  EXPECT_EQ(s.error()->detail, "no mechanism available");
}

TEST_P(client_transcript, malformed_reply_is_protocol_error) {
  transcript t(GetParam(), transcript::opts());
  t.server("220 mx ESMTP\r\n");
  t.server("hello there\r\n");
  auto& s = t.session();
  ASSERT_EQ(s.state(), client_state::failed);
  EXPECT_EQ(s.error()->what, client_error::kind::protocol);
  EXPECT_EQ(s.error()->stage, client_stage::ehlo);
  EXPECT_EQ(s.error()->reply->text, "hello there");
}

TEST_P(client_transcript, unexpected_reply_is_protocol_error) {
  transcript t(GetParam(), transcript::opts());
  t.server("220 mx ESMTP\r\n250 mx\r\n250 extra\r\n");
  EXPECT_EQ(t.session().error()->detail, "unexpected reply");
}

TEST_P(client_transcript, long_lines_are_cut_and_line_count_is_bounded) {
  client_options o = transcript::opts();
  o.reply_line_bytes_max = 16;
  o.reply_bytes_max = 40;
  o.reply_lines_max = 5;
  transcript t(GetParam(), o);
  t.server("220 " + std::string(100, 'x') + "\r\n");
  EXPECT_EQ(t.session().greeting()->text, "220 xxxxxxxxxxxx");
  t.server("250-a\r\n250-b\r\n250-c\r\n250-d\r\n250-e\r\n250 f\r\n");
  ASSERT_EQ(t.session().state(), client_state::failed);
  EXPECT_EQ(t.session().error()->detail, "reply has too many lines");
}

TEST_P(client_transcript, lost_connection_names_the_stage) {
  transcript t(GetParam(), transcript::opts());
  auto& s = t.session();
  t.server("220 mx ESMTP\r\n");
  t.server(ehlo_pipelining);
  s.start(envelope({"a@x.test"}), t.now_);
  t.server("250 ok\r\n250 ok\r\n354 go\r\n");
  s.body(std::string_view("x\r\n"));
  s.end_body(t.now_);
  s.receive_eof(t.now_);
  ASSERT_EQ(s.state(), client_state::failed);
  EXPECT_EQ(s.error()->what, client_error::kind::lost_connection);
  EXPECT_EQ(while_text(s.error()->stage),
            "sending end of data -- message may be sent more than once");
}

INSTANTIATE_TEST_SUITE_P(fragmentation, client_transcript, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "bytewise" : "whole"; });

TEST(client_session, timeouts_follow_the_phase) {
  client_options o = transcript::opts();
  o.helo_timeout = 10s;
  o.mail_timeout = 20s;
  o.data_done_timeout = 600s;
  client_session s(o, t0);
  EXPECT_EQ(s.deadline(), t0 + 10s);
  s.advance(t0 + 9s);
  EXPECT_NE(s.state(), client_state::failed);
  const std::string g = "220 mx ESMTP\r\n250 mx\r\n";
  s.receive(g, t0 + 9s);
  EXPECT_EQ(s.deadline(), std::nullopt);  // ready: nothing outstanding
  s.start(envelope({"a@x.test"}), t0 + 30s);
  EXPECT_EQ(s.deadline(), t0 + 50s);
  s.advance(t0 + 50s);
  ASSERT_EQ(s.state(), client_state::failed);
  EXPECT_EQ(s.error()->what, client_error::kind::timeout);
  EXPECT_EQ(while_text(s.error()->stage), "sending MAIL FROM");
}

TEST(client_session, greeting_timeout) {
  client_session s(transcript::opts(), t0);
  s.advance(t0 + 300s);
  ASSERT_EQ(s.state(), client_state::failed);
  EXPECT_EQ(while_text(s.error()->stage), "receiving the initial server greeting");
}

TEST(client_session, stage_words_match_postfix) {
  EXPECT_EQ(in_reply_to_text(client_stage::mail), "MAIL FROM command");
  EXPECT_EQ(in_reply_to_text(client_stage::rcpt), "RCPT TO command");
  EXPECT_EQ(in_reply_to_text(client_stage::dot), "end of DATA command");
  EXPECT_EQ(while_text(client_stage::body), "sending message body");
  EXPECT_EQ(while_text(client_stage::ehlo), "performing the EHLO handshake");
}

TEST(client_session, reply_classification) {
  EXPECT_EQ(make_client_reply({"450 5.1.1 mixed"}).dsn, "4.1.1");
  EXPECT_EQ(make_client_reply({"250 2.0.0"}).dsn, "2.0.0");
  EXPECT_EQ(make_client_reply({"550 5.1.1x nope"}).dsn, "5.0.0");
  EXPECT_EQ(make_client_reply({"421"}).code, 421);
}

TEST(client_session, many_messages_on_one_connection) {
  client_session s(transcript::opts(), t0);
  std::string g = "220 mx ESMTP\r\n250-mx\r\n250 PIPELINING\r\n";
  s.receive(g, t0);
  s.consume_output(s.output().size());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(s.start(envelope({"a@x.test"}), t0));
    s.consume_output(s.output().size());
    const std::string r = "250 ok\r\n250 ok\r\n354 go\r\n";
    s.receive(r, t0);
    ASSERT_TRUE(s.wants_body());
    s.body(std::string_view("m\r\n"));
    s.end_body(t0);
    EXPECT_EQ(s.output(), "m\r\n.\r\n");
    s.consume_output(s.output().size());
    const std::string f = "250 done\r\n";
    s.receive(f, t0);
    auto res = s.take_result();
    ASSERT_TRUE(res && res->delivered());
  }
}

}  // namespace
}  // namespace relaylab::smtp
