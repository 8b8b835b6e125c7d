#include "relay/queue/spool.hpp"

#include "relay/queue/test_support.hpp"

#include <gtest/gtest.h>

#include <future>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <optional>
#include <thread>

namespace relaylab::queue {
namespace {

using testing::commit_now;
using testing::commit_probe;
using testing::make_message;
using testing::manual_clock;
using testing::seeded_random;
using testing::temp_dir;

const std::string body = "Subject: hello\r\n\r\nhello world\r\n";

std::string content_of(spool& s, std::string_view id) {
  queued_message m;
  EXPECT_FALSE(s.load(id, m));
  std::string all, chunk;
  for (std::uint64_t off = 0; off < m.file.content_bytes; off += chunk.size()) {
    EXPECT_FALSE(s.read_content(m, off, 7, chunk));  // small chunks: exercises streaming
    if (chunk.empty()) break;
    all += chunk;
  }
  return all;
}

// Round trips that must behave the same on both storages.
class spool_both_test : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (GetParam()) {
      dir_ = std::make_unique<temp_dir>();
      st_ = std::make_unique<fs_storage>(dir_->path());
    } else {
      st_ = std::make_unique<mem_storage>();
    }
    reopen();
  }
  void reopen(commit_mode mode = commit_mode::immediate) {
    sp_.reset();
    spool_options o;
    o.mode = mode;
    sp_ = std::make_unique<spool>(*st_, clock_.function(), seeded_random(1), o);
    ASSERT_FALSE(sp_->open());
    recovery_report r;
    ASSERT_FALSE(sp_->recover(r));
    report_ = r;
  }
  manual_clock clock_;
  std::unique_ptr<temp_dir> dir_;
  std::unique_ptr<storage> st_;
  std::unique_ptr<spool> sp_;
  recovery_report report_;
};

TEST_P(spool_both_test, commit_load_and_stream_content) {
  auto m = make_message(*sp_, "alice@example.net", {"bob@example.org", "carol@example.org"}, body);
  const std::string id = m.queue_id();
  const auto arrival = m.arrival();
  commit_probe probe;
  sp_->commit(std::move(m), probe.callback());
  ASSERT_TRUE(probe.called);  // immediate mode: durable before commit() returns
  ASSERT_FALSE(probe.status.ec);
  EXPECT_EQ(sp_->state_of(id), queue_state::incoming);
  queued_message q;
  ASSERT_FALSE(sp_->load(id, q));
  EXPECT_EQ(q.file.env.sender, "alice@example.net");
  EXPECT_EQ(q.file.env.arrival, arrival);
  ASSERT_EQ(q.file.env.recipients.size(), 2u);
  EXPECT_EQ(q.file.env.attributes.at(2).second, "smtp-auth@example.com");
  EXPECT_EQ(content_of(*sp_, id), body);
}

TEST_P(spool_both_test, lifecycle_survives_restart) {
  auto m = make_message(*sp_, "", {"a@x", "b@x", "c@x"}, body);
  const std::string id = m.queue_id();
  ASSERT_FALSE(commit_now(*sp_, std::move(m)).ec);
  ASSERT_FALSE(sp_->activate(id));
  EXPECT_EQ(sp_->activate(id), errc::invalid_state);
  std::size_t left = 0;
  const std::uint32_t first[] = {0};
  ASSERT_FALSE(sp_->mark_done(id, first, done_outcome::delivered, &left));
  EXPECT_EQ(left, 2u);
  const recipient_reason why[] = {{1, "connect to x[192.0.2.1]:25: Connection timed out"},
                                  {2, "connect to x[192.0.2.1]:25: Connection timed out"}};
  const time_point next = clock_.now + std::chrono::minutes(5);
  ASSERT_FALSE(sp_->defer(id, next, why));
  EXPECT_EQ(sp_->state_of(id), queue_state::deferred);

  reopen();  // a clean restart
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].queue_id, id);
  EXPECT_EQ(report_.messages[0].state, queue_state::deferred);
  EXPECT_EQ(report_.messages[0].recipients_undone, 2u);
  EXPECT_EQ(report_.messages[0].attempts, 1u);
  EXPECT_EQ(report_.messages[0].next_attempt, next);

  ASSERT_FALSE(sp_->activate(id));
  const std::uint32_t rest[] = {1, 2};
  ASSERT_FALSE(sp_->mark_done(id, rest, done_outcome::delivered, &left));
  EXPECT_EQ(left, 0u);
  ASSERT_FALSE(sp_->remove(id));
  EXPECT_FALSE(sp_->state_of(id));
  EXPECT_EQ(sp_->remove(id), errc::not_found);
  reopen();
  EXPECT_TRUE(report_.messages.empty());
}

TEST_P(spool_both_test, active_mail_returns_to_incoming_after_restart) {
  auto m = make_message(*sp_, "s@x", {"r@x"}, body);
  const std::string id = m.queue_id();
  ASSERT_FALSE(commit_now(*sp_, std::move(m)).ec);
  ASSERT_FALSE(sp_->activate(id));
  reopen();
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].state, queue_state::incoming);
  EXPECT_EQ(content_of(*sp_, id), body);
}

TEST_P(spool_both_test, abandoned_message_leaves_nothing) {
  { auto m = make_message(*sp_, "s@x", {"r@x"}, body); }
  std::vector<std::string> names;
  ASSERT_FALSE(st_->list("incoming", names, 10));
  EXPECT_TRUE(names.empty());
  EXPECT_EQ(sp_->message_count(), 0u);
}

TEST_P(spool_both_test, queued_mode_completes_only_on_run) {
  reopen(commit_mode::queued);
  commit_probe probe;
  auto m = make_message(*sp_, "s@x", {"r@x"}, body);
  const std::string id = m.queue_id();
  sp_->commit(std::move(m), probe.callback());
  EXPECT_FALSE(probe.called);
  EXPECT_FALSE(sp_->state_of(id));
  EXPECT_EQ(sp_->pending_commits(), 1u);
  EXPECT_EQ(sp_->run_once(), 1u);
  ASSERT_TRUE(probe.called);
  EXPECT_FALSE(probe.status.ec);
  EXPECT_EQ(sp_->state_of(id), queue_state::incoming);
}

INSTANTIATE_TEST_SUITE_P(both, spool_both_test, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "fs" : "mem"; });

// mem_storage only: fsync accounting, faults, crashes.

