// libFuzzer target: queue recovery (relay/queue) over a damaged spool. A corrupt spool must
// never crash the relay's start, and what recovery keeps must be readable to the end.
//
// Input: 1 byte of mode, then a program. The spool is first filled through its own API (a few
// messages, some recipients done, some deferred, optionally the group-commit journal), then
// the program damages the stored files: flipped bytes, truncations, appended garbage, files
// replaced or added with bytes from the input, a simulated crash. A second spool then opens,
// recovers, lists, loads every recovered message and reads its content to the end. The raw
// bytes also go through the queue file decoder and the journal scanner directly.
//
// Checked beyond the sanitizers: recovery and every load either succeed or report an error
// (never throw), a loaded message's content reads back exactly content_bytes, and the journal
// scanner's valid prefix is within the bytes scanned.
#include "fuzz/fuzz_input.hpp"
#include "relay/queue/journal.hpp"
#include "relay/queue/queue_file.hpp"
#include "relay/queue/spool.hpp"
#include "relay/queue/storage.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::queue {
namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  fuzz::fail("spool_recovery_fuzz", what, detail);
}

constexpr std::array<std::string_view, 5> directories = {"incoming", "active", "deferred",
                                                         "journal", "corrupt"};

struct fake_time {
  time_point now = time_point(std::chrono::seconds(1795841773));
  clock_function clock() {
    return [this] {
      now += std::chrono::microseconds(37);
      return now;
    };
  }
};

random_function counter_random() {
  return [n = std::uint64_t{0x5eed}]() mutable { return n = n * 6364136223846793005ULL + 1; };
}

spool_options options_for(std::uint8_t mode) {
  spool_options o;
  o.mode = commit_mode::immediate;
  o.journal = (mode & 1u) != 0;
  o.journal_preallocate_bytes = (mode & 2u) != 0 ? 4096 : 0;
  o.journal_segment_bytes_max = (mode & 4u) != 0 ? 512 : 16u << 20;
  o.message_size_limit_bytes = 1 << 20;
  o.envelope_bytes_max = 1 << 20;
  return o;
}

void fill(spool& sp, fuzz::input& in) {
  const int messages = 1 + in.byte() % 4;
  for (int i = 0; i < messages; ++i) {
    incoming_message m;
    if (sp.begin(m)) return;
    m.set_sender(std::string(in.chunk(40)));
    m.add_attribute("client_address", "203.0.113.9");
    const int rcpts = 1 + in.byte() % 3;
    for (int r = 0; r < rcpts; ++r) (void)m.add_recipient({std::string(in.chunk(40)), "", 0});
    (void)m.append_content(in.chunk(200));
    const std::string id = m.queue_id();
    bool done = false;
    sp.commit(std::move(m), [&](const commit_status&) { done = true; });
    if (!done) sp.flush();
    const std::uint8_t fate = in.byte();
    if (fate & 1u) {
      const std::uint32_t first[] = {0};
      (void)sp.mark_done(id, first, done_outcome::delivered);
    }
    if (fate & 2u) {
      (void)sp.activate(id);
      const recipient_reason reasons[] = {{0, "451 4.3.0 try again"}};
      (void)sp.defer(id, time_point(std::chrono::seconds(1795845373)), reasons);
    }
    if (fate & 4u) (void)sp.remove(id);
  }
}

void damage(mem_storage& st, fuzz::input& in) {
  for (int op = 0; op < 32 && !in.empty(); ++op) {
    const std::uint8_t what = in.byte();
    const std::string_view dir = directories[in.byte() % directories.size()];
    std::vector<std::string> names;
    (void)st.list(dir, names, 64);
    std::sort(names.begin(), names.end());
    const std::string name =
        names.empty() ? std::string(in.chunk(20)) : names[in.byte() % names.size()];
    switch (what % 6) {
      case 0:
        (void)st.corrupt_byte(dir, name, in.byte() | (std::size_t{in.byte()} << 8));
        break;
      case 1:
        (void)st.truncate(dir, name, in.byte() | (std::size_t{in.byte()} << 8));
        break;
      case 2:
        (void)st.append_file(dir, name, in.chunk(64), true);
        break;
      case 3:  // a file with bytes from the input, durable (a stray or rewritten file)
        st.put_durable(dir, names.empty() || in.flag() ? std::string(in.chunk(20)) : name,
                       std::string(in.chunk(255)));
        break;
      case 4:
        (void)st.unlink(dir, name);
        break;
      default:
        st.crash();
        break;
    }
  }
}

void recover_and_read(mem_storage& st, std::uint8_t mode) {
  fake_time t;
  spool sp(st, t.clock(), counter_random(), options_for(mode));
  if (sp.open()) return;
  recovery_report report;
  if (sp.recover(report)) return;
  std::vector<queue_entry> entries;
  (void)sp.list(entries);
  for (const auto& m : report.messages) {
    queued_message q;
    if (sp.load(m.queue_id, q)) continue;
    std::string all, chunk;
    for (std::uint64_t off = 0; off < q.file.content_bytes; off += chunk.size()) {
      if (sp.read_content(q, off, 97, chunk)) return;
      if (chunk.empty()) break;
      all += chunk;
    }
    if (all.size() != q.file.content_bytes) fail("content shorter than content_bytes", m.queue_id);
  }
  // A second recovery of the recovered spool finds nothing more to quarantine.
  spool again(st, t.clock(), counter_random(), options_for(mode));
  if (again.open()) return;
  recovery_report second;
  if (again.recover(second)) return;
  if (!second.quarantined_files.empty())
    fail("recovery quarantined a file it had kept", second.quarantined_files.front().name);
}

void run(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();

  // The raw bytes through the readers directly.
  {
    const std::string_view raw(reinterpret_cast<const char*>(data), size);
    decoded_file f;
    std::string why;
    (void)decode(raw, f, why);
    const std::uint64_t valid = scan_journal(raw, [](const journal_entry& e) {
      decoded_file g;
      std::string w;
      (void)decode(e.image, g, w);
    });
    if (valid > raw.size()) fail("journal prefix longer than the bytes", "");
  }

  mem_storage st;
  {
    fake_time t;
    spool sp(st, t.clock(), counter_random(), options_for(mode));
    if (sp.open()) return;
    recovery_report r;
    if (sp.recover(r)) return;
    fill(sp, in);
  }
  damage(st, in);
  recover_and_read(st, mode);
}

}  // namespace
}  // namespace relaylab::queue

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  relaylab::queue::run(data, size);
  return 0;
}
