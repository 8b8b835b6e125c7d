// Process-wide lifecycle, in its own binary because it needs a process where no server
// library has been created yet: set_sasldb_password's temporary libsasl2 initialisation, then
// sasl_server_init for a config, sasl_server_done when the last handle goes, and a new init
// that reads another config file.
#include <gtest/gtest.h>

#include "relay/sasl/sasl.hpp"
#include "relay/sasl/test_support.hpp"

namespace relaylab::sasl {
namespace {

std::shared_ptr<server_library> library(const test::sasl_dir& dir, std::string& error) {
  server_config c;
  c.config_path = dir.dir;
  c.server_fqdn = "relay.example.com";
  return server_library::init(c, error);
}

step_result::status plain_auth(std::shared_ptr<server_library> lib, std::string_view user,
                               std::string_view pass) {
  std::string error;
  auto s = server_session::create(std::move(lib), "", "", error);
  EXPECT_TRUE(s) << error;
  return s ? s->start("PLAIN", test::plain("", user, pass)).state : step_result::status::failure;
}

TEST(lifecycle, write_before_init_then_authenticate_then_reinit_with_other_config) {
  test::sasl_dir first("PLAIN LOGIN CRAM-MD5");
  test::sasl_dir second("LOGIN");
  std::string error;
  // No server library yet: a temporary initialisation writes the file.
  ASSERT_TRUE(set_sasldb_password(first.sasldb, "smtp-auth", "example.com", "pass", error))
      << error;
  EXPECT_EQ(test::sasldblistusers2(first.sasldb),
            std::vector<std::string>{"smtp-auth@example.com: userPassword"});
  ASSERT_EQ(test::saslpasswd2(second.sasldb, "example.com", "other", "other-pw"), "");

  {
    auto lib = library(first, error);
    ASSERT_TRUE(lib) << error;
    std::string error2;
    auto s = server_session::create(lib, "", "", error2);
    ASSERT_TRUE(s) << error2;
    EXPECT_EQ(s->mechanisms(), (std::vector<std::string>{"PLAIN", "LOGIN", "CRAM-MD5"}));
    EXPECT_EQ(plain_auth(lib, "smtp-auth@example.com", "pass"), step_result::status::success);
    EXPECT_FALSE(library(second, error2));  // one config per process while `lib` lives
    EXPECT_NE(error2.find("already initialised"), std::string::npos) << error2;
  }
  // Every handle is gone: sasl_server_done ran and the second config can be read.
  auto lib = library(second, error);
  ASSERT_TRUE(lib) << error;
  auto s = server_session::create(lib, "", "", error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->mechanisms(), std::vector<std::string>{"LOGIN"});
  auto r = s->start("LOGIN", std::string_view("other@example.com"));
  ASSERT_EQ(r.state, step_result::status::challenge);
  r = s->step("other-pw");
  EXPECT_EQ(r.state, step_result::status::success) << r.reason;
  EXPECT_EQ(plain_auth(lib, "smtp-auth@example.com", "pass"), step_result::status::failure);
}

TEST(lifecycle, missing_config_file_is_an_error_not_a_default) {
  test::sasl_dir dir("PLAIN");
  server_config c;
  c.config_path = dir.dir;
  c.app_name = "submission";  // no submission.conf there
  std::string error;
  EXPECT_FALSE(server_library::init(c, error));
  EXPECT_EQ(error, "SASL config file " + dir.dir + "/submission.conf is missing or unreadable");
}

}  // namespace
}  // namespace relaylab::sasl
