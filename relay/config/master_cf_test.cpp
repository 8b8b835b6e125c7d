// master.cf syntax: columns, continuation lines, -o forms, listen addresses, errors.
#include <gtest/gtest.h>

#include "relay/config/config.hpp"

namespace relaylab::config {
namespace {

std::vector<master_service> parse(std::string_view text, std::vector<diagnostic>& d) {
  return parse_master_cf(text, "master.cf", d);
}

TEST(MasterCf, EightColumnsAndDefaults) {
  std::vector<diagnostic> d;
  auto s = parse("# comment\nsmtp      inet  n       -       y       -       -       smtpd\n", d);
  EXPECT_TRUE(d.empty());
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].name, "smtp");
  EXPECT_EQ(s[0].type, "inet");
  EXPECT_EQ(s[0].command, "smtpd");
  EXPECT_EQ(s[0].line, 2);
  EXPECT_EQ(s[0].file, "master.cf");
  EXPECT_EQ(s[0].listen_host, "");
  EXPECT_EQ(s[0].listen_port, 25);
  EXPECT_FALSE(s[0].is_private());
  EXPECT_TRUE(s[0].unprivileged());
  EXPECT_TRUE(s[0].chroot());
  EXPECT_TRUE(s[0].args.empty());
}

TEST(MasterCf, ChrootDashIsNo) {
  std::vector<diagnostic> d;
  auto s = parse("proxymap  unix  -       -       -       -       -       proxymap\n", d);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_FALSE(s[0].chroot());
  EXPECT_TRUE(s[0].is_private());
  EXPECT_EQ(s[0].listen_port, 0);
}

TEST(MasterCf, ContinuationAndOverrides) {
  std::vector<diagnostic> d;
  auto s = parse(
      "submission inet n       -       y       -       -       smtpd\n"
      "  -o syslog_name=postfix/submission\n"
      "# a comment between\n"
      "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
      "  -o { smtpd_reject_footer = see the relay FAQ }\n"
      "  -osmtpd_tls_security_level=encrypt -v\n",
      d);
  EXPECT_TRUE(d.empty());
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].listen_port, 587);
  using kv = std::pair<std::string, std::string>;
  EXPECT_EQ(s[0].overrides,
            (std::vector<kv>{{"syslog_name", "postfix/submission"},
                             {"smtpd_client_restrictions", "permit_sasl_authenticated,reject"},
                             {"smtpd_reject_footer", "see the relay FAQ"},
                             {"smtpd_tls_security_level", "encrypt"}}));
  EXPECT_EQ(s[0].args, (std::vector<std::string>{"-v"}));
}

TEST(MasterCf, ArgumentsAfterFirstNonOptionAreKept) {
  std::vector<diagnostic> d;
  auto s = parse(
      "mailman   unix  -       n       n       -       -       pipe\n"
      "  flags=FRX user=list argv=/usr/lib/mailman/bin/postfix-to-mailman.py\n"
      "  ${nexthop} ${user} -o not=an_override\n",
      d);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_TRUE(s[0].overrides.empty());
  EXPECT_EQ(s[0].args.size(), 7u);
  EXPECT_EQ(s[0].args.back(), "not=an_override");
}

TEST(MasterCf, ListenAddresses) {
  std::vector<diagnostic> d;
  auto s = parse(
      "smtps inet n - y - - smtpd\n"
      "submissions inet n - y - - smtpd\n"
      "127.0.0.1:submission inet n - n - - smtpd\n"
      "[::1]:10025 inet n - n - - smtpd\n"
      "192.0.2.7:2525 inet n - n - - smtpd\n"
      "2526 inet n - n - - smtpd\n"
      "*:smtp inet n - n - - smtpd\n",
      d);
  EXPECT_TRUE(d.empty());
  ASSERT_EQ(s.size(), 7u);
  EXPECT_EQ(s[0].listen_port, 465);
  EXPECT_EQ(s[1].listen_port, 465);
  EXPECT_EQ(s[2].listen_host, "127.0.0.1");
  EXPECT_EQ(s[2].listen_port, 587);
  EXPECT_EQ(s[3].listen_host, "::1");
  EXPECT_EQ(s[3].listen_port, 10025);
  EXPECT_EQ(s[4].listen_host, "192.0.2.7");
  EXPECT_EQ(s[4].listen_port, 2525);
  EXPECT_EQ(s[5].listen_host, "");
  EXPECT_EQ(s[5].listen_port, 2526);
  EXPECT_EQ(s[6].listen_host, "");
  EXPECT_EQ(s[6].listen_port, 25);
}

