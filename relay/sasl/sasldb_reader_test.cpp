// relaylab's sasldb reader (sasldb_reader.cpp) against Cyrus's own plugin. This file runs in two
// binaries: relaylab_sasl_test (reader on, the default) and relaylab_sasl_cyrus_test (built with
// RELAYLAB_SASL_CYRUS_READER: libsasl2's sasldb plugin). Both must give the same answers.
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "relay/sasl/sasl.hpp"
#include "relay/sasl/sasl_internal.hpp"
#include "relay/sasl/test_support.hpp"

namespace relaylab::sasl {
namespace {

using test::plain;
using status = step_result::status;

step_result plain_auth(std::string_view user, std::string_view pass) {
  std::string error;
  auto s = server_session::create(test::process_library(), "", "", error);
  EXPECT_TRUE(s) << error;
  return s->start("PLAIN", plain("", user, pass));
}

// How many of this process's descriptors name `path`.
int open_descriptors(const std::string& path) {
  int n = 0;
  const std::string want = std::filesystem::canonical(path).string();
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string() == want) ++n;
  }
  return n;
}

#ifdef RELAYLAB_SASL_CYRUS_READER
constexpr bool reader_on = false;
#else
constexpr bool reader_on = true;
#endif

TEST(sasldb_reader, database_stays_open_only_with_the_reader) {
  const auto& dir = test::process_dir();
  EXPECT_EQ(plain_auth("smtp-auth@example.com", "pass").state, status::success);
  EXPECT_EQ(open_descriptors(dir.sasldb), reader_on ? 1 : 0);
  // A hundred more AUTHs reuse the one handle.
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(plain_auth("smtp-auth@example.com", "pass").state, status::success);
  }
  EXPECT_EQ(open_descriptors(dir.sasldb), reader_on ? 1 : 0);
}

TEST(sasldb_reader, a_file_renamed_over_the_old_one_is_read_at_the_next_auth) {
  const auto& dir = test::process_dir();
  EXPECT_EQ(plain_auth("smtp-auth@example.com", "pass").state, status::success);
  // Build a replacement beside it (new inode), then swap it in atomically.
  const std::string next = dir.dir + "/sasldb2.next";
  ASSERT_EQ(test::saslpasswd2(next, "example.com", "smtp-auth", "pass"), "");
  ASSERT_EQ(test::saslpasswd2(next, "example.com", "erin", "erin-pw"), "");
  std::filesystem::copy_file(dir.sasldb, dir.sasldb + ".keep");
  std::filesystem::rename(next, dir.sasldb);
  EXPECT_EQ(plain_auth("erin@example.com", "erin-pw").state, status::success);
  EXPECT_EQ(plain_auth("smtp-auth@example.com", "pass").state, status::success);
  // And back: erin is gone again.
  std::filesystem::rename(dir.sasldb + ".keep", dir.sasldb);
  EXPECT_EQ(plain_auth("erin@example.com", "erin-pw").state, status::failure);
  EXPECT_EQ(plain_auth("smtp-auth@example.com", "pass").state, status::success);
}

// The reader keeps the answers it read (a user's secret, and "no such user") only as long as
// the file is unchanged: saslpasswd2 adding or changing a user in place counts at once.
TEST(sasldb_reader, saslpasswd2_edits_in_place_count_at_the_next_auth) {
  const auto& dir = test::process_dir();
  EXPECT_EQ(plain_auth("frank@example.com", "frank-pw").state, status::failure);  // not there
  EXPECT_EQ(plain_auth("frank@example.com", "frank-pw").state, status::failure);  // still not
  ASSERT_EQ(test::saslpasswd2(dir.sasldb, "example.com", "frank", "frank-pw"), "");
  EXPECT_EQ(plain_auth("frank@example.com", "frank-pw").state, status::success);
  EXPECT_EQ(plain_auth("frank@example.com", "frank-pw").state, status::success);
  ASSERT_EQ(test::saslpasswd2(dir.sasldb, "example.com", "frank", "second-pw"), "");
  EXPECT_EQ(plain_auth("frank@example.com", "frank-pw").state, status::failure);
  EXPECT_EQ(plain_auth("frank@example.com", "second-pw").state, status::success);
}

TEST(sasldb_reader, a_missing_file_means_no_such_user) {
  const auto& dir = test::process_dir();
  EXPECT_EQ(plain_auth("smtp-auth@example.com", "pass").state, status::success);
  std::filesystem::rename(dir.sasldb, dir.sasldb + ".away");
  const step_result r = plain_auth("smtp-auth@example.com", "pass");
  std::filesystem::rename(dir.sasldb + ".away", dir.sasldb);
  EXPECT_EQ(r.state, status::failure);
  EXPECT_FALSE(r.temporary);
  EXPECT_EQ(r.reason, "authentication failure");
  EXPECT_EQ(r.log,
            std::vector<std::string>{"SASL authentication failure: Password verification failed"});
  EXPECT_EQ(plain_auth("smtp-auth@example.com", "pass").state, status::success);
}

