#include "relay/delivery/smtp_agent.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

namespace relaylab::delivery {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock_point = std::chrono::system_clock::time_point;

// ---------------------------------------------------------------------------------------------
// Fakes: a manual clock, a scripted MX behind an in-memory stream, a connector and a resolver.

struct fake_clock {
  clock_point now = clock_point(std::chrono::seconds(1603246874));
  net::duration step = 100ms;  // every read/write takes this long
};

class fake_runtime final : public net::runtime {
 public:
  fake_runtime(asio::io_context& io, fake_clock& c) : io_(io), clock_(c) {}
  asio::any_io_executor executor() override { return io_.get_executor(); }
  std::chrono::system_clock::time_point now() override { return clock_.now; }
  asio::awaitable<void> sleep_for(net::duration d) override {
    clock_.now += d;
    co_return;
  }

 private:
  asio::io_context& io_;
  fake_clock& clock_;
};

// A scripted SMTP server: replies per command, per recipient; can hang or hang up.
struct mx_script {
  std::string greeting = "220 mx.example.net ESMTP";
  std::string ehlo =
      "250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN\r\n"
      "250 8BITMIME";
  std::string mail = "250 2.1.0 Ok";
  std::map<std::string, std::string> rcpt;  // "<a@b>" → reply; default 250 2.1.5 Ok
  std::string data = "354 End data with <CR><LF>.<CR><LF>";
  std::string dot = "250 2.0.0 Ok: queued as ABC123";
  std::string auth = "235 2.7.0 Authentication successful";
  std::string hang_at;       // command word after which the server stops answering ("." = end)
  std::string close_at;      // command word after which the server closes the connection
  int close_at_mail_on = 0;  // connection number (1, 2 ...) that hangs up at its next MAIL
  // Observed.
  std::string received;  // everything the client sent
  std::string message;   // DATA content as received (still dot-stuffed)
  int connections = 0;
};

class fake_stream final : public net::byte_stream {
 public:
  fake_stream(mx_script& s, fake_clock& c) : s_(s), clock_(c) {
    number_ = ++s_.connections;
    reply(s_.greeting);
  }
  asio::awaitable<std::size_t> read_some(std::span<char> buffer, net::duration timeout,
                                         std::error_code& ec) override {
    ec.clear();
    clock_.now += clock_.step;
    if (to_client_.empty()) {
      if (closed_) {
        ec = asio::error::make_error_code(asio::error::eof);
        co_return 0;
      }
      clock_.now += timeout;  // nothing will come: the read times out
      ec = std::make_error_code(std::errc::timed_out);
      co_return 0;
    }
    const std::size_t n = std::min(buffer.size(), to_client_.size());
    std::copy_n(to_client_.begin(), n, buffer.begin());
    to_client_.erase(0, n);
    co_return n;
  }
  asio::awaitable<void> write_all(std::span<const char> data, net::duration,
                                  std::error_code& ec) override {
    ec.clear();
    clock_.now += clock_.step;
    if (closed_) {
      ec = std::make_error_code(std::errc::broken_pipe);
      co_return;
    }
    s_.received.append(data.data(), data.size());
    line_.append(data.data(), data.size());
    for (std::size_t nl; !closed_ && !hung_ && (nl = line_.find("\r\n")) != std::string::npos;) {
      const std::string l = line_.substr(0, nl);
      line_.erase(0, nl + 2);
      on_line(l);
    }
    co_return;
  }
  void close() noexcept override { closed_ = true; }
  std::string local_address() const override { return "192.168.2.44"; }

