// The sans-IO SMTP engine alone (relay/smtp): command parsing and DATA scanning with a handler
// that decides nothing, so the numbers are the engine's own cost (no policy, SASL or queue).
#include "bench/bench_support.hpp"
#include "relay/smtp/server_session.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::bench {
namespace {

using smtp::timestamp;

/// Accepts everything; counts body bytes so the compiler cannot drop the DATA path.
class null_handler final : public smtp::server_handler {
 public:
  smtp::verdict on_connect(const smtp::client_identity&) override { return std::nullopt; }
  smtp::verdict on_helo(const smtp::client_identity&) override { return std::nullopt; }
  smtp::verdict on_mail(const smtp::client_identity&, const smtp::mail_command&) override {
    return std::nullopt;
  }
  smtp::verdict on_rcpt(const smtp::client_identity&, const smtp::rcpt_command&) override {
    return std::nullopt;
  }
  smtp::verdict on_data(const smtp::client_identity&) override { return std::nullopt; }
  void on_body(std::span<const char> chunk) override {
    body_bytes += chunk.size();
    ++body_calls;
  }
  void on_message_end(const smtp::client_identity&, bool) override { message_ended = true; }
  void on_reset() override {}
  smtp::auth_step on_auth_start(const smtp::client_identity&, std::string_view,
                                std::optional<std::string_view>) override {
    return {};
  }
  smtp::auth_step on_auth_continue(const smtp::client_identity&, std::string_view) override {
    return {};
  }
  void on_auth_abort() override {}
  smtp::verdict on_vrfy(const smtp::client_identity&, std::string_view) override {
    return std::nullopt;
  }
  void on_xclient(const smtp::client_identity&) override {}
  void on_disconnect(const smtp::client_identity&, std::string_view) override {}

  std::uint64_t body_bytes = 0;
  std::uint64_t body_calls = 0;
  bool message_ended = false;
};

smtp::server_options bench_options() {
  smtp::server_options o;
  o.myhostname = "relay.example.com";
  o.banner = "relay.example.com ESMTP Postfix";
  // A parser benchmark feeds millions of NOOP/RSET: Postfix would count them as junk and
  // disconnect after smtpd_junk_command_limit; lift the limit so the loop measures parsing.
  o.junk_command_limit = INT_MAX;
  return o;
}

/// A session past the greeting and EHLO (PIPELINING negotiated), ready for commands.
struct engine_fixture {
  null_handler handler;
  std::unique_ptr<smtp::server_session> session;
  timestamp now{};

  explicit engine_fixture(smtp::server_options o = bench_options()) { reopen(std::move(o)); }

  void reopen(smtp::server_options o = bench_options()) {
    session.reset();
    smtp::client_identity id;
    id.addr = "192.0.2.10";
    id.port = "40000";
    session = std::make_unique<smtp::server_session>(std::move(o), handler, id, now);
    session->start(now);
    feed("EHLO client.example.net\r\n");
  }

  void feed(std::string_view bytes) {
    session->receive(std::span<const char>(bytes.data(), bytes.size()), now);
  }
  /// Drops pending output; returns its size.
  std::size_t drain() {
    const std::size_t n = session->output().size();
    session->consume_output(n);
    return n;
  }
};

struct command_mix {
  const char* name;
  std::string batch;  // pipelined commands, fed with one receive()
  int commands = 0;
};

/// Each mix leaves the session where it started (no open transaction), so batches repeat.
command_mix make_mix(int which) {
  command_mix m;
  switch (which) {
    case 0:
      m.name = "noop";
      for (int i = 0; i < 1000; ++i) m.batch += "NOOP\r\n";
      m.commands = 1000;
      break;
    case 1:
      m.name = "rset";
      for (int i = 0; i < 1000; ++i) m.batch += "RSET\r\n";
      m.commands = 1000;
      break;
    default:
      // An envelope as a relay sees it: MAIL with ESMTP parameters, 8 recipients, RSET.
      m.name = "mail_8rcpt_rset";
      for (int t = 0; t < 100; ++t) {
        m.batch +=
            "MAIL FROM:<sender-" + std::to_string(t) + "@example.com> SIZE=1024 BODY=8BITMIME\r\n";
        for (int r = 0; r < 8; ++r)
          m.batch += "RCPT TO:<recipient-" + std::to_string(r) + "@example.net>\r\n";
        m.batch += "RSET\r\n";
        m.commands += 10;
      }
      break;
  }
  return m;
}

/// Commands per second, pipelined: one receive() carries a whole batch (1000 commands).
void BM_engine_commands_pipelined(benchmark::State& state) {
  const command_mix mix = make_mix(static_cast<int>(state.range(0)));
  engine_fixture f;
  f.drain();
  std::uint64_t commands = 0;
  for (auto _ : state) {
    f.feed(mix.batch);
    benchmark::DoNotOptimize(f.drain());
    commands += static_cast<std::uint64_t>(mix.commands);
  }
  if (f.session->closing()) fail(state, "session closed during the benchmark");
  state.SetItemsProcessed(static_cast<std::int64_t>(commands));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(mix.batch.size()));
  state.SetLabel(mix.name);
}
BENCHMARK(BM_engine_commands_pipelined)->ArgName("mix")->DenseRange(0, 2);

