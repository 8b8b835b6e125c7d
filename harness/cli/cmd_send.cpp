// relaylab send [-v] [-s SUBJECT] [-S name=value]... [-r FROM] RCPT...   (body on stdin)
// A mailx (s-nail) compatible sender over SMTP (fakes/client/mailx.hpp). Settings come from
// $MAILRC or ~/.mailrc, then -S. Exit status as s-nail: 0 sent, 4 when sending failed; 2 for
// bad arguments.
#include "harness/cli/commands.hpp"

#include "fakes/client/mailx.hpp"
#include "relay/net/tcp_stream.hpp"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace relaylab::cli {

namespace {
struct send_args {
  bool verbose = false;
  std::string subject;
  std::vector<std::string> settings;
  std::string from;
  std::vector<std::string> to;
};

constexpr std::size_t body_bytes_max = 64 << 20;
}  // namespace

subcommand add_send(CLI::App& root) {
  auto args = std::make_shared<send_args>();
  subcommand c;
  c.app = root.add_subcommand("send",
                              "Send a message like mailx: echo body | relaylab send -s "
                              "SUBJ -S smtp=smtp://HOST:PORT -r FROM RCPT...");
  c.app->add_flag("-v", args->verbose, "print the SMTP transcript");
  c.app->add_option("-s", args->subject, "subject");
  c.app->add_option("-S", args->settings, "set a mailx variable (name=value)")
      ->allow_extra_args(false);
  c.app->add_option("-r", args->from, "sender (From: and envelope)");
  c.app->add_option("recipients", args->to, "recipient addresses")->required();
  c.run = [args] {
    namespace asio = boost::asio;
    fakes::client::mailx_settings settings;
    std::string rc;
    if (const char* m = std::getenv("MAILRC")) {
      rc = m;
    } else if (const char* h = std::getenv("HOME")) {
      rc = std::string(h) + "/.mailrc";
    }
    if (!rc.empty()) {
      std::ifstream in(rc, std::ios::binary);
      if (in) {
        std::stringstream ss;
        ss << in.rdbuf();
        std::string err;
        if (!fakes::client::parse_mailrc(ss.str(), rc, settings, err)) {
          std::cerr << "relaylab send: " << err << "\n";
          return exit_usage;
        }
      }
    }
    for (const auto& s : args->settings) {
      if (s.empty() || s.front() == '=') {
        std::cerr << "relaylab send: -S: expected name=value, got \"" << s << "\"\n";
        return exit_usage;
      }
      settings.set(s);
    }
    fakes::client::mailx_message_input msg;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    msg.from = args->from.empty() ? settings.get("from") : args->from;
    if (msg.from.empty()) {
      const char* user = std::getenv("USER");
      msg.from = std::string(user ? user : "root") + "@" + host;
    }
    msg.to = args->to;
    msg.subject = args->subject;
    msg.user_agent = std::string("relaylab-send/") + RELAYLAB_VERSION;
    std::string body;
    char buf[65536];
    while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
      body.append(buf, static_cast<std::size_t>(std::cin.gcount()));
      if (body.size() > body_bytes_max) {
        std::cerr << "relaylab send: message body larger than 64 MiB\n";
        return exit_usage;
      }
    }
    msg.body = std::move(body);
    fakes::client::mailx_environment env;
    env.now = std::chrono::system_clock::now();
    env.hostname = host;
    std::random_device rd;
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (int i = 0; i < 16; ++i) env.random16.push_back(alphabet[rd() % (sizeof alphabet - 1)]);

    asio::io_context io;
    net::tcp_connector connector(io.get_executor());
    net::system_runtime rt(io.get_executor());
    auto f = asio::co_spawn(io,
                            fakes::client::mailx_send(settings, msg, env, connector, rt,
                                                      args->verbose ? &std::cerr : nullptr),
                            asio::use_future);
    io.run();
    const auto r = f.get();
    for (const auto& w : r.warnings) std::cerr << "relaylab send: warning: " << w << "\n";
    if (r.exit_status != 0) std::cerr << "relaylab send: " << r.error << "\n";
    return r.exit_status;
  };
  return c;
}

}  // namespace relaylab::cli
