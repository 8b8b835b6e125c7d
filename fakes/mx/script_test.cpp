#include "fakes/mx/script.hpp"

#include <gtest/gtest.h>

namespace relaylab::fakes::mx {
namespace {

using namespace std::chrono_literals;

TEST(mx_script, example_file_loads) {
  parse_error err;
  auto s = load_script(RELAYLAB_FAKES_TESTDATA "/example.mxscript", err);
  ASSERT_TRUE(s) << err.to_string();
  EXPECT_EQ(s->hostname, "mx1.fake.example");
  EXPECT_EQ(s->banner, "mx1.fake.example ESMTP ready");
  ASSERT_EQ(s->rules.size(), 6u);
  EXPECT_EQ(s->rules[0].recipient, "bob@x.example");
  EXPECT_EQ(s->rules[0].act.what, action::kind::reply);
  EXPECT_EQ(s->rules[0].act.reply,
            "550 5.1.1 <bob@x.example>: Recipient address rejected: User unknown");
  EXPECT_EQ(s->rules[1].act.delay, 2s);
  EXPECT_EQ(s->rules[2].times, 2u);
  EXPECT_EQ(s->rules[3].where, stage::mail);
  EXPECT_EQ(s->rules[4].where, stage::data);
  EXPECT_EQ(s->rules[4].act.what, action::kind::accept);
  EXPECT_EQ(s->rules[4].act.delay, 5s);
  EXPECT_EQ(s->rules[5].where, stage::dot);
  EXPECT_EQ(s->rules[5].act.delay, 250ms);
  EXPECT_EQ(s->greylist_attempts, 2u);
  EXPECT_EQ(s->sessions_max, 3u);
  EXPECT_EQ(s->rate_messages, 10u);
  EXPECT_EQ(s->rate_window, 60s);
  EXPECT_EQ(s->rate_code, 421);
  ASSERT_EQ(s->users.size(), 1u);
  EXPECT_EQ(s->users[0].name, "smtp-auth");
  EXPECT_EQ(s->timeout, 30s);
}

std::string error_of(std::string_view text) {
  parse_error err;
  auto s = parse_script(text, "t.mx", err);
  if (s) return "parsed";
  return err.to_string();
}

TEST(mx_script, errors_name_file_line_column) {
  EXPECT_EQ(error_of("frobnicate 3\n"), "t.mx:1:1: unknown directive \"frobnicate\"");
  EXPECT_EQ(error_of("\n  stage bogus accept\n"),
            "t.mx:2:9: unknown stage \"bogus\" (connect, helo, mail, rcpt, data, dot)");
  EXPECT_EQ(error_of("stage data delay 5parsecs\n"),
            "t.mx:1:18: bad duration \"5parsecs\" (expected e.g. 250ms, 5s, 2m, 1h; max 24h)");
  EXPECT_EQ(error_of("rcpt a@b reply \"550 5.1.1 unterminated\n"),
            "t.mx:1:16: unterminated quoted string");
  EXPECT_EQ(error_of("rcpt a@b reply \"650 no\"\n"),
            "t.mx:1:16: reply must start with a code 200-599 and a space, got \"650 no\"");
  EXPECT_EQ(error_of("rcpt a@b reply \"550 4.1.1 mismatch\"\n"),
            "t.mx:1:21: enhanced status code class 4 does not match reply code 550");
  EXPECT_EQ(error_of("stage mail disconnect now\n"), "t.mx:1:23: unexpected \"now\"");
  EXPECT_EQ(error_of("stage mail\n"),
            "t.mx:1:12: expected an action: delay DUR, accept, reply \"TEXT\", disconnect or "
            "hang");
  EXPECT_EQ(error_of("rate 10 421\n"), "t.mx:1:6: expected N/WINDOW, e.g. 10/60s");
  EXPECT_EQ(error_of("rate 10/60s 450\n"), "t.mx:1:13: rate code must be 421 or 451");
  EXPECT_EQ(error_of("sessions_max three\n"), "t.mx:1:14: expected a number, got \"three\"");
  EXPECT_EQ(error_of("auth required\n"),
            "t.mx:1:1: \"auth required\" without any \"auth user NAME PASSWORD\"");
  EXPECT_EQ(error_of("# only a comment\nstage rcpt hang # trailing comment\n"), "parsed");
}

TEST(mx_script, missing_file_is_an_error) {
  parse_error err;
  EXPECT_FALSE(load_script("/nonexistent/x.mxscript", err));
  EXPECT_EQ(err.to_string(), "/nonexistent/x.mxscript:0:0: cannot open file");
}

TEST(mx_script, durations) {
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("5s"), 5s);
  EXPECT_EQ(parse_duration("2m"), 120s);
  EXPECT_EQ(parse_duration("1h"), 3600s);
  EXPECT_EQ(parse_duration("0"), 0ms);
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("25h"));
  EXPECT_FALSE(parse_duration("s"));
}

}  // namespace
}  // namespace relaylab::fakes::mx