class spool_test : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }
  void reopen(spool_options o = immediate()) {
    sp_.reset();
    sp_ = std::make_unique<spool>(st_, clock_.function(), seeded_random(seed_++), o);
    ASSERT_FALSE(sp_->open());
    ASSERT_FALSE(sp_->recover(report_));
  }
  static spool_options immediate() {
    spool_options o;
    o.mode = commit_mode::immediate;
    return o;
  }
  std::string committed(std::vector<std::string> rcpts = {"r@x"}) {
    auto m = make_message(*sp_, "s@x", std::move(rcpts), body);
    std::string id = m.queue_id();
    EXPECT_FALSE(commit_now(*sp_, std::move(m)).ec);
    return id;
  }
  /// A background journal committer whose commit delay (an hour) only the messages being
  /// received, `siblings` of them at least, or a stop can end.
  void start_with_hour_commit_delay(std::size_t siblings) {
    spool_options o;
    o.mode = commit_mode::queued;
    o.journal = true;
    o.commit_delay_us = std::chrono::hours(1);
    o.commit_siblings = siblings;
    reopen(o);
    sp_->start_background();
  }
  manual_clock clock_;
  mem_storage st_;
  std::unique_ptr<spool> sp_;
  recovery_report report_;
  std::uint64_t seed_ = 1;
};

TEST_F(spool_test, group_commit_uses_one_directory_fsync_per_batch) {
  spool_options o;
  o.mode = commit_mode::queued;
  o.commit_batch_max = 8;
  reopen(o);
  std::vector<commit_probe> probes(20);
  for (auto& p : probes) sp_->commit(make_message(*sp_, "s@x", {"r@x"}, body), p.callback());
  st_.faults().reset_counts();
  EXPECT_EQ(sp_->run_once(), 8u);
  EXPECT_EQ(st_.faults().count(storage_op::fsync), 8u);
  EXPECT_EQ(st_.faults().count(storage_op::write), 8u);
  EXPECT_EQ(st_.faults().count(storage_op::sync_dir), 1u);
  EXPECT_EQ(sp_->flush(), 12u);
  EXPECT_EQ(st_.faults().count(storage_op::sync_dir), 3u);  // batches of 8, 8, 4
  for (auto& p : probes) EXPECT_TRUE(p.called && !p.status.ec);
  EXPECT_EQ(sp_->message_count(), 20u);
}

TEST_F(spool_test, ungrouped_mode_syncs_the_directory_per_message) {
  spool_options o;
  o.mode = commit_mode::queued;
  o.commit_batch_max = 1;
  reopen(o);
  for (int i = 0; i < 5; ++i)
    sp_->commit(make_message(*sp_, "s@x", {"r@x"}, body), [](const commit_status&) {});
  st_.faults().reset_counts();
  EXPECT_EQ(sp_->flush(), 5u);
  EXPECT_EQ(st_.faults().count(storage_op::sync_dir), 5u);
  EXPECT_EQ(st_.faults().count(storage_op::fsync), 5u);
}

TEST_F(spool_test, callbacks_run_only_after_the_directory_is_durable) {
  spool_options o;
  o.mode = commit_mode::queued;
  reopen(o);
  bool durable_at_callback = false;
  auto m = make_message(*sp_, "s@x", {"r@x"}, body);
  const std::string id = m.queue_id();
  sp_->commit(std::move(m), [&](const commit_status& s) {
    ASSERT_FALSE(s.ec);
    durable_at_callback = st_.faults().count(storage_op::sync_dir) > 0;
  });
  st_.faults().reset_counts();
  sp_->flush();
  EXPECT_TRUE(durable_at_callback);
  st_.crash();
  reopen();
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].queue_id, id);
}

TEST_F(spool_test, complete_shares_the_directory_fsync_with_commits) {
  spool_options o;
  o.mode = commit_mode::queued;
  reopen(o);
  std::vector<std::string> done_ids;
  for (int i = 0; i < 3; ++i) {
    auto m = make_message(*sp_, "s@x", {"r@x"}, body);
    done_ids.push_back(m.queue_id());
    sp_->commit(std::move(m), [](const commit_status&) {});
  }
  sp_->flush();
  for (const auto& id : done_ids) ASSERT_FALSE(sp_->activate(id));
  // Two new messages and three completions: one batch, one fsync of incoming/, no done marks.
  std::vector<commit_probe> commits(2), completions(3);
  for (auto& p : commits) sp_->commit(make_message(*sp_, "s@x", {"r@x"}, body), p.callback());
  for (std::size_t i = 0; i < done_ids.size(); ++i)
    sp_->complete(done_ids[i], completions[i].callback());
  EXPECT_FALSE(completions[0].called);  // queued: nothing durable yet
  st_.faults().reset_counts();
  EXPECT_EQ(sp_->run_once(), 5u);
  EXPECT_EQ(st_.faults().count(storage_op::sync_dir), 1u);
  EXPECT_EQ(st_.faults().count(storage_op::unlink), 3u);
  EXPECT_EQ(st_.faults().count(storage_op::fsync), 2u);  // the two new files only
  for (auto& p : commits) EXPECT_TRUE(p.called && !p.status.ec);
  for (auto& p : completions) EXPECT_TRUE(p.called && !p.status.ec);
  for (const auto& id : done_ids) EXPECT_FALSE(sp_->state_of(id));
  st_.crash();
  reopen();
  EXPECT_EQ(report_.messages.size(), 2u);  // the completed three stay gone
}

TEST_F(spool_test, complete_not_yet_durable_brings_the_message_back_after_a_crash) {
  spool_options o;
  o.mode = commit_mode::queued;
  reopen(o);
  auto m = make_message(*sp_, "s@x", {"a@x", "b@x"}, body);
  const std::string id = m.queue_id();
  sp_->commit(std::move(m), [](const commit_status&) {});
  sp_->flush();
  ASSERT_FALSE(sp_->activate(id));
  commit_probe probe;
  sp_->complete(id, probe.callback());
  EXPECT_FALSE(probe.called);
  st_.crash();  // before the committer ran: the caller was never told, so it logged nothing
  sp_.reset();
  reopen();
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].recipients_undone, 2u);  // delivered again: at least once
}

TEST_F(spool_test, complete_of_deferred_mail_syncs_both_directories) {
  const std::string id = committed();
  ASSERT_FALSE(sp_->activate(id));
  const recipient_reason why[] = {{0, "try later"}};
  ASSERT_FALSE(sp_->defer(id, clock_.now + std::chrono::minutes(5), why));
  ASSERT_FALSE(sp_->activate(id));
  EXPECT_TRUE(st_.exists("deferred", id));  // activate() left it there
  st_.faults().reset_counts();
  commit_probe probe;
  sp_->complete(id, probe.callback());
  ASSERT_TRUE(probe.called);
  EXPECT_FALSE(probe.status.ec);
  EXPECT_EQ(st_.faults().count(storage_op::sync_dir), 2u);  // incoming/ and deferred/
  st_.crash();
  reopen();
  EXPECT_TRUE(report_.messages.empty());
  EXPECT_FALSE(st_.exists("deferred", id));
}

