// Holds a delivery agent's log lines for a message until the queue manager has made the
// outcomes durable, so that the maillog never claims more than the queue knows: a
// "status=sent" line appears only after the recipient's done mark is on disk. A crash in
// between loses the line together with the mark; the retry logs it again. (Postfix's smtp(8)
// logs before it marks the recipient done, so after a crash its log can show a recipient as
// sent that is then delivered again; relaylab closes that window.)
//
// Usage: the agent logs through a logger whose only sink is the gate; the gate forwards to the
// real logger. The queue manager calls hold(id, recipients) before handing a job to the agent
// and release(id, token) after recording that job's outcomes. Lines without a held queue ID pass
// at once. Thread-safe.
#pragma once

#include "relay/log/log.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace relaylab::qmgr {

class log_gate final : public log::sink {
 public:
  /// `target` must outlive the gate. At most `held_lines_max` lines are held in all; beyond
  /// that, lines pass at once (bounded memory beats a complete gate).
  explicit log_gate(log::logger& target, std::size_t held_lines_max = 100000);
  void write(const log::record& r) override;
  void flush() override;

  /// Starts holding the lines of one delivery job of `queue_id`: lines that name one of
  /// `recipients` ("to=<address>") belong to this job; other lines of the queue ID (no
  /// recipient, or one no job holds) are shared. Returns the job's token for release().
  std::uint64_t hold(const std::string& queue_id, const std::vector<std::string>& recipients);
  /// Ends one job's hold: its lines and the shared lines held so far go to the target in
  /// order. Other jobs of the same message keep theirs, so a crash while they are still in
  /// flight loses only lines whose outcomes were never made durable.
  void release(const std::string& queue_id, std::uint64_t token);

 private:
  void forward(const log::record& r);
  struct held_line {
    std::uint64_t owner = 0;  // job token, 0 = shared
    log::record record;
  };
  struct job {
    std::uint64_t token = 0;
    std::vector<std::string> recipients;
  };
  struct held {
    std::vector<job> jobs;
    std::vector<held_line> lines;
  };
  log::logger& target_;
  std::size_t held_lines_max_;
  std::mutex mutex_;
  std::map<std::string, held, std::less<>> held_;
  std::size_t held_lines_ = 0;
  std::uint64_t next_token_ = 1;
};

}  // namespace relaylab::qmgr