TEST(sasldb_reader, a_file_that_is_not_a_database_fails_temporarily_with_cyrus_log_line) {
  const auto& dir = test::process_dir();
  std::filesystem::rename(dir.sasldb, dir.sasldb + ".away");
  { std::ofstream(dir.sasldb) << "not a Berkeley DB file\n"; }
  const step_result r = plain_auth("smtp-auth@example.com", "pass");
  std::filesystem::remove(dir.sasldb);
  std::filesystem::rename(dir.sasldb + ".away", dir.sasldb);
  EXPECT_EQ(r.state, status::failure);
  EXPECT_TRUE(r.temporary);
  EXPECT_EQ(r.reason, "generic failure");
  ASSERT_FALSE(r.log.empty());
  EXPECT_EQ(r.log.front().rfind(
                "SASL authentication problem: unable to open Berkeley db " + dir.sasldb + ": ", 0),
            0u)
      << r.log.front();
  EXPECT_EQ(plain_auth("smtp-auth@example.com", "pass").state, status::success);
}

TEST(sasldb_reader, names_after_a_nul_or_with_two_at_signs_split_as_cyrus_does) {
  const auto& dir = test::process_dir();
  ASSERT_EQ(test::saslpasswd2(dir.sasldb, "b@example.com", "frank", "frank-pw"), "");
  // The first '@' splits: user "frank", realm "b@example.com".
  EXPECT_EQ(plain_auth("frank@b@example.com", "frank-pw").state, status::success);
  EXPECT_EQ(plain_auth("frank@b", "frank-pw").state, status::failure);
}

TEST(sasldb_reader_config, auxprop_plugin_lists_map_sasldb_to_the_reader) {
  const std::string name(detail::sasldb_reader_name());
  EXPECT_EQ(detail::with_sasldb_reader("sasldb"), name);
  EXPECT_EQ(detail::with_sasldb_reader("  SASLdb\tsql "), name + " sql");
  EXPECT_EQ(detail::with_sasldb_reader("sql ldapdb"), std::nullopt);
  EXPECT_EQ(detail::with_sasldb_reader("sasldb2"), std::nullopt);
  EXPECT_EQ(detail::with_sasldb_reader(""), std::nullopt);
}

// Without an auxprop_plugin line libsasl2 asks every auxprop plugin it loaded; the reader then
// stands in for sasldb among them (the sim's relays and many real smtpd.conf files name none).
TEST(sasldb_reader_config, without_auxprop_plugin_the_loaded_plugins_are_asked_with_the_reader) {
  test::sasl_dir d("PLAIN", /*name_auxprop_plugin=*/false);
  ASSERT_EQ(test::saslpasswd2(d.sasldb, "example.com", "smtp-auth", "pass"), "");
  server_config c;
  c.config_path = d.dir;
  c.server_fqdn = "relay.example.com";
  c.keep_sasldb_open = reader_on;
  std::string error;
  auto lib = server_library::init(c, error);
  ASSERT_TRUE(lib) << error;
  for (int i = 0; i < 10; ++i) {
    auto s = server_session::create(lib, "", "", error);
    ASSERT_TRUE(s) << error;
    ASSERT_EQ(s->start("PLAIN", plain("", "smtp-auth@example.com", "pass")).state, status::success);
    auto wrong = server_session::create(lib, "", "", error);
    ASSERT_TRUE(wrong) << error;
    ASSERT_EQ(wrong->start("PLAIN", plain("", "smtp-auth@example.com", "nope")).state,
              status::failure);
  }
  EXPECT_EQ(open_descriptors(d.sasldb), reader_on ? 1 : 0);
  // A user added later counts at the next AUTH, as with Cyrus's plugin.
  ASSERT_EQ(test::saslpasswd2(d.sasldb, "example.com", "late", "late-pw"), "");
  auto s = server_session::create(lib, "", "", error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->start("PLAIN", plain("", "late@example.com", "late-pw")).state, status::success);
}

TEST(sasldb_reader_config, one_process_cannot_switch_readers_while_a_library_lives) {
  auto lib = test::process_library();
  ASSERT_TRUE(lib);
  server_config c = lib->config();
  c.keep_sasldb_open = !c.keep_sasldb_open;
  std::string error;
  EXPECT_EQ(server_library::init(c, error), nullptr);
  EXPECT_NE(error.find("sasldb reader"), std::string::npos) << error;
}

}  // namespace
}  // namespace relaylab::sasl