TEST_F(spool_test, complete_of_an_unknown_message_reports_not_found) {
  commit_probe probe;
  sp_->complete("ABCDEF123456", probe.callback());
  ASSERT_TRUE(probe.called);
  EXPECT_EQ(probe.status.ec, errc::not_found);
}

TEST_F(spool_test, cache_serves_the_first_delivery_without_reading_storage) {
  spool_options o = immediate();
  o.cache_bytes_max = 1 << 20;
  reopen(o);
  const std::string id = committed({"a@x", "b@x"});
  st_.faults().reset_counts();
  EXPECT_EQ(content_of(*sp_, id), body);
  queued_message q;
  ASSERT_FALSE(sp_->load(id, q));
  EXPECT_EQ(q.file.env.recipients.size(), 2u);
  EXPECT_EQ(st_.faults().count(storage_op::read), 0u);
  // A done mark changes the file: from then on the storage is read again.
  const std::uint32_t first[] = {0};
  ASSERT_FALSE(sp_->mark_done(id, first, done_outcome::delivered));
  ASSERT_FALSE(sp_->load(id, q));
  EXPECT_TRUE(q.file.status[0].done);
  EXPECT_EQ(content_of(*sp_, id), body);
  EXPECT_GT(st_.faults().count(storage_op::read), 0u);
}

TEST_F(spool_test, cache_stays_within_its_budget) {
  spool_options o = immediate();
  o.cache_bytes_max = 300;  // room for about one small queue file
  reopen(o);
  const std::string a = committed();
  const std::string b = committed();
  st_.faults().reset_counts();
  EXPECT_EQ(content_of(*sp_, a), body);
  EXPECT_EQ(st_.faults().count(storage_op::read), 0u);
  EXPECT_EQ(content_of(*sp_, b), body);
  EXPECT_GT(st_.faults().count(storage_op::read), 0u);  // b did not fit
  // Removing a frees its share for the next message.
  ASSERT_FALSE(sp_->remove(a));
  const std::string c = committed();
  st_.faults().reset_counts();
  EXPECT_EQ(content_of(*sp_, c), body);
  EXPECT_EQ(st_.faults().count(storage_op::read), 0u);
}

spool_options journal_options(std::size_t batch_max = 256) {
  spool_options o;
  o.mode = commit_mode::queued;
  o.journal = true;
  o.commit_batch_max = batch_max;
  return o;
}

TEST_F(spool_test, journal_makes_a_whole_group_durable_with_one_fdatasync) {
  reopen(journal_options());
  std::vector<commit_probe> first(10), second(10);
  for (auto& p : first) sp_->commit(make_message(*sp_, "s@x", {"r@x"}, body), p.callback());
  st_.faults().reset_counts();
  EXPECT_EQ(sp_->run_once(), 10u);
  // A new segment: one write + fsync, and its directory entry.
  EXPECT_EQ(st_.faults().count(storage_op::fsync), 1u);
  EXPECT_EQ(st_.faults().count(storage_op::sync_dir), 1u);
  EXPECT_EQ(st_.faults().count(storage_op::rename), 0u);
  for (auto& p : second) sp_->commit(make_message(*sp_, "s@x", {"r@x"}, body), p.callback());
  st_.faults().reset_counts();
  EXPECT_EQ(sp_->run_once(), 10u);
  EXPECT_EQ(st_.faults().count(storage_op::fsync), 1u);  // one append to the same segment
  EXPECT_EQ(st_.faults().count(storage_op::sync_dir), 0u);
  for (auto& p : first) EXPECT_TRUE(p.called && !p.status.ec);
  for (auto& p : second) EXPECT_TRUE(p.called && !p.status.ec);
  std::vector<std::string> files;
  ASSERT_FALSE(st_.list("incoming", files, 100));
  EXPECT_TRUE(files.empty());  // no file per message
}

TEST_F(spool_test, preallocated_journal_overwrites_zeros_and_survives_a_crash) {
  spool_options o = journal_options();
  o.journal_preallocate_bytes = 8192;
  reopen(o);
  std::vector<std::string> ids;
  auto commit_one = [&](int i) {
    auto m = make_message(*sp_, "s@x", {"a@x"}, body + std::to_string(i));
    ids.push_back(m.queue_id());
    sp_->commit(std::move(m), [](const commit_status& s) { EXPECT_FALSE(s.ec); });
    sp_->flush();
  };
  commit_one(0);
  std::vector<std::string> segments;
  ASSERT_FALSE(st_.list("journal", segments, 100));
  ASSERT_EQ(segments.size(), 1u);
  std::string bytes;
  ASSERT_FALSE(st_.read_file("journal", segments[0], 1 << 20, bytes));
  // The zeros ahead fill whole blocks, at least one preallocation step past the record.
  EXPECT_EQ(bytes.size() % 4096, 0u);
  const std::uint64_t first_size = bytes.size();
  EXPECT_GE(first_size, 8192u);
  EXPECT_EQ(bytes.back(), '\0');
  // Later groups overwrite the zeros: still one fdatasync each, the file does not grow until
  // the zeros run out, then it grows by another step.
  st_.faults().reset_counts();
  commit_one(1);
  EXPECT_EQ(st_.faults().count(storage_op::fsync), 1u);
  ASSERT_FALSE(st_.read_file("journal", segments[0], 1 << 20, bytes));
  EXPECT_EQ(bytes.size(), first_size);
  int n = 2;
  for (; n < 500 && bytes.size() == first_size; ++n) {
    commit_one(n);
    ASSERT_FALSE(st_.read_file("journal", segments[0], 1 << 20, bytes));
  }
  EXPECT_GT(bytes.size(), first_size);
  EXPECT_EQ(bytes.size() % 4096, 0u);
  for (int i = 0; i < n; ++i) EXPECT_EQ(content_of(*sp_, ids[i]), body + std::to_string(i));
  st_.crash();
  reopen(o);
  EXPECT_EQ(report_.journal_messages, static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(content_of(*sp_, ids[i]), body + std::to_string(i));
}

TEST_F(spool_test, journal_messages_are_delivered_from_the_segment_and_survive_a_crash) {
  reopen(journal_options());
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto m = make_message(*sp_, "s@x", {"a@x", "b@x"}, body + std::to_string(i));
    ids.push_back(m.queue_id());
    sp_->commit(std::move(m), [](const commit_status&) {});
  }
  sp_->flush();
  for (int i = 0; i < 5; ++i) EXPECT_EQ(content_of(*sp_, ids[i]), body + std::to_string(i));
  // ids[0]: delivered to everyone; ids[1]: one recipient done (gets its own file);
  // ids[2]: deferred (file in deferred/); the rest untouched.
  ASSERT_FALSE(sp_->activate(ids[0]));
  sp_->complete(ids[0], [](const commit_status& s) { EXPECT_FALSE(s.ec); });
  sp_->flush();
  const std::uint32_t first[] = {0};
  ASSERT_FALSE(sp_->mark_done(ids[1], first, done_outcome::delivered));
  EXPECT_TRUE(st_.exists("incoming", ids[1]));
  const recipient_reason why[] = {{0, "try later"}, {1, "try later"}};
  ASSERT_FALSE(sp_->defer(ids[2], clock_.now + std::chrono::minutes(5), why));
  EXPECT_TRUE(st_.exists("deferred", ids[2]));
  st_.crash();
  reopen(journal_options());
  EXPECT_EQ(report_.messages.size(), 4u);
  EXPECT_EQ(report_.journal_messages, 2u);  // ids[3], ids[4]
  EXPECT_GE(report_.journal_segments_removed, 1u);
  EXPECT_FALSE(sp_->state_of(ids[0]));
  EXPECT_EQ(sp_->state_of(ids[2]), queue_state::deferred);
  queued_message q;
  ASSERT_FALSE(sp_->load(ids[1], q));
  EXPECT_TRUE(q.file.status[0].done);
  EXPECT_FALSE(q.file.status[1].done);
  for (int i = 1; i < 5; ++i) EXPECT_EQ(content_of(*sp_, ids[i]), body + std::to_string(i));
  std::vector<std::string> segments;
  ASSERT_FALSE(st_.list("journal", segments, 100));
  EXPECT_TRUE(segments.empty());
}

