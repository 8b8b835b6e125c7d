#include "relay/queue/mailq.hpp"

#include "relay/queue/test_support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace relaylab::queue {
namespace {

std::string golden(const std::string& name) {
  std::ifstream in(std::string(RELAYLAB_TESTDATA_DIR) + "/queue/" + name, std::ios::binary);
  EXPECT_TRUE(in) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

time_point at(int hour, int minute, int second) {
  // 2026-11-28 00:00:00 UTC.
  return time_point(std::chrono::seconds(1795824000 + hour * 3600 + minute * 60 + second));
}

queue_entry deferred(std::string id, std::uint64_t size, time_point when, std::string sender,
                     std::vector<std::string> rcpts) {
  queue_entry e;
  e.queue_id = std::move(id);
  e.state = queue_state::deferred;
  e.size_bytes = size;
  e.arrival = when;
  e.sender = std::move(sender);
  for (auto& r : rcpts)
    e.recipients.push_back(
        {std::move(r), "connect to 127.0.0.1[127.0.0.1]:27311: Connection refused"});
  return e;
}

// testdata/queue/mailq_deferred.txt is `postqueue -p` of a private Postfix 3.7.11 whose
// relayhost refused connections.
TEST(mailq, matches_postfix_output_byte_for_byte) {
  const std::vector<queue_entry> q = {
      deferred("2AE0EA72261", 311, at(4, 56, 13), "alice@example.net",
               {"bob@remote.example.org", "carol@remote.example.org"}),
      deferred("DF541A723C4", 279, at(5, 0, 19), "a@b", {"c@d"}),
      deferred("B4261A72083", 2333, at(4, 56, 20), "", {"dave@remote.example.org"}),
      deferred("A8A64A72414", 276, at(4, 59, 1), "a@b", {"c@d"}),
      deferred("7B068A72529", 276, at(4, 59, 56), "a@b", {"c@d"}),
  };
  EXPECT_EQ(format_mailq(q), golden("mailq_deferred.txt"));
}

TEST(mailq, empty_queue) { EXPECT_EQ(format_mailq({}), "Mail queue is empty\n"); }

TEST(mailq, active_marker_reason_changes_and_offset) {
  queue_entry e;
  e.queue_id = "66857C01110";
  e.state = queue_state::active;
  e.size_bytes = 4096;
  e.arrival = at(23, 30, 0);
  e.sender = "s@x";
  e.recipients = {
      {"a@x", ""}, {"b@x", "why"}, {"c@x", "why"}, {"d@x", ""}, {"e@x", std::string(80, 'r')}};
  const std::string expected =
      "-Queue ID-  --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
      "66857C01110*    4096 Sun Nov 29 01:30:00  s@x\n"
      "                                         a@x\n" +
      std::string(73, ' ') + "(why)\n" +
      "                                         b@x\n"
      "                                         c@x\n" +
      std::string(58, ' ') + "(reason unavailable)\n" +
      "                                         d@x\n"
      "(" +
      std::string(80, 'r') + ")\n" +
      "                                         e@x\n"
      "\n-- 4 Kbytes in 1 Request.\n";
  EXPECT_EQ(format_mailq({&e, 1}, {std::chrono::hours(2)}), expected);
}

TEST(mailq, day_of_month_is_space_padded) {
  queue_entry e;
  e.queue_id = "ABCDEF12345";
  e.size_bytes = 1;
  e.arrival = time_point(std::chrono::seconds(1793491200));  // Sun Nov  1 00:00:00 2026
  e.sender = "s@x";
  EXPECT_NE(format_mailq({&e, 1}).find("ABCDEF12345       1 Sun Nov  1 00:00:00  s@x\n"),
            std::string::npos);
}

TEST(mailq, spool_list_feeds_the_formatter) {
  mem_storage st;
  testing::manual_clock clock;
  spool_options o;
  o.mode = commit_mode::immediate;
  spool sp(st, clock.function(), testing::seeded_random(5), o);
  ASSERT_FALSE(sp.open());
  recovery_report r;
  ASSERT_FALSE(sp.recover(r));
  auto m =
      testing::make_message(sp, "alice@example.net", {"bob@x", "carol@x"}, std::string(311, 'x'));
  const std::string id = m.queue_id();
  ASSERT_FALSE(testing::commit_now(sp, std::move(m)).ec);
  auto m2 = testing::make_message(sp, "", {"dave@x"}, "y");
  const std::string id2 = m2.queue_id();
  ASSERT_FALSE(testing::commit_now(sp, std::move(m2)).ec);
  ASSERT_FALSE(sp.activate(id));
  const std::uint32_t first[] = {0};
  ASSERT_FALSE(sp.mark_done(id, first, done_outcome::delivered));
  const recipient_reason why[] = {{1, "connect to x[192.0.2.1]:25: Connection refused"}};
  ASSERT_FALSE(sp.defer(id, clock.now + std::chrono::minutes(5), why));
  std::vector<queue_entry> list;
  ASSERT_FALSE(sp.list(list));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].queue_id, id2);  // incoming before deferred
  EXPECT_EQ(list[1].state, queue_state::deferred);
  ASSERT_EQ(list[1].recipients.size(), 1u);  // bob is done
  EXPECT_EQ(list[1].recipients[0].address, "carol@x");
  const std::string text = format_mailq(list);
  EXPECT_NE(text.find(id + "     311 Sat Nov 28 04:56:13  alice@example.net\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("MAILER-DAEMON\n"), std::string::npos);
  EXPECT_NE(text.find("(connect to x[192.0.2.1]:25: Connection refused)\n"), std::string::npos);
  EXPECT_EQ(text.find("bob@x"), std::string::npos);
  EXPECT_NE(text.find("-- 0 Kbytes in 2 Requests.\n"), std::string::npos);
}

}  // namespace
}  // namespace relaylab::queue
