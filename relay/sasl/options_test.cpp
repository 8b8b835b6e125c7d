// security_options parsing, base64 as Postfix decodes it, and the Postfix text helpers.
#include <gtest/gtest.h>

#include "relay/sasl/sasl.hpp"

namespace relaylab::sasl {
namespace {

TEST(options, empty_means_no_flags_at_all) {
  std::string error;
  const auto o = security_options::parse("", error);
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->noanonymous || o->noplaintext || o->noactive || o->nodictionary ||
               o->mutual_auth || o->forward_secrecy);
  EXPECT_TRUE(security_options{}.noanonymous);  // the smtpd_sasl_security_options default
}

TEST(options, words_and_separators) {
  std::string error;
  auto o = security_options::parse("noanonymous, noplaintext", error);
  ASSERT_TRUE(o) << error;
  EXPECT_TRUE(o->noanonymous && o->noplaintext);
  EXPECT_FALSE(o->noactive || o->nodictionary || o->mutual_auth || o->forward_secrecy);
  o = security_options::parse(" noplaintext,noactive\tnodictionary\nmutual_auth forward_secrecy,",
                              error);
  ASSERT_TRUE(o) << error;
  EXPECT_TRUE(o->noplaintext && o->noactive && o->nodictionary && o->mutual_auth &&
              o->forward_secrecy);
  EXPECT_FALSE(o->noanonymous);
}

TEST(options, unknown_words_give_postfix_warning_text) {
  std::string error;
  EXPECT_FALSE(security_options::parse("NOANONYMOUS", error));
  EXPECT_EQ(error, "unknown SASL security options value \"NOANONYMOUS\" in \"NOANONYMOUS\"");
  EXPECT_FALSE(security_options::parse("noanonymous, bogus", error));
  EXPECT_EQ(error, "unknown SASL security options value \"bogus\" in \"noanonymous, bogus\"");
}

TEST(base64, decodes_like_postfix) {
  std::string out;
  auto r = decode_base64("", out);
  EXPECT_EQ(r.state, step_result::status::success);
  EXPECT_EQ(out, "");
  r = decode_base64("AHNtdHAtYXV0aEBleGFtcGxlLmNvbQBwYXNz", out);
  ASSERT_EQ(r.state, step_result::status::success);
  EXPECT_EQ(out, std::string("\0smtp-auth@example.com\0pass", 27));
  r = decode_base64("=", out);
  EXPECT_EQ(r.state, step_result::status::failure);
  EXPECT_EQ(r.reason, "another step is needed in authentication");
  EXPECT_FALSE(r.temporary);
  r = decode_base64("!!!", out);
  EXPECT_EQ(r.reason, "another step is needed in authentication");
  r = decode_base64("!!!!", out);
  EXPECT_EQ(r.reason, "bad protocol / cancel");
  r = decode_base64(std::string("AA\0A", 4), out);
  EXPECT_EQ(r.state, step_result::status::failure);
  r = decode_base64(std::string(70000, 'A'), out);
  EXPECT_EQ(r.reason, "overflowed buffer");
}

TEST(base64, encode_round_trip_with_nul_and_8bit) {
  const std::string bytes("\0\xff\x80 Username:\r\n", 15);
  const auto text = encode_base64(bytes);
  std::string back;
  ASSERT_EQ(decode_base64(text, back).state, step_result::status::success);
  EXPECT_EQ(back, bytes);
  EXPECT_EQ(encode_base64("Username:"), "VXNlcm5hbWU6");
  EXPECT_EQ(encode_base64(""), "");
}

TEST(postfix_text, replies_and_log) {
  step_result r;
  r.reason = "authentication failure";
  EXPECT_EQ(postfix_failure_reply(r),
            "535 5.7.8 Error: authentication failed: authentication failure");
  r.temporary = true;
  r.reason = "generic failure";
  EXPECT_EQ(postfix_failure_reply(r),
            "454 4.7.0 Temporary authentication failure: generic failure");
  EXPECT_EQ(postfix_failure_log("unknown[192.0.2.1]", "LOGIN", r, std::nullopt),
            "unknown[192.0.2.1]: SASL LOGIN authentication failed: generic failure, "
            "sasl_username=(unavailable)");
  r.reason.clear();
  EXPECT_EQ(postfix_failure_detail(r), "(reason unavailable)");
  const std::string long_user = std::string(150, 'u') + "\n";
  const auto line = postfix_failure_log("h[192.0.2.1]", std::string(120, 'M'), r, long_user);
  EXPECT_EQ(line, "h[192.0.2.1]: SASL " + std::string(100, 'M') +
                      " authentication failed: (reason unavailable), sasl_username=" +
                      std::string(100, 'u'));
  EXPECT_EQ(postfix_failure_log("h", "PLAIN", r, "a\tb"),
            "h: SASL PLAIN authentication failed: (reason unavailable), sasl_username=a?b");
  EXPECT_EQ(postfix_failure_log("h", "LOGIN", r, ""),
            "h: SASL LOGIN authentication failed: (reason unavailable), sasl_username=");
}

}  // namespace
}  // namespace relaylab::sasl
