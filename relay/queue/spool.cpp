#include "relay/queue/spool.hpp"

#include "relay/queue/journal.hpp"

#include <algorithm>
#include <cstdint>
#include <utility>

namespace relaylab::queue {
namespace {

constexpr std::string_view tmp_suffix = ".tmp";
constexpr queue_state all_states[] = {queue_state::incoming, queue_state::active,
                                      queue_state::deferred};

std::error_code to_queue_error(std::error_code ec) {
  if (ec == std::errc::no_such_file_or_directory) return errc::not_found;
  return errc::write_error;
}

}  // namespace

std::string_view to_string(queue_state s) noexcept {
  switch (s) {
    case queue_state::incoming:
      return "incoming";
    case queue_state::active:
      return "active";
    case queue_state::deferred:
      return "deferred";
  }
  return "incoming";
}

// ---------------------------------------------------------------------------------------------
// incoming_message

incoming_message::incoming_message(incoming_message&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)),
      env_(std::move(other.env_)),
      content_(std::move(other.content_)),
      content_crc_(other.content_crc_),
      too_large_(other.too_large_) {}

incoming_message& incoming_message::operator=(incoming_message&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = std::exchange(other.owner_, nullptr);
    env_ = std::move(other.env_);
    content_ = std::move(other.content_);
    content_crc_ = other.content_crc_;
    too_large_ = other.too_large_;
  }
  return *this;
}

incoming_message::~incoming_message() { release(); }

void incoming_message::release() noexcept {
  if (owner_ != nullptr) owner_->abandon(env_.queue_id);
  owner_ = nullptr;
}

void incoming_message::add_attribute(std::string name, std::string value) {
  env_.attributes.emplace_back(std::move(name), std::move(value));
}

std::error_code incoming_message::add_recipient(recipient r) {
  if (owner_ == nullptr) return errc::invalid_state;
  if (env_.recipients.size() >= owner_->options().recipients_max) return errc::too_many_recipients;
  env_.recipients.push_back(std::move(r));
  return {};
}

std::error_code incoming_message::append_content(std::string_view bytes) {
  if (owner_ == nullptr) return errc::invalid_state;
  const auto limit = owner_->options().message_size_limit_bytes;
  if (too_large_ || (limit != 0 && content_.size() + bytes.size() > limit)) {
    too_large_ = true;
    return errc::message_too_large;
  }
  content_.append(bytes);
  content_crc_ = crc32c(bytes, content_crc_);
  return {};
}

// ---------------------------------------------------------------------------------------------
// spool: setup

spool::spool(storage& storage, clock_function clock, random_function random, spool_options options)
    : storage_(storage),
      clock_(clock),
      options_(options),
      ids_(std::move(clock), std::move(random)) {
  if (options_.commit_batch_max == 0) options_.commit_batch_max = 1;
}

spool::~spool() {
  stop_background();
  // Commits still pending here are dropped without callbacks, exactly as if the process had
  // died: none of them was acknowledged, and a simulated host crash must not write after it.
  std::lock_guard lock(commit_mutex_);
  pending_.clear();
}

std::error_code spool::open() {
  for (auto s : all_states)
    if (auto ec = storage_.make_dir(to_string(s))) return ec;
  if (options_.journal)
    if (auto ec = storage_.make_dir(journal_directory)) return ec;
  return storage_.make_dir(corrupt_directory);
}

// ---------------------------------------------------------------------------------------------
// space checks

std::error_code spool::space_for(std::uint64_t bytes, std::error_code& cause) {
  space_info s;
  if (options_.free_space_sample_ms.count() <= 0) {
    if ((cause = storage_.free_space(s))) return errc::write_error;
  } else {
    std::lock_guard lock(space_mutex_);
    const auto now = clock_();
    if (!space_sample_ || now < space_sampled_at_ ||
        now - space_sampled_at_ >= options_.free_space_sample_ms) {
      space_info fresh;
      if ((cause = storage_.free_space(fresh))) {
        space_sample_.reset();
        return errc::write_error;
      }
      space_sample_ = fresh;
      space_sampled_at_ = now;
      space_bytes_since_ = 0;
    }
    s = *space_sample_;
    const std::uint64_t block = s.block_bytes == 0 ? 1 : s.block_bytes;
    const std::uint64_t used = (space_bytes_since_ + block - 1) / block;
    s.blocks_free = s.blocks_free > used ? s.blocks_free - used : 0;
  }
  const std::uint64_t block = s.block_bytes == 0 ? 1 : s.block_bytes;
  const std::uint64_t minfree = options_.queue_minfree_bytes / block;
  const std::uint64_t need = bytes / block;
  // The same three comparisons as Postfix's smtpd_check_size(), in blocks to avoid overflow.
  if (minfree >= s.blocks_free || need >= s.blocks_free - minfree || need >= s.blocks_free / 2)
    return errc::insufficient_space;
  return {};
}

std::error_code spool::check_space(std::uint64_t expected_bytes) {
  const auto limit = options_.message_size_limit_bytes;
  if (limit != 0 && expected_bytes > limit) return errc::message_too_large;
  std::error_code cause;
  return space_for(expected_bytes, cause);
}

// ---------------------------------------------------------------------------------------------
// begin / commit

std::error_code spool::begin(incoming_message& out) {
  constexpr int attempts_max = 64;
  out = incoming_message{};
  {
    std::lock_guard lock(mutex_);
    for (int i = 0;; ++i) {
      if (i == attempts_max) return errc::id_exhausted;
      std::string id = ids_.next();
      if (index_.contains(id) || reserved_.contains(id)) continue;
      reserved_.insert(id);
      out.owner_ = this;
      out.env_.queue_id = std::move(id);
      out.env_.arrival = clock_();
      break;
    }
  }
  std::lock_guard lock(commit_mutex_);
  ++receiving_;
  return {};
}

