#include "relay/queue/queue_file.hpp"

#include "relay/queue/error.hpp"

#include <gtest/gtest.h>

#include <random>

namespace relaylab::queue {
namespace {

envelope sample_envelope() {
  envelope env;
  env.queue_id = "2AE0EA72261";
  env.arrival = time_point(std::chrono::microseconds(1795841773123456));
  env.sender = "alice@example.net";
  env.attributes = {{"client_name", "client.example.net"}, {"sasl_username", "u=x"}};
  env.recipients = {{"bob@remote.example.org", "rfc822;bob@remote.example.org", 3},
                    {"carol@remote.example.org", "", 0}};
  return env;
}

std::string build(const envelope& env, std::string_view content) {
  const auto base = encode_base(env, content.size(), crc32c(content));
  return base.head + std::string(content) + base.tail;
}

TEST(crc32c, known_vector_and_incremental) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c(""), 0u);
  std::mt19937 r(7);
  std::string data(100003, '\0');
  for (auto& c : data) c = static_cast<char>(r());
  std::uint32_t inc = 0;
  for (std::size_t i = 0; i < data.size(); i += 777)
    inc = crc32c(std::string_view(data).substr(i, 777), inc);
  EXPECT_EQ(inc, crc32c(data));
}

TEST(queue_file, round_trip_with_binary_content) {
  const auto env = sample_envelope();
  std::string content = "Subject: hi\r\n\r\n";
  content += std::string("\0\xff\r\n.", 5);
  const auto file = build(env, content);
  decoded_file d;
  std::string why;
  ASSERT_FALSE(decode(file, d, why)) << why;
  EXPECT_EQ(d.env.queue_id, env.queue_id);
  EXPECT_EQ(d.env.arrival, env.arrival);
  EXPECT_EQ(d.env.sender, env.sender);
  EXPECT_EQ(d.env.attributes, env.attributes);
  ASSERT_EQ(d.env.recipients.size(), 2u);
  EXPECT_EQ(d.env.recipients[0].address, "bob@remote.example.org");
  EXPECT_EQ(d.env.recipients[0].orcpt, "rfc822;bob@remote.example.org");
  EXPECT_EQ(d.env.recipients[0].notify, 3);
  EXPECT_EQ(file.substr(d.content_offset, d.content_bytes), content);
  EXPECT_EQ(d.status.size(), 2u);
  EXPECT_FALSE(d.status[0].done);
  EXPECT_EQ(d.attempts, 0u);
  EXPECT_FALSE(d.next_attempt);
  EXPECT_FALSE(d.torn_tail);
}

TEST(queue_file, null_sender_and_no_recipients_round_trip) {
  envelope env = sample_envelope();
  env.sender.clear();
  env.recipients.clear();
  decoded_file d;
  std::string why;
  ASSERT_FALSE(decode(build(env, ""), d, why)) << why;
  EXPECT_EQ(d.env.sender, "");
  EXPECT_TRUE(d.env.recipients.empty());
}

TEST(queue_file, status_records_apply_in_order) {
  auto file = build(sample_envelope(), "body");
  const time_point next(std::chrono::seconds(1795842073));
  file += encode_deferred(1, next - std::chrono::seconds(60));
  file += encode_reason(0, "first reason");
  file += encode_deferred(2, next);
  file += encode_reason(0, "connect to 127.0.0.1[127.0.0.1]:25: Connection refused");
  file += encode_done(1, done_outcome::bounced);
  decoded_file d;
  std::string why;
  ASSERT_FALSE(decode(file, d, why)) << why;
  EXPECT_EQ(d.attempts, 2u);
  EXPECT_EQ(d.next_attempt, next);
  EXPECT_FALSE(d.status[0].done);
  EXPECT_EQ(d.status[0].reason, "connect to 127.0.0.1[127.0.0.1]:25: Connection refused");
  EXPECT_TRUE(d.status[1].done);
  EXPECT_EQ(d.status[1].outcome, done_outcome::bounced);
  EXPECT_EQ(d.file_bytes, file.size());
}

