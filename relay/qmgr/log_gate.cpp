#include "relay/qmgr/log_gate.hpp"

#include <algorithm>

namespace relaylab::qmgr {
namespace {

// The address of a "to=<address>" field, or "".
std::string_view recipient_of(std::string_view text) {
  const auto at = text.find(" to=<");
  if (at == std::string_view::npos) return {};
  const auto start = at + 5;
  const auto end = text.find('>', start);
  if (end == std::string_view::npos) return {};
  return text.substr(start, end - start);
}

}  // namespace

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
        std::uint64_t owner = 0;
        if (const auto rcpt = recipient_of(r.text); !rcpt.empty()) {
          for (const auto& j : it->second.jobs) {
            if (std::find(j.recipients.begin(), j.recipients.end(), rcpt) != j.recipients.end()) {
              owner = j.token;
              break;
            }
          }
        }
        it->second.lines.push_back({owner, r});
        ++held_lines_;
        return;
      }
    }
  }
  forward(r);
}

void log_gate::flush() { target_.flush(); }

std::uint64_t log_gate::hold(const std::string& queue_id,
                             const std::vector<std::string>& recipients) {
  std::lock_guard lock(mutex_);
  const std::uint64_t token = next_token_++;
  held_[queue_id].jobs.push_back({token, recipients});
  return token;
}

void log_gate::release(const std::string& queue_id, std::uint64_t token) {
  std::vector<log::record> out;
  {
    std::lock_guard lock(mutex_);
    auto it = held_.find(queue_id);
    if (it == held_.end()) return;
    auto& h = it->second;
    std::erase_if(h.jobs, [token](const job& j) { return j.token == token; });
    std::vector<held_line> keep;
    for (auto& l : h.lines) {
      if (l.owner == token || l.owner == 0)
        out.push_back(std::move(l.record));
      else
        keep.push_back(std::move(l));
    }
    h.lines = std::move(keep);
    held_lines_ -= out.size();
    if (h.jobs.empty()) {
      // Lines of jobs that ended without a release cannot exist; whatever is left goes too.
      for (auto& l : h.lines) out.push_back(std::move(l.record));
      held_lines_ -= h.lines.size();
      held_.erase(it);
    }
  }
  for (const auto& r : out) forward(r);
}

}  // namespace relaylab::qmgr
