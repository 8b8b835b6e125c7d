// TCP implementations of the transport-neutral outbound contracts (stream.hpp) for the daemon:
// `tcp_connector` (non-blocking connect with a timeout), `tcp_byte_stream` and
// `system_runtime` (the real wall clock and steady_timer sleeps).
//
// Threading: every object belongs to one executor; use it from coroutines running there only
// (the timeout timers touch the socket from that executor).
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include "relay/net/stream.hpp"

namespace relaylab::net {

/// Maps an OS/Asio connect or I/O error to the std::errc values stream.hpp promises
/// (network_unreachable, connection_refused, timed_out, host_unreachable); others pass through.
std::error_code normalize_error(const std::error_code& ec);

/// Postfix's words for an error ("Network is unreachable", "Connection refused", "Connection
/// timed out", "No route to host"): strerror text of the errno value.
std::string error_text(const std::error_code& ec);

class tcp_byte_stream final : public byte_stream {
 public:
  explicit tcp_byte_stream(boost::asio::ip::tcp::socket socket);
  ~tcp_byte_stream() override;
  /// Errors: boost::asio::error::eof at end of stream (0 bytes), timed_out,
  /// connection_reset and other socket errors.
  boost::asio::awaitable<std::size_t> read_some(std::span<char> buffer, duration timeout,
                                                std::error_code& ec) override;
  /// Errors: timed_out, broken_pipe / connection_reset when the peer closed, others.
  boost::asio::awaitable<void> write_all(std::span<const char> data, duration timeout,
                                         std::error_code& ec) override;
  /// A non-blocking send(2) (the socket is in non-blocking mode).
  std::size_t write_now(std::span<const char> data) noexcept override;
  void close() noexcept override;
  std::string local_address() const override;
  boost::asio::ip::tcp::socket& socket() noexcept { return socket_; }

 private:
  struct watchdog;
  // Starts an operation's timeout; returns whether it expired when the operation ends.
  void begin(duration timeout);
  bool end() noexcept;
  boost::asio::ip::tcp::socket socket_;
  // One timer for the stream's whole life, armed only when an operation's deadline comes
  // before the time it is already set for: no timer set and cancelled per read and write.
  std::shared_ptr<watchdog> watchdog_;
};

class tcp_connector final : public connector {
 public:
  explicit tcp_connector(boost::asio::any_io_executor executor);
  /// `address` must be numeric (IPv4 or IPv6, no brackets). Errors: invalid_argument for a
  /// non-numeric address, network_unreachable, connection_refused, timed_out (after
  /// `timeout`), host_unreachable, others as the OS reports them.
  boost::asio::awaitable<std::unique_ptr<byte_stream>> connect(std::string address,
                                                               std::uint16_t port, duration timeout,
                                                               std::error_code& ec) override;

 private:
  boost::asio::any_io_executor executor_;
};

class system_runtime final : public runtime {
 public:
  explicit system_runtime(boost::asio::any_io_executor executor);
  boost::asio::any_io_executor executor() override;
  std::chrono::system_clock::time_point now() override;
  boost::asio::awaitable<void> sleep_for(duration d) override;

 private:
  boost::asio::any_io_executor executor_;
};

}  // namespace relaylab::net
