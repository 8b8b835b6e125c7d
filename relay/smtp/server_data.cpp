// DATA and BDAT: content framing, dot-unstuffing, bare <LF> rules, the end-of-data commit.
#include "relay/smtp/server_session_impl.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "relay/smtp/base64.hpp"

namespace relaylab::smtp {

bool server_session::impl::data(const std::vector<std::string_view>& argv) {
  if (bdat_started) {
    send("503 5.5.1 Error: DATA after BDAT");
    return false;
  }
  if (!in_mail) {
    send("503 5.5.1 Error: need RCPT command");
    return false;
  }
  if (rcpt_count == 0) {
    send("554 5.5.1 Error: no valid recipients");
    return false;
  }
  if (argv.size() != 1) {
    send("501 5.5.4 Syntax: DATA");
    return false;
  }
  if (auto v = h.on_data(cl)) return send_result(*v);
  send("354 End data with <CR><LF>.<CR><LF>");
  m = mode::data;
  at_line_start = true;
  prev_crlf = true;
  pending_cr = false;
  body_bytes = 0;
  size_exceeded = false;
  content_bare_lf = false;
  return true;
}

bool server_session::impl::bdat(const std::vector<std::string_view>& argv) {
  bool last = false;
  if (argv.size() < 2 || argv.size() > 3 || !all_digits(argv[1]) ||
      (argv.size() == 3 && !iequals(argv[2], "LAST"))) {
    // Without a valid count the chunk cannot be skipped: Postfix hangs up.
    send("521 5.5.4 Syntax: BDAT count [LAST]");
    ++error_count;
    close_now("BDAT syntax error");
    return false;
  }
  last = argv.size() == 3;
  std::uint64_t n = 0;
  for (char c : argv[1]) {
    if (n > (std::uint64_t(std::numeric_limits<std::int64_t>::max()) - (c - '0')) / 10) {
      send("521 5.5.4 Syntax: BDAT count [LAST]");
      ++error_count;
      close_now("BDAT syntax error");
      return false;
    }
    n = n * 10 + std::uint64_t(c - '0');
  }
  bdat_left = n;
  chunk_size = n;
  bdat_error.clear();
  bdat_last = last;
  bdat_discard = true;
  m = mode::bdat;
  // Postfix reads (or skips) the whole chunk before it replies.
  if (discarded("CHUNKING")) {
    bdat_error = "502 5.5.1 Error: command not implemented";
    return false;
  }
  if (n == 0 && !last) {
    bdat_error = "551 5.7.1 Null BDAT request";
    return false;
  }
  // After a failed BDAT, Postfix skips the chunks of the transaction up to BDAT LAST or RSET.
  if (bdat_failed) {
    bdat_error = "551 5.0.0 Discarded " + std::to_string(n) + " bytes after earlier error";
    return false;
  }
  if (!in_mail) {
    bdat_error = "503 5.5.1 Error: need RCPT command";
    return false;
  }
  if (rcpt_count == 0) {
    bdat_error = "554 5.5.1 Error: no valid recipients";
    return false;
  }
  if (bdat_rejected) return false;
  if (!bdat_started) {
    if (auto v = h.on_data(cl); v && (v->code() < 200 || v->code() >= 400)) {
      bdat_error = v->text;
      bdat_rejected = true;
      return false;
    }
    bdat_started = true;
    body_bytes = 0;
    size_exceeded = false;
  }
  bdat_discard = false;
  return true;
}

// Reads the bytes of a BDAT chunk; they are content as is (no dot-stuffing, no CRLF rules).
void server_session::impl::scan_bdat() {
  std::string_view p = pending();
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(bdat_left, p.size()));
  if (n > 0) {
    if (!bdat_discard) body(p.data(), n);
    in_pos += n;
    bdat_left -= n;
  }
  if (bdat_left != 0) {
    compact();
    return;
  }
  start_request();  // the chunk is in; the next command is a new request
  m = mode::command;
  if (bdat_discard) {
    send(bdat_error);
    // skip_bdat(): a failed last chunk ends the transaction, another one fails the rest.
    if (bdat_last)
      reset_transaction();
    else
      bdat_failed = true;
    finish_command(c_bdat, false);
    return;
  }
  bdat_total += chunk_size;
  if (bdat_last) {
    m = mode::commit;
    h.on_message_end(cl, size_exceeded);
    return;
  }
  send("250 2.0.0 Ok: " + std::to_string(chunk_size) + " bytes");
  finish_command(c_bdat, true);
}

