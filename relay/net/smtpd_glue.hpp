// Glue between the daemon and relay/smtpd: a connection_handler that opens an
// smtpd::connection for each accepted socket and drives it with run_connection. Header-only so
// that relaylab_net does not need relay/smtp and relay/smtpd at link time; the CLI, which links
// them, instantiates it.
#pragma once

#include "relay/net/daemon.hpp"
#include "relay/net/driver.hpp"
#include "relay/net/peer_name_cache.hpp"
#include "relay/smtpd/smtpd.hpp"
#include "relay/tls/stream.hpp"

#include <algorithm>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

namespace relaylab::net {

struct smtpd_glue_options {
  driver_options driver;
  /// Look up the client's name (smtpd_peername_lookup); otherwise it is "unknown".
  bool peername_lookup = false;
  /// Names are looked up with verified_peer_name through this cache; when null, smtpd_handler
  /// makes one of its own from peer_name_options (on `now`). Share one between handlers to share
  /// the answers; a ttl_ms or entries_max of 0 asks the resolver every time, as Postfix does.
  std::shared_ptr<peer_name_cache> peer_names;
  peer_name_cache_options peer_name_options;
};

/// What the client has sent by now, peeked (MSG_PEEK: the driver still reads it), at most
/// smtp::improper_pipelining_shown_max bytes: the input of smtpd's pre-greeting check, taken
/// where Postfix takes it, when the greeting is due. Whether a client that does not wait for the
/// greeting is caught depends on timing, on TCP as in Postfix (whose postscreen greet wait is
/// the deterministic test).
inline std::string waiting_input(boost::asio::ip::tcp::socket& sock) {
  boost::system::error_code ec;
  const std::size_t n = sock.available(ec);
  if (ec || n == 0) return {};
  std::string bytes(std::min(n, smtp::improper_pipelining_shown_max), '\0');
  const std::size_t got =
      sock.receive(boost::asio::buffer(bytes), boost::asio::socket_base::message_peek, ec);
  bytes.resize(ec ? 0 : got);
  return bytes;
}

/// A handler for daemon::listen serving `svc` (which must outlive the daemon).
inline connection_handler smtpd_handler(smtpd::service& svc, clock_fn now,
                                        smtpd_glue_options options) {
  if (options.peername_lookup && !options.peer_names) {
    options.peer_names = std::make_shared<net::peer_name_cache>(
        now, [](const std::string& addr) { return verified_peer_name(addr); },
        options.peer_name_options);
  }
  return [&svc, now, options](boost::asio::ip::tcp::socket sock,
                              accepted_connection info) -> boost::asio::awaitable<void> {
    smtpd::endpoint remote;
    remote.addr = info.remote_addr;
    remote.port = info.remote_port;
    if (options.peername_lookup) remote.name = options.peer_names->name(info.remote_addr);
    smtpd::endpoint local;
    local.addr = info.local_addr;
    local.port = info.local_port;
    auto conn = svc.open(remote, local, now(), info.signal->notifier(), waiting_input(sock));
    if (!conn) co_return;
    if (auto tls_context = conn->tls_context()) {
      tls::server_stream<boost::asio::ip::tcp::socket> stream(sock, std::move(tls_context));
      co_await run_connection<boost::asio::steady_timer>(stream, *conn, info.signal, now,
                                                         options.driver);
    } else {
      co_await run_connection<boost::asio::steady_timer>(sock, *conn, info.signal, now,
                                                         options.driver);
    }
  };
}

}  // namespace relaylab::net
