// Runs relay/smtp's sans-IO client_session over a net::byte_stream with time from a
// net::runtime: the I/O loop shared by `relaylab send` (mailx) and `relaylab load`.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it

#include "relay/net/stream.hpp"
#include "relay/smtp/client_session.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <string_view>

namespace relaylab::fakes::client {

/// The runtime's time as the client session's timestamp.
inline smtp::client_timestamp client_now(net::runtime& rt) {
  return std::chrono::duration_cast<smtp::client_timestamp>(rt.now().time_since_epoch());
}

class smtp_driver {
 public:
  /// `trace` (may be empty) sees every byte sent ('C') and received ('S').
  smtp_driver(smtp::client_session& session, net::byte_stream& stream, net::runtime& rt,
              std::function<void(char, std::string_view)> trace = {});
  /// Writes the session's output and feeds it replies until `done()` holds or the session is
  /// failed/closed. I/O errors and EOF go to the session (receive_eof), timeouts to advance();
  /// the session's own deadlines bound every wait. Bounded by iterations_max rounds.
  boost::asio::awaitable<void> pump(const std::function<bool()>& done);
  /// Writes pending output only (e.g. after end_body()).
  boost::asio::awaitable<void> flush();
  static constexpr int iterations_max = 1000000;

 private:
  smtp::client_session& s_;
  net::byte_stream& stream_;
  net::runtime& rt_;
  std::function<void(char, std::string_view)> trace_;
  std::string out_;
  char in_[16384];
};

}  // namespace relaylab::fakes::client
