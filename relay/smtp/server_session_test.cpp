// Dialogue tests for the SMTP server engine. Every transcript runs three ways: one chunk per
// client step, byte by byte, and everything pipelined in one buffer.
#include "relay/smtp/server_session.hpp"

#include <gtest/gtest.h>

#include "relay/smtp/server_session_test_support.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "relay/smtp/base64.hpp"

namespace relaylab::smtp {
namespace {

using namespace std::chrono_literals;
using namespace test_support;

void replay(const std::string& file, feed mode) {
  SCOPED_TRACE(file);
  const transcript t = parse(read_file(file));
  ASSERT_FALSE(t.steps.empty());
  driver d(t.options, t.fixture);
  std::string all_expected = t.greeting;
  EXPECT_EQ(d.taken, t.greeting);
  if (mode == feed::pipelined) {
    // All bytes up to the first wait in one buffer, then the rest after waiting.
    std::string buf;
    bool eof = false;
    for (const auto& st : t.steps) {
      if (st.wait.count()) {
        d.send(buf);
        buf.clear();
        d.take();
        d.wait(st.wait);
      }
      buf += st.send;
      all_expected += st.expect;
      eof = eof || st.eof;
      if (st.eof) break;
    }
    d.send(buf);
    d.take();
    EXPECT_EQ(d.taken, all_expected);
    EXPECT_EQ(d.s.closing(), eof);
    return;
  }
  for (const auto& st : t.steps) {
    if (st.wait.count()) d.wait(st.wait);
    d.send(st.send, mode);
    const std::string got = d.take();
    EXPECT_EQ(got, st.expect) << "after client sent: " << st.send.substr(0, 200);
    EXPECT_EQ(d.s.closing(), st.eof) << "after client sent: " << st.send.substr(0, 200);
    if (st.eof) break;
  }
}

std::string golden_name(const ::testing::TestParamInfo<std::tuple<std::string, feed>>& info) {
  std::string n = std::get<0>(info.param);
  n = n.substr(0, n.find('.'));
  static const char* const suffix[] = {"_steps", "_bytes", "_pipelined"};
  return n + suffix[static_cast<int>(std::get<1>(info.param))];
}

class golden : public ::testing::TestWithParam<std::tuple<std::string, feed>> {};

TEST_P(golden, MatchesPostfix) { replay(std::get<0>(GetParam()), std::get<1>(GetParam())); }

INSTANTIATE_TEST_SUITE_P(
    Postfix, golden,
    ::testing::Combine(::testing::Values("mail_syntax.golden", "syntax.golden",
                                         "command_lines.golden", "long_lines.golden",
                                         "data_bare_lf.golden", "data_normalize.golden",
                                         "bdat.golden", "bdat_errors.golden",
                                         "auth_before_ehlo.golden", "auth.golden",
                                         "auth_base64.golden", "no_auth_no_xclient.golden",
                                         "xclient.golden", "limits.golden",
                                         "ehlo_discard_timeout.golden", "bare_lf_reject.golden"),
                       ::testing::Values(feed::per_step, feed::byte_by_byte, feed::pipelined)),
    golden_name);

// ---- focused dialogue tests ---------------------------------------------------------------

TEST(ServerSession, GreetingAndEhloKeywordOrder) {
  driver d(main_opts());
  EXPECT_EQ(d.taken, "220 relay.example.com ESMTP Postfix\r\n");
  EXPECT_EQ(d.exchange("EHLO x"),
            "250-relay.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n"
            "250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n250-XCLIENT NAME ADDR PROTO HELO REVERSE_NAME "
            "PORT LOGIN DESTADDR DESTPORT\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
            "250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n");
  EXPECT_EQ(d.s.client().protocol, "ESMTP");
  EXPECT_EQ(d.s.client().helo, "x");
}

TEST(ServerSession, EhloWithBrokenSaslAndDiscards) {
  auto o = main_opts();
  o.broken_sasl_auth_clients = true;
  o.discard_ehlo_keywords = {"pipelining", "CHUNKING", "xclient"};
  o.message_size_limit = 0;
  driver d(o);
  EXPECT_EQ(d.exchange("EHLO x"),
            "250-relay.example.com\r\n250-SIZE\r\n250-VRFY\r\n250-ETRN\r\n250-AUTH PLAIN LOGIN\r\n"
            "250-AUTH=PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
            "250 SMTPUTF8\r\n");
}

TEST(ServerSession, NoAuthWithoutMechanisms) {
  auto o = main_opts();
  o.sasl_mechanisms.clear();
  o.xclient_authorized = false;
  driver d(o);
  const auto r = d.exchange("EHLO x");
  EXPECT_EQ(r.find("AUTH"), std::string::npos);
  EXPECT_EQ(r.find("XCLIENT"), std::string::npos);
}

TEST(ServerSession, DiscardEnhancedStatusCodesStripsThem) {
  auto o = main_opts();
  o.discard_ehlo_keywords = {"enhancedstatuscodes"};
  driver d(o);
  d.exchange("EHLO x");
  EXPECT_EQ(d.exchange("MAIL FROM:<a@b>"), "250 Ok\r\n");
  EXPECT_EQ(d.exchange("FOO"), "500 Error: command not recognized\r\n");
}

TEST(ServerSession, HeloReply) {
  driver d(main_opts());
  EXPECT_EQ(d.exchange("HELO client.example"), "250 relay.example.com\r\n");
  EXPECT_EQ(d.s.client().protocol, "SMTP");
}

TEST(ServerSession, HeloRejectedByHandler) {
  driver d(main_opts());
  d.h.helo_verdict = reply{"550 5.7.1 <x>: Helo command rejected: go away"};
  EXPECT_EQ(d.exchange("HELO x"), "550 5.7.1 <x>: Helo command rejected: go away\r\n");
  EXPECT_EQ(d.s.client().helo, "");
  EXPECT_EQ(d.s.command_counts(), "helo=0/1 commands=0/1");
}

TEST(ServerSession, FullTransactionAndCounts) {
  driver d(main_opts());
  d.exchange("EHLO x");
  EXPECT_EQ(d.exchange("MAIL FROM:<a@b> SIZE=100 BODY=8bitmime"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(d.exchange("RCPT TO:<c@d>"), "250 2.1.5 Ok\r\n");
  EXPECT_EQ(d.exchange("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
  d.send("Subject: t\r\n\r\n..dot\r\nbody\r\n.\r\n");
  EXPECT_EQ(d.take(), "250 2.0.0 Ok: queued as QUEUEID\r\n");
  EXPECT_EQ(d.h.body, "Subject: t\r\n\r\n.dot\r\nbody\r\n");
  EXPECT_EQ(d.exchange("QUIT"), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(d.s.closing());
  EXPECT_EQ(d.s.command_counts(), "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5");
  EXPECT_EQ(d.h.events.back(), "disconnect quit");
  EXPECT_NE(std::find(d.h.events.begin(), d.h.events.end(), "mail <a@b> size=100 body=8BITMIME"),
            d.h.events.end());
}

TEST(ServerSession, CountsWithFailures) {
  driver d(main_opts());
  d.exchange("EHLO x");
  d.exchange("AUTH PLAIN AHNtdHAtYXV0aEBleGFtcGxlLmNvbQBwYXNz");
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<>");
  d.exchange("RCPT TO:<c@d>");
  d.exchange("DATA");
  d.send(".\r\n");
  d.exchange("BOGUS");
  d.exchange("QUIT");
  EXPECT_EQ(d.s.command_counts(),
            "ehlo=1 auth=1 mail=1 rcpt=1/2 data=1 quit=1 unknown=0/1 commands=6/8");
}

// Observed in testdata/log/postfix-3.7.11-observed.maillog: a client that says nothing.
TEST(ServerSession, EmptySessionCounts) {
  driver d(main_opts());
  EXPECT_EQ(d.s.command_counts(), "commands=0/0");
}

TEST(ServerSession, SequenceErrors) {
  driver d(main_opts());
  EXPECT_EQ(d.exchange("RCPT TO:<a@b>"), "503 5.5.1 Error: need MAIL command\r\n");
  EXPECT_EQ(d.exchange("DATA"), "503 5.5.1 Error: need RCPT command\r\n");
  EXPECT_EQ(d.exchange("MAIL FROM:<a@b>"), "250 2.1.0 Ok\r\n");  // HELO not required
  EXPECT_EQ(d.exchange("MAIL FROM:<a@b>"), "503 5.5.1 Error: nested MAIL command\r\n");
  EXPECT_EQ(d.exchange("DATA"), "554 5.5.1 Error: no valid recipients\r\n");
  EXPECT_EQ(d.exchange("RSET"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(d.exchange("STARTTLS"), "502 5.5.1 Error: command not implemented\r\n");
  EXPECT_EQ(d.exchange("HELP"), "500 5.5.2 Error: command not recognized\r\n");
}

TEST(ServerSession, HeloRequired) {
  auto o = main_opts();
  o.helo_required = true;
  driver d(o);
  EXPECT_EQ(d.exchange("MAIL FROM:<a@b>"), "503 5.5.1 Error: send HELO/EHLO first\r\n");
  EXPECT_EQ(d.exchange("ETRN example.com"), "503 Error: send HELO/EHLO first\r\n");
  d.exchange("HELO x");
  EXPECT_EQ(d.exchange("MAIL FROM:<a@b>"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(d.exchange("ETRN example.com"), "503 Error: MAIL transaction in progress\r\n");
}

TEST(ServerSession, SizeQuirkPersistsUntilReset) {
  driver d(main_opts());
  EXPECT_EQ(d.exchange("MAIL FROM:<a@b> SIZE=10240001"),
            "552 5.3.4 Message size exceeds fixed limit\r\n");
  EXPECT_EQ(d.exchange("MAIL FROM:<a@b>"), "552 5.3.4 Message size exceeds fixed limit\r\n");
  d.exchange("RSET");
  EXPECT_EQ(d.exchange("MAIL FROM:<a@b>"), "250 2.1.0 Ok\r\n");
}

TEST(ServerSession, RecipientLimitAndOvershoot) {
  auto o = main_opts();
  o.recipient_limit = 2;
  o.recipient_overshoot_limit = 1;
  driver d(o);
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<1@x>");
  d.exchange("RCPT TO:<2@x>");
  EXPECT_EQ(d.exchange("RCPT TO:<3@x>"), "452 4.5.3 Error: too many recipients\r\n");
  EXPECT_EQ(d.exchange("RCPT TO:<4@x>"), "452 4.5.3 Error: too many recipients\r\n");
  EXPECT_EQ(d.s.command_counts(), "mail=1 rcpt=3/4 commands=4/5");
}

TEST(ServerSession, SizeExceededDuringData) {
  auto o = main_opts();
  o.message_size_limit = 100;
  driver d(o);
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<c@d>");
  d.exchange("DATA");
  d.send(std::string(80, 'x') + "\r\n" + std::string(80, 'y') + "\r\n.\r\n");
  EXPECT_EQ(d.take(), "552 5.3.4 Message size exceeds fixed limit\r\n");
  EXPECT_EQ(d.h.events[d.h.events.size() - 2], "end exceeded");
  EXPECT_LE(d.h.body.size(), 100u);
}

TEST(ServerSession, DataBareLfNormalizedToCrlf) {
  driver d(main_opts());
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<c@d>");
  d.exchange("DATA");
  d.send("a\nb\rc\r\n..\n.x\r\n.\n");
  EXPECT_EQ(d.take(), "250 2.0.0 Ok: queued as QUEUEID\r\n");
  EXPECT_EQ(d.h.body, "a\r\nb\rc\r\n.\r\nx\r\n");
}

// MAIL, RCPT and DATA, each answered.
void start_data(driver& d) {
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<c@d>");
  d.exchange("DATA");
}

TEST(ServerSession, DataStrictEndWhenNormalizing) {
  auto o = main_opts();
  o.forbid_bare_newline = true;
  driver d(o);
  start_data(d);
  d.send("a\n.\n.\r\n");  // ".\n" and "\n.\r\n" are content
  EXPECT_EQ(d.take(), "");
  d.send("b\r\n.\r\n");
  EXPECT_EQ(d.take(), "250 2.0.0 Ok: queued as QUEUEID\r\n");
  EXPECT_EQ(d.h.body, "a\r\n\r\n\r\nb\r\n");
}

// Postfix 3.7.11 (testdata/dialogues/harden-bare-lf-reject-data.ref): the content after a bare
// <LF> is read up to <CR><LF>.<CR><LF> and dropped, the message is refused, the session goes on.
TEST(ServerSession, DataRejectModeRefusesMessageOnBareLf) {
  auto o = main_opts();
  o.forbid_bare_newline_reject = true;
  driver d(o);
  start_data(d);
  d.send("ok\r\nbad\n.\nMAIL FROM:<x@y>\r\n.\r\n");
  EXPECT_EQ(d.take(), "550 5.5.2 relay.example.com Error: bare <LF> received\r\n");
  EXPECT_FALSE(d.s.closing());
  EXPECT_EQ(d.exchange("RCPT TO:<c@d>"), "503 5.5.1 Error: need MAIL command\r\n");
}

TEST(ServerSession, DataRejectCode521Closes) {
  auto o = main_opts();
  o.forbid_bare_newline_reject = true;
  o.forbid_bare_newline_reject_code = 521;
  driver d(o);
  start_data(d);
  d.send("bad\n.\r\n\r\n.\r\n");  // "\n.\r\n" is content: the end needs <CR><LF> before it
  EXPECT_EQ(d.take(), "521 5.5.2 relay.example.com Error: bare <LF> received\r\n");
  EXPECT_TRUE(d.s.closing());
}

TEST(ServerSession, DataLargeChunksPassedWhole) {
  driver d(main_opts());
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<c@d>");
  d.exchange("DATA");
  std::string body;
  for (int i = 0; i < 1000; ++i) body += "line " + std::to_string(i) + " of the message\r\n";
  d.send(body + ".\r\n");
  EXPECT_EQ(d.h.body, body);
  EXPECT_EQ(d.take(), "250 2.0.0 Ok: queued as QUEUEID\r\n");
}

TEST(ServerSession, DataLinesLongerThanLimitPassThrough) {
  driver d(main_opts());
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<c@d>");
  d.exchange("DATA");
  const std::string long_line = "." + std::string(5000, 'z') + "\r\n";
  d.send(long_line + ".\r\n");
  EXPECT_EQ(d.h.body, long_line.substr(1));
}

TEST(ServerSession, PendingCommitKeepsInputBuffered) {
  driver d(main_opts());
  d.exchange("EHLO x");
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<c@d>");
  d.exchange("DATA");
  const std::string rest = "x\r\n.\r\nMAIL FROM:<e@f>\r\nRCPT TO:<g@h>\r\nQUIT\r\n";
  d.s.receive(std::span<const char>(rest.data(), rest.size()), d.now);
  EXPECT_TRUE(d.h.commit_pending);
  EXPECT_EQ(d.take(), "");  // nothing answered while the commit is pending
  EXPECT_EQ(d.h.events.back(), "end");
  d.h.commit_pending = false;
  d.s.finish_message(reply{"451 4.3.0 Error: queue file write error"}, d.now);
  EXPECT_EQ(d.take(),
            "451 4.3.0 Error: queue file write error\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
            "221 2.0.0 Bye\r\n");
  EXPECT_EQ(d.s.command_counts(), "ehlo=1 mail=2 rcpt=2 data=0/1 quit=1 commands=6/7");
}

TEST(ServerSession, JunkCommandLimit) {
  auto o = main_opts();
  o.junk_command_limit = 2;
  o.hard_error_limit = 2;
  driver d(o);
  d.exchange("NOOP");
  d.exchange("NOOP");
  d.exchange("NOOP");
  EXPECT_EQ(d.exchange("NOOP"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(d.exchange("NOOP"),
            "250 2.0.0 Ok\r\n421 4.7.0 relay.example.com Error: too many errors\r\n");
  EXPECT_TRUE(d.s.closing());
  EXPECT_EQ(d.h.events.back(), "disconnect too many errors");
}

TEST(ServerSession, SoftErrorLimitDelaysReplies) {
  auto o = main_opts();
  o.soft_error_limit = 2;
  o.error_sleep_time = 1000ms;
  driver d(o);
  EXPECT_EQ(d.exchange("FOO"), "500 5.5.2 Error: command not recognized\r\n");
  // Postfix counts the error after replying: the second reply is still immediate.
  EXPECT_EQ(d.exchange("FOO"), "500 5.5.2 Error: command not recognized\r\n");
  EXPECT_EQ(d.exchange("FOO"), "");  // error count is at the soft limit: reply held back
  ASSERT_TRUE(d.s.deadline());
  EXPECT_EQ(*d.s.deadline(), d.now + std::chrono::seconds(1));
  d.send("NOOP\r\n");  // buffered behind the held reply
  EXPECT_EQ(d.take(), "");
  d.wait(999ms);
  EXPECT_EQ(d.take(), "");
  d.wait(1ms);
  EXPECT_EQ(d.take(), "500 5.5.2 Error: command not recognized\r\n");
  d.wait(1s);
  EXPECT_EQ(d.take(), "250 2.0.0 Ok\r\n");
}

TEST(ServerSession, TimeoutClosesWith421) {
  auto o = main_opts();
  o.timeout = 300s;
  driver d(o);
  ASSERT_TRUE(d.s.deadline());
  EXPECT_EQ(*d.s.deadline(), timestamp{} + std::chrono::seconds(300));
  d.wait(299s);
  EXPECT_EQ(d.take(), "");
  d.exchange("NOOP");  // activity pushes the deadline
  d.wait(299s);
  EXPECT_EQ(d.take(), "");
  d.wait(1s);
  EXPECT_EQ(d.take(), "421 4.4.2 relay.example.com Error: timeout exceeded\r\n");
  EXPECT_TRUE(d.s.closing());
  EXPECT_EQ(d.h.events.back(), "disconnect timeout");
}

// smtpd_timeout 300s with smtpd_per_request_deadline = yes and smtpd_min_data_rate 500.
server_options deadline_opts() {
  auto o = main_opts();
  o.timeout = 300s;
  o.per_request_deadline = true;
  o.min_data_rate = 500;
  return o;
}

// MAIL, RCPT and DATA; returns DATA's reply.
std::string open_data(driver& d) {
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<c@d>");
  return d.exchange("DATA");
}

// smtpd_per_request_deadline = no (the default): each read may take smtpd_timeout, so a client
// that trickles one byte of DATA every 10 s is never cut off.
TEST(ServerSession, SlowTrickleSurvivesWithoutPerRequestDeadline) {
  auto o = deadline_opts();
  o.per_request_deadline = false;
  driver d(o);
  EXPECT_EQ(open_data(d), "354 End data with <CR><LF>.<CR><LF>\r\n");
  for (int i = 0; i < 100; ++i) {
    d.wait(10s);
    d.send("x");
  }
  EXPECT_EQ(d.take(), "");
  EXPECT_FALSE(d.s.closing());
}

// smtpd_per_request_deadline = yes: DATA content has smtpd_timeout in all, plus 1/min_data_rate
// s per byte read (never more than smtpd_timeout in hand). At 1 byte per 10 s against 500 B/s
// the budget runs out after about 300 s: 421 4.4.2, as Postfix's vstream deadline.
TEST(ServerSession, SlowTrickleCutOffByMinDataRate) {
  driver d(deadline_opts());
  EXPECT_EQ(open_data(d), "354 End data with <CR><LF>.<CR><LF>\r\n");
  int sent = 0;
  while (!d.s.closing() && sent < 100) {
    d.wait(10s);
    d.send("x");
    ++sent;
  }
  EXPECT_EQ(d.take(), "421 4.4.2 relay.example.com Error: timeout exceeded\r\n");
  EXPECT_EQ(sent, 31);  // 30 bytes by 300 s earn 60 ms: the wait to 310 s passes the deadline
  EXPECT_EQ(d.h.events.back(), "disconnect timeout");
}

// A client at the minimum rate or faster keeps its DATA budget topped up to smtpd_timeout: a
// 1 MB message sent over 600 s (about 1,700 B/s) is accepted.
TEST(ServerSession, FastEnoughDataOutlastsTheTimeout) {
  driver d(deadline_opts());
  open_data(d);
  const std::string line(1022, 'y');
  for (int i = 0; i < 1000; ++i) {
    d.wait(600ms);
    d.send(line + "\r\n");
  }
  EXPECT_FALSE(d.s.closing());
  d.send(".\r\n");
  EXPECT_NE(std::find(d.h.events.begin(), d.h.events.end(), "end"), d.h.events.end());
  EXPECT_FALSE(d.s.closing());
}

// With a deadline, a command line's budget is not topped up by the bytes it brings: a client
// typing one byte a second for a long command still times out at smtpd_timeout.
TEST(ServerSession, PerRequestDeadlineBoundsACommandLine) {
  auto o = main_opts();
  o.timeout = 30s;
  o.per_request_deadline = true;
  driver d(o);
  for (int i = 0; i < 29; ++i) {
    d.wait(1s);
    d.send("N");
  }
  EXPECT_FALSE(d.s.closing());
  d.wait(1s);
  EXPECT_EQ(d.take(), "421 4.4.2 relay.example.com Error: timeout exceeded\r\n");
  EXPECT_TRUE(d.s.closing());
}

TEST(ServerSession, NoTimeoutWhileCommitPending) {
  driver d(main_opts());
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<c@d>");
  d.exchange("DATA");
  std::string end = ".\r\n";
  d.s.receive(std::span<const char>(end.data(), end.size()), d.now);
  EXPECT_FALSE(d.s.deadline().has_value());
}

TEST(ServerSession, LostConnectionDuringAuthAborts) {
  driver d(main_opts());
  d.exchange("EHLO x");
  EXPECT_EQ(d.exchange("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
  d.s.receive_eof(d.now);
  EXPECT_TRUE(d.s.closing());
  ASSERT_GE(d.h.events.size(), 2u);
  EXPECT_EQ(d.h.events[d.h.events.size() - 2], "auth-abort");
  EXPECT_EQ(d.h.events.back(), "disconnect lost connection");
  EXPECT_EQ(d.s.last_command(), "AUTH");
}

TEST(ServerSession, AuthInitialResponseAndSuccess) {
  driver d(main_opts());
  d.exchange("EHLO x");
  EXPECT_EQ(d.exchange("AUTH PLAIN AHNtdHAtYXV0aEBleGFtcGxlLmNvbQBwYXNz"),
            "235 2.7.0 Authentication successful\r\n");
  EXPECT_TRUE(d.s.authenticated());
}

TEST(ServerSession, AuthEmptyContinuationIsEmptyResponse) {
  driver d(main_opts());
  EXPECT_EQ(d.exchange("AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n");
  EXPECT_EQ(d.exchange(""), "334 UGFzc3dvcmQ6\r\n");
  EXPECT_EQ(d.exchange(base64_encode("x")),
            "535 5.7.8 Error: authentication failed: authentication failure\r\n");
}

TEST(ServerSession, AuthNotEnabled) {
  auto o = main_opts();
  o.sasl_auth_enable = false;
  driver d(o);
  EXPECT_EQ(d.exchange("AUTH PLAIN"), "503 5.5.1 Error: authentication not enabled\r\n");
}

TEST(ServerSession, XclientResetsSession) {
  driver d(main_opts());
  d.exchange("EHLO x");
  EXPECT_EQ(d.exchange("XCLIENT ADDR=203.0.113.9 NAME=client.example.net HELO=h"),
            "220 relay.example.com ESMTP Postfix\r\n");
  EXPECT_EQ(d.s.client().addr, "203.0.113.9");
  EXPECT_EQ(d.s.client().name, "client.example.net");
  EXPECT_EQ(d.s.client().helo, "h");
  EXPECT_EQ(d.h.events.back(), "xclient client.example.net 203.0.113.9");
  EXPECT_EQ(d.s.command_counts(), "ehlo=1 xclient=0/1 commands=1/2");
}

// Postfix applies XCLIENT attributes as it reads them: a bad one leaves those before it in force
// but restarts nothing (testdata/dialogues/xclient-partial*.dlg).
TEST(ServerSession, XclientFailingPartWayKeepsWhatItApplied) {
  driver d(main_opts());
  d.exchange("EHLO x");
  const auto before = d.h.events.size();
  EXPECT_EQ(d.exchange("XCLIENT ADDR=203.0.113.9 LOGIN=bob PORT=x"),
            "501 5.5.4 Bad PORT syntax: x\r\n");
  EXPECT_EQ(d.s.client().addr, "203.0.113.9");
  EXPECT_EQ(d.s.client().port, "40000");
  EXPECT_EQ(d.s.client().helo, "x");  // no restart: the HELO name stays
  EXPECT_TRUE(d.s.authenticated());
  EXPECT_EQ(d.h.events.size(), before);  // no on_xclient
  EXPECT_EQ(d.exchange("AUTH PLAIN"), "503 5.5.1 Error: already authenticated\r\n");
  // A complete XCLIENT forgets the HELO name and the protocol unless it sets them.
  EXPECT_EQ(d.exchange("XCLIENT LOGIN=[unavailable]"), "220 relay.example.com ESMTP Postfix\r\n");
  EXPECT_EQ(d.s.client().helo, "");
  EXPECT_EQ(d.s.client().protocol, "SMTP");
  EXPECT_FALSE(d.s.authenticated());
}

TEST(ServerSession, XclientIpv6WhenEnabled) {
  auto o = main_opts();
  o.inet_ipv6 = true;
  driver d(o);
  // Postfix checks digits and length only (testdata/dialogues/xclient-attribute-syntax.dlg).
  EXPECT_EQ(d.exchange("XCLIENT PORT=700000"), "501 5.5.4 Bad PORT syntax: 700000\r\n");
  EXPECT_EQ(d.exchange("XCLIENT ADDR=IPV6:2001:db8::1 PORT=2525"),
            "220 relay.example.com ESMTP Postfix\r\n");
  EXPECT_EQ(d.s.client().addr, "2001:db8::1");
  // The new address is outside the authorized hosts.
  EXPECT_EQ(d.exchange("XCLIENT PORT=1"), "550 5.7.0 Error: insufficient authorization\r\n");
}

TEST(ServerSession, ForbiddenCommandsHangUp) {
  for (const char* c :
       {"GET / HTTP/1.0", "POST /x", "CONNECT a:25", "Subject: hi", "From: x", "123", "{NOOP"}) {
    driver d(main_opts());
    EXPECT_EQ(d.exchange(c), "221 2.7.0 Error: I can break rules, too. Goodbye.\r\n") << c;
    EXPECT_TRUE(d.s.closing()) << c;
  }
}

TEST(ServerSession, VrfyDisabledAndHandler) {
  auto o = main_opts();
  o.disable_vrfy_command = true;
  driver d(o);
  EXPECT_EQ(d.exchange("VRFY a"), "502 5.5.1 VRFY command is disabled\r\n");
  driver e(main_opts());
  e.h.local_vrfy_reply = "451 4.3.0 <root>: Temporary lookup failure";
  EXPECT_EQ(e.exchange("VRFY root"), "451 4.3.0 <root>: Temporary lookup failure\r\n");
  EXPECT_EQ(e.exchange("VRFY <a@b> SMTPUTF8"), "252 2.0.0 <a@b>\r\n");
}

TEST(ServerSession, ConnectRejected) {
  server_options o = main_opts();
  fake_handler h;
  h.connect_verdict = reply{"421 4.3.2 Service currently unavailable"};
  server_session s(o, h, client_identity{}, timestamp{});
  s.start(timestamp{});
  EXPECT_EQ(s.output(), "421 4.3.2 Service currently unavailable\r\n");
  EXPECT_TRUE(s.closing());
}

TEST(ServerSession, BinaryGarbageNeverHangs) {
  std::uint32_t x = 12345;
  for (int round = 0; round < 50; ++round) {
    driver d(main_opts());
    std::string junk;
    for (int i = 0; i < 4096; ++i) {
      x = x * 1664525u + 1013904223u;
      junk += static_cast<char>(x >> 24);
    }
    d.send(junk);
    d.send("\r\nQUIT\r\n");
    d.take();
    d.wait(400s);
    d.take();
    EXPECT_TRUE(d.s.closing());
  }
}

TEST(ServerSession, OverlongLineWithoutNewlineStaysBounded) {
  driver d(main_opts());
  std::string big(1 << 20, 'A');
  for (int i = 0; i < 8; ++i) d.send(big);
  EXPECT_EQ(d.take(), "");
  d.send("\r\nNOOP\r\n");
  EXPECT_EQ(d.take(), "500 5.5.2 Error: command not recognized\r\n250 2.0.0 Ok\r\n");
}

// Issue 15: a client trickling an endless command one byte per write keeps the session's
// buffer bounded (want_input never turns false), and the tail never runs as a command.
TEST(ServerSession, OneByteChunksOfAnOverlongCommandStayBounded) {
  driver d(main_opts());
  const std::string head = "NOOP ";
  for (char c : head) d.send(std::string(1, c));
  for (int i = 0; i < 300000; ++i) {
    d.send(i % 1000 == 999 ? "\r" : "x");
    ASSERT_TRUE(d.s.want_input()) << "after " << i << " bytes";
  }
  d.send("QUIT\r\n");
  EXPECT_EQ(d.take(), "250 2.0.0 Ok\r\n");  // NOOP takes any argument, as in Postfix
  EXPECT_FALSE(d.s.closing());              // "QUIT" was part of the overlong line, not a command
}

// A NUL ends the command where it stands, as in Postfix 3.7.11 (testdata/dialogues/nul-bytes).
TEST(ServerSession, NulBytesInCommand) {
  driver d(main_opts());
  d.send(std::string("NOOP\0x\r\n", 8));
  EXPECT_EQ(d.take(), "250 2.0.0 Ok\r\n");
  d.send(std::string("MAIL\0 FROM:<a@b>\r\n", 18));
  EXPECT_EQ(d.take(), "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
  d.send(std::string("\0\0\0\r\n", 5));
  EXPECT_EQ(d.take(), "500 5.5.2 Error: bad syntax\r\n");
}

TEST(ServerSession, InvalidBase64Forms) {
  driver d(main_opts());
  EXPECT_EQ(d.exchange("AUTH PLAIN ====="),
            "535 5.7.8 Error: authentication failed: bad protocol / cancel\r\n");
  EXPECT_EQ(d.exchange("AUTH PLAIN Zg"),
            "535 5.7.8 Error: authentication failed: another step is needed in authentication\r\n");
}

// Postfix's smtp_get() takes every CR off before the LF unless it checks for bare LF
// (smtpd_forbid_bare_newline), when it takes just the CRLF's one (diff_fuzz seed 2930).
TEST(ServerSession, LineReaderStripsCrsAsPostfixDoes) {
  driver d(main_opts());
  EXPECT_EQ(d.exchange("AUTH PLAIN"), "334 \r\n");
  d.send("QUJD\r\r\n");  // the CRs are gone: "ABC" decodes and PLAIN refuses it
  EXPECT_EQ(d.h.events.back(), "auth-continue");
  EXPECT_EQ(d.take(), "535 5.7.8 Error: authentication failed: bad protocol / cancel\r\n");
  auto o = main_opts();
  o.forbid_bare_newline = true;
  driver n(o);
  EXPECT_EQ(n.exchange("AUTH PLAIN"), "334 \r\n");
  n.send("QUJD\r\r\n");  // "QUJD\r": a partial quantum after a good one
  EXPECT_EQ(n.take(),
            "535 5.7.8 Error: authentication failed: another step is needed in authentication\r\n");
  EXPECT_EQ(n.exchange("AUTH PLAIN"), "334 \r\n");
  n.send("\rQUJD\r\n");
  EXPECT_EQ(n.take(), "535 5.7.8 Error: authentication failed: generic failure\r\n");
  // The response ends at a NUL, as Postfix's C string does: this one is "*".
  EXPECT_EQ(n.exchange("AUTH PLAIN"), "334 \r\n");
  n.send(std::string("*\0QUJD\r\n", 8));
  EXPECT_EQ(n.take(), "501 5.7.0 Authentication aborted\r\n");
  // A line cut at line_length_limit has no terminator, so it is no bare-LF line either.
  o.forbid_bare_newline_reject = true;
  driver r(o);
  r.send("NOOP " + std::string(o.line_length_limit, 'x') + "\n");
  EXPECT_EQ(r.take(), "250 2.0.0 Ok\r\n");
  r.send("NOOP\n");
  EXPECT_EQ(r.take().substr(0, 4), "550 ");
}

// libsasl2 decodes padding it does not need ("QR==" is "A") and stops at the first "=".
TEST(ServerSession, Base64AsLibsasl2) {
  driver d(main_opts());
  EXPECT_EQ(d.exchange("AUTH PLAIN AHNtdHAtYXV0aEBleGFtcGxlLmNvbQBwYXNz"),
            "235 2.7.0 Authentication successful\r\n");
  driver e(main_opts());
  EXPECT_EQ(e.exchange("AUTH PLAIN AHNtdHAtYXV0aEBleGFtcGxlLmNvbQBwYXN="),
            "535 5.7.8 Error: authentication failed: authentication failure\r\n");
  EXPECT_EQ(e.exchange("AUTH PLAIN QQ==Q"),
            "535 5.7.8 Error: authentication failed: bad protocol / cancel\r\n");
}

TEST(ServerSession, WantInputTurnsFalseBehindPendingCommit) {
  auto o = main_opts();
  o.input_bytes_max = 1024;
  driver d(o);
  d.exchange("MAIL FROM:<a@b>");
  d.exchange("RCPT TO:<c@d>");
  d.exchange("DATA");
  std::string s = ".\r\n" + std::string(2000, 'N') + "\r\n";
  d.s.receive(std::span<const char>(s.data(), s.size()), d.now);
  EXPECT_FALSE(d.s.want_input());
  d.commit();
  EXPECT_TRUE(d.s.want_input());
}

}  // namespace
}  // namespace relaylab::smtp