 private:
  void reply(const std::string& r) {
    if (!r.empty()) to_client_ += r + "\r\n";
  }
  void after(const std::string& word) {
    if (s_.hang_at == word) hung_ = true;
    if (s_.close_at == word) closed_ = true;
  }
  void on_line(const std::string& l) {
    if (in_data_) {
      if (l == ".") {
        in_data_ = false;
        if (s_.hang_at == ".") {
          hung_ = true;
          return;
        }
        reply(s_.dot);
        after("END");
      } else {
        s_.message += l + "\r\n";
      }
      return;
    }
    const std::string word = l.substr(0, l.find_first_of(" :"));
    if (word == "MAIL" && s_.close_at_mail_on == number_) {
      closed_ = true;  // an idle connection the server timed out
      return;
    }
    if (s_.hang_at == word) {
      hung_ = true;
      return;
    }
    if (s_.close_at == word) {
      closed_ = true;
      return;
    }
    if (word == "EHLO") {
      reply(s_.ehlo);
    } else if (word == "HELO") {
      reply("250 mx.example.net");
    } else if (word == "AUTH") {
      reply(s_.auth);
    } else if (word == "MAIL") {
      reply(s_.mail);
    } else if (word == "RCPT") {
      const std::string addr = l.substr(l.find('<'), l.find('>') - l.find('<') + 1);
      const auto it = s_.rcpt.find(addr);
      reply(it == s_.rcpt.end() ? "250 2.1.5 Ok" : it->second);
    } else if (word == "DATA") {
      reply(s_.data);
      in_data_ = s_.data.rfind("354", 0) == 0;
    } else if (word == "RSET") {
      reply("250 2.0.0 Ok");
    } else if (word == "QUIT") {
      reply("221 2.0.0 Bye");
      closed_after_reply_ = true;
    } else {
      reply("502 5.5.2 Error: command not recognized");
    }
  }

  mx_script& s_;
  fake_clock& clock_;
  std::string to_client_;
  std::string line_;
  bool in_data_ = false;
  bool hung_ = false;
  bool closed_ = false;
  bool closed_after_reply_ = false;
  int number_ = 0;
};

class fake_connector final : public net::connector {
 public:
  explicit fake_connector(fake_clock& c) : clock_(c) {}
  std::map<std::string, mx_script*> servers;  // address → server
  std::map<std::string, std::errc> failures;  // address → connect error
  std::vector<std::string> attempts;
  asio::awaitable<std::unique_ptr<net::byte_stream>> connect(std::string address,
                                                             std::uint16_t port,
                                                             net::duration timeout,
                                                             std::error_code& ec) override {
    attempts.push_back(address + ":" + std::to_string(port));
    clock_.now += 10ms;
    if (const auto f = failures.find(address); f != failures.end()) {
      if (f->second == std::errc::timed_out) clock_.now += timeout;
      ec = std::make_error_code(f->second);
      co_return nullptr;
    }
    if (const auto s = servers.find(address); s != servers.end()) {
      ec.clear();
      co_return std::make_unique<fake_stream>(*s->second, clock_);
    }
    ec = std::make_error_code(std::errc::connection_refused);
    co_return nullptr;
  }

 private:
  fake_clock& clock_;
};

class fake_resolver final : public resolver {
 public:
  std::map<std::string, mx_answer> mx;
  std::map<std::string, address_answer> hosts;
  std::vector<std::string> queries;
  asio::awaitable<mx_answer> lookup_mx(std::string domain) override {
    queries.push_back("MX " + domain);
    const auto it = mx.find(domain);
    co_return it == mx.end() ? mx_answer{dns_status::nodata, {}} : it->second;
  }
  asio::awaitable<address_answer> lookup_addresses(std::string host, bool ipv4,
                                                   bool ipv6) override {
    queries.push_back(std::string(ipv4 ? "A" : "") + (ipv6 ? "AAAA" : "") + " " + host);
    const auto it = hosts.find(host);
    co_return it == hosts.end() ? address_answer{dns_status::nxdomain, {}, {}} : it->second;
  }
};

// ---------------------------------------------------------------------------------------------

struct harness {
  asio::io_context io;
  fake_clock clock;
  fake_runtime runtime{io, clock};
  fake_connector connector{clock};
  fake_resolver dns;
  log::logger logger{log::logger_options{"relay.example.com", [this] { return clock.now; }, 2000}};
  log::memory_sink* sink = nullptr;
  smtp_agent_options options;
  std::size_t random_pick = SIZE_MAX;  // SIZE_MAX: keep order (bound - 1)
  std::string content = "Subject: test\r\n\r\nhello\r\n.dot line\r\n";

