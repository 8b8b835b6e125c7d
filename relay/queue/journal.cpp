#include "relay/queue/journal.hpp"

#include "relay/queue/queue_file.hpp"

#include <cstdio>

namespace relaylab::queue {
namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint32_t get_u32(std::string_view b) noexcept {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(b[static_cast<std::size_t>(i)]);
  return v;
}

// Writes the header in front of a payload that is already at out[start + header ...].
void seal(std::string& out, std::size_t start, journal_record type) {
  const std::size_t payload = out.size() - start - journal_record_header_bytes;
  std::string head;
  head.push_back(static_cast<char>(type));
  put_u32(head, static_cast<std::uint32_t>(payload));
  std::uint32_t crc = crc32c(std::string_view(head));
  crc = crc32c(std::string_view(out).substr(start + journal_record_header_bytes), crc);
  put_u32(head, crc);
  out.replace(start, journal_record_header_bytes, head);
}

std::size_t begin_record(std::string& out, std::string_view queue_id) {
  const std::size_t start = out.size();
  out.append(journal_record_header_bytes, '\0');
  out.push_back(static_cast<char>(queue_id.size()));
  out.append(queue_id);
  return start;
}

}  // namespace

std::size_t append_journal_message(std::string& out, std::string_view queue_id,
                                   std::string_view image) {
  const std::size_t start = begin_record(out, queue_id);
  const std::size_t image_at = out.size();
  out.append(image);
  seal(out, start, journal_record::message);
  return image_at;
}

void append_journal_gone(std::string& out, std::string_view queue_id) {
  const std::size_t start = begin_record(out, queue_id);
  seal(out, start, journal_record::gone);
}

std::uint64_t scan_journal(std::string_view bytes,
                           const std::function<void(const journal_entry&)>& f) {
  std::size_t at = 0;
  while (bytes.size() - at >= journal_record_header_bytes) {
    const char type = bytes[at];
    if (type != static_cast<char>(journal_record::message) &&
        type != static_cast<char>(journal_record::gone))
      break;
    const std::uint32_t len = get_u32(bytes.substr(at + 1, 4));
    if (len > bytes.size() - at - journal_record_header_bytes || len < 1) break;
    const std::string_view payload = bytes.substr(at + journal_record_header_bytes, len);
    std::uint32_t crc = crc32c(bytes.substr(at, 5));
    crc = crc32c(payload, crc);
    if (crc != get_u32(bytes.substr(at + 5, 4))) break;
    const auto id_bytes = static_cast<unsigned char>(payload[0]);
    if (id_bytes + 1u > payload.size()) break;
    journal_entry e;
    e.type = static_cast<journal_record>(type);
    e.queue_id = payload.substr(1, id_bytes);
    if (e.type == journal_record::message) {
      e.image = payload.substr(1 + id_bytes);
      e.image_offset = at + journal_record_header_bytes + 1 + id_bytes;
    } else if (payload.size() != 1u + id_bytes) {
      break;
    }
    f(e);
    at += journal_record_header_bytes + len;
  }
  return at;
}

std::string journal_segment_name(std::uint64_t sequence) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "J%016llx", static_cast<unsigned long long>(sequence));
  return buf;
}

std::uint64_t parse_journal_segment_name(std::string_view name) noexcept {
  if (name.size() != 17 || name[0] != 'J') return 0;
  std::uint64_t v = 0;
  for (char c : name.substr(1)) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return 0;
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

}  // namespace relaylab::queue
