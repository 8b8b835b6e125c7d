// One relay process's life on a simulated host, as harness/runner keeps it: the fence that
// cuts an incarnation off when its host crashes (storage, log lines, outbound connections),
// the hand-over delay between qmgr and the delivery agent, and what a host keeps across boots.
// Internal to harness/runner (runner.cpp).
#pragma once

#include "harness/sim/network.hpp"
#include "relay/config/config.hpp"
#include "relay/delivery/smtp_agent.hpp"
#include "relay/log/log.hpp"
#include "relay/qmgr/local_agent.hpp"
#include "relay/qmgr/qmgr.hpp"
#include "relay/queue/spool.hpp"
#include "relay/queue/storage.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtpd/smtpd.hpp"
#include "relay/tls/tls.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

namespace relaylab::runner::detail {

// A relay process's life on its host, from boot to crash. When the host crashes, the fence
// goes down: the incarnation's storage, log and outbound connections fail from then on, so the
// coroutines it still has (smtpd sessions, qmgr jobs, delivery attempts) run down on errors
// without touching the disk, the maillog or the network the next incarnation uses. Their frames
// refer to the incarnation's objects, which are therefore kept until the scenario's world has
// shut down (and destroyed those frames).
using fence = std::shared_ptr<const bool>;
namespace asio = boost::asio;
namespace fs = std::filesystem;

// Forwards every relay host's log lines into one memory sink, in the order they happen, while
// the writing incarnation is up.
class shared_sink final : public log::sink {
 public:
  shared_sink(log::memory_sink& target, fence up) : target_(target), up_(std::move(up)) {}
  void write(const log::record& r) override {
    if (*up_) target_.write(r);
  }
  void flush() override {}

 private:
  log::memory_sink& target_;
  fence up_;
};

// The host's disk as one incarnation sees it: every operation fails with EIO once it crashed.
class fenced_storage final : public queue::storage {
 public:
  fenced_storage(queue::storage& disk, fence up) : disk_(disk), up_(std::move(up)) {}
  std::error_code write_file(std::string_view dir, std::string_view name,
                             std::span<const std::string_view> pieces, bool sync) override {
    return *up_ ? disk_.write_file(dir, name, pieces, sync) : down();
  }
  std::error_code append_file(std::string_view dir, std::string_view name, std::string_view data,
                              bool sync) override {
    return *up_ ? disk_.append_file(dir, name, data, sync) : down();
  }
  std::error_code write_at(std::string_view dir, std::string_view name, std::uint64_t offset,
                           std::span<const std::string_view> pieces, bool sync) override {
    return *up_ ? disk_.write_at(dir, name, offset, pieces, sync) : down();
  }
  std::error_code rename(std::string_view from_dir, std::string_view from_name,
                         std::string_view to_dir, std::string_view to_name) override {
    return *up_ ? disk_.rename(from_dir, from_name, to_dir, to_name) : down();
  }
  std::error_code unlink(std::string_view dir, std::string_view name) override {
    return *up_ ? disk_.unlink(dir, name) : down();
  }
  std::error_code sync_dir(std::string_view dir) override {
    return *up_ ? disk_.sync_dir(dir) : down();
  }
  std::error_code list(std::string_view dir, std::vector<std::string>& names,
                       std::size_t names_max) override {
    return *up_ ? disk_.list(dir, names, names_max) : down();
  }
  std::error_code read(std::string_view dir, std::string_view name, std::uint64_t offset,
                       std::size_t bytes_max, std::string& out) override {
    return *up_ ? disk_.read(dir, name, offset, bytes_max, out) : down();
  }
  std::error_code read_file(std::string_view dir, std::string_view name, std::size_t bytes_max,
                            std::string& out) override {
    return *up_ ? disk_.read_file(dir, name, bytes_max, out) : down();
  }
  std::error_code free_space(queue::space_info& out) override {
    return *up_ ? disk_.free_space(out) : down();
  }
  std::error_code make_dir(std::string_view dir) override {
    return *up_ ? disk_.make_dir(dir) : down();
  }

