#include "fakes/client/mailx.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <sstream>

#include "fakes/client/test_support.hpp"
#include "fakes/mx/in_process.hpp"
#include "fakes/mx/tcp_listener.hpp"
#include "fakes/mx/tls.hpp"
#include "relay/net/tcp_stream.hpp"

#include <unistd.h>
#include <filesystem>
#include <fstream>

namespace relaylab::fakes::client {
namespace {

namespace asio = boost::asio;

mailx_environment env() {
  mailx_environment e;
  e.now = std::chrono::system_clock::time_point(std::chrono::seconds(1603248922));
  e.random16 = "JEdmKAU2e4kqPSBs";
  e.hostname = "client.example.net";
  return e;
}

TEST(mailx, builds_the_message_like_mailx) {
  mailx_message_input in;
  in.from = "hogehoge@fugafuga.com";
  in.to = {"a@x.example", "b@x.example"};
  in.subject = "test";
  in.body = "hello\nworld";
  EXPECT_EQ(build_mailx_message(in, env()),
            "Date: Wed, 21 Oct 2020 02:55:22 +0000\r\n"
            "From: hogehoge@fugafuga.com\r\n"
            "To: a@x.example, b@x.example\r\n"
            "Subject: test\r\n"
            "Message-ID: <5f8fa31a.JEdmKAU2e4kqPSBs%hogehoge@fugafuga.com>\r\n"
            "User-Agent: relaylab-send\r\n"
            "\r\n"
            "hello\r\nworld\r\n");
}

TEST(mailx, eight_bit_text_gets_mime_headers) {
  mailx_message_input in;
  in.from = "a@b";
  in.to = {"c@d"};
  in.subject = "テスト";
  in.body = "本文\n";
  const auto m = build_mailx_message(in, env());
  EXPECT_NE(m.find("Subject: =?utf-8?B?44OG44K544OI?=\r\n"), std::string::npos);
  EXPECT_NE(m.find("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "Content-Transfer-Encoding: 8bit\r\n\r\n本文\r\n"),
            std::string::npos);
}

TEST(mailx, mailrc_and_command_line_settings) {
  mailx_settings s;
  std::string err;
  ASSERT_TRUE(
      parse_mailrc("# comment\nset smtp-auth=plain\n"
                   "set smtp-auth-user=smtp-auth@example.com smtp-auth-password='p w'\n"
                   "set verbose\nunset verbose\nalias x y\n",
                   "mailrc", s, err))
      << err;
  s.set("smtp=smtp://127.0.0.1:2525");
  EXPECT_EQ(s.get("smtp-auth"), "plain");
  EXPECT_EQ(s.get("smtp-auth-user"), "smtp-auth@example.com");
  EXPECT_EQ(s.get("smtp-auth-password"), "p w");
  EXPECT_EQ(s.vars.count("verbose"), 0u);
  EXPECT_EQ(s.get("smtp"), "smtp://127.0.0.1:2525");
  EXPECT_FALSE(parse_mailrc("set a='b\n", "rc", s, err));
  EXPECT_EQ(err, "rc:1: unterminated quote");
}

TEST(mailx, smtp_urls) {
  std::string err;
  auto u = parse_smtp_url("smtp://10.0.0.5:587", err);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "10.0.0.5");
  EXPECT_EQ(u->port, 587);
  u = parse_smtp_url("submission://[::1]", err);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 587);
  u = parse_smtp_url("localhost", err);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 25);
  EXPECT_FALSE(parse_smtp_url("smtp://h:99999", err));
  EXPECT_EQ(err, "bad port \"99999\" in \"smtp://h:99999\"");
  EXPECT_FALSE(parse_smtp_url("imap://h", err));
}

struct send_outcome {
  mailx_result result;
  std::string verbose;
};

send_outcome send_to(mx::server& srv, mailx_settings settings, mailx_message_input in) {
  asio::io_context io;
  test::virtual_runtime rt(io);
  mx::in_process_connector conn(srv, rt);
  std::ostringstream v;
  auto f = asio::co_spawn(io, mailx_send(settings, in, env(), conn, rt, &v), asio::use_future);
  io.run();
  return {f.get(), v.str()};
}

mx::script script_of(std::string_view text) {
  mx::parse_error err;
  auto s = mx::parse_script(text, "t", err);
  EXPECT_TRUE(s) << err.to_string();
  return s ? *s : mx::script{};
}