TEST_F(spool_test, journal_segments_rotate_and_retire_oldest_first) {
  spool_options o = journal_options(1);
  o.journal_segment_bytes_max = 1;  // every group commit starts a new segment
  reopen(o);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto m = make_message(*sp_, "s@x", {"r@x"}, body);
    ids.push_back(m.queue_id());
    sp_->commit(std::move(m), [](const commit_status&) {});
    sp_->flush();
  }
  std::vector<std::string> segments;
  ASSERT_FALSE(st_.list("journal", segments, 100));
  EXPECT_EQ(segments.size(), 3u);
  // The second message leaves first: its segment stays, because the oldest still holds ids[0].
  sp_->complete(ids[1], [](const commit_status&) {});
  sp_->flush();
  ASSERT_FALSE(st_.list("journal", segments, 100));
  EXPECT_EQ(segments.size(), 4u);  // + the segment with the 'X' record
  sp_->complete(ids[0], [](const commit_status&) {});
  sp_->flush();
  ASSERT_FALSE(st_.list("journal", segments, 100));
  // Segments 1 and 2 went (oldest first); 3 holds ids[2]; 4 and 5 are younger.
  std::sort(segments.begin(), segments.end());
  ASSERT_FALSE(segments.empty());
  EXPECT_EQ(segments.front(), "J0000000000000003");
  st_.crash();
  reopen(journal_options());
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].queue_id, ids[2]);
}

TEST_F(spool_test, journal_list_shows_journal_only_mail_to_another_process) {
  reopen(journal_options());
  auto m = make_message(*sp_, "alice@x", {"r@x"}, body);
  const std::string id = m.queue_id();
  sp_->commit(std::move(m), [](const commit_status&) {});
  sp_->flush();
  spool reader(st_, clock_.function(), seeded_random(99), immediate());  // like `queue list`
  std::vector<queue_entry> entries;
  ASSERT_FALSE(reader.list(entries));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].queue_id, id);
  EXPECT_EQ(entries[0].sender, "alice@x");
  EXPECT_EQ(entries[0].state, queue_state::incoming);
}

TEST_F(spool_test, journal_remove_of_journal_only_mail_is_durable) {
  reopen(journal_options());
  auto m = make_message(*sp_, "s@x", {"r@x"}, body);
  const std::string id = m.queue_id();
  sp_->commit(std::move(m), [](const commit_status&) {});
  sp_->flush();
  ASSERT_FALSE(sp_->remove(id));  // postsuper -d
  EXPECT_FALSE(sp_->state_of(id));
  st_.crash();
  reopen(journal_options());
  EXPECT_TRUE(report_.messages.empty());
}

TEST_F(spool_test, journal_torn_tail_keeps_every_acknowledged_message) {
  reopen(journal_options());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto m = make_message(*sp_, "s@x", {"r@x"}, body);
    ids.push_back(m.queue_id());
    sp_->commit(std::move(m), [](const commit_status&) {});
  }
  sp_->flush();
  // A later group whose append never became durable, simulated by garbage after the end.
  ASSERT_FALSE(st_.append_file("journal", "J0000000000000001", "Q\x40\x00\x00\x00torn", true));
  st_.crash();
  reopen(journal_options());
  EXPECT_EQ(report_.messages.size(), 3u);
  EXPECT_TRUE(report_.quarantined_files.empty());
}

TEST_F(spool_test, background_committer_serves_many_threads) {
  spool_options o;
  o.mode = commit_mode::queued;
  reopen(o);
  sp_->start_background();
  constexpr int threads = 4, per_thread = 25;
  std::mutex mu;
  std::condition_variable cv;
  int ok = 0, failed = 0;
  std::thread::id committer_thread;
  std::vector<std::thread> senders;
  for (int t = 0; t < threads; ++t)
    senders.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) {
        incoming_message m;
        ASSERT_FALSE(sp_->begin(m));
        m.set_sender("s@x");
        ASSERT_FALSE(m.add_recipient({"r@x", "", 0}));
        ASSERT_FALSE(m.append_content(body));
        sp_->commit(std::move(m), [&](const commit_status& s) {
          std::lock_guard lock(mu);
          (s.ec ? failed : ok)++;
          committer_thread = std::this_thread::get_id();
          cv.notify_all();
        });
      }
    });
  for (auto& t : senders) t.join();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60),
                            [&] { return ok + failed == threads * per_thread; }));
  }
  sp_->stop_background();
  EXPECT_EQ(ok, threads * per_thread);
  EXPECT_NE(committer_thread, std::this_thread::get_id());
  EXPECT_EQ(sp_->message_count(), static_cast<std::size_t>(threads * per_thread));
  EXPECT_LE(st_.faults().count(storage_op::sync_dir),
            static_cast<std::uint64_t>(threads * per_thread));
}