void spool::release_id(const std::string& id) noexcept {
  std::lock_guard lock(mutex_);
  reserved_.erase(id);
}

void spool::abandon(const std::string& id) noexcept {
  release_id(id);
  bool wake = false;
  {
    std::lock_guard lock(commit_mutex_);
    if (receiving_ > 0) --receiving_;
    wake = committer_wait_ == committer_wait::for_receivers && committer_should_wake();
  }
  if (wake) commit_cv_.notify_one();
}

void spool::commit(incoming_message&& msg, commit_callback done) {
  if (msg.owner_ != this) {
    done({errc::invalid_state, {}});
    return;
  }
  incoming_message m = std::move(msg);
  commit_status refused;
  if (m.too_large_)
    refused.ec = errc::message_too_large;
  else
    refused.ec = space_for(m.content_.size(), refused.cause);
  if (refused.ec) {
    done(refused);
    return;  // `m` releases the ID
  }

  pending_commit p;
  {
    // One contiguous image: written with one write, and kept as the cache without a copy.
    const encoded_base base = encode_base(m.env_, m.content_.size(), m.content_crc_);
    p.image.reserve(base.head.size() + m.content_.size() + base.tail.size());
    p.image += base.head;
    p.image += m.content_;
    p.image += base.tail;
    std::string().swap(m.content_);  // free it before the client can send the next message
  }
  p.queue_id = m.env_.queue_id;
  p.recipients = m.env_.recipients.size();
  p.done = std::move(done);
  m.owner_ = nullptr;  // the ID stays reserved until the commit completes
  if (options_.free_space_sample_ms.count() > 0) {
    std::lock_guard lock(space_mutex_);
    space_bytes_since_ += p.image.size();
  }
  enqueue(std::move(p));
}

void spool::complete(std::string_view queue_id, commit_callback done) {
  pending_commit p;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(queue_id);
    if (it == index_.end()) {
      done({errc::not_found, {}});
      return;
    }
    drop_image(it->second);  // where the file is, the batch looks up when it runs
  }
  p.queue_id = std::string(queue_id);
  p.completion = true;
  p.done = std::move(done);
  enqueue(std::move(p));
}

void spool::enqueue(pending_commit p) {
  if (options_.mode == commit_mode::immediate) {
    if (!p.completion) {
      std::lock_guard lock(commit_mutex_);
      if (receiving_ > 0) --receiving_;
    }
    std::vector<pending_commit> batch;
    batch.push_back(std::move(p));
    process_batch(batch);
    return;
  }
  bool queued = false, wake = false;
  {
    std::lock_guard lock(commit_mutex_);
    if (!p.completion && receiving_ > 0) --receiving_;
    if (pending_.size() < options_.pending_commits_max) {
      if (!p.completion) ++pending_new_;
      pending_.push_back(std::move(p));
      queued = true;
      wake = committer_should_wake();
    }
  }
  if (!queued) {
    if (!p.completion) release_id(p.queue_id);
    p.done({errc::write_error, std::make_error_code(std::errc::resource_unavailable_try_again)});
    return;
  }
  // Notified after the unlock, so that the committer does not wake only to wait for the lock.
  if (wake) commit_cv_.notify_one();
}

bool spool::committer_should_wake() const noexcept {
  switch (committer_wait_) {
    case committer_wait::busy:
      return false;  // it looks at pending_ again before it waits
    case committer_wait::for_work:
      return true;
    case committer_wait::for_new_mail:
      return pending_new_ > 0;
    case committer_wait::for_receivers:
      return receiving_ == 0 || pending_.size() >= options_.commit_batch_max;
  }
  return true;
}

void spool::remember(const std::string& queue_id, index_entry e, std::string& image) {
  if (cached_bytes_ + image.size() <= options_.cache_bytes_max) {
    cached_bytes_ += image.size();
    e.image = std::make_shared<const std::string>(std::move(image));
  }
  index_[queue_id] = std::move(e);
}

void spool::run_callbacks(std::vector<pending_commit>& batch) {
  for (auto& p : batch) {
    // Free the memory before the callback: the client may start the next message at once.
    std::string().swap(p.image);
    p.done(p.status);
  }
}

void spool::drop_image(index_entry& e) noexcept {
  if (e.image) {
    cached_bytes_ -= std::min(cached_bytes_, e.image->size());
    e.image.reset();
  }
}

