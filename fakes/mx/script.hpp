// The fake MX's behaviour script: what to answer at each SMTP stage and for each recipient.
// Format: docs/fakes.md ("Fake MX scripts"). Parsing never throws; errors name file:line:column.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::fakes::mx {

/// The points where a script can intervene, in SMTP order.
enum class stage { connect, helo, mail, rcpt, data, dot };
inline constexpr std::size_t stage_count = 6;
std::string_view to_string(stage s) noexcept;

/// What to do when a rule fires.
struct action {
  enum class kind { accept, reply, disconnect, hang };
  kind what = kind::accept;
  std::string reply;  // kind::reply: the full reply line, e.g. "550 5.1.1 <b@x>: ..."
  std::chrono::milliseconds delay{0};  // wait this long (the MX's clock) before answering
};

/// One `stage ...` or `rcpt ...` line.
struct rule {
  stage where = stage::connect;
  std::string recipient;  // for `rcpt ADDR` rules: the address, compared case-insensitively
  action act;
  /// Fires only for the first `times` matching commands of the whole server run (a fail count:
  /// tests loop n = 0, 1, 2 ... until the operation succeeds); nullopt = always.
  std::optional<std::uint64_t> times;
  std::size_t line = 0;
};

struct user {
  std::string name;
  std::string password;
};

struct script {
  std::string hostname = "mx.fake.example";
  std::string banner;       // "" = "<hostname> ESMTP relaylab-fake-mx"
  std::vector<rule> rules;  // stage rules first match wins, in file order
  /// Greylisting: tempfail the first `greylist_attempts` RCPTs per (client address, sender,
  /// recipient) triple with `greylist_reply` (%s = the recipient).
  std::uint64_t greylist_attempts = 0;
  std::string greylist_reply = "450 4.2.0 <%s>: Recipient address rejected: Greylisted";
  std::size_t greylist_entries_max = 100000;
  /// Concurrent sessions beyond this get "421 4.7.0 <hostname> Error: too many connections".
  std::optional<std::size_t> sessions_max;
  /// At most rate_messages accepted messages per rate_window (the MX clock); MAIL FROM beyond
  /// that is answered with rate_code (421 closes the session, 451 does not).
  std::optional<std::uint64_t> rate_messages;
  std::chrono::milliseconds rate_window{60000};
  int rate_code = 451;
  /// AUTH (PLAIN and LOGIN against `users`, in-process; see docs/fakes.md).
  std::vector<user> users;
  bool auth_required = false;
  std::chrono::milliseconds timeout{300000};  // idle timeout, bounds `hang` too
  std::chrono::milliseconds error_sleep{0};   // smtpd_error_sleep_time equivalent
  std::uint64_t message_size_max = 10240000;  // SIZE; 0 = unlimited
  std::size_t mailbox_messages_max = 100000;  // content kept in memory beyond: counted only
};

struct parse_error {
  std::string file;
  std::size_t line = 0;
  std::size_t column = 0;
  std::string message;
  /// "file:line:column: message"
  std::string to_string() const;
};

/// Parses script text. `file` is used in error messages only. On error returns nullopt and
/// fills `error` (the first problem found). Errors: unknown directive, bad stage, bad duration,
/// bad number, unterminated quote, a reply that is not "[2-5]NN text" or whose enhanced status
/// code class differs from the reply code's class, trailing words.
std::optional<script> parse_script(std::string_view text, std::string_view file,
                                   parse_error& error);
/// Reads and parses a file (at most script_bytes_max). Errors: as parse_script, or the file
/// cannot be read (line 0).
std::optional<script> load_script(const std::string& path, parse_error& error);
inline constexpr std::size_t script_bytes_max = 1 << 20;

/// "5s", "250ms", "2m", "1h", "0" → milliseconds; nullopt if malformed or above a day.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace relaylab::fakes::mx
