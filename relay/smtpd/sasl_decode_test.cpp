// The SMTP session decodes AUTH responses itself (relay/smtp has no libsasl2), so its decoder
// must fail exactly where libsasl2's sasl_decode64() does, with the same reason, as Postfix
// replies with it: "535 5.7.8 Error: authentication failed: <reason>". Checked here, where both
// are linked, over every string of up to five characters from an alphabet of the cases that
// matter (base64 characters, "=", CR, space, a character outside base64, a non-ASCII byte).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "relay/sasl/sasl.hpp"
#include "relay/smtp/syntax.hpp"

namespace relaylab {
namespace {

TEST(sasl_decode, agrees_with_libsasl2) {
  const std::string alphabet = std::string("AQR+/=\r !") + '\x80';
  std::size_t checked = 0;
  std::string s;
  auto check = [&](const std::string& text) {
    std::string error;
    const auto mine = smtp::syntax::sasl_decode(text, error);
    std::string theirs;
    const auto r = sasl::decode_base64(text, theirs);
    const bool ok = r.state == sasl::step_result::status::success;
    ASSERT_EQ(mine.has_value(), ok) << "input \"" << text << "\"";
    if (ok)
      EXPECT_EQ(*mine, theirs) << "input \"" << text << "\"";
    else
      EXPECT_EQ(error, r.reason) << "input \"" << text << "\"";
    ++checked;
  };
  // Odometer over alphabet^n for n = 0..5.
  for (std::size_t n = 0; n <= 5; ++n) {
    std::vector<std::size_t> digit(n, 0);
    while (true) {
      s.clear();
      for (auto d : digit) s += alphabet[d];
      check(s);
      if (::testing::Test::HasFatalFailure()) return;
      std::size_t k = 0;
      while (k < n && ++digit[k] == alphabet.size()) digit[k++] = 0;
      if (k == n) break;
    }
  }
  EXPECT_EQ(checked, 111111u);
  // Longer ones: a good response, padding in the middle, a partial quantum after padding.
  for (const char* text : {"AGFsaWNlAHNlY3JldA==", "QQ==QUFB", "QUFBQQ==Q", "QUFB\r", "QUJD QUJD"})
    check(text);
}

}  // namespace
}  // namespace relaylab
