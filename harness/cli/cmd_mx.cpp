// relaylab mx --listen HOST:PORT [--script FILE] [--maildir DIR] [-v]
// A scripted fake MX on a real socket (fakes/mx). Prints "listening on ADDR:PORT" when ready
// and the session/message counts at exit (SIGTERM, SIGINT).
#include "harness/cli/commands.hpp"

#include "fakes/mx/mx.hpp"
#include "fakes/mx/tcp_listener.hpp"

#include <unistd.h>

#include <csignal>
#include <iostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

namespace relaylab::cli {

namespace {
struct mx_args {
  std::string listen;
  std::string script;
  std::string maildir;
  bool verbose = false;
};

// "127.0.0.1:2525", "[::1]:25", ":2525" (127.0.0.1). Numeric only.
bool split_host_port(const std::string& s, std::string& host, std::uint16_t& port) {
  std::string p;
  if (s.starts_with("[")) {
    const auto close = s.find("]:");
    if (close == std::string::npos) return false;
    host = s.substr(1, close - 1);
    p = s.substr(close + 2);
  } else {
    const auto colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    host = colon == 0 ? "127.0.0.1" : s.substr(0, colon);
    p = s.substr(colon + 1);
  }
  try {
    const unsigned long v = std::stoul(p);
    if (v > 65535 || p.empty() || p.find_first_not_of("0123456789") != std::string::npos) {
      return false;
    }
    port = static_cast<std::uint16_t>(v);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}
}  // namespace

subcommand add_mx(CLI::App& root) {
  auto args = std::make_shared<mx_args>();
  subcommand c;
  c.app = root.add_subcommand("mx", "Run a scripted fake MX receiver (docs/fakes.md)");
  c.app->add_option("--listen,-l", args->listen, "HOST:PORT to listen on (PORT 0 = any)")
      ->required();
  c.app->add_option("--script", args->script, "behaviour script");
  c.app->add_option("--maildir", args->maildir, "also deliver into this Maildir");
  c.app->add_flag("--verbose,-v", args->verbose, "print a line per accepted message");
  c.run = [args] {
    namespace asio = boost::asio;
    std::string host;
    std::uint16_t port = 0;
    if (!split_host_port(args->listen, host, port)) {
      std::cerr << "relaylab mx: --listen: expected HOST:PORT, got \"" << args->listen << "\"\n";
      return exit_usage;
    }
    fakes::mx::script behaviour;
    if (!args->script.empty()) {
      fakes::mx::parse_error err;
      auto s = fakes::mx::load_script(args->script, err);
      if (!s) {
        std::cerr << "relaylab mx: " << err.to_string() << "\n";
        return exit_usage;
      }
      behaviour = std::move(*s);
    }
    fakes::mx::server_options opt;
    opt.maildir = args->maildir;
    opt.maildir_unique =
        std::to_string(::getpid()) + "." +
        std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
    if (args->verbose) {
      opt.on_message = [](const fakes::mx::message& m) {
        std::cout << "accepted " << m.queue_id << " from=<" << m.sender << "> to=";
        for (std::size_t i = 0; i < m.recipients.size(); ++i) {
          std::cout << (i ? ",<" : "<") << m.recipients[i] << ">";
        }
        std::cout << " size=" << m.data.size() << " client=" << m.client_addr
                  << (m.auth_user.empty() ? "" : " sasl_username=" + m.auth_user) << std::endl;
      };
    }
    // The server outlives the io_context: connections refer to it until their frames go.
    fakes::mx::server srv(std::move(behaviour), opt);
    std::string error;
    if (!srv.prepare(error)) {
      std::cerr << "relaylab mx: " << error << "\n";
      return exit_failure;
    }
    asio::io_context io;
    asio::ip::tcp::acceptor acc(io);
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(host, ec);
    if (ec) {
      std::cerr << "relaylab mx: --listen: \"" << host << "\" is not a numeric address\n";
      return exit_usage;
    }
    const asio::ip::tcp::endpoint ep(addr, port);
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      std::cerr << "relaylab mx: bind " << host << " port " << port << ": " << ec.message() << "\n";
      return exit_failure;
    }
    const auto start = std::chrono::steady_clock::now();
    asio::co_spawn(io,
                   fakes::mx::serve_tcp(
                       acc, srv, [start] { return std::chrono::steady_clock::now() - start; }),
                   asio::detached);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& e, int) {
      if (e) return;
      io.stop();
    });
    const auto bound = acc.local_endpoint();
    std::cout << "relaylab mx: listening on "
              << (bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                          : bound.address().to_string())
              << ":" << bound.port() << std::endl;
    io.run();
    std::cout << "relaylab mx: " << srv.summary() << std::endl;
    return exit_ok;
  };
  return c;
}

}  // namespace relaylab::cli