TEST(MasterCf, UnknownServiceNameIsFatal) {
  std::vector<diagnostic> d;
  auto s = parse("smtp inet n - y - - smtpd\nnosuchsvc inet n - y - - smtpd\n", d);
  EXPECT_EQ(s.size(), 1u);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].level, diagnostic::severity::fatal);
  EXPECT_EQ(d[0].line, 2);
  EXPECT_EQ(d[0].parameter, "nosuchsvc");
  EXPECT_EQ(d[0].to_string().substr(0, 60),
            "master.cf:2: fatal: unknown service name \"nosuchsvc\" in inet");
}

TEST(MasterCf, BadPortsAreFatal) {
  std::vector<diagnostic> d;
  parse("0 inet n - y - - smtpd\n65536 inet n - y - - smtpd\n[::1 inet n - y - - smtpd\n", d);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_NE(d[0].message.find("bad port number \"0\""), std::string::npos);
  EXPECT_NE(d[1].message.find("bad port number \"65536\""), std::string::npos);
  EXPECT_NE(d[2].message.find("bad inet service address"), std::string::npos);
  EXPECT_EQ(d[2].line, 3);
}

TEST(MasterCf, BadFieldCountIsFatal) {
  std::vector<diagnostic> d;
  auto s = parse("smtp inet n - y - smtpd\n", d);
  EXPECT_TRUE(s.empty());
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].to_string(),
            "master.cf:1: fatal: bad field count: 7 fields in \"smtp inet n - y - smtpd\" "
            "(expected: service type private unpriv chroot wakeup maxproc command)");
}

TEST(MasterCf, BadColumnValuesAreFatal) {
  std::vector<diagnostic> d;
  parse(
      "smtp bogus n - y - - smtpd\nsmtp inet q - y - - smtpd\n"
      "smtp inet n - y x - smtpd\nsmtp inet n - y - many smtpd\n",
      d);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_NE(d[0].message.find("invalid type field \"bogus\""), std::string::npos);
  EXPECT_NE(d[1].message.find("invalid private field \"q\""), std::string::npos);
  EXPECT_NE(d[2].message.find("invalid wakeup field \"x\""), std::string::npos);
  EXPECT_NE(d[3].message.find("invalid max process field \"many\""), std::string::npos);
  EXPECT_EQ(d[3].line, 4);
}

TEST(MasterCf, WakeupWithQuestionMark) {
  std::vector<diagnostic> d;
  auto s = parse("tlsmgr    unix  -       -       y       1000?   1       tlsmgr\n", d);
  EXPECT_TRUE(d.empty());
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].wakeup_column, "1000?");
  EXPECT_EQ(s[0].maxproc_column, "1");
}

TEST(MasterCf, MalformedOverridesWarnAsPostconf) {
  std::vector<diagnostic> d;
  auto s = parse("smtp inet n - y - - smtpd -o smtpd_banner -o { smtpd_banner = x -o\n", d);
  ASSERT_EQ(s.size(), 1u);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NE(d[0].message.find("missing '=' after attribute name: \"smtpd_banner\""),
            std::string::npos);
  EXPECT_NE(d[1].message.find("missing '}'"), std::string::npos);
  // The unbalanced group swallows the rest of the line, as mystrtokq does.
  ASSERT_EQ(s[0].overrides.size(), 1u);
  EXPECT_EQ(s[0].overrides[0].first, "smtpd_banner");
  EXPECT_EQ(s[0].overrides[0].second, "x -o");
}

TEST(MasterCf, TrailingDashOWithoutValue) {
  std::vector<diagnostic> d;
  auto s = parse("smtp inet n - y - - smtpd -o\n", d);
  ASSERT_EQ(s.size(), 1u);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].level, diagnostic::severity::warning);
}

}  // namespace
}  // namespace relaylab::config