TEST_F(spool_test, background_completions_wait_for_new_mail_to_share_its_fdatasync) {
  spool_options o = journal_options();
  o.completion_delay_us = std::chrono::hours(1);  // only new mail or a stop ends the wait
  reopen(o);
  sp_->start_background();
  auto commit_and_wait = [&] {
    auto m = make_message(*sp_, "s@x", {"r@x"}, body);
    const std::string id = m.queue_id();
    std::promise<void> p;
    sp_->commit(std::move(m), [&](const commit_status& s) {
      EXPECT_FALSE(s.ec);
      p.set_value();
    });
    EXPECT_EQ(p.get_future().wait_for(std::chrono::seconds(60)), std::future_status::ready);
    return id;
  };
  const std::string first = commit_and_wait();
  ASSERT_FALSE(sp_->activate(first));
  std::promise<void> completed;
  auto completed_f = completed.get_future();
  sp_->complete(first, [&](const commit_status& s) {
    EXPECT_FALSE(s.ec);
    completed.set_value();
  });
  EXPECT_EQ(sp_->pending_commits(), 1u);  // held: nothing new to share a commit with
  st_.faults().reset_counts();
  const std::string second = commit_and_wait();
  ASSERT_EQ(completed_f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(st_.faults().count(storage_op::fsync), 1u);  // one group: 'X' and 'Q' together
  EXPECT_FALSE(sp_->state_of(first));
  // A stop does not wait for new mail: the held completion is committed.
  ASSERT_FALSE(sp_->activate(second));
  bool second_done = false;
  sp_->complete(second, [&](const commit_status& s) { second_done = !s.ec; });
  sp_->stop_background();
  EXPECT_TRUE(second_done);
  EXPECT_EQ(sp_->message_count(), 0u);
}

// Commits `m` on the background committer; the future is ready once `done` has run, and the
// commit must have succeeded.
std::future<void> commit_in_background(spool& s, incoming_message&& m) {
  auto p = std::make_shared<std::promise<void>>();
  auto f = p->get_future();
  s.commit(std::move(m), [p](const commit_status& st) {
    EXPECT_FALSE(st.ec);
    p->set_value();
  });
  return f;
}

// commit_delay_us: a commit waits for the messages still being received to join its group.
// The delay is an hour, so only those messages (committed or dropped) or a stop end the wait;
// the 60 s bounds turn a wait that does not end into a failure instead of a hang, and the
// 50 ms ones give the committer time to take the first commit (they pass vacuously if it has
// not run yet).
TEST_F(spool_test, commit_delay_groups_the_messages_being_received) {
  start_with_hour_commit_delay(1);
  auto first = make_message(*sp_, "s@x", {"r@x"}, body);
  auto second = make_message(*sp_, "s@x", {"r@x"}, body);
  st_.faults().reset_counts();
  auto f1 = commit_in_background(*sp_, std::move(first));
  // The committer holds the first: the second is still being received.
  EXPECT_EQ(f1.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  auto f2 = commit_in_background(*sp_, std::move(second));
  ASSERT_EQ(f1.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  ASSERT_EQ(f2.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(st_.faults().count(storage_op::fsync), 1u);  // one group for both
  sp_->stop_background();
  EXPECT_EQ(sp_->message_count(), 2u);
}

TEST_F(spool_test, commit_delay_ends_when_the_other_message_is_dropped) {
  start_with_hour_commit_delay(1);
  auto kept = make_message(*sp_, "s@x", {"r@x"}, body);
  std::optional<incoming_message> dropped = make_message(*sp_, "s@x", {"r@x"}, body);
  auto f = commit_in_background(*sp_, std::move(kept));
  EXPECT_EQ(f.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);  // held
  dropped.reset();  // RSET or a lost client: nothing left to wait for
  EXPECT_EQ(f.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  sp_->stop_background();
  EXPECT_EQ(sp_->message_count(), 1u);
}

TEST_F(spool_test, commit_delay_needs_commit_siblings_messages_being_received) {
  start_with_hour_commit_delay(2);
  auto m = make_message(*sp_, "s@x", {"r@x"}, body);
  auto other = make_message(*sp_, "s@x", {"r@x"}, body);  // one sibling: fewer than 2
  EXPECT_EQ(commit_in_background(*sp_, std::move(m)).wait_for(std::chrono::seconds(60)),
            std::future_status::ready);
  sp_->stop_background();
}

TEST_F(spool_test, stop_background_does_not_wait_out_a_commit_delay) {
  start_with_hour_commit_delay(1);
  auto m = make_message(*sp_, "s@x", {"r@x"}, body);
  auto other = make_message(*sp_, "s@x", {"r@x"}, body);
  auto f = commit_in_background(*sp_, std::move(m));
  sp_->stop_background();  // the held commit is made durable before it returns
  EXPECT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(sp_->message_count(), 1u);
}

TEST_F(spool_test, stop_background_completes_pending_commits) {
  spool_options o;
  o.mode = commit_mode::queued;
  reopen(o);
  std::atomic<int> done{0};
  for (int i = 0; i < 10; ++i)
    sp_->commit(make_message(*sp_, "s@x", {"r@x"}, body),
                [&](const commit_status& s) { done += s.ec ? 0 : 1; });
  sp_->start_background();
  sp_->stop_background();
  EXPECT_EQ(done.load(), 10);
  EXPECT_EQ(sp_->pending_commits(), 0u);
}

// Fail point loops: every storage operation of an operation fails once, in turn.

template <typename Setup, typename Operation>
int fail_point_loop(mem_storage& st, std::error_code error, Setup setup, Operation op,
                    bool sticky = true) {
  for (int n = 0; n < 100; ++n) {
    setup();
    st.faults().fail_at(static_cast<std::uint64_t>(n), error, storage_op_all, sticky);
    const bool ok = op(n);
    st.faults().disarm();
    if (ok) return n;
  }
  ADD_FAILURE() << "operation never succeeded";
  return -1;
}

TEST_F(spool_test, commit_fail_points_never_leave_a_half_message) {
  for (auto error : {std::errc::io_error, std::errc::no_space_on_device}) {
    const int n = fail_point_loop(
        st_, std::make_error_code(error), [] {},
        [&](int) {
          auto m = make_message(*sp_, "s@x", {"r@x"}, body);
          const std::string id = m.queue_id();
          const auto before = sp_->message_count();
          const auto s = commit_now(*sp_, std::move(m));
          st_.faults().disarm();
          std::vector<std::string> names;
          EXPECT_FALSE(st_.list("incoming", names, 1000));
          for (const auto& name : names) EXPECT_EQ(name.find(".tmp"), std::string::npos);
          if (s.ec) {
            EXPECT_EQ(s.ec, errc::write_error);
            EXPECT_EQ(s.cause, error);
            EXPECT_FALSE(st_.exists("incoming", id));
            EXPECT_EQ(sp_->message_count(), before);
            EXPECT_EQ(smtp_reply(s.ec), "451 4.3.0 Error: queue file write error");
            return false;
          }
          EXPECT_EQ(sp_->state_of(id), queue_state::incoming);
          return true;
        },
        false);       // fail once: the clean-up after the failure must work
    EXPECT_EQ(n, 5);  // free space, write, fsync, rename, directory fsync
  }
  // Whatever failed left nothing a restart would deliver.
  const auto good = sp_->message_count();
  st_.crash();
  reopen();
  EXPECT_EQ(report_.messages.size(), good);
}

TEST_F(spool_test, complete_fail_points_never_lose_undelivered_state) {
  const std::string id = committed({"a@x"});
  ASSERT_FALSE(sp_->activate(id));
  const int n = fail_point_loop(
      st_, std::make_error_code(std::errc::io_error), [] {},
      [&](int) {
        commit_probe probe;
        sp_->complete(id, probe.callback());
        EXPECT_TRUE(probe.called);
        if (probe.status.ec) {
          EXPECT_EQ(probe.status.ec, errc::write_error);
          EXPECT_TRUE(sp_->state_of(id));  // stays known until the deletion is durable
        }
        return !probe.status.ec;
      });
  EXPECT_EQ(n, 2);  // unlink, incoming/ fsync
  EXPECT_FALSE(sp_->state_of(id));
  st_.crash();
  reopen();
  EXPECT_TRUE(report_.messages.empty());
}

TEST_F(spool_test, mark_done_fail_points) {
  const std::string id = committed({"a@x", "b@x"});
  ASSERT_FALSE(sp_->activate(id));
  const std::uint32_t idx[] = {1};
  const int n = fail_point_loop(
      st_, std::make_error_code(std::errc::io_error), [] {},
      [&](int) {
        const auto ec = sp_->mark_done(id, idx, done_outcome::delivered);
        if (ec) {
          EXPECT_EQ(ec, errc::write_error);
        }
        return !ec;
      });
  EXPECT_EQ(n, 2);  // write, fdatasync
  st_.crash();
  reopen();
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].recipients_undone, 1u);
}

TEST_F(spool_test, defer_fail_points_keep_the_message) {
  const std::string id = committed();
  const recipient_reason why[] = {{0, "try later"}};
  const int n = fail_point_loop(
      st_, std::make_error_code(std::errc::io_error),
      [&] {
        if (sp_->state_of(id) != queue_state::active) {
          ASSERT_FALSE(sp_->activate(id));
        }
      },
      [&](int) { return !sp_->defer(id, clock_.now + std::chrono::minutes(5), why); });
  EXPECT_EQ(n, 4);  // write, fdatasync, rename, directory fsync
  EXPECT_EQ(sp_->state_of(id), queue_state::deferred);
  st_.crash();
  reopen();
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].state, queue_state::deferred);
  EXPECT_GE(report_.messages[0].attempts, 1u);
}

TEST_F(spool_test, activate_and_remove_fail_points) {
  const std::string id = committed();
  int n = fail_point_loop(
      st_, std::make_error_code(std::errc::io_error), [] {},
      [&](int) {
        EXPECT_FALSE(sp_->activate(id));
        return sp_->state_of(id) == queue_state::active;
      });
  EXPECT_EQ(n, 0);  // activate() touches no storage: the file stays in incoming/
  EXPECT_TRUE(st_.exists("incoming", id));
  n = fail_point_loop(
      st_, std::make_error_code(std::errc::io_error), [] {},
      [&](int) {
        const auto ec = sp_->remove(id);
        return !ec || ec == errc::not_found;
      });
  EXPECT_EQ(n, 4);  // unlink, three directory fsyncs
  EXPECT_FALSE(sp_->state_of(id));
  st_.crash();
  reopen();
  EXPECT_TRUE(report_.messages.empty());  // the successful remove was durable
}

TEST_F(spool_test, recovery_fail_points_never_lose_mail) {
  const std::string a = committed();
  const std::string b = committed();
  ASSERT_FALSE(sp_->activate(a));
  st_.put_durable("incoming", "ABCDEF123456.tmp", "partial");
  st_.put_durable("deferred", "junk-name", "x");
  for (int n = 0; n < 100; ++n) {
    spool fresh(st_, clock_.function(), seeded_random(3), immediate());
    st_.faults().fail_at(static_cast<std::uint64_t>(n), std::make_error_code(std::errc::io_error));
    recovery_report r;
    const auto ec = fresh.recover(r);
    st_.faults().disarm();
    st_.crash();  // whatever the failed attempt did must be crash-safe
    if (!ec && r.unreadable_files.empty()) break;
  }
  reopen();
  ASSERT_EQ(report_.messages.size(), 2u);
  EXPECT_EQ(content_of(*sp_, a), body);
  EXPECT_EQ(content_of(*sp_, b), body);
  EXPECT_FALSE(st_.exists("incoming", "ABCDEF123456.tmp"));
  EXPECT_TRUE(st_.exists("corrupt", "junk-name"));
}

// Space and limits.

TEST_F(spool_test, check_space_follows_postfix_smtpd_check_size) {
  spool_options o = immediate();
  o.queue_minfree_bytes = 40 * 4096;
  o.message_size_limit_bytes = 10240000;
  reopen(o);
  st_.set_space({4096, 100});
  EXPECT_FALSE(sp_->check_space(0));
  EXPECT_FALSE(sp_->check_space(49 * 4096 - 1));  // 48 blocks < 100/2 and < 100-40
  EXPECT_EQ(sp_->check_space(50 * 4096), errc::insufficient_space);  // half the free space
  EXPECT_EQ(sp_->check_space(10240001), errc::message_too_large);
  st_.set_space({4096, 40});  // at queue_minfree
  EXPECT_EQ(sp_->check_space(0), errc::insufficient_space);
  EXPECT_EQ(smtp_reply(sp_->check_space(0)), "452 4.3.1 Insufficient system storage");
  st_.set_space({4096, 70});
  EXPECT_EQ(sp_->check_space(30 * 4096), errc::insufficient_space);  // eats into minfree
  st_.faults().fail_at(0, std::make_error_code(std::errc::io_error),
                       static_cast<unsigned>(storage_op::space));
  EXPECT_EQ(sp_->check_space(0), errc::write_error);
}

TEST_F(spool_test, a_free_space_sample_serves_until_it_expires_less_what_was_committed) {
  spool_options o = immediate();
  o.queue_minfree_bytes = 10 * 4096;
  o.free_space_sample_ms = std::chrono::milliseconds(1000);
  reopen(o);
  st_.set_space({4096, 100});
  EXPECT_FALSE(sp_->check_space(0));  // reads 100 free blocks
  st_.set_space({4096, 5});           // another writer fills the disk
  EXPECT_FALSE(sp_->check_space(0));  // not seen within the sample's lifetime
  // Our own commits are subtracted at once: 40 blocks of content and the envelope leave 59.
  const std::string big(40 * 4096, 'x');
  auto m = make_message(*sp_, "s@x", {"r@x"}, big);
  ASSERT_FALSE(commit_now(*sp_, std::move(m)).ec);
  EXPECT_EQ(sp_->check_space(30 * 4096), errc::insufficient_space);  // half of the 59 left
  EXPECT_FALSE(sp_->check_space(20 * 4096));
  clock_.now += std::chrono::milliseconds(1000);  // the sample expired: the disk is read again
  EXPECT_EQ(sp_->check_space(0), errc::insufficient_space);
  st_.set_space({4096, 100});
  EXPECT_EQ(sp_->check_space(0), errc::insufficient_space);  // the new sample serves
  clock_.now -= std::chrono::seconds(5);                     // a clock stepped back reads it again
  EXPECT_FALSE(sp_->check_space(0));
  st_.faults().fail_at(0, std::make_error_code(std::errc::io_error),
                       static_cast<unsigned>(storage_op::space));
  clock_.now += std::chrono::seconds(10);
  EXPECT_EQ(sp_->check_space(0), errc::write_error);  // a failed reading is not cached
  st_.faults().disarm();
  EXPECT_FALSE(sp_->check_space(0));
}

TEST_F(spool_test, commit_refuses_when_space_is_short) {
  spool_options o = immediate();
  o.queue_minfree_bytes = 10 * 4096;
  reopen(o);
  st_.set_space({4096, 10});
  auto m = make_message(*sp_, "s@x", {"r@x"}, body);
  const std::string id = m.queue_id();
  const auto s = commit_now(*sp_, std::move(m));
  EXPECT_EQ(s.ec, errc::insufficient_space);
  EXPECT_FALSE(st_.exists("incoming", id));
  EXPECT_EQ(sp_->message_count(), 0u);
}

TEST_F(spool_test, size_and_recipient_limits) {
  spool_options o = immediate();
  o.message_size_limit_bytes = 10;
  o.recipients_max = 2;
  reopen(o);
  incoming_message m;
  ASSERT_FALSE(sp_->begin(m));
  EXPECT_FALSE(m.add_recipient({"a@x", "", 0}));
  EXPECT_FALSE(m.add_recipient({"b@x", "", 0}));
  EXPECT_EQ(m.add_recipient({"c@x", "", 0}), errc::too_many_recipients);
  EXPECT_EQ(smtp_reply(errc::too_many_recipients), "452 4.5.3 Error: too many recipients");
  EXPECT_FALSE(m.append_content("0123456789"));
  EXPECT_EQ(m.append_content("x"), errc::message_too_large);
  EXPECT_EQ(m.append_content(""), errc::message_too_large);  // stays refused
  EXPECT_EQ(commit_now(*sp_, std::move(m)).ec, errc::message_too_large);
  EXPECT_EQ(smtp_reply(errc::message_too_large), "552 5.3.4 Message size exceeds fixed limit");
}

TEST_F(spool_test, commit_of_a_foreign_or_empty_handle_is_invalid) {
  commit_probe probe;
  sp_->commit(incoming_message{}, probe.callback());
  ASSERT_TRUE(probe.called);
  EXPECT_EQ(probe.status.ec, errc::invalid_state);
}

TEST_F(spool_test, ids_are_unique_among_live_messages_and_handles) {
  std::set<std::string> ids;
  std::vector<incoming_message> open(50);
  for (auto& m : open) {
    ASSERT_FALSE(sp_->begin(m));
    EXPECT_TRUE(ids.insert(m.queue_id()).second);
  }
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(ids.insert(committed()).second);
}

// Recovery.

TEST_F(spool_test, recovery_quarantines_corrupt_files_and_keeps_the_rest) {
  const std::string good = committed();
  const std::string flipped = committed();
  const std::string cut = committed();
  const std::string moved = committed();
  ASSERT_TRUE(st_.corrupt_byte("incoming", flipped, 43));  // in the sender
  ASSERT_TRUE(st_.truncate("incoming", cut, 30));
  // A valid file under the wrong name.
  std::string bytes;
  ASSERT_FALSE(st_.read_file("incoming", moved, 1 << 20, bytes));
  st_.put_durable("incoming", "ABCDEF0123456", bytes);
  st_.put_durable("active", "not-a-queue-id", "garbage");
  st_.put_durable("deferred", "FEDCBA987654", "");
  st_.put_durable("incoming", "ABCDEF654321.tmp", "half written");
  st_.crash();
  reopen();
  std::set<std::string> back;
  for (const auto& m : report_.messages) back.insert(m.queue_id);
  EXPECT_EQ(back, (std::set<std::string>{good, moved}));
  std::map<std::string, std::string> reasons;
  for (const auto& q : report_.quarantined_files) reasons[q.name] = q.reason;
  EXPECT_EQ(reasons.size(), 5u);
  EXPECT_EQ(reasons[flipped], "envelope checksum");
  EXPECT_EQ(reasons[cut], "truncated envelope");
  EXPECT_EQ(reasons["ABCDEF0123456"], "queue ID does not match file name");
  EXPECT_EQ(reasons["not-a-queue-id"], "unexpected file name");
  EXPECT_EQ(reasons["FEDCBA987654"], "bad magic");
  for (const auto& [name, reason] : reasons) EXPECT_TRUE(st_.exists("corrupt", name)) << name;
  EXPECT_EQ(report_.incomplete_removed, 1u);
  EXPECT_FALSE(st_.exists("incoming", "ABCDEF654321.tmp"));
  // Mail keeps flowing.
  EXPECT_EQ(content_of(*sp_, good), body);
  const std::string next = committed();
  EXPECT_EQ(sp_->state_of(next), queue_state::incoming);
}

TEST_F(spool_test, corrupt_file_found_at_delivery_is_quarantined) {
  const std::string id = committed();
  ASSERT_TRUE(st_.corrupt_byte("incoming", id, 60));
  queued_message q;
  EXPECT_EQ(sp_->load(id, q), errc::corrupt);
  EXPECT_FALSE(sp_->state_of(id));
  EXPECT_TRUE(st_.exists("corrupt", id));
  EXPECT_FALSE(st_.exists("incoming", id));
}

TEST_F(spool_test, done_marks_survive_a_crash) {
  const std::string id = committed({"a@x", "b@x", "c@x"});
  ASSERT_FALSE(sp_->activate(id));
  const std::uint32_t two[] = {0, 2};
  ASSERT_FALSE(sp_->mark_done(id, two, done_outcome::delivered));
  st_.crash();
  reopen();
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].recipients_undone, 1u);
  queued_message q;
  ASSERT_FALSE(sp_->load(id, q));
  EXPECT_TRUE(q.file.status[0].done);
  EXPECT_FALSE(q.file.status[1].done);
  EXPECT_TRUE(q.file.status[2].done);
}

