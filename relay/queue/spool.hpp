// The durable mail queue: "a relay that said 250 owns the message".
//
// Life of a message (queue IDs and directories as in Postfix):
//
//   begin() ──► incoming_message (in memory: envelope + content, content checksummed as it
//               arrives) ──► commit(done) ──► incoming/ID ──► activate() ──► (state active,
//               file stays put) ──► mark_done() per recipient ──► remove()
//                                └─► complete(id, done): every recipient done, file deleted
//                         └─► defer(next_attempt, reasons) ──► deferred/ID ──► activate() ...
//
// Durability: commit writes incoming/ID.tmp with one gather write, fsyncs it, renames it to
// incoming/ID and fsyncs incoming/ before `done` reports success; only then may the server say
// 250. Recipient done marks and deferral records are appended to the queue file and
// fdatasynced before the call returns. A move renames and then fsyncs the target directory
// (under one lock shared with every directory fsync, so a source directory is never synced
// while the target is not: a crash can leave a message in two directories, never in none;
// recovery keeps one). remove() of a finished message does not fsync: a resurrected finished
// file is deleted again by recover(); remove() of unfinished mail fsyncs every queue directory,
// so no stale name from an earlier move can bring it back.
//
// activate() changes the state only: the file stays in incoming/ or deferred/ while it is
// delivered (Postfix renames it into active/; that rename would need a directory fsync per
// message to be crash-safe, and recovery treats active mail as incoming anyway). active/ is
// still scanned by recover() for queues written by older versions.
//
// The common case, every recipient delivered at the first attempt, costs no fsync of its own:
// complete() unlinks the file without a done mark, and the committer makes the unlink durable
// with the same incoming/ fsync that serves the next group of commits; `done` runs after that.
// A crash before it resurrects the file with its recipients undone, so the message is
// delivered again (at least once, as in Postfix) — and the caller has logged nothing yet.
//
// Group commit: in commit_mode::queued, commit() and complete() only enqueue. run_once() takes
// up to commit_batch_max pending operations, writes+fsyncs each new file, renames each, unlinks
// each completed one, then fsyncs incoming/ (and deferred/ when a completed file lived there)
// once for the whole batch, and only then invokes the callbacks. A simulation or test
// drives run_once()/flush() itself, on its own thread; the daemon calls start_background() and
// the callbacks then run on the spool's committer thread (they must only hand the result to the
// connection's executor, e.g. smtpd's `notify`). The background committer may hold a group
// back briefly so that more can join: completions wait for new mail (completion_delay_us), new
// mail for the messages still being received (commit_delay_us). commit_batch_max = 1 gives the
// non-grouped behaviour (one full fsync round per message) for comparison;
// commit_mode::immediate does the round inside commit() and calls `done` before commit()
// returns.
//
// Journal (spool_options::journal): a group commit appends its new queue files, whole, to one
// segment file (journal.hpp) with one fdatasync, instead of one file + fsync + rename each.
// A message lives in the journal until it leaves (complete()/remove() append an 'X' record)
// or needs a file of its own: the first done mark of a partial delivery, a deferral, or a
// requeue writes it out as incoming/ID first ("materializes" it), and from then on the file
// rules above apply. A segment is deleted once it is not the current one and no message in it
// is still journal-only, oldest first (an 'X' record must outlive the 'Q' record it cancels),
// with a journal/ fsync after each deletion. recover() replays the segments: messages without
// an 'X' and without a file get their file, then every segment is deleted.
//
// Content cache (spool_options::cache_bytes_max): a committed file's bytes stay in memory
// until the message is first changed (done mark, deferral, removal), so the delivery that
// usually follows at once reads neither the envelope nor the content back from disk.
//
// Thread safety: every spool member function may be called from any thread. Operations on the
// same queue ID (activate/defer/mark_done/remove/complete) must not run concurrently; the queue
// manager owns a message while it works on it. An incoming_message is used by one thread at a
// time and must not outlive its spool.
#pragma once

#include "relay/queue/error.hpp"
#include "relay/queue/queue_file.hpp"
#include "relay/queue/queue_id.hpp"
#include "relay/queue/storage.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace relaylab::queue {

enum class queue_state : std::uint8_t { incoming, active, deferred };
/// "incoming", "active", "deferred" (the directory names, as in Postfix).
std::string_view to_string(queue_state s) noexcept;
inline constexpr std::string_view corrupt_directory = "corrupt";

