// A bounded cache of verified client names (verified_peer_name results) for the daemon.
//
// Postfix smtpd asks the resolver for every connection; through glibc that is getnameinfo +
// getaddrinfo, each re-checking /etc/resolv.conf and /etc/nsswitch.conf and reading /etc/hosts
// (~16 syscalls per connection). Like nscd, relaylab keeps each answer for a while: both a name
// and "unknown" are kept for ttl_ms of the injected clock, at most entries_max of them; the
// least recently used entry goes first when the cache is full. A name that changes in DNS or
// /etc/hosts is therefore seen up to ttl_ms late.
//
// Thread-safe (one mutex); the lookup itself runs outside the lock, so a slow resolver does not
// hold up other threads' hits. Two threads missing the same address at once both look it up.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace relaylab::net {

struct peer_name_cache_options {
  /// How long an answer (name or "unknown") is reused; 0 disables the cache.
  std::chrono::milliseconds ttl_ms{60000};
  /// Most addresses kept; 0 disables the cache.
  std::size_t entries_max = 1024;
};

class peer_name_cache {
 public:
  /// Monotonic time in nanoseconds (same unit as net::timestamp).
  using clock_fn = std::function<std::chrono::nanoseconds()>;
  /// Verified name of a numeric address, or "unknown" (verified_peer_name in the daemon).
  using lookup_fn = std::function<std::string(const std::string& addr)>;

  struct stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;  // lookups performed (expired entries included)
    std::uint64_t evictions = 0;
  };

  peer_name_cache(clock_fn now, lookup_fn lookup, peer_name_cache_options options = {});

  /// The cached answer for `addr` if it is younger than ttl_ms, else lookup(addr), remembered.
  /// No errors of its own: whatever lookup returns (including "unknown") is the answer.
  std::string name(const std::string& addr);

  std::size_t size() const;
  stats counters() const;

 private:
  struct entry {
    std::string addr;
    std::string name;
    std::chrono::nanoseconds expires{};
  };
  using lru_list = std::list<entry>;  // most recently used first

  clock_fn now_;
  lookup_fn lookup_;
  peer_name_cache_options options_;
  mutable std::mutex mutex_;
  lru_list lru_;
  std::unordered_map<std::string, lru_list::iterator> index_;
  stats stats_;
};

}  // namespace relaylab::net
