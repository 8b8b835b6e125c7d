#include "relay/log/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <ctime>

namespace relaylab::log {

namespace {

constexpr std::array<const char*, 12> month_names = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::tm broken_down(std::chrono::system_clock::time_point t, bool utc) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  if (utc) {
    gmtime_r(&secs, &tm);
  } else {
    localtime_r(&secs, &tm);
  }
  return tm;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          // Bytes >= 0x80 pass through: SMTPUTF8 addresses are UTF-8 already; invalid UTF-8
          // from a hostile client stays visible rather than being silently rewritten.
          out += ch;
        }
    }
  }
  out += '"';
}

bool is_upper_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }
bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// Writes all of `data` to `fd`, retrying short writes and EINTR a bounded number of times.
std::error_code write_all(int fd, std::string_view data) {
  constexpr int attempts_max = 64;
  for (int attempt = 0; !data.empty() && attempt < attempts_max; ++attempt) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return {errno, std::generic_category()};
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  if (!data.empty()) return std::make_error_code(std::errc::io_error);
  return {};
}

// One descriptor, one format; optionally buffered. Owns the descriptor unless it is 1 or 2.
class fd_sink final : public sink {
 public:
  fd_sink(int fd, bool owned, file_sink_options options)
      : fd_(fd), owned_(owned), options_(options), times_(options.utc) {}
  ~fd_sink() override {
    flush();
    if (owned_) ::close(fd_);
  }
  void write(const record& r) override {
    // line_ is reused so that a line costs no allocation once it has grown.
    line_.clear();
    if (options_.format == line_format::json) {
      line_ = format_json(r);
    } else {
      append_line(line_, r, times_);
    }
    line_ += '\n';
    if (options_.flush_each_line && !batching_) {
      note(write_all(fd_, line_));
      return;
    }
    if (buffer_.size() + line_.size() > options_.buffer_bytes_max) flush();
    if (line_.size() > options_.buffer_bytes_max) {
      note(write_all(fd_, line_));
      return;
    }
    buffer_ += line_;
  }
  void flush() override {
    if (buffer_.empty()) return;
    note(write_all(fd_, buffer_));
    buffer_.clear();
  }
  std::error_code error() const noexcept override { return error_; }
  void set_batching(bool on) override {
    if (!on) flush();
    batching_ = on;
  }

 private:
  void note(std::error_code ec) {
    if (ec && !error_) error_ = ec;
  }
  int fd_;
  bool owned_;
  file_sink_options options_;
  syslog_time_cache times_;
  bool batching_ = false;
  std::string line_;
  std::string buffer_;
  std::error_code error_;
};

}  // namespace

std::string_view to_string(severity s) noexcept {
  switch (s) {
    case severity::info:
      return "info";
    case severity::warning:
      return "warning";
    case severity::error:
      return "error";
    case severity::fatal:
      return "fatal";
    case severity::panic:
      return "panic";
  }
  return "info";
}

std::string origin::tag() const {
  if (program.empty()) return syslog_name;
  return syslog_name + "/" + program;
}

std::string format_syslog_time(std::chrono::system_clock::time_point t, bool utc) {
  // Formatted by hand rather than strftime("%b") so the month name never depends on LC_TIME.
  const std::tm tm = broken_down(t, utc);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s %02d %02d:%02d:%02d",
                month_names[static_cast<std::size_t>(tm.tm_mon) % 12], tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
  return buf;
}

std::string_view syslog_time_cache::format(std::chrono::system_clock::time_point t) {
  // Keyed by the same whole second that format_syslog_time shows.
  const std::time_t second = std::chrono::system_clock::to_time_t(t);
  if (!valid_ || second != second_) {
    text_ = format_syslog_time(t, utc_);
    second_ = second;
    valid_ = true;
  }
  return text_;
}

namespace {
void append_after_time(std::string& out, const record& r) {
  out += ' ';
  out += r.host;
  out += ' ';
  out += r.tag;
  out += '[';
  out += std::to_string(r.pid);
  out += "]: ";
  if (r.level != severity::info) {
    out += to_string(r.level);
    out += ": ";
  }
  out += r.text;
}
}  // namespace

std::string format_line(const record& r, bool utc) {
  std::string out = format_syslog_time(r.time, utc);
  append_after_time(out, r);
  return out;
}

void append_line(std::string& out, const record& r, syslog_time_cache& times) {
  out += times.format(r.time);
  append_after_time(out, r);
}