enum class commit_mode : std::uint8_t {
  immediate,  // commit() performs the whole fsync round and calls `done` before returning
  queued,     // commit() enqueues; run_once()/flush() or the background thread complete it
};

struct spool_options {
  /// Postfix queue_minfree: free bytes that must remain after accepting a message.
  std::uint64_t queue_minfree_bytes = 0;
  /// How long one free-space reading (statvfs) serves the queue_minfree and size checks, less
  /// the bytes this spool committed since. 0: read it for every check, as Postfix does. Other
  /// writers on the file system are seen only at the next reading.
  std::chrono::milliseconds free_space_sample_ms{0};
  /// Postfix message_size_limit (content bytes); 0 = unlimited.
  std::uint64_t message_size_limit_bytes = 10240000;
  /// Postfix smtpd_recipient_limit.
  std::size_t recipients_max = 1000;
  commit_mode mode = commit_mode::queued;
  /// Commits served by one directory fsync; 1 = no grouping.
  std::size_t commit_batch_max = 256;
  /// Background thread only: when nothing but completions (delivered mail leaving) is pending,
  /// wait up to this long for new mail to share their fdatasync. Nobody waits on a completion
  /// but its `status=sent` line, while a new message's client waits for its 250; under load
  /// this halves the fdatasyncs per message (one for the 'Q' and 'X' records together instead
  /// of one each). 0: commit completions at once.
  std::chrono::microseconds completion_delay_us{0};
  /// Background thread only: when new mail is pending and at least commit_siblings other
  /// messages are being received (begun, not yet handed to commit()), wait up to this long for
  /// them to join the group before the fdatasync, as PostgreSQL's commit_delay. The wait ends
  /// early once no message is being received any more. Durability is unchanged (the 250 still
  /// follows the fdatasync); each new message's 250 waits up to this much longer, in exchange
  /// for fewer fdatasyncs and fewer wake-ups per message. 0: commit at once.
  std::chrono::microseconds commit_delay_us{0};
  /// See commit_delay_us.
  std::size_t commit_siblings = 1;
  /// Pending commits accepted before commit() refuses with errc::write_error (back pressure).
  std::size_t pending_commits_max = 10000;
  /// Entries per queue directory that list()/recover() will handle.
  std::size_t directory_files_max = 1000000;
  /// Bytes of committed queue files kept in memory for their first delivery (0 = none: every
  /// load() and read_content() reads the storage).
  std::size_t cache_bytes_max = 0;
  /// Group commits go to the journal (see above); off: one queue file per message.
  bool journal = false;
  /// A segment that has grown past this is closed; the next group commit starts a new one.
  std::uint64_t journal_segment_bytes_max = 16u << 20;
  /// Zeros written ahead of a segment's end, in steps of at least this many bytes (0: plain
  /// appends). Group commits then overwrite blocks that already exist, and their fdatasync
  /// writes only the data (no inode update for the new size): about half the latency and CPU
  /// of an appending one on ext4. The zeros end a segment's scan like a torn tail.
  std::uint64_t journal_preallocate_bytes = 0;
  /// Envelope bytes (sender, attributes, recipients) beyond the content limit that a queue
  /// file may have before it is considered corrupt when read back.
  std::size_t envelope_bytes_max = 16 * 1024 * 1024;
};

/// What a commit callback learns. `ec` is a queue errc (or success); `cause` is the storage
/// error behind it (EIO, ENOSPC ...), for the log only.
struct commit_status {
  std::error_code ec;
  std::error_code cause;
};
using commit_callback = std::function<void(const commit_status&)>;

class spool;

/// A message being received. Created by spool::begin(); consumed by spool::commit(); dropped
/// without commit (client went away, RSET), it leaves nothing behind.
class incoming_message {
 public:
  incoming_message() = default;
  incoming_message(incoming_message&& other) noexcept;
  incoming_message& operator=(incoming_message&& other) noexcept;
  incoming_message(const incoming_message&) = delete;
  incoming_message& operator=(const incoming_message&) = delete;
  ~incoming_message();

  bool valid() const noexcept { return owner_ != nullptr; }
  const std::string& queue_id() const noexcept { return env_.queue_id; }
  time_point arrival() const noexcept { return env_.arrival; }

