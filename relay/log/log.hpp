// Postfix-style maillog: "Nov 28 04:57:30 relay postfix/smtpd[10409]: connect from ...".
//
// A `logger` stamps each record with an injected wall clock, the host label and the syslog tag,
// and hands it to its sinks (maillog file, stderr, JSON lines, memory for tests). Postfix's own
// logger (maillog_file / postlogd) is the reference for the text line:
//   - time "%b %d %H:%M:%S" (day zero-padded, "Nov 08"), local time unless `utc` is set;
//   - host = the first label of myhostname (Postfix passes var_myhostname, not gethostname());
//   - tag = syslog_name + "/" + program, e.g. "postfix/smtpd", "postfix/submission/smtpd";
//   - "warning: ", "error: ", "fatal: ", "panic: " between "[pid]: " and the text;
//   - text cut at `text_bytes_max` (Postfix: 2000).
// The logger is thread-safe (one mutex): the queue's committer thread may log. Lines reach
// every sink in the order of the write() calls, batched or not.
#pragma once

#include <chrono>
#include <cstddef>
#include <ctime>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace relaylab::log {

enum class severity { info, warning, error, fatal, panic };

/// "info", "warning", "error", "fatal", "panic".
std::string_view to_string(severity s) noexcept;

/// Who logs: syslog_name comes from main.cf or master.cf "-o syslog_name=postfix/submission".
struct origin {
  std::string syslog_name = "postfix";
  std::string program;  // "smtpd", "qmgr", "smtp", "master"
  int pid = 0;
  /// "postfix/smtpd"; just syslog_name when program is empty.
  std::string tag() const;
};

/// One log record after stamping; what sinks receive.
struct record {
  std::chrono::system_clock::time_point time;
  std::string host;  // already reduced to the first label
  std::string tag;   // "postfix/smtpd"
  int pid = 0;
  severity level = severity::info;
  std::string text;  // without the severity prefix, cut to text_bytes_max
};

/// "Nov 28 04:57:30" (strftime "%b %d %H:%M:%S" in the C locale).
std::string format_syslog_time(std::chrono::system_clock::time_point t, bool utc);
/// The maillog line without newline: "Nov 28 04:57:30 relay postfix/smtpd[10409]: warning: x".
std::string format_line(const record& r, bool utc);

/// format_syslog_time for a stream of records: the stamp is formatted once per second and
/// reused for the lines of that second (a busy relay logs many lines per second, and
/// localtime_r + formatting was a visible share of its CPU). Not thread-safe: one per sink.
class syslog_time_cache {
 public:
  explicit syslog_time_cache(bool utc) noexcept : utc_(utc) {}
  /// Same text as format_syslog_time(t, utc); valid until the next call.
  std::string_view format(std::chrono::system_clock::time_point t);

 private:
  bool utc_;
  bool valid_ = false;
  std::time_t second_ = 0;
  std::string text_;
};
/// Appends format_line(r, utc) to `out`, the stamp taken from `times` (whose utc setting wins).
void append_line(std::string& out, const record& r, syslog_time_cache& times);
/// One JSON object without newline: {"time":"2026-11-28T04:57:30.123456Z","host":"relay",
/// "program":"postfix/smtpd","pid":10409,"severity":"info","queue_id":"8C125A72052","text":"..."}.
/// "queue_id" is present only when the text starts with a queue ID (see queue_id_prefix). Time is
/// always UTC with microseconds.
std::string format_json(const record& r);
/// `s` as a JSON string literal, quotes included; control characters and DEL are escaped.
std::string json_quote(std::string_view s);
/// The queue ID a text starts with ("8C125A72052: client=..." → "8C125A72052"), or empty.
/// Recognises Postfix short IDs (6+ upper-case hex digits) and long IDs (10 base-52 digits, 'z',
/// more digits). "NOQUEUE" is not an ID.
std::string_view queue_id_prefix(std::string_view text) noexcept;
/// First label of a host name: "relay.example.com" → "relay".
std::string_view host_label(std::string_view hostname) noexcept;