std::string format_json(const record& r) {
  const std::tm tm = broken_down(r.time, true);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(r.time.time_since_epoch()) %
      std::chrono::seconds(1);
  char stamp[48];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>((micros.count() + 1000000) % 1000000));
  std::string out = "{\"time\":\"";
  out += stamp;
  out += "\",\"host\":";
  append_json_string(out, r.host);
  out += ",\"program\":";
  append_json_string(out, r.tag);
  out += ",\"pid\":";
  out += std::to_string(r.pid);
  out += ",\"severity\":\"";
  out += to_string(r.level);
  out += '"';
  if (const auto id = queue_id_prefix(r.text); !id.empty()) {
    out += ",\"queue_id\":";
    append_json_string(out, id);
  }
  out += ",\"text\":";
  append_json_string(out, r.text);
  out += '}';
  return out;
}

std::string_view queue_id_prefix(std::string_view text) noexcept {
  const auto colon = text.find(": ");
  if (colon == std::string_view::npos || colon < 6 || colon > 32) return {};
  const std::string_view id = text.substr(0, colon);
  bool hex = true;
  for (const char c : id) {
    if (!is_alnum(c)) return {};
    if (!is_upper_hex(c)) hex = false;
  }
  if (hex) return id;
  // Long form (enable_long_queue_ids): 6 digits of seconds and 4 of microseconds in base 52,
  // then 'z', then the inode number. Vowels never occur in the digit alphabet.
  if (id.size() < 12 || id[10] != 'z') return {};
  for (std::size_t i = 0; i < id.size(); ++i) {
    if (i == 10) continue;
    const char c = id[i];
    if (c == 'z' || std::string_view("AEIOUaeiou").find(c) != std::string_view::npos) return {};
  }
  return id;
}

std::string_view host_label(std::string_view hostname) noexcept {
  return hostname.substr(0, hostname.find('.'));
}

std::unique_ptr<sink> open_file_sink(const std::string& path, const file_sink_options& options,
                                     std::error_code& ec) {
  ec.clear();
  if (path == "-") return std::make_unique<fd_sink>(STDOUT_FILENO, false, options);
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    ec = std::error_code(errno, std::generic_category());
    return nullptr;
  }
  return std::make_unique<fd_sink>(fd, true, options);
}

std::unique_ptr<sink> make_stderr_sink(line_format format, bool utc) {
  file_sink_options o;
  o.format = format;
  o.utc = utc;
  return std::make_unique<fd_sink>(STDERR_FILENO, false, o);
}

memory_sink::memory_sink(bool utc, std::size_t lines_max) : lines_max_(lines_max), times_(utc) {}

void memory_sink::write(const record& r) {
  std::lock_guard lock(mutex_);
  if (lines_max_ == 0) {
    ++dropped_;
    return;
  }
  if (lines_.size() >= lines_max_) {
    lines_.erase(lines_.begin());
    texts_.erase(texts_.begin());
    ++dropped_;
  }
  std::string line;
  append_line(line, r, times_);
  lines_.push_back(std::move(line));
  std::string text;
  if (r.level != severity::info) {
    text = to_string(r.level);
    text += ": ";
  }
  text += r.text;
  texts_.push_back(std::move(text));
}

std::vector<std::string> memory_sink::lines() const {
  std::lock_guard lock(mutex_);
  return lines_;
}

std::vector<std::string> memory_sink::texts() const {
  std::lock_guard lock(mutex_);
  return texts_;
}

std::size_t memory_sink::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

logger::logger(logger_options options)
    : options_(std::move(options)), host_(host_label(options_.hostname)) {
  if (!options_.wall_clock) {
    // A logger without a clock is a programming error in the caller; stamp the epoch rather
    // than reading the real clock behind the caller's back.
    options_.wall_clock = [] { return std::chrono::system_clock::time_point{}; };
  }
}

logger::~logger() { flush(); }

void logger::add_sink(std::unique_ptr<sink> s) {
  if (!s) return;
  std::lock_guard lock(mutex_);
  if (flush_hook_) s->set_batching(true);
  sinks_.push_back(std::move(s));
}

void logger::set_flush_hook(std::function<void()> request_flush) {
  std::lock_guard lock(mutex_);
  const bool on = static_cast<bool>(request_flush);
  flush_hook_ = std::move(request_flush);
  flush_requested_ = false;
  // Turning batching off flushes what a sink holds, so no line waits for a hook that is gone.
  for (auto& s : sinks_) s->set_batching(on);
}

namespace {
thread_local std::function<void()> thread_flush_hook;
}  // namespace

void logger::set_thread_flush_hook(std::function<void()> request_flush) {
  thread_flush_hook = std::move(request_flush);
}

