// The simulated sockets: reads, writes, close and cancel on one end of a connection, and the
// byte-stream adapter that hands them to the relay's stream seam.
#include "harness/sim/connection.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace relaylab::sim {

// ---------------------------------------------------------------------------------------------
// socket

socket::socket(std::shared_ptr<connection_state> c, int side) : c_(std::move(c)), side_(side) {}

socket::~socket() { close(); }

socket::executor_type socket::get_executor() const noexcept { return c_->w->executor(); }

bool socket::is_open() const noexcept { return !c_->ends[side_].closed; }

const std::string& socket::local_address() const noexcept { return c_->ends[side_].address; }
std::uint16_t socket::local_port() const noexcept { return c_->ends[side_].port; }
const std::string& socket::remote_address() const noexcept { return c_->ends[side_].peer_address; }
std::uint16_t socket::remote_port() const noexcept { return c_->ends[side_].peer_port; }
const std::string& socket::host() const noexcept { return c_->ends[side_].host; }

void socket::close(bec& ec) {
  ec = {};
  auto& e = c_->ends[side_];
  if (e.closed) return;
  e.closed = true;
  c_->complete_read(side_, asio::error::operation_aborted, 0);
  c_->complete_write(side_, asio::error::operation_aborted, 0);
  e.inbox.clear();
  if (!e.dead && !e.error) c_->transmit(side_, std::string(), true);
}

void socket::cancel(bec& ec) {
  ec = {};
  c_->complete_read(side_, asio::error::operation_aborted, 0);
  c_->complete_write(side_, asio::error::operation_aborted, 0);
}

void socket::start_read(std::vector<asio::mutable_buffer> bufs, duration timeout,
                        std::unique_ptr<detail::pending_op> op) {
  auto& e = c_->ends[side_];
  if (e.closed || e.read_op) {
    op->complete(e.closed ? bec(asio::error::bad_descriptor) : bec(asio::error::in_progress), 0);
    return;
  }
  if (asio::buffer_size(bufs) == 0) {
    op->complete({}, 0);
    return;
  }
  e.read_op.set(*c_->w, std::move(op));
  e.read_bufs = std::move(bufs);
  c_->service_read(side_);
  if (e.read_op && timeout != duration::max()) {
    std::weak_ptr<connection_state> weak = c_;
    const int side = side_;
    e.read_timeout = c_->w->schedule_after(timeout, [weak, side] {
      if (auto c = weak.lock()) c->complete_read(side, generic(std::errc::timed_out), 0);
    });
  }
}

void socket::start_write(std::string data, duration timeout,
                         std::unique_ptr<detail::pending_op> op) {
  auto& e = c_->ends[side_];
  if (e.closed || e.write_op) {
    op->complete(e.closed ? bec(asio::error::bad_descriptor) : bec(asio::error::in_progress), 0);
    return;
  }
  if (e.error) {
    op->complete(e.error, 0);
    return;
  }
  if (data.empty()) {
    op->complete({}, 0);
    return;
  }
  e.write_op.set(*c_->w, std::move(op));
  e.write_data = std::move(data);
  c_->service_write(side_);
  if (e.write_op && timeout != duration::max()) {
    std::weak_ptr<connection_state> weak = c_;
    const int side = side_;
    e.write_timeout = c_->w->schedule_after(timeout, [weak, side] {
      if (auto c = weak.lock()) c->complete_write(side, generic(std::errc::timed_out), 0);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// byte_stream_adapter

namespace {
std::error_code to_std(const bec& ec) {
  if (ec.category() == boost::system::generic_category() ||
      ec.category() == boost::system::system_category()) {
    return std::error_code(ec.value(), std::generic_category());
  }
  return ec;  // asio's own categories (eof, operation_aborted) keep theirs
}
}  // namespace

asio::awaitable<std::size_t> byte_stream_adapter::read_some(std::span<char> buffer,
                                                            net::duration timeout,
                                                            std::error_code& ec) {
  bec e;
  const std::size_t n =
      co_await s_->async_read_some_for(asio::buffer(buffer.data(), buffer.size()), clamp(timeout),
                                       asio::redirect_error(asio::use_awaitable, e));
  ec = to_std(e);
  co_return n;
}

asio::awaitable<void> byte_stream_adapter::write_all(std::span<const char> data,
                                                     net::duration timeout, std::error_code& ec) {
  ec = {};
  world& w = *world::from(s_->get_executor());
  const duration limit = clamp(timeout);
  const time_point deadline =
      limit >= time_point::max() - w.now() ? time_point::max() : w.now() + limit;
  std::size_t done = 0;
  for (std::size_t i = 0; done < data.size() && i < data.size() + 1; ++i) {
    const auto left = deadline == time_point::max() ? duration::max()
                      : deadline > w.now()          ? deadline - w.now()
                                                    : duration(0);
    bec e;
    const std::size_t n =
        co_await s_->async_write_some_for(asio::buffer(data.data() + done, data.size() - done),
                                          left, asio::redirect_error(asio::use_awaitable, e));
    done += n;
    if (e) {
      ec = to_std(e);
      co_return;
    }
  }
}

void byte_stream_adapter::close() noexcept { s_->close(); }

std::string byte_stream_adapter::local_address() const { return s_->local_address(); }

}  // namespace relaylab::sim
