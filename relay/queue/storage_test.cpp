#include "relay/queue/storage.hpp"

#include "relay/queue/test_support.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace relaylab::queue {
namespace {

using testing::temp_dir;

// Every behaviour both storages must share runs against both.
class storage_test : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      fs_ = std::make_unique<temp_dir>();
      st_ = std::make_unique<fs_storage>(fs_->path());
    } else {
      st_ = std::make_unique<mem_storage>();
    }
    ASSERT_FALSE(st_->make_dir("a"));
    ASSERT_FALSE(st_->make_dir("b"));
  }
  std::string read_all(std::string_view dir, std::string_view name) {
    std::string out;
    EXPECT_FALSE(st_->read_file(dir, name, 1 << 20, out));
    return out;
  }
  std::unique_ptr<temp_dir> fs_;
  std::unique_ptr<storage> st_;
};

TEST_P(storage_test, write_read_round_trip) {
  const std::string_view pieces[] = {"head|", "", "content|", "tail"};
  ASSERT_FALSE(st_->write_file("a", "f", pieces, true));
  EXPECT_EQ(read_all("a", "f"), "head|content|tail");
  const std::string_view again[] = {"x"};
  ASSERT_FALSE(st_->write_file("a", "f", again, false));  // truncates
  EXPECT_EQ(read_all("a", "f"), "x");
}

TEST_P(storage_test, gather_write_of_many_pieces_keeps_order) {
  std::vector<std::string> owned;
  for (int i = 0; i < 200; ++i) owned.push_back(std::to_string(i) + ",");
  std::vector<std::string_view> pieces(owned.begin(), owned.end());
  std::string expected;
  for (auto& s : owned) expected += s;
  ASSERT_FALSE(st_->write_file("a", "many", pieces, true));
  EXPECT_EQ(read_all("a", "many"), expected);
}

TEST_P(storage_test, append_and_range_read) {
  const std::string_view pieces[] = {"0123456789"};
  ASSERT_FALSE(st_->write_file("a", "f", pieces, true));
  ASSERT_FALSE(st_->append_file("a", "f", "abc", true));
  std::string out;
  ASSERT_FALSE(st_->read("a", "f", 8, 4, out));
  EXPECT_EQ(out, "89ab");
  ASSERT_FALSE(st_->read("a", "f", 11, 100, out));
  EXPECT_EQ(out, "bc");
  ASSERT_FALSE(st_->read("a", "f", 50, 10, out));
  EXPECT_EQ(out, "");
  EXPECT_EQ(st_->append_file("a", "missing", "x", true), std::errc::no_such_file_or_directory);
}

TEST_P(storage_test, write_at_overwrites_and_extends) {
  const std::string_view pieces[] = {"0123456789"};
  ASSERT_FALSE(st_->write_file("a", "f", pieces, true));
  const std::string_view middle[] = {"ab", "c"};
  ASSERT_FALSE(st_->write_at("a", "f", 4, middle, true));
  EXPECT_EQ(read_all("a", "f"), "0123abc789");
  const std::string_view tail[] = {"xyz", "++"};
  ASSERT_FALSE(st_->write_at("a", "f", 8, tail, true));  // past the end: grows
  EXPECT_EQ(read_all("a", "f"), "0123abc7xyz++");
  ASSERT_FALSE(st_->write_at("a", "f", 13, tail, false));  // exactly at the end: appends
  EXPECT_EQ(read_all("a", "f"), "0123abc7xyz++xyz++");
  EXPECT_EQ(st_->write_at("a", "f", 19, tail, true), std::errc::invalid_argument);
  EXPECT_EQ(st_->write_at("a", "missing", 0, tail, true), std::errc::no_such_file_or_directory);
}