void spool::process_batch(std::vector<pending_commit>& batch) {
  const std::string_view incoming = to_string(queue_state::incoming);
  {
    // Where each completed message is now (it may have moved since complete() was called).
    std::lock_guard lock(mutex_);
    for (auto& p : batch) {
      if (!p.completion) continue;
      auto it = index_.find(p.queue_id);
      if (it == index_.end()) {
        p.status = {errc::not_found, {}};
        continue;
      }
      p.dir = it->second.dir;
      p.journal_only = !it->second.materialized;
      p.segment = it->second.segment;
    }
  }
  // New mail: one journal record each (journal) or a file each (files). Completed mail: an 'X'
  // record while its 'Q' record exists, and the unlink of its file if it has one.
  std::string records, tmp;
  bool sync_incoming = false, sync_deferred = false;
  for (auto& p : batch) {
    if (p.status.ec) continue;
    if (p.completion) {
      if (p.segment != 0) append_journal_gone(records, p.queue_id);
      if (p.journal_only) continue;
      // ENOENT: an earlier attempt unlinked it but could not sync; the sync below finishes it.
      if (auto ec = storage_.unlink(to_string(p.dir), p.queue_id);
          ec && ec != std::errc::no_such_file_or_directory) {
        p.status = {errc::write_error, ec};
        continue;
      }
      // incoming/ is synced for every batch anyway, which also retires any stale name an
      // earlier incoming → deferred move left there.
      sync_incoming = true;
      if (p.dir != queue_state::incoming) sync_deferred = true;
    } else if (options_.journal) {
      p.image_at = append_journal_message(records, p.queue_id, p.image);
    } else {
      tmp = p.queue_id;
      tmp += tmp_suffix;
      const std::string_view pieces[] = {p.image};
      std::error_code ec = storage_.write_file(incoming, tmp, pieces, true);
      if (!ec) ec = storage_.rename(incoming, tmp, incoming, p.queue_id);
      if (ec) {
        p.status = {errc::write_error, ec};
        (void)storage_.unlink(incoming, tmp);  // best effort; recovery removes *.tmp anyway
        continue;
      }
      sync_incoming = true;
    }
  }
  std::error_code journal_ec;
  std::uint64_t segment = 0, base = 0;
  if (!records.empty()) {
    std::lock_guard lock(journal_mutex_);
    journal_ec = append_journal(records, segment, base);
  }
  std::error_code incoming_ec, deferred_ec;
  if (sync_incoming || sync_deferred) {
    std::lock_guard lock(dir_mutex_);
    if (sync_incoming) incoming_ec = storage_.sync_dir(incoming);
    if (sync_deferred) deferred_ec = storage_.sync_dir(to_string(queue_state::deferred));
  }
  for (auto& p : batch) {
    if (p.status.ec) continue;
    if (p.completion) {
      std::error_code ec;
      if (p.segment != 0) ec = journal_ec;
      if (!p.journal_only && !ec)
        ec = incoming_ec ? incoming_ec
                         : (p.dir == queue_state::incoming ? std::error_code{} : deferred_ec);
      // The deletion may or may not be durable: the message stays known (undone), a retry or a
      // restart delivers it again.
      if (ec) p.status = {errc::write_error, ec};
    } else if (options_.journal) {
      // Records that reached the disk despite the error could bring the message back after a
      // crash: the client, told 451, may then see it delivered as well as its retry.
      if (journal_ec) p.status = {errc::write_error, journal_ec};
    } else if (incoming_ec) {
      // The entries may or may not be on disk; take them back so a later directory fsync
      // cannot make a message durable that the client was told had failed.
      p.status = {errc::write_error, incoming_ec};
      (void)storage_.unlink(incoming, p.queue_id);
    }
  }
  {
    std::lock_guard lock(mutex_);
    for (auto& p : batch) {
      if (p.completion) {
        if (p.status.ec) continue;
        if (auto it = index_.find(p.queue_id); it != index_.end()) {
          if (p.journal_only)
            if (auto sg = segments_.find(p.segment); sg != segments_.end() && sg->second.live > 0)
              --sg->second.live;
          drop_image(it->second);
          index_.erase(it);
        }
        continue;
      }
      reserved_.erase(p.queue_id);
      if (p.status.ec) continue;
      index_entry e;
      e.done.assign(p.recipients, false);
      if (options_.journal) {
        e.segment = segment;
        e.image_offset = base + p.image_at;
        e.image_bytes = p.image.size();
        e.materialized = false;
        ++segments_[segment].live;
      }
      remember(p.queue_id, std::move(e), p.image);
    }
  }
  run_callbacks(batch);
  if (options_.journal) retire_segments();
}

// ---------------------------------------------------------------------------------------------
// journal

std::error_code spool::append_journal(std::string_view records, std::uint64_t& segment,
                                      std::uint64_t& offset) {
  if (current_segment_ != 0) {
    std::lock_guard lock(mutex_);
    if (segments_[current_segment_].bytes >= options_.journal_segment_bytes_max)
      current_segment_ = 0;
  }
  // Zeros to write after `end` so that the file reaches the next preallocation step.
  const std::uint64_t step = options_.journal_preallocate_bytes;
  auto zeros_after = [step](std::uint64_t end) -> std::uint64_t {
    constexpr std::uint64_t block = 4096;
    return step == 0 ? 0 : (end + step + block - 1) / block * block - end;
  };
  if (current_segment_ == 0) {
    const std::uint64_t seq = next_segment_++;
    const std::string name = journal_segment_name(seq);
    const std::string zeros(zeros_after(records.size()), '\0');
    const std::string_view piece[] = {records, zeros};
    std::error_code ec = storage_.write_file(journal_directory, name, piece, true);
    if (!ec) {
      std::lock_guard lock(dir_mutex_);
      ec = storage_.sync_dir(journal_directory);
    }
    if (ec) {
      (void)storage_.unlink(journal_directory, name);
      return ec;
    }
    current_segment_ = seq;
    std::lock_guard lock(mutex_);
    segments_[seq] = segment_info{0, records.size(), records.size() + zeros.size()};
    segment = seq;
    offset = 0;
    return {};
  }
  std::uint64_t at, allocated;
  {
    std::lock_guard lock(mutex_);
    at = segments_[current_segment_].bytes;
    allocated = segments_[current_segment_].allocated;
  }
  const std::string name = journal_segment_name(current_segment_);
  std::error_code ec;
  if (step == 0) {
    ec = storage_.append_file(journal_directory, name, records, true);
  } else {
    // Over the zeros written ahead; past them, a new step of zeros rides along.
    const std::uint64_t end = at + records.size();
    const std::string zeros(end <= allocated ? 0 : zeros_after(end), '\0');
    const std::string_view piece[] = {records, zeros};
    ec = storage_.write_at(journal_directory, name, at, piece, true);
    if (!ec) allocated = std::max(allocated, end + zeros.size());
  }
  if (ec) {
    // The tail is unknown now: close the segment so no record ever follows a torn one.
    current_segment_ = 0;
    return ec;
  }
  std::lock_guard lock(mutex_);
  segments_[current_segment_].allocated = allocated;
  segments_[current_segment_].bytes += records.size();
  segment = current_segment_;
  offset = at;
  return {};
}

