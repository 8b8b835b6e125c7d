#include "fakes/client/dialogue.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "fakes/client/test_support.hpp"
#include "fakes/mx/in_process.hpp"

namespace relaylab::fakes::client {
namespace {

namespace asio = boost::asio;
const std::string dir = RELAYLAB_FAKES_TESTDATA "/dialogues/";

mx::script mx_script() {
  mx::parse_error err;
  auto s = mx::parse_script(
      "rcpt bob@x.example reply \"550 5.1.1 <bob@x.example>: Recipient address rejected\"\n", "t",
      err);
  return *s;
}

play_result play_file(const std::string& name, mx::server& srv) {
  dialogue_error err;
  auto d = load_dialogue(dir + name, err);
  EXPECT_TRUE(d) << err.to_string();
  asio::io_context io;
  test::virtual_runtime rt(io);
  mx::in_process_connector conn(srv, rt);
  auto f = asio::co_spawn(
      io,
      [&]() -> asio::awaitable<play_result> {
        std::error_code ec;
        auto s = co_await conn.connect("127.0.0.1", 25, net::duration(1000), ec);
        co_return co_await play(*d, *s);
      },
      asio::use_future);
  io.run();
  return f.get();
}

TEST(dialogue, good_file_passes_and_delivers) {
  mx::server srv(mx_script());
  auto r = play_file("accept.dlg", srv);
  EXPECT_TRUE(r.ok);
  for (const auto& f : r.failures) ADD_FAILURE() << f;
  ASSERT_EQ(srv.mailbox().size(), 1u);
  EXPECT_EQ(srv.mailbox()[0].data, "Subject: dialogue\r\n\r\n leading dot and a tab:\t.\r\n");
  EXPECT_EQ(srv.mailbox()[0].recipients, std::vector<std::string>{"carol@x.example"});
  EXPECT_EQ(r.transcript.back(), "S: 221 2.0.0 Bye");
}

TEST(dialogue, mismatch_shows_expected_and_received_with_line) {
  mx::server srv(mx_script());
  auto r = play_file("mismatch.dlg", srv);
  EXPECT_FALSE(r.ok);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0], dir +
                               "mismatch.dlg:7: expected S: 250 2.1.5 Ok\n"
                               "  received: 550 5.1.1 <bob@x.example>: Recipient address "
                               "rejected");
}

TEST(dialogue, bad_file_names_line_and_column) {
  dialogue_error err;
  EXPECT_FALSE(load_dialogue(dir + "bad-escape.dlg", err));
  EXPECT_EQ(err.to_string(),
            dir + "bad-escape.dlg:3:19: unknown escape \\q (use \\r \\n \\t \\0 \\xHH \\\\)");
  EXPECT_FALSE(parse_dialogue("C*2: NOOP\n", "x.dlg", err));
  EXPECT_EQ(err.to_string(), "x.dlg:1:2: C: takes no repeat count (use P*N:)");
  EXPECT_FALSE(parse_dialogue("C: NOOP\nfoo: bar\n", "x.dlg", err));
  EXPECT_EQ(err.to_string(), "x.dlg:2:1: expected C:/P:/R:/S:/S~: or a header, got \"foo: bar\"");
  EXPECT_FALSE(parse_dialogue("C: NOOP\nS~: 250 (\n", "x.dlg", err));
  EXPECT_EQ(err.line, 2u);
  EXPECT_EQ(err.column, 5u);
}

TEST(dialogue, oracle_files_parse_with_the_same_grouping) {
  dialogue_error err;
  auto d = load_dialogue(RELAYLAB_TESTDATA "/dialogues/pipelining-auth.dlg", err);
  ASSERT_TRUE(d) << err.to_string();
  EXPECT_TRUE(d->outside_client);
  EXPECT_EQ(d->header("config"), "fix-b");
  ASSERT_EQ(d->steps.size(), 1u);  // every P: line in one write
  EXPECT_TRUE(d->steps[0].data.starts_with("EHLO client.example.net\r\nAUTH PLAIN "));
  EXPECT_TRUE(d->steps[0].data.ends_with("\r\n.\r\nQUIT\r\n"));
}

TEST(dialogue, escapes_and_repeats) {
  std::string out;
  std::size_t col = 0;
  std::string msg;
  ASSERT_TRUE(unescape("a\\r\\n\\x41\\0\\\\{{ab*3}}", out, col, msg)) << msg;
  EXPECT_EQ(out, std::string("a\r\nA\0\\ababab", 12));
  dialogue_error err;
  auto d = parse_dialogue("P*3: NOOP\nS*3: 250*\n", "x", err);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->steps[0].data, "NOOP\r\nNOOP\r\nNOOP\r\n");
  EXPECT_EQ(d->steps[0].patterns.size(), 3u);
}

TEST(dialogue, glob) {
  EXPECT_TRUE(glob_match("250*", "250-a\n250 b"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("a*b*c", "axxbyyc"));
  EXPECT_FALSE(glob_match("a*b*c", "axxbyy"));
  EXPECT_FALSE(glob_match("250", "250 "));
}

}  // namespace
}  // namespace relaylab::fakes::client