// A failure recorded before its notification survives a crash with what the notification
// needs, and leaves the recipient undone until the done mark that follows the notification.
TEST_F(spool_test, recorded_failures_survive_a_crash) {
  const std::string id = committed({"a@x", "b@x", "c@x"});
  ASSERT_FALSE(sp_->activate(id));
  const recipient_failure failures[] = {
      {0, done_outcome::bounced, "5.1.1", "mx.x[192.0.2.1]:25", "host mx.x said: 550 no"},
      {2, done_outcome::expired, "4.4.1", "none", "connect to mx.x: Connection refused"}};
  ASSERT_FALSE(sp_->record_failures(id, failures));
  st_.crash();
  reopen();
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].recipients_undone, 3u);
  queued_message q;
  ASSERT_FALSE(sp_->load(id, q));
  ASSERT_TRUE(q.file.status[0].failure);
  EXPECT_EQ(q.file.status[0].failure->outcome, done_outcome::bounced);
  EXPECT_EQ(q.file.status[0].failure->dsn, "5.1.1");
  EXPECT_EQ(q.file.status[0].failure->relay, "mx.x[192.0.2.1]:25");
  EXPECT_EQ(q.file.status[0].failure->reason, "host mx.x said: 550 no");
  EXPECT_FALSE(q.file.status[1].failure);
  ASSERT_TRUE(q.file.status[2].failure);
  EXPECT_EQ(q.file.status[2].failure->outcome, done_outcome::expired);
  for (const auto& st : q.file.status) EXPECT_FALSE(st.done);
  const std::uint32_t first[] = {0};
  ASSERT_FALSE(sp_->mark_done(id, first, done_outcome::bounced));
  ASSERT_FALSE(sp_->load(id, q));
  EXPECT_TRUE(q.file.status[0].done);
}

