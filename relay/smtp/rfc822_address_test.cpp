// rfc822::extract and externalize: the address forms Postfix 3.7.11's extract_addr() was seen
// to accept or refuse (testdata/dialogues/address-rfc822.dlg records the same from Postfix).
#include "relay/smtp/rfc822_address.hpp"

#include <gtest/gtest.h>

namespace relaylab::smtp::rfc822 {
namespace {

TEST(rfc822_extract, one_address_in_internal_form) {
  EXPECT_EQ(extract("<user@example.com>").address, "user@example.com");
  EXPECT_EQ(extract("<\"a b\"@example.com>").address, "a b@example.com");
  EXPECT_EQ(extract("<\\\"x@example.com>").address, "\"x@example.com");
  EXPECT_EQ(extract("<Alice (the sender) @example.com>").address, "Alice@example.com");
  EXPECT_EQ(extract("<@r1,@r2:u@example.com>").address, "u@example.com");
  EXPECT_EQ(extract("<u@[192.0.2.1]>").address, "u@[192.0.2.1]");
  EXPECT_EQ(extract("Bob <bob@example.com>").address, "bob@example.com");
  EXPECT_EQ(extract("<Bob <bob@example.com>>").addresses, 1u);
}

TEST(rfc822_extract, empty_forms) {
  for (const char* s : {"<>", "<<>>", "", "()"}) {
    const auto x = extract(s);
    EXPECT_EQ(x.addresses, 0u) << s;
    EXPECT_EQ(x.address, "") << s;
  }
}

TEST(rfc822_extract, a_second_address) {
  for (const char* s : {"<a b@example.com>", "<a@example.com>x", "<a@example.com>,<b@example.com>",
                        "<a@b> <c@d>", "a@b c@d"})
    EXPECT_EQ(extract(s).addresses, 2u) << s;
}

TEST(rfc822_externalize, quotes_the_local_part_only_when_needed) {
  EXPECT_EQ(externalize(""), "");
  EXPECT_EQ(externalize("user@example.com"), "user@example.com");
  EXPECT_EQ(externalize("a%b!c@example.com"), "a%b!c@example.com");
  EXPECT_EQ(externalize("a b@example.com"), "\"a b\"@example.com");
  EXPECT_EQ(externalize("\"x@example.com"), "\"\\\"x\"@example.com");
  EXPECT_EQ(externalize("a@b@example.com"), "\"a@b\"@example.com");
  EXPECT_EQ(externalize(".a@example.com"), "\".a\"@example.com");
  EXPECT_EQ(externalize("a..b@example.com"), "\"a..b\"@example.com");
  // What externalize writes, extract reads back.
  for (const char* s :
       {"a b@example.com", "\"x@example.com", "a@b@example.com", "a\\b@example.com"})
    EXPECT_EQ(extract("<" + externalize(s) + ">").address, s) << s;
}

}  // namespace
}  // namespace relaylab::smtp::rfc822