  harness() {
    auto s = std::make_unique<log::memory_sink>(true);
    sink = s.get();
    logger.add_sink(std::move(s));
    options.client.helo_name = "relay.example.com";
    options.origin.pid = 3000;
  }

  job make_job(std::vector<std::string> rcpts, next_hop hop) {
    job j;
    j.queue_id = "66857C01110";
    j.sender = "me@example.com";
    std::uint32_t idx = 0;
    for (auto& r : rcpts) j.recipients.push_back(job_recipient{idx++, r, {}, 0});
    j.size = content.size();
    j.hop = std::move(hop);
    j.arrival = clock.now - 70ms;
    j.queued_active = clock.now - 10ms;
    j.handed_over = clock.now;
    j.read_content = [this](std::uint64_t off, std::size_t max, std::string& out) {
      if (off < content.size()) out = content.substr(off, std::min<std::size_t>(max, 7));
      return std::error_code();
    };
    return j;
  }

  std::vector<recipient_outcome> run(const job& j) {
    smtp_agent agent(options, connector, runtime, dns, logger, [this](std::size_t bound) {
      return random_pick == SIZE_MAX ? bound - 1 : random_pick % bound;
    });
    std::vector<recipient_outcome> out;
    bool finished = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          out = co_await agent.deliver(j);
          finished = true;
        },
        asio::detached);
    io.run();
    io.restart();
    EXPECT_TRUE(finished);
    return out;
  }

  std::string log_text() const {
    std::string s;
    for (const auto& t : sink->texts()) s += t + "\n";
    return s;
  }
};

next_hop mx_hop(std::string domain) {
  next_hop h;
  h.host = std::move(domain);
  return h;
}
next_hop relay_hop(std::string host, std::uint16_t port) {
  next_hop h;
  h.host = std::move(host);
  h.port = port;
  h.no_mx = true;
  return h;
}

// Golden log texts in testdata/delivery/. RELAYLAB_UPDATE_GOLDEN=1 rewrites them from `actual`
// (review the diff before committing).
std::string golden(const std::string& name, const std::string& actual) {
  const std::string path = std::string(RELAYLAB_DELIVERY_TESTDATA) + "/" + name;
  if (const char* u = std::getenv("RELAYLAB_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path) << actual;
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The seed's pair of lines: the IPv6 address is unreachable, the IPv4 one takes the message.
TEST(smtp_agent, seed_ipv6_unreachable_then_ipv4_sent) {
  harness h;
  mx_script gmail;
  gmail.greeting = "220 mx.google.com ESMTP x30si882009pge.334 - gsmtp";
  gmail.dot = "250 2.0.0 OK  1603246875 x30si882009pge.334 - gsmtp";
  h.dns.mx["gmail.com"] = {dns_status::ok,
                           {{5, "gmail-smtp-in.l.google.com."}, {1, "aspmx.l.google.com."}}};
  h.dns.hosts["aspmx.l.google.com"] = {
      dns_status::ok, {"2404:6800:4008:c07::1a", "108.177.97.26"}, {}};
  h.connector.failures["2404:6800:4008:c07::1a"] = std::errc::network_unreachable;
  h.connector.servers["108.177.97.26"] = &gmail;
  const auto out = h.run(h.make_job({"user@gmail.com"}, mx_hop("gmail.com")));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, outcome_status::sent);
  EXPECT_EQ(out[0].relay, "aspmx.l.google.com[108.177.97.26]:25");
  EXPECT_EQ(out[0].reason, "250 2.0.0 OK  1603246875 x30si882009pge.334 - gsmtp");
  EXPECT_EQ(h.log_text(), golden("seed_sent.log", h.log_text()));
  EXPECT_EQ(h.connector.attempts,
            (std::vector<std::string>{"2404:6800:4008:c07::1a:25", "108.177.97.26:25"}));
  EXPECT_EQ(gmail.message, "Subject: test\r\n\r\nhello\r\n..dot line\r\n");
  EXPECT_NE(gmail.received.find("MAIL FROM:<me@example.com> SIZE=35\r\n"), std::string::npos);
  EXPECT_NE(gmail.received.find("EHLO relay.example.com\r\n"), std::string::npos);
  // The full line as the maillog shows it.
  const auto lines = h.sink->lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].substr(16),
            "relay postfix/smtp[3000]: connect to "
            "aspmx.l.google.com[2404:6800:4008:c07::1a]:25: Network is "
            "unreachable");
}

