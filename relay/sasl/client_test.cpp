// Client sessions (sasl_client_*) against server sessions, both through libsasl2.
#include <gtest/gtest.h>
#include <sasl/sasl.h>

#include "relay/sasl/sasl.hpp"
#include "relay/sasl/test_support.hpp"

namespace relaylab::sasl {
namespace {

std::shared_ptr<client_library> client_lib() {
  std::string error;
  auto lib = client_library::init(error);
  EXPECT_TRUE(lib) << error;
  return lib;
}

std::unique_ptr<client_session> client(std::string_view password, std::string_view options,
                                       std::string_view authzid = "") {
  client_config c;
  c.server_fqdn = "relay.example.com";
  c.username = "smtp-auth@example.com";
  c.password = std::string(password);
  c.authzid = std::string(authzid);
  std::string error;
  c.security = *security_options::parse(options, error);
  auto s = client_session::create(client_lib(), c, error);
  EXPECT_TRUE(s) << error;
  return s;
}

struct outcome {
  std::string mechanism;
  step_result::status state = step_result::status::failure;
  std::string reason;
  std::string username;
};

// Runs one AUTH exchange as smtpd and the relay's SMTP client would, bounded in steps.
outcome exchange(client_session& c, std::string_view offered) {
  std::string error;
  auto s = server_session::create(test::process_library(), "", "", error);
  EXPECT_TRUE(s) << error;
  outcome o;
  auto cr = c.start(offered);
  if (cr.state != client_step_result::status::response) {
    o.reason = cr.reason;
    return o;
  }
  o.mechanism = cr.mechanism;
  auto sr = s->start(cr.mechanism,
                     cr.response ? std::optional<std::string_view>(*cr.response) : std::nullopt);
  for (int i = 0; i < 10 && sr.state == step_result::status::challenge; ++i) {
    cr = c.step(sr.challenge);
    if (cr.state != client_step_result::status::response) {
      o.reason = "client: " + cr.reason;
      return o;
    }
    sr = s->step(*cr.response);
  }
  o.state = sr.state;
  o.reason = sr.reason;
  o.username = s->username();
  return o;
}

TEST(client, plain_initial_response_bytes) {
  auto c = client("pass", "noanonymous");
  auto r = c->start("PLAIN");
  ASSERT_EQ(r.state, client_step_result::status::response) << r.reason;
  EXPECT_EQ(r.mechanism, "PLAIN");
  ASSERT_TRUE(r.response);
  EXPECT_EQ(*r.response, std::string("\0smtp-auth@example.com\0pass", 27));
  // Postfix's smtp client passes the username as authzid too.
  c = client("pass", "noanonymous", "smtp-auth@example.com");
  r = c->start("PLAIN");
  ASSERT_TRUE(r.response);
  EXPECT_EQ(*r.response, std::string("smtp-auth@example.com\0smtp-auth@example.com\0pass", 48));
}

TEST(client, plain_login_cram_md5_against_server) {
  for (std::string_view mech : {"PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-256"}) {
    SCOPED_TRACE(mech);
    auto c = client("pass", "noanonymous");
    const auto o = exchange(*c, mech);
    EXPECT_EQ(o.mechanism, mech);
    EXPECT_EQ(o.state, step_result::status::success) << o.reason;
    EXPECT_EQ(o.username, "smtp-auth@example.com");
  }
}

TEST(client, login_has_no_initial_response) {
  auto c = client("pass", "noanonymous");
  const auto r = c->start("LOGIN");
  ASSERT_EQ(r.state, client_step_result::status::response) << r.reason;
  EXPECT_FALSE(r.response);
  const auto u = c->step("Username:");
  ASSERT_TRUE(u.response);
  EXPECT_EQ(*u.response, "smtp-auth@example.com");
  const auto p = c->step("Password:");
  ASSERT_TRUE(p.response);
  EXPECT_EQ(*p.response, "pass");
}

TEST(client, wrong_password_fails_at_the_server) {
  for (std::string_view mech : {"PLAIN", "LOGIN", "CRAM-MD5"}) {
    auto c = client("wrong", "noanonymous");
    const auto o = exchange(*c, mech);
    EXPECT_EQ(o.state, step_result::status::failure) << mech;
    EXPECT_EQ(o.reason, "authentication failure") << mech;
  }
}

TEST(client, mechanism_choice_follows_security_options) {
  auto c = client("pass", "noanonymous, noplaintext");
  auto r = c->start("PLAIN LOGIN CRAM-MD5");
  ASSERT_EQ(r.state, client_step_result::status::response) << r.reason;
  EXPECT_EQ(r.mechanism, "CRAM-MD5");
  EXPECT_FALSE(r.response);  // server speaks first
  r = c->start("PLAIN LOGIN");
  EXPECT_EQ(r.state, client_step_result::status::failure);
  EXPECT_EQ(r.sasl_code, SASL_NOMECH);
  c = client("pass", "noanonymous");
  r = c->start("PLAIN LOGIN");
  ASSERT_EQ(r.state, client_step_result::status::response) << r.reason;
  EXPECT_TRUE(r.mechanism == "PLAIN" || r.mechanism == "LOGIN") << r.mechanism;
  const auto o = exchange(*c, "LOGIN PLAIN CRAM-MD5");
  EXPECT_EQ(o.state, step_result::status::success) << o.mechanism << " " << o.reason;
}

TEST(client, errors_are_values) {
  auto c = client("pass", "noanonymous");
  auto r = c->step("challenge before start");
  EXPECT_EQ(r.state, client_step_result::status::failure);
  EXPECT_EQ(r.sasl_code, SASL_NOTDONE);
  r = c->start("XYZ ABC");
  EXPECT_EQ(r.state, client_step_result::status::failure);
  EXPECT_EQ(r.reason, "no mechanism available");
  r = c->start("");
  EXPECT_EQ(r.state, client_step_result::status::failure);
  r = c->start(std::string_view("PLAIN\0LOGIN", 11));
  EXPECT_EQ(r.state, client_step_result::status::failure);
  r = c->start("CRAM-MD5");
  ASSERT_EQ(r.state, client_step_result::status::response);
  r = c->step(std::string(100000, '\0'));  // garbage challenge
  EXPECT_EQ(r.state, client_step_result::status::failure);
  EXPECT_EQ(r.reason, "bad protocol / cancel");
  r = c->step("late");  // the exchange is over after a failure
  EXPECT_EQ(r.sasl_code, SASL_NOTDONE);

  client_config bad;
  std::string error;
  EXPECT_FALSE(client_session::create(client_lib(), bad, error));
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(client_session::create(nullptr, bad, error));
}

TEST(client, library_is_shared) {
  auto a = client_lib();
  auto b = client_lib();
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace relaylab::sasl
