// Serves a fake MX on a TCP acceptor through relay/net's driver (tests and `relaylab mx`), over
// tls::server_stream when the server has a TLS context (STARTTLS or wrapper mode).
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it

#include "fakes/mx/mx.hpp"
#include "relay/net/driver.hpp"
#include "relay/tls/stream.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace relaylab::fakes::mx {

/// Accepts connections on `acceptor` until it is closed and runs each one as a session of
/// `srv` (both must outlive the io_context's run). `now` is the MX clock.
inline boost::asio::awaitable<void> serve_tcp(boost::asio::ip::tcp::acceptor& acceptor, server& srv,
                                              net::clock_fn now,
                                              std::uint64_t accepts_max = UINT64_MAX) {
  namespace asio = boost::asio;
  for (std::uint64_t i = 0; i < accepts_max; ++i) {
    boost::system::error_code ec;
    auto sock = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor.is_open()) co_return;
      continue;
    }
    asio::co_spawn(
        acceptor.get_executor(),
        [&srv, now, s = std::move(sock)]() mutable -> asio::awaitable<void> {
          boost::system::error_code e;
          const auto remote = s.remote_endpoint(e);
          auto conn = srv.open(e ? std::string() : remote.address().to_string(),
                               e ? std::string() : std::to_string(remote.port()), now());
          if (auto ctx = srv.tls_context()) {
            tls::server_stream<asio::ip::tcp::socket> stream(s, std::move(ctx));
            co_await net::run_connection<asio::steady_timer>(stream, *conn, nullptr, now);
          } else {
            co_await net::run_connection<asio::steady_timer>(s, *conn, nullptr, now);
          }
        },
        asio::detached);
  }
}

}  // namespace relaylab::fakes::mx