TEST(smtp_agent, relayhost_mixed_recipient_replies) {
  harness h;
  mx_script sink;
  sink.rcpt["<defer@x.test>"] = "451 4.3.0 <defer@x.test>: Temporary failure";
  sink.rcpt["<bounce@x.test>"] =
      "550 5.1.1 <bounce@x.test>: Recipient address rejected: User unknown";
  h.connector.servers["127.0.0.1"] = &sink;
  const auto out = h.run(
      h.make_job({"bounce@x.test", "defer@x.test", "ok@x.test"}, relay_hop("127.0.0.1", 24631)));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].status, outcome_status::bounced);
  EXPECT_EQ(out[1].status, outcome_status::deferred);
  EXPECT_EQ(out[2].status, outcome_status::sent);
  EXPECT_EQ(h.log_text(), golden("relayhost_mixed.log", h.log_text()));
  EXPECT_TRUE(h.dns.queries.empty());  // numeric [host]: no DNS at all
}

TEST(smtp_agent, connection_refused_defers_with_relay_none) {
  harness h;
  const auto out = h.run(h.make_job({"a@refused.test"}, relay_hop("127.0.0.1", 24639)));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, outcome_status::deferred);
  EXPECT_EQ(out[0].dsn, "4.4.1");
  EXPECT_EQ(out[0].relay, "none");
  EXPECT_EQ(h.log_text(), golden("connection_refused.log", h.log_text()));
}

TEST(smtp_agent, rcpt_4xx_from_first_mx_tries_next_mx) {
  harness h;
  mx_script mx1, mx2;
  mx1.rcpt["<a@example.org>"] = "450 4.7.1 <a@example.org>: Recipient address rejected: Greylisted";
  h.dns.mx["example.org"] = {dns_status::ok, {{10, "mx1.example.org"}, {20, "mx2.example.org"}}};
  h.dns.hosts["mx1.example.org"] = {dns_status::ok, {"192.0.2.1"}, {}};
  h.dns.hosts["mx2.example.org"] = {dns_status::ok, {"192.0.2.2"}, {}};
  h.connector.servers["192.0.2.1"] = &mx1;
  h.connector.servers["192.0.2.2"] = &mx2;
  const auto out = h.run(h.make_job({"a@example.org", "b@example.org"}, mx_hop("example.org")));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].status, outcome_status::sent);
  EXPECT_EQ(out[0].relay, "mx2.example.org[192.0.2.2]:25");
  EXPECT_EQ(out[1].relay, "mx1.example.org[192.0.2.1]:25");
  EXPECT_EQ(h.log_text(), golden("next_mx_after_4xx.log", h.log_text()));
  // mx2 only saw the recipient mx1 deferred.
  EXPECT_EQ(mx2.received.find("b@example.org"), std::string::npos);
}

TEST(smtp_agent, rcpt_4xx_from_last_mx_defers_and_5xx_bounces) {
  harness h;
  mx_script mx1, mx2;
  mx1.rcpt["<a@example.org>"] = "451 4.3.0 try later";
  mx2.rcpt["<a@example.org>"] = "452 4.2.2 mailbox full";
  mx1.rcpt["<b@example.org>"] = "550 5.1.1 <b@example.org>: User unknown";
  h.dns.mx["example.org"] = {dns_status::ok, {{10, "mx1.example.org"}, {20, "mx2.example.org"}}};
  h.dns.hosts["mx1.example.org"] = {dns_status::ok, {"192.0.2.1"}, {}};
  h.dns.hosts["mx2.example.org"] = {dns_status::ok, {"192.0.2.2"}, {}};
  h.connector.servers["192.0.2.1"] = &mx1;
  h.connector.servers["192.0.2.2"] = &mx2;
  const auto out = h.run(h.make_job({"a@example.org", "b@example.org"}, mx_hop("example.org")));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].status, outcome_status::deferred);
  EXPECT_EQ(out[0].dsn, "4.2.2");
  EXPECT_EQ(out[1].status, outcome_status::bounced);
  EXPECT_EQ(h.log_text(), golden("last_mx_4xx.log", h.log_text()));
  EXPECT_EQ(mx2.message, "");  // nothing accepted there: no DATA
}

