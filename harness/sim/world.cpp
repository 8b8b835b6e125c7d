#include "harness/sim/world.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>

#include "harness/sim/timer.hpp"

#include <algorithm>

namespace relaylab::sim {
namespace {

// Lets timers and streams find their world from an executor without any global.
class world_service : public boost::asio::execution_context::service {
 public:
  static inline boost::asio::execution_context::id id;
  explicit world_service(boost::asio::execution_context& ctx)
      : boost::asio::execution_context::service(ctx) {}
  void shutdown() override {}
  world* owner = nullptr;
};

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

std::string_view to_string(run_end e) noexcept {
  switch (e) {
    case run_end::idle:
      return "idle";
    case run_end::time_limit:
      return "time_limit";
    case run_end::step_limit:
      return "step_limit";
    case run_end::stopped:
      return "stopped";
  }
  return "?";
}

world::world(world_options options) : options_(options) {
  boost::asio::use_service<world_service>(*io_).owner = this;
  std::uint64_t x = options_.seed;
  for (auto& s : rng_) s = splitmix64(x);
}

world::~world() {
  shutdown();
  io_.reset();
}

void world::shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  // Events may own coroutine frames; drop them before the io_context destroys its handlers.
  while (!events_.empty()) events_.pop();
  // A coroutine suspended on a sim socket or timer is owned by the operation waiting there,
  // and often owns that socket (or timer) itself: a cycle nothing else breaks. Destroying the
  // operation destroys its handler, which hands the coroutine's frames to the io_context for
  // destruction (Asio unwinds through the executor); destroying the queued handlers then frees
  // the frames, and with them the sockets and timers they own.
  while (!slots_.empty()) {
    auto it = slots_.begin();
    detail::op_slot* slot = it->second;
    slots_.erase(it);
    auto op = slot->release_untracked();
    op.reset();  // may destroy `slot` itself, or other slots (which untrack themselves)
  }
  io_->destroy_handlers();
  while (!events_.empty()) events_.pop();  // scheduled by destructors during the reset
}

std::uint64_t world::track(detail::op_slot* slot) {
  if (shutting_down_) return 0;
  slots_.emplace(++slot_seq_, slot);
  return slot_seq_;
}

void world::untrack(std::uint64_t key) noexcept {
  if (key != 0) slots_.erase(key);
}

world* world::from(boost::asio::execution_context& ctx) noexcept {
  if (!boost::asio::has_service<world_service>(ctx)) return nullptr;
  return boost::asio::use_service<world_service>(ctx).owner;
}

world* world::from(const boost::asio::any_io_executor& ex) noexcept {
  return from(boost::asio::query(ex, boost::asio::execution::context));
}

std::uint64_t world::random() {
  const std::uint64_t result = rotl(rng_[1] * 5, 7) * 9;
  const std::uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = rotl(rng_[3], 45);
  return result;
}

std::uint64_t world::random_between(std::uint64_t lo, std::uint64_t hi) {
  if (hi <= lo) return lo;
  const std::uint64_t span = hi - lo + 1;
  if (span == 0) return random();  // the full 64-bit range
  return lo + random() % span;
}

bool world::chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return static_cast<double>(random() >> 11) * 0x1.0p-53 < p;
}

event_handle world::schedule_at(time_point at, std::function<void()> fn) {
  auto cancelled = std::make_shared<bool>(shutting_down_);
  if (shutting_down_) return event_handle(std::move(cancelled));
  events_.push(event{std::max(at, now_), seq_++, cancelled, std::move(fn)});
  return event_handle(std::move(cancelled));
}

run_end world::run(run_limits limits) {
  return run_until([] { return false; }, limits);
}

run_end world::run_until(const std::function<bool()>& done, run_limits limits) {
  stop_ = false;
  if (shutting_down_) return run_end::stopped;
  for (std::uint64_t step = 0; step < limits.steps_max; ++step) {
    if (done()) return run_end::idle;
    if (stop_) return run_end::stopped;
    io_->restart();
    if (io_->poll() > 0) continue;
    // Nothing ready: the next event decides what happens (and when).
    while (!events_.empty() && *events_.top().cancelled) events_.pop();
    if (events_.empty()) return run_end::idle;
    if (events_.top().at > limits.until) {
      now_ = std::max(now_, limits.until);
      return run_end::time_limit;
    }
    event e = events_.top();
    events_.pop();
    now_ = std::max(now_, e.at);
    *e.cancelled = true;  // done: handles no longer report it pending
    ++events_run_;
    e.fn();
    if (progress_ && events_run_ % progress_every_ == 0) progress_();
  }
  return run_end::step_limit;
}

}  // namespace relaylab::sim
