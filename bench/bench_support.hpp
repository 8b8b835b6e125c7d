// Helpers shared by the benchmark binaries: scratch directories and the failure report that
// makes a broken relay path fail the smoke test.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace benchmark {
class State;
}

namespace relaylab::bench {

/// Marks the benchmark as failed (Google Benchmark's SkipWithError) and makes the binary exit
/// with status 1 (bench_main.cpp), so the CTest smoke tests catch a broken path; Google
/// Benchmark itself exits 0 after a skipped benchmark.
void fail(benchmark::State& state, const std::string& why);

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
/// Benchmarks are not the data path: failing to make one is fatal (throws).
class scratch_dir {
 public:
  explicit scratch_dir(const std::string& tag) {
    const char* base = std::getenv("TMPDIR");
    std::string templ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                        "/relaylab-bench-" + tag + "-XXXXXX";
    if (::mkdtemp(templ.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + templ);
    }
    path_ = templ;
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace relaylab::bench