/// Where lines go. Implementations need not be thread-safe: the logger serialises calls.
class sink {
 public:
  virtual ~sink() = default;
  virtual void write(const record& r) = 0;
  /// Pushes buffered lines to the OS. Errors are remembered in error().
  virtual void flush() = 0;
  /// First write error seen (e.g. ENOSPC), cleared never; logging itself goes on.
  virtual std::error_code error() const noexcept { return {}; }
  /// Called by the logger when a flush hook is installed (on) or removed (off, after a flush):
  /// while on, the sink may hold lines it would otherwise write at once, because a flush() is
  /// coming soon. Sinks without a buffer ignore it.
  virtual void set_batching(bool on) { (void)on; }
};

enum class line_format { maillog, json };

struct file_sink_options {
  line_format format = line_format::maillog;
  bool utc = false;  // maillog timestamps in UTC instead of local time
  /// Durability: with flush_each_line every line is one write(2) on an O_APPEND descriptor, so a
  /// line survives a crash of this process (not of the OS: there is no fsync, like postlogd).
  /// Otherwise lines are buffered up to buffer_bytes_max and written when the buffer fills, on
  /// flush() and on destruction; a process crash loses at most the buffer.
  /// While the logger batches (logger::set_flush_hook) a flush_each_line sink buffers too, and
  /// the lines of one batch leave in one write(2); a crash then loses at most that batch.
  bool flush_each_line = true;
  std::size_t buffer_bytes_max = 64 * 1024;
};

/// Opens `path` for appending (created 0644 if missing). "-" means standard output.
/// Errors: the open(2) error.
std::unique_ptr<sink> open_file_sink(const std::string& path, const file_sink_options& options,
                                     std::error_code& ec);
/// Writes to standard error, one write(2) per line.
std::unique_ptr<sink> make_stderr_sink(line_format format = line_format::maillog, bool utc = false);

/// Keeps formatted maillog lines in memory (tests, simulation); oldest dropped beyond lines_max.
class memory_sink : public sink {
 public:
  explicit memory_sink(bool utc = true, std::size_t lines_max = 100000);
  void write(const record& r) override;
  void flush() override {}
  /// Lines so far (copy; safe while the logger is used from other threads).
  std::vector<std::string> lines() const;
  /// Only the text parts ("connect from ..."), with severity prefixes, no stamp.
  std::vector<std::string> texts() const;
  std::size_t dropped() const;

 private:
  mutable std::mutex mutex_;
  std::size_t lines_max_;
  std::size_t dropped_ = 0;
  syslog_time_cache times_;
  std::vector<std::string> lines_;
  std::vector<std::string> texts_;
};

struct logger_options {
  std::string hostname = "localhost";  // myhostname; only the first label is shown
  /// Wall clock for stamps; required (the CLI passes system_clock::now, the simulation its own).
  std::function<std::chrono::system_clock::time_point()> wall_clock;
  std::size_t text_bytes_max = 2000;  // Postfix MSG_LOGGER_RECLEN
};

class logger {
 public:
  explicit logger(logger_options options);
  ~logger();
  logger(const logger&) = delete;
  logger& operator=(const logger&) = delete;

  void add_sink(std::unique_ptr<sink> s);
  /// Stamps and writes one line to every sink.
  void write(const origin& from, severity level, std::string_view text);
  void info(const origin& from, std::string_view text) { write(from, severity::info, text); }
  void warning(const origin& from, std::string_view text) { write(from, severity::warning, text); }
  void error(const origin& from, std::string_view text) { write(from, severity::error, text); }
  void flush();
  /// Batched writing: while a hook is installed, sinks may hold lines (sink::set_batching) and
  /// the logger calls `request_flush` once after the first line of each batch; whoever installed
  /// it must then call flush() soon. The daemon posts that flush to its io_context, so the lines
  /// of one event-loop turn, from any thread, leave in one write(2). The hook runs on the
  /// logging thread with the logger's lock held: it may only schedule (e.g. asio::post), never
  /// log or flush itself. An empty function removes the hook and flushes; without a hook every
  /// sink behaves as configured (a flush_each_line sink writes each line at once).
  void set_flush_hook(std::function<void()> request_flush);
  /// Per thread: while batching, a batch that starts on a thread with a hook of its own asks
  /// that hook instead of the logger's, so the flush can run on that thread's own loop (e.g.
  /// net::log_flush_scheduler on its io_context) and another thread's event loop is not woken
  /// just to write log lines. Same contract as set_flush_hook's `request_flush`. Empty: the
  /// calling thread has none (the default).
  static void set_thread_flush_hook(std::function<void()> request_flush);
  /// The first sink error, if any (for the CLI to report at exit).
  std::error_code sink_error() const;
  const std::string& host() const noexcept { return host_; }