/// Commands per second, lock-step: one receive() and one drained reply per command line, as a
/// client without PIPELINING drives it.
void BM_engine_commands_lockstep(benchmark::State& state) {
  const command_mix mix = make_mix(static_cast<int>(state.range(0)));
  std::vector<std::string_view> lines;
  for (std::size_t pos = 0; pos < mix.batch.size();) {
    const std::size_t nl = mix.batch.find('\n', pos);
    lines.push_back(std::string_view(mix.batch).substr(pos, nl + 1 - pos));
    pos = nl + 1;
  }
  engine_fixture f;
  f.drain();
  std::size_t i = 0;
  for (auto _ : state) {
    f.feed(lines[i]);
    benchmark::DoNotOptimize(f.drain());
    if (++i == lines.size()) i = 0;
  }
  if (f.session->closing()) fail(state, "session closed during the benchmark");
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetLabel(mix.name);
}
BENCHMARK(BM_engine_commands_lockstep)->ArgName("mix")->DenseRange(0, 2);

/// Message content of about `bytes` bytes in 78-byte lines (76 printable + CRLF) as it goes on
/// the wire, ending with the terminator. With `stuffed`, every line starts with a dot, which
/// the client doubles and the engine must remove (the worst case for dot-unstuffing).
std::string make_message(std::size_t bytes, bool stuffed) {
  std::string line;
  for (int i = 0; i < 76; ++i) line += static_cast<char>('a' + i % 26);
  line += "\r\n";
  if (stuffed) line[0] = '.';
  std::string wire;
  wire.reserve(bytes + bytes / 70 + 8);
  while (wire.size() + line.size() <= bytes) {
    if (stuffed) wire += '.';
    wire += line;
  }
  wire += ".\r\n";
  return wire;
}

/// DATA throughput, one message per iteration: MAIL, RCPT, DATA, the content fed in 4 KiB
/// receive() calls (relay/net's default read buffer), the terminator, and the 250 reply.
/// bytes/s counts the content bytes on the wire (with the stuffed dots, without the
/// terminator). The envelope commands are inside the timed loop: a per-iteration timer would
/// cost more than the envelope on this VM (steady_clock ~150 ns per read pair), and CPU time is
/// what stays meaningful while other jobs load the machine. bytes=0 is that envelope alone, to
/// subtract for the 1 KiB case.
void BM_engine_data(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const bool stuffed = state.range(1) != 0;
  const std::string message = make_message(size, stuffed);
  const std::size_t content_bytes = message.size() - 3;  // without ".\r\n"
  constexpr std::size_t chunk_bytes = 4096;
  constexpr std::string_view envelope =
      "MAIL FROM:<sender@example.com>\r\nRCPT TO:<recipient@example.net>\r\nDATA\r\n";
  engine_fixture f;
  f.drain();
  const std::uint64_t body_before = f.handler.body_bytes;
  for (auto _ : state) {
    f.feed(envelope);
    f.drain();
    f.handler.message_ended = false;
    for (std::size_t pos = 0; pos < message.size(); pos += chunk_bytes) {
      f.feed(std::string_view(message).substr(pos, chunk_bytes));
    }
    if (!f.handler.message_ended) {
      fail(state, "end of DATA not seen");
      break;
    }
    f.session->finish_message({"250 2.0.0 Ok: queued as 4XPLxy2Hdnz6"}, f.now);
    benchmark::DoNotOptimize(f.drain());
  }
  state.SetItemsProcessed(state.iterations());  // messages
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(content_bytes));
  state.counters["unstuffed_bytes_per_message"] =
      benchmark::Counter(static_cast<double>(f.handler.body_bytes - body_before) /
                         static_cast<double>(std::max<std::int64_t>(1, state.iterations())));
  state.SetLabel(size == 0 ? "envelope only"
                 : stuffed ? "every line dot-stuffed"
                           : "no dot-stuffing");
}
BENCHMARK(BM_engine_data)->ArgNames({"bytes", "stuffed"})->Args({0, 0});
BENCHMARK(BM_engine_data)
    ->ArgNames({"bytes", "stuffed"})
    ->ArgsProduct({{1 << 10, 64 << 10, 1 << 20}, {0, 1}});

}  // namespace
}  // namespace relaylab::bench
