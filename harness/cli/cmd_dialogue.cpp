// relaylab dialogue FILE --server HOST:PORT [-v] [--reply-timeout-s N]
// Plays a dialogue file (docs/fakes.md; tests/oracle's .dlg format) against a server. Exit 0
// when every S: pattern matched, 1 when one did not (each mismatch printed with its line), 2 for
// a bad file or bad arguments.
#include "harness/cli/commands.hpp"

#include "fakes/client/dialogue.hpp"
#include "relay/net/tcp_stream.hpp"

#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace relaylab::cli {

namespace {
struct dialogue_args {
  std::string file;
  std::string server;
  bool verbose = false;
  unsigned reply_timeout_s = 10;
};
}  // namespace

subcommand add_dialogue(CLI::App& root) {
  auto args = std::make_shared<dialogue_args>();
  subcommand c;
  c.app = root.add_subcommand("dialogue", "Play a scripted SMTP dialogue against a server");
  c.app->add_option("file", args->file, "dialogue file (.dlg)")->required();
  c.app->add_option("--server", args->server, "HOST:PORT (numeric host)")->required();
  c.app->add_flag("--verbose,-v", args->verbose, "print the transcript");
  c.app->add_option("--reply-timeout-s", args->reply_timeout_s, "wait this long for a reply")
      ->check(CLI::Range(1u, 3600u));
  c.run = [args] {
    namespace asio = boost::asio;
    fakes::client::dialogue_error derr;
    auto d = fakes::client::load_dialogue(args->file, derr);
    if (!d) {
      std::cerr << "relaylab dialogue: " << derr.to_string() << "\n";
      return exit_usage;
    }
    const auto colon = args->server.rfind(':');
    std::string host = colon == std::string::npos ? "" : args->server.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
    unsigned long port = 0;
    try {
      port = colon == std::string::npos ? 0 : std::stoul(args->server.substr(colon + 1));
    } catch (const std::exception&) {
      port = 0;
    }
    if (host.empty() || port == 0 || port > 65535) {
      std::cerr << "relaylab dialogue: --server: expected HOST:PORT, got \"" << args->server
                << "\"\n";
      return exit_usage;
    }
    asio::io_context io;
    net::tcp_connector connector(io.get_executor());
    fakes::client::play_options popt;
    popt.reply_timeout = std::chrono::seconds(args->reply_timeout_s);
    std::string connect_error;
    auto f = asio::co_spawn(
        io,
        [&]() -> asio::awaitable<std::optional<fakes::client::play_result>> {
          std::error_code ec;
          auto s = co_await connector.connect(host, static_cast<std::uint16_t>(port),
                                              std::chrono::seconds(30), ec);
          if (!s) {
            connect_error = net::error_text(ec);
            co_return std::nullopt;
          }
          co_return co_await fakes::client::play(*d, *s, popt);
        },
        asio::use_future);
    io.run();
    const auto r = f.get();
    if (!r) {
      std::cerr << "relaylab dialogue: connect to " << args->server << ": " << connect_error
                << "\n";
      return exit_failure;
    }
    if (args->verbose) {
      for (const auto& l : r->transcript) std::cout << l << "\n";
    }
    for (const auto& f2 : r->failures) std::cerr << f2 << "\n";
    return r->ok ? exit_ok : exit_failure;
  };
  return c;
}

}  // namespace relaylab::cli
