// Dialogue tests for the smtpd application: the real engine, policy, libsasl2 with a sasldb,
// and the spool over mem_storage, driven without sockets. Each test reads as a transcript.
#include "relay/smtpd/smtpd.hpp"

#include "relay/log/log.hpp"
#include "relay/queue/spool.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtp/base64.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace relaylab::smtpd {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string good_plain =
    smtp::base64_encode(std::string("\0smtp-auth@example.com\0secret-pw", 32));
const std::string bad_plain =
    smtp::base64_encode(std::string("\0smtp-auth@example.com\0wrong-pw!", 32));

/// libsasl2 is initialised once per process: one sasl directory serves every test here.
std::shared_ptr<sasl::server_library> sasl_library() {
  static std::shared_ptr<sasl::server_library> lib = [] {
    fs::path dir = fs::temp_directory_path() / ("relaylab-smtpd-test-" + std::to_string(getpid()));
    fs::create_directories(dir);
    std::string error;
    EXPECT_TRUE(sasl::set_sasldb_password((dir / "sasldb2").string(), "smtp-auth", "example.com",
                                          "secret-pw", error))
        << error;
    std::ofstream(dir / "smtpd.conf")
        << "pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
        << "mech_list: PLAIN LOGIN\nsasldb_path: " << (dir / "sasldb2").string() << "\n";
    sasl::server_config c;
    c.config_path = dir.string();
    c.server_fqdn = "relay.example.com";
    auto l = sasl::server_library::init(c, error);
    EXPECT_TRUE(l) << error;
    return l;
  }();
  return lib;
}

std::chrono::system_clock::time_point fixed_time() {
  return std::chrono::system_clock::time_point(std::chrono::seconds(1795841628));
}

/// A relay with the seed tutorial's main.cf lines and master.cf services.
class smtpd_dialogue : public ::testing::Test {
 protected:
  void SetUp() override { build({}); }

  void build(std::vector<std::pair<std::string, std::string>> extra_main,
             std::vector<std::pair<std::string, std::string>> submission_overrides = {
                 {"smtpd_client_restrictions", "permit_sasl_authenticated,reject"}}) {
    config::host_environment env;
    env.hostname = "relay.example.com";
    cfg_.main = config::parameters(env);
    cfg_.main.set("myhostname", "relay.example.com");
    cfg_.main.set("mydomain", "example.com");
    cfg_.main.set("compatibility_level", "3.6");
    cfg_.main.set("smtpd_banner", "$myhostname ESMTP $mail_name (Debian/GNU)");
    cfg_.main.set("mydestination", "$myhostname, localhost.$mydomain, localhost, lab.example");
    cfg_.main.set("mynetworks", "127.0.0.0/8 [::1]/128");
    cfg_.main.set("local_recipient_maps", "inline:{ alice=ok, postmaster=ok }");
    cfg_.main.set("smtpd_recipient_restrictions", "permit_mynetworks, reject_unauth_destination");
    cfg_.main.set("smtpd_sasl_auth_enable", "yes");
    cfg_.main.set("smtpd_authorized_xclient_hosts", "127.0.0.0/8");
    for (auto& [k, v] : extra_main) cfg_.main.set(k, v);
    smtp_.name = "smtp";
    smtp_.type = "inet";
    smtp_.command = "smtpd";
    smtp_.listen_port = 25;
    submission_ = smtp_;
    submission_.name = "submission";
    submission_.listen_port = 587;
    submission_.overrides = std::move(submission_overrides);

    log_ = std::make_unique<log::logger>(log::logger_options{"relay.example.com", fixed_time});
    auto sink = std::make_unique<log::memory_sink>();
    lines_ = sink.get();
    log_->add_sink(std::move(sink));
    queue::spool_options so;
    so.mode = queue::commit_mode::immediate;
    so.queue_minfree_bytes = cfg_.main.get_size("queue_minfree");
    std::uint64_t n = 0;
    spool_ = std::make_unique<queue::spool>(
        storage_, fixed_time, [n]() mutable { return ++n; }, so);
    ASSERT_FALSE(spool_->open());
  }