TEST(smtp_agent, greeting_5xx_skips_to_next_mx) {
  harness h;
  mx_script mx1, mx2;
  mx1.greeting = "554 5.7.1 mx1.example.org: no thanks";
  h.dns.mx["example.org"] = {dns_status::ok, {{10, "mx1.example.org"}, {20, "mx2.example.org"}}};
  h.dns.hosts["mx1.example.org"] = {dns_status::ok, {"192.0.2.1"}, {}};
  h.dns.hosts["mx2.example.org"] = {dns_status::ok, {"192.0.2.2"}, {}};
  h.connector.servers["192.0.2.1"] = &mx1;
  h.connector.servers["192.0.2.2"] = &mx2;
  const auto out = h.run(h.make_job({"a@example.org"}, mx_hop("example.org")));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, outcome_status::sent);
  EXPECT_EQ(h.log_text(), golden("greeting_5xx.log", h.log_text()));
}

TEST(smtp_agent, greeting_5xx_from_only_server_defers) {
  harness h;
  mx_script mx;
  mx.greeting = "554 5.7.1 go away";
  h.connector.servers["192.0.2.9"] = &mx;
  const auto out = h.run(h.make_job({"a@example.org"}, relay_hop("192.0.2.9", 25)));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, outcome_status::deferred);
  EXPECT_EQ(out[0].dsn, "4.7.1");
  EXPECT_EQ(out[0].reason, "host 192.0.2.9[192.0.2.9] refused to talk to me: 554 5.7.1 go away");
}

TEST(smtp_agent, dns_outcomes) {
  harness h;
  h.dns.mx["nullmx.test"] = {dns_status::ok, {{0, ""}}};
  h.dns.mx["nx.test"] = {dns_status::nxdomain, {}};
  h.dns.mx["fail.test"] = {dns_status::servfail, {}};
  h.run(h.make_job({"a@nullmx.test"}, mx_hop("nullmx.test")));
  h.run(h.make_job({"a@nx.test"}, mx_hop("nx.test")));
  h.run(h.make_job({"a@fail.test"}, mx_hop("fail.test")));
  h.run(h.make_job({"a@nohost.test"}, mx_hop("nohost.test")));  // no MX, no A
  EXPECT_EQ(h.log_text(), golden("dns.log", h.log_text()));
}

TEST(smtp_agent, no_mx_uses_the_domain_addresses) {
  harness h;
  mx_script mx;
  h.dns.hosts["plain.test"] = {dns_status::ok, {"192.0.2.7"}, {}};
  h.connector.servers["192.0.2.7"] = &mx;
  const auto out = h.run(h.make_job({"a@plain.test"}, mx_hop("plain.test")));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].relay, "plain.test[192.0.2.7]:25");
  EXPECT_EQ(h.dns.queries, (std::vector<std::string>{"MX plain.test", "AAAAA plain.test"}));
}

TEST(smtp_agent, equal_preference_order_comes_from_the_random_source) {
  for (std::size_t pick : {std::size_t{0}, std::size_t{1}}) {
    harness h;
    h.random_pick = pick;
    h.dns.mx["eq.test"] = {dns_status::ok,
                           {{10, "a.eq.test"}, {10, "b.eq.test"}, {5, "c.eq.test"}}};
    for (const char* n : {"a", "b", "c"}) {
      h.dns.hosts[std::string(n) + ".eq.test"] = {dns_status::ok,
                                                  {std::string("192.0.2.") + (n[0] == 'a'   ? "1"
                                                                              : n[0] == 'b' ? "2"
                                                                                            : "3")},
                                                  {}};
    }
    h.options.mx_session_limit = 0;
    h.run(h.make_job({"x@eq.test"}, mx_hop("eq.test")));
    // Nothing listens: c (preference 5) first, then a/b in the order the source chose.
    const std::vector<std::string> want =
        pick == 0 ? std::vector<std::string>{"192.0.2.3:25", "192.0.2.2:25", "192.0.2.1:25"}
                  : std::vector<std::string>{"192.0.2.3:25", "192.0.2.1:25", "192.0.2.2:25"};
    EXPECT_EQ(h.connector.attempts, want) << "pick " << pick;
  }
}