// fs_storage keeps the last write_at file open; every other change to that name must be seen.
TEST_P(storage_test, write_at_sees_changes_made_through_the_storage_in_between) {
  const std::string_view ten[] = {"0123456789"};
  const std::string_view two[] = {"ab"};
  ASSERT_FALSE(st_->write_file("a", "f", ten, true));
  ASSERT_FALSE(st_->write_at("a", "f", 10, two, true));
  ASSERT_FALSE(st_->append_file("a", "f", "XY", true));  // the size grew behind write_at
  ASSERT_FALSE(st_->write_at("a", "f", 14, two, true));
  EXPECT_EQ(read_all("a", "f"), "0123456789abXYab");
  ASSERT_FALSE(st_->write_file("a", "f", two, true));  // truncated and rewritten
  EXPECT_EQ(st_->write_at("a", "f", 3, two, true), std::errc::invalid_argument);
  ASSERT_FALSE(st_->write_at("a", "f", 2, two, true));
  EXPECT_EQ(read_all("a", "f"), "abab");
  ASSERT_FALSE(st_->write_file("a", "g", ten, true));
  ASSERT_FALSE(st_->rename("a", "g", "a", "f"));  // replaced by another file
  ASSERT_FALSE(st_->write_at("a", "f", 0, two, true));
  EXPECT_EQ(read_all("a", "f"), "ab23456789");
  ASSERT_FALSE(st_->rename("a", "f", "a", "h"));  // moved away
  EXPECT_EQ(st_->write_at("a", "f", 0, two, true), std::errc::no_such_file_or_directory);
  ASSERT_FALSE(st_->write_at("a", "h", 10, two, true));
  ASSERT_FALSE(st_->unlink("a", "h"));
  EXPECT_EQ(st_->write_at("a", "h", 0, two, true), std::errc::no_such_file_or_directory);
}

TEST_P(storage_test, rename_unlink_list) {
  const std::string_view pieces[] = {"1"};
  ASSERT_FALSE(st_->write_file("a", "x", pieces, true));
  ASSERT_FALSE(st_->write_file("b", "y", pieces, true));
  ASSERT_FALSE(st_->rename("a", "x", "b", "y"));  // replaces
  std::vector<std::string> names;
  ASSERT_FALSE(st_->list("a", names, 10));
  EXPECT_TRUE(names.empty());
  ASSERT_FALSE(st_->list("b", names, 10));
  EXPECT_EQ(names, std::vector<std::string>{"y"});
  ASSERT_FALSE(st_->unlink("b", "y"));
  EXPECT_EQ(st_->unlink("b", "y"), std::errc::no_such_file_or_directory);
  EXPECT_EQ(st_->rename("a", "nope", "b", "z"), std::errc::no_such_file_or_directory);
  ASSERT_FALSE(st_->sync_dir("a"));
}

TEST_P(storage_test, limits_are_errors) {
  const std::string_view pieces[] = {"0123456789"};
  ASSERT_FALSE(st_->write_file("a", "f", pieces, true));
  ASSERT_FALSE(st_->write_file("a", "g", pieces, true));
  std::string out;
  EXPECT_EQ(st_->read_file("a", "f", 9, out), std::errc::file_too_large);
  std::vector<std::string> names;
  EXPECT_EQ(st_->list("a", names, 1), std::errc::value_too_large);
  EXPECT_EQ(st_->read_file("a", "nope", 9, out), std::errc::no_such_file_or_directory);
}

TEST_P(storage_test, fault_injection_fails_nth_operation_sticky) {
  const std::string_view pieces[] = {"data"};
  st_->faults().fail_at(2, std::make_error_code(std::errc::io_error),
                        storage_op::write | storage_op::fsync);
  EXPECT_FALSE(st_->write_file("a", "f1", pieces, true));                    // write #0, fsync #1
  EXPECT_EQ(st_->write_file("a", "f2", pieces, true), std::errc::io_error);  // write #2
  EXPECT_EQ(st_->append_file("a", "f1", "x", false), std::errc::io_error);   // sticky
  EXPECT_FALSE(st_->sync_dir("a"));  // not selected by the mask
  st_->faults().disarm();
  EXPECT_FALSE(st_->append_file("a", "f1", "x", true));
}

TEST_P(storage_test, fault_injection_can_fail_once_with_enospc) {
  const std::string_view pieces[] = {"data"};
  st_->faults().fail_at(0, std::make_error_code(std::errc::no_space_on_device),
                        static_cast<unsigned>(storage_op::fsync), false);
  EXPECT_EQ(st_->write_file("a", "f", pieces, true), std::errc::no_space_on_device);
  EXPECT_FALSE(st_->write_file("a", "f", pieces, true));
}

TEST_P(storage_test, counts_operations_by_kind) {
  st_->faults().reset_counts();
  const std::string_view pieces[] = {"data"};
  ASSERT_FALSE(st_->write_file("a", "f", pieces, true));
  ASSERT_FALSE(st_->write_file("a", "g", pieces, false));
  ASSERT_FALSE(st_->sync_dir("a"));
  EXPECT_EQ(st_->faults().count(storage_op::write), 2u);
  EXPECT_EQ(st_->faults().count(storage_op::fsync), 1u);
  EXPECT_EQ(st_->faults().count(storage_op::sync_dir), 1u);
}

