// sasldb interoperability with Debian's sasl2-bin, both ways, while a server library is live.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "relay/sasl/sasl.hpp"
#include "relay/sasl/test_support.hpp"

namespace relaylab::sasl {
namespace {

using test::plain;
using status = step_result::status;

bool lists(const std::vector<std::string>& lines, std::string_view line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

status plain_auth(std::string_view user, std::string_view pass, std::string_view realm = "") {
  std::string error;
  auto s = server_session::create(test::process_library(realm), "", "", error);
  EXPECT_TRUE(s) << error;
  return s->start("PLAIN", plain("", user, pass)).state;
}

TEST(sasldb, saslpasswd2_users_authenticate) {
  const auto& dir = test::process_dir();
  ASSERT_EQ(test::saslpasswd2(dir.sasldb, "example.org", "alice", "alice-pw"), "");
  EXPECT_TRUE(lists(test::sasldblistusers2(dir.sasldb), "alice@example.org: userPassword"));
  EXPECT_EQ(plain_auth("alice@example.org", "alice-pw"), status::success);
  EXPECT_EQ(plain_auth("alice", "alice-pw", "example.org"), status::success);
  EXPECT_EQ(plain_auth("alice@example.com", "alice-pw"), status::failure);
  EXPECT_EQ(plain_auth("alice@example.org", "alice-pw "), status::failure);
}

TEST(sasldb, written_users_are_listed_and_authenticate) {
  const auto& dir = test::process_dir();
  std::string error;
  ASSERT_TRUE(set_sasldb_password(dir.sasldb, "bob", "example.com", "bob pw", error)) << error;
  const auto users = test::sasldblistusers2(dir.sasldb);
  EXPECT_TRUE(lists(users, "bob@example.com: userPassword"));
  EXPECT_TRUE(lists(users, "smtp-auth@example.com: userPassword"));  // others untouched
  EXPECT_EQ(plain_auth("bob@example.com", "bob pw"), status::success);
  EXPECT_EQ(plain_auth("bob@example.com", "bob"), status::failure);
  EXPECT_EQ(plain_auth("smtp-auth@example.com", "pass"), status::success);
}

TEST(sasldb, rewriting_replaces_the_password) {
  const auto& dir = test::process_dir();
  std::string error;
  ASSERT_TRUE(set_sasldb_password(dir.sasldb, "carol", "example.com", "first", error)) << error;
  EXPECT_EQ(plain_auth("carol@example.com", "first"), status::success);
  ASSERT_TRUE(set_sasldb_password(dir.sasldb, "carol", "example.com", "second", error)) << error;
  EXPECT_EQ(plain_auth("carol@example.com", "first"), status::failure);
  EXPECT_EQ(plain_auth("carol@example.com", "second"), status::success);
  // And saslpasswd2 can overwrite what we wrote.
  ASSERT_EQ(test::saslpasswd2(dir.sasldb, "example.com", "carol", "third"), "");
  EXPECT_EQ(plain_auth("carol@example.com", "third"), status::success);
}

TEST(sasldb, new_file_is_created_for_sasldblistusers2) {
  test::sasl_dir other("PLAIN");
  std::string error;
  ASSERT_TRUE(set_sasldb_password(other.sasldb, "dave", "example.net", "pw", error)) << error;
  EXPECT_EQ(test::sasldblistusers2(other.sasldb),
            std::vector<std::string>{"dave@example.net: userPassword"});
  // Plaintext passwords inside: not world-readable, as saslpasswd2 leaves it.
  EXPECT_EQ(std::filesystem::status(other.sasldb).permissions(),
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                std::filesystem::perms::group_read);
}

TEST(sasldb, bad_arguments_are_errors) {
  test::sasl_dir other("PLAIN");
  std::string error;
  EXPECT_FALSE(set_sasldb_password(other.sasldb, "", "example.com", "pw", error));
  EXPECT_FALSE(set_sasldb_password(other.sasldb, "u", "", "pw", error));
  EXPECT_FALSE(set_sasldb_password(other.sasldb, "u", "example.com", "", error));
  EXPECT_FALSE(
      set_sasldb_password(other.sasldb, std::string_view("u\0v", 3), "example.com", "pw", error));
  EXPECT_FALSE(set_sasldb_password("", "u", "example.com", "pw", error));
  EXPECT_FALSE(std::filesystem::exists(other.sasldb));
  error.clear();
  EXPECT_FALSE(
      set_sasldb_password("/nonexistent/relaylab/sasldb2", "u", "example.com", "pw", error));
  EXPECT_NE(error.find("/nonexistent/relaylab/sasldb2"), std::string::npos) << error;
}

}  // namespace
}  // namespace relaylab::sasl