  dependencies deps() {
    dependencies d;
    d.log = log_.get();
    d.spool = spool_.get();
    d.sasl = sasl_library();
    d.wall_clock = fixed_time;
    d.pid = 4242;
    return d;
  }

  std::unique_ptr<service> make(const config::master_service& def) {
    const dependencies deps = this->deps();
    std::vector<config::diagnostic> diags;
    auto svc = service::create(cfg_, def, deps, diags);
    for (auto& d : diags) ADD_FAILURE() << d.to_string();
    return svc;
  }

  /// Connects from `addr` (having sent `waiting` before the greeting); returns the greeting.
  std::string connect(const config::master_service& def, std::string addr = "127.0.0.1",
                      std::string_view waiting = {}) {
    svc_ = make(def);
    if (!svc_) return "<no service>";
    endpoint remote{addr, "40000", "unknown"};
    endpoint local{"127.0.0.1", std::to_string(def.listen_port), "relay.example.com"};
    conn_ = svc_->open(
        remote, local, now_, [this] { ++notified_; }, waiting);
    return take();
  }

  /// The parameter of the fatal diagnostic that keeps the smtp service from starting ("" if it
  /// starts).
  std::string fatal_parameter() {
    std::vector<config::diagnostic> diags;
    if (service::create(cfg_, smtp_, deps(), diags) != nullptr || diags.empty() ||
        diags.back().level != config::diagnostic::severity::fatal)
      return "";
    return diags.back().parameter;
  }

  /// Sends one line (CRLF added) and returns every reply line it produced.
  std::string say(std::string_view line) { return send(std::string(line) + "\r\n"); }

  std::string send(const std::string& bytes) {
    conn_->session().receive(std::span<const char>(bytes.data(), bytes.size()), now_);
    for (int i = 0; i < 4 && notified_ > 0; ++i) {
      notified_ = 0;
      conn_->run_pending(now_);
    }
    return take();
  }

  std::string take() {
    std::string out(conn_->session().output());
    conn_->session().consume_output(out.size());
    return out;
  }

  bool log_has(std::string_view needle) const {
    for (auto& t : lines_->texts())
      if (t.find(needle) != std::string::npos) return true;
    return false;
  }
  std::string log_text() const {
    std::string all;
    for (auto& t : lines_->texts()) all += t + "\n";
    return all;
  }

  config::configuration cfg_;
  config::master_service smtp_, submission_;
  queue::mem_storage storage_;
  std::unique_ptr<queue::spool> spool_;
  std::unique_ptr<log::logger> log_;
  log::memory_sink* lines_ = nullptr;
  std::unique_ptr<service> svc_;
  std::unique_ptr<connection> conn_;
  smtp::timestamp now_{};
  int notified_ = 0;
};