  void set_sender(std::string sender) { env_.sender = std::move(sender); }
  /// Logging facts kept with the message: client_name, client_address, client_port,
  /// helo_name, protocol, sasl_method, sasl_username, sasl_sender ...
  void add_attribute(std::string name, std::string value);
  /// Errors: errc::too_many_recipients beyond spool_options::recipients_max.
  std::error_code add_recipient(recipient r);
  std::size_t recipient_count() const noexcept { return env_.recipients.size(); }
  /// Appends message bytes (already dot-unstuffed, CRLF line ends). Errors:
  /// errc::message_too_large beyond message_size_limit (the message can then only be dropped).
  std::error_code append_content(std::string_view bytes);
  void reserve_content(std::size_t bytes) { content_.reserve(bytes); }
  std::uint64_t content_bytes() const noexcept { return content_.size(); }

 private:
  friend class spool;
  void release() noexcept;

  spool* owner_ = nullptr;
  envelope env_;
  std::string content_;
  std::uint32_t content_crc_ = 0;
  bool too_large_ = false;
};

/// A queued message as read back for delivery (content not included).
struct queued_message {
  queue_state state = queue_state::incoming;
  decoded_file file;  // envelope, content offset/size, per-recipient status, attempts
};

/// One line group of `mailq` output.
struct queue_entry {
  std::string queue_id;
  queue_state state = queue_state::incoming;
  std::uint64_t size_bytes = 0;  // content bytes, as Postfix shows
  time_point arrival{};
  std::string sender;
  struct pending_recipient {
    std::string address;
    std::string reason;  // last deferral reason, "" when none
  };
  std::vector<pending_recipient> recipients;  // recipients not yet done
};

struct recovered_message {
  std::string queue_id;
  queue_state state = queue_state::incoming;  // after recovery (active ones are back in incoming)
  std::size_t recipients_undone = 0;
  std::uint32_t attempts = 0;
  std::optional<time_point> next_attempt;
};

struct recovery_report {
  std::vector<recovered_message> messages;
  struct quarantined {
    std::string directory;  // where it was found
    std::string name;
    std::string reason;  // "envelope checksum", "truncated content", "unexpected file name" ...
  };
  std::vector<quarantined> quarantined_files;  // now in corrupt/
  struct unreadable {
    std::string directory, name;
    std::error_code ec;
  };
  std::vector<unreadable> unreadable_files;  // left in place (EIO ...)
  std::size_t incomplete_removed = 0;        // *.tmp files of commits that never finished
  std::size_t finished_removed = 0;          // all recipients done, remove() was lost
  std::size_t duplicates_removed = 0;        // a move interrupted between two directory fsyncs
  std::size_t torn_tails_repaired = 0;       // a status append that never became durable
  std::size_t journal_messages = 0;          // written out from the journal to incoming/
  std::size_t journal_segments_removed = 0;  // replayed, then deleted
};

struct recipient_reason {
  std::uint32_t index = 0;  // recipient index in the envelope
  std::string reason;       // e.g. "connect to 127.0.0.1[127.0.0.1]:25: Connection refused"
};

class spool {
 public:
  /// `storage` must outlive the spool. `clock` stamps arrival times and queue IDs; `random`
  /// seeds the queue ID counter.
  spool(storage& storage, clock_function clock, random_function random, spool_options options);
  spool(const spool&) = delete;
  spool& operator=(const spool&) = delete;
  /// Stops the background committer (which completes what it has), then drops any commit
  /// still pending without calling it back, as a dying process would.
  ~spool();

  const spool_options& options() const noexcept { return options_; }
  storage& backing_storage() noexcept { return storage_; }

  /// Creates incoming/, active/, deferred/ and corrupt/ when missing. Errors: storage errors.
  std::error_code open();
  /// Startup scan; call after open() and before begin(). Removes incomplete files, quarantines
  /// corrupt ones to corrupt/, moves active/ messages back to incoming/ (as Postfix's qmgr
  /// does), rebuilds the index and reports what came back. Errors: a queue directory cannot be
  /// listed (the queue cannot be trusted: the caller should not start); single-file problems
  /// are reported in `report` and never stop recovery.
  std::error_code recover(recovery_report& report);

  /// The MAIL-time check of Postfix smtpd (smtpd_check_size): `expected_bytes` is the SIZE=
  /// value or 0. Errors: errc::message_too_large (> message_size_limit),
  /// errc::insufficient_space (free blocks <= queue_minfree blocks, or the message would eat
  /// into queue_minfree, or take half of the free space), errc::write_error (free space
  /// unknown).
  std::error_code check_space(std::uint64_t expected_bytes);

