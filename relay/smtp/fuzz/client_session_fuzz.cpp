// libFuzzer target: the sans-IO SMTP client session (relay/smtp, the delivery agent's and the
// load generator's protocol half) against a hostile MX.
//
// Input: 1 byte of options, 8 bytes of seed, then the server's bytes (greeting, replies,
// anything). The seed drives write sizes, time and the messages offered, so the corpus is MX
// transcripts. Checked beyond the sanitizers: every command the client writes is one line
// ending in CRLF with no other CR or LF (nothing a hostile reply says leaks into a command),
// message content never carries a bare LF (bare CR in content is relay/delivery's concern), results
// come once per transaction, and the session always ends (closed or failed) once the server's bytes
// and the deadlines run out.
#include "fuzz/fuzz_input.hpp"
#include "relay/smtp/client_session.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace relaylab::smtp {
namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  fuzz::fail("client_session_fuzz", what, detail);
}

/// Splits what the client wrote into command lines and content, and checks both.
class wire_checker {
 public:
  void take(std::string_view bytes) {
    buf_.append(bytes);
    std::size_t start = 0;
    for (;;) {
      const std::size_t lf = buf_.find('\n', start);
      if (lf == std::string::npos) break;
      std::string_view line(buf_.data() + start, lf - start);
      start = lf + 1;
      if (line.empty() || line.back() != '\r') fail("bare LF on the wire", line.substr(0, 80));
      line.remove_suffix(1);
      if (in_content_) {
        if (line == ".") in_content_ = false;
        continue;
      }
      if (line.find('\r') != std::string_view::npos)
        fail("bare CR in a command", line.substr(0, 80));
      if (line == "DATA") data_sent_ = true;
      if (line.size() > 2048 + 512) fail("over-long command", line.substr(0, 80));
    }
    buf_.erase(0, start);
  }
  /// The client saw 354: what it writes next is content up to ".".
  void content_starts() {
    if (data_sent_) in_content_ = true;
    data_sent_ = false;
  }

 private:
  std::string buf_;
  bool in_content_ = false;
  bool data_sent_ = false;
};

void run(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t a = in.byte();
  fuzz::chooser choose(in.u64());

  client_options o;
  o.helo_name = "relay.example.com";
  o.use_pipelining = (a & 0x01) != 0;
  o.never_send_ehlo = (a & 0x02) != 0;
  o.starttls = (a & 0x04) != 0   ? client_options::tls_use::required
               : (a & 0x08) != 0 ? client_options::tls_use::may
                                 : client_options::tls_use::none;
  o.auth_unoffered = (a & 0x10) != 0;
  if (a & 0x20) {
    o.reply_line_bytes_max = 64;
    o.reply_bytes_max = 128;
    o.reply_lines_max = 4;
    o.auth_rounds_max = 2;
  }
  plain_authenticator auth("", "alice@example.com", "secret");

  client_timestamp now{};
  client_session s(o, now);
  if (a & 0x40) s.set_authenticator(&auth);

  wire_checker wire;
  const std::string_view server = in.rest();
  std::size_t pos = 0;
  int transactions = 0, results = 0;
  for (int round = 0; round < 100000; ++round) {
    wire.take(s.output());
    s.consume_output(s.output().size());
    const client_state st = s.state();
    if (st == client_state::closed || st == client_state::failed) break;
    if (st == client_state::tls) {
      s.tls_started(now);
      continue;
    }
    if (auto r = s.take_result()) {
      ++results;
      if (r->rcpt.empty()) fail("result", "no recipient replies");
      continue;
    }
    if (st == client_state::ready) {
      if (transactions < 3 && !choose.one_in(4)) {
        client_envelope env;
        env.sender = choose.one_in(5) ? "" : "alice@example.com";
        env.recipients = {"bob@example.org"};
        if (choose.one_in(2)) env.recipients.push_back("carol@example.net");
        env.size = choose.below(100000);
        env.body_8bit = choose.one_in(3);
        if (!s.start(env, now)) fail("start", "refused in state ready");
        ++transactions;
      } else {
        s.quit(now);
      }
      continue;
    }
    if (s.wants_body()) {
      wire.content_starts();
      static constexpr std::string_view bodies[] = {
          "Subject: x\r\n\r\nhello\r\n",
          ".leading dot\n..two\r\n.\r\nafter a dot line\n",
          "bare\rcr and bare\nlf\r\n\r\n.",
          "",
      };
      s.body(bodies[choose.below(4)]);
      s.end_body(now);
      continue;
    }
    if (pos < server.size() && !choose.one_in(16)) {
      const std::string_view bytes = server.substr(pos, 1 + choose.below(256));
      pos += bytes.size();
      now += std::chrono::milliseconds(choose.below(100));
      s.receive(bytes, now);
      continue;
    }
    if (pos >= server.size() && choose.one_in(2)) {
      s.receive_eof(now);
      continue;
    }
    if (const auto d = s.deadline()) {
      now = *d > now ? *d : now + std::chrono::milliseconds(1);
      s.advance(now);
      continue;
    }
    if (pos >= server.size()) s.receive_eof(now);
  }
  wire.take(s.output());
  const client_state st = s.state();
  if (st != client_state::closed && st != client_state::failed) {
    s.receive_eof(now);
    if (s.state() != client_state::closed && s.state() != client_state::failed)
      fail("session", "still open after the server closed");
  }
  if (results > transactions) fail("results", "more results than transactions");
}

}  // namespace
}  // namespace relaylab::smtp

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  relaylab::smtp::run(data, size);
  return 0;
}