TEST_F(smtpd_dialogue, port25_inside_mynetworks_relays_and_queues) {
  EXPECT_EQ(connect(smtp_), "220 relay.example.com ESMTP Postfix (Debian/GNU)\r\n");
  EXPECT_EQ(say("HELO client.example.net"), "250 relay.example.com\r\n");
  EXPECT_EQ(say("MAIL FROM:<hogehoge@fugafuga.com>"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(say("RCPT TO:<friend@gmail.com>"), "250 2.1.5 Ok\r\n");
  EXPECT_EQ(say("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
  std::string reply =
      send("Message-ID: <abc@fugafuga.com>\r\nSubject: hi\r\n\r\nsmtp-handson\r\n.\r\n");
  ASSERT_EQ(reply.rfind("250 2.0.0 Ok: queued as ", 0), 0u) << reply;
  std::string id = reply.substr(24, reply.size() - 26);
  EXPECT_EQ(spool_->state_of(id), queue::queue_state::incoming);
  EXPECT_TRUE(log_has("connect from unknown[127.0.0.1]"));
  EXPECT_TRUE(log_has(id + ": client=unknown[127.0.0.1]")) << log_text();
  EXPECT_TRUE(log_has(id + ": message-id=<abc@fugafuga.com>")) << log_text();
  EXPECT_EQ(say("QUIT"), "221 2.0.0 Bye\r\n");
  EXPECT_TRUE(
      log_has("disconnect from unknown[127.0.0.1] helo=1 mail=1 rcpt=1 data=1 quit=1 "
              "commands=5"))
      << log_text();

  queue::queued_message msg;
  ASSERT_FALSE(spool_->load(id, msg));
  std::string content;
  ASSERT_FALSE(spool_->read_content(msg, 0, 1 << 20, content));
  EXPECT_EQ(content.rfind("Received: from client.example.net (unknown [127.0.0.1])\r\n"
                          "\tby relay.example.com (Postfix) with SMTP id " +
                              id + "\r\n\tfor <friend@gmail.com>; ",
                          0),
            0u)
      << content;
  EXPECT_NE(content.find("\r\n\r\nsmtp-handson\r\n"), std::string::npos);
}

TEST_F(smtpd_dialogue, seed_bug_authenticated_outside_client_gets_relay_access_denied) {
  connect(submission_, "203.0.113.9");
  say("EHLO client.example.net");
  EXPECT_EQ(say("AUTH PLAIN " + good_plain), "235 2.7.0 Authentication successful\r\n");
  EXPECT_EQ(say("MAIL FROM:<hogehoge@fugafuga.com>"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(say("RCPT TO:<friend@gmail.com>"),
            "554 5.7.1 <friend@gmail.com>: Relay access denied\r\n");
  EXPECT_TRUE(
      log_has("NOQUEUE: reject: RCPT from unknown[203.0.113.9]: 554 5.7.1 "
              "<friend@gmail.com>: Relay access denied; from=<hogehoge@fugafuga.com> "
              "to=<friend@gmail.com> proto=ESMTP helo=<client.example.net>"))
      << log_text();
}

TEST_F(smtpd_dialogue, fix_a_permit_sasl_authenticated_delivers_and_logs_sasl) {
  build({{"smtpd_recipient_restrictions",
          "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"}});
  connect(submission_, "203.0.113.9");
  say("EHLO client.example.net");
  say("AUTH PLAIN " + good_plain);
  say("MAIL FROM:<hogehoge@fugafuga.com>");
  EXPECT_EQ(say("RCPT TO:<friend@gmail.com>"), "250 2.1.5 Ok\r\n");
  EXPECT_TRUE(
      log_has(": client=unknown[203.0.113.9], sasl_method=PLAIN, "
              "sasl_username=smtp-auth@example.com"))
      << log_text();
  say("DATA");
  std::string reply = send("\r\nbody\r\n.\r\n");
  EXPECT_EQ(reply.rfind("250 2.0.0 Ok: queued as ", 0), 0u) << reply;
}

TEST_F(smtpd_dialogue, submission_without_auth_is_rejected_at_rcpt) {
  connect(submission_, "203.0.113.9");
  say("EHLO client.example.net");
  say("MAIL FROM:<hogehoge@fugafuga.com>");
  EXPECT_EQ(say("RCPT TO:<friend@gmail.com>"),
            "554 5.7.1 <unknown[203.0.113.9]>: Client host rejected: Access denied\r\n");
}

TEST_F(smtpd_dialogue, wrong_password_is_535_and_logged_as_warning) {
  connect(submission_, "203.0.113.9");
  say("EHLO client.example.net");
  EXPECT_EQ(say("AUTH PLAIN " + bad_plain),
            "535 5.7.8 Error: authentication failed: authentication failure\r\n");
  EXPECT_TRUE(
      log_has("warning: unknown[203.0.113.9]: SASL PLAIN authentication failed: "
              "authentication failure"))
      << log_text();
}

TEST_F(smtpd_dialogue, queue_write_error_is_451_never_250) {
  connect(smtp_);
  say("HELO client.example.net");
  say("MAIL FROM:<a@fugafuga.com>");
  say("RCPT TO:<friend@gmail.com>");
  say("DATA");
  storage_.faults().fail_at(0, std::make_error_code(std::errc::io_error),
                            static_cast<unsigned>(queue::storage_op::fsync));
  EXPECT_EQ(send("\r\nbody\r\n.\r\n"), "451 4.3.0 Error: queue file write error\r\n");
  storage_.faults().disarm();
  EXPECT_EQ(spool_->message_count(), 0u);
}

TEST_F(smtpd_dialogue, low_disk_space_is_452_at_mail) {
  storage_.set_space({4096, 10});
  build({{"queue_minfree", "1000000"}});
  connect(smtp_);
  say("HELO client.example.net");
  EXPECT_EQ(say("MAIL FROM:<a@fugafuga.com>"), "452 4.3.1 Insufficient system storage\r\n");
}

TEST_F(smtpd_dialogue, delay_reject_no_rejects_the_greeting_and_then_every_command) {
  build({{"smtpd_delay_reject", "no"}});
  EXPECT_EQ(connect(submission_, "203.0.113.9"),
            "554 5.7.1 <unknown[203.0.113.9]>: Client host rejected: Access denied\r\n");
  EXPECT_EQ(say("EHLO client.example.net"),
            "503 5.7.0 Error: access denied for unknown[203.0.113.9]\r\n");
  EXPECT_EQ(say("QUIT"), "221 2.0.0 Bye\r\n");
}

}  // namespace
}  // namespace relaylab::smtpd

namespace relaylab::smtpd {
namespace {

TEST_F(smtpd_dialogue, auth_abort_and_bad_base64_are_logged_as_postfix_does) {
  connect(submission_, "203.0.113.9");
  say("EHLO client.example.net");
  EXPECT_EQ(say("AUTH PLAIN"), "334 \r\n");
  EXPECT_EQ(say("*"), "501 5.7.0 Authentication aborted\r\n");
  EXPECT_TRUE(log_has("warning: unknown[203.0.113.9]: SASL PLAIN authentication aborted"))
      << log_text();
  EXPECT_EQ(say("AUTH PLAIN !!!!"),
            "535 5.7.8 Error: authentication failed: bad protocol / cancel\r\n");
  EXPECT_TRUE(
      log_has("warning: unknown[203.0.113.9]: SASL PLAIN authentication failed: bad "
              "protocol / cancel, sasl_username=(unavailable)"))
      << log_text();
}

TEST_F(smtpd_dialogue, failed_auth_log_names_the_user_libsasl2_saw) {
  connect(submission_, "203.0.113.9");
  say("EHLO client.example.net");
  say("AUTH PLAIN " + bad_plain);
  EXPECT_TRUE(
      log_has("SASL PLAIN authentication failed: authentication failure, "
              "sasl_username=smtp-auth@example.com"))
      << log_text();
  EXPECT_EQ(say("AUTH PLAIN " + good_plain), "235 2.7.0 Authentication successful\r\n");
}

}  // namespace
}  // namespace relaylab::smtpd

namespace relaylab::smtpd {
namespace {

TEST_F(smtpd_dialogue, stray_cr_is_not_queued_cleanup_replaces_it_with_a_space) {
  connect(smtp_);
  say("HELO client.example.net");
  say("MAIL FROM:<a@fugafuga.com>");
  say("RCPT TO:<friend@gmail.com>");
  say("DATA");
  std::string reply = send("Subject: x\r\n\r\nline with\rCR\r\n.\r\n");
  ASSERT_EQ(reply.rfind("250 2.0.0 Ok: queued as ", 0), 0u) << reply;
  queue::queued_message msg;
  ASSERT_FALSE(spool_->load(reply.substr(24, reply.size() - 26), msg));
  std::string content;
  ASSERT_FALSE(spool_->read_content(msg, 0, 1 << 20, content));
  EXPECT_NE(content.find("\r\n\r\nline with CR\r\n"), std::string::npos) << content;
}

}  // namespace
}  // namespace relaylab::smtpd

namespace relaylab::smtpd {
namespace {

// Fail closed: a value relaylab cannot honour stops the service with file:line (docs/relay.md).
TEST_F(smtpd_dialogue, unsupported_hardening_values_are_fatal) {
  const std::pair<const char*, const char*> bad[] = {
      {"smtpd_forbid_bare_newline", "sometimes"},
      {"smtpd_forbid_bare_newline_reject_code", "450"},
      {"smtpd_forbidden_commands", "CONNECT hash:/etc/postfix/forbidden"},
  };
  for (const auto& [name, value] : bad) {
    build({{name, value}});
    EXPECT_EQ(fatal_parameter(), name);
  }
}

TEST_F(smtpd_dialogue, hopcount_limit_counts_smtpds_own_received_header) {
  build({{"hopcount_limit", "3"}});
  connect(smtp_);
  say("EHLO client.example.net");
  say("MAIL FROM:<a@client.example.net>");
  say("RCPT TO:<friend@remote.example>");
  say("DATA");
  EXPECT_EQ(send("Received: one\r\nReceived: two\r\n\r\nbody\r\n.\r\n"),
            "554 5.4.0 Error: too many hops\r\n");
  EXPECT_TRUE(log_has("message rejected: hopcount exceeded"));
}

}  // namespace
}  // namespace relaylab::smtpd

namespace relaylab::smtpd {
namespace {

// anvil (smtpd_client_*_limit) on the test's clock, with Postfix 3.7.11's replies and warnings.
TEST_F(smtpd_dialogue, anvil_message_recipient_and_auth_rates) {
  build({{"smtpd_client_message_rate_limit", "2"},
         {"smtpd_client_recipient_rate_limit", "3"},
         {"smtpd_client_auth_rate_limit", "1"}});
  connect(smtp_, "203.0.113.9");
  say("EHLO client.example.net");
  EXPECT_EQ(say("AUTH PLAIN " + bad_plain),
            "535 5.7.8 Error: authentication failed: "
            "authentication failure\r\n");
  EXPECT_EQ(say("AUTH PLAIN " + good_plain),
            "450 4.7.1 Error: too many AUTH commands from 203.0.113.9\r\n");
  EXPECT_TRUE(
      log_has("warning: AUTH command rate limit exceeded: 2 from unknown[203.0.113.9] "
              "for service smtp"))
      << log_text();
  EXPECT_EQ(say("MAIL FROM:<a@client.example.net>"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(say("RCPT TO:<alice@lab.example>"), "250 2.1.5 Ok\r\n");
  EXPECT_EQ(say("RCPT TO:<postmaster@lab.example>"), "250 2.1.5 Ok\r\n");
  EXPECT_EQ(say("VRFY alice@lab.example"), "252 2.0.0 alice@lab.example\r\n");
  EXPECT_EQ(say("RCPT TO:<alice@lab.example>"),
            "450 4.7.1 Error: too many recipients from 203.0.113.9\r\n");
  EXPECT_TRUE(
      log_has("warning: Recipient address rate limit exceeded: 4 from "
              "unknown[203.0.113.9] for service smtp"))
      << log_text();
  // The rate check comes before the address is parsed, as in Postfix.
  EXPECT_EQ(say("RCPT TO:<bad address"),
            "450 4.7.1 Error: too many recipients from 203.0.113.9\r\n");
  EXPECT_EQ(say("RSET"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(say("MAIL FROM:<a@client.example.net>"), "250 2.1.0 Ok\r\n");
  EXPECT_EQ(say("RSET"), "250 2.0.0 Ok\r\n");
  EXPECT_EQ(say("MAIL FROM:<a@client.example.net>"),
            "450 4.7.1 Error: too much mail from 203.0.113.9\r\n");
  EXPECT_TRUE(
      log_has("warning: Message delivery request rate limit exceeded: 3 from "
              "unknown[203.0.113.9] for service smtp"))
      << log_text();
  // A new window (anvil_rate_time_unit, 60s) starts the counts again.
  now_ += 61s;
  EXPECT_EQ(say("MAIL FROM:<a@client.example.net>"), "250 2.1.0 Ok\r\n");
}

TEST_F(smtpd_dialogue, anvil_connection_count_limit_replaces_the_greeting) {
  build({{"smtpd_client_connection_count_limit", "2"}});
  svc_ = make(smtp_);
  ASSERT_TRUE(svc_);
  const endpoint local{"127.0.0.1", "25", "relay.example.com"};
  auto open = [&](const std::string& addr) {
    return svc_->open(endpoint{addr, "40000", "unknown"}, local, now_, [] {});
  };
  auto greeting = [](connection& c) {
    std::string out(c.session().output());
    c.session().consume_output(out.size());
    return out;
  };
  auto c1 = open("203.0.113.9");
  auto c2 = open("203.0.113.9");
  auto c3 = open("203.0.113.9");
  EXPECT_EQ(greeting(*c1), "220 relay.example.com ESMTP Postfix (Debian/GNU)\r\n");
  EXPECT_EQ(greeting(*c2), "220 relay.example.com ESMTP Postfix (Debian/GNU)\r\n");
  EXPECT_EQ(greeting(*c3),
            "421 4.7.0 relay.example.com Error: too many connections from 203.0.113.9\r\n");
  EXPECT_TRUE(c3->session().closing());
  EXPECT_TRUE(
      log_has("warning: Connection concurrency limit exceeded: 3 from "
              "unknown[203.0.113.9] for service smtp"))
      << log_text();
  EXPECT_FALSE(log_has("after CONNECT")) << log_text();
  // Another client has its own count; a client that left frees its place.
  auto other = open("198.51.100.7");
  EXPECT_EQ(greeting(*other), "220 relay.example.com ESMTP Postfix (Debian/GNU)\r\n");
  c3.reset();
  c1.reset();
  auto c4 = open("203.0.113.9");
  EXPECT_EQ(greeting(*c4), "220 relay.example.com ESMTP Postfix (Debian/GNU)\r\n");
  // smtpd_client_event_limit_exceptions defaults to $mynetworks (127.0.0.0/8 here).
  auto in1 = open("127.0.0.1");
  auto in2 = open("127.0.0.1");
  auto in3 = open("127.0.0.1");
  EXPECT_EQ(greeting(*in3), "220 relay.example.com ESMTP Postfix (Debian/GNU)\r\n");
}

TEST_F(smtpd_dialogue, min_data_rate_must_be_at_least_one) {
  build({{"smtpd_per_request_deadline", "yes"}, {"smtpd_min_data_rate", "0"}});
  EXPECT_EQ(fatal_parameter(), "smtpd_min_data_rate");
}

// smtpd_per_request_deadline = yes reaches the session: DATA trickled at 1 byte per 10 s is cut
// off near smtpd_timeout (30s here), with Postfix's "timeout after DATA" line.
TEST_F(smtpd_dialogue, per_request_deadline_cuts_off_a_slow_trickle) {
  build({{"smtpd_per_request_deadline", "yes"}, {"smtpd_timeout", "30s"}});
  connect(smtp_, "203.0.113.9");
  say("EHLO client.example.net");
  say("MAIL FROM:<a@client.example.net>");
  EXPECT_EQ(say("RCPT TO:<alice@lab.example>"), "250 2.1.5 Ok\r\n");
  EXPECT_EQ(say("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
  std::string out;
  for (int i = 0; i < 10 && !conn_->session().closing(); ++i) {
    now_ += 10s;
    conn_->session().advance(now_);
    out += take();
    if (!conn_->session().closing()) out += send("x");
  }
  EXPECT_EQ(out, "421 4.4.2 relay.example.com Error: timeout exceeded\r\n");
  EXPECT_TRUE(log_has("timeout after DATA")) << log_text();
}

TEST_F(smtpd_dialogue, anvil_limits_must_be_counts) {
  build({{"smtpd_client_message_rate_limit", "-1"}});
  EXPECT_EQ(fatal_parameter(), "smtpd_client_message_rate_limit");
}

// Talking before the greeting, as Postfix 3.7.11 logs and rejects it (checked against a real
// Postfix: "improper command pipelining after CONNECT from localhost[127.0.0.1]: EHLO
// early.example\r\nMAIL FROM:<a@b.example>\r\n", then 503 at a reject_unauth_pipelining).
TEST_F(smtpd_dialogue, talking_before_the_greeting_is_logged_and_reject_unauth_pipelining_hits) {
  build({{"smtpd_sender_restrictions", "reject_unauth_pipelining"}});
  const std::string early = "EHLO early.example\r\nMAIL FROM:<a@b.example>\r\n";
  EXPECT_EQ(connect(smtp_, "203.0.113.9", early),
            "220 relay.example.com ESMTP Postfix (Debian/GNU)\r\n");
  EXPECT_TRUE(
      log_has("improper command pipelining after CONNECT from unknown[203.0.113.9]: "
              "EHLO early.example\\r\\nMAIL FROM:<a@b.example>\\r\\n"))
      << log_text();
  // smtpd_delay_reject = yes: the sender restrictions answer at RCPT.
  const std::string replies = send(early + "RCPT TO:<alice@relay.example.com>\r\n");
  EXPECT_NE(replies.find("503 5.5.0 <a@b.example>: Sender address rejected: Improper use of "
                         "SMTP command pipelining\r\n"),
            std::string::npos)
      << replies;
}

// With smtpd_forbid_unauth_pipelining the 554 comes before anvil: such connections are not
// counted, and nothing but the disconnect line is logged after the pipelining line.
TEST_F(smtpd_dialogue, forbid_unauth_pipelining_answers_early_talk_before_anvil) {
  build({{"smtpd_forbid_unauth_pipelining", "yes"}, {"smtpd_client_connection_count_limit", "1"}});
  svc_ = make(smtp_);
  ASSERT_TRUE(svc_);
  const endpoint local{"127.0.0.1", "25", "relay.example.com"};
  const endpoint remote{"203.0.113.9", "40000", "unknown"};
  auto early = svc_->open(
      remote, local, now_, [] {}, "EHLO early.example\r\n");
  EXPECT_EQ(early->session().output(), "554 5.5.0 Error: SMTP protocol synchronization\r\n");
  EXPECT_TRUE(early->session().closing());
  auto polite = svc_->open(remote, local, now_, [] {});
  EXPECT_EQ(polite->session().output(), "220 relay.example.com ESMTP Postfix (Debian/GNU)\r\n");
  EXPECT_TRUE(
      log_has("improper command pipelining after CONNECT from unknown[203.0.113.9]: "
              "EHLO early.example\\r\\n"))
      << log_text();
  EXPECT_TRUE(log_has("disconnect from unknown[203.0.113.9] commands=0/0")) << log_text();
  EXPECT_FALSE(log_has("lost connection after CONNECT")) << log_text();
  EXPECT_FALSE(log_has("synchronization after")) << log_text();
  EXPECT_EQ(lines_->texts().front(), "connect from unknown[203.0.113.9]");
}

// After the greeting: the command that had input behind it is named, and the 554 is not
// followed by a "... after EHLO" line of its own (Postfix 3.7.11 logs none).
TEST_F(smtpd_dialogue, forbid_unauth_pipelining_logs_the_command_and_the_pending_input) {
  build({{"smtpd_forbid_unauth_pipelining", "yes"}});
  connect(smtp_);
  EXPECT_EQ(send("EHLO x\r\nMAIL FROM:<a@b.example>\r\n"),
            "554 5.5.0 Error: SMTP protocol synchronization\r\n");
  EXPECT_TRUE(
      log_has("improper command pipelining after EHLO from unknown[127.0.0.1]: "
              "MAIL FROM:<a@b.example>\\r\\n"))
      << log_text();
  EXPECT_TRUE(log_has("disconnect from unknown[127.0.0.1] ehlo=0/1 commands=0/1")) << log_text();
  EXPECT_FALSE(log_has("synchronization after")) << log_text();
}

}  // namespace
}  // namespace relaylab::smtpd
