// The end-of-scenario checker on made-up maillogs: it must flag what it promises to flag.
#include "harness/runner/invariants.hpp"

#include <gtest/gtest.h>

namespace relaylab::runner {
namespace {

std::string line(std::string_view prog, std::string_view text) {
  return "Oct 21 10:00:00 relay postfix/" + std::string(prog) + "[100]: " + std::string(text);
}

std::vector<std::string> expected_of(const std::vector<invariant_failure>& f) {
  std::vector<std::string> out;
  for (const auto& x : f) out.push_back(x.expected + " / " + x.got);
  return out;
}

TEST(check_accepted_mail, delivered_bounced_and_queued_mail_passes) {
  const std::vector<std::string> log = {
      line("smtpd", "AAA111: client=localhost[127.0.0.1]"),
      line("smtp", "AAA111: to=<a@x.test>, relay=mx[192.0.2.1]:25, status=sent (250 ok)"),
      line("qmgr", "AAA111: removed"),
      line("smtp", "BBB222: to=<b@x.test>, relay=mx[192.0.2.1]:25, status=bounced (550 no)"),
      line("bounce", "BBB222: sender non-delivery notification: CCC333"),
      line("qmgr", "BBB222: removed"),
      line("smtp", "DDD444: to=<d@x.test>, status=deferred (try later)"),
  };
  const std::vector<std::string> accepted = {"AAA111", "BBB222", "DDD444"};
  EXPECT_TRUE(check_accepted_mail(log, accepted, {"DDD444", "CCC333"}).empty());
}

TEST(check_accepted_mail, a_second_sent_line_for_one_recipient_fails) {
  const std::vector<std::string> log = {
      line("smtp", "AAA111: to=<a@x.test>, status=sent (250 ok)"),
      line("smtp", "AAA111: to=<b@x.test>, status=sent (250 ok)"),
      line("smtp", "AAA111: to=<a@x.test>, status=sent (250 ok)"),
      line("qmgr", "AAA111: removed"),
  };
  const std::vector<std::string> accepted = {"AAA111"};
  EXPECT_EQ(expected_of(check_accepted_mail(log, accepted, {})),
            std::vector<std::string>{
                "checker: AAA111 delivered to <a@x.test> at most once / 2 deliveries"});
}

TEST(check_accepted_mail, lost_mail_fails) {
  const std::vector<std::string> log = {
      line("smtp", "AAA111: to=<a@x.test>, status=deferred (try later)"),
      line("qmgr", "AAA111: removed"),
      // The ID inside another message's text does not count for it.
      line("smtpd", "EEE555: warning: about BBB222: to=<b@x.test>, status=sent"),
  };
  const std::vector<std::string> accepted = {"AAA111", "BBB222"};
  EXPECT_EQ(expected_of(check_accepted_mail(log, accepted, {})),
            (std::vector<std::string>{
                "checker: accepted message AAA111 is delivered, bounced or still queued / "
                "removed without a delivery or bounce",
                "checker: accepted message BBB222 is delivered, bounced or still queued / "
                "gone from the queue"}));
}

}  // namespace
}  // namespace relaylab::runner