TEST(mailx, sends_with_auth_plain_through_libsasl2) {
  mx::server srv(script_of("auth user smtp-auth@example.com relay-pass-1\nauth required\n"));
  mailx_settings s;
  s.set("smtp=smtp://127.0.0.1:587");
  s.set("smtp-auth=plain");
  s.set("smtp-auth-user=smtp-auth@example.com");
  s.set("smtp-auth-password=relay-pass-1");
  mailx_message_input in;
  in.from = "hogehoge@fugafuga.com";
  in.to = {"friend@remote.example"};
  in.subject = "seed";
  in.body = "body\n";
  const auto out = send_to(srv, s, in);
  EXPECT_EQ(out.result.exit_status, 0) << out.result.error << out.verbose;
  ASSERT_EQ(srv.mailbox().size(), 1u);
  EXPECT_EQ(srv.mailbox()[0].auth_user, "smtp-auth@example.com");
  EXPECT_EQ(srv.mailbox()[0].sender, "hogehoge@fugafuga.com");
  EXPECT_EQ(srv.mailbox()[0].data, build_mailx_message(in, env()));
  EXPECT_NE(out.verbose.find(">>> EHLO client.example.net\n"), std::string::npos);
  // As s-nail: no initial response; the credentials answer the 334 (hidden in the transcript).
  EXPECT_NE(out.verbose.find(">>> AUTH PLAIN\n<<< 334 \n>>> [secret]\n"), std::string::npos)
      << out.verbose;
  EXPECT_NE(out.verbose.find("<<< 235 2.7.0 Authentication successful\n"), std::string::npos);
  EXPECT_EQ(out.verbose.find("relay-pass"), std::string::npos);
}

TEST(mailx, sends_with_auth_login) {
  mx::server srv(script_of("auth user u p\nauth required\n"));
  mailx_settings s;
  s.set("smtp=127.0.0.1:25");
  s.set("smtp-auth=login");
  s.set("smtp-auth-user=u");
  s.set("smtp-auth-password=p");
  mailx_message_input in{"a@b.example", {"c@d.example"}, "s", "x\n", "relaylab-send"};
  const auto out = send_to(srv, s, in);
  EXPECT_EQ(out.result.exit_status, 0) << out.result.error << out.verbose;
  EXPECT_EQ(srv.mailbox().size(), 1u);
}

TEST(mailx, refused_recipient_exits_4) {
  mx::server srv(script_of("rcpt c@d.example reply \"550 5.1.1 <c@d.example>: User unknown\"\n"));
  mailx_settings s;
  s.set("smtp=smtp://127.0.0.1");
  mailx_message_input in{"a@b.example", {"c@d.example"}, "s", "x\n", "relaylab-send"};
  const auto out = send_to(srv, s, in);
  EXPECT_EQ(out.result.exit_status, mailx_exit_send_failed);
  EXPECT_EQ(out.result.error, "smtp-server: 550 5.1.1 <c@d.example>: User unknown");
  EXPECT_TRUE(srv.mailbox().empty());
}

TEST(mailx, wrong_password_exits_4) {
  mx::server srv(script_of("auth user u p\n"));
  mailx_settings s;
  s.set("smtp=smtp://127.0.0.1");
  s.set("smtp-auth=plain");
  s.set("smtp-auth-user=u");
  s.set("smtp-auth-password=wrong");
  mailx_message_input in{"a@b.example", {"c@d.example"}, "s", "x\n", "relaylab-send"};
  const auto out = send_to(srv, s, in);
  EXPECT_EQ(out.result.exit_status, mailx_exit_send_failed);
  EXPECT_EQ(out.result.error,
            "smtp-server: 535 5.7.8 Error: authentication failed: authentication failure");
  EXPECT_TRUE(srv.mailbox().empty());
}

