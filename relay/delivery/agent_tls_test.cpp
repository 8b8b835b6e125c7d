// smtp_tls_wrappermode in the delivery agent, over loopback TCP against the fake MX in wrapper
// mode (fakes/mx, a test-only dependency): per-transport TLS from master.cf -o lines, delivery
// with the "Verified TLS connection established" line, and deferrals when the certificate does
// not verify or the server does not speak TLS.
#include "relay/delivery/agent_tls.hpp"

#include "fakes/mx/mx.hpp"
#include "fakes/mx/tcp_listener.hpp"
#include "fakes/mx/tls.hpp"
#include "relay/net/tcp_stream.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <map>

namespace relaylab::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class one_host_resolver final : public resolver {
 public:
  asio::awaitable<mx_answer> lookup_mx(std::string) override {
    co_return mx_answer{dns_status::nodata, {}};
  }
  asio::awaitable<address_answer> lookup_addresses(std::string host, bool, bool) override {
    if (host == "mx.fake.example") co_return address_answer{dns_status::ok, {"127.0.0.1"}, {}};
    co_return address_answer{dns_status::nxdomain, {}, {}};
  }
};

config::configuration make_config(std::vector<std::pair<std::string, std::string>> main_cf,
                                  const std::string& master_cf) {
  config::configuration cfg;
  int line = 1;
  for (const auto& [k, v] : main_cf)
    cfg.main.set(k, v, config::parameters::origin{"main.cf", line++});
  std::vector<config::diagnostic> d;
  cfg.all_services = config::parse_master_cf(master_cf, "master.cf", d);
  EXPECT_TRUE(d.empty());
  return cfg;
}

const char* const smtps_master_cf =
    "smtp      unix  -       -       n       -       -       smtp\n"
    "smtps     unix  -       -       n       -       -       smtp\n"
    "  -o smtp_tls_wrappermode=yes\n"
    "  -o smtp_tls_security_level=verify\n";

struct wrapper_run {
  std::vector<recipient_outcome> outcomes;
  std::string log;
  std::size_t delivered = 0;
  bool delivered_under_tls = false;
};

// One message to the fake MX on a loopback port through the agent of `transport`. `mx_tls`:
// the MX's certificate (nullopt: the MX speaks plain SMTP).
wrapper_run deliver_once(const config::configuration& cfg, const std::string& transport,
                         std::optional<fakes::mx::cert_kind> mx_tls) {
  wrapper_run out;
  tls::authority ca("Relaylab Test CA");
  fakes::mx::server_options so;
  if (mx_tls) {
    std::string error;
    fakes::mx::tls_options t;
    t.wrappermode = true;
    so.tls = fakes::mx::make_tls_context(ca, *mx_tls, {"mx.fake.example"},
                                         tls::key_kind::ecdsa_p256, error, t);
    EXPECT_TRUE(so.tls) << error;
  }
  fakes::mx::server mx(fakes::mx::script{}, so);

  smtp_agent_options ao;
  ao.client.helo_name = "relay.example.com";
  std::vector<config::diagnostic> diags;
  bool found = false;
  for (const auto& t : smtp_transports(cfg)) {
    if (t.name != transport) continue;
    found = true;
    EXPECT_TRUE(configure_transport_tls(cfg, t, ao, diags, ca.ca_pem()));
  }
  EXPECT_TRUE(found) << transport;
  EXPECT_EQ(ao.transport, transport);

  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acc.local_endpoint().port();
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(
      io,
      fakes::mx::serve_tcp(acc, mx, [start] { return std::chrono::steady_clock::now() - start; }),
      asio::detached);
  net::system_runtime rt(io.get_executor());
  net::tcp_connector connector(io.get_executor());
  one_host_resolver dns;
  log::logger logger{
      log::logger_options{"relay.example.com", [] { return std::chrono::system_clock::now(); }}};
  auto sink = std::make_unique<log::memory_sink>(true);
  auto* lines = sink.get();
  logger.add_sink(std::move(sink));
  smtp_agent agent(ao, connector, rt, dns, logger, [](std::size_t) { return 0; });

  job j;
  j.queue_id = "4ABC123";
  j.sender = "me@example.com";
  j.recipients.push_back(job_recipient{0, "you@remote.example", {}, 0});
  const std::string content = "Subject: wrapped\r\n\r\nhello\r\n";
  j.size = content.size();
  j.hop = next_hop{transport, "mx.fake.example", port, true, "[mx.fake.example]"};
  j.arrival = j.queued_active = j.handed_over = std::chrono::system_clock::now();
  j.read_content = [&content](std::uint64_t off, std::size_t max, std::string& s) {
    if (off < content.size()) s = content.substr(off, max);
    return std::error_code();
  };
  bool finished = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        out.outcomes = co_await agent.deliver(j);
        finished = true;
        acc.close();
      },
      asio::detached);
  io.run_for(20s);
  EXPECT_TRUE(finished);
  for (const auto& t : lines->texts()) out.log += t + "\n";
  out.delivered = mx.mailbox().size();
  out.delivered_under_tls = out.delivered == 1 && mx.mailbox()[0].tls;
  return out;
}

