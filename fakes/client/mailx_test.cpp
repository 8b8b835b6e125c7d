#include "fakes/client/mailx.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <sstream>

#include "fakes/client/test_support.hpp"
#include "fakes/mx/in_process.hpp"

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
  EXPECT_FALSE(parse_smtp_url("smtps://h", err));
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
  EXPECT_NE(out.verbose.find(">>> AUTH PLAIN [secret]\n"), std::string::npos);
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

}  // namespace
}  // namespace relaylab::fakes::client
