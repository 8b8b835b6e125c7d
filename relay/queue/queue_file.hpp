// The queue file format: encoding, decoding and checksums. Pure functions, no I/O.
//
// A queue file is an immutable base image followed by appended status records:
//
//   base   := magic "RLQF0001"
//             record*                         -- envelope, any order, see record_type
//             'M' u64 content_bytes u32 crc32c(content) content
//             'E' u32 crc32c(magic .. the 'M' record's crc field)
//   status := ( type u32 payload_bytes payload u32 crc32c(type .. payload) )*
//
// Envelope records are `type u32 payload_bytes payload`; integers are little-endian; strings
// are raw bytes. The content checksum is folded into the base checksum, so one 'E' check
// covers the whole base. A base that fails to parse or verify is corrupt. Status records are
// each checksummed: a torn *last* record is an append that never became durable and is
// ignored; a bad record followed by more bytes is corruption.
//
// Per-recipient done marks are status records (append + fdatasync), never in-place rewrites,
// so a crash can only lose the mark being written, never damage the base image.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace relaylab::queue {

using time_point = std::chrono::system_clock::time_point;

/// CRC-32C (Castagnoli); `crc` continues a previous result (0 to start).
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0) noexcept;

enum class record_type : char {
  queue_id = 'I',
  arrival = 'T',    // i64 microseconds since the Unix epoch
  sender = 'S',     // envelope sender, "" for the null sender
  attribute = 'A',  // "name=value": client_name, client_address, sasl_username ...
  recipient = 'R',  // u8 notify flags, u32 orcpt bytes, orcpt, address
  content = 'M',
  end = 'E',
  // status records
  done = 'D',      // u32 recipient index, u8 outcome
  deferred = 'F',  // u32 attempts, i64 next attempt (us)
  reason = 'W',    // u32 recipient index, text: why the last attempt failed
  failed = 'B',    // u32 index, u8 outcome, u32 + dsn, u32 + relay, text: a final failure
};

struct recipient {
  std::string address;
  std::string orcpt;        // DSN ORCPT ("rfc822;user@example.com"), may be empty
  std::uint8_t notify = 0;  // DSN NOTIFY bits, opaque to the queue
};

/// How a recipient left the queue; either way it is never attempted again.
enum class done_outcome : std::uint8_t { delivered = 0, bounced = 1, expired = 2 };

/// A final failure recorded before its notification was queued (what Postfix keeps in its
/// bounce logfile): the recipient is never attempted again, and stays undone until the
/// notification is durable and a done mark follows.
struct recipient_failure {
  std::uint32_t index = 0;
  done_outcome outcome = done_outcome::bounced;  // bounced or expired
  std::string dsn;                               // "5.1.1"
  std::string relay;                             // "mx.example[192.0.2.1]:25", "none"
  std::string reason;                            // the diagnostic the notification reports
};

struct recipient_status {
  bool done = false;
  done_outcome outcome = done_outcome::delivered;
  std::string reason;                        // last deferral reason ("" when none)
  std::optional<recipient_failure> failure;  // from the last 'B' record
};

/// Envelope as stored; what the smtpd fills in before commit.
struct envelope {
  std::string queue_id;
  time_point arrival{};
  std::string sender;
  /// Logging facts (client_name, client_address, client_port, helo_name, protocol,
  /// sasl_method, sasl_username, sasl_sender ...), in the order given.
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<recipient> recipients;
};

/// Everything decoded from a queue file except the content bytes themselves.
struct decoded_file {
  envelope env;
  std::uint64_t content_offset = 0;  // file offset of the first content byte
  std::uint64_t content_bytes = 0;
  std::vector<recipient_status> status;  // one per recipient
  std::uint32_t attempts = 0;
  std::optional<time_point> next_attempt;  // from the last 'F' record
  std::uint64_t file_bytes = 0;            // bytes accepted (a torn tail excluded)
  bool torn_tail = false;
};

/// The three pieces of a base image, ready for one gather write: `head` (magic, envelope
/// records, content record header), the caller's content (not copied), and `tail` ('E').
struct encoded_base {
  std::string head;
  std::string tail;
};
/// `content_crc` is crc32c(content), computed incrementally by the writer.
encoded_base encode_base(const envelope& env, std::uint64_t content_bytes,
                         std::uint32_t content_crc);

std::string encode_done(std::uint32_t index, done_outcome outcome);
std::string encode_deferred(std::uint32_t attempts, time_point next_attempt);
std::string encode_reason(std::uint32_t index, std::string_view text);
/// dsn and relay are cut to failure_dsn_bytes_max and failure_relay_bytes_max, the reason to
/// what the record limit leaves.
std::string encode_failure(const recipient_failure& f);

/// Decodes and verifies a whole file (base + status records). Errors: errc::corrupt with
/// `why` set (bad magic, truncated base, checksum mismatch, unknown record, recipient index
/// out of range, record limits exceeded).
std::error_code decode(std::string_view file, decoded_file& out, std::string& why);

/// Limits applied when decoding untrusted bytes.
inline constexpr std::size_t record_bytes_max = 64 * 1024;  // every envelope/status record
inline constexpr std::size_t recipients_decode_max = 100000;
inline constexpr std::size_t failure_dsn_bytes_max = 32;
inline constexpr std::size_t failure_relay_bytes_max = 1024;

}  // namespace relaylab::queue