void server_session::impl::body(const char* p, std::size_t n) {
  if (n == 0) return;
  if (size_exceeded || content_bare_lf) return;
  body_bytes += n;
  if (opt.message_size_limit > 0 && body_bytes > opt.message_size_limit) {
    size_exceeded = true;
    return;
  }
  h.on_body(std::span<const char>(p, n));
}

// The DATA hot path: memchr for LF, hand whole runs of ordinary CRLF lines to on_body in one
// call, and copy nothing. Only dot lines and bare-LF lines break a run.
void server_session::impl::scan_data() {
  const char* base = in.data() + in_pos;
  const char* end = in.data() + in.size();
  const char* run = base;  // start of bytes not yet given to on_body
  const char* cur = base;
  const bool strict = opt.forbid_bare_newline || opt.forbid_bare_newline_reject;
  auto flush = [&](const char* upto) {
    if (upto > run) body(run, static_cast<std::size_t>(upto - run));
    run = upto;
  };
  while (cur < end) {
    if (at_line_start && *cur == '.') {
      // Need the whole line to tell the terminator from a stuffed dot.
      const char* nl =
          static_cast<const char*>(std::memchr(cur, '\n', static_cast<std::size_t>(end - cur)));
      if (nl == nullptr) {
        if (end - cur < 3) break;  // wait: ".\r" may still become the terminator
        flush(cur);
        run = cur + 1;  // unstuff
        at_line_start = false;
        pending_cr = false;
        cur = end;
        break;
      }
      const bool crlf = nl > cur && nl[-1] == '\r';
      const std::size_t len = static_cast<std::size_t>(nl - cur) - (crlf ? 1 : 0);
      if (!crlf && opt.forbid_bare_newline_reject) content_bare_lf = true;
      if (len == 1 && (!strict || (crlf && prev_crlf))) {
        flush(cur);
        in_pos = static_cast<std::size_t>(nl + 1 - in.data());
        end_of_data();
        return;
      }
      flush(cur);
      run = cur + 1;  // unstuff
      cur = nl + 1;
      if (!crlf) {
        flush(nl);
        body("\r\n", 2);
        run = nl + 1;
      }
      prev_crlf = crlf;
      at_line_start = true;
      continue;
    }
    const char* nl =
        static_cast<const char*>(std::memchr(cur, '\n', static_cast<std::size_t>(end - cur)));
    if (nl == nullptr) {
      // Partial line: give it on now, remembering a trailing CR for the next LF.
      pending_cr = end[-1] == '\r';
      at_line_start = false;
      cur = end;
      break;
    }
    const bool crlf = nl > cur ? nl[-1] == '\r' : pending_cr;
    pending_cr = false;
    if (!crlf) {
      if (opt.forbid_bare_newline_reject) content_bare_lf = true;
      flush(nl);
      body("\r\n", 2);
      run = nl + 1;
    }
    prev_crlf = crlf;
    at_line_start = true;
    cur = nl + 1;
  }
  flush(cur);
  in_pos = static_cast<std::size_t>(cur - in.data());
}

// smtpd_forbid_bare_newline = reject in message content: as Postfix 3.7.11, the rest of the
// content is read (only <CR><LF>.<CR><LF> ends it) and dropped, then the message is refused;
// the session goes on unless the code is 521.
void server_session::impl::end_of_data() {
  if (content_bare_lf) {
    m = mode::command;
    const int code = opt.forbid_bare_newline_reject_code;
    send(std::to_string(code) + " 5.5.2 " + opt.myhostname + " Error: bare <LF> received");
    reset_transaction();
    if (code == 521) {
      ++total[c_data];
      close_now("bare <LF> received");
      return;
    }
    finish_command(c_data, false);
    return;
  }
  m = mode::commit;
  h.on_message_end(cl, size_exceeded);
}

}  // namespace relaylab::smtp
