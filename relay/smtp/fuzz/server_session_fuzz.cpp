// libFuzzer target: the sans-IO SMTP server session (relay/smtp) against a hostile client.
//
// Input: 2 bytes of options, 8 bytes of seed, then the client's bytes. The seed drives
// everything else (write sizes, time passing, talking before the greeting, the handler's
// verdicts, AUTH steps, TLS handshakes succeeding or failing), so the client bytes stay a
// plain stream: the seed corpus is the dialogues of testdata/dialogues, and mutations of them
// stay SMTP-like.
//
// Checked beyond "no crash, no leak, no UB": every byte the session writes is a well-formed
// reply line ("ddd" then ' ' or '-', CRLF-terminated, no LF inside), nothing is written after
// the session asked to close, and on_disconnect comes at most once.
#include "fuzz/fuzz_input.hpp"
#include "relay/smtp/server_session.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace relaylab::smtp {
namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  fuzz::fail("server_session_fuzz", what, detail);
}

/// Replies a policy could give; verdicts are drawn from the seed.
class hostile_handler final : public server_handler {
 public:
  explicit hostile_handler(fuzz::chooser& choose) : choose_(choose) {}

  verdict on_connect(const client_identity&) override { return maybe_reject(40); }
  void on_improper_pipelining(const client_identity&, std::string_view where,
                              std::string_view pending) override {
    if (pending.empty() || pending.size() > improper_pipelining_shown_max)
      fail("improper pipelining shown with a bad length", where);
  }
  verdict on_helo(const client_identity&) override { return maybe_reject(8); }
  verdict on_mail(const client_identity&, const mail_command& m) override {
    if (m.sender.size() > 4096) fail("sender longer than any line", m.sender.substr(0, 64));
    return maybe_reject(6);
  }
  verdict on_rcpt(const client_identity&, const rcpt_command&) override { return maybe_reject(4); }
  verdict on_data(const client_identity&) override { return maybe_reject(10); }
  void on_body(std::span<const char> chunk) override { body_bytes += chunk.size(); }
  void on_message_end(const client_identity&, bool) override { message_pending = true; }
  void on_reset() override {}
  auth_step on_auth_start(const client_identity&, std::string_view,
                          std::optional<std::string_view>) override {
    in_auth = true;
    return auth_reply();
  }
  auth_step on_auth_continue(const client_identity&, std::string_view) override {
    if (!in_auth) fail("on_auth_continue", "outside an AUTH exchange");
    return auth_reply();
  }
  void on_auth_abort() override { in_auth = false; }
  verdict on_vrfy(const client_identity&, std::string_view) override { return maybe_reject(3); }
  void on_xclient(const client_identity&) override {}
  void on_disconnect(const client_identity&, std::string_view) override { ++disconnects; }

  bool message_pending = false;
  bool in_auth = false;
  int disconnects = 0;
  std::uint64_t body_bytes = 0;

 private:
  verdict maybe_reject(std::uint64_t one_in) {
    if (!choose_.one_in(one_in)) return std::nullopt;
    switch (choose_.below(4)) {
      case 0:
        return reply{"554 5.7.1 <x@example.net>: Relay access denied"};
      case 1:
        return reply{"450 4.1.8 <a@b.example>: Sender address rejected: Domain not found"};
      case 2:
        return reply{"421 4.3.2 Service currently unavailable"};
      default:
        return reply{"550-5.7.1 first line\r\n550 5.7.1 second line"};
    }
  }
  auth_step auth_reply() {
    auth_step s;
    switch (choose_.below(3)) {
      case 0:
        s.state = auth_step::status::challenge;
        s.challenge = choose_.one_in(2) ? "" : "Username:";
        return s;
      case 1:
        in_auth = false;
        s.state = auth_step::status::success;
        s.reply = "235 2.7.0 Authentication successful";
        return s;
      default:
        in_auth = false;
        s.state = auth_step::status::failure;
        s.reply = "535 5.7.8 Error: authentication failed: authentication failure";
        return s;
    }
  }
  fuzz::chooser& choose_;
};

