#include "relay/qmgr/local_agent.hpp"

#include "relay/qmgr/virtual_runtime.hpp"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace relaylab::qmgr {
namespace {

using clock_point = std::chrono::system_clock::time_point;
const clock_point t0 = clock_point(std::chrono::seconds(1795844642));  // 2026-11-28 05:44:02

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class temp_dir {
 public:
  temp_dir() {
    std::mt19937_64 r(std::random_device{}());
    path_ = std::filesystem::temp_directory_path() / ("relaylab-qmgr-test-" + std::to_string(r()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Postfix's mbox entry (testdata/qmgr/postfix_local_mbox.txt) turned back into the queued
/// content: the lines after Delivered-To:, ">From " unquoted, CRLF line ends.
std::string content_of_golden(const std::string& golden) {
  std::string out;
  std::istringstream in(golden);
  std::string line;
  bool body = false;
  std::vector<std::string> lines;
  while (std::getline(in, line)) {
    if (body) lines.push_back(line);
    if (line.starts_with("Delivered-To: ")) body = true;
  }
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the separator line
  for (auto& l : lines) {
    if (l.starts_with(">From ")) l.erase(0, 1);
    out += l + "\r\n";
  }
  return out;
}

struct local_fixture {
  temp_dir dir;
  virtual_runtime rt{t0};
  log::logger logger{{"relay.example.com", [this] { return rt.now(); }}};
  log::memory_sink* sink = nullptr;
  std::string content;

  local_fixture() {
    auto s = std::make_unique<log::memory_sink>(true);
    sink = s.get();
    logger.add_sink(std::move(s));
  }

  std::vector<delivery::recipient_outcome> run(local_agent& agent,
                                               std::vector<delivery::job_recipient> rcpts,
                                               std::string sender = "sender@example.org") {
    delivery::job j;
    j.queue_id = "1F1ACA72071";
    j.sender = std::move(sender);
    j.recipients = std::move(rcpts);
    j.size = content.size();
    j.hop.transport = "local";
    j.arrival = j.queued_active = j.handed_over = t0;
    j.read_content = [this](std::uint64_t off, std::size_t max, std::string& out) {
      out = content.substr(std::min<std::size_t>(off, content.size()), max);
      return std::error_code{};
    };
    std::vector<delivery::recipient_outcome> out;
    boost::asio::co_spawn(
        rt.executor(), [&]() -> boost::asio::awaitable<void> { out = co_await agent.deliver(j); },
        boost::asio::detached);
    rt.run_for(std::chrono::seconds(1));
    return out;
  }
};

TEST(local_agent, mbox_matches_postfix_local) {
  local_fixture f;
  const std::string golden = slurp(std::string(RELAYLAB_TESTDATA_DIR) + "/postfix_local_mbox.txt");
  ASSERT_FALSE(golden.empty());
  f.content = content_of_golden(golden);
  local_options o;
  o.mail_spool_directory = f.dir.path() / "mail";
  o.myhostname = "relay.example.com";
  local_agent agent(o, f.rt, &f.logger, {"postfix", "local", 4556});
  const auto out = f.run(agent, {{0, "nobody@localhost", "rfc822;nobody@localhost", 0}});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, delivery::outcome_status::sent);
  EXPECT_EQ(out[0].reason, "delivered to mailbox");
  EXPECT_EQ(slurp(o.mail_spool_directory / "nobody"), golden);
  ASSERT_EQ(f.sink->lines().size(), 1u);
  EXPECT_NE(f.sink->lines()[0].find(
                "relay postfix/local[4556]: 1F1ACA72071: to=<nobody@localhost>, relay=local, "
                "delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (delivered to mailbox)"),
            std::string::npos)
      << f.sink->lines()[0];
  // A second delivery appends.
  f.run(agent, {{0, "nobody@localhost", "", 0}});
  EXPECT_EQ(slurp(o.mail_spool_directory / "nobody").size(), 2 * golden.size() + 0);
}

TEST(local_agent, maildir_delivery) {
  local_fixture f;
  f.content = "Subject: hi\r\n\r\nFrom me\r\nbye\r\n";
  local_options o;
  o.mail_spool_directory = f.dir.path();
  o.home_mailbox = "Maildir/";
  local_agent agent(o, f.rt, &f.logger, {"postfix", "local", 1});
  const auto out = f.run(agent, {{3, "User@relay.example.com", "", 0}}, "");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].index, 3u);
  EXPECT_EQ(out[0].status, delivery::outcome_status::sent);
  EXPECT_EQ(out[0].reason, "delivered to maildir");
  const auto newdir = f.dir.path() / "user" / "Maildir" / "new";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(newdir)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(slurp(files[0]),
            "Return-Path: <>\nX-Original-To: User@relay.example.com\n"
            "Delivered-To: User@relay.example.com\nSubject: hi\n\nFrom me\nbye\n");
  EXPECT_TRUE(std::filesystem::is_empty(f.dir.path() / "user" / "Maildir" / "tmp"));
}

TEST(local_agent, unknown_user_bounces) {
  local_fixture f;
  f.content = "Subject: hi\r\n\r\nbody\r\n";
  local_options o;
  o.mail_spool_directory = f.dir.path();
  std::string error;
  o.local_recipient_maps.push_back(maps::open("inline:{alice=x}", error));
  local_agent agent(o, f.rt, nullptr, {"postfix", "local", 1});
  const auto out = f.run(
      agent,
      {{0, "alice@localhost", "", 0}, {1, "bob@localhost", "", 0}, {2, "../etc@localhost", "", 0}});
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].status, delivery::outcome_status::sent);
  EXPECT_EQ(out[1].status, delivery::outcome_status::bounced);
  EXPECT_EQ(out[1].dsn, "5.1.1");
  EXPECT_EQ(out[1].reason, "unknown user: \"bob\"");
  EXPECT_EQ(out[2].status, delivery::outcome_status::bounced);
  EXPECT_FALSE(std::filesystem::exists(f.dir.path() / "bob"));
}

TEST(local_agent, unwritable_mailbox_defers) {
  local_fixture f;
  f.content = "Subject: hi\r\n\r\nbody\r\n";
  local_options o;
  o.mail_spool_directory = f.dir.path() / "file-not-dir";
  std::ofstream(o.mail_spool_directory) << "x";
  local_agent agent(o, f.rt, nullptr, {"postfix", "local", 1});
  const auto out = f.run(agent, {{0, "alice@localhost", "", 0}});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].status, delivery::outcome_status::deferred);
  EXPECT_EQ(out[0].dsn, "4.3.0");
}

TEST(local_agent, from_line_quoting_and_null_sender) {
  const auto e = mbox_entry("", "u@h", "u@h", "Subject: x\r\n\r\nFrom a\r\n>From b\r\nFromc\r\n",
                            clock_point(std::chrono::seconds(1795844642 - 20 * 86400)));
  EXPECT_EQ(e,
            "From MAILER-DAEMON  Sun Nov  8 05:44:02 2026\nReturn-Path: <>\nX-Original-To: u@h\n"
            "Delivered-To: u@h\nSubject: x\n\n>From a\n>From b\nFromc\n\n");
}

}  // namespace
}  // namespace relaylab::qmgr
