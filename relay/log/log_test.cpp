#include "relay/log/log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace relaylab::log {
namespace {

using std::chrono::system_clock;

// 2026-11-28 00:00:00 UTC, the day the reference maillog was recorded.
constexpr std::int64_t nov28_2026_utc_s = 1795824000;

system_clock::time_point at(int h, int m, int s) {
  return system_clock::time_point(std::chrono::seconds(nov28_2026_utc_s + h * 3600 + m * 60 + s));
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Golden lines were written by a real Postfix 3.7.11 (see testdata/log/README.md).
const std::vector<std::string>& observed() {
  static const auto lines =
      read_lines(std::string(RELAYLAB_TESTDATA_DIR) + "/postfix-3.7.11-observed.maillog");
  return lines;
}

struct golden_case {
  int line;  // 1-based line in the observed maillog
  origin from;
  severity level;
  std::function<std::string()> text;
};

TEST(log_format, time_is_month_and_zero_padded_day) {
  EXPECT_EQ(format_syslog_time(at(4, 56, 49), true), "Nov 28 04:56:49");
  const auto jan5 = system_clock::time_point(std::chrono::seconds(1767571200 + 3661));
  EXPECT_EQ(format_syslog_time(jan5, true), "Jan 05 01:01:01");
}

TEST(log_format, time_cache_gives_format_syslog_time_for_every_second) {
  for (const bool utc : {true, false}) {
    syslog_time_cache cache(utc);
    // Within a second, across seconds, minutes and a day, and back in time.
    const std::vector<system_clock::time_point> times = {
        at(4, 56, 49), at(4, 56, 49) + std::chrono::milliseconds(999),
        at(4, 56, 50), at(4, 59, 59),
        at(5, 0, 0),   at(23, 59, 59) + std::chrono::milliseconds(500),
        at(24, 0, 0),  at(4, 56, 49)};
    for (const auto t : times) {
      EXPECT_EQ(cache.format(t), format_syslog_time(t, utc)) << "utc=" << utc;
    }
  }
}

TEST(log_format, append_line_matches_format_line) {
  syslog_time_cache cache(true);
  record r{at(4, 56, 49), "relay", "postfix/smtpd", 10409, severity::warning, "x"};
  std::string out = "prefix|";
  append_line(out, r, cache);
  EXPECT_EQ(out, "prefix|" + format_line(r, true));
  EXPECT_EQ(out, "prefix|Nov 28 04:56:49 relay postfix/smtpd[10409]: warning: x");
}

TEST(log_format, host_label_is_first_label) {
  EXPECT_EQ(host_label("relay.example.com"), "relay");
  EXPECT_EQ(host_label("localhost"), "localhost");
  EXPECT_EQ(host_label(""), "");
}

TEST(log_golden, smtpd_lines_match_postfix_byte_for_byte) {
  ASSERT_GE(observed().size(), 50u) << "testdata missing";
  const origin smtpd{"postfix", "smtpd", 9872};
  const origin submission{"postfix/submission", "smtpd", 9920};
  const origin smtpd2{"postfix", "smtpd", 10184};
  const origin master{"postfix", "master", 9735};
  const std::string xc_name = "client.example.net", xc_addr = "203.0.113.9";
  const std::vector<golden_case> cases = {
      {1, master, severity::info,
       [] {
         return std::string("daemon started -- version 3.7.11, configuration /tmp/pf.XXXX/etc");
       }},
      {2, smtpd, severity::info, [] { return connect_from("localhost", "127.0.0.1"); }},
      {3, smtpd, severity::info,
       [&] {
         reject_context c;
         c.stage = "RCPT";
         c.name = xc_name;
         c.addr = xc_addr;
         c.reply = "454 4.7.1 <c@d.example>: Relay access denied";
         c.sender = "a@b.example";
         c.recipient = "c@d.example";
         c.protocol = "ESMTP";
         c.helo = "helo.example.net";
         return reject_line(c);
       }},
      {4, smtpd, severity::info,
       [&] {
         return disconnect_from(xc_name, xc_addr,
                                "ehlo=2 xclient=0/1 mail=1 rcpt=0/1 quit=1 commands=4/6");
       }},
      {6, smtpd, severity::info,
       [&] {
         return client_line("8C125A72052", xc_name, xc_addr, "PLAIN", "smtp-auth@example.com");
       }},
      {9, smtpd, severity::warning,
       [] {
         return sasl_auth_failed("localhost", "127.0.0.1", "PLAIN", "authentication failure",
                                 "smtp-auth@example.com");
       }},
      {13, smtpd, severity::info,
       [] { return lost_connection_after("RCPT", "localhost", "127.0.0.1"); }},
      {16, smtpd, severity::info,
       [] { return lost_connection_after("", "localhost", "127.0.0.1"); }},
      {17, smtpd, severity::info,
       [] { return disconnect_from("localhost", "127.0.0.1", "commands=0/0"); }},
      {19, smtpd, severity::info,
       [] { return disconnect_from("localhost", "127.0.0.1", "helo=1 noop=1 quit=1 commands=3"); }},
      {20, submission, severity::info, [] { return connect_from("localhost", "127.0.0.1"); }},
      {24, submission, severity::info,
       [&] {
         return client_line("E8867A72382", xc_name, xc_addr, "PLAIN", "smtp-auth@example.com");
       }},
      {27, submission, severity::warning,
       [] {
         return sasl_auth_failed("localhost", "127.0.0.1", "PLAIN", "authentication failure",
                                 "smtp-auth@example.com");
       }},
      {40, smtpd2, severity::info,
       [] {
         return improper_pipelining_after("EHLO", "localhost", "127.0.0.1",
                                          "MAIL FROM:<a@b>\r\nRCPT TO:<a@b>\r\nDATA\r\n");
       }},
      {42, smtpd2, severity::info,
       [] { return too_many_errors_after("DATA", "localhost", "127.0.0.1"); }},
      {46, smtpd2, severity::info,
       [] { return too_many_errors_after("UNKNOWN", "localhost", "127.0.0.1"); }},
      {49, smtpd2, severity::info,
       [] { return timeout_after("CONNECT", "localhost", "127.0.0.1"); }},
  };
  for (const auto& c : cases) {
    const std::string& want = observed().at(static_cast<std::size_t>(c.line - 1));
    int h = 0, m = 0, s = 0;
    ASSERT_EQ(std::sscanf(want.c_str() + 7, "%d:%d:%d", &h, &m, &s), 3) << want;
    auto sink = std::make_unique<memory_sink>(true);
    auto* mem = sink.get();
    logger lg({"relay.example.com", [&] { return at(h, m, s); }});
    lg.add_sink(std::move(sink));
    lg.write(c.from, c.level, c.text());
    ASSERT_EQ(mem->lines().size(), 1u);
    EXPECT_EQ(mem->lines()[0], want) << "golden line " << c.line;
  }
}

TEST(log_golden, myhostname_first_label_is_the_host_field) {
  auto sink = std::make_unique<memory_sink>(true);
  auto* mem = sink.get();
  logger lg({"zz.example.com", [] { return at(4, 57, 30); }});
  lg.add_sink(std::move(sink));
  lg.info({"postfix", "smtpd", 10409}, connect_from("localhost", "127.0.0.1"));
  ASSERT_EQ(mem->lines().size(), 1u);
  EXPECT_EQ(mem->lines()[0], observed().at(51));
}

TEST(log_text, reject_omits_absent_parts) {
  reject_context c;
  c.stage = "CONNECT";
  c.name = "unknown";
  c.addr = "192.0.2.1";
  c.reply = "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied";
  c.protocol = "SMTP";
  EXPECT_EQ(reject_line(c),
            "NOQUEUE: reject: CONNECT from unknown[192.0.2.1]: 554 5.7.1 <unknown[192.0.2.1]>: "
            "Client host rejected: Access denied; proto=SMTP");
  c.queue_id = "ABCDEF1234";
  c.action = "defer";
  c.sender = "";
  EXPECT_EQ(reject_line(c).substr(0, 32), "ABCDEF1234: defer: CONNECT from ");
  EXPECT_NE(reject_line(c).find("; from=<> proto=SMTP"), std::string::npos);
}

TEST(log_text, client_line_without_auth_and_with_sasl_sender) {
  EXPECT_EQ(client_line("8C125A72052", "unknown", "::1"), "8C125A72052: client=unknown[::1]");
  EXPECT_EQ(client_line("8C125A72052", "h", "1.2.3.4", "LOGIN", "u", "s@x"),
            "8C125A72052: client=h[1.2.3.4], sasl_method=LOGIN, sasl_username=u, sasl_sender=s@x");
}

TEST(log_text, pipelining_escapes_and_bounds) {
  EXPECT_EQ(improper_pipelining_after("CONNECT", "n", "a", std::string("\x01\\\t\xff", 4)),
            "improper command pipelining after CONNECT from n[a]: \\001\\\\\\t\\377");
  EXPECT_EQ(improper_pipelining_after("EHLO", "n", "a", "abcdef", 3),
            "improper command pipelining after EHLO from n[a]: abc");
}

TEST(log_queue_id, short_and_long_ids) {
  EXPECT_EQ(queue_id_prefix("8C125A72052: client=x"), "8C125A72052");
  EXPECT_EQ(queue_id_prefix("4Y1gqL0Wq6z9sVd: to=<a@b>"), "4Y1gqL0Wq6z9sVd");
  EXPECT_EQ(queue_id_prefix("NOQUEUE: reject: RCPT"), "");
  EXPECT_EQ(queue_id_prefix("connect from x[1.2.3.4]"), "");
  EXPECT_EQ(queue_id_prefix("warning: x"), "");
  EXPECT_EQ(queue_id_prefix("statistics: max"), "");
  EXPECT_EQ(queue_id_prefix("ABC: x"), "");
}

TEST(log_json, one_object_per_line_with_queue_id_and_escapes) {
  record r;
  r.time = at(4, 56, 52) + std::chrono::microseconds(123456);
  r.host = "relay";
  r.tag = "postfix/smtpd";
  r.pid = 9872;
  r.text = "8C125A72052: client=a[1.2.3.4] \"q\"\\\n";
  EXPECT_EQ(format_json(r),
            "{\"time\":\"2026-11-28T04:56:52.123456Z\",\"host\":\"relay\",\"program\":"
            "\"postfix/smtpd\",\"pid\":9872,\"severity\":\"info\",\"queue_id\":\"8C125A72052\","
            "\"text\":\"8C125A72052: client=a[1.2.3.4] \\\"q\\\"\\\\\\n\"}");
  r.text = "connect from x[1.2.3.4]";
  r.level = severity::warning;
  EXPECT_EQ(format_json(r).find("queue_id"), std::string::npos);
  EXPECT_NE(format_json(r).find("\"severity\":\"warning\""), std::string::npos);
}

TEST(log_logger, text_is_cut_at_the_limit) {
  auto sink = std::make_unique<memory_sink>(true);
  auto* mem = sink.get();
  logger_options o{"relay", [] { return at(0, 0, 0); }};
  o.text_bytes_max = 5;
  logger lg(o);
  lg.add_sink(std::move(sink));
  lg.info({"postfix", "smtpd", 1}, "0123456789");
  EXPECT_EQ(mem->texts().at(0), "01234");
}

TEST(log_logger, memory_sink_drops_oldest_beyond_bound) {
  auto sink = std::make_unique<memory_sink>(true, 2);
  auto* mem = sink.get();
  logger lg({"relay", [] { return at(0, 0, 0); }});
  lg.add_sink(std::move(sink));
  for (int i = 0; i < 5; ++i) lg.info({"postfix", "x", 1}, std::to_string(i));
  EXPECT_EQ(mem->texts(), (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(mem->dropped(), 3u);
}

class log_file : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("relaylab_log_test." + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(log_file, appends_and_flushes_each_line) {
  const auto path = (dir_ / "maillog").string();
  { std::ofstream(path) << "existing line\n"; }
  std::error_code ec;
  auto sink = open_file_sink(path, {.utc = true}, ec);
  ASSERT_FALSE(ec) << ec.message();
  logger lg({"relay.example.com", [] { return at(4, 56, 49); }});
  lg.add_sink(std::move(sink));
  lg.info({"postfix", "smtpd", 9872}, connect_from("localhost", "127.0.0.1"));
  // Read while the logger (and its sink) is still alive: flushed per line.
  EXPECT_EQ(read_lines(path), (std::vector<std::string>{"existing line", observed().at(1)}));
}

TEST_F(log_file, buffered_sink_writes_on_flush_and_when_full) {
  const auto path = (dir_ / "maillog").string();
  std::error_code ec;
  file_sink_options o{.utc = true, .flush_each_line = false, .buffer_bytes_max = 200};
  logger lg({"relay", [] { return at(1, 2, 3); }});
  lg.add_sink(open_file_sink(path, o, ec));
  ASSERT_FALSE(ec);
  lg.info({"postfix", "smtpd", 1}, "first");
  EXPECT_TRUE(read_lines(path).empty());
  lg.flush();
  EXPECT_EQ(read_lines(path).size(), 1u);
  for (int i = 0; i < 10; ++i) lg.info({"postfix", "smtpd", 1}, "more text " + std::to_string(i));
  const auto mid = read_lines(path).size();
  EXPECT_GT(mid, 1u);   // buffer filled at least once
  EXPECT_LT(mid, 11u);  // and still holds the tail
  lg.flush();
  EXPECT_EQ(read_lines(path).size(), 11u);
}

TEST_F(log_file, flush_hook_batches_lines_until_flush) {
  const auto path = (dir_ / "maillog").string();
  std::error_code ec;
  logger lg({"relay", [] { return at(1, 2, 3); }});
  lg.add_sink(open_file_sink(path, {.utc = true}, ec));  // flush_each_line, as the CLI opens it
  ASSERT_FALSE(ec);
  const origin o{"postfix", "smtpd", 1};
  int requests = 0;
  lg.set_flush_hook([&requests] { ++requests; });
  lg.info(o, "one");
  lg.info(o, "two");
  EXPECT_EQ(requests, 1) << "one request per batch";
  EXPECT_TRUE(read_lines(path).empty());
  lg.flush();
  EXPECT_EQ(read_lines(path).size(), 2u);
  lg.info(o, "three");
  EXPECT_EQ(requests, 2) << "the next batch asks again";
  // A sink added while batching batches too.
  const auto path2 = (dir_ / "maillog2").string();
  lg.add_sink(open_file_sink(path2, {.utc = true}, ec));
  lg.info(o, "four");
  EXPECT_TRUE(read_lines(path2).empty());
  EXPECT_EQ(requests, 2);
  // Removing the hook flushes what is held; then each line is written at once again.
  lg.set_flush_hook({});
  EXPECT_EQ(read_lines(path).size(), 4u);
  EXPECT_EQ(read_lines(path2).size(), 1u);
  lg.info(o, "five");
  EXPECT_EQ(requests, 2);
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 5u);
  const char* want[] = {"one", "two", "three", "four", "five"};
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(lines[i], std::string("Nov 28 01:02:03 relay postfix/smtpd[1]: ") + want[i]);
  }
}

TEST_F(log_file, a_thread_with_its_own_flush_hook_flushes_its_batches_itself) {
  const auto path = (dir_ / "maillog").string();
  std::error_code ec;
  logger lg({"relay", [] { return at(1, 2, 3); }});
  lg.add_sink(open_file_sink(path, {.utc = true}, ec));
  ASSERT_FALSE(ec);
  const origin o{"postfix", "qmgr", 2};
  int hook_requests = 0;
  lg.set_flush_hook([&hook_requests] { ++hook_requests; });
  int thread_requests = 0;  // the other thread's loop would flush for each
  std::thread other([&] {
    logger::set_thread_flush_hook([&thread_requests] { ++thread_requests; });
    lg.info(o, "one");
    lg.info(o, "two");
    logger::set_thread_flush_hook({});
  });
  other.join();
  EXPECT_EQ(hook_requests, 0) << "the batch did not go through the hook";
  ASSERT_EQ(thread_requests, 1) << "one request per batch, to the logging thread's own hook";
  EXPECT_TRUE(read_lines(path).empty());
  lg.flush();  // what that loop does
  EXPECT_EQ(read_lines(path).size(), 2u);
  lg.info(o, "three");  // this thread has no hook of its own: the logger's
  EXPECT_EQ(hook_requests, 1);
  lg.set_flush_hook({});
  EXPECT_EQ(read_lines(path).size(), 3u);
}

TEST_F(log_file, batching_sink_writes_when_its_buffer_fills_and_on_destruction) {
  const auto path = (dir_ / "maillog").string();
  std::error_code ec;
  {
    logger lg({"relay", [] { return at(1, 2, 3); }});
    lg.add_sink(open_file_sink(path, {.utc = true, .buffer_bytes_max = 200}, ec));
    ASSERT_FALSE(ec);
    lg.set_flush_hook([] {});  // a flush that never comes
    for (int i = 0; i < 10; ++i) lg.info({"postfix", "smtpd", 1}, "line " + std::to_string(i));
    const auto mid = read_lines(path).size();
    EXPECT_GT(mid, 0u);   // the 200-byte buffer filled
    EXPECT_LT(mid, 10u);  // and holds the tail
  }
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(lines[static_cast<std::size_t>(i)],
              "Nov 28 01:02:03 relay postfix/smtpd[1]: line " + std::to_string(i));
  }
}

TEST_F(log_file, batched_lines_from_threads_keep_each_threads_order) {
  const auto path = (dir_ / "maillog").string();
  std::error_code ec;
  logger lg({"relay", [] { return at(1, 2, 3); }});
  lg.add_sink(open_file_sink(path, {.utc = true, .buffer_bytes_max = 4096}, ec));
  ASSERT_FALSE(ec);
  std::atomic<int> requests{0};
  lg.set_flush_hook([&requests] { ++requests; });
  constexpr int threads = 4, per_thread = 500;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&lg, t] {
      for (int i = 0; i < per_thread; ++i) {
        lg.info({"postfix", "smtpd", t}, std::to_string(i));
        if (i % 50 == 0) lg.flush();
      }
    });
  }
  for (auto& th : ts) th.join();
  lg.flush();
  EXPECT_GE(requests.load(), 1);
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(threads * per_thread));
  std::vector<int> next(threads, 0);
  for (const auto& l : lines) {
    const auto open = l.find('[');
    const int t = std::stoi(l.substr(open + 1));
    const int i = std::stoi(l.substr(l.find("]: ") + 3));
    ASSERT_EQ(i, next[static_cast<std::size_t>(t)]) << l;
    ++next[static_cast<std::size_t>(t)];
  }
}

TEST_F(log_file, json_sink_writes_objects) {
  const auto path = (dir_ / "log.jsonl").string();
  std::error_code ec;
  logger lg({"relay", [] { return at(4, 56, 52); }});
  lg.add_sink(open_file_sink(path, {.format = line_format::json}, ec));
  ASSERT_FALSE(ec);
  lg.info({"postfix", "smtpd", 7}, "8C125A72052: client=x[1.2.3.4]");
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0],
            "{\"time\":\"2026-11-28T04:56:52.000000Z\",\"host\":\"relay\",\"program\":"
            "\"postfix/smtpd\",\"pid\":7,\"severity\":\"info\",\"queue_id\":\"8C125A72052\","
            "\"text\":\"8C125A72052: client=x[1.2.3.4]\"}");
}

TEST_F(log_file, open_error_is_reported) {
  std::error_code ec;
  auto sink = open_file_sink((dir_ / "no" / "such" / "dir").string(), {}, ec);
  EXPECT_EQ(sink, nullptr);
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
}

}  // namespace
}  // namespace relaylab::log
