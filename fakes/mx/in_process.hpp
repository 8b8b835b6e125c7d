// An in-process connection to a fake MX: a net::connector whose streams talk straight to an
// mx::server's connections, with time from a net::runtime. No sockets, so clients (dialogue,
// send, load) can be tested on a virtual clock and plugged into scenarios without TCP.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it

#include "fakes/mx/mx.hpp"
#include "relay/net/stream.hpp"

#include <memory>

namespace relaylab::fakes::mx {

class in_process_connector final : public net::connector {
 public:
  /// `srv` and `rt` must outlive every stream this connector makes.
  in_process_connector(server& srv, net::runtime& rt, std::string client_addr = "192.0.2.1");
  /// Never fails (port and address are ignored); ec is cleared.
  boost::asio::awaitable<std::unique_ptr<net::byte_stream>> connect(std::string address,
                                                                    std::uint16_t port,
                                                                    net::duration timeout,
                                                                    std::error_code& ec) override;

 private:
  server& srv_;
  net::runtime& rt_;
  std::string client_addr_;
};

}  // namespace relaylab::fakes::mx