void spool::retire_segments() {
  std::lock_guard journal_lock(journal_mutex_);
  constexpr int per_call_max = 64;
  for (int i = 0; i < per_call_max; ++i) {
    std::uint64_t oldest;
    {
      std::lock_guard lock(mutex_);
      if (segments_.empty()) return;
      const auto it = segments_.begin();
      if (it->first == current_segment_ || it->second.live != 0) return;
      oldest = it->first;
    }
    // One at a time, each deletion durable before the next: an 'X' record in a younger
    // segment must not disappear while the 'Q' record it cancels can still come back.
    if (auto ec = storage_.unlink(journal_directory, journal_segment_name(oldest));
        ec && ec != std::errc::no_such_file_or_directory)
      return;  // tried again after the next batch
    {
      std::lock_guard lock(dir_mutex_);
      if (storage_.sync_dir(journal_directory)) return;
    }
    std::lock_guard lock(mutex_);
    segments_.erase(oldest);
    for (auto& [id, e] : index_)
      if (e.segment == oldest) e.segment = 0;
  }
}

std::error_code spool::read_image(std::string_view queue_id, const index_entry& e,
                                  std::string& out) {
  if (e.image) {
    out = *e.image;
    return {};
  }
  if (!e.materialized) {
    if (auto ec = storage_.read(journal_directory, journal_segment_name(e.segment), e.image_offset,
                                static_cast<std::size_t>(e.image_bytes), out))
      return ec == std::errc::no_such_file_or_directory ? errc::not_found : errc::read_error;
    return out.size() == e.image_bytes ? std::error_code{} : errc::read_error;
  }
  if (auto ec = storage_.read_file(to_string(e.dir), queue_id, SIZE_MAX, out))
    return ec == std::errc::no_such_file_or_directory ? errc::not_found : errc::read_error;
  return {};
}

std::error_code spool::materialize(std::string_view queue_id) {
  index_entry copy;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(queue_id);
    if (it == index_.end()) return errc::not_found;
    if (it->second.materialized) return {};
    copy.image = it->second.image;
    copy.segment = it->second.segment;
    copy.image_offset = it->second.image_offset;
    copy.image_bytes = it->second.image_bytes;
    copy.materialized = false;
  }
  std::string image;
  if (auto ec = read_image(queue_id, copy, image)) return ec;
  const std::string_view dir = to_string(queue_state::incoming);
  std::string tmp(queue_id);
  tmp += tmp_suffix;
  const std::string_view piece[] = {image};
  std::error_code ec = storage_.write_file(dir, tmp, piece, true);
  if (!ec) ec = storage_.rename(dir, tmp, dir, queue_id);
  if (!ec) {
    std::lock_guard lock(dir_mutex_);
    ec = storage_.sync_dir(dir);
  }
  if (ec) {
    // A file that may or may not be durable duplicates the journal copy: harmless, recovery
    // prefers the file. Keep it only if it is whole (the rename happened).
    (void)storage_.unlink(dir, tmp);
    return errc::write_error;
  }
  std::lock_guard lock(mutex_);
  auto it = index_.find(queue_id);
  if (it == index_.end()) return errc::not_found;
  it->second.materialized = true;
  it->second.dir = queue_state::incoming;
  if (auto s = segments_.find(it->second.segment); s != segments_.end() && s->second.live > 0)
    --s->second.live;
  return {};
}

std::error_code spool::scan_journal_dir(journal_scan& out) {
  out = journal_scan{};
  std::vector<std::string> names;
  if (auto ec = storage_.list(journal_directory, names, options_.directory_files_max))
    return ec == std::errc::no_such_file_or_directory ? std::error_code{} : ec;
  for (const auto& name : names)
    if (const auto seq = parse_journal_segment_name(name)) out.segments.push_back(seq);
  std::sort(out.segments.begin(), out.segments.end());
  std::string bytes;
  for (const auto seq : out.segments) {
    if (auto ec = storage_.read_file(journal_directory, journal_segment_name(seq), SIZE_MAX, bytes))
      return ec;
    scan_journal(bytes, [&](const journal_entry& e) {
      if (e.type == journal_record::message) {
        out.live.insert_or_assign(std::string(e.queue_id), std::string(e.image));
        if (auto g = out.gone.find(e.queue_id); g != out.gone.end()) out.gone.erase(g);
      } else if (auto l = out.live.find(e.queue_id); l != out.live.end()) {
        out.live.erase(l);
        out.gone.insert(std::string(e.queue_id));
      }
    });
  }
  return {};
}

std::size_t spool::run_once() {
  std::vector<pending_commit> batch;
  {
    std::lock_guard lock(commit_mutex_);
    const std::size_t n = std::min(pending_.size(), options_.commit_batch_max);
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (!pending_.front().completion) --pending_new_;
      batch.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
  }
  if (!batch.empty()) process_batch(batch);
  return batch.size();
}

std::size_t spool::flush() {
  std::size_t total = 0;
  while (std::size_t n = run_once()) total += n;
  return total;
}

std::size_t spool::pending_commits() const {
  std::lock_guard lock(commit_mutex_);
  return pending_.size();
}

void spool::start_background() {
  std::lock_guard lock(commit_mutex_);
  if (committer_.joinable()) return;
  stopping_ = false;
  committer_ = std::thread([this] { background_loop(); });
}

