#include "relay/qmgr/delivery_log.hpp"

#include <cmath>
#include <cstdio>

namespace relaylab::qmgr {

std::string format_delay(std::chrono::duration<double> d) {
  const double s = d.count();
  if (!(s >= 0.005)) return "0";
  char buf[32];
  if (s < 10) {
    // Two significant digits, no finer than 1/100 s (delay_logging_resolution_limit = 2).
    std::snprintf(buf, sizeof buf, "%.2g", s < 1 ? std::round(s * 100) / 100 : s);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", std::floor(s));
  }
  return buf;
}

const char* to_string(delivery::outcome_status s) noexcept {
  switch (s) {
    case delivery::outcome_status::sent:
      return "sent";
    case delivery::outcome_status::deferred:
      return "deferred";
    case delivery::outcome_status::bounced:
      return "bounced";
  }
  return "deferred";
}

std::string delivery_line(const delivery::job& j, const delivery::job_recipient& r,
                          const delivery::recipient_outcome& o, delivery::time_point setup_done,
                          delivery::time_point now) {
  using dsec = std::chrono::duration<double>;
  const auto span = [](delivery::time_point a, delivery::time_point b) {
    return b > a ? dsec(b - a) : dsec(0);
  };
  std::string line = j.queue_id + ": to=<" + r.address + ">, relay=" + o.relay +
                     ", delay=" + format_delay(span(j.arrival, now)) +
                     ", delays=" + format_delay(span(j.arrival, j.queued_active)) + "/" +
                     format_delay(span(j.queued_active, j.handed_over)) + "/" +
                     format_delay(span(j.handed_over, setup_done)) + "/" +
                     format_delay(span(setup_done, now)) + ", dsn=" + o.dsn +
                     ", status=" + to_string(o.status) + " (" + o.reason + ")";
  return line;
}

}  // namespace relaylab::qmgr