TEST(smtp_agent, address_preference_and_inet_protocols) {
  harness h;
  h.dns.hosts["dual.test"] = {dns_status::ok, {"2001:db8::1", "192.0.2.1", "2001:db8::2"}, {}};
  h.options.preference = address_preference::ipv4;
  h.run(h.make_job({"a@dual.test"}, mx_hop("dual.test")));
  EXPECT_EQ(h.connector.attempts,
            (std::vector<std::string>{"192.0.2.1:25", "2001:db8::1:25", "2001:db8::2:25"}));
  h.connector.attempts.clear();
  h.options.inet_ipv6 = false;
  h.options.preference = address_preference::any;
  h.run(h.make_job({"a@dual.test"}, mx_hop("dual.test")));
  EXPECT_EQ(h.connector.attempts, (std::vector<std::string>{"192.0.2.1:25"}));
}

TEST(smtp_agent, timeouts_and_lost_connections_name_the_stage) {
  harness h;
  mx_script hang_dot, close_mail, hang_greeting;
  hang_dot.hang_at = ".";
  close_mail.close_at = "MAIL";
  hang_greeting.greeting = "";
  h.connector.servers["192.0.2.1"] = &hang_dot;
  h.connector.servers["192.0.2.2"] = &close_mail;
  h.connector.servers["192.0.2.3"] = &hang_greeting;
  h.connector.failures["192.0.2.4"] = std::errc::timed_out;
  h.run(h.make_job({"a@x.test"}, relay_hop("192.0.2.1", 25)));
  h.run(h.make_job({"a@x.test"}, relay_hop("192.0.2.2", 25)));
  h.run(h.make_job({"a@x.test"}, relay_hop("192.0.2.3", 25)));
  h.run(h.make_job({"a@x.test"}, relay_hop("192.0.2.4", 25)));
  EXPECT_EQ(h.log_text(), golden("timeouts.log", h.log_text()));
}

TEST(smtp_agent, end_of_data_and_mail_rejections) {
  harness h;
  mx_script dot550, mail452;
  dot550.dot = "550 5.7.1 Message content rejected";
  mail452.mail = "452 4.3.1 Insufficient system storage";
  h.connector.servers["192.0.2.1"] = &dot550;
  h.connector.servers["192.0.2.2"] = &mail452;
  h.run(h.make_job({"a@x.test", "b@x.test"}, relay_hop("192.0.2.1", 25)));
  h.run(h.make_job({"a@x.test"}, relay_hop("192.0.2.2", 25)));
  EXPECT_EQ(h.log_text(), golden("rejections.log", h.log_text()));
}

TEST(smtp_agent, message_larger_than_server_size_limit_bounces) {
  harness h;
  mx_script small;
  small.ehlo = "250-mx.example.net\r\n250 SIZE 10";
  h.connector.servers["192.0.2.1"] = &small;
  const auto out = h.run(h.make_job({"a@x.test"}, relay_hop("192.0.2.1", 25)));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, outcome_status::bounced);
  EXPECT_EQ(out[0].dsn, "5.3.4");
  EXPECT_EQ(out[0].reason, "message size 35 exceeds size limit 10 of server 192.0.2.1[192.0.2.1]");
  EXPECT_EQ(small.received.find("MAIL"), std::string::npos);
}