// As s-nail: smtp-auth set and no AUTH in the EHLO reply still sends "AUTH PLAIN" (no initial
// response), so the server's refusal is what the user sees, and the password is never sent.
TEST(mailx, auth_not_offered_is_tried_without_sending_the_password) {
  mx::server srv(script_of(""));  // offers no AUTH
  mailx_settings s;
  s.set("smtp=smtp://127.0.0.1");
  s.set("smtp-auth=plain");
  s.set("smtp-auth-user=u");
  s.set("smtp-auth-password=never-sent");
  mailx_message_input in{"a@b.example", {"c@d.example"}, "s", "x\n", "relaylab-send"};
  const auto out = send_to(srv, s, in);
  EXPECT_EQ(out.result.exit_status, mailx_exit_send_failed) << out.verbose;
  EXPECT_EQ(out.result.error.rfind("smtp-server: 5", 0), 0u) << out.result.error;
  EXPECT_NE(out.verbose.find(">>> AUTH PLAIN\n"), std::string::npos) << out.verbose;
  EXPECT_EQ(out.verbose.find("[secret]"), std::string::npos) << out.verbose;
  EXPECT_TRUE(srv.mailbox().empty());
}

// TLS against the fake MX over loopback (real clock: the certificates are valid from now).
struct tls_mx {
  tls::authority ca{"Relaylab Test CA"};
  std::unique_ptr<mx::server> srv;
  std::string ca_file;
  tls_mx(mx::cert_kind kind, bool wrapper, std::string_view script_text = "") {
    std::string error;
    mx::server_options o;
    mx::tls_options t;
    t.wrappermode = wrapper;
    o.tls = mx::make_tls_context(ca, kind, {"mx.fake.example", "127.0.0.1"},
                                 tls::key_kind::ecdsa_p256, error, t);
    EXPECT_TRUE(o.tls) << error;
    srv = std::make_unique<mx::server>(script_of(script_text), o);
    ca_file = (std::filesystem::temp_directory_path() /
               ("relaylab_mailx_ca." + std::to_string(::getpid()) + ".pem"))
                  .string();
    std::ofstream(ca_file) << ca.ca_pem();
  }
  ~tls_mx() { std::filesystem::remove(ca_file); }
};

send_outcome send_tcp(mx::server& srv, mailx_settings settings, const std::string& scheme) {
  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acc.local_endpoint().port();
  const auto start = std::chrono::steady_clock::now();
  asio::co_spawn(io,
                 mx::serve_tcp(
                     acc, srv, [start] { return std::chrono::steady_clock::now() - start; }, 1),
                 asio::detached);
  net::system_runtime rt(io.get_executor());
  net::tcp_connector conn(io.get_executor());
  settings.set("smtp=" + scheme + "://127.0.0.1:" + std::to_string(port));
  mailx_message_input in;
  in.from = "a@c.example";
  in.to = {"b@x.example"};
  in.subject = "tls";
  in.body = "body\n";
  std::ostringstream v;
  auto f = asio::co_spawn(io, mailx_send(settings, in, env(), conn, rt, &v), asio::use_future);
  io.run_for(std::chrono::seconds(30));
  return {f.get(), v.str()};
}

constexpr std::string_view auth_script =
    "auth user smtp-auth@example.com relay-pass-1\nauth required\n";

mailx_settings auth_settings() {
  mailx_settings s;
  s.set("smtp-auth=plain");
  s.set("smtp-auth-user=smtp-auth@example.com");
  s.set("smtp-auth-password=relay-pass-1");
  return s;
}

TEST(mailx_tls, starttls_verified_with_ssl_ca_file_then_auth) {
  tls_mx mx(mx::cert_kind::good, false, auth_script);
  auto s = auth_settings();
  s.set("smtp-use-starttls");
  s.set("ssl-ca-file=" + mx.ca_file);
  const auto out = send_tcp(*mx.srv, s, "smtp");
  EXPECT_EQ(out.result.exit_status, 0) << out.result.error << out.verbose;
  EXPECT_TRUE(out.result.warnings.empty());
  ASSERT_EQ(mx.srv->mailbox().size(), 1u);
  EXPECT_TRUE(mx.srv->mailbox()[0].tls);
  EXPECT_EQ(mx.srv->mailbox()[0].auth_user, "smtp-auth@example.com");
  // AUTH only after the handshake: the transcript has STARTTLS before AUTH.
  const auto starttls = out.verbose.find(">>> STARTTLS\n");
  ASSERT_NE(starttls, std::string::npos) << out.verbose;
  EXPECT_GT(out.verbose.find(">>> AUTH PLAIN\n"), starttls);
}