TEST(queue_file, failure_records_round_trip_and_are_checked) {
  const auto base = build(sample_envelope(), "body");
  recipient_failure f{1, done_outcome::expired, "4.4.1", "none",
                      "connect to x: Connection refused"};
  decoded_file d;
  std::string why;
  ASSERT_FALSE(decode(base + encode_failure(f), d, why)) << why;
  EXPECT_FALSE(d.status[0].failure);
  ASSERT_TRUE(d.status[1].failure);
  EXPECT_EQ(d.status[1].failure->index, 1u);
  EXPECT_EQ(d.status[1].failure->outcome, done_outcome::expired);
  EXPECT_EQ(d.status[1].failure->dsn, "4.4.1");
  EXPECT_EQ(d.status[1].failure->relay, "none");
  EXPECT_EQ(d.status[1].failure->reason, "connect to x: Connection refused");
  EXPECT_FALSE(d.status[1].done);
  // Oversized parts are cut so that the record stays within its limit.
  f.dsn.assign(100, '5');
  f.relay.assign(5000, 'r');
  f.reason.assign(record_bytes_max, 'x');
  ASSERT_FALSE(decode(base + encode_failure(f), d, why)) << why;
  ASSERT_TRUE(d.status[1].failure);
  EXPECT_EQ(d.status[1].failure->dsn.size(), failure_dsn_bytes_max);
  EXPECT_EQ(d.status[1].failure->relay.size(), failure_relay_bytes_max);
  EXPECT_FALSE(d.status[1].failure->reason.empty());
  // "delivered" is no failure, and the index must name a recipient.
  f = {1, done_outcome::delivered, "2.0.0", "none", ""};
  EXPECT_EQ(decode(base + encode_failure(f), d, why), errc::corrupt);
  EXPECT_EQ(why, "bad failed record");
  f = {7, done_outcome::bounced, "5.0.0", "none", ""};
  EXPECT_EQ(decode(base + encode_failure(f), d, why), errc::corrupt);
}

TEST(queue_file, every_flipped_base_byte_is_detected) {
  const auto file = build(sample_envelope(), "Subject: x\r\n\r\nbody\r\n");
  decoded_file d;
  std::string why;
  for (std::size_t i = 0; i < file.size(); ++i) {
    std::string bad = file;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(decode(bad, d, why), errc::corrupt) << "offset " << i;
    EXPECT_FALSE(why.empty());
  }
}

TEST(queue_file, every_truncation_is_corrupt_or_a_torn_tail) {
  const auto base = build(sample_envelope(), "body");
  const auto file = base + encode_done(0, done_outcome::delivered);
  decoded_file d;
  std::string why;
  for (std::size_t n = 0; n < file.size(); ++n) {
    const auto ec = decode(std::string_view(file).substr(0, n), d, why);
    if (n < base.size()) {
      EXPECT_EQ(ec, errc::corrupt) << "length " << n;
    } else {
      ASSERT_FALSE(ec) << "length " << n << ": " << why;
      EXPECT_EQ(d.torn_tail, n > base.size());
      EXPECT_EQ(d.file_bytes, base.size());
      EXPECT_FALSE(d.status[0].done);
    }
  }
}

TEST(queue_file, damaged_status_record_before_another_is_corrupt) {
  auto file = build(sample_envelope(), "body");
  const auto first = file.size();
  file += encode_done(0, done_outcome::delivered);
  file += encode_done(1, done_outcome::delivered);
  file[first + 5] = static_cast<char>(file[first + 5] ^ 0x10);
  decoded_file d;
  std::string why;
  EXPECT_EQ(decode(file, d, why), errc::corrupt);
  EXPECT_EQ(why, "status record checksum");
}

TEST(queue_file, out_of_range_recipient_index_is_corrupt) {
  auto file = build(sample_envelope(), "body") + encode_done(7, done_outcome::delivered);
  decoded_file d;
  std::string why;
  EXPECT_EQ(decode(file, d, why), errc::corrupt);
  EXPECT_EQ(why, "bad done record");
}

TEST(queue_file, garbage_and_empty_are_corrupt) {
  decoded_file d;
  std::string why;
  EXPECT_EQ(decode("", d, why), errc::corrupt);
  EXPECT_EQ(decode("hello, world, this is not a queue file at all", d, why), errc::corrupt);
  std::mt19937 r(42);
  for (int i = 0; i < 200; ++i) {
    std::string g = "RLQF0001";
    const auto len = r() % 300;
    for (unsigned k = 0; k < len; ++k) g.push_back(static_cast<char>(r()));
    EXPECT_EQ(decode(g, d, why), errc::corrupt) << i;
  }
}

}  // namespace
}  // namespace relaylab::queue
