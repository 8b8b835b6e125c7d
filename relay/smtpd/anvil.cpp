// Postfix anvil.c's counters (ANVIL_REMOTE_* macros), per connection link and whole seconds.
#include "relay/smtpd/anvil.hpp"

#include <algorithm>
#include <climits>

namespace relaylab::smtpd {
namespace {

std::string key_of(const std::string& service, const std::string& addr) {
  return service + ":" + addr;
}

}  // namespace

anvil::anvil(std::chrono::seconds time_unit) : unit_(std::max<long long>(1, time_unit.count())) {}

anvil::local::~local() {
  if (anvil_) anvil_->release(*this);
}

long long anvil::seconds(smtp::timestamp t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t).count();
}

void anvil::expire(long long now) {
  while (!expiry_.empty() && expiry_.front().first <= now) {
    auto it = entries_.find(expiry_.front().second);
    if (it != entries_.end() && it->second.count == 0 &&
        it->second.expires == expiry_.front().first)
      entries_.erase(it);
    expiry_.pop_front();
  }
}

void anvil::incr(entry& e, int& counter, long long now) {
  // ANVIL_REMOTE_INCR_RATE: reset every rate once the window is over, then count.
  if (e.start + unit_ < now) {
    e.rate = e.mail = e.rcpt = e.ntls = e.auth = 0;
    e.start = now;
  }
  if (counter < INT_MAX) ++counter;
}

anvil::entry& anvil::conn_update(local& l, const std::string& key, long long now) {
  auto [it, fresh] = entries_.try_emplace(key);
  entry& e = it->second;
  if (fresh) {
    e.count = 1;
    e.rate = 1;
    e.start = now;
  } else {
    incr(e, e.rate, now);
    if (e.count == 0) e.expires = -1;
    ++e.count;
  }
  e.expires = -1;
  // ANVIL_LOCAL_ADD_ONE: a connection holds one entry; a previous link is counted down.
  if (!l.linked_.empty()) drop_one(l.linked_, now);
  l.linked_ = key;
  return e;
}

void anvil::drop_one(const std::string& key, long long now) {
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.count <= 0) return;
  if (--it->second.count == 0) {
    it->second.expires = now + unit_;
    expiry_.emplace_back(it->second.expires, key);
  }
}

anvil::connect_result anvil::connect(local& l, const std::string& service, const std::string& addr,
                                     smtp::timestamp now) {
  std::lock_guard lock(mutex_);
  const long long s = seconds(now);
  expire(s);
  l.anvil_ = this;
  const entry& e = conn_update(l, key_of(service, addr), s);
  return {e.count, e.rate};
}

void anvil::disconnect(local& l, const std::string& service, const std::string& addr,
                       smtp::timestamp now) {
  std::lock_guard lock(mutex_);
  const long long s = seconds(now);
  expire(s);
  const std::string key = key_of(service, addr);
  if (l.linked_ != key) return;
  drop_one(key, s);
  l.linked_.clear();
}

void anvil::release(local& l) {
  std::lock_guard lock(mutex_);
  if (l.linked_.empty()) return;
  // Postfix stamps the expiry from the event clock; the latest window start is a safe floor.
  auto it = entries_.find(l.linked_);
  const long long s = it == entries_.end() ? 0 : it->second.start;
  drop_one(l.linked_, s);
  l.linked_.clear();
}

int anvil::event(local& l, const std::string& service, const std::string& addr, smtp::timestamp now,
                 what w) {
  std::lock_guard lock(mutex_);
  const long long s = seconds(now);
  expire(s);
  l.anvil_ = this;
  const std::string key = key_of(service, addr);
  auto it = entries_.find(key);
  // "Be prepared for postfix reload after connect": an unknown client is registered here.
  entry& e = it != entries_.end() ? it->second : conn_update(l, key, s);
  int& counter = w == what::mail   ? e.mail
                 : w == what::rcpt ? e.rcpt
                 : w == what::auth ? e.auth
                                   : e.ntls;
  incr(e, counter, s);
  return counter;
}

int anvil::mail(local& l, const std::string& service, const std::string& addr,
                smtp::timestamp now) {
  return event(l, service, addr, now, what::mail);
}
int anvil::rcpt(local& l, const std::string& service, const std::string& addr,
                smtp::timestamp now) {
  return event(l, service, addr, now, what::rcpt);
}
int anvil::auth(local& l, const std::string& service, const std::string& addr,
                smtp::timestamp now) {
  return event(l, service, addr, now, what::auth);
}
int anvil::newtls(local& l, const std::string& service, const std::string& addr,
                  smtp::timestamp now) {
  return event(l, service, addr, now, what::ntls);
}

int anvil::newtls_stat(const std::string& service, const std::string& addr, smtp::timestamp now) {
  std::lock_guard lock(mutex_);
  const long long s = seconds(now);
  expire(s);
  auto it = entries_.find(key_of(service, addr));
  if (it == entries_.end()) return 0;
  entry& e = it->second;
  if (e.start != 0 && e.start + unit_ < s) {
    // "Do not report stale information": anvil resets with start 0.
    e.rate = e.mail = e.rcpt = e.ntls = e.auth = 0;
    e.start = 0;
  }
  return e.ntls;
}

std::size_t anvil::entries() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace relaylab::smtpd