TEST_F(spool_test, record_failures_checks_its_input_and_reports_write_errors) {
  const std::string id = committed({"a@x"});
  const recipient_failure out_of_range[] = {{1, done_outcome::bounced, "5.0.0", "none", "x"}};
  EXPECT_EQ(sp_->record_failures(id, out_of_range), errc::invalid_state);
  const recipient_failure delivered[] = {{0, done_outcome::delivered, "2.0.0", "none", "x"}};
  EXPECT_EQ(sp_->record_failures(id, delivered), errc::invalid_state);
  const recipient_failure ok[] = {{0, done_outcome::bounced, "5.0.0", "none", "x"}};
  EXPECT_EQ(sp_->record_failures("NOSUCHID", ok), errc::not_found);
  st_.faults().fail_at(0, std::make_error_code(std::errc::io_error));
  EXPECT_EQ(sp_->record_failures(id, ok), errc::write_error);
  st_.faults().disarm();
  st_.crash();
  reopen();
  queued_message q;
  ASSERT_FALSE(sp_->load(id, q));
  EXPECT_FALSE(q.file.status[0].failure);  // nothing half-written
}

TEST_F(spool_test, finished_message_whose_removal_was_lost_is_removed) {
  const std::string id = committed({"a@x"});
  const std::uint32_t all[] = {0};
  ASSERT_FALSE(sp_->mark_done(id, all, done_outcome::bounced));
  ASSERT_FALSE(sp_->remove(id));  // no directory fsync for finished mail
  st_.crash();
  EXPECT_TRUE(st_.exists("incoming", id));
  reopen();
  EXPECT_TRUE(report_.messages.empty());
  EXPECT_EQ(report_.finished_removed, 1u);
  EXPECT_FALSE(st_.exists("incoming", id));
}