void spool::stop_background() {
  {
    std::lock_guard lock(commit_mutex_);
    if (!committer_.joinable()) return;
    stopping_ = true;
    commit_cv_.notify_all();
  }
  committer_.join();
  committer_ = std::thread();
}

void spool::background_loop() {
  for (;;) {
    {
      // committer_wait_ says what ends each wait, so that enqueue() and abandon() notify only
      // when it does (a completion, say, does not end the wait for new mail).
      std::unique_lock lock(commit_mutex_);
      committer_wait_ = committer_wait::for_work;
      commit_cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (pending_.empty() && stopping_) {
        committer_wait_ = committer_wait::busy;
        return;
      }
      if (options_.completion_delay_us.count() > 0 && !stopping_ && pending_new_ == 0) {
        // Only completions: give the next new message a moment to share the fdatasync. The
        // wait is real time on this thread (the simulation never runs it: it calls run_once).
        committer_wait_ = committer_wait::for_new_mail;
        commit_cv_.wait_for(lock, options_.completion_delay_us,
                            [&] { return stopping_ || pending_new_ > 0; });
      }
      if (options_.commit_delay_us.count() > 0 && !stopping_ && pending_new_ > 0 &&
          receiving_ >= options_.commit_siblings) {
        // Let the messages being received join this group (spool_options::commit_delay_us).
        committer_wait_ = committer_wait::for_receivers;
        commit_cv_.wait_for(lock, options_.commit_delay_us, [&] {
          return stopping_ || receiving_ == 0 || pending_.size() >= options_.commit_batch_max;
        });
      }
      committer_wait_ = committer_wait::busy;
    }
    run_once();
  }
}

// ---------------------------------------------------------------------------------------------
// delivery side

std::error_code spool::quarantine(std::string_view dir, std::string_view name) {
  std::lock_guard lock(dir_mutex_);
  if (auto ec = storage_.rename(dir, name, corrupt_directory, name)) return ec;
  return storage_.sync_dir(corrupt_directory);
}

std::error_code spool::load(std::string_view queue_id, queued_message& out) {
  queue_state state, where;
  std::shared_ptr<const std::string> image;
  index_entry journal_copy;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(queue_id);
    if (it == index_.end()) return errc::not_found;
    state = it->second.state;
    where = it->second.dir;
    image = it->second.image;
    if (!it->second.materialized) {
      journal_copy.segment = it->second.segment;
      journal_copy.image_offset = it->second.image_offset;
      journal_copy.image_bytes = it->second.image_bytes;
      journal_copy.materialized = false;
    }
  }
  std::string why;
  if (image) {
    out.state = state;
    // Our own bytes: decoding cannot fail unless memory is corrupt.
    if (!decode(*image, out.file, why) && out.file.env.queue_id == queue_id) return {};
  }
  if (!journal_copy.materialized) {
    std::string bytes;
    if (auto ec = read_image(queue_id, journal_copy, bytes)) return ec;
    out.state = state;
    if (!decode(bytes, out.file, why) && out.file.env.queue_id == queue_id) return {};
    // A journal record passed its checksum but does not decode: nothing to quarantine but
    // the bytes themselves.
    const std::string_view piece[] = {bytes};
    (void)storage_.write_file(corrupt_directory, queue_id, piece, true);
    (void)storage_.sync_dir(corrupt_directory);
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(queue_id); it != index_.end()) {
      if (auto s = segments_.find(it->second.segment); s != segments_.end() && s->second.live > 0)
        --s->second.live;
      drop_image(it->second);
      index_.erase(it);
    }
    return errc::corrupt;
  }
  const std::string_view dir = to_string(where);
  std::string bytes;
  const std::size_t bytes_max =
      options_.message_size_limit_bytes == 0
          ? SIZE_MAX
          : options_.message_size_limit_bytes + options_.envelope_bytes_max;
  if (auto ec = storage_.read_file(dir, queue_id, bytes_max, bytes)) {
    if (ec == std::errc::no_such_file_or_directory) return errc::not_found;
    if (ec != std::errc::file_too_large) return errc::read_error;
  }
  out.state = state;
  std::error_code ec = bytes.size() > bytes_max ? errc::corrupt : decode(bytes, out.file, why);
  if (bytes.empty() || (!ec && out.file.env.queue_id != queue_id)) ec = errc::corrupt;
  if (ec) {
    (void)quarantine(dir, queue_id);
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(queue_id); it != index_.end()) {
      drop_image(it->second);
      index_.erase(it);
    }
    return errc::corrupt;
  }
  return {};
}

std::error_code spool::read_content(const queued_message& msg, std::uint64_t offset,
                                    std::size_t bytes_max, std::string& out) {
  out.clear();
  const auto& f = msg.file;
  if (offset >= f.content_bytes) return {};
  const auto n =
      static_cast<std::size_t>(std::min<std::uint64_t>(bytes_max, f.content_bytes - offset));
  queue_state where;
  std::uint64_t journal_offset = 0, journal_segment = 0;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(f.env.queue_id);
    if (it == index_.end()) return errc::not_found;
    where = it->second.dir;
    if (!it->second.materialized) {
      journal_segment = it->second.segment;
      journal_offset = it->second.image_offset;
    }
    if (const auto& image = it->second.image;
        image && image->size() >= f.content_offset + offset + n) {
      out.assign(*image, static_cast<std::size_t>(f.content_offset + offset), n);
      return {};
    }
  }
  if (journal_segment != 0) {
    if (auto ec = storage_.read(journal_directory, journal_segment_name(journal_segment),
                                journal_offset + f.content_offset + offset, n, out))
      return ec == std::errc::no_such_file_or_directory ? errc::not_found : errc::read_error;
    return out.size() == n ? std::error_code{} : errc::read_error;
  }
  if (auto ec = storage_.read(to_string(where), f.env.queue_id, f.content_offset + offset, n, out))
    return ec == std::errc::no_such_file_or_directory ? errc::not_found : errc::read_error;
  if (out.size() != n) return errc::read_error;
  return {};
}

