// Scripted SMTP dialogues: transcript files with client lines to send and reply patterns to
// expect, played over any net::byte_stream (TCP or simulated).
//
// The format is tests/oracle/dialogue.py's (.dlg files are shared with the differential suite)
// plus two extensions: `S:` lines before the first client line match the greeting, and
// `S~: REGEX` matches a reply with an ECMAScript regular expression (whole reply, lines joined
// by "\n"). Full description: docs/fakes.md ("Dialogue files").
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it

#include "relay/net/stream.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::fakes::client {

struct pattern {
  std::string text;
  bool regex = false;
  std::size_t line = 0;
};

/// One write of the client and the reply patterns after it.
struct dialogue_step {
  std::string data;                // bytes to send in one write
  std::vector<std::string> shown;  // the file's client lines, for transcripts
  std::vector<pattern> patterns;
  std::size_t line = 0;
};

struct dialogue {
  std::string file;
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<pattern> greeting;  // S: lines before any client line
  std::vector<dialogue_step> steps;
  /// `client: outside` (dialogue.py): send XCLIENT ADDR=203.0.113.9 NAME=unknown first.
  bool outside_client = false;
  std::string header(std::string_view key) const;
};

struct dialogue_error {
  std::string file;
  std::size_t line = 0;
  std::size_t column = 0;
  std::string message;
  std::string to_string() const;  // "file:line:column: message"
};

inline constexpr std::size_t repeat_max = 100000;
inline constexpr std::size_t macro_repeat_max = 1000000;
inline constexpr std::size_t dialogue_bytes_max = 64 << 20;

/// Parses dialogue text. Errors (nullopt, `error` set): a line that is neither header, comment
/// nor C:/P:/R:/S:/S~:, an unknown escape, a bad repeat count, C:*N, a bad regex.
std::optional<dialogue> parse_dialogue(std::string_view text, std::string_view file,
                                       dialogue_error& error);
std::optional<dialogue> load_dialogue(const std::string& path, dialogue_error& error);
/// Dialogue escapes (\r \n \t \0 \xHH \\ {{text*N}}) to bytes; false on a bad escape with
/// `column` (1-based within `text`) and `message` set.
bool unescape(std::string_view text, std::string& out, std::size_t& column, std::string& message);

/// '*' matches any text (newlines too); everything else is literal (dialogue.py's glob).
bool glob_match(std::string_view pattern, std::string_view text);

struct play_options {
  net::duration reply_timeout{10000};
  std::size_t reply_lines_max = 1000;
  std::size_t read_bytes_max = 64 << 20;
};

struct play_result {
  bool ok = true;
  /// "C: ..." / "S: ..." lines as sent and received (markers like "[connection closed]").
  std::vector<std::string> transcript;
  /// One entry per mismatch: "file:LINE: expected S: PATTERN\n  received: REPLY".
  std::vector<std::string> failures;
};

/// Plays `d` over `stream` (already connected; `d` and `stream` must outlive the coroutine). Never
/// fails on server behaviour: timeouts and closes become "[no reply within Ns]" / "[connection
/// closed]" replies that patterns see.
boost::asio::awaitable<play_result> play(const dialogue& d, net::byte_stream& stream,
                                         play_options options = {});

}  // namespace relaylab::fakes::client