/// Consumes the session's output (consuming may let it parse more input and write again),
/// checking it is a sequence of reply lines.
void drain(server_session& s, std::string& partial) {
  for (int i = 0; i < 10000 && !s.output().empty(); ++i) {
    const std::string_view out = s.output();
    partial.append(out);
    s.consume_output(out.size());
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t crlf = partial.find("\r\n", start);
    if (crlf == std::string::npos) break;
    const std::string_view line(partial.data() + start, crlf - start);
    if (line.size() < 4 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9' || (line[3] != ' ' && line[3] != '-'))
      fail("malformed reply line", line.substr(0, 80));
    // No LF inside a line: a client's text never starts a reply line of its own. A bare CR
    // may appear where the reply echoes the client's own bytes (XCLIENT NAME=a\rb), as
    // Postfix's replies do.
    if (line.find('\n') != std::string_view::npos)
      fail("LF inside a reply line", line.substr(0, 80));
    start = crlf + 2;
  }
  partial.erase(0, start);
  // A reply is never longer than a line Postfix would send (line_length_limit and then some).
  if (partial.size() > 64 * 1024) fail("unterminated reply", partial.substr(0, 80));
}

void run(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t a = in.byte();
  const std::uint8_t b = in.byte();
  fuzz::chooser choose(in.u64());

  server_options o;
  o.myhostname = "relay.example.com";
  o.banner = "relay.example.com ESMTP Postfix";
  o.sasl_auth_enable = (a & 0x01) != 0;
  o.sasl_mechanisms = {"PLAIN", "LOGIN"};
  o.broken_sasl_auth_clients = (a & 0x02) != 0;
  o.xclient_authorized = (a & 0x04) != 0;
  o.helo_required = (a & 0x08) != 0;
  o.forbid_bare_newline = (a & 0x10) != 0;
  o.forbid_bare_newline_reject = (a & 0x20) != 0;
  o.tls_offered = (a & 0x40) != 0;
  o.tls_required = o.tls_offered && (b & 0x01) != 0;
  o.tls_auth_only = (b & 0x02) != 0;
  o.tls_wrappermode = (b & 0x04) != 0;
  o.disable_vrfy_command = (b & 0x08) != 0;
  o.inet_ipv6 = (b & 0x10) != 0;
  o.forbid_unauth_pipelining = (b & 0x80) != 0;
  if (b & 0x20) {  // small limits, so they are reached
    o.line_length_limit = 64;
    o.message_size_limit = 256;
    o.recipient_limit = 3;
    o.soft_error_limit = 2;
    o.hard_error_limit = 4;
    o.junk_command_limit = 5;
    o.input_bytes_max = 1024;
    o.output_bytes_max = 512;
  }
  o.error_sleep_time = std::chrono::milliseconds(b & 0x40 ? 1000 : 0);
  if (a & 0x80) o.discard_ehlo_keywords = {"pipelining", "silent-discard", "auth"};

  hostile_handler h(choose);
  client_identity id;
  id.addr = "203.0.113.9";
  id.port = "40000";
  timestamp now{};
  server_session s(o, h, id, now);
  const std::string_view client = in.rest();
  // One client in four talks before the greeting: the session gets a peek at what it sent.
  const std::string_view early =
      choose.one_in(4) ? client.substr(0, static_cast<std::size_t>(choose.below(200))) : "";
  s.start(now, early);

  std::string partial;
  std::size_t pos = 0;
  bool closed_seen = false;
  // Bounded: every round either feeds bytes, or advances time past a deadline, or ends.
  for (int round = 0; round < 100000; ++round) {
    drain(s, partial);
    if (s.closing()) {
      closed_seen = true;
      break;
    }
    if (s.tls_wanted()) {
      if (choose.one_in(8)) {
        s.tls_failed(now);
      } else {
        s.tls_started(now);
      }
      continue;
    }
    if (h.message_pending && (choose.one_in(2) || pos >= client.size())) {
      h.message_pending = false;
      s.finish_message(choose.one_in(5) ? reply{"451 4.3.0 Error: queue file write error"}
                                        : reply{"250 2.0.0 Ok: queued as 4ZkQ1x2Yz3"},
                       now);
      continue;
    }
    if (choose.one_in(16) || pos >= client.size() || !s.want_input()) {
      if (const auto d = s.deadline()) {
        now = *d > now ? *d : now + std::chrono::milliseconds(1);
        s.advance(now);
        continue;
      }
      if (pos >= client.size()) {
        s.receive_eof(now);
        drain(s, partial);
        break;
      }
    }
    const std::size_t n = 1 + choose.below(choose.one_in(4) ? 4096 : 64);
    const std::string_view bytes = client.substr(pos, n);
    pos += bytes.size();
    now += std::chrono::milliseconds(choose.below(50));
    s.receive(bytes, now);
  }
  if (closed_seen) {
    // Nothing more comes out of a session that asked to close.
    s.advance(now + std::chrono::hours(1));
    if (!s.output().empty()) fail("output after closing", s.output().substr(0, 80));
  }
  if (h.disconnects > 1) fail("on_disconnect", "called more than once");
}

}  // namespace
}  // namespace relaylab::smtp

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  relaylab::smtp::run(data, size);
  return 0;
}
