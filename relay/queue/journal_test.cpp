#include "relay/queue/journal.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace relaylab::queue {
namespace {

struct seen {
  journal_record type;
  std::string id;
  std::string image;
  std::uint64_t offset;
};

std::vector<seen> scan_all(std::string_view bytes, std::uint64_t* valid = nullptr) {
  std::vector<seen> out;
  const auto n = scan_journal(bytes, [&](const journal_entry& e) {
    out.push_back({e.type, std::string(e.queue_id), std::string(e.image), e.image_offset});
  });
  if (valid) *valid = n;
  return out;
}

TEST(journal, records_round_trip_with_image_offsets) {
  std::string seg;
  const auto a = append_journal_message(seg, "4BD0B9EAB59", "RLQF0001 image one");
  append_journal_gone(seg, "4BD0B9EAB59");
  const auto b = append_journal_message(seg, "5CE1CAFBC60", std::string(3000, 'x'));
  std::uint64_t valid = 0;
  const auto got = scan_all(seg, &valid);
  EXPECT_EQ(valid, seg.size());
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].type, journal_record::message);
  EXPECT_EQ(got[0].id, "4BD0B9EAB59");
  EXPECT_EQ(got[0].image, "RLQF0001 image one");
  EXPECT_EQ(got[0].offset, a);
  EXPECT_EQ(seg.substr(a, 18), "RLQF0001 image one");
  EXPECT_EQ(got[1].type, journal_record::gone);
  EXPECT_EQ(got[1].id, "4BD0B9EAB59");
  EXPECT_EQ(got[2].offset, b);
  EXPECT_EQ(got[2].image.size(), 3000u);
}

TEST(journal, a_torn_tail_ends_the_scan_at_the_last_whole_record) {
  std::string seg;
  append_journal_message(seg, "AAAAAAAAAA1", "first");
  const std::size_t first_end = seg.size();
  append_journal_message(seg, "AAAAAAAAAA2", "second record");
  for (std::size_t cut = first_end; cut < seg.size(); ++cut) {
    std::uint64_t valid = 0;
    const auto got = scan_all(std::string_view(seg).substr(0, cut), &valid);
    ASSERT_EQ(got.size(), 1u) << cut;
    EXPECT_EQ(valid, first_end);
  }
}

TEST(journal, a_flipped_bit_fails_the_checksum) {
  std::string seg;
  append_journal_message(seg, "AAAAAAAAAA1", "first");
  const std::size_t first_end = seg.size();
  append_journal_message(seg, "AAAAAAAAAA2", "second");
  for (std::size_t i = first_end; i < seg.size(); ++i) {
    std::string bad = seg;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    EXPECT_EQ(scan_all(bad).size(), 1u) << "byte " << i;
  }
  std::string garbage = seg + "garbage after the end";
  EXPECT_EQ(scan_all(garbage).size(), 2u);
}

TEST(journal, segment_names_sort_by_sequence_and_parse_back) {
  EXPECT_EQ(journal_segment_name(1), "J0000000000000001");
  EXPECT_EQ(journal_segment_name(0xabc), "J0000000000000abc");
  EXPECT_LT(journal_segment_name(9), journal_segment_name(10));
  EXPECT_EQ(parse_journal_segment_name("J0000000000000abc"), 0xabcu);
  EXPECT_EQ(parse_journal_segment_name("J0000000000000ABC"), 0u);
  EXPECT_EQ(parse_journal_segment_name("J000000000000abc"), 0u);
  EXPECT_EQ(parse_journal_segment_name("X0000000000000abc"), 0u);
}

}  // namespace
}  // namespace relaylab::queue
