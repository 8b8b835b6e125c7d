#include "relay/net/driver.hpp"

namespace relaylab::net {

connection_signal::connection_signal(std::function<void(std::function<void()>)> post_fn)
    : post_(std::move(post_fn)) {}

std::shared_ptr<connection_signal> make_connection_signal(
    std::function<void(std::function<void()>)> post_fn) {
  auto s = std::make_shared<connection_signal>(std::move(post_fn));
  s->self_ = s;
  return s;
}

std::function<void()> connection_signal::notifier() {
  return [w = self_] {
    // Runs on any thread (e.g. the queue's committer): set the flag first so the driver sees
    // it even if it is already awake, then post the wake-up to the connection's executor.
    if (auto s = w.lock()) {
      s->pending_.store(true);
      s->post_([w] {
        if (auto s2 = w.lock()) s2->wake();
      });
    }
  };
}

void connection_signal::request_stop() {
  stop_.store(true);
  wake();
}

std::string_view to_string(driver_end e) noexcept {
  switch (e) {
    case driver_end::closed:
      return "closed";
    case driver_end::peer_eof:
      return "peer_eof";
    case driver_end::io_error:
      return "io_error";
    case driver_end::stopped:
      return "stopped";
    case driver_end::iteration_limit:
      return "iteration_limit";
  }
  return "closed";
}

}  // namespace relaylab::net
