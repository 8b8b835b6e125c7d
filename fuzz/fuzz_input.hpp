// Structured reading of a libFuzzer input: each target draws its choices (flags, sizes, a seed
// for later decisions) from the front and treats the rest as the bytes under test. Reads past
// the end give zeros and empty strings, so every input is a valid program for the target.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace relaylab::fuzz {

/// A broken invariant: says which and aborts, so libFuzzer keeps the input as a crash.
[[noreturn]] inline void fail(const char* target, const char* what, std::string_view detail) {
  std::fprintf(stderr, "%s: %s: %.*s\n", target, what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

class input {
 public:
  input(const std::uint8_t* data, std::size_t size)
      : data_(reinterpret_cast<const char*>(data), size) {}
  explicit input(std::string_view data) : data_(data) {}

  bool empty() const noexcept { return pos_ >= data_.size(); }
  std::size_t remaining() const noexcept { return data_.size() - pos_; }

  std::uint8_t byte() noexcept {
    if (empty()) return 0;
    return static_cast<std::uint8_t>(data_[pos_++]);
  }
  bool flag() noexcept { return (byte() & 1u) != 0; }
  /// Little-endian, from up to eight bytes.
  std::uint64_t u64() noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(byte()) << (8 * i);
    return v;
  }
  /// Up to `max` bytes, the length taken from the next byte.
  std::string_view chunk(std::size_t max) noexcept {
    const std::size_t want = max == 0 ? 0 : byte() % (max + 1);
    return take(want);
  }
  /// The bytes up to (not including) `sep`, which is consumed; the rest when absent.
  std::string_view until(char sep) noexcept {
    const std::size_t end = data_.find(sep, pos_);
    if (end == std::string_view::npos) return rest();
    const std::string_view out = data_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }
  std::string_view take(std::size_t n) noexcept {
    const std::string_view out = data_.substr(pos_ < data_.size() ? pos_ : data_.size(), n);
    pos_ += out.size();
    return out;
  }
  std::string_view rest() noexcept { return take(remaining()); }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

/// A small deterministic generator (splitmix64) for decisions drawn from one seed of the
/// input, so the bytes under test stay a plain stream that mutations keep meaningful.
class chooser {
 public:
  explicit chooser(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// 0 .. n-1 (n > 0).
  std::uint64_t below(std::uint64_t n) noexcept { return next() % n; }
  /// True with probability 1/n.
  bool one_in(std::uint64_t n) noexcept { return below(n) == 0; }

 private:
  std::uint64_t state_;
};

}  // namespace relaylab::fuzz