std::error_code spool::move(const std::string& id, queue_state from, queue_state to) {
  {
    std::lock_guard lock(dir_mutex_);
    if (auto ec = storage_.rename(to_string(from), id, to_string(to), id))
      return to_queue_error(ec);
    if (auto ec = storage_.sync_dir(to_string(to))) {
      // The rename happened; the index follows the file, the caller sees the failure.
      std::lock_guard index_lock(mutex_);
      if (auto it = index_.find(id); it != index_.end()) {
        it->second.state = it->second.dir = to;
        it->second.dir_unsynced = true;
      }
      return errc::write_error;
    }
  }
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(id); it != index_.end()) {
    it->second.state = it->second.dir = to;
    it->second.dir_unsynced = false;
  }
  return {};
}

std::error_code spool::activate(std::string_view queue_id) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(queue_id);
  if (it == index_.end()) return errc::not_found;
  if (it->second.state == queue_state::active) return errc::invalid_state;
  it->second.state = queue_state::active;
  return {};
}

std::error_code spool::requeue(std::string_view queue_id) {
  if (auto ec = materialize(queue_id)) return ec;
  queue_state where;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(queue_id);
    if (it == index_.end()) return errc::not_found;
    where = it->second.dir;
  }
  if (where == queue_state::incoming) {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(queue_id); it != index_.end()) it->second.state = where;
    return {};
  }
  return move(std::string(queue_id), where, queue_state::incoming);
}

std::error_code spool::mark_done(std::string_view queue_id, std::span<const std::uint32_t> indexes,
                                 done_outcome outcome, std::size_t* undone_left) {
  // Done marks go to the message's own file.
  if (auto ec = materialize(queue_id)) return ec;
  queue_state state;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(queue_id);
    if (it == index_.end()) return errc::not_found;
    for (auto i : indexes)
      if (i >= it->second.done.size()) return errc::invalid_state;
    state = it->second.dir;
    drop_image(it->second);
  }
  std::string records;
  records.reserve(indexes.size() * 14);
  for (auto i : indexes) records += encode_done(i, outcome);
  if (auto ec = storage_.append_file(to_string(state), queue_id, records, true))
    return to_queue_error(ec);
  std::lock_guard lock(mutex_);
  auto it = index_.find(queue_id);
  if (it == index_.end()) return errc::not_found;
  for (auto i : indexes) it->second.done[i] = true;
  if (undone_left != nullptr)
    *undone_left =
        static_cast<std::size_t>(std::count(it->second.done.begin(), it->second.done.end(), false));
  return {};
}

std::error_code spool::record_failures(std::string_view queue_id,
                                       std::span<const recipient_failure> failures) {
  // Like done marks, failures go to the message's own file.
  if (auto ec = materialize(queue_id)) return ec;
  queue_state state;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(queue_id);
    if (it == index_.end()) return errc::not_found;
    for (const auto& f : failures)
      if (f.index >= it->second.done.size() || f.outcome == done_outcome::delivered)
        return errc::invalid_state;
    state = it->second.dir;
    drop_image(it->second);
  }
  std::string records;
  for (const auto& f : failures) records += encode_failure(f);
  if (auto ec = storage_.append_file(to_string(state), queue_id, records, true))
    return to_queue_error(ec);
  return {};
}

std::error_code spool::defer(std::string_view queue_id, time_point next_attempt,
                             std::span<const recipient_reason> reasons) {
  if (auto ec = materialize(queue_id)) return ec;
  queue_state state;
  std::uint32_t attempts;
  bool unsynced;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(queue_id);
    if (it == index_.end()) return errc::not_found;
    for (const auto& r : reasons)
      if (r.index >= it->second.done.size()) return errc::invalid_state;
    state = it->second.dir;
    unsynced = it->second.dir_unsynced;
    attempts = it->second.attempts + 1;
    drop_image(it->second);
  }
  std::string records = encode_deferred(attempts, next_attempt);
  for (const auto& r : reasons) records += encode_reason(r.index, r.reason);
  if (auto ec = storage_.append_file(to_string(state), queue_id, records, true))
    return to_queue_error(ec);
  {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(queue_id); it != index_.end()) {
      it->second.attempts = attempts;
      if (state == queue_state::deferred) it->second.state = queue_state::deferred;
    }
  }
  if (state != queue_state::deferred)
    return move(std::string(queue_id), state, queue_state::deferred);
  if (unsynced) {
    // An earlier move here failed at its directory fsync: until that succeeds, a crash could
    // bring the message back from its old directory only.
    std::lock_guard lock(dir_mutex_);
    if (storage_.sync_dir(to_string(queue_state::deferred))) return errc::write_error;
    std::lock_guard index_lock(mutex_);
    if (auto it = index_.find(queue_id); it != index_.end()) it->second.dir_unsynced = false;
  }
  return {};
}