 private:
  mutable std::mutex mutex_;
  logger_options options_;
  std::string host_;
  std::vector<std::unique_ptr<sink>> sinks_;
  std::function<void()> flush_hook_;
  bool flush_requested_ = false;  // the hook was called and no flush() has happened since
};

// ---------------------------------------------------------------------------------------------
// Text of Postfix smtpd's log lines (Postfix 3.7, observed in testdata/log/). Each returns the
// text part only; log it with logger::info (or warning where noted).

/// "name[addr]" as smtpd's namaddr (IPv6 addresses without "ipv6:").
std::string client_namaddr(std::string_view name, std::string_view addr);
/// "connect from name[addr]"
std::string connect_from(std::string_view name, std::string_view addr);
/// "QID: client=name[addr]" + ", sasl_method=M, sasl_username=U" when authenticated
/// (sasl_method non-empty) + ", sasl_sender=S" when MAIL FROM had a non-empty AUTH=.
std::string client_line(std::string_view queue_id, std::string_view name, std::string_view addr,
                        std::string_view sasl_method = {}, std::string_view sasl_username = {},
                        std::string_view sasl_sender = {});

/// Context of a reject line; optional parts are omitted when absent, as Postfix does.
struct reject_context {
  std::string queue_id;           // empty → "NOQUEUE"
  std::string action = "reject";  // "reject", "defer"... as smtpd_check's log_whatsup
  std::string stage;  // where: "CONNECT", "HELO", "EHLO", "MAIL", "RCPT", "DATA", "END-OF-MESSAGE"
  std::string name;
  std::string addr;
  std::string reply;  // first reply line, e.g. "554 5.7.1 <c@d>: Relay access denied"
  std::optional<std::string> sender;     // from=<...>
  std::optional<std::string> recipient;  // to=<...>
  std::optional<std::string> protocol;   // proto=ESMTP
  std::optional<std::string> helo;       // helo=<...>
};
/// "NOQUEUE: reject: RCPT from name[addr]: <reply>; from=<s> to=<r> proto=ESMTP helo=<h>"
std::string reject_line(const reject_context& c);
/// Logged as a warning: "name[addr]: SASL PLAIN authentication failed: <reason>" plus
/// ", sasl_username=U" when the username is known (Postfix 3.7).
std::string sasl_auth_failed(std::string_view name, std::string_view addr,
                             std::string_view mechanism, std::string_view reason,
                             std::string_view sasl_username = {});
/// "disconnect from name[addr] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"; `command_counts` is
/// server_session::command_counts() ("commands=0/0" when nothing was sent).
std::string disconnect_from(std::string_view name, std::string_view addr,
                            std::string_view command_counts);
/// "timeout after DATA from name[addr]" (`command` = server_session::last_command(), "CONNECT"
/// before any command).
std::string timeout_after(std::string_view command, std::string_view name, std::string_view addr);
/// "lost connection after RCPT from name[addr]"
std::string lost_connection_after(std::string_view command, std::string_view name,
                                  std::string_view addr);
/// "too many errors after RCPT from name[addr]"
std::string too_many_errors_after(std::string_view command, std::string_view name,
                                  std::string_view addr);
/// "improper command pipelining after EHLO from name[addr]: MAIL FROM:<a@b>\r\nDATA\r\n": the
/// pending input is shown with C escapes (\r, \n, \t, \\, \ooo), at most pending_bytes_max
/// input bytes (Postfix's smtpd shows the first 100 bytes it has buffered).
std::string improper_pipelining_after(std::string_view command, std::string_view name,
                                      std::string_view addr, std::string_view pending_input,
                                      std::size_t pending_bytes_max = 100);

}  // namespace relaylab::log
