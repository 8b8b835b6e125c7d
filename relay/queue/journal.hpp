// The queue journal's record format: pure functions, no I/O.
//
// The journal (spool_options::journal) lets one fdatasync make a whole group of messages
// durable: each group commit appends the new queue files, whole, to the current segment file
// (journal/J<16 hex digits>) instead of writing one file per message. A segment is a sequence
//
//   record := type u32 payload_bytes u32 crc32c(type, payload_bytes, payload) payload
//   'Q' message: payload = u8 id_bytes, queue ID, queue file image (queue_file.hpp)
//   'X' gone:    payload = u8 id_bytes, queue ID   -- the message left the queue
//
// Integers are little-endian. Appends are fdatasynced in order, so only a segment's tail can
// be torn: a scan stops at the first record that runs past the end or fails its checksum, and
// everything before it is valid.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace relaylab::queue {

enum class journal_record : char { message = 'Q', gone = 'X' };

inline constexpr std::string_view journal_directory = "journal";
inline constexpr std::size_t journal_record_header_bytes = 9;

/// Appends a 'Q' record to `out`; returns the offset of the image within `out`.
std::size_t append_journal_message(std::string& out, std::string_view queue_id,
                                   std::string_view image);
/// Appends an 'X' record to `out`.
void append_journal_gone(std::string& out, std::string_view queue_id);

struct journal_entry {
  journal_record type = journal_record::message;
  std::string_view queue_id;
  std::string_view image;          // 'Q' only
  std::uint64_t image_offset = 0;  // within the scanned bytes
};

/// Calls `f` for each valid record in order; returns the length of the valid prefix.
std::uint64_t scan_journal(std::string_view bytes,
                           const std::function<void(const journal_entry&)>& f);

/// "J" + 16 hex digits, and back; parse returns 0 for anything else.
std::string journal_segment_name(std::uint64_t sequence);
std::uint64_t parse_journal_segment_name(std::string_view name) noexcept;

}  // namespace relaylab::queue