std::error_code spool::remove(std::string_view queue_id) {
  queue_state state;
  bool finished, journal_only;
  std::uint64_t segment;
  {
    std::lock_guard lock(mutex_);
    auto it = index_.find(queue_id);
    if (it == index_.end()) return errc::not_found;
    state = it->second.dir;
    finished =
        std::find(it->second.done.begin(), it->second.done.end(), false) == it->second.done.end();
    journal_only = !it->second.materialized;
    segment = it->second.segment;
  }
  if (segment != 0) {
    // The 'X' record first: if it is durable and the unlink below is not, recovery still
    // knows the message is gone.
    std::string records;
    append_journal_gone(records, queue_id);
    std::uint64_t seg = 0, at = 0;
    std::lock_guard lock(journal_mutex_);
    if (append_journal(records, seg, at)) return errc::write_error;
  }
  if (journal_only) {
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(queue_id); it != index_.end()) {
      if (auto s = segments_.find(it->second.segment); s != segments_.end() && s->second.live > 0)
        --s->second.live;
      drop_image(it->second);
      index_.erase(it);
    }
    return {};
  }
  const std::string_view dir = to_string(state);
  if (auto ec = storage_.unlink(dir, queue_id); ec && ec != std::errc::no_such_file_or_directory)
    return errc::write_error;
  if (!finished) {
    // Unfinished mail would come back after a crash, also through a stale name that an
    // earlier move left in a directory not synced since: sync them all (removing unfinished
    // mail is rare). Finished mail needs none of this: recover() deletes it again. On failure
    // the index keeps the message so that a retry syncs again.
    std::lock_guard lock(dir_mutex_);
    for (auto s : all_states)
      if (storage_.sync_dir(to_string(s))) return errc::write_error;
  }
  std::lock_guard lock(mutex_);
  if (auto it = index_.find(queue_id); it != index_.end()) {
    drop_image(it->second);
    index_.erase(it);
  }
  return {};
}

std::optional<queue_state> spool::state_of(std::string_view queue_id) const {
  std::lock_guard lock(mutex_);
  auto it = index_.find(queue_id);
  if (it == index_.end()) return std::nullopt;
  return it->second.state;
}

std::size_t spool::message_count() const {
  std::lock_guard lock(mutex_);
  return index_.size();
}

std::error_code spool::list(std::vector<queue_entry>& out) {
  out.clear();
  std::vector<std::string> names;
  std::set<std::string, std::less<>> with_files;
  std::string bytes, why;
  decoded_file f;
  const auto add = [&](std::string_view name, queue_state s, const decoded_file& df) {
    queue_entry e;
    e.queue_id = std::string(name);
    e.state = state_of(name).value_or(s);  // mail being delivered is active in memory only
    e.size_bytes = df.content_bytes;
    e.arrival = df.env.arrival;
    e.sender = df.env.sender;
    for (std::size_t i = 0; i < df.env.recipients.size(); ++i)
      if (!df.status[i].done)
        e.recipients.push_back({df.env.recipients[i].address, df.status[i].reason});
    out.push_back(std::move(e));
  };
  for (auto s : all_states) {
    if (auto ec = storage_.list(to_string(s), names, options_.directory_files_max)) return ec;
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      if (!valid_queue_id(name)) continue;
      if (storage_.read_file(to_string(s), name, SIZE_MAX, bytes)) continue;
      if (decode(bytes, f, why)) continue;
      with_files.insert(name);
      add(name, s, f);
    }
  }
  // Journal-only messages (a running relay's fresh mail), after their state's files.
  journal_scan js;
  if (auto ec = scan_journal_dir(js)) return ec;
  for (const auto& [id, image] : js.live) {
    if (with_files.contains(id) || decode(image, f, why)) continue;
    add(id, queue_state::incoming, f);
  }
  std::stable_sort(out.begin(), out.end(), [](const queue_entry& a, const queue_entry& b) {
    return a.state != b.state ? a.state < b.state : a.queue_id < b.queue_id;
  });
  return {};
}

// ---------------------------------------------------------------------------------------------
// recovery

