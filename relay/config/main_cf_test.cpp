// main.cf syntax: continuation lines, comments, errors with file:line.
#include <gtest/gtest.h>

#include "relay/config/config.hpp"

namespace relaylab::config {
namespace {

struct parsed {
  parameters p;
  std::vector<diagnostic> d;
  std::vector<std::string> messages() const {
    std::vector<std::string> out;
    for (const auto& x : d) out.push_back(x.to_string());
    return out;
  }
};

parsed parse(std::string_view text) {
  parsed r;
  parse_main_cf(text, "main.cf", r.p, r.d);
  return r;
}

TEST(MainCf, NameValueAndWhitespace) {
  auto r = parse(
      "myhostname = relay.example.com\nmydomain=example.com   \t\n"
      "smtpd_banner   =   $myhostname ESMTP  \r\n");
  EXPECT_TRUE(r.d.empty());
  EXPECT_EQ(r.p.raw("myhostname"), "relay.example.com");
  EXPECT_EQ(r.p.raw("mydomain"), "example.com");
  EXPECT_EQ(r.p.raw("smtpd_banner"), "$myhostname ESMTP");
  EXPECT_EQ(r.p.origin_of("mydomain")->line, 2);
  EXPECT_EQ(r.p.origin_of("mydomain")->file, "main.cf");
}

TEST(MainCf, EmptyValue) {
  auto r = parse("relayhost =\nmynetworks_style=\n");
  EXPECT_TRUE(r.d.empty());
  EXPECT_TRUE(r.p.is_set("relayhost"));
  EXPECT_EQ(r.p.raw("relayhost"), "");
}

TEST(MainCf, ContinuationLinesJoinRawAsReadlline) {
  // Postfix appends the continuation line as is: its leading whitespace separates the words.
  auto r = parse(
      "smtpd_recipient_restrictions = permit_mynetworks,\n"
      "    reject_unauth_destination\n"
      "\tcheck_relay_domains\n");
  EXPECT_EQ(r.p.raw("smtpd_recipient_restrictions"),
            "permit_mynetworks,    reject_unauth_destination\tcheck_relay_domains");
  EXPECT_EQ(r.p.get_list("smtpd_recipient_restrictions").size(), 3u);
}

TEST(MainCf, CommentsAndBlankLinesDoNotEndALogicalLine) {
  auto r = parse("a = 1\n# comment\n  more\n\n   \n  end\nb = 2\n");
  EXPECT_EQ(r.p.raw("a"), "1  more  end");
  EXPECT_EQ(r.p.raw("b"), "2");
  EXPECT_EQ(r.p.origin_of("b")->line, 7);
}

TEST(MainCf, HashInsideValueIsNotAComment) {
  auto r = parse("mydomain = x#y\n   # indented comment\nmyorigin = z\n");
  EXPECT_EQ(r.p.raw("mydomain"), "x#y");
  EXPECT_EQ(r.p.raw("myorigin"), "z");
}

TEST(MainCf, LeadingWhitespaceAtStartIsAWarning) {
  auto r = parse("  leading = 1\n   more\nmyhostname = q\n");
  ASSERT_EQ(r.d.size(), 1u);
  EXPECT_EQ(r.d[0].level, diagnostic::severity::warning);
  EXPECT_EQ(r.d[0].line, 1);
  EXPECT_NE(r.d[0].message.find("logical line must not start with whitespace"), std::string::npos);
  EXPECT_FALSE(r.p.is_set("leading"));
  EXPECT_EQ(r.p.raw("myhostname"), "q");
}

TEST(MainCf, MissingEqualsIsFatalWithFileLine) {
  auto r = parse("myhostname = a\ngarbage line\n");
  ASSERT_EQ(r.d.size(), 1u);
  EXPECT_EQ(r.messages()[0],
            "main.cf:2: fatal: missing '=' after attribute name: \"garbage line\" (expected "
            "\"name = value\")");
  EXPECT_EQ(r.d[0].parameter, "garbage");
}

TEST(MainCf, MissingNameIsFatal) {
  auto r = parse("= value\n");
  ASSERT_EQ(r.d.size(), 1u);
  EXPECT_EQ(r.messages()[0],
            "main.cf:1: fatal: missing attribute name: \"= value\" (expected \"name = value\")");
}

TEST(MainCf, NameWithSpaceIsFatal) {
  auto r = parse("foo bar = 1\n");
  ASSERT_EQ(r.d.size(), 1u);
  EXPECT_NE(r.d[0].message.find("missing '=' after attribute name: \"foo bar = 1\""),
            std::string::npos);
}

TEST(MainCf, DuplicateWarnsAndLastWins) {
  auto r = parse("mydomain = a\nmydomain = b\n");
  ASSERT_EQ(r.d.size(), 1u);
  EXPECT_EQ(r.messages()[0],
            "main.cf:2: warning: overriding earlier entry: mydomain=a (from line 1)");
  EXPECT_EQ(r.p.raw("mydomain"), "b");
}

TEST(MainCf, NulTruncatesTheLineLikePostfix) {
  auto r = parse(std::string_view("mydomain = a\0b\n", 15));
  EXPECT_EQ(r.p.raw("mydomain"), "a");
  ASSERT_EQ(r.d.size(), 1u);
  EXPECT_EQ(r.d[0].level, diagnostic::severity::warning);
}

TEST(MainCf, NoFinalNewlineAndCrlf) {
  auto r = parse("a = 1\r\nb = 2");
  EXPECT_EQ(r.p.raw("a"), "1");
  EXPECT_EQ(r.p.raw("b"), "2");
}

TEST(MainCf, ExpansionIsLazy) {
  auto r = parse("myorigin = $mydomain\nmydomain = example.org\n");
  EXPECT_EQ(r.p.get("myorigin"), "example.org");  // order does not matter
  r.p.set("mydomain", "example.net");
  EXPECT_EQ(r.p.get("myorigin"), "example.net");
}

TEST(Diagnostic, ToStringForms) {
  diagnostic d{diagnostic::severity::warning, "/etc/postfix/main.cf", 0, "foo", "unused"};
  EXPECT_EQ(d.to_string(), "/etc/postfix/main.cf: warning: unused");
  d.line = 3;
  d.level = diagnostic::severity::fatal;
  EXPECT_EQ(d.to_string(), "/etc/postfix/main.cf:3: fatal: unused");
}

}  // namespace
}  // namespace relaylab::config
