// relay/smtp/syntax: the address checks as Postfix's valid_hostname.c has them.
#include "relay/smtp/syntax.hpp"

#include <gtest/gtest.h>

namespace relaylab::smtp::syntax {
namespace {

TEST(syntax, valid_ipv4_as_postfix_valid_ipv4_hostaddr) {
  EXPECT_TRUE(valid_ipv4("203.0.113.66"));
  EXPECT_TRUE(valid_ipv4("203.0.113.0102"));  // any number of digits up to 255
  EXPECT_TRUE(valid_ipv4("0.0.0.0"));
  EXPECT_TRUE(valid_ipv4("00.0.000.0"));
  EXPECT_FALSE(valid_ipv4("0.1.2.3"));  // a first octet 0 only in 0.0.0.0
  EXPECT_FALSE(valid_ipv4("1.2.3.256"));
  EXPECT_FALSE(valid_ipv4("1.2.3"));
  EXPECT_FALSE(valid_ipv4("1.2.3.4.5"));
  EXPECT_FALSE(valid_ipv4("1..2.3"));
  EXPECT_FALSE(valid_ipv4("1.2.3.4."));
  EXPECT_FALSE(valid_ipv4(".1.2.3"));
  EXPECT_FALSE(valid_ipv4("1.2.3.x"));
  EXPECT_FALSE(valid_ipv4(""));
}

TEST(syntax, valid_ipv6_takes_a_trailing_ipv4_part) {
  EXPECT_TRUE(valid_ipv6("2001:db8::1"));
  EXPECT_TRUE(valid_ipv6("::ffff:203.0.113.66"));
  EXPECT_FALSE(valid_ipv6("::ffff:203.0.113"));
  EXPECT_FALSE(valid_ipv6("2001:db8::g"));
}

}  // namespace
}  // namespace relaylab::smtp::syntax
