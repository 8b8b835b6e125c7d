#include "relay/qmgr/log_gate.hpp"

namespace relaylab::qmgr {

log_gate::log_gate(log::logger& target, std::size_t held_lines_max)
    : target_(target), held_lines_max_(held_lines_max) {}

void log_gate::forward(const log::record& r) {
  // The record's tag is already "postfix/smtp": an origin with that syslog_name and no program
  // reproduces it.
  target_.write(log::origin{r.tag, "", r.pid}, r.level, r.text);
}

void log_gate::write(const log::record& r) {
  {
    std::lock_guard lock(mutex_);
    const auto id = log::queue_id_prefix(r.text);
    if (!id.empty() && held_lines_ < held_lines_max_) {
      if (auto it = held_.find(id); it != held_.end()) {
        it->second.lines.push_back(r);
        ++held_lines_;
        return;
      }
    }
  }
  forward(r);
}

void log_gate::flush() { target_.flush(); }

void log_gate::hold(const std::string& queue_id) {
  std::lock_guard lock(mutex_);
  ++held_[queue_id].depth;
}

void log_gate::release(const std::string& queue_id) {
  std::vector<log::record> lines;
  {
    std::lock_guard lock(mutex_);
    auto it = held_.find(queue_id);
    if (it == held_.end()) return;
    if (--it->second.depth > 0) return;
    lines = std::move(it->second.lines);
    held_lines_ -= lines.size();
    held_.erase(it);
  }
  for (const auto& r : lines) forward(r);
}

}  // namespace relaylab::qmgr
