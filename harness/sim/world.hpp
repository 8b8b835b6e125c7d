// The simulated world's heart: a virtual clock, an event queue ordered by (time, sequence), one
// seeded PRNG and the io_context on which every coroutine of the simulation runs.
//
// Single-threaded. The loop (world::run) alternates two things: run every ready Asio handler
// (io_context::poll until nothing is ready), then, when nothing is runnable, jump the virtual
// clock to the earliest pending event and run it. A 30 s connect timeout therefore costs no wall
// time, and two runs with the same seed and the same inputs execute the same handlers in the
// same order.
//
// Everything random in the simulation (jitter, loss, ephemeral ports, queue-ID seeds) is drawn
// from world::random() so the seed alone decides it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <vector>

namespace relaylab::sim {

namespace detail {
class op_slot;
}

/// Virtual time since the start of the simulation.
using duration = std::chrono::nanoseconds;
using time_point = duration;

/// Cancels a scheduled event when the owner no longer wants it (cheaper than removing it).
class event_handle {
 public:
  event_handle() = default;
  explicit event_handle(std::shared_ptr<bool> cancelled) : cancelled_(std::move(cancelled)) {}
  void cancel() noexcept {
    if (cancelled_) *cancelled_ = true;
  }
  bool pending() const noexcept { return cancelled_ && !*cancelled_; }

 private:
  std::shared_ptr<bool> cancelled_;
};

struct run_limits {
  /// Stop once virtual time would pass this point (relative to the simulation start).
  time_point until = std::chrono::hours(24 * 365);
  /// Events plus handler batches; a guard against livelock.
  std::uint64_t steps_max = 50'000'000;
};

enum class run_end {
  idle,        // nothing runnable and no event pending
  time_limit,  // the next event lies beyond run_limits::until (the clock is set to `until`)
  step_limit,
  stopped,  // world::stop()
};
std::string_view to_string(run_end e) noexcept;

struct world_options {
  std::uint64_t seed = 1;
  /// Wall-clock time at virtual time zero (what logs and Received: headers show).
  std::chrono::system_clock::time_point epoch =
      std::chrono::system_clock::time_point(std::chrono::seconds(1603246874));  // 2020-10-21
};

class world {
 public:
  explicit world(world_options options = {});
  ~world();
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  /// The world that owns `ctx` (every simulated timer and stream finds its world this way).
  /// Returns nullptr for an io_context not made by a world.
  static world* from(boost::asio::execution_context& ctx) noexcept;
  static world* from(const boost::asio::any_io_executor& ex) noexcept;

  boost::asio::io_context& io() noexcept { return *io_; }
  boost::asio::any_io_executor executor() { return io_->get_executor(); }

  /// Ends the simulation: drops pending events, destroys every operation still pending on a
  /// sim timer or socket (see detail::op_slot) and every handler queued in the io_context, so
  /// that each suspended coroutine frame is destroyed now, while the objects it refers to still
  /// exist. Call before destroying what the simulation ran (relay, fakes); afterwards timers
  /// and streams drop their completions instead of posting them, and handlers posted later (by
  /// objects that held a coroutine's completion) are only destroyed, with the io_context, when
  /// the world is. Idempotent.
  void shutdown();
  bool shutting_down() const noexcept { return shutting_down_; }

  time_point now() const noexcept { return now_; }
  std::chrono::system_clock::time_point wall_now() const noexcept {
    return options_.epoch + std::chrono::duration_cast<std::chrono::system_clock::duration>(now_);
  }
  std::uint64_t seed() const noexcept { return options_.seed; }

  /// The one PRNG (xoshiro256**, seeded by splitmix64 from the seed).
  std::uint64_t random();
  /// Uniform in [lo, hi] (inclusive); lo when hi <= lo.
  std::uint64_t random_between(std::uint64_t lo, std::uint64_t hi);
  /// True with probability p (0..1).
  bool chance(double p);

  /// Runs `fn` at virtual time `at` (not before now()). Events at the same time run in the
  /// order they were scheduled.
  event_handle schedule_at(time_point at, std::function<void()> fn);
  event_handle schedule_after(duration d, std::function<void()> fn) {
    return schedule_at(now_ + d, std::move(fn));
  }

  /// Runs until idle, a limit, or stop().
  run_end run(run_limits limits = {});
  /// Runs until `done()` is true (checked after every step), idle, or a limit.
  run_end run_until(const std::function<bool()>& done, run_limits limits = {});
  void stop() noexcept { stop_ = true; }

  std::uint64_t events_run() const noexcept { return events_run_; }
  /// Calls `fn` after every `every` events run (a progress display; null = none). It must not
  /// change the simulation.
  void on_progress(std::function<void()> fn, std::uint64_t every = 4096) {
    progress_ = std::move(fn);
    progress_every_ = every == 0 ? 1 : every;
  }
  std::size_t events_pending() const noexcept { return events_.size(); }
  /// Operations pending on sim timers and sockets (for tests).
  std::size_t operations_pending() const noexcept { return slots_.size(); }

  // For detail::op_slot: a slot holding an operation registers itself so that shutdown() can
  // destroy the operation. track() returns the key for untrack(); 0 = not tracked (during
  // shutdown nothing is).
  std::uint64_t track(detail::op_slot* slot);
  void untrack(std::uint64_t key) noexcept;

 private:
  struct event {
    time_point at;
    std::uint64_t seq;
    std::shared_ptr<bool> cancelled;
    std::function<void()> fn;
  };
  struct later {
    bool operator()(const event& a, const event& b) const noexcept {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };

  // io_context with its services' shutdown (which destroys queued handlers) callable early.
  class context final : public boost::asio::io_context {
   public:
    context() : boost::asio::io_context(1) {}
    void destroy_handlers() { shutdown(); }
  };

  world_options options_;
  std::unique_ptr<context> io_ = std::make_unique<context>();
  std::map<std::uint64_t, detail::op_slot*> slots_;  // in registration order
  std::uint64_t slot_seq_ = 0;
  bool shutting_down_ = false;
  time_point now_{0};
  std::uint64_t seq_ = 0;
  std::uint64_t rng_[4] = {};
  std::priority_queue<event, std::vector<event>, later> events_;
  std::uint64_t events_run_ = 0;
  bool stop_ = false;
  std::function<void()> progress_;
  std::uint64_t progress_every_ = 4096;
};

}  // namespace relaylab::sim