std::error_code spool::recover(recovery_report& report) {
  report = recovery_report{};
  struct found {
    queue_state state;
    index_entry entry;
    std::uint32_t attempts;
    std::optional<time_point> next;
  };
  std::map<std::string, found, std::less<>> messages;
  // Every queue ID that has a file, whatever became of it: its journal copy is older.
  std::set<std::string, std::less<>> has_file;
  bool dirty[3] = {};
  std::vector<std::string> names;
  std::string bytes, why;
  decoded_file f;

  for (auto s : all_states) {
    const std::string_view dir = to_string(s);
    if (auto ec = storage_.list(dir, names, options_.directory_files_max)) return ec;
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      const std::string_view nv = name;
      if (nv.ends_with(tmp_suffix) && valid_queue_id(nv.substr(0, nv.size() - tmp_suffix.size()))) {
        if (!storage_.unlink(dir, name)) {
          ++report.incomplete_removed;
          dirty[static_cast<int>(s)] = true;
        }
        continue;
      }
      auto quarantine_with = [&](std::string reason) {
        if (auto ec = quarantine(dir, name))
          report.unreadable_files.push_back({std::string(dir), name, ec});
        else
          report.quarantined_files.push_back({std::string(dir), name, std::move(reason)});
      };
      if (!valid_queue_id(name)) {
        quarantine_with("unexpected file name");
        continue;
      }
      has_file.insert(name);
      const std::size_t bytes_max =
          options_.message_size_limit_bytes == 0
              ? SIZE_MAX
              : options_.message_size_limit_bytes + options_.envelope_bytes_max;
      if (auto ec = storage_.read_file(dir, name, bytes_max, bytes)) {
        if (ec == std::errc::file_too_large)
          quarantine_with("file too large");
        else
          report.unreadable_files.push_back({std::string(dir), name, ec});
        continue;
      }
      if (decode(bytes, f, why)) {
        quarantine_with(why);
        continue;
      }
      if (f.env.queue_id != name) {
        quarantine_with("queue ID does not match file name");
        continue;
      }
      if (f.torn_tail) {
        // Rewrite the durable prefix so later appends follow a clean record boundary.
        const std::string tmp = name + std::string(tmp_suffix);
        const std::string_view piece[] = {std::string_view(bytes).substr(0, f.file_bytes)};
        std::error_code ec = storage_.write_file(dir, tmp, piece, true);
        if (!ec) ec = storage_.rename(dir, tmp, dir, name);
        if (!ec) {
          std::lock_guard lock(dir_mutex_);
          ec = storage_.sync_dir(dir);
        }
        if (ec) {
          (void)storage_.unlink(dir, tmp);
          report.unreadable_files.push_back({std::string(dir), name, ec});
          continue;
        }
        ++report.torn_tails_repaired;
      }
      const bool finished = std::all_of(f.status.begin(), f.status.end(),
                                        [](const recipient_status& r) { return r.done; });
      if (finished) {
        if (!storage_.unlink(dir, name)) {
          ++report.finished_removed;
          dirty[static_cast<int>(s)] = true;
        }
        continue;
      }
      if (auto it = messages.find(name); it != messages.end()) {
        // Same file under two names: a move whose source directory was never synced. Keep the
        // later state (deferred > active > incoming); the data is the same inode.
        if (!storage_.unlink(to_string(it->second.state), name)) {
          ++report.duplicates_removed;
          dirty[static_cast<int>(it->second.state)] = true;
        }
        messages.erase(it);
      }
      found fd{s, {s, s, false, {}, f.attempts, nullptr}, f.attempts, f.next_attempt};
      fd.entry.done.reserve(f.status.size());
      for (const auto& r : f.status) fd.entry.done.push_back(r.done);
      messages.emplace(name, std::move(fd));
    }
  }

  // The journal: messages that left ('X') take any file a crash left behind with them;
  // messages still in it get their own file unless they have one already (a materialized
  // message's file is newer than its journal copy).
  journal_scan js;
  if (auto ec = scan_journal_dir(js)) return ec;
  for (const auto& id : js.gone) {
    auto it = messages.find(id);
    if (it == messages.end()) continue;
    if (!storage_.unlink(to_string(it->second.state), id)) {
      ++report.finished_removed;
      dirty[static_cast<int>(it->second.state)] = true;
    }
    messages.erase(it);
  }
  for (const auto& [id, image] : js.live) {
    if (has_file.contains(id)) continue;
    const std::string_view dir = to_string(queue_state::incoming);
    if (decode(image, f, why) || f.env.queue_id != id) {
      const std::string_view piece[] = {image};
      if (auto ec = storage_.write_file(corrupt_directory, id, piece, true))
        report.unreadable_files.push_back({std::string(journal_directory), id, ec});
      else
        report.quarantined_files.push_back({std::string(journal_directory), id, why});
      continue;
    }
    const std::string tmp = id + std::string(tmp_suffix);
    const std::string_view piece[] = {image};
    std::error_code ec = storage_.write_file(dir, tmp, piece, true);
    if (!ec) ec = storage_.rename(dir, tmp, dir, id);
    if (ec) return ec;  // the journal stays; the next start tries again
    dirty[static_cast<int>(queue_state::incoming)] = true;
    ++report.journal_messages;
    found fd{queue_state::incoming,
             {queue_state::incoming, queue_state::incoming, false, {}, f.attempts, nullptr},
             f.attempts,
             f.next_attempt};
    for (const auto& r : f.status) fd.entry.done.push_back(r.done);
    messages.emplace(id, std::move(fd));
  }

  // Active mail goes back to incoming, as Postfix's queue manager does at startup.
  bool moved = false;
  for (auto& [id, fd] : messages) {
    if (fd.state != queue_state::active) continue;
    if (!storage_.rename(to_string(queue_state::active), id, to_string(queue_state::incoming),
                         id)) {
      fd.state = fd.entry.state = fd.entry.dir = queue_state::incoming;
      moved = true;
    }
  }
  {
    std::lock_guard lock(dir_mutex_);
    if (moved) dirty[static_cast<int>(queue_state::incoming)] = true;
    // Target (incoming) first, so no crash can lose a moved message.
    for (int i = 0; i < 3; ++i)
      if (dirty[i] || (moved && i == static_cast<int>(queue_state::active)))
        if (auto ec = storage_.sync_dir(to_string(all_states[i]))) return ec;
    if (!js.segments.empty()) {
      // Everything in the journal now has a durable file (or is gone): replayed segments go.
      if (auto ec = storage_.sync_dir(corrupt_directory)) return ec;  // quarantined records
      for (const auto seq : js.segments)
        if (auto ec = storage_.unlink(journal_directory, journal_segment_name(seq));
            ec && ec != std::errc::no_such_file_or_directory)
          return ec;
      if (auto ec = storage_.sync_dir(journal_directory)) return ec;
      report.journal_segments_removed = js.segments.size();
    }
  }
  {
    std::lock_guard journal_lock(journal_mutex_);
    current_segment_ = 0;
    if (!js.segments.empty()) next_segment_ = std::max(next_segment_, js.segments.back() + 1);
  }

  std::lock_guard lock(mutex_);
  index_.clear();
  segments_.clear();
  cached_bytes_ = 0;
  for (auto& [id, fd] : messages) {
    recovered_message m;
    m.queue_id = id;
    m.state = fd.state;
    m.recipients_undone =
        static_cast<std::size_t>(std::count(fd.entry.done.begin(), fd.entry.done.end(), false));
    m.attempts = fd.attempts;
    m.next_attempt = fd.next;
    report.messages.push_back(std::move(m));
    index_.emplace(id, std::move(fd.entry));
  }
  return {};
}

}  // namespace relaylab::queue
