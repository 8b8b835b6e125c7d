// Helpers shared by the relay/qmgr tests (not part of the library).
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include "relay/delivery/agent.hpp"
#include "relay/log/log.hpp"
#include "relay/net/stream.hpp"

#include <boost/asio/awaitable.hpp>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

namespace relaylab::qmgr::testing {

/// What a fake agent saw of one job.
struct seen_job {
  delivery::job job;
  std::string content;  // read through job.read_content
  std::chrono::system_clock::time_point at;
};

/// A delivery agent that records every job and answers with `script` (default: all sent). It
/// can hold each job for `hold` of runtime time, counting how many jobs run at once.
class fake_agent final : public delivery::agent {
 public:
  using script_fn = std::function<delivery::recipient_outcome(
      const delivery::job&, const delivery::job_recipient&, std::size_t attempt)>;
  explicit fake_agent(net::runtime& rt) : rt_(rt) {}

  script_fn script;
  net::duration hold{0};
  /// When set, logs "ID: to=<..>, status=.." for each recipient (as real agents do).
  log::logger* log = nullptr;
  std::vector<seen_job> jobs;
  std::size_t in_flight = 0, in_flight_max = 0;

  static delivery::recipient_outcome sent(std::uint32_t index) {
    return {index, delivery::outcome_status::sent, "2.0.0", "mx.remote.example[192.0.2.1]:25",
            "250 2.0.0 Ok: queued as ABC"};
  }
  static delivery::recipient_outcome deferred(std::uint32_t index) {
    return {index, delivery::outcome_status::deferred, "4.4.1", "none",
            "connect to mx.remote.example[192.0.2.1]:25: Connection refused"};
  }
  static delivery::recipient_outcome bounced(std::uint32_t index, const std::string& address) {
    return {index, delivery::outcome_status::bounced, "5.1.1", "mx.remote.example[192.0.2.1]:25",
            "host mx.remote.example[192.0.2.1] said: 550 5.1.1 <" + address +
                ">: Recipient address rejected: User unknown (in reply to RCPT TO command)"};
  }
  static const char* status_name(delivery::outcome_status s) {
    switch (s) {
      case delivery::outcome_status::sent:
        return "sent";
      case delivery::outcome_status::bounced:
        return "bounced";
      case delivery::outcome_status::deferred:
        break;
    }
    return "deferred";
  }
  /// Attempts so far for recipient `address` (jobs that contained it).
  std::size_t attempts(const std::string& address) const {
    return static_cast<std::size_t>(std::count_if(jobs.begin(), jobs.end(), [&](const auto& s) {
      return std::any_of(s.job.recipients.begin(), s.job.recipients.end(),
                         [&](const auto& r) { return r.address == address; });
    }));
  }

  boost::asio::awaitable<std::vector<delivery::recipient_outcome>> deliver(
      const delivery::job& j) override {
    seen_job s{j, {}, rt_.now()};
    std::string chunk;
    for (std::uint64_t off = 0; off < j.size; off += chunk.size()) {
      if (j.read_content(off, 4096, chunk) || chunk.empty()) break;
      s.content += chunk;
    }
    std::vector<delivery::recipient_outcome> out;
    for (const auto& r : j.recipients) {
      const std::size_t attempt = attempts(r.address);
      out.push_back(script ? script(j, r, attempt) : sent(r.index));
    }
    if (log != nullptr)
      for (std::size_t i = 0; i < out.size(); ++i)
        log->info({"postfix", "smtp", 1}, j.queue_id + ": to=<" + j.recipients[i].address +
                                              ">, status=" + status_name(out[i].status));
    jobs.push_back(std::move(s));
    ++in_flight;
    in_flight_max = std::max(in_flight_max, in_flight);
    if (hold.count() > 0) co_await rt_.sleep_for(hold);
    --in_flight;
    co_return out;
  }

 private:
  net::runtime& rt_;
};

}  // namespace relaylab::qmgr::testing
