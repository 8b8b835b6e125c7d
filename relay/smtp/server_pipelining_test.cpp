// Pipelining in the SMTP server engine: Postfix 3.7.11's SMTPD_FLAG_ILL_PIPELINING (input
// waiting before the greeting, behind a command before EHLO, or behind HELO, EHLO, DATA, VRFY
// or NOOP), what smtpd_forbid_unauth_pipelining does with it, and memory under long pipelines.
// The replies and log texts were taken from Postfix 3.7.11 (testdata/dialogues/harden-pipe-*).
#include "relay/smtp/server_session.hpp"

#include <gtest/gtest.h>

#include <string>

#include "relay/smtp/server_session_test_support.hpp"

namespace relaylab::smtp {
namespace {

using namespace test_support;

constexpr const char* greeting = "220 relay.example.com ESMTP Postfix\r\n";

server_options forbidding() {
  auto o = main_opts();
  o.forbid_unauth_pipelining = true;
  return o;
}

// smtpd_forbid_unauth_pipelining (testdata/dialogues/harden-pipe-pipe-forbid-*.ref).
TEST(ServerPipelining, ForbidUnauthPipeliningAnswersInsteadOfTheCommand) {
  auto o = main_opts();
  o.forbid_unauth_pipelining = true;
  driver d(o);
  d.exchange("EHLO x");
  d.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nearly body\r\n");
  EXPECT_EQ(d.take(),
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n554 5.5.0 Error: SMTP protocol synchronization\r\n");
  EXPECT_TRUE(d.s.closing());
}

TEST(ServerPipelining, UnauthPipeliningFlag) {
  driver d(main_opts());
  d.send("HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
  EXPECT_TRUE(d.s.client().unauth_pipelining);
  driver e(main_opts());
  e.exchange("EHLO x");
  e.send("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n");
  EXPECT_FALSE(e.s.client().unauth_pipelining);
  driver f(main_opts());
  f.exchange("HELO x");
  f.exchange("MAIL FROM:<a@b>");
  EXPECT_FALSE(f.s.client().unauth_pipelining);
}

TEST(ServerPipelining, TenThousandPipelinedCommandsBoundedMemory) {
  driver d(main_opts());
  d.exchange("EHLO x");
  std::string buf;
  for (int i = 0; i < 10000; ++i) buf += "NOOP\r\n";
  d.s.receive(std::span<const char>(buf.data(), buf.size()), d.now);
  // Output stops growing at the cap; the rest waits in the input buffer.
  EXPECT_LE(d.s.output().size(), 64u * 1024u + 64u);
  std::string all = d.take();
  std::size_t n = 0;
  for (std::size_t p = 0; (p = all.find("250 2.0.0 Ok\r\n", p)) != std::string::npos; p += 14) ++n;
  // The junk limit turns the NOOPs into errors: error limit reached long before 10000.
  EXPECT_GT(n, 100u);
  EXPECT_NE(all.find("421 4.7.0 relay.example.com Error: too many errors"), std::string::npos);
}

TEST(ServerPipelining, TenThousandPipelinedTransactions) {
  auto o = main_opts();
  driver d(o);
  d.exchange("EHLO x");
  std::string buf;
  for (int i = 0; i < 2500; ++i) buf += "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\n";
  d.send(buf);
  const std::string all = d.take();
  std::size_t n = 0;
  for (std::size_t p = 0; (p = all.find("queued as", p)) != std::string::npos; ++p) ++n;
  EXPECT_EQ(n, 2500u);
  EXPECT_EQ(d.s.command_counts(), "ehlo=1 mail=2500 rcpt=2500 data=2500 commands=7501");
}

// Talking before the greeting: flagged and shown (at most 100 bytes), then the greeting as
// usual, and the early commands are answered in order once they are read.
TEST(ServerPipelining, InputBeforeTheGreetingIsFlaggedAndShown) {
  const std::string early = "EHLO early.example\r\nMAIL FROM:<a@b.example>\r\n";
  driver d(main_opts(), "", early);
  EXPECT_EQ(d.taken, greeting);
  ASSERT_EQ(d.h.improper.size(), 1u);
  EXPECT_EQ(d.h.improper[0], "CONNECT: " + early);
  EXPECT_TRUE(d.s.client().unauth_pipelining);
  d.send(early);
  const std::string out = d.take();
  EXPECT_EQ(out.substr(0, 20), "250-relay.example.co");
  EXPECT_NE(out.find("250 2.1.0 Ok\r\n"), std::string::npos);
  // Flagged once per connection: the EHLO with input behind it is not reported again.
  EXPECT_EQ(d.h.improper.size(), 1u);

  driver big(main_opts(), "", std::string(300, 'x'));
  ASSERT_EQ(big.h.improper.size(), 1u);
  EXPECT_EQ(big.h.improper[0], "CONNECT: " + std::string(100, 'x'));
}

// With smtpd_forbid_unauth_pipelining the 554 replaces the greeting; the connect checks never
// run (no on_connect: Postfix answers before anvil and the client restrictions).
TEST(ServerPipelining, ForbidAnswersInputBeforeTheGreetingInsteadOfGreeting) {
  driver d(forbidding(), "", "EHLO early.example\r\n");
  EXPECT_EQ(d.taken, "554 5.5.0 Error: SMTP protocol synchronization\r\n");
  EXPECT_TRUE(d.s.closing());
  EXPECT_EQ(d.h.events, std::vector<std::string>{"disconnect "});
  EXPECT_EQ(d.s.command_counts(), "commands=0/0");
}

// In wrapper mode the client speaks first by design (its TLS hello).
TEST(ServerPipelining, WrapperModeIgnoresInputBeforeTheHandshake) {
  auto o = forbidding();
  o.tls_wrappermode = true;
  driver d(o, "", "\x16\x03\x01\x02\x00");
  EXPECT_EQ(d.taken, "");
  EXPECT_TRUE(d.s.tls_wanted());
  EXPECT_TRUE(d.h.improper.empty());
  EXPECT_FALSE(d.s.client().unauth_pipelining);
}

// Which commands end a group: after EHLO only HELO, EHLO, DATA, VRFY and NOOP. STARTTLS is not
// one of them (its own purge discards what follows), nor MAIL, RCPT, RSET or AUTH.
TEST(ServerPipelining, AfterEhloOnlyGroupEndingCommandsAreFlagged) {
  for (const char* cmd : {"NOOP", "VRFY postmaster", "HELO again.example", "EHLO again.example"}) {
    driver d(main_opts());
    d.exchange("EHLO x");
    d.send(std::string(cmd) + "\r\nRSET\r\n");
    ASSERT_EQ(d.h.improper.size(), 1u) << cmd;
    const std::string name = std::string(cmd).substr(0, 4);
    EXPECT_EQ(d.h.improper[0], name + ": RSET\r\n") << cmd;
    EXPECT_TRUE(d.s.client().unauth_pipelining) << cmd;
  }
  for (const char* cmd : {"MAIL FROM:<a@b>", "RSET", "ETRN example.com", "XFORWARD NAME=x"}) {
    driver d(main_opts());
    d.exchange("EHLO x");
    d.send(std::string(cmd) + "\r\nRSET\r\n");
    EXPECT_TRUE(d.h.improper.empty()) << cmd;
    EXPECT_FALSE(d.s.client().unauth_pipelining) << cmd;
  }
}

// Before EHLO every command with input behind it is flagged, and the flag outlives XCLIENT.
TEST(ServerPipelining, BeforeEhloAnyCommandIsFlaggedAndXclientKeepsTheFlag) {
  driver d(main_opts());
  d.send("RSET\r\nXCLIENT ADDR=203.0.113.9\r\n");
  ASSERT_EQ(d.h.improper.size(), 1u);
  EXPECT_EQ(d.h.improper[0], "RSET: XCLIENT ADDR=203.0.113.9\r\n");
  EXPECT_NE(d.take().find("220 relay.example.com"), std::string::npos);
  EXPECT_EQ(d.s.client().addr, "203.0.113.9");
  EXPECT_TRUE(d.s.client().unauth_pipelining);
}

// Commands Postfix does not recognize never reach the check.
TEST(ServerPipelining, UnknownCommandsAreNotFlagged) {
  driver d(forbidding());
  d.exchange("EHLO x");
  d.send("BOGUS\r\nNOOP\r\n");
  EXPECT_EQ(d.take(), "500 5.5.2 Error: command not recognized\r\n250 2.0.0 Ok\r\n");
  EXPECT_TRUE(d.h.improper.empty());
}

// The forbidding 554 ends the session without a reason of its own: Postfix logs only the
// disconnect line, with the command counted as failed.
TEST(ServerPipelining, ForbidEndsTheSessionWithoutAReason) {
  driver d(forbidding());
  d.send("EHLO x\r\nMAIL FROM:<a@b>\r\n");
  EXPECT_EQ(d.take(), "554 5.5.0 Error: SMTP protocol synchronization\r\n");
  EXPECT_EQ(d.h.events.back(), "disconnect ");
  EXPECT_EQ(d.s.command_counts(), "ehlo=0/1 commands=0/1");
}

}  // namespace
}  // namespace relaylab::smtp
