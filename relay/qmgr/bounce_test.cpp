#include "relay/qmgr/bounce.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace relaylab::qmgr {
namespace {

std::string read_file(const std::string& name) {
  std::ifstream in(std::string(RELAYLAB_TESTDATA_DIR) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The returned message inside a Postfix notification (after its Return-Path: line).
std::string returned_content(const std::string& golden, const std::string& boundary) {
  const std::string marker = "Return-Path: <sender@example.org>\r\n";
  const auto start = golden.rfind(marker) + marker.size();
  const auto end = golden.rfind("\r\n--" + boundary + "--");
  return golden.substr(start, end - start);
}

// Postfix 3.7.11's notification for a 550 RCPT reply, byte for byte (the sink received it as
// testdata/qmgr/postfix_bounce.eml).
TEST(bounce, matches_postfix_for_a_rejected_recipient) {
  const std::string golden = read_file("postfix_bounce.eml");
  ASSERT_FALSE(golden.empty());
  bounce_input in;
  in.queue_id = "1F1ACA72071";
  in.new_queue_id = "252E9A720A4";
  in.sender = "sender@example.org";
  in.myhostname = "relay.example.com";
  in.arrival = in.now = time_point(std::chrono::seconds(1795844642));
  in.recipients.push_back(
      {"bad@remote.example", "rfc822;bad@remote.example", "5.1.1", "127.0.0.1[127.0.0.1]:27426",
       "host 127.0.0.1[127.0.0.1] said: 550 5.1.1 <bad@remote.example>: Recipient address "
       "rejected: User unknown (in reply to RCPT TO command)"});
  in.content = returned_content(golden, "1F1ACA72071.1795844642/relay.example.com");
  EXPECT_EQ(compose_bounce(in), golden);
}

// An expired deferral keeps its 4.x.x status (testdata/qmgr/postfix_bounce_expired.eml).
TEST(bounce, matches_postfix_for_an_expired_recipient) {
  const std::string golden = read_file("postfix_bounce_expired.eml");
  ASSERT_FALSE(golden.empty());
  bounce_input in;
  in.queue_id = "AD816A72070";
  in.new_queue_id = "B7A5CA7209B";
  in.sender = "sender@example.org";
  in.myhostname = "relay.example.com";
  in.arrival = in.now = time_point(std::chrono::seconds(1795844656));
  in.recipients.push_back(
      {"soft@remote.example", "", "4.2.0", "127.0.0.1[127.0.0.1]:27426",
       "host 127.0.0.1[127.0.0.1] said: 450 4.2.0 <soft@remote.example>: Recipient address "
       "rejected: try again later (in reply to RCPT TO command)"});
  in.content = returned_content(golden, "AD816A72070.1795844656/relay.example.com");
  EXPECT_EQ(compose_bounce(in), golden);
}

TEST(bounce, large_messages_return_headers_only) {
  bounce_input in;
  in.queue_id = "ABCDEF123";
  in.new_queue_id = "ABCDEF124";
  in.sender = "s@example.org";
  in.myhostname = "relay.example.com";
  in.recipients.push_back({"r@x.example", "", "5.0.0", "none", "connect failed"});
  in.content = "Subject: big\r\nX-A: 1\r\n\r\n" + std::string(200, 'x') + "\r\n";
  in.bounce_size_limit_bytes = 100;
  const auto m = compose_bounce(in);
  EXPECT_NE(m.find("Content-Description: Undelivered Message Headers\r\n"
                   "Content-Type: text/rfc822-headers\r\n"),
            std::string::npos);
  EXPECT_NE(m.find("Subject: big\r\nX-A: 1\r\n\r\n--ABCDEF123."), std::string::npos);
  EXPECT_EQ(m.find("xxxx"), std::string::npos);
  EXPECT_NE(m.find("Diagnostic-Code: X-Postfix; connect failed\r\n"), std::string::npos);
  EXPECT_EQ(m.find("Remote-MTA"), std::string::npos);
}

TEST(bounce, wrap_keeps_lines_shorter_than_80) {
  EXPECT_EQ(wrap_text("short"), "short");
  const std::string w = wrap_text(std::string(70, 'a') + " bbbbbbbbbb cc");
  EXPECT_EQ(w, std::string(70, 'a') + "\r\n    bbbbbbbbbb cc");
  const std::string longword(100, 'z');
  EXPECT_EQ(wrap_text(longword), longword);  // words are never broken
}

TEST(bounce, remote_reply_parsing) {
  std::string mta, reply;
  ASSERT_TRUE(parse_remote_reply(
      "host mx.example[192.0.2.1] said: 550 5.1.1 no (in reply to RCPT TO command)", mta, reply));
  EXPECT_EQ(mta, "mx.example");
  EXPECT_EQ(reply, "550 5.1.1 no");
  EXPECT_FALSE(parse_remote_reply("connect to mx[1.2.3.4]:25: Connection refused", mta, reply));
}

TEST(bounce, date_format) {
  EXPECT_EQ(rfc2822_date(time_point(std::chrono::seconds(1795844642))),
            "Sat, 28 Nov 2026 05:44:02 +0000 (UTC)");
}

}  // namespace
}  // namespace relaylab::qmgr
