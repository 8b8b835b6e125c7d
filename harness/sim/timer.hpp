// A timer on the world's virtual clock, usable wherever Asio code expects a waitable timer:
// as the `Timer` of relay/net/driver.hpp run_connection, or directly with use_awaitable.
//
// Completion handlers are always posted to their associated executor (never run inline), as
// Asio requires, so a simulated run orders them exactly like any other handler.
#pragma once

#include "harness/sim/world.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/system/error_code.hpp>

#include <cstddef>
#include <memory>
#include <utility>

namespace relaylab::sim {

namespace detail {

/// A type-erased, one-shot completion with the signature void(error_code, size_t) (timers
/// pass n = 0 and use only the error).
class pending_op {
 public:
  virtual ~pending_op() = default;
  virtual void complete(boost::system::error_code ec, std::size_t n) = 0;
};

template <class Handler, class Signature>
class pending_op_impl;

template <class Handler>
class pending_op_impl<Handler, void(boost::system::error_code)> final : public pending_op {
 public:
  pending_op_impl(Handler h, boost::asio::any_io_executor ex) : h_(std::move(h)), ex_(ex) {}
  void complete(boost::system::error_code ec, std::size_t) override {
    auto ex = boost::asio::get_associated_executor(h_, ex_);
    boost::asio::post(ex, [h = std::move(h_), ec]() mutable { std::move(h)(ec); });
  }

 private:
  Handler h_;
  boost::asio::any_io_executor ex_;
};

template <class Handler>
class pending_op_impl<Handler, void(boost::system::error_code, std::size_t)> final
    : public pending_op {
 public:
  pending_op_impl(Handler h, boost::asio::any_io_executor ex) : h_(std::move(h)), ex_(ex) {}
  void complete(boost::system::error_code ec, std::size_t n) override {
    auto ex = boost::asio::get_associated_executor(h_, ex_);
    boost::asio::post(ex, [h = std::move(h_), ec, n]() mutable { std::move(h)(ec, n); });
  }

 private:
  Handler h_;
  boost::asio::any_io_executor ex_;
};

/// Holds at most one pending operation of a sim timer or socket. While it holds one, the slot
/// is registered with its world, so that world::shutdown() can destroy the operation (and the
/// coroutine its handler resumes) even when that coroutine owns the slot's timer or socket:
/// without this, such a frame and its operation keep each other alive forever.
class op_slot {
 public:
  op_slot() = default;
  ~op_slot() { reset(); }
  op_slot(const op_slot&) = delete;
  op_slot& operator=(const op_slot&) = delete;

  /// Takes `op` (the slot must be empty) and registers with `w`.
  void set(world& w, std::unique_ptr<pending_op> op) {
    reset();
    op_ = std::move(op);
    world_ = &w;
    key_ = w.track(this);
  }
  /// Gives the operation back (to complete or drop it); the slot is then empty.
  std::unique_ptr<pending_op> take() noexcept {
    if (world_) world_->untrack(key_);
    key_ = 0;
    return std::move(op_);
  }
  /// For world::shutdown(), which has already unregistered the slot.
  std::unique_ptr<pending_op> release_untracked() noexcept {
    key_ = 0;
    return std::move(op_);
  }
  void reset() noexcept { take().reset(); }
  explicit operator bool() const noexcept { return op_ != nullptr; }

 private:
  std::unique_ptr<pending_op> op_;
  world* world_ = nullptr;
  std::uint64_t key_ = 0;
};

template <class Signature, class Handler>
std::unique_ptr<pending_op> make_op(Handler&& h, const boost::asio::any_io_executor& ex) {
  return std::make_unique<pending_op_impl<std::decay_t<Handler>, Signature>>(
      std::forward<Handler>(h), ex);
}

}  // namespace detail

class timer {
 public:
  using executor_type = boost::asio::any_io_executor;

  /// `ex` must belong to a world's io_context.
  explicit timer(const executor_type& ex);
  ~timer();
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;

  executor_type get_executor() const noexcept { return ex_; }
  world& owner() const noexcept { return *world_; }

  /// Sets the expiry; a pending wait completes with operation_aborted. Returns the number of
  /// waits cancelled (0 or 1).
  std::size_t expires_after(duration d);
  std::size_t expires_at(time_point t);
  time_point expiry() const noexcept { return expiry_; }
  /// Completes a pending wait with operation_aborted; 0 or 1.
  std::size_t cancel();

  /// Completes with success at the expiry (at once, posted, if it has passed), or with
  /// operation_aborted on cancel(), expires_*() or destruction.
  template <class Token>
  auto async_wait(Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
        [this](auto handler) {
          start_wait(detail::make_op<void(boost::system::error_code)>(std::move(handler), ex_));
        },
        token);
  }

 private:
  void start_wait(std::unique_ptr<detail::pending_op> op);

  executor_type ex_;
  world* world_;
  time_point expiry_{0};
  detail::op_slot op_;
  event_handle event_;
};

}  // namespace relaylab::sim