TEST(agent_wrappermode, transports_are_the_smtp_services_of_master_cf) {
  auto cfg = make_config({}, std::string(smtps_master_cf) +
                                 "relay     unix  -       -       n       -       -       smtp\n"
                                 "local     unix  -       n       n       -       -       local\n");
  std::vector<std::string> names;
  for (const auto& t : smtp_transports(cfg)) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"smtp", "smtps", "relay"}));
  EXPECT_EQ(smtp_transports(make_config({}, "")).size(), 1u);  // "smtp" always

  // Only the smtps transport wraps; smtp keeps main.cf's (no TLS).
  std::vector<config::diagnostic> d;
  const auto ts = smtp_transports(cfg);
  smtp_agent_options plain, wrapped;
  ASSERT_TRUE(configure_transport_tls(cfg, ts[0], plain, d));
  ASSERT_TRUE(configure_transport_tls(cfg, ts[1], wrapped, d));
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(plain.tls, nullptr);
  ASSERT_NE(wrapped.tls, nullptr);
  EXPECT_TRUE(wrapped.tls->settings().wrappermode);
  EXPECT_EQ(wrapped.tls->settings().level, tls::client_level::verify);
  EXPECT_EQ(wrapped.client.starttls, smtp::client_options::tls_use::none);  // never STARTTLS
}

TEST(agent_wrappermode, below_encrypt_warns_at_the_service_line_and_encrypts) {
  auto cfg = make_config({{"smtp_tls_security_level", "may"}},
                         "smtps     unix  -       -       n       -       -       smtp\n"
                         "  -o smtp_tls_wrappermode=yes\n");
  std::vector<config::diagnostic> d;
  smtp_agent_options ao;
  ASSERT_TRUE(configure_transport_tls(cfg, smtp_transports(cfg)[1], ao, d));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].level, config::diagnostic::severity::warning);
  EXPECT_EQ(d[0].file, "master.cf");
  EXPECT_EQ(d[0].line, 1);
  ASSERT_NE(ao.tls, nullptr);
  EXPECT_EQ(ao.tls->settings().level, tls::client_level::encrypt);
}

TEST(agent_wrappermode, lmtp_tls_overrides_are_refused) {
  auto cfg = make_config({},
                         "lmtp      unix  -       -       n       -       -       lmtp\n"
                         "  -o smtp_tls_security_level=encrypt\n");
  std::vector<config::diagnostic> d;
  EXPECT_FALSE(refuse_lmtp_tls_overrides(cfg, d));
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].level, config::diagnostic::severity::fatal);
  EXPECT_EQ(d[0].to_string().rfind("master.cf:1: fatal: ", 0), 0u) << d[0].to_string();
}

TEST(agent_wrappermode, delivers_over_tls_started_before_the_greeting) {
  auto cfg = make_config({{"smtp_tls_loglevel", "1"}}, smtps_master_cf);
  const auto r = deliver_once(cfg, "smtps", fakes::mx::cert_kind::good);
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].status, outcome_status::sent) << r.log;
  EXPECT_TRUE(r.delivered_under_tls);
  EXPECT_NE(r.log.find("Verified TLS connection established to mx.fake.example[127.0.0.1]:"),
            std::string::npos)
      << r.log;
  EXPECT_NE(r.log.find("status=sent"), std::string::npos) << r.log;
}

TEST(agent_wrappermode, a_certificate_that_does_not_verify_defers) {
  auto cfg = make_config({}, smtps_master_cf);
  const auto r = deliver_once(cfg, "smtps", fakes::mx::cert_kind::self_signed);
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].status, outcome_status::deferred);
  EXPECT_EQ(r.outcomes[0].dsn, "4.7.5");
  EXPECT_EQ(r.outcomes[0].reason, "Server certificate not verified");
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_NE(r.log.find("server certificate verification failed for mx.fake.example[127.0.0.1]:"),
            std::string::npos)
      << r.log;
}

TEST(agent_wrappermode, a_server_without_tls_defers_with_a_handshake_failure) {
  auto cfg = make_config({}, smtps_master_cf);
  const auto r = deliver_once(cfg, "smtps", std::nullopt);
  ASSERT_EQ(r.outcomes.size(), 1u);
  EXPECT_EQ(r.outcomes[0].status, outcome_status::deferred);
  EXPECT_EQ(r.outcomes[0].dsn, "4.7.5");
  EXPECT_EQ(r.outcomes[0].reason, "Cannot start TLS: handshake failure") << r.log;
  EXPECT_EQ(r.delivered, 0u);
  EXPECT_NE(r.log.find("SSL_connect error to mx.fake.example[127.0.0.1]:"), std::string::npos)
      << r.log;
}

}  // namespace
}  // namespace relaylab::delivery
