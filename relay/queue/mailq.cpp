#include "relay/queue/mailq.hpp"

#include <cstdio>
#include <ctime>

namespace relaylab::queue {
namespace {

// The first 20 characters of asctime(): "Sat Nov 28 04:56:13 ".
std::string arrival_text(time_point t, std::chrono::seconds utc_offset) {
  static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto secs = std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()) + utc_offset;
  const std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.3s %.3s%3d %.2d:%.2d:%.2d ", days[tm.tm_wday % 7],
                months[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return std::string(buf).substr(0, 20);
}

void append_row(std::string& out, std::string_view id, std::string_view size, std::string_view when,
                std::string_view who) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%-11.*s %7.*s %-20.*s ", static_cast<int>(id.size()), id.data(),
                static_cast<int>(size.size()), size.data(), static_cast<int>(when.size()),
                when.data());
  out += buf;
  out += who;
  out += '\n';
}

}  // namespace

std::string format_mailq(std::span<const queue_entry> entries, const mailq_options& options) {
  if (entries.empty()) return "Mail queue is empty\n";
  std::string out;
  append_row(out, "-Queue ID-", "--Size--", "----Arrival Time----", "-Sender/Recipient-------");
  std::uint64_t total = 0;
  bool first = true;
  for (const auto& e : entries) {
    if (!first) out += '\n';
    first = false;
    std::string id = e.queue_id;
    if (e.state == queue_state::active) id += '*';
    append_row(out, id, std::to_string(e.size_bytes), arrival_text(e.arrival, options.utc_offset),
               e.sender.empty() ? "MAILER-DAEMON" : e.sender);
    total += e.size_bytes;
    std::string_view shown_reason;  // Postfix prints a reason only when it changes
    for (const auto& r : e.recipients) {
      if (r.reason != shown_reason) {
        shown_reason = r.reason;
        const std::string_view text =
            r.reason.empty() ? std::string_view("reason unavailable") : std::string_view(r.reason);
        if (text.size() < 76) out.append(76 - text.size(), ' ');
        out += '(';
        out += text;
        out += ")\n";
      }
      append_row(out, "", "", "", r.address);
    }
  }
  const auto count = entries.size();
  out += "\n-- " + std::to_string(total / 1024) + " Kbytes in " + std::to_string(count) +
         (count == 1 ? " Request.\n" : " Requests.\n");
  return out;
}

}  // namespace relaylab::queue
