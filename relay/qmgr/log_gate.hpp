// Holds a delivery agent's log lines for a message until the queue manager has made the
// outcomes durable, so that the maillog never claims more than the queue knows: a
// "status=sent" line appears only after the recipient's done mark is on disk. A crash in
// between loses the line together with the mark; the retry logs it again. (Postfix's smtp(8)
// logs before it marks the recipient done, so after a crash its log can show a recipient as
// sent that is then delivered again; relaylab closes that window.)
//
// Usage: the agent logs through a logger whose only sink is the gate; the gate forwards to the
// real logger. The queue manager calls hold(id) before handing a job to the agent and
// release(id) after recording the outcomes. Lines without a held queue ID pass at once.
// Thread-safe.
#pragma once

#include "relay/log/log.hpp"

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

  /// Starts (or nests) holding lines that start with "queue_id: ".
  void hold(const std::string& queue_id);
  /// Ends one hold; at the last one, the held lines go to the target in order.
  void release(const std::string& queue_id);

 private:
  void forward(const log::record& r);
  struct held {
    int depth = 0;
    std::vector<log::record> lines;
  };
  log::logger& target_;
  std::size_t held_lines_max_;
  std::mutex mutex_;
  std::map<std::string, held, std::less<>> held_;
  std::size_t held_lines_ = 0;
};

}  // namespace relaylab::qmgr
