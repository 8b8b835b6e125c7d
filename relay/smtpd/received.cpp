#include "relay/smtpd/received.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace relaylab::smtpd {

std::string format_mail_date(std::chrono::system_clock::time_point t, bool utc) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  // One formatting per second and thread: every message of that second reuses it.
  struct last_date {
    std::time_t secs = -1;
    bool utc = false;
    std::string text;
  };
  thread_local last_date last;
  if (last.secs == secs && last.utc == utc) return last.text;
  std::tm tm{};
  if (utc) {
    gmtime_r(&secs, &tm);
  } else {
    localtime_r(&secs, &tm);
  }
  char head[64];
  // Postfix uses %e: a single-digit day is padded with a space ("Sat,  7 Nov").
  std::strftime(head, sizeof head, "%a, %e %b %Y %H:%M:%S ", &tm);
  long offset = utc ? 0 : tm.tm_gmtoff;
  char sign = offset < 0 ? '-' : '+';
  if (offset < 0) offset = -offset;
  char zone[64];
  std::snprintf(zone, sizeof zone, "%c%02ld%02ld (%s)", sign, offset / 3600, (offset % 3600) / 60,
                utc ? "UTC" : tm.tm_zone);
  last.secs = secs;
  last.utc = utc;
  last.text = std::string(head) + zone;
  return last.text;
}

std::string format_received_header(const received_header_fields& f) {
  std::string addr = f.client_addr;
  if (addr.find(':') != std::string::npos) addr = "IPv6:" + addr;
  std::string out;
  out.reserve(256);
  out += "Received: from ";
  out += f.helo.empty() ? f.client_name : f.helo;
  out += " (" + f.client_name + " [" + addr + "])\r\n";
  if (!f.tls_note.empty()) {
    out += '\t';
    for (char c : f.tls_note) {
      if (c == '\n')
        out += "\r\n";
      else
        out += c;
    }
    out += "\r\n";
  }
  out += "\tby " + f.myhostname + " (" + f.mail_name + ") with " + f.protocol + " id " + f.queue_id;
  std::string date = format_mail_date(f.time, f.utc);
  if (!f.recipient.empty()) {
    out += "\r\n\tfor <" + f.recipient + ">; " + date + "\r\n";
  } else {
    out += ";\r\n\t" + date + "\r\n";
  }
  return out;
}

void header_scanner::finish(std::string& message_id) {
  if (!in_body_) finish_line(message_id);
  in_body_ = true;
}

void header_scanner::reset() { *this = header_scanner(); }

namespace {

// The header's name is `name` (lower case, with the colon), in any case.
bool header_named(std::string_view line, std::string_view name) {
  if (line.size() < name.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  return true;
}

}  // namespace

void header_scanner::finish_line(std::string& message_id) {
  if (header_named(line_, "received:")) ++received_;
  static constexpr std::string_view name = "message-id:";
  if (overflow_ || found_ || !header_named(line_, name)) return;
  std::string_view value(line_);
  value.remove_prefix(name.size());
  std::string collapsed;
  for (char c : value)
    if (c != '\r' && c != '\n' && c != '\t' && c != ' ') collapsed += c;
  message_id = collapsed;
  found_ = true;
}

void header_scanner::feed(std::string_view bytes, std::string& message_id) {
  for (std::size_t i = 0; i < bytes.size() && !in_body_; ++i) {
    char c = bytes[i];
    if (at_line_start_) {
      at_line_start_ = false;
      if (c == ' ' || c == '\t') {
        // Continuation of the current header: keep collecting.
      } else {
        finish_line(message_id);
        line_.clear();
        overflow_ = false;
        if (c == '\r' || c == '\n') {
          in_body_ = true;  // empty line: end of the header section
          break;
        }
      }
    }
    if (c == '\n') {
      at_line_start_ = true;
      continue;
    }
    if (c == '\r') continue;
    if (line_.size() < line_bytes_max) {
      line_ += c;
    } else {
      overflow_ = true;
    }
  }
}

void content_cleanup::emit(char c, std::string& out) {
  if (at_line_start_) {
    at_line_start_ = false;
    // A header line not starting with white space begins a new logical header.
    if (!in_body_ && c != ' ' && c != '\t') header_bytes_ = 0;
  }
  line_empty_ = false;
  if (!in_body_ && header_bytes_max_ != 0 && ++header_bytes_ > header_bytes_max_) return;
  out += c;
  line_written_ = true;
}

void content_cleanup::emit_run(std::string_view run, std::string& out) {
  if (run.empty()) return;
  if (at_line_start_) {
    at_line_start_ = false;
    if (!in_body_ && run[0] != ' ' && run[0] != '\t') header_bytes_ = 0;
  }
  line_empty_ = false;
  std::size_t take = run.size();
  if (!in_body_ && header_bytes_max_ != 0) {
    // Bytes past header_size_limit are dropped, but still counted.
    take =
        header_bytes_ >= header_bytes_max_ ? 0 : std::min(take, header_bytes_max_ - header_bytes_);
    header_bytes_ += run.size();
  }
  if (take == 0) return;
  out.append(run.substr(0, take));
  line_written_ = true;
}

void content_cleanup::end_line(std::string& out) {
  if (!in_body_ && line_empty_) in_body_ = true;  // the empty line ends the header section
  // A header line dropped whole (past header_size_limit) leaves no empty line behind.
  if (in_body_ || line_written_) out += "\r\n";
  at_line_start_ = true;
  line_empty_ = true;
  line_written_ = false;
}

void content_cleanup::feed(std::string_view bytes, std::string& out) {
  out.reserve(out.size() + bytes.size());
  std::size_t i = 0;
  while (i < bytes.size()) {
    const char c = bytes[i];
    if (pending_cr_) {
      pending_cr_ = false;
      if (c == '\n') {
        end_line(out);
        ++i;
        continue;
      }
      emit(replace_stray_ ? ' ' : '\r', out);  // then `c` as usual
    }
    if (c == '\r') {
      pending_cr_ = true;
      ++i;
    } else if (c == '\n') {
      end_line(out);  // a bare LF ends the line like CRLF
      ++i;
    } else {
      // Everything up to the next CR or LF in one piece.
      std::size_t j = i + 1;
      while (j < bytes.size() && bytes[j] != '\r' && bytes[j] != '\n') ++j;
      emit_run(bytes.substr(i, j - i), out);
      i = j;
    }
  }
}

void content_cleanup::finish(std::string& out) {
  if (pending_cr_) emit(replace_stray_ ? ' ' : '\r', out);
  pending_cr_ = false;
}

}  // namespace relaylab::smtpd
