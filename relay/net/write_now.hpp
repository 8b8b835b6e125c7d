// Writes without waiting, for the streams that can (tcp::socket): the driver's replies and the
// delivery agent's commands usually fit in the socket buffer, so they go out with one send(2)
// instead of an asynchronous write (whose completion is posted and resumes the coroutine a
// turn later).
#pragma once

#include <cstddef>

#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>

namespace relaylab::net::detail {

// Non-blocking mode for streams that have it: one ioctl, which also serves the socket's
// asynchronous operations, and write_now() can then try a write without blocking.
template <class S>
void make_non_blocking(S& s) {
  if constexpr (requires(boost::system::error_code & ec) { s.non_blocking(true, ec); }) {
    boost::system::error_code ec;
    s.non_blocking(true, ec);
  }
}

// Writes what the stream takes at once. Returns the bytes written; 0 for streams without a
// non-blocking write_some (or not in non-blocking mode), would-block and errors (the caller's
// asynchronous write then reports those).
template <class S>
std::size_t write_now(S& s, boost::asio::const_buffer b) {
  if constexpr (requires(boost::system::error_code & ec) {
                  s.non_blocking();
                  s.write_some(b, ec);
                }) {
    if (b.size() == 0 || !s.non_blocking()) return 0;
    boost::system::error_code ec;
    const std::size_t n = s.write_some(b, ec);
    return ec ? 0 : n;
  } else {
    return 0;
  }
}

}  // namespace relaylab::net::detail