void logger::write(const origin& from, severity level, std::string_view text) {
  record r;
  r.host = host_;
  r.tag = from.tag();
  r.pid = from.pid;
  r.level = level;
  r.text = std::string(text.substr(0, options_.text_bytes_max));
  std::lock_guard lock(mutex_);
  // Stamped under the lock so lines in every sink are in time order.
  r.time = options_.wall_clock();
  for (auto& s : sinks_) s->write(r);
  if (flush_hook_ && !flush_requested_) {
    // One request per batch: lines logged before the flush runs join this one.
    flush_requested_ = true;
    if (thread_flush_hook) {
      thread_flush_hook();
    } else {
      flush_hook_();
    }
  }
}

void logger::flush() {
  std::lock_guard lock(mutex_);
  flush_requested_ = false;
  for (auto& s : sinks_) s->flush();
}

std::error_code logger::sink_error() const {
  std::lock_guard lock(mutex_);
  for (const auto& s : sinks_) {
    if (auto ec = s->error()) return ec;
  }
  return {};
}

// --- smtpd texts -----------------------------------------------------------------------------

std::string client_namaddr(std::string_view name, std::string_view addr) {
  std::string out(name);
  out += '[';
  out += addr;
  out += ']';
  return out;
}

std::string connect_from(std::string_view name, std::string_view addr) {
  return "connect from " + client_namaddr(name, addr);
}

std::string client_line(std::string_view queue_id, std::string_view name, std::string_view addr,
                        std::string_view sasl_method, std::string_view sasl_username,
                        std::string_view sasl_sender) {
  std::string out(queue_id);
  out += ": client=";
  out += client_namaddr(name, addr);
  if (!sasl_method.empty()) {
    out += ", sasl_method=";
    out += sasl_method;
    out += ", sasl_username=";
    out += sasl_username;
  }
  if (!sasl_sender.empty()) {
    out += ", sasl_sender=";
    out += sasl_sender;
  }
  return out;
}

std::string reject_line(const reject_context& c) {
  std::string out = c.queue_id.empty() ? std::string("NOQUEUE") : c.queue_id;
  out += ": ";
  out += c.action;
  out += ": ";
  out += c.stage;
  out += " from ";
  out += client_namaddr(c.name, c.addr);
  out += ": ";
  out += c.reply;
  out += ';';
  if (c.sender) out += " from=<" + *c.sender + ">";
  if (c.recipient) out += " to=<" + *c.recipient + ">";
  if (c.protocol) out += " proto=" + *c.protocol;
  if (c.helo) out += " helo=<" + *c.helo + ">";
  return out;
}

std::string sasl_auth_failed(std::string_view name, std::string_view addr,
                             std::string_view mechanism, std::string_view reason,
                             std::string_view sasl_username) {
  std::string out = client_namaddr(name, addr);
  out += ": SASL ";
  out += mechanism;
  out += " authentication failed: ";
  out += reason;
  if (!sasl_username.empty()) {
    out += ", sasl_username=";
    out += sasl_username;
  }
  return out;
}

std::string disconnect_from(std::string_view name, std::string_view addr,
                            std::string_view command_counts) {
  std::string out = "disconnect from " + client_namaddr(name, addr);
  if (!command_counts.empty()) {
    out += ' ';
    out += command_counts;
  }
  return out;
}

namespace {
std::string after_from(std::string_view what, std::string_view command, std::string_view name,
                       std::string_view addr) {
  std::string out(what);
  out += " after ";
  out += command.empty() ? std::string_view("CONNECT") : command;
  out += " from ";
  out += client_namaddr(name, addr);
  return out;
}
}  // namespace

std::string timeout_after(std::string_view command, std::string_view name, std::string_view addr) {
  return after_from("timeout", command, name, addr);
}

std::string lost_connection_after(std::string_view command, std::string_view name,
                                  std::string_view addr) {
  return after_from("lost connection", command, name, addr);
}

std::string too_many_errors_after(std::string_view command, std::string_view name,
                                  std::string_view addr) {
  return after_from("too many errors", command, name, addr);
}

std::string improper_pipelining_after(std::string_view command, std::string_view name,
                                      std::string_view addr, std::string_view pending_input,
                                      std::size_t pending_bytes_max) {
  std::string out = after_from("improper command pipelining", command, name, addr);
  out += ": ";
  for (const char ch : pending_input.substr(0, pending_bytes_max)) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\%03o", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out;
}

std::string json_quote(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

}  // namespace relaylab::log
