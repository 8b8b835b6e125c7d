// The background tasks of a scenario (harness/runner): a load generator, a mailx client, a
// scripted dialogue, and the fake MX hosts, each with the outcome the expectations judge.
// Internal to harness/runner (runner.cpp).
#pragma once

#include "fakes/client/dialogue.hpp"
#include "fakes/client/mailx.hpp"
#include "fakes/load/load.hpp"
#include "fakes/mx/mx.hpp"
#include "harness/sim/network.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <system_error>

#include <boost/asio/awaitable.hpp>

namespace relaylab::runner::detail {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct load_outcome {
  bool done = false;
  fakes::load::load_report report;
};

/// The loads of a group's hosts (<load group>), summed into one outcome as they finish: the
/// counts and errors added, the elapsed time the longest one's (latency histograms are not
/// summed: the scenario judges counts).
struct load_sum {
  std::size_t pending = 0;
  std::shared_ptr<load_outcome> out;
  void add(const fakes::load::load_report& r) {
    auto& t = out->report;
    t.messages_ok += r.messages_ok;
    t.messages_failed += r.messages_failed;
    t.recipients_ok += r.recipients_ok;
    t.connections += r.connections;
    t.auth_ok += r.auth_ok;
    t.auth_failed += r.auth_failed;
    t.tls_sessions += r.tls_sessions;
    t.tls_resumed += r.tls_resumed;
    for (const auto& [what, n] : r.errors) t.errors[what] += n;
    t.elapsed_s = std::max(t.elapsed_s, r.elapsed_s);
    if (--pending == 0) out->done = true;
  }
};

inline asio::awaitable<void> run_load_task(fakes::load::load_options options,
                                           net::connector& connector, net::runtime& rt,
                                           std::shared_ptr<load_sum> sum) {
  sum->add(co_await fakes::load::run_load(std::move(options), connector, rt));
}

struct mx_host {
  std::string host;
  std::uint16_t port = 25;
  std::unique_ptr<fakes::mx::server> server;
};

struct client_outcome {
  bool done = false;
  fakes::client::mailx_result result;
  sim::time_point started{0}, finished{0};
};

inline asio::awaitable<void> run_mailx(fakes::client::mailx_settings settings,
                                       fakes::client::mailx_message_input msg,
                                       fakes::client::mailx_environment env,
                                       std::shared_ptr<sim::host_connector> connector,
                                       std::shared_ptr<sim::sim_runtime> rt,
                                       std::shared_ptr<client_outcome> out,
                                       std::shared_ptr<std::ostringstream> verbose, sim::world* w) {
  out->result = co_await fakes::client::mailx_send(std::move(settings), std::move(msg),
                                                   std::move(env), *connector, *rt, verbose.get());
  out->finished = w->now();
  out->done = true;
}

struct dialogue_outcome {
  bool done = false;
  std::error_code connect_error;
  fakes::client::play_result result;
  sim::time_point finished{0};
};

inline asio::awaitable<void> run_dialogue(std::shared_ptr<fakes::client::dialogue> d,
                                          std::shared_ptr<sim::host_connector> connector,
                                          std::string server, std::uint16_t port,
                                          std::shared_ptr<dialogue_outcome> out, sim::world* w) {
  std::error_code ec;
  auto stream = co_await connector->connect(server, port, 30s, ec);
  if (!stream) {
    out->connect_error = ec;
  } else {
    out->result = co_await fakes::client::play(*d, *stream);
    stream->close();
  }
  out->finished = w->now();
  out->done = true;
}

}  // namespace relaylab::runner::detail
