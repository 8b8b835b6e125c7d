// Test support for the SMTP server engine's tests: a recording handler that answers like the
// Postfix instance the golden transcripts were taken from, the transcript format, and a driver
// that feeds a session as relay/smtpd would.
#pragma once

#include "relay/smtp/server_session.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "relay/smtp/base64.hpp"

namespace relaylab::smtp::test_support {

using namespace std::chrono_literals;

// Recording handler that answers like the Postfix instance the golden files were taken from.
class fake_handler : public server_handler {
 public:
  std::vector<std::string> events;
  std::vector<std::string> improper;  // on_improper_pipelining: "WHERE: pending bytes"
  std::string body;
  bool commit_pending = false;
  bool size_exceeded = false;
  server_session* session = nullptr;
  std::optional<reply> connect_verdict, helo_verdict, mail_verdict, data_verdict;
  std::string reject_rcpt_from_addr;  // RCPT from this client address gets "Relay access denied"
  std::string local_vrfy_reply;       // VRFY of an address without '@'

  verdict on_connect(const client_identity& c) override {
    events.push_back("connect " + c.addr);
    return connect_verdict;
  }
  verdict on_helo(const client_identity& c) override {
    events.push_back("helo " + c.helo + " " + c.protocol);
    return helo_verdict;
  }
  verdict on_mail(const client_identity&, const mail_command& m) override {
    std::string e = "mail <" + m.sender + ">";
    if (m.size) e += " size=" + std::to_string(*m.size);
    if (!m.body.empty()) e += " body=" + m.body;
    events.push_back(e);
    return mail_verdict;
  }
  verdict on_rcpt(const client_identity& c, const rcpt_command& r) override {
    events.push_back("rcpt <" + r.recipient + ">");
    if (!reject_rcpt_from_addr.empty() && c.addr == reject_rcpt_from_addr)
      return reply{"454 4.7.1 <" + r.recipient + ">: Relay access denied"};
    return std::nullopt;
  }
  verdict on_data(const client_identity&) override {
    events.push_back("data");
    return data_verdict;
  }
  void on_body(std::span<const char> chunk) override { body.append(chunk.data(), chunk.size()); }
  void on_message_end(const client_identity&, bool exceeded) override {
    events.push_back(exceeded ? "end exceeded" : "end");
    commit_pending = true;
    size_exceeded = exceeded;
  }
  void on_reset() override { events.push_back("reset"); }
  auth_step on_auth_start(const client_identity&, std::string_view mech,
                          std::optional<std::string_view> initial) override {
    events.push_back("auth " + std::string(mech));
    mech_ = std::string(mech);
    step_ = 0;
    if (mech_ == "PLAIN") {
      if (!initial) return {auth_step::status::challenge, "", ""};
      return check_plain(*initial);
    }
    if (mech_ == "LOGIN") {
      if (initial) {
        user_ = std::string(*initial);
        step_ = 1;
        return {auth_step::status::challenge, "Password:", ""};
      }
      return {auth_step::status::challenge, "Username:", ""};
    }
    return fail("no mechanism available");
  }
  auth_step on_auth_continue(const client_identity&, std::string_view r) override {
    events.push_back("auth-continue");
    if (mech_ == "PLAIN") return check_plain(r);
    if (step_ == 0) {
      user_ = std::string(r);
      step_ = 1;
      return {auth_step::status::challenge, "Password:", ""};
    }
    return check(user_, std::string(r));
  }
  void on_auth_abort() override { events.push_back("auth-abort"); }
  verdict on_vrfy(const client_identity&, std::string_view a) override {
    events.push_back("vrfy " + std::string(a));
    if (!local_vrfy_reply.empty() && a.find('@') == std::string_view::npos)
      return reply{local_vrfy_reply};
    // The observed Postfix had no aliases database: local names other than postmaster fail.
    if (local_vrfy_reply.empty() && a.find('@') == std::string_view::npos && a != "postmaster")
      return reply{"451 4.3.0 <" + std::string(a) + ">: Temporary lookup failure"};
    return std::nullopt;
  }
  void on_xclient(const client_identity& c) override {
    events.push_back("xclient " + c.name + " " + c.addr);
    if (session) session->set_xclient_authorized(c.addr.rfind("127.", 0) == 0);
  }
  void on_improper_pipelining(const client_identity&, std::string_view where,
                              std::string_view pending) override {
    improper.push_back(std::string(where) + ": " + std::string(pending));
  }
  void on_disconnect(const client_identity&, std::string_view reason) override {
    events.push_back("disconnect " + std::string(reason));
  }

