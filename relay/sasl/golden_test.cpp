// Replays the client side of testdata/sasl/postfix-auth-cases.txt (observed on Postfix 3.7.11)
// through this adapter and a minimal smtpd-like AUTH loop, and checks every reply line and every
// log line byte for byte. The loop below is the reference for relay/smtpd's use of the API.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "relay/sasl/sasl.hpp"
#include "relay/sasl/test_support.hpp"

namespace relaylab::sasl {
namespace {

struct golden_case {
  std::string name;
  std::vector<std::string> notes;
  std::vector<std::string> client;
  std::vector<std::string> replies;
  std::vector<std::string> log;
  bool replay = true;
  std::string local_domain;
  std::string security = "noanonymous";
};

struct golden_file {
  std::vector<golden_case> cases;
  std::vector<std::pair<std::string, std::string>> mechanisms;  // options => AUTH line
};

golden_file load_golden() {
  golden_file g;
  std::ifstream in(RELAYLAB_SASL_TESTDATA "/postfix-auth-cases.txt");
  EXPECT_TRUE(in) << "missing golden file";
  std::string line;
  for (int n = 0; n < 100000 && std::getline(in, line); ++n) {
    if (line.rfind("## ", 0) == 0) {
      g.cases.emplace_back().name = line.substr(3);
    } else if (line.rfind("M: ", 0) == 0) {
      const auto arrow = line.find(" => ");
      g.mechanisms.emplace_back(line.substr(3, arrow - 3), line.substr(arrow + 4));
    } else if (g.cases.empty()) {
      continue;
    } else if (line.rfind("# ", 0) == 0) {
      auto& c = g.cases.back();
      const std::string note = line.substr(2);
      c.notes.push_back(note);
      if (note.rfind("replay: no", 0) == 0) c.replay = false;
      if (note.rfind("smtpd_sasl_local_domain = ", 0) == 0) c.local_domain = note.substr(26);
      if (note.rfind("smtpd_sasl_security_options = ", 0) == 0) c.security = note.substr(30);
    } else if (line.rfind("C: ", 0) == 0) {
      g.cases.back().client.push_back(line.substr(3));
    } else if (line.rfind("S: ", 0) == 0) {
      g.cases.back().replies.push_back(line.substr(3));
    } else if (line.rfind("L: ", 0) == 0) {
      g.cases.back().log.push_back(line.substr(3));
    }
  }
  return g;
}

// What smtpd does with AUTH: Postfix 3.7's smtpd_sasl_auth_cmd + smtpd_sasl_authenticate.
class auth_driver {
 public:
  auth_driver(std::shared_ptr<server_library> lib, std::string namaddr)
      : namaddr_(std::move(namaddr)) {
    std::string error;
    session_ = server_session::create(std::move(lib), "", "", error);
    EXPECT_TRUE(session_) << error;
  }

  void line(const std::string& text) {
    if (!in_auth_) {
      command(text);
    } else {
      response(text);
    }
  }

  std::vector<std::string> replies;
  std::vector<std::string> log;

 private:
  void command(const std::string& text) {
    std::istringstream words(text);
    std::string verb, mech, initial;
    words >> verb >> mech >> initial;
    if (authenticated_) return reply("503 5.5.1 Error: already authenticated");
    if (mech.empty()) return reply("501 5.5.4 Syntax: AUTH mechanism");
    session_->reset();  // Postfix uses a new SASL handle for every AUTH command
    mech_ = mech;
    if (!initial.empty()) {
      std::string decoded;
      const auto d = decode_base64(initial, decoded);
      if (d.state != step_result::status::success) return handle(d);
      return handle(session_->start(mech_, decoded));
    }
    handle(session_->start(mech_, std::nullopt));
  }

  void response(const std::string& text) {
    if (text == "*") {
      in_auth_ = false;
      log.push_back("warning: " + namaddr_ + ": SASL " + mech_ + " authentication aborted");
      return reply("501 5.7.0 Authentication aborted");
    }
    std::string decoded;
    const auto d = decode_base64(text, decoded);
    if (d.state != step_result::status::success) return handle(d);
    handle(session_->step(decoded));
  }

  void handle(const step_result& r) {
    for (const auto& l : r.log) log.push_back("warning: " + l);
    switch (r.state) {
      case step_result::status::challenge:
        in_auth_ = true;
        return reply("334 " + encode_base64(r.challenge));
      case step_result::status::success:
        in_auth_ = false;
        authenticated_ = true;
        return reply("235 2.7.0 Authentication successful");
      case step_result::status::failure:
        in_auth_ = false;
        log.push_back("warning: " +
                      postfix_failure_log(namaddr_, mech_, r, session_->sasl_username()));
        return reply(postfix_failure_reply(r));
    }
  }

  void reply(std::string text) { replies.push_back(std::move(text)); }

  std::string namaddr_;
  std::unique_ptr<server_session> session_;
  std::string mech_;
  bool in_auth_ = false;
  bool authenticated_ = false;
};

TEST(golden, file_has_the_expected_cases) {
  const auto g = load_golden();
  EXPECT_GE(g.cases.size(), 50u);
  EXPECT_EQ(g.mechanisms.size(), 7u);
  std::size_t replayable = 0;
  for (const auto& c : g.cases) replayable += c.replay ? 1 : 0;
  EXPECT_GE(replayable, 45u);
}

TEST(golden, postfix_replies_and_log_lines) {
  const auto g = load_golden();
  for (const auto& c : g.cases) {
    if (!c.replay) continue;
    SCOPED_TRACE(c.name);
    std::string error;
    const auto options = security_options::parse(c.security, error);
    ASSERT_TRUE(options) << error;
    auth_driver d(test::process_library(c.local_domain, *options), "localhost[127.0.0.1]");
    for (const auto& line : c.client) d.line(line);
    // CRAM-MD5 and DIGEST-MD5 challenges are random: compare only that one was sent.
    ASSERT_EQ(d.replies.size(), c.replies.size());
    for (std::size_t i = 0; i < c.replies.size(); ++i) {
      const bool random = (c.name.rfind("cram_", 0) == 0 || c.name.rfind("digest_", 0) == 0) &&
                          c.replies[i].rfind("334 ", 0) == 0;
      if (random) {
        EXPECT_EQ(d.replies[i].substr(0, 4), "334 ");
      } else {
        EXPECT_EQ(d.replies[i], c.replies[i]);
      }
    }
    EXPECT_EQ(d.log, c.log);
  }
}

TEST(golden, ehlo_mechanisms_under_security_options) {
  const auto g = load_golden();
  for (const auto& [text, auth_line] : g.mechanisms) {
    SCOPED_TRACE(text);
    std::string error;
    const auto options = security_options::parse(text, error);
    ASSERT_TRUE(options) << error;
    std::string error2;
    auto s = server_session::create(test::process_library("", *options), "", "", error2);
    ASSERT_TRUE(s) << error2;
    std::string got;
    for (const auto& m : s->mechanisms()) got += (got.empty() ? "AUTH " : " ") + m;
    EXPECT_EQ(got.empty() ? "none" : got, auth_line);
  }
}

}  // namespace
}  // namespace relaylab::sasl
