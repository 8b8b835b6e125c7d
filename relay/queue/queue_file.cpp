#include "relay/queue/queue_file.hpp"

#include "relay/queue/error.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

namespace relaylab::queue {
namespace {

constexpr std::string_view magic = "RLQF0001";

// Slice-by-8 tables for the reflected Castagnoli polynomial.
struct crc_tables {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  constexpr crc_tables() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[0][i] = c;
    }
    for (std::size_t s = 1; s < 8; ++s)
      for (std::size_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};
constexpr crc_tables tables;

std::uint32_t crc_soft(const unsigned char* p, std::size_t n, std::uint32_t c) noexcept {
  const auto& t = tables.t;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);  // little-endian hosts only (x86-64, aarch64)
    w ^= c;
    c = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^ t[4][(w >> 24) & 0xff] ^
        t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^ t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) std::uint32_t crc_hw(const unsigned char* p, std::size_t n,
                                                       std::uint32_t c) noexcept {
  std::uint64_t c64 = c;
  while (n >= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    c64 = __builtin_ia32_crc32di(c64, w);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c64);
  while (n-- > 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}
const bool have_hw = __builtin_cpu_supports("sse4.2");
#endif

void put_u8(std::string& s, std::uint8_t v) { s.push_back(static_cast<char>(v)); }
void put_u32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_record(std::string& s, record_type type, std::string_view payload) {
  s.push_back(static_cast<char>(type));
  put_u32(s, static_cast<std::uint32_t>(payload.size()));
  s.append(payload);
}
std::int64_t to_us(time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
time_point from_us(std::int64_t us) {
  // Untrusted bytes: clamp to what a system_clock time_point can hold (no overflow).
  using rep = time_point::duration::rep;
  constexpr auto per_us =
      std::chrono::duration_cast<time_point::duration>(std::chrono::microseconds(1)).count();
  constexpr std::int64_t us_max = std::numeric_limits<rep>::max() / per_us;
  us = std::clamp<std::int64_t>(us, -us_max, us_max);
  return time_point(time_point::duration(static_cast<rep>(us) * per_us));
}

std::string status_record(record_type type, std::string_view payload) {
  std::string s;
  s.reserve(payload.size() + 9);
  put_record(s, type, payload);
  put_u32(s, crc32c(s));
  return s;
}

// Bounds-checked little-endian reader over untrusted bytes.
class reader {
 public:
  explicit reader(std::string_view data) : data_(data) {}
  std::size_t pos() const { return pos_; }
  std::size_t left() const { return data_.size() - pos_; }
  bool u8(std::uint8_t& v) {
    if (left() < 1) return false;
    v = static_cast<std::uint8_t>(data_[pos_++]);
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (left() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t(std::uint8_t(data_[pos_ + i])) << (8 * i);
    pos_ += 4;
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (left() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t(std::uint8_t(data_[pos_ + i])) << (8 * i);
    pos_ += 8;
    return true;
  }
  bool bytes(std::size_t n, std::string_view& v) {
    if (left() < n) return false;
    v = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

std::error_code corrupt(std::string& why, std::string text) {
  why = std::move(text);
  return errc::corrupt;
}

}  // namespace

std::uint32_t crc32c(std::string_view data, std::uint32_t crc) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  std::uint32_t c = ~crc;
#if defined(__x86_64__)
  c = have_hw ? crc_hw(p, data.size(), c) : crc_soft(p, data.size(), c);
#else
  c = crc_soft(p, data.size(), c);
#endif
  return ~c;
}

encoded_base encode_base(const envelope& env, std::uint64_t content_bytes,
                         std::uint32_t content_crc) {
  encoded_base out;
  std::string& h = out.head;
  std::size_t estimate = 64 + env.queue_id.size() + env.sender.size();
  for (const auto& [k, v] : env.attributes) estimate += 6 + k.size() + v.size();
  for (const auto& r : env.recipients) estimate += 14 + r.address.size() + r.orcpt.size();
  h.reserve(estimate);
  h.append(magic);
  put_record(h, record_type::queue_id, env.queue_id);
  std::string scratch;
  put_u64(scratch, static_cast<std::uint64_t>(to_us(env.arrival)));
  put_record(h, record_type::arrival, scratch);
  put_record(h, record_type::sender, env.sender);
  for (const auto& [name, value] : env.attributes) {
    scratch.assign(name);
    scratch += '=';
    scratch += value;
    put_record(h, record_type::attribute, scratch);
  }
  for (const auto& r : env.recipients) {
    scratch.clear();
    put_u8(scratch, r.notify);
    put_u32(scratch, static_cast<std::uint32_t>(r.orcpt.size()));
    scratch += r.orcpt;
    scratch += r.address;
    put_record(h, record_type::recipient, scratch);
  }
  h.push_back(static_cast<char>(record_type::content));
  put_u64(h, content_bytes);
  put_u32(h, content_crc);
  out.tail.push_back(static_cast<char>(record_type::end));
  put_u32(out.tail, crc32c(h));
  return out;
}

std::string encode_done(std::uint32_t index, done_outcome outcome) {
  std::string p;
  put_u32(p, index);
  put_u8(p, static_cast<std::uint8_t>(outcome));
  return status_record(record_type::done, p);
}

std::string encode_deferred(std::uint32_t attempts, time_point next_attempt) {
  std::string p;
  put_u32(p, attempts);
  put_u64(p, static_cast<std::uint64_t>(to_us(next_attempt)));
  return status_record(record_type::deferred, p);
}

std::string encode_reason(std::uint32_t index, std::string_view text) {
  std::string p;
  put_u32(p, index);
  p.append(text.substr(0, record_bytes_max - 4));
  return status_record(record_type::reason, p);
}

std::string encode_failure(const recipient_failure& f) {
  const std::string_view dsn = std::string_view(f.dsn).substr(0, failure_dsn_bytes_max);
  const std::string_view relay = std::string_view(f.relay).substr(0, failure_relay_bytes_max);
  std::string p;
  put_u32(p, f.index);
  put_u8(p, static_cast<std::uint8_t>(f.outcome));
  put_u32(p, static_cast<std::uint32_t>(dsn.size()));
  p.append(dsn);
  put_u32(p, static_cast<std::uint32_t>(relay.size()));
  p.append(relay);
  p.append(std::string_view(f.reason).substr(0, record_bytes_max - p.size()));
  return status_record(record_type::failed, p);
}

std::error_code decode(std::string_view file, decoded_file& out, std::string& why) {
  out = decoded_file{};
  why.clear();
  if (file.substr(0, magic.size()) != magic) return corrupt(why, "bad magic");
  reader r(file);
  std::string_view skip;
  r.bytes(magic.size(), skip);
  bool have_id = false, have_arrival = false, have_sender = false;
  for (;;) {
    std::uint8_t type;
    if (!r.u8(type)) return corrupt(why, "truncated envelope");
    if (type == static_cast<std::uint8_t>(record_type::content)) break;
    std::uint32_t len;
    std::string_view payload;
    if (!r.u32(len)) return corrupt(why, "truncated envelope");
    if (len > record_bytes_max) return corrupt(why, "envelope record too long");
    if (!r.bytes(len, payload)) return corrupt(why, "truncated envelope");
    switch (static_cast<record_type>(type)) {
      case record_type::queue_id:
        out.env.queue_id.assign(payload);
        have_id = true;
        break;
      case record_type::arrival: {
        reader p(payload);
        std::uint64_t us;
        if (len != 8 || !p.u64(us)) return corrupt(why, "bad arrival record");
        out.env.arrival = from_us(static_cast<std::int64_t>(us));
        have_arrival = true;
        break;
      }
      case record_type::sender:
        out.env.sender.assign(payload);
        have_sender = true;
        break;
      case record_type::attribute: {
        const auto eq = payload.find('=');
        if (eq == std::string_view::npos) return corrupt(why, "bad attribute record");
        out.env.attributes.emplace_back(std::string(payload.substr(0, eq)),
                                        std::string(payload.substr(eq + 1)));
        break;
      }
      case record_type::recipient: {
        reader p(payload);
        recipient rc;
        std::uint32_t orcpt_len;
        std::string_view orcpt;
        if (!p.u8(rc.notify) || !p.u32(orcpt_len) || !p.bytes(orcpt_len, orcpt))
          return corrupt(why, "bad recipient record");
        rc.orcpt.assign(orcpt);
        rc.address.assign(payload.substr(p.pos()));
        if (out.env.recipients.size() == recipients_decode_max)
          return corrupt(why, "too many recipients");
        out.env.recipients.push_back(std::move(rc));
        break;
      }
      default:
        return corrupt(why, "unknown envelope record type " + std::to_string(type));
    }
  }
  std::uint64_t content_bytes;
  std::uint32_t content_crc;
  if (!r.u64(content_bytes) || !r.u32(content_crc)) return corrupt(why, "truncated envelope");
  const std::size_t head_bytes = r.pos();
  if (content_bytes > r.left()) return corrupt(why, "truncated content");
  out.content_offset = head_bytes;
  out.content_bytes = content_bytes;
  std::string_view content;
  r.bytes(static_cast<std::size_t>(content_bytes), content);
  std::uint8_t end_type;
  std::uint32_t base_crc;
  if (!r.u8(end_type) || !r.u32(base_crc)) return corrupt(why, "truncated end record");
  if (end_type != static_cast<std::uint8_t>(record_type::end)) return corrupt(why, "no end record");
  if (crc32c(file.substr(0, head_bytes)) != base_crc) return corrupt(why, "envelope checksum");
  if (crc32c(content) != content_crc) return corrupt(why, "content checksum");
  if (!have_id || !have_arrival || !have_sender) return corrupt(why, "incomplete envelope");
  out.status.resize(out.env.recipients.size());

  // Status records.
  for (;;) {
    const std::size_t start = r.pos();
    if (r.left() == 0) break;
    std::uint8_t type;
    std::uint32_t len, crc;
    std::string_view payload;
    const bool whole =
        r.u8(type) && r.u32(len) && len <= record_bytes_max && r.bytes(len, payload) && r.u32(crc);
    if (!whole || crc32c(file.substr(start, 5 + payload.size())) != crc) {
      // Bytes after this record mean the damage is not an unsynced tail.
      const std::size_t record_end = whole ? r.pos() : file.size();
      if (record_end < file.size()) return corrupt(why, "status record checksum");
      out.torn_tail = true;
      out.file_bytes = start;
      return {};
    }
    reader p(payload);
    std::uint32_t index;
    switch (static_cast<record_type>(type)) {
      case record_type::done: {
        std::uint8_t outcome;
        if (!p.u32(index) || !p.u8(outcome) || outcome > 2 || index >= out.status.size())
          return corrupt(why, "bad done record");
        out.status[index].done = true;
        out.status[index].outcome = static_cast<done_outcome>(outcome);
        break;
      }
      case record_type::deferred: {
        std::uint64_t us;
        if (!p.u32(out.attempts) || !p.u64(us)) return corrupt(why, "bad deferred record");
        out.next_attempt = from_us(static_cast<std::int64_t>(us));
        break;
      }
      case record_type::reason:
        if (!p.u32(index) || index >= out.status.size()) return corrupt(why, "bad reason record");
        out.status[index].reason.assign(payload.substr(4));
        break;
      case record_type::failed: {
        recipient_failure f;
        std::uint8_t outcome;
        std::uint32_t dsn_bytes, relay_bytes;
        std::string_view dsn, relay;
        if (!p.u32(f.index) || !p.u8(outcome) || outcome < 1 || outcome > 2 ||
            f.index >= out.status.size() || !p.u32(dsn_bytes) || !p.bytes(dsn_bytes, dsn) ||
            !p.u32(relay_bytes) || !p.bytes(relay_bytes, relay))
          return corrupt(why, "bad failed record");
        f.outcome = static_cast<done_outcome>(outcome);
        f.dsn.assign(dsn);
        f.relay.assign(relay);
        f.reason.assign(payload.substr(p.pos()));
        out.status[f.index].failure = std::move(f);
        break;
      }
      default:
        return corrupt(why, "unknown status record type " + std::to_string(type));
    }
  }
  out.file_bytes = file.size();
  return {};
}

}  // namespace relaylab::queue
