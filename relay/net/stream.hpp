// Transport-neutral outbound connections and time for coroutine code (delivery, fakes, load).
//
// CONTRACT (used by relay/delivery, relay/qmgr, fakes/, harness/sim; change only together):
// - `byte_stream` is one connected byte stream; TCP (relay/net) and simulated streams
//   (harness/sim) implement it. Every operation takes a timeout and reports
//   std::errc::timed_out when it expires, so callers need no timers of their own.
// - `connector` opens streams. Errors are the POSIX ones Postfix reports:
//   std::errc::network_unreachable ("Network is unreachable"), connection_refused
//   ("Connection refused"), timed_out ("Connection timed out"), host_unreachable.
// - `runtime` is the clock and the sleeping: the real one in the daemon, virtual time in the
//   simulation. Nothing that uses these reads the real clock itself.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>

namespace relaylab::net {

using duration = std::chrono::milliseconds;

class byte_stream {
 public:
  virtual ~byte_stream() = default;
  /// Reads at least one byte; 0 with ec = eof at end of stream.
  virtual boost::asio::awaitable<std::size_t> read_some(std::span<char> buffer, duration timeout,
                                                        std::error_code& ec) = 0;
  /// Writes everything or fails.
  virtual boost::asio::awaitable<void> write_all(std::span<const char> data, duration timeout,
                                                 std::error_code& ec) = 0;
  /// Writes what the stream takes at once, without waiting (and without a coroutine): the
  /// bytes written, 0 when it would wait, on an error (write_all reports it) or when the
  /// stream has no such path (the default). The caller write_all()s the rest.
  virtual std::size_t write_now(std::span<const char> data) noexcept {
    (void)data;
    return 0;
  }
  virtual void close() noexcept = 0;
  /// "127.0.0.1" / "::1" of the local end (for logs and XCLIENT-like uses).
  virtual std::string local_address() const = 0;
};

class connector {
 public:
  virtual ~connector() = default;
  /// Connects to a numeric address. nullptr and `ec` set on failure.
  virtual boost::asio::awaitable<std::unique_ptr<byte_stream>> connect(std::string address,
                                                                       std::uint16_t port,
                                                                       duration timeout,
                                                                       std::error_code& ec) = 0;
};

class runtime {
 public:
  virtual ~runtime() = default;
  virtual boost::asio::any_io_executor executor() = 0;
  /// Wall-clock time (virtual in the simulation).
  virtual std::chrono::system_clock::time_point now() = 0;
  /// Suspends the calling coroutine for `d` of this runtime's time.
  virtual boost::asio::awaitable<void> sleep_for(duration d) = 0;
};

}  // namespace relaylab::net