 private:
  static auth_step fail(std::string_view why) {
    return {auth_step::status::failure, "",
            "535 5.7.8 Error: authentication failed: " + std::string(why)};
  }
  static auth_step check(const std::string& u, const std::string& p) {
    if (u == "smtp-auth@example.com" && p == "pass")
      return {auth_step::status::success, "", "235 2.7.0 Authentication successful"};
    return fail("authentication failure");
  }
  static auth_step check_plain(std::string_view s) {
    auto a = s.find('\0');
    auto b = a == std::string_view::npos ? a : s.find('\0', a + 1);
    if (b == std::string_view::npos) return fail("bad protocol / cancel");
    return check(std::string(s.substr(a + 1, b - a - 1)), std::string(s.substr(b + 1)));
  }
  std::string mech_, user_;
  int step_ = 0;
};

inline server_options profile(const std::string& name) {
  server_options o;
  o.myhostname = "relay.example.com";
  o.banner = "relay.example.com ESMTP Postfix";
  o.sasl_auth_enable = true;
  o.sasl_mechanisms = {"PLAIN", "LOGIN"};
  o.xclient_authorized = true;
  o.error_sleep_time = 0ms;
  o.soft_error_limit = 1000;
  o.hard_error_limit = 1000;
  o.inet_ipv6 = false;
  if (name == "noauth") {
    o.sasl_auth_enable = false;
    o.xclient_authorized = false;
  } else if (name == "limits") {
    o.broken_sasl_auth_clients = true;
    o.discard_ehlo_keywords = {"silent-discard", "dsn", "etrn"};
    o.helo_required = true;
    o.disable_vrfy_command = true;
    o.message_size_limit = 1000;
    o.recipient_limit = 2;
    o.timeout = 3s;
    o.junk_command_limit = 3;
    o.hard_error_limit = 5;
    o.soft_error_limit = 10;
  } else if (name == "reject") {
    o.forbid_bare_newline_reject = true;
  }
  return o;
}

inline std::string unescape(std::string_view s) {
  std::string r;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 >= s.size()) {
      r += s[i];
      continue;
    }
    const char c = s[++i];
    if (c == 'r')
      r += '\r';
    else if (c == 'n')
      r += '\n';
    else if (c == 'x') {
      r += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else
      r += c;
  }
  return r;
}

// One client step of a transcript: bytes to send (or a wait) and the exact server output.
struct step {
  std::string send;
  std::chrono::seconds wait{0};
  std::string expect;
  bool eof = false;
};
struct transcript {
  server_options options;
  std::string fixture;  // handler profile
  std::string greeting;
  std::vector<step> steps;
};

// Parses "C: line" (sent with CRLF), "R: escaped bytes", "W: seconds", "S: reply line",
// "S: <EOF>" and "O: profile=name" / "O: forbid_bare_newline=yes".
inline transcript parse(const std::string& text) {
  transcript t;
  t.options = profile("main");
  std::istringstream in(text);
  std::string line;
  step* cur = nullptr;
  bool eof_seen = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::string tag = line.substr(0, 2);
    const std::string v = line.size() > 3 ? line.substr(3) : "";
    if (tag == "O:") {
      if (v.rfind("profile=", 0) == 0) {
        t.fixture = v.substr(8);
        t.options = profile(t.fixture);
      } else if (v == "forbid_bare_newline=yes") {
        t.options.forbid_bare_newline = true;
      }
      continue;
    }
    if (eof_seen) break;
    if (tag == "C:" || tag == "R:" || tag == "W:") {
      t.steps.emplace_back();
      cur = &t.steps.back();
      if (tag == "C:")
        cur->send = v + "\r\n";
      else if (tag == "R:")
        cur->send = unescape(v);
      else
        cur->wait = std::chrono::seconds(std::stoi(v));
    } else if (tag == "S:") {
      if (v == "<EOF>") {
        (cur ? cur->eof : eof_seen) = true;
        eof_seen = true;
        continue;
      }
      (cur ? cur->expect : t.greeting) += v + "\r\n";
    }
  }
  return t;
}

inline std::string read_file(const std::string& name) {
  std::ifstream f(std::string(RELAYLAB_SMTP_TESTDATA) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

enum class feed { per_step, byte_by_byte, pipelined };

// Drives a session the way relay/smtpd would, committing messages as soon as asked.
struct driver {
  fake_handler h;
  timestamp now{};
  server_session s;
  std::string taken;

  /// `waiting`: what the client sent before the greeting (server_session::start).
  explicit driver(server_options o, const std::string& fixture = "", std::string_view waiting = {})
      : s(std::move(o), h, client_identity{"localhost", "127.0.0.1", "40000", "", "SMTP", false},
          timestamp{}) {
    h.session = &s;
    if (fixture == "reject") h.reject_rcpt_from_addr = "203.0.113.9";
    h.local_vrfy_reply = "";
    s.start(now, waiting);
    take();
  }
  void commit() {
    // Bounded: each finish_message either ends the pending commit or closes.
    for (int i = 0; i < 100000 && h.commit_pending; ++i) {
      h.commit_pending = false;
      std::string r;
      if (h.size_exceeded)
        r = "552 5.3.4 Message size exceeds fixed limit";
      else if (auto b = s.bdat_bytes())
        r = "250 2.0.0 Ok: " + std::to_string(*b) + " bytes queued as QUEUEID";
      else
        r = "250 2.0.0 Ok: queued as QUEUEID";
      s.finish_message(reply{r}, now);
    }
  }
  void send(std::string_view bytes, feed mode = feed::per_step) {
    if (mode == feed::byte_by_byte) {
      for (char c : bytes) {
        s.receive(std::span<const char>(&c, 1), now);
        commit();
      }
    } else {
      s.receive(std::span<const char>(bytes.data(), bytes.size()), now);
      commit();
    }
  }
  void wait(std::chrono::nanoseconds d) {
    now += d;
    s.advance(now);
    commit();
  }
  // Everything the server wrote since the last call.
  std::string take() {
    // Bounded by output size: consume_output may release more buffered work.
    std::string r;
    for (int i = 0; i < 1000000 && !s.output().empty(); ++i) {
      commit();
      r += s.output();
      s.consume_output(s.output().size());
    }
    taken += r;
    return r;
  }
  std::string exchange(std::string_view line) {
    send(std::string(line) + "\r\n");
    return take();
  }
};

inline server_options main_opts() { return profile("main"); }

}  // namespace relaylab::smtp::test_support