TEST_P(storage_test, free_space_reports_blocks) {
  space_info s;
  ASSERT_FALSE(st_->free_space(s));
  EXPECT_GT(s.block_bytes, 0u);
  EXPECT_GT(s.blocks_free, 0u);
}

INSTANTIATE_TEST_SUITE_P(both, storage_test, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "fs" : "mem"; });

// The durability model of mem_storage.

struct mem_crash_test : ::testing::Test {
  void SetUp() override {
    ASSERT_FALSE(st.make_dir("a"));
    ASSERT_FALSE(st.make_dir("b"));
  }
  void write(std::string_view dir, std::string_view name, std::string_view data, bool sync) {
    const std::string_view pieces[] = {data};
    ASSERT_FALSE(st.write_file(dir, name, pieces, sync));
  }
  std::string content(std::string_view dir, std::string_view name) {
    std::string out;
    EXPECT_FALSE(st.read_file(dir, name, 1 << 20, out));
    return out;
  }
  mem_storage st;
};

TEST_F(mem_crash_test, unsynced_file_and_entry_are_lost) {
  write("a", "f", "data", false);
  st.crash();
  EXPECT_FALSE(st.exists("a", "f"));
}

TEST_F(mem_crash_test, synced_file_without_directory_sync_is_lost) {
  write("a", "f", "data", true);
  st.crash();
  EXPECT_FALSE(st.exists("a", "f"));
}

TEST_F(mem_crash_test, directory_sync_without_file_sync_leaves_empty_file) {
  write("a", "f", "data", false);
  ASSERT_FALSE(st.sync_dir("a"));
  st.crash();
  ASSERT_TRUE(st.exists("a", "f"));
  EXPECT_EQ(content("a", "f"), "");
}

TEST_F(mem_crash_test, synced_file_and_directory_survive) {
  write("a", "f", "data", true);
  ASSERT_FALSE(st.sync_dir("a"));
  st.crash();
  EXPECT_EQ(content("a", "f"), "data");
}

TEST_F(mem_crash_test, appends_survive_only_when_synced) {
  write("a", "f", "base", true);
  ASSERT_FALSE(st.sync_dir("a"));
  ASSERT_FALSE(st.append_file("a", "f", "+1", true));
  ASSERT_FALSE(st.append_file("a", "f", "+2", false));
  st.crash();
  EXPECT_EQ(content("a", "f"), "base+1");
}

TEST_F(mem_crash_test, overwrites_survive_only_when_synced) {
  write("a", "f", std::string(6, '\0'), true);
  ASSERT_FALSE(st.sync_dir("a"));
  const std::string_view one[] = {"AB"};
  ASSERT_FALSE(st.write_at("a", "f", 0, one, true));
  const std::string_view two[] = {"CD"};
  ASSERT_FALSE(st.write_at("a", "f", 2, two, false));
  st.crash();
  EXPECT_EQ(content("a", "f"), std::string("AB\0\0\0\0", 6));
}

TEST_F(mem_crash_test, unsynced_rename_and_unlink_revert) {
  write("a", "f", "F", true);
  write("a", "g", "G", true);
  ASSERT_FALSE(st.sync_dir("a"));
  ASSERT_FALSE(st.rename("a", "f", "a", "f2"));
  ASSERT_FALSE(st.unlink("a", "g"));
  st.crash();
  EXPECT_EQ(content("a", "f"), "F");
  EXPECT_FALSE(st.exists("a", "f2"));
  EXPECT_EQ(content("a", "g"), "G");
}

TEST_F(mem_crash_test, cross_directory_rename_with_only_target_synced_leaves_two_names) {
  write("a", "f", "F", true);
  ASSERT_FALSE(st.sync_dir("a"));
  ASSERT_FALSE(st.rename("a", "f", "b", "f"));
  ASSERT_FALSE(st.sync_dir("b"));
  st.crash();
  EXPECT_TRUE(st.exists("a", "f"));
  EXPECT_TRUE(st.exists("b", "f"));
  // One inode: an append through one name shows through the other.
  ASSERT_FALSE(st.append_file("a", "f", "+", true));
  EXPECT_EQ(content("b", "f"), "F+");
}

TEST_F(mem_crash_test, crash_disarms_faults) {
  st.faults().fail_at(0, std::make_error_code(std::errc::io_error));
  const std::string_view pieces[] = {"x"};
  EXPECT_EQ(st.write_file("a", "f", pieces, true), std::errc::io_error);
  st.crash();
  EXPECT_FALSE(st.write_file("a", "f", pieces, true));
}

}  // namespace
}  // namespace relaylab::queue