  /// Starts a message: assigns its queue ID and arrival time. Errors: errc::id_exhausted.
  std::error_code begin(incoming_message& out);
  /// Makes the message durable, then calls `done` (see the class comment for the thread).
  /// `msg` is consumed. `done` reports: success; errc::write_error (storage failed; nothing
  /// was kept); errc::insufficient_space (free space below queue_minfree + message size);
  /// errc::message_too_large; errc::invalid_state (`msg` was not from begin()).
  void commit(incoming_message&& msg, commit_callback done);

  /// Completes up to commit_batch_max pending commits (one directory fsync) on the calling
  /// thread and returns how many completed. Not to be mixed with start_background().
  std::size_t run_once();
  /// run_once() until nothing is pending; returns the total.
  std::size_t flush();
  std::size_t pending_commits() const;
  /// Runs the committer on a thread of its own until stop_background() or destruction.
  void start_background();
  /// Completes what is pending, then joins the thread.
  void stop_background();

  /// Reads a message's envelope and status. Errors: errc::not_found; errc::corrupt (the file
  /// is moved to corrupt/ and forgotten); errc::read_error.
  std::error_code load(std::string_view queue_id, queued_message& out);
  /// Content bytes [offset, offset + bytes_max) of a message loaded as `msg` (streaming
  /// delivery). Errors: errc::not_found, errc::read_error.
  std::error_code read_content(const queued_message& msg, std::uint64_t offset,
                               std::size_t bytes_max, std::string& out);

  /// incoming or deferred → active (the state only; no storage operation). Errors:
  /// errc::not_found, errc::invalid_state (already active).
  std::error_code activate(std::string_view queue_id);
  /// postsuper -r: moves the message's file back to incoming/ (durably), where the next start
  /// delivers it first. Errors: errc::not_found, errc::write_error.
  std::error_code requeue(std::string_view queue_id);
  /// Marks recipients done (durable before return); `undone_left` receives how many remain.
  /// Errors: errc::not_found, errc::invalid_state (index out of range), errc::write_error.
  std::error_code mark_done(std::string_view queue_id, std::span<const std::uint32_t> indexes,
                            done_outcome outcome, std::size_t* undone_left = nullptr);
  /// Records final failures (bounced or expired recipients) durably before return, ahead of
  /// their notification: a recovered message reports them in its status, so the notification
  /// is still sent, and the recipients are never attempted again. mark_done() follows once the
  /// notification is queued. Errors: errc::not_found, errc::invalid_state (index out of range,
  /// or an outcome other than bounced/expired), errc::write_error.
  std::error_code record_failures(std::string_view queue_id,
                                  std::span<const recipient_failure> failures);
  /// Records a failed attempt (attempt count + 1, next attempt time, per-recipient reasons)
  /// durably, then moves the message to deferred/. Errors: errc::not_found,
  /// errc::invalid_state (reason index out of range), errc::write_error.
  std::error_code defer(std::string_view queue_id, time_point next_attempt,
                        std::span<const recipient_reason> reasons);
  /// Deletes a message (Postfix logs "removed"); durable before return unless every recipient
  /// is done. Errors: errc::not_found, errc::write_error (the message stays known; retry).
  std::error_code remove(std::string_view queue_id);

  /// Every recipient of the message is done (delivered): deletes it and calls `done` once the
  /// deletion is durable (thread as for commit()). `done` reports success, errc::not_found,
  /// or errc::write_error (the message may come back after a crash and stays known; the caller
  /// may retry, or fall back to mark_done() + remove()).
  void complete(std::string_view queue_id, commit_callback done);

  /// Queue contents for `relaylab queue list` (incoming, active, deferred; sorted by state,
  /// then ID). Corrupt files are skipped. Errors: storage errors listing a directory.
  std::error_code list(std::vector<queue_entry>& out);
  std::optional<queue_state> state_of(std::string_view queue_id) const;
  std::size_t message_count() const;

