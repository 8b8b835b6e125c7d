#include "harness/sim/timer.hpp"

#include <cassert>

namespace relaylab::sim {

timer::timer(const executor_type& ex) : ex_(ex), world_(world::from(ex)) {
  assert(world_ && "sim::timer needs an executor of a sim::world");
  expiry_ = world_->now();
}

timer::~timer() { cancel(); }

std::size_t timer::expires_after(duration d) { return expires_at(world_->now() + d); }

std::size_t timer::expires_at(time_point t) {
  const std::size_t n = cancel();
  expiry_ = t;
  return n;
}

std::size_t timer::cancel() {
  event_.cancel();
  if (!op_) return 0;
  auto op = op_.take();
  if (world_->shutting_down()) return 1;  // the io_context is gone: drop the handler
  op->complete(boost::asio::error::operation_aborted, 0);
  return 1;
}

void timer::start_wait(std::unique_ptr<detail::pending_op> op) {
  // One wait at a time, as the driver uses it; a second wait replaces (aborts) the first.
  cancel();
  op_.set(*world_, std::move(op));
  event_ = world_->schedule_at(expiry_, [this] {
    if (!op_) return;
    auto op = op_.take();
    op->complete({}, 0);
  });
}

}  // namespace relaylab::sim
