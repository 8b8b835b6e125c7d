// The spool's durable commit on the real file system (relay/queue fs_storage in a scratch
// directory under $TMPDIR or /tmp): no group commit (commit_batch_max = 1, one full fsync round
// per message) against group commit with 8, 32 and 128 commits pending per run_once().
#include "bench/bench_support.hpp"
#include "relay/queue/spool.hpp"

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>

namespace relaylab::bench {
namespace {

std::string content_1k() {
  std::string m = "Subject: bench\r\nMessage-ID: <bench@fugafuga.com>\r\n\r\n";
  std::string line;
  for (int i = 0; i < 70; ++i) line += static_cast<char>('a' + i % 26);
  line += "\r\n";
  while (m.size() + line.size() <= 1024) m += line;
  return m;
}

/// Per iteration: `concurrent` messages (1 KiB, one recipient) are begun, filled and committed
/// (enqueued), then run_once() is called until every callback ran; with commit_batch_max =
/// `concurrent` that is one run_once() and one directory fsync for the lot. Counters come from
/// fs_storage's fault_injector, which counts every storage operation.
void BM_queue_commit(benchmark::State& state) {
  const auto batch_max = static_cast<std::size_t>(state.range(0));
  const auto concurrent = static_cast<std::size_t>(state.range(1));
  scratch_dir dir("queue");
  queue::fs_storage storage(dir.path());
  queue::spool_options so;
  so.mode = queue::commit_mode::queued;
  so.commit_batch_max = batch_max;
  auto tick = std::make_shared<std::int64_t>(0);
  queue::spool spool(
      storage,
      [tick] {
        return std::chrono::system_clock::time_point(std::chrono::seconds(1795841628)) +
               std::chrono::microseconds(++*tick);
      },
      [n = std::uint64_t{0}]() mutable { return ++n; }, so);
  if (auto ec = spool.open()) {
    fail(state, "spool open: " + ec.message());
    return;
  }
  const std::string content = content_1k();
  storage.faults().reset_counts();
  std::size_t done = 0, failed = 0, run_onces = 0;
  std::uint64_t commits = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < concurrent; ++i) {
      queue::incoming_message m;
      if (auto ec = spool.begin(m)) {
        fail(state, "begin: " + ec.message());
        return;
      }
      m.set_sender("hogehoge@fugafuga.com");
      m.add_attribute("client_address", "203.0.113.9");
      (void)m.add_recipient({"friend@gmail.com", {}, 0});
      (void)m.append_content(content);
      spool.commit(std::move(m), [&](const queue::commit_status& s) {
        ++done;
        if (s.ec) ++failed;
      });
    }
    for (std::size_t guard = 0; spool.pending_commits() > 0 && guard <= concurrent; ++guard) {
      spool.run_once();
      ++run_onces;
    }
    commits += concurrent;
  }
  if (done != commits || failed != 0) {
    fail(state, "commits: " + std::to_string(commits) + ", called back: " + std::to_string(done) +
                    ", failed: " + std::to_string(failed));
    return;
  }
  const double n = static_cast<double>(commits);
  const auto& f = storage.faults();
  const double file_fsyncs = static_cast<double>(f.count(queue::storage_op::fsync));
  const double dir_fsyncs = static_cast<double>(f.count(queue::storage_op::sync_dir));
  state.SetItemsProcessed(static_cast<std::int64_t>(commits));
  state.counters["fsyncs_per_commit"] = benchmark::Counter((file_fsyncs + dir_fsyncs) / n);
  state.counters["file_fsyncs_per_commit"] = benchmark::Counter(file_fsyncs / n);
  state.counters["dir_fsyncs_per_commit"] = benchmark::Counter(dir_fsyncs / n);
  state.counters["commits_per_run_once"] =
      benchmark::Counter(n / static_cast<double>(std::max<std::size_t>(1, run_onces)));
  state.SetLabel(batch_max == 1 ? "no group commit" : "group commit");
}
BENCHMARK(BM_queue_commit)
    ->ArgNames({"batch_max", "concurrent"})
    ->Args({1, 1})
    ->Args({1, 32})
    ->Args({8, 8})
    ->Args({32, 32})
    ->Args({128, 128})
    ->UseRealTime()  // commits wait on the disk, which CPU time does not see
    ->Unit(benchmark::kMicrosecond);

/// The device's limit, without relay code: create a 1 KiB file, fsync it, close it (what each
/// commit costs at least), from 1 thread and from 8 threads at once. If 8 threads get far more
/// fsyncs per second than 1, the disk could take more commits than a committer that fsyncs the
/// files of a batch one after another.
void BM_fsync_reference(benchmark::State& state) {
  static std::unique_ptr<scratch_dir> dir;
  static std::atomic<std::uint64_t> seq{0};
  if (state.thread_index() == 0) dir = std::make_unique<scratch_dir>("fsync");
  const std::string data(1024, 'x');
  std::string path;
  for (auto _ : state) {
    // Built piecewise: GCC 12 -O3 takes `"f" + std::to_string(..)` for an overlapping memcpy.
    path = dir->path().string();
    path += "/f";
    path += std::to_string(seq.fetch_add(1));
    const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 || ::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()) ||
        ::fsync(fd) != 0) {
      if (fd >= 0) ::close(fd);
      fail(state, "create/write/fsync " + path + " failed");
      break;
    }
    ::close(fd);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) state.SetLabel("open+write 1 KiB+fsync+close");
}
BENCHMARK(BM_fsync_reference)->Threads(1)->Threads(8)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace relaylab::bench