 private:
  friend class incoming_message;
  struct index_entry {
    queue_state state = queue_state::incoming;
    queue_state dir = queue_state::incoming;  // where the file is
    bool dir_unsynced = false;                // a move's target directory fsync failed: retry it
    std::vector<bool> done;
    std::uint32_t attempts = 0;
    std::shared_ptr<const std::string> image;  // the committed file, while cached
    std::uint64_t segment = 0;       // journal segment holding its 'Q' record (0: none left)
    std::uint64_t image_offset = 0;  // of the image within that segment
    std::uint64_t image_bytes = 0;
    bool materialized = true;  // has a file in `dir`; false: lives in the journal only
  };
  struct segment_info {
    std::uint64_t live = 0;       // journal-only messages whose 'Q' record is here
    std::uint64_t bytes = 0;      // appended so far
    std::uint64_t allocated = 0;  // file size: bytes plus the zeros written ahead
  };
  struct pending_commit {
    std::string queue_id;
    std::string image;  // the whole queue file; empty for a completion
    std::size_t recipients = 0;
    bool completion = false;
    // A completion's message as the batch found it:
    queue_state dir = queue_state::incoming;  // where its file is
    bool journal_only = false;                // no file: only its journal record
    std::uint64_t segment = 0;                // the segment with its 'Q' record (0: none)
    std::uint64_t image_at = 0;               // new mail: image offset within the batch's records
    commit_callback done;
    commit_status status;
  };

  void release_id(const std::string& id) noexcept;
  /// A begun message dropped without commit: releases its ID, and it is no longer received.
  void abandon(const std::string& id) noexcept;
  void enqueue(pending_commit p);
  /// Whether what the committer waits for has happened. Caller holds commit_mutex_.
  bool committer_should_wake() const noexcept;
  void drop_image(index_entry& e) noexcept;  // caller holds mutex_
  /// Indexes a committed message, caching `image` within the budget. Caller holds mutex_.
  void remember(const std::string& queue_id, index_entry e, std::string& image);
  /// Completes a processed batch: frees the images, then calls every callback.
  void run_callbacks(std::vector<pending_commit>& batch);
  /// Appends records to the current segment (a new one when there is none or it is full);
  /// returns the segment and the offset the records start at. Caller holds journal_mutex_.
  std::error_code append_journal(std::string_view records, std::uint64_t& segment,
                                 std::uint64_t& offset);
  /// Deletes closed segments without journal-only messages, oldest first.
  void retire_segments();
  /// Gives a journal-only message its own file in incoming/. Errors: errc::not_found,
  /// errc::read_error, errc::write_error.
  std::error_code materialize(std::string_view queue_id);
  /// Reads an entry's whole image from wherever it is.
  std::error_code read_image(std::string_view queue_id, const index_entry& e, std::string& out);
  struct journal_scan {
    std::vector<std::uint64_t> segments;                   // sorted
    std::map<std::string, std::string, std::less<>> live;  // queue ID -> image
    std::set<std::string, std::less<>> gone;               // left the queue ('X' after 'Q')
  };
  std::error_code scan_journal_dir(journal_scan& out);
  std::error_code space_for(std::uint64_t bytes, std::error_code& cause);
  void process_batch(std::vector<pending_commit>& batch);
  std::error_code move(const std::string& id, queue_state from, queue_state to);
  std::error_code quarantine(std::string_view dir, std::string_view name);
  void background_loop();

  storage& storage_;
  clock_function clock_;
  spool_options options_;

  mutable std::mutex mutex_;  // index_, reserved_, ids_
  // The last free-space reading (spool_options::free_space_sample_ms).
  std::mutex space_mutex_;
  std::optional<space_info> space_sample_;
  std::chrono::system_clock::time_point space_sampled_at_{};
  std::uint64_t space_bytes_since_ = 0;
  queue_id_generator ids_;
  std::map<std::string, index_entry, std::less<>> index_;
  std::set<std::string, std::less<>> reserved_;  // begun or committing, not yet in index_
  std::size_t cached_bytes_ = 0;
  std::map<std::uint64_t, segment_info> segments_;  // under mutex_

  std::mutex journal_mutex_;           // journal appends, segment creation and deletion
  std::uint64_t current_segment_ = 0;  // 0: the next append starts a new segment
  std::uint64_t next_segment_ = 1;

  std::mutex dir_mutex_;  // held across rename + target fsync, and every directory fsync

  mutable std::mutex commit_mutex_;
  std::condition_variable commit_cv_;
  std::deque<pending_commit> pending_;
  std::size_t pending_new_ = 0;  // new mail (not completions) in pending_
  std::size_t receiving_ = 0;    // begun and not yet committed or dropped (commit_delay_us)
  // What the background committer waits for; enqueue() and abandon() notify it only when that
  // has happened. busy: it is not waiting (it looks at pending_ again before it does).
  enum class committer_wait : std::uint8_t { busy, for_work, for_new_mail, for_receivers };
  committer_wait committer_wait_ = committer_wait::busy;
  bool stopping_ = false;
  std::thread committer_;
};

}  // namespace relaylab::queue
