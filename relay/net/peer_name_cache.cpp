#include "relay/net/peer_name_cache.hpp"

#include <utility>

namespace relaylab::net {

peer_name_cache::peer_name_cache(clock_fn now, lookup_fn lookup, peer_name_cache_options options)
    : now_(std::move(now)), lookup_(std::move(lookup)), options_(options) {}

std::string peer_name_cache::name(const std::string& addr) {
  const bool enabled = options_.ttl_ms.count() > 0 && options_.entries_max > 0;
  if (!enabled) {
    std::lock_guard lock(mutex_);
    ++stats_.misses;
    // Fall through to the lookup below without touching the cache.
  } else {
    const auto t = now_();
    std::lock_guard lock(mutex_);
    if (const auto it = index_.find(addr); it != index_.end()) {
      if (t < it->second->expires) {
        lru_.splice(lru_.begin(), lru_, it->second);
        ++stats_.hits;
        return it->second->name;
      }
    }
    ++stats_.misses;
  }
  std::string answer = lookup_(addr);
  if (!enabled) return answer;

  const auto expires =
      now_() + std::chrono::duration_cast<std::chrono::nanoseconds>(options_.ttl_ms);
  std::lock_guard lock(mutex_);
  if (const auto it = index_.find(addr); it != index_.end()) {
    it->second->name = answer;
    it->second->expires = expires;
    lru_.splice(lru_.begin(), lru_, it->second);
    return answer;
  }
  // Full: the least recently used entry makes room. Expired entries need no sweep of their
  // own: nobody asks for them, so they drift to the back and go first.
  while (index_.size() >= options_.entries_max && !lru_.empty()) {
    index_.erase(lru_.back().addr);
    lru_.pop_back();
    ++stats_.evictions;
  }
  lru_.push_front(entry{addr, answer, expires});
  index_.emplace(addr, lru_.begin());
  return answer;
}

std::size_t peer_name_cache::size() const {
  std::lock_guard lock(mutex_);
  return index_.size();
}

peer_name_cache::stats peer_name_cache::counters() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace relaylab::net