TEST_F(spool_test, unfinished_removal_is_durable) {
  const std::string id = committed({"a@x"});
  ASSERT_FALSE(sp_->remove(id));
  st_.crash();
  reopen();
  EXPECT_TRUE(report_.messages.empty());
}

TEST_F(spool_test, duplicate_after_interrupted_move_is_resolved) {
  const std::string id = committed();
  ASSERT_FALSE(st_.rename("incoming", id, "deferred", id));
  ASSERT_FALSE(st_.sync_dir("deferred"));  // crash before incoming/ was synced
  st_.crash();
  ASSERT_TRUE(st_.exists("incoming", id));
  reopen();
  ASSERT_EQ(report_.messages.size(), 1u);
  EXPECT_EQ(report_.messages[0].state, queue_state::deferred);
  EXPECT_EQ(report_.duplicates_removed, 1u);
  EXPECT_FALSE(st_.exists("incoming", id));
}

TEST(spool_fs_test, torn_status_append_is_repaired) {
  temp_dir dir;
  fs_storage st(dir.path());
  manual_clock clock;
  spool_options o;
  o.mode = commit_mode::immediate;
  std::string id;
  {
    spool sp(st, clock.function(), seeded_random(1), o);
    ASSERT_FALSE(sp.open());
    recovery_report r;
    ASSERT_FALSE(sp.recover(r));
    auto m = make_message(sp, "s@x", {"a@x", "b@x"}, body);
    id = m.queue_id();
    ASSERT_FALSE(commit_now(sp, std::move(m)).ec);
    const std::uint32_t first[] = {0};
    ASSERT_FALSE(sp.mark_done(id, first, done_outcome::delivered));
  }
  // Half of a done record for recipient 1, as a crash during the append could leave it.
  const std::string half = encode_done(1, done_outcome::delivered).substr(0, 6);
  ASSERT_FALSE(st.append_file("incoming", id, half, true));
  spool sp(st, clock.function(), seeded_random(2), o);
  recovery_report r;
  ASSERT_FALSE(sp.recover(r));
  EXPECT_EQ(r.torn_tails_repaired, 1u);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].recipients_undone, 1u);
  const std::uint32_t second[] = {1};
  std::size_t left = 9;
  ASSERT_FALSE(sp.mark_done(id, second, done_outcome::delivered, &left));
  EXPECT_EQ(left, 0u);
  queued_message q;
  ASSERT_FALSE(sp.load(id, q));  // appends after the repair parse cleanly
  EXPECT_TRUE(q.file.status[1].done);
}

TEST(queue_errors, category_and_replies) {
  const std::error_code ec = errc::write_error;
  EXPECT_STREQ(ec.category().name(), "relaylab.queue");
  EXPECT_EQ(ec.message(), "queue file write error");
  EXPECT_EQ(smtp_reply(ec), "451 4.3.0 Error: queue file write error");
  EXPECT_EQ(smtp_reply(std::make_error_code(std::errc::io_error)),
            "451 4.3.0 Error: queue file write error");
  EXPECT_EQ(smtp_reply(errc::insufficient_space), "452 4.3.1 Insufficient system storage");
}

}  // namespace
}  // namespace relaylab::queue
