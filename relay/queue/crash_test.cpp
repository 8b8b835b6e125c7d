// Randomized crash simulation: a spool on mem_storage runs a random mix of commits, batches,
// deliveries and deferrals; the "disk" dies at a random operation (every later storage call
// fails) or the host crashes between steps with commits still pending; then the host reboots
// (mem_storage::crash) and the spool recovers. The checker then demands:
// - every message whose commit callback reported success (and that was not removed) is back,
//   byte for byte, with every recipient whose done mark was acknowledged still done;
// - nothing else is back: no uncommitted, failed or pending commit appears as a message;
// - nothing is quarantined (crashes lose only unsynced data, never corrupt).
// Fixed seeds: a failure names its seed and replays exactly. Every seed runs twice: with one
// file per message, and with the journal (small segments, so they rotate and retire), each
// with and without the content cache.
#include "relay/queue/spool.hpp"

#include "relay/queue/test_support.hpp"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <set>

namespace relaylab::queue {
namespace {

struct expected_message {
  std::string sender;
  std::vector<std::string> recipients;
  std::string content;
  std::set<std::uint32_t> done_acked;      // mark_done reported success
  std::set<std::uint32_t> done_attempted;  // mark_done called (may be durable even if failed)
  bool removed = false;                    // remove() reported success
  bool remove_attempted = false;
};

class simulation {
 public:
  simulation(std::uint64_t seed, bool journal) : rng_(seed), seed_(seed), journal_(journal) {}

  void run(int rounds, int steps) {
    for (int round = 0; round < rounds; ++round) {
      boot();
      if (::testing::Test::HasFatalFailure()) return;
      play(steps);
      spool_.reset();  // the process dies: pending commits vanish without callbacks
      st_.crash();
    }
    boot();
  }

