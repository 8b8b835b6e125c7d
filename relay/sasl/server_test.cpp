// Server sessions against real libsasl2 + the sasldb auxprop plugin, configured by smtpd.conf.
#include <gtest/gtest.h>
#include <sasl/sasl.h>

#include <random>

#include "relay/sasl/sasl.hpp"
#include "relay/sasl/test_support.hpp"

namespace relaylab::sasl {
namespace {

using test::plain;
using test::process_library;
using status = step_result::status;

std::unique_ptr<server_session> session(std::shared_ptr<server_library> lib) {
  std::string error;
  auto s = server_session::create(std::move(lib), "", "", error);
  EXPECT_TRUE(s) << error;
  return s;
}

bool logged(const step_result& r, std::string_view line) {
  for (const auto& l : r.log) {
    if (l == line) return true;
  }
  return false;
}

TEST(server, plain_good_password) {
  auto s = session(process_library());
  const auto r = s->start("PLAIN", plain("", "smtp-auth@example.com", "pass"));
  ASSERT_EQ(r.state, status::success) << r.reason;
  EXPECT_EQ(r.sasl_code, SASL_OK);
  EXPECT_EQ(s->username(), "smtp-auth@example.com");
  EXPECT_EQ(s->mechanism(), "PLAIN");
}

TEST(server, plain_wrong_password) {
  auto s = session(process_library());
  const auto r = s->start("PLAIN", plain("", "smtp-auth@example.com", "wrong"));
  ASSERT_EQ(r.state, status::failure);
  EXPECT_EQ(r.reason, "authentication failure");
  EXPECT_EQ(r.sasl_code, SASL_BADAUTH);
  EXPECT_FALSE(r.temporary);
  EXPECT_TRUE(logged(r, "SASL authentication failure: Password verification failed"));
  EXPECT_EQ(s->username(), "smtp-auth@example.com");  // Postfix logs it as sasl_username=
  EXPECT_EQ(postfix_failure_reply(r),
            "535 5.7.8 Error: authentication failed: authentication failure");
}

TEST(server, plain_unknown_user) {
  auto s = session(process_library());
  const auto r = s->start("PLAIN", plain("", "nobody@example.com", "pass"));
  ASSERT_EQ(r.state, status::failure);
  EXPECT_EQ(r.reason, "authentication failure");
  EXPECT_EQ(s->username(), "nobody@example.com");
}

TEST(server, plain_without_initial_response_gets_empty_challenge) {
  auto s = session(process_library());
  auto r = s->start("PLAIN", std::nullopt);
  ASSERT_EQ(r.state, status::challenge);
  EXPECT_EQ(r.challenge, "");
  r = s->step(plain("", "smtp-auth@example.com", "pass"));
  EXPECT_EQ(r.state, status::success) << r.reason;
}

TEST(server, realm_needed_for_bare_user_without_local_domain) {
  auto s = session(process_library());
  const auto r = s->start("PLAIN", plain("", "smtp-auth", "pass"));
  EXPECT_EQ(r.state, status::failure);
  EXPECT_EQ(s->username(), "smtp-auth");
}

TEST(server, local_domain_completes_bare_user) {
  auto s = session(process_library("example.com"));
  auto r = s->start("PLAIN", plain("", "smtp-auth", "pass"));
  ASSERT_EQ(r.state, status::success) << r.reason;
  EXPECT_EQ(s->username(), "smtp-auth@example.com");
  r = s->start("PLAIN", plain("", "smtp-auth@example.com", "pass"));
  EXPECT_EQ(r.state, status::success) << r.reason;
  r = s->start("PLAIN", plain("", "smtp-auth@example.org", "pass"));
  EXPECT_EQ(r.state, status::failure);
  EXPECT_EQ(s->username(), "smtp-auth@example.org");
}

TEST(server, plain_authzid_must_match) {
  auto s = session(process_library());
  auto r = s->start("PLAIN", plain("other@example.com", "smtp-auth@example.com", "pass"));
  ASSERT_EQ(r.state, status::failure);
  EXPECT_EQ(r.reason, "authentication failure");
  EXPECT_TRUE(
      logged(r, "SASL authentication failure: Requested identity not authenticated identity"));
  r = s->start("PLAIN", plain("smtp-auth@example.com", "smtp-auth@example.com", "pass"));
  EXPECT_EQ(r.state, status::success) << r.reason;
}

TEST(server, login_multi_step) {
  auto s = session(process_library());
  auto r = s->start("LOGIN", std::nullopt);
  ASSERT_EQ(r.state, status::challenge);
  EXPECT_EQ(r.challenge, "Username:");
  r = s->step("smtp-auth@example.com");
  ASSERT_EQ(r.state, status::challenge);
  EXPECT_EQ(r.challenge, "Password:");
  r = s->step("pass");
  ASSERT_EQ(r.state, status::success) << r.reason;
  EXPECT_EQ(s->username(), "smtp-auth@example.com");
  EXPECT_EQ(s->mechanism(), "LOGIN");
}

TEST(server, login_initial_response_and_wrong_password) {
  auto s = session(process_library());
  auto r = s->start("LOGIN", std::string_view("smtp-auth@example.com"));
  ASSERT_EQ(r.state, status::challenge);
  EXPECT_EQ(r.challenge, "Password:");
  r = s->step("wrong");
  ASSERT_EQ(r.state, status::failure);
  EXPECT_EQ(r.reason, "authentication failure");
  EXPECT_EQ(s->username(), "smtp-auth@example.com");
}

TEST(server, empty_username_is_a_temporary_generic_failure_like_postfix) {
  auto s = session(process_library());
  const auto r = s->start("PLAIN", plain("", "", ""));
  ASSERT_EQ(r.state, status::failure);
  EXPECT_EQ(r.reason, "generic failure");
  EXPECT_TRUE(r.temporary);
  EXPECT_TRUE(logged(r, "SASL authentication failure: All-whitespace username."));
  EXPECT_EQ(postfix_failure_reply(r),
            "454 4.7.0 Temporary authentication failure: generic failure");
  EXPECT_EQ(s->username(), "");
}

TEST(server, unknown_and_unlisted_mechanisms) {
  auto s = session(process_library());
  const std::string_view mechs[] = {"XYZ", "EXTERNAL", "GSSAPI", "ANONYMOUS",
                                    std::string_view("plain\0x", 7)};
  for (const auto mech : mechs) {
    const auto r = s->start(mech, std::nullopt);
    ASSERT_EQ(r.state, status::failure) << mech;
    EXPECT_EQ(r.reason, "no mechanism available") << mech;
    EXPECT_EQ(r.sasl_code, SASL_NOMECH);
  }
  const auto r = s->start("XYZ", std::nullopt);
  EXPECT_TRUE(logged(r, "SASL authentication failure: Couldn't find mech XYZ"));
}

TEST(server, mechanism_name_is_case_insensitive) {
  auto s = session(process_library());
  const auto r = s->start("plain", plain("", "smtp-auth@example.com", "pass"));
  EXPECT_EQ(r.state, status::success) << r.reason;
}

TEST(server, mechanisms_follow_mech_list) {
  // The full table under each security option is in golden_test (Postfix's EHLO lines).
  auto s = session(process_library());
  const std::vector<std::string> expected = {
      "PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "NTLM"};
  EXPECT_EQ(s->mechanisms(), expected);
}

TEST(server, noplaintext_refuses_plain_start) {
  std::string error;
  auto s = session(process_library("", *security_options::parse("noanonymous,noplaintext", error)));
  const auto r = s->start("PLAIN", plain("", "smtp-auth@example.com", "pass"));
  ASSERT_EQ(r.state, status::failure);
  EXPECT_EQ(r.sasl_code, SASL_ENCRYPT);  // Postfix: 535 ... encryption needed to use mechanism
  EXPECT_EQ(r.reason, "encryption needed to use mechanism");
}

TEST(server, reset_after_abort_allows_new_exchange) {
  auto s = session(process_library());
  auto r = s->start("LOGIN", std::nullopt);
  ASSERT_EQ(r.state, status::challenge);
  r = s->step("smtp-auth@example.com");
  ASSERT_EQ(r.state, status::challenge);
  s->reset();  // the client sent "*"
  r = s->step("pass");
  EXPECT_EQ(r.state, status::failure);
  EXPECT_EQ(r.sasl_code, SASL_NOTDONE);
  r = s->start("PLAIN", plain("", "smtp-auth@example.com", "pass"));
  EXPECT_EQ(r.state, status::success) << r.reason;
}

TEST(server, new_start_after_failure_and_after_success) {
  auto s = session(process_library());
  auto r = s->start("PLAIN", plain("", "smtp-auth@example.com", "x"));
  ASSERT_EQ(r.state, status::failure);
  r = s->start("PLAIN", plain("", "smtp-auth@example.com", "pass"));
  ASSERT_EQ(r.state, status::success) << r.reason;
  r = s->start("LOGIN", std::nullopt);  // a fresh handle, not a leftover of the success
  EXPECT_EQ(r.state, status::challenge);
}

TEST(server, step_without_start_is_an_error_value) {
  auto s = session(process_library());
  const auto r = s->step("anything");
  EXPECT_EQ(r.state, status::failure);
  EXPECT_EQ(r.sasl_code, SASL_NOTDONE);
}

TEST(server, garbage_plain_responses) {
  auto s = session(process_library());
  struct row {
    std::string input;
    std::string reason;
  };
  const row rows[] = {
      {"garbage", "bad protocol / cancel"},
      {std::string("\0garbage", 8), "bad protocol / cancel"},
      {"", "bad protocol / cancel"},
      {plain("", "smtp-auth@example.com", "pass") + std::string(1, '\0'), "bad protocol / cancel"},
      {plain("", "smtp-auth@example.com", ""), "authentication failure"},
  };
  for (const auto& row : rows) {
    auto r = s->start("PLAIN", std::nullopt);
    ASSERT_EQ(r.state, status::challenge);
    r = s->step(row.input);
    EXPECT_EQ(r.state, status::failure);
    EXPECT_EQ(r.reason, row.reason);
  }
}

TEST(server, huge_responses_fail_before_libsasl2) {
  auto s = session(process_library());
  const std::string huge(12289, 'A');
  auto r = s->start("PLAIN", huge);
  EXPECT_EQ(r.state, status::failure);
  EXPECT_EQ(r.sasl_code, SASL_BUFOVER);
  r = s->start("LOGIN", std::nullopt);
  ASSERT_EQ(r.state, status::challenge);
  r = s->step(std::string(1 << 20, '\0'));
  EXPECT_EQ(r.state, status::failure);
  EXPECT_EQ(r.sasl_code, SASL_BUFOVER);
  // Just under the limit reaches libsasl2 and fails as a wrong password would.
  r = s->start("PLAIN", plain("", "smtp-auth@example.com", std::string(12000, 'x')));
  EXPECT_EQ(r.reason, "authentication failure");
}

TEST(server, other_mechanisms_reject_garbage) {
  auto s = session(process_library());
  auto r = s->start("CRAM-MD5", std::nullopt);
  ASSERT_EQ(r.state, status::challenge);
  EXPECT_EQ(r.challenge.front(), '<');
  r = s->step("garbage");
  EXPECT_EQ(r.reason, "bad protocol / cancel");
  EXPECT_TRUE(logged(r, "SASL authentication failure: need authentication name"));
  r = s->start("CRAM-MD5", std::string_view("x"));
  EXPECT_EQ(r.reason, "bad protocol / cancel");
  r = s->start("DIGEST-MD5", std::nullopt);
  ASSERT_EQ(r.state, status::challenge);
  r = s->step("garbage");
  EXPECT_EQ(r.reason, "authentication failure");
  r = s->start("SCRAM-SHA-256", std::string_view("garbage"));
  EXPECT_EQ(r.reason, "bad protocol / cancel");
  EXPECT_TRUE(logged(r, "SASL authentication failure: Invalid SCRAM-SHA-256 input"));
}

TEST(server, random_bytes_never_authenticate) {
  auto s = session(process_library());
  std::mt19937 rng(20240601);  // fixed seed: the same inputs every run
  const std::string_view mechs[] = {"PLAIN",       "LOGIN",         "CRAM-MD5", "DIGEST-MD5",
                                    "SCRAM-SHA-1", "SCRAM-SHA-256", "NTLM"};
  for (int i = 0; i < 300; ++i) {
    const auto mech = mechs[static_cast<std::size_t>(i) % std::size(mechs)];
    std::string bytes(rng() % 300, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng() % 256);
    auto r = (i % 2 == 0) ? s->start(mech, bytes) : s->start(mech, std::nullopt);
    for (int steps = 0; r.state == status::challenge && steps < 4; ++steps) r = s->step(bytes);
    EXPECT_NE(r.state, status::success) << mech << " input " << i;
    EXPECT_LE(r.log.size(), log_lines_max);
  }
}

TEST(server, library_init_is_shared_for_same_config_and_refuses_another) {
  auto a = process_library("", {});
  auto b = process_library("example.com", {});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(b->config().user_realm, "example.com");
  test::sasl_dir other("PLAIN");
  server_config c;
  c.config_path = other.dir;
  std::string error;
  EXPECT_FALSE(server_library::init(c, error));
  EXPECT_NE(error.find("already initialised"), std::string::npos) << error;
  EXPECT_NE(error.find(other.dir), std::string::npos) << error;
}

TEST(server, library_init_errors_name_the_config) {
  server_config c;
  std::string error;
  EXPECT_FALSE(server_library::init(c, error));
  EXPECT_FALSE(error.empty());
  c.config_path = "/nonexistent/relaylab";
  EXPECT_FALSE(server_library::init(c, error));
  EXPECT_NE(error.find("/nonexistent/relaylab/smtpd.conf"), std::string::npos) << error;
}

TEST(server, session_endpoints_are_checked_by_libsasl2) {
  std::string error;
  for (std::string_view ok : {"127.0.0.1;25", "::1;587", "2001:db8::1;1234", "192.0.2.1"}) {
    auto s = server_session::create(process_library(), ok, "203.0.113.9;40000", error);
    ASSERT_TRUE(s) << ok << ": " << error;
    const auto r = s->start("PLAIN", plain("", "smtp-auth@example.com", "pass"));
    EXPECT_EQ(r.state, status::success) << ok;
  }
  for (std::string_view bad : {"[::1];25", "1.2.3.4;x", "bad", "1.2.3.4;99999", "1.2.3.4;"}) {
    error.clear();
    EXPECT_FALSE(server_session::create(process_library(), bad, "", error)) << bad;
    EXPECT_EQ(error, "SASL per-connection server initialization: invalid parameter supplied");
  }
}

TEST(server, session_create_rejects_null_library) {
  std::string error;
  EXPECT_FALSE(server_session::create(nullptr, "", "", error));
  EXPECT_FALSE(error.empty());
}

// check_password() (an addition for bench/): sasl_checkpass through the same sasldb, and a
// following AUTH still works on a fresh handle.
TEST(server, check_password_uses_the_sasldb) {
  auto s = session(process_library());
  const auto good = s->check_password("smtp-auth@example.com", "pass");
  EXPECT_EQ(good.state, status::success) << good.reason;
  const auto again = s->check_password("smtp-auth@example.com", "pass");
  EXPECT_EQ(again.state, status::success) << again.reason;
  const auto bad = s->check_password("smtp-auth@example.com", "wrong");
  ASSERT_EQ(bad.state, status::failure);
  EXPECT_EQ(bad.reason, "authentication failure");
  const auto nobody = s->check_password("nobody@example.com", "pass");
  ASSERT_EQ(nobody.state, status::failure);
  EXPECT_EQ(nobody.reason, "authentication failure");
  EXPECT_EQ(s->check_password(std::string_view("smtp-auth\0x", 11), "pass").sasl_code,
            SASL_BADPARAM);
  const auto r = s->start("PLAIN", plain("", "smtp-auth@example.com", "pass"));
  EXPECT_EQ(r.state, status::success) << r.reason;
}

}  // namespace
}  // namespace relaylab::sasl
