// relaylab load [smtp-source options] [--auth MECH:USER:PASS] [--pipelining] [--duration D]
//               [--starttls|--tls] [--tls-ca CA] [--tls-resume] [--json] HOST[:PORT]
// Load generator (fakes/load). Prints messages/s, AUTHs/s, errors by reply code and latency
// per phase; CPU time per message from getrusage. Exit 0 when every message was accepted, 1
// otherwise, 2 for bad arguments.
#include "harness/cli/commands.hpp"

#include "fakes/load/load.hpp"
#include "fakes/mx/script.hpp"
#include "relay/net/tcp_stream.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "relay/tls/client.hpp"

namespace relaylab::cli {

namespace {
struct load_args {
  bool counter = false;
  std::size_t sessions = 1;
  std::uint64_t messages = 1;
  std::size_t length = 0;
  bool reuse = false;
  std::string from;
  std::string to;
  std::size_t recipients = 1;
  std::string helo;
  std::string auth;
  bool pipelining = false;
  std::string duration;
  bool json = false;
  std::string target;
  bool starttls = false;
  bool tls = false;
  bool tls_resume = false;
  std::string tls_ca;
};

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
}  // namespace

subcommand add_load(CLI::App& root) {
  auto args = std::make_shared<load_args>();
  subcommand c;
  c.app = root.add_subcommand("load", "SMTP load generator (smtp-source options)");
  c.app->add_flag("-c", args->counter, "display a running counter of messages");
  c.app->add_option("-s", args->sessions, "sessions in parallel")->check(CLI::Range(1, 10000));
  auto* m_opt = c.app->add_option("-m", args->messages, "messages in total")
                    ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  c.app->add_option("-l", args->length, "message body length in bytes")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30));
  c.app->add_flag("-d", args->reuse, "don't disconnect after each message");
  c.app->add_option("-f", args->from, "sender (default foo@HOSTNAME)");
  c.app->add_option("-t", args->to, "recipient (default foo@HOSTNAME)");
  c.app->add_option("-r", args->recipients, "recipients per message")->check(CLI::Range(1, 1000));
  c.app->add_option("-S,--helo", args->helo, "EHLO name (default HOSTNAME)");
  c.app->add_option("--auth", args->auth, "MECH:USER:PASS, MECH is PLAIN or LOGIN");
  c.app->add_flag("--pipelining", args->pipelining, "use PIPELINING when offered");
  c.app->add_option("--duration", args->duration, "stop starting messages after this (e.g. 10s)");
  c.app->add_flag("--json", args->json, "print the report as JSON");
  c.app->add_flag("--starttls", args->starttls,
                  "STARTTLS after EHLO (a session without it fails as \"tls: not offered\")");
  c.app->add_flag("--tls", args->tls, "implicit TLS from the first byte (smtps)");
  c.app->add_option("--tls-ca", args->tls_ca,
                    "verify the server's certificate against this CA file (PEM); without it, "
                    "no verification");
  c.app->add_flag("--tls-resume", args->tls_resume,
                  "resume TLS sessions: each new connection presents a ticket the server issued "
                  "to an earlier one (as MUAs and Postfix's smtp_tls_session_cache_database do); "
                  "the report counts the resumed handshakes");
  c.app->add_option("target", args->target, "HOST[:PORT] (numeric host, port 25 by default)")
      ->required();
  c.run = [args, m_opt] {
    namespace asio = boost::asio;
    fakes::load::load_options o;
    std::string host = args->target;
    std::string port_text;
    if (host.starts_with("[")) {
      const auto close = host.find(']');
      if (close == std::string::npos || (close + 1 < host.size() && host[close + 1] != ':')) {
        std::cerr << "relaylab load: target: expected [ADDR]:PORT, got \"" << args->target
                  << "\"\n";
        return exit_usage;
      }
      if (close + 1 < host.size()) port_text = host.substr(close + 2);
      host = host.substr(1, close - 1);
    } else if (const auto colon = host.find(':');
               colon != std::string::npos && colon == host.rfind(':')) {
      port_text = host.substr(colon + 1);
      host = host.substr(0, colon);
    }
    std::uint16_t port = 25;
    if (!port_text.empty() || args->target.ends_with(":")) {
      if (port_text.empty() || port_text.size() > 5 ||
          port_text.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(port_text) == 0 || std::stoul(port_text) > 65535) {
        std::cerr << "relaylab load: target: bad port \"" << port_text << "\"\n";
        return exit_usage;
      }
      port = static_cast<std::uint16_t>(std::stoul(port_text));
    }
    if (host == "localhost") host = "127.0.0.1";
    o.host = host;
    o.port = port;
    char hn[256] = {};
    ::gethostname(hn, sizeof hn - 1);
    o.sessions = args->sessions;
    o.messages = args->messages;
    o.message_bytes = args->length;
    o.reuse_connection = args->reuse;
    o.from = args->from.empty() ? std::string("foo@") + hn : args->from;
    o.to = args->to.empty() ? std::string("foo@") + hn : args->to;
    o.recipients = args->recipients;
    o.helo_name = args->helo.empty() ? std::string(hn) : args->helo;
    o.pipelining = args->pipelining;
    if (!args->auth.empty()) {
      const auto a = args->auth.find(':');
      const auto b = a == std::string::npos ? a : args->auth.find(':', a + 1);
      if (b == std::string::npos) {
        std::cerr << "relaylab load: --auth: expected MECH:USER:PASS\n";
        return exit_usage;
      }
      fakes::load::auth_credentials cr{args->auth.substr(0, a), args->auth.substr(a + 1, b - a - 1),
                                       args->auth.substr(b + 1)};
      for (auto& ch : cr.mechanism)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      if (cr.mechanism != "PLAIN" && cr.mechanism != "LOGIN") {
        std::cerr << "relaylab load: --auth: mechanism must be PLAIN or LOGIN, got \""
                  << cr.mechanism << "\"\n";
        return exit_usage;
      }
      o.auth = cr;
    }
    if (!args->duration.empty()) {
      const auto d = fakes::mx::parse_duration(args->duration);
      if (!d || d->count() == 0) {
        std::cerr << "relaylab load: --duration: bad duration \"" << args->duration
                  << "\" (e.g. 500ms, 10s, 2m)\n";
        return exit_usage;
      }
      o.duration = *d;
      if (m_opt->count() == 0) o.messages = std::uint64_t{1} << 40;
    }
    if (args->starttls && args->tls) {
      std::cerr << "relaylab load: --starttls and --tls exclude each other\n";
      return exit_usage;
    }
    if (!args->tls_ca.empty() && !args->starttls && !args->tls) {
      std::cerr << "relaylab load: --tls-ca needs --starttls or --tls\n";
      return exit_usage;
    }
    if (args->tls_resume && !args->starttls && !args->tls) {
      std::cerr << "relaylab load: --tls-resume needs --starttls or --tls\n";
      return exit_usage;
    }
    if (args->starttls || args->tls) {
      o.tls_use = args->tls ? fakes::load::load_options::tls_mode::implicit
                            : fakes::load::load_options::tls_mode::starttls;
      tls::client_settings cs;
      cs.level = tls::client_level::encrypt;
      cs.ca_file = args->tls_ca;
      o.tls_verify = !args->tls_ca.empty();
      std::string error;
      o.tls = tls::client_context::create(cs, error);
      if (!o.tls) {
        std::cerr << "relaylab load: --tls-ca: " << error << "\n";
        return exit_failure;
      }
      if (args->tls_resume) o.tls->enable_resumption();
    }
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    auto last = std::chrono::steady_clock::now();
    fakes::load::progress_fn progress;
    if (args->counter || tty) {
      progress = [&, counter = args->counter](const fakes::load::load_report& r) {
        const auto n = r.messages_ok + r.messages_failed;
        const auto now = std::chrono::steady_clock::now();
        if (counter) {
          std::fprintf(stderr, "%llu\r", static_cast<unsigned long long>(n));
        } else if (now - last >= std::chrono::milliseconds(500)) {
          std::fprintf(stderr, "\r%llu messages (%llu failed)   ",
                       static_cast<unsigned long long>(n),
                       static_cast<unsigned long long>(r.messages_failed));
          last = now;
        }
      };
    }
    asio::io_context io;
    net::tcp_connector connector(io.get_executor());
    net::system_runtime rt(io.get_executor());
    const double cpu0 = cpu_seconds();
    auto f =
        asio::co_spawn(io, fakes::load::run_load(o, connector, rt, progress), asio::use_future);
    io.run();
    auto r = f.get();
    r.cpu_s = cpu_seconds() - cpu0;
    if (progress) std::fprintf(stderr, "\n");
    std::cout << (args->json ? r.format_json() : r.format_text());
    return r.messages_failed == 0 ? exit_ok : exit_failure;
  };
  return c;
}

}  // namespace relaylab::cli
