#include "relay/smtpd/received.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <random>

namespace relaylab::smtpd {
namespace {

std::chrono::system_clock::time_point at(long long secs) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs));
}

TEST(received, one_recipient_gets_a_for_clause) {
  received_header_fields f;
  f.helo = "client.example.net";
  f.client_name = "unknown";
  f.client_addr = "192.168.1.20";
  f.myhostname = "ip-192-168-2-44.example.com";
  f.protocol = "ESMTPA";
  f.queue_id = "66857C01110";
  f.recipient = "friend@gmail.com";
  f.time = at(1603246874);  // 2020-10-21 02:21:14 UTC
  f.utc = true;
  EXPECT_EQ(format_received_header(f),
            "Received: from client.example.net (unknown [192.168.1.20])\r\n"
            "\tby ip-192-168-2-44.example.com (Postfix) with ESMTPA id 66857C01110\r\n"
            "\tfor <friend@gmail.com>; Wed, 21 Oct 2020 02:21:14 +0000 (UTC)\r\n");
}

TEST(received, several_recipients_put_the_date_on_its_own_line_and_ipv6_is_tagged) {
  received_header_fields f;
  f.client_name = "host.example";
  f.client_addr = "2001:db8::5";
  f.myhostname = "relay.example.com";
  f.queue_id = "ABCDEF123";
  f.time = at(1604718000);  // 2020-11-07: single-digit day is space padded
  f.utc = true;
  EXPECT_EQ(format_received_header(f),
            "Received: from host.example (host.example [IPv6:2001:db8::5])\r\n"
            "\tby relay.example.com (Postfix) with ESMTP id ABCDEF123;\r\n"
            "\tSat,  7 Nov 2020 03:00:00 +0000 (UTC)\r\n");
}

TEST(received, the_date_changes_with_the_second_and_the_zone_choice) {
  // The date is formatted once per second: the next second, or UTC against local time, must
  // not get the previous text.
  EXPECT_EQ(format_mail_date(at(1604718000), true), "Sat,  7 Nov 2020 03:00:00 +0000 (UTC)");
  EXPECT_EQ(format_mail_date(at(1604718000) + std::chrono::milliseconds(999), true),
            "Sat,  7 Nov 2020 03:00:00 +0000 (UTC)");
  EXPECT_EQ(format_mail_date(at(1604718001), true), "Sat,  7 Nov 2020 03:00:01 +0000 (UTC)");
  const char* saved = std::getenv("TZ");
  const std::string saved_tz = saved != nullptr ? saved : "";
  ::setenv("TZ", "XYZ-9", 1);  // POSIX TZ: a zone named XYZ at +09:00
  ::tzset();
  EXPECT_EQ(format_mail_date(at(1604718001), false), "Sat,  7 Nov 2020 12:00:01 +0900 (XYZ)");
  if (saved != nullptr) {
    ::setenv("TZ", saved_tz.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
  EXPECT_EQ(format_mail_date(at(1604718001), true), "Sat,  7 Nov 2020 03:00:01 +0000 (UTC)");
}

TEST(header_scanner, finds_folded_message_id_across_chunks_and_stops_at_body) {
  header_scanner s;
  std::string id;
  s.feed("Subject: x\r\nMessage-", id);
  s.feed("ID:\r\n <abc@example.com>\r\n\r\nMessage-ID: <body@x>\r\n", id);
  EXPECT_EQ(id, "<abc@example.com>");
}

TEST(header_scanner, message_id_in_body_is_ignored_and_absent_stays_empty) {
  header_scanner s;
  std::string id;
  s.feed("Subject: x\r\n\r\nMessage-ID: <body@x>\r\n", id);
  s.finish(id);
  EXPECT_EQ(id, "");
}

TEST(header_scanner, last_header_without_line_end_counts) {
  header_scanner s;
  std::string id;
  s.feed("message-id: <a@b>", id);
  s.finish(id);
  EXPECT_EQ(id, "<a@b>");
}

TEST(content_cleanup, stray_cr_becomes_space_and_bare_lf_becomes_crlf_across_chunks) {
  content_cleanup c(true, 102400);
  std::string out;
  c.feed("Subject: a\rb\r", out);
  c.feed("\n\r\nbody\nline\r.\r", out);
  c.finish(out);
  EXPECT_EQ(out, "Subject: a b\r\n\r\nbody\r\nline . ");
}

TEST(content_cleanup, smuggling_sequence_cannot_survive) {
  content_cleanup c(true, 102400);
  std::string out;
  c.feed("\r\nbody\n.\r\nMAIL FROM:<x@y>\r\n", out);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\n') {
      EXPECT_TRUE(i > 0 && out[i - 1] == '\r') << "bare LF at " << i;
    }
    if (out[i] == '\r') {
      EXPECT_TRUE(i + 1 < out.size() && out[i + 1] == '\n') << "CR at " << i;
    }
  }
  EXPECT_EQ(out, "\r\nbody\r\n.\r\nMAIL FROM:<x@y>\r\n");
}

TEST(content_cleanup, oversized_header_loses_its_excess_only) {
  content_cleanup c(true, 10);
  std::string out;
  c.feed("X-Long: 0123456789\r\n continued\r\nTo: a@b\r\n\r\n0123456789abcdef\r\n", out);
  EXPECT_EQ(out, "X-Long: 01\r\nTo: a@b\r\n\r\n0123456789abcdef\r\n");
}

// Runs of ordinary bytes are copied in one piece: the result must not depend on where the
// input is cut, down to one byte per feed() (which takes the byte-at-a-time path).
TEST(content_cleanup, output_does_not_depend_on_chunking) {
  std::mt19937 rng(20261128);
  const char alphabet[] = {'\r', '\n', ' ', '\t', 'a', 'b', ':', '.'};
  for (int round = 0; round < 300; ++round) {
    std::string in;
    const std::size_t len = rng() % 400;
    for (std::size_t i = 0; i < len; ++i) in += alphabet[rng() % sizeof alphabet];
    const bool replace = rng() % 2 == 0;
    const std::size_t limit = rng() % 3 == 0 ? 0 : 1 + rng() % 20;
    content_cleanup one_by_one(replace, limit), chunked(replace, limit);
    std::string a, b;
    for (char ch : in) one_by_one.feed(std::string_view(&ch, 1), a);
    for (std::size_t at = 0; at < in.size();) {
      const std::size_t n = std::min<std::size_t>(in.size() - at, 1 + rng() % 40);
      chunked.feed(std::string_view(in).substr(at, n), b);
      at += n;
    }
    ASSERT_EQ(a, b) << "round " << round << " limit " << limit << " replace " << replace;
  }
}

}  // namespace
}  // namespace relaylab::smtpd