 private:
  std::uint64_t pick(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  void boot() {
    spool_options o;
    o.mode = commit_mode::queued;
    o.commit_batch_max = 1 + pick(8);
    o.journal = journal_;
    o.journal_segment_bytes_max = 1 + pick(20000);
    o.journal_preallocate_bytes = pick(2) == 0 ? 0 : pick(9000);
    o.cache_bytes_max = pick(2) == 0 ? 0 : 1 << 20;
    spool_ = std::make_unique<spool>(st_, clock_.function(), testing::seeded_random(rng_()), o);
    ASSERT_FALSE(spool_->open()) << "seed " << seed_;
    recovery_report r;
    ASSERT_FALSE(spool_->recover(r)) << "seed " << seed_;
    check(r);
  }

  void check(const recovery_report& r) {
    EXPECT_TRUE(r.quarantined_files.empty()) << "seed " << seed_;
    EXPECT_TRUE(r.unreadable_files.empty()) << "seed " << seed_;
    std::set<std::string> back;
    for (const auto& m : r.messages) {
      back.insert(m.queue_id);
      auto it = expected_.find(m.queue_id);
      ASSERT_NE(it, expected_.end()) << "seed " << seed_ << ": never acknowledged " << m.queue_id;
      const auto& e = it->second;
      EXPECT_FALSE(e.removed) << "seed " << seed_ << ": removed mail is back " << m.queue_id;
      queued_message q;
      ASSERT_FALSE(spool_->load(m.queue_id, q)) << "seed " << seed_;
      EXPECT_EQ(q.file.env.sender, e.sender);
      ASSERT_EQ(q.file.env.recipients.size(), e.recipients.size());
      for (std::size_t i = 0; i < e.recipients.size(); ++i) {
        EXPECT_EQ(q.file.env.recipients[i].address, e.recipients[i]);
        const bool done = q.file.status[i].done;
        if (e.done_acked.contains(static_cast<std::uint32_t>(i))) {
          EXPECT_TRUE(done) << "seed " << seed_
                            << ": delivered recipient would be delivered again: " << m.queue_id
                            << " #" << i;
        }
        if (done) {
          EXPECT_TRUE(e.done_attempted.contains(static_cast<std::uint32_t>(i)));
        }
      }
      std::string content;
      ASSERT_FALSE(spool_->read_content(q, 0, 1 << 20, content));
      EXPECT_EQ(content, e.content) << "seed " << seed_;
    }
    for (auto it = expected_.begin(); it != expected_.end();) {
      const auto& e = it->second;
      // Failed done marks can still become durable (a later fdatasync of the same file).
      const bool finished = e.done_attempted.size() == e.recipients.size();
      if (!e.removed && !e.remove_attempted && !finished) {
        EXPECT_TRUE(back.contains(it->first)) << "seed " << seed_ << ": lost " << it->first;
      }
      // Forget what is gone for good; keep the rest for the next round.
      it = back.contains(it->first) ? std::next(it) : expected_.erase(it);
    }
    live_.assign(back.begin(), back.end());
  }

  void play(int steps) {
    const bool disk_dies = pick(3) != 0;
    if (disk_dies)
      st_.faults().fail_at(pick(static_cast<std::uint64_t>(steps) * 3),
                           std::make_error_code(std::errc::io_error));
    std::vector<incoming_message> abandoned;
    for (int i = 0; i < steps; ++i) {
      switch (pick(10)) {
        case 0:
        case 1:
        case 2:
          commit_one();
          break;
        case 3:
          spool_->run_once();
          break;
        case 4:
          deliver_some();
          break;
        case 5:
          defer_one();
          break;
        case 6:
          remove_finished();
          break;
        case 8:
          complete_one();
          break;
        case 7: {
          incoming_message m;  // begun, filled, never committed
          if (!spool_->begin(m)) {
            (void)m.add_recipient({"ghost@x", "", 0});
            (void)m.append_content("never committed");
            abandoned.push_back(std::move(m));
          }
          break;
        }
      }
    }
    if (disk_dies || pick(2) == 0) spool_->flush();  // else: crash with commits pending
  }

  void commit_one() {
    incoming_message m;
    if (spool_->begin(m)) return;
    expected_message e;
    e.sender = pick(5) == 0 ? "" : "sender" + std::to_string(pick(100)) + "@example.net";
    const auto n = 1 + pick(3);
    for (std::uint64_t i = 0; i < n; ++i) {
      e.recipients.push_back("rcpt" + std::to_string(i) + "@example.org");
      ASSERT_FALSE(m.add_recipient({e.recipients.back(), "", 0}));
    }
    const auto bytes = pick(3000);
    for (std::uint64_t i = 0; i < bytes; ++i) e.content.push_back(static_cast<char>(rng_()));
    ASSERT_FALSE(m.append_content(e.content));
    m.set_sender(e.sender);
    const std::string id = m.queue_id();
    spool_->commit(std::move(m), [this, id, e](const commit_status& s) {
      if (!s.ec) {
        expected_.emplace(id, e);
        live_.push_back(id);
      }
    });
  }

  std::string any_live() {
    if (live_.empty()) return {};
    return live_[pick(live_.size())];
  }

  void deliver_some() {
    const std::string id = any_live();
    if (id.empty()) return;
    if (spool_->state_of(id) != queue_state::active) (void)spool_->activate(id);
    auto& e = expected_.at(id);
    const auto index = static_cast<std::uint32_t>(pick(e.recipients.size()));
    const std::uint32_t idx[] = {index};
    e.done_attempted.insert(index);
    if (!spool_->mark_done(id, idx, done_outcome::delivered)) e.done_acked.insert(index);
  }

  // Every recipient delivered at once: the message leaves through the group commit.
  void complete_one() {
    const std::string id = any_live();
    if (id.empty()) return;
    auto& e = expected_.at(id);
    if (e.remove_attempted) return;
    if (spool_->state_of(id) != queue_state::active) (void)spool_->activate(id);
    e.remove_attempted = true;
    spool_->complete(id, [this, id](const commit_status& s) {
      if (!s.ec) expected_.at(id).removed = true;
    });
  }

  void defer_one() {
    const std::string id = any_live();
    if (id.empty()) return;
    const recipient_reason why[] = {{0, "connect to mx.example.org[192.0.2.7]:25: timed out"}};
    (void)spool_->defer(id, clock_.now + std::chrono::minutes(5), why);
  }

  void remove_finished() {
    for (const auto& id : live_) {
      auto& e = expected_.at(id);
      if (e.remove_attempted || e.done_acked.size() != e.recipients.size()) continue;
      e.remove_attempted = true;
      if (!spool_->remove(id)) e.removed = true;
      return;
    }
  }

  // An administrator's delete (postsuper -d) of mail that is not finished.
  void remove_any() {
    const std::string id = any_live();
    if (id.empty()) return;
    auto& e = expected_.at(id);
    if (e.remove_attempted) return;
    e.remove_attempted = true;
    if (!spool_->remove(id)) e.removed = true;
  }

  std::mt19937_64 rng_;
  std::uint64_t seed_;
  bool journal_;
  testing::manual_clock clock_;
  mem_storage st_;
  std::unique_ptr<spool> spool_;
  std::map<std::string, expected_message> expected_;
  std::vector<std::string> live_;
};

TEST(crash_simulation, acknowledged_mail_survives_random_crashes) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    simulation sim(seed, false);
    sim.run(4, 80);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "replay with seed " << seed << " (files)";
      return;
    }
  }
}

TEST(crash_simulation, acknowledged_mail_survives_random_crashes_with_the_journal) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    simulation sim(seed, true);
    sim.run(4, 80);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "replay with seed " << seed << " (journal)";
      return;
    }
  }
}

}  // namespace
}  // namespace relaylab::queue
