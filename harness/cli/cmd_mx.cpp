// relaylab mx --listen HOST:PORT [--script FILE] [--maildir DIR] [-v]
//              [--tls good|self-signed|expired [--tls-ca-out FILE] | --tls-cert FILE --tls-key
//              FILE]
//              [--tls-wrapper] [--tls-name NAME...]
// A scripted fake MX on a real socket (fakes/mx). Prints "listening on ADDR:PORT" when ready
// and the session/message counts at exit (SIGTERM, SIGINT). With --tls it offers STARTTLS (or,
// with --tls-wrapper, speaks TLS from the first byte) with a certificate from a throwaway
// in-memory CA, which --tls-ca-out writes so clients can verify it.
#include "harness/cli/commands.hpp"

#include "fakes/mx/mx.hpp"
#include "fakes/mx/tcp_listener.hpp"
#include "fakes/mx/tls.hpp"

#include <unistd.h>

#include <csignal>
#include <fstream>
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
  std::string tls;  // good, self-signed, expired
  std::string tls_ca_out;
  std::string tls_cert;
  std::string tls_key;
  bool tls_wrapper = false;
  std::vector<std::string> tls_names;
};

// The TLS context --tls/--tls-cert ask for; nullptr with `error` (and `usage` for bad flags).
std::shared_ptr<tls::server_context> make_context(const mx_args& a, const std::string& hostname,
                                                  const std::string& listen_host, bool& usage,
                                                  std::string& error) {
  usage = true;
  if (a.tls.empty() && a.tls_cert.empty() && a.tls_key.empty()) {
    if (a.tls_wrapper || !a.tls_ca_out.empty() || !a.tls_names.empty()) {
      error = "--tls-wrapper, --tls-ca-out and --tls-name need --tls or --tls-cert/--tls-key";
      return nullptr;
    }
    usage = false;
    return nullptr;
  }
  fakes::mx::tls_options opt;
  opt.wrappermode = a.tls_wrapper;
  if (!a.tls_cert.empty() || !a.tls_key.empty()) {
    if (!a.tls.empty() || !a.tls_ca_out.empty() || a.tls_cert.empty() || a.tls_key.empty()) {
      error = "--tls-cert and --tls-key go together, without --tls or --tls-ca-out";
      return nullptr;
    }
    usage = false;
    return fakes::mx::make_tls_context_files(a.tls_cert, a.tls_key, error, opt);
  }
  const auto kind = fakes::mx::parse_cert_kind(a.tls);
  if (!kind) {
    error = "--tls: expected good, self-signed or expired, got \"" + a.tls + "\"";
    return nullptr;
  }
  usage = false;
  std::vector<std::string> names = a.tls_names;
  if (names.empty()) {
    names.push_back(hostname);
    if (hostname != "localhost") names.push_back("localhost");
    if (listen_host != "0.0.0.0" && listen_host != "::") names.push_back(listen_host);
  }
  try {
    const tls::authority ca("relaylab mx throwaway CA", tls::key_kind::ecdsa_p256);
    auto ctx = fakes::mx::make_tls_context(ca, *kind, names, tls::key_kind::ecdsa_p256, error, opt);
    if (ctx && !a.tls_ca_out.empty()) {
      std::ofstream out(a.tls_ca_out, std::ios::binary | std::ios::trunc);
      out << ca.ca_pem();
      out.flush();
      if (!out) {
        error = "--tls-ca-out: cannot write " + a.tls_ca_out;
        return nullptr;
      }
    }
    return ctx;
  } catch (const std::exception& e) {
    error = std::string("TLS: ") + e.what();
    return nullptr;
  }
}

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
  c.app->add_option("--tls", args->tls,
                    "offer STARTTLS with a good, self-signed or expired certificate from a "
                    "throwaway in-memory CA");
  c.app->add_option("--tls-ca-out", args->tls_ca_out, "write the throwaway CA (PEM) here");
  c.app->add_option("--tls-cert", args->tls_cert, "certificate chain PEM file (with --tls-key)");
  c.app->add_option("--tls-key", args->tls_key, "private key PEM file (with --tls-cert)");
  c.app->add_flag("--tls-wrapper", args->tls_wrapper,
                  "TLS from the first byte (smtps, port 465) instead of STARTTLS");
  c.app->add_option("--tls-name", args->tls_names,
                    "certificate name for --tls (repeatable; default: the script's hostname, "
                    "localhost and the listen address)");
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
    {
      bool usage = false;
      std::string error;
      opt.tls = make_context(*args, behaviour.hostname, host, usage, error);
      if (!opt.tls && !error.empty()) {
        std::cerr << "relaylab mx: " << error << "\n";
        return usage ? exit_usage : exit_failure;
      }
    }
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
                  << (m.auth_user.empty() ? "" : " sasl_username=" + m.auth_user)
                  << (m.tls ? " tls=" + m.tls_protocol + "/" + m.tls_cipher : "") << std::endl;
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