TEST(smtp_agent, sasl_auth_with_password_map_by_nexthop) {
  harness h;
  mx_script relay;
  h.connector.servers["192.0.2.5"] = &relay;
  h.dns.hosts["smtp.relay.test"] = {dns_status::ok, {"192.0.2.5"}, {}};
  std::string err;
  auto lib = sasl::client_library::init(err);
  ASSERT_TRUE(lib) << err;
  std::shared_ptr<const maps::table> map =
      maps::open("inline:{[smtp.relay.test]:587=user:secret}", err);
  ASSERT_TRUE(map) << err;
  h.options.sasl_auth_enable = true;
  h.options.sasl_library = lib;
  h.options.sasl_password_maps = map;
  h.options.sasl_mechanism_filter = {"plain"};
  const auto out = h.run(h.make_job({"a@x.test"}, relay_hop("smtp.relay.test", 587)));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, outcome_status::sent);
  EXPECT_EQ(out[0].relay, "smtp.relay.test[192.0.2.5]:587");
  // Postfix's client sends the user as authorization id too: "user\0user\0secret".
  EXPECT_NE(relay.received.find("AUTH PLAIN dXNlcgB1c2VyAHNlY3JldA==\r\n"), std::string::npos)
      << relay.received;

  // A rejected AUTH defers (smtp_sasl_auth_soft_bounce).
  mx_script strict;
  strict.auth = "535 5.7.8 Error: authentication failed: authentication failure";
  h.connector.servers["192.0.2.5"] = &strict;
  const auto out2 = h.run(h.make_job({"a@x.test"}, relay_hop("smtp.relay.test", 587)));
  ASSERT_EQ(out2.size(), 1u);
  EXPECT_EQ(out2[0].status, outcome_status::deferred);
  EXPECT_EQ(out2[0].reason,
            "SASL authentication failed; server smtp.relay.test[192.0.2.5] said: 535 5.7.8 "
            "Error: authentication failed: authentication failure");
}

TEST(smtp_agent, non_smtp_transport_is_deferred) {
  harness h;
  next_hop hop;
  hop.transport = "local";
  const auto out = h.run(h.make_job({"a@x.test"}, hop));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, outcome_status::deferred);
}

TEST(format_delay, postfix_rounding) {
  EXPECT_EQ(format_delay(1200ms), "1.2");
  EXPECT_EQ(format_delay(60ms), "0.06");
  EXPECT_EQ(format_delay(0ms), "0");
  EXPECT_EQ(format_delay(std::chrono::microseconds(4999)), "0");
  EXPECT_EQ(format_delay(std::chrono::microseconds(5000)), "0.01");
  EXPECT_EQ(format_delay(114ms), "0.11");
  EXPECT_EQ(format_delay(430ms), "0.43");
  EXPECT_EQ(format_delay(1249ms), "1.2");
  EXPECT_EQ(format_delay(12400ms), "12");
  EXPECT_EQ(format_delay(12600ms), "13");
  EXPECT_EQ(format_delay(123456ms), "123");
  EXPECT_EQ(format_delay(-5ms), "0");
}

}  // namespace
}  // namespace relaylab::delivery

namespace relaylab::delivery {
namespace {

// Two deliveries through one agent with the connection cache on.
struct cache_harness : harness {
  std::vector<std::vector<recipient_outcome>> run_both(const job& a, const job& b,
                                                       std::size_t* cached_between = nullptr) {
    smtp_agent agent(options, connector, runtime, dns, logger,
                     [](std::size_t bound) { return bound - 1; });
    std::vector<std::vector<recipient_outcome>> out;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          auto first = co_await agent.deliver(a);
          out.push_back(std::move(first));
          if (cached_between) *cached_between = agent.cached_sessions();
          auto second = co_await agent.deliver(b);
          out.push_back(std::move(second));
        },
        asio::detached);
    io.run();
    io.restart();
    return out;
  }
};

job second_job(cache_harness& h, next_hop hop) {
  job j = h.make_job({"b@example.org"}, std::move(hop));
  j.queue_id = "77968D02221";
  return j;
}

