#include "relay/smtp/base64.hpp"

#include <gtest/gtest.h>

namespace relaylab::smtp {
namespace {

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> v[] = {{"", ""},
                                                   {"f", "Zg=="},
                                                   {"fo", "Zm8="},
                                                   {"foo", "Zm9v"},
                                                   {"foob", "Zm9vYg=="},
                                                   {"fooba", "Zm9vYmE="},
                                                   {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : v) {
    EXPECT_EQ(base64_encode(plain), enc);
    auto d = base64_decode(enc);
    ASSERT_TRUE(d.has_value()) << enc;
    EXPECT_EQ(*d, plain);
  }
}

TEST(Base64, DecodesBinaryAndSaslPlain) {
  auto d = base64_decode("AHNtdHAtYXV0aEBleGFtcGxlLmNvbQBwYXNz");
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, std::string("\0smtp-auth@example.com\0pass", 27));
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(base64_decode(base64_encode(all)), all);
}

TEST(Base64, RejectsBadInput) {
  for (const char* bad : {"Zg=", "Zg", "Z", "Zm9v!", "Zm 9v", "Z===", "=Zg=", "Zg==Zg==", "Zm=v",
                          "Zh==", "Zm9=", "!!!!", "Zm9v\n", "===="}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace relaylab::smtp
