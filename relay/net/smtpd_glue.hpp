// Glue between the daemon and relay/smtpd: a connection_handler that opens an
// smtpd::connection for each accepted socket and drives it with run_connection. Header-only so
// that relaylab_net does not need relay/smtp and relay/smtpd at link time; the CLI, which links
// them, instantiates it.
#pragma once

#include "relay/net/daemon.hpp"
#include "relay/net/driver.hpp"
#include "relay/smtpd/smtpd.hpp"

#include <boost/asio/steady_timer.hpp>

namespace relaylab::net {

struct smtpd_glue_options {
  driver_options driver;
  /// Look up the client's name (smtpd_peername_lookup); otherwise it is "unknown".
  bool peername_lookup = false;
};

/// A handler for daemon::listen serving `svc` (which must outlive the daemon).
inline connection_handler smtpd_handler(smtpd::service& svc, clock_fn now,
                                        smtpd_glue_options options) {
  return [&svc, now, options](boost::asio::ip::tcp::socket sock,
                              accepted_connection info) -> boost::asio::awaitable<void> {
    smtpd::endpoint remote;
    remote.addr = info.remote_addr;
    remote.port = info.remote_port;
    if (options.peername_lookup) remote.name = verified_peer_name(info.remote_addr);
    smtpd::endpoint local;
    local.addr = info.local_addr;
    local.port = info.local_port;
    auto conn = svc.open(remote, local, now(), info.signal->notifier());
    if (!conn) co_return;
    co_await run_connection<boost::asio::steady_timer>(sock, *conn, info.signal, now,
                                                       options.driver);
  };
}

}  // namespace relaylab::net