TEST(smtp_agent_cache, a_clean_session_carries_the_next_message_and_logs_conn_use) {
  cache_harness h;
  h.options.cache_time_limit = 2s;
  mx_script mx;
  h.connector.servers["192.0.2.25"] = &mx;
  const auto hop = relay_hop("192.0.2.25", 25);
  std::size_t cached = 0;
  const auto out = h.run_both(h.make_job({"a@example.org"}, hop), second_job(h, hop), &cached);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out[1].size(), 1u);
  EXPECT_EQ(out[0][0].status, outcome_status::sent);
  EXPECT_EQ(out[1][0].status, outcome_status::sent);
  EXPECT_EQ(cached, 1u);
  EXPECT_EQ(mx.connections, 1);
  // One EHLO, two transactions, and the QUIT when the idle session expired.
  const auto count = [&](std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = 0; (at = mx.received.find(what, at)) != std::string::npos; ++at) ++n;
    return n;
  };
  EXPECT_EQ(count("EHLO "), 1u);
  EXPECT_EQ(count("MAIL FROM:"), 2u);
  EXPECT_EQ(count("QUIT\r\n"), 1u);
  const std::string log = h.log_text();
  EXPECT_EQ(log.find("66857C01110: to=<a@example.org>, relay=192.0.2.25[192.0.2.25]:25, delay="),
            0u)
      << log;
  EXPECT_NE(log.find("77968D02221: to=<b@example.org>, relay=192.0.2.25[192.0.2.25]:25, "
                     "conn_use=2, delay="),
            std::string::npos)
      << log;
}

TEST(smtp_agent_cache, off_by_default_every_message_has_its_own_session) {
  cache_harness h;
  mx_script mx;
  h.connector.servers["192.0.2.25"] = &mx;
  const auto hop = relay_hop("192.0.2.25", 25);
  const auto out = h.run_both(h.make_job({"a@example.org"}, hop), second_job(h, hop));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1][0].status, outcome_status::sent);
  EXPECT_EQ(mx.connections, 2);
  EXPECT_EQ(h.log_text().find("conn_use"), std::string::npos);
}

TEST(smtp_agent_cache, a_cached_session_the_server_dropped_is_replaced_silently) {
  cache_harness h;
  h.options.cache_time_limit = 2s;
  mx_script mx;
  mx.close_at_mail_on = 1;  // the first connection is gone by the time it is reused
  mx.mail = "250 2.1.0 Ok";
  h.connector.servers["192.0.2.25"] = &mx;
  const auto hop = relay_hop("192.0.2.25", 25);
  // The first delivery must not meet the trap: it uses a job whose MAIL comes before the trap
  // is armed, so arm it only for the second transaction of connection 1.
  mx.close_at_mail_on = 0;
  std::vector<std::vector<recipient_outcome>> out;
  {
    smtp_agent agent(h.options, h.connector, h.runtime, h.dns, h.logger,
                     [](std::size_t bound) { return bound - 1; });
    const job first = h.make_job({"a@example.org"}, hop);
    const job second = second_job(h, hop);
    asio::co_spawn(
        h.io,
        [&]() -> asio::awaitable<void> {
          auto o1 = co_await agent.deliver(first);
          out.push_back(std::move(o1));
          mx.close_at_mail_on = 1;
          auto o2 = co_await agent.deliver(second);
          out.push_back(std::move(o2));
        },
        asio::detached);
    h.io.run();
  }
  ASSERT_EQ(out.size(), 2u);
  ASSERT_EQ(out[1].size(), 1u);
  EXPECT_EQ(out[1][0].status, outcome_status::sent);
  EXPECT_EQ(mx.connections, 2);
  const std::string log = h.log_text();
  EXPECT_EQ(log.find("lost connection"), std::string::npos) << log;
  EXPECT_EQ(log.find("conn_use"), std::string::npos) << log;  // a fresh connection
}

TEST(smtp_agent_cache, options_from_main_cf) {
  config::parameters p;
  auto o = smtp_agent_options_from_config(p, 1);
  EXPECT_EQ(o.cache_time_limit, 2s);  // smtp_connection_cache_on_demand = yes by default
  EXPECT_EQ(o.reuse_time_limit, 300s);
  p.set("smtp_connection_cache_on_demand", "no");
  o = smtp_agent_options_from_config(p, 1);
  EXPECT_EQ(o.cache_time_limit, 0ms);
}

}  // namespace
}  // namespace relaylab::delivery