 private:
  static std::error_code down() { return std::make_error_code(std::errc::io_error); }
  queue::storage& disk_;
  fence up_;
};

// Outbound connections of one incarnation: none once it crashed (its delivery attempts must
// not reach an MX after the host came back as a new incarnation).
class fenced_connector final : public net::connector {
 public:
  fenced_connector(net::connector& inner, fence up) : inner_(inner), up_(std::move(up)) {}
  asio::awaitable<std::unique_ptr<net::byte_stream>> connect(std::string address,
                                                             std::uint16_t port,
                                                             net::duration timeout,
                                                             std::error_code& ec) override {
    if (!*up_) {
      ec = std::make_error_code(std::errc::host_unreachable);
      co_return nullptr;
    }
    auto stream = co_await inner_.connect(std::move(address), port, timeout, ec);
    if (stream && !*up_) {  // crashed while connecting
      stream->close();
      ec = std::make_error_code(std::errc::host_unreachable);
      co_return nullptr;
    }
    co_return stream;
  }

 private:
  net::connector& inner_;
  fence up_;
};
// Postfix hands a message from qmgr to a delivery agent process over IPC; the seed's maillog
// shows that step ("delays=a/b/..", b = 0.01 s) and that the client's disconnect is logged
// before the first connect attempt. This wrapper gives the hand-over that virtual time.
class handover_agent final : public delivery::agent {
 public:
  handover_agent(delivery::agent& inner, net::runtime& rt, net::duration delay)
      : inner_(inner), rt_(rt), delay_(delay) {}
  asio::awaitable<std::vector<delivery::recipient_outcome>> deliver(
      const delivery::job& j) override {
    co_await rt_.sleep_for(delay_);
    co_return co_await inner_.deliver(j);
  }

 private:
  delivery::agent& inner_;
  net::runtime& rt_;
  net::duration delay_;
};

inline constexpr net::duration agent_handover_delay{10};

// One boot of the relay on its host (members in construction order; destroyed in reverse).
struct relay_incarnation {
  std::shared_ptr<bool> up = std::make_shared<bool>(true);
  std::unique_ptr<fenced_storage> storage;
  std::unique_ptr<queue::spool> spool;
  std::unique_ptr<log::logger> logger;
  // The agents log through a gate: "status=sent" reaches the maillog only once qmgr made the
  // done mark durable, as in `relaylab relay` (relay/qmgr/log_gate.hpp).
  std::unique_ptr<log::logger> agent_logger;
  std::unique_ptr<sim::host_connector> host_connector;
  std::unique_ptr<fenced_connector> connector;
  std::unique_ptr<delivery::smtp_agent> smtp;
  std::unique_ptr<handover_agent> smtp_handover;
  std::unique_ptr<qmgr::local_agent> local;
  std::unique_ptr<qmgr::manager> qmgr;
  std::vector<std::unique_ptr<smtpd::service>> services;
};

struct relay_host {
  std::string host;
  std::size_t index = 0;  // among the topology's relays (pids)
  config::configuration cfg;
  std::shared_ptr<sasl::server_library> sasl;
  /// From the run's CA, for services that ask for TLS and name no certificate file.
  std::vector<tls::key_pair_pem> tls_certificates;
  fs::path dir;
  std::unique_ptr<queue::mem_storage> disk;  // survives crashes (minus unsynced writes)
  std::unique_ptr<relay_incarnation> live;   // null while the host is down
  std::vector<std::unique_ptr<relay_incarnation>> crashed;
  std::size_t boots = 0;
  std::vector<std::string> accepted;  // queue IDs smtpd committed, over every incarnation
  std::optional<std::vector<queue::queue_entry>> down_listing;  // the disk while down
};

}  // namespace relaylab::runner::detail