TEST(mailx_tls, strict_refuses_a_self_signed_certificate_before_auth) {
  tls_mx mx(mx::cert_kind::self_signed, false, auth_script);
  auto s = auth_settings();
  s.set("smtp-use-starttls");
  s.set("ssl-ca-file=" + mx.ca_file);
  const auto out = send_tcp(*mx.srv, s, "smtp");
  EXPECT_EQ(out.result.exit_status, mailx_exit_send_failed);
  EXPECT_EQ(out.result.error, "TLS certificate verify failed: self-signed certificate");
  EXPECT_TRUE(mx.srv->mailbox().empty());
  EXPECT_EQ(mx.srv->counts().auth_success + mx.srv->counts().auth_failure, 0u);
  EXPECT_EQ(out.verbose.find(">>> AUTH"), std::string::npos) << out.verbose;
}

TEST(mailx_tls, strict_refuses_an_expired_certificate) {
  tls_mx mx(mx::cert_kind::expired, false);
  mailx_settings s;
  s.set("smtp-use-starttls");
  s.set("ssl-verify=strict");
  s.set("ssl-ca-file=" + mx.ca_file);
  const auto out = send_tcp(*mx.srv, s, "smtp");
  EXPECT_EQ(out.result.exit_status, mailx_exit_send_failed);
  EXPECT_EQ(out.result.error, "TLS certificate verify failed: certificate has expired");
  EXPECT_TRUE(mx.srv->mailbox().empty());
}

TEST(mailx_tls, warn_sends_and_says_why) {
  tls_mx mx(mx::cert_kind::expired, false);
  mailx_settings s;
  s.set("smtp-use-starttls");
  s.set("ssl-verify=warn");
  s.set("ssl-ca-file=" + mx.ca_file);
  const auto out = send_tcp(*mx.srv, s, "smtp");
  EXPECT_EQ(out.result.exit_status, 0) << out.result.error;
  ASSERT_EQ(out.result.warnings.size(), 1u);
  EXPECT_EQ(out.result.warnings[0], "TLS certificate verify failed: certificate has expired");
  ASSERT_EQ(mx.srv->mailbox().size(), 1u);
  EXPECT_TRUE(mx.srv->mailbox()[0].tls);
}

TEST(mailx_tls, ignore_sends_silently) {
  tls_mx mx(mx::cert_kind::self_signed, false);
  mailx_settings s;
  s.set("smtp-use-starttls");
  s.set("ssl-verify=ignore");
  const auto out = send_tcp(*mx.srv, s, "smtp");
  EXPECT_EQ(out.result.exit_status, 0) << out.result.error;
  EXPECT_TRUE(out.result.warnings.empty());
  ASSERT_EQ(mx.srv->mailbox().size(), 1u);
}

TEST(mailx_tls, starttls_not_offered_fails_without_auth_or_mail) {
  mx::server srv(script_of(auth_script));
  auto s = auth_settings();
  s.set("smtp-use-starttls");
  const auto out = send_tcp(srv, s, "smtp");
  EXPECT_EQ(out.result.exit_status, mailx_exit_send_failed);
  EXPECT_EQ(out.result.error,
            "smtp-server: STARTTLS not offered by the server (smtp-use-starttls is set)");
  EXPECT_TRUE(srv.mailbox().empty());
  EXPECT_EQ(out.verbose.find(">>> AUTH"), std::string::npos) << out.verbose;
  EXPECT_EQ(out.verbose.find(">>> MAIL"), std::string::npos) << out.verbose;
}

TEST(mailx_tls, smtps_url_is_implicit_tls) {
  tls_mx mx(mx::cert_kind::good, true, auth_script);
  auto s = auth_settings();
  s.set("ssl-ca-file=" + mx.ca_file);
  const auto out = send_tcp(*mx.srv, s, "smtps");
  EXPECT_EQ(out.result.exit_status, 0) << out.result.error << out.verbose;
  ASSERT_EQ(mx.srv->mailbox().size(), 1u);
  EXPECT_TRUE(mx.srv->mailbox()[0].tls);
  EXPECT_EQ(out.verbose.find("STARTTLS"), std::string::npos);
  std::string err;
  const auto u = parse_smtp_url("smtps://127.0.0.1", err);
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, 465);
  EXPECT_TRUE(u->tls);
}

}  // namespace
}  // namespace relaylab::fakes::client
