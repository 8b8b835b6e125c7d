// Postfix 3.7.11 smtpd's protocol half. Reply texts were observed on a real Postfix; the golden
// transcripts in testdata/smtp/ record them.

#include "relay/smtp/server_session_impl.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

namespace relaylab::smtp {

int reply::code() const noexcept {
  if (text.size() < 3) return 0;
  int v = 0;
  for (int i = 0; i < 3; ++i) {
    const char c = text[static_cast<std::size_t>(i)];
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  if (text.size() > 3 && text[3] != ' ' && text[3] != '-') return 0;
  return v;
}

// --- output -------------------------------------------------------------------------------
void server_session::impl::send(std::string text) {
  if (discarded("ENHANCEDSTATUSCODES")) strip_enhanced(text);
  if (m == mode::closed && !close_after_held) return;
  if (error_count >= opt.soft_error_limit && opt.error_sleep_time.count() > 0) {
    // Postfix sleeps before every reply once the soft limit is reached; the sans-IO version
    // holds the reply and stops parsing until the deadline passes.
    held += text;
    held += "\r\n";
    held_until = now + std::chrono::duration_cast<timestamp>(opt.error_sleep_time);
    return;
  }
  out += text;
  out += "\r\n";
}

void server_session::impl::strip_enhanced(std::string& text) {
  std::string r;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find("\r\n", pos);
    std::string_view line(text.data() + pos, (eol == std::string::npos ? text.size() : eol) - pos);
    if (line.size() > 4) {
      std::string_view rest = line.substr(4);
      std::size_t sp = rest.find(' ');
      std::string_view code = rest.substr(0, sp);
      const bool enh = sp != std::string_view::npos && code.size() >= 5 &&
                       (code[0] == '2' || code[0] == '4' || code[0] == '5') && code[1] == '.' &&
                       std::count(code.begin(), code.end(), '.') == 2;
      if (enh) {
        r += line.substr(0, 4);
        r += rest.substr(sp + 1);
      } else {
        r += line;
      }
    } else {
      r += line;
    }
    if (eol == std::string::npos) break;
    r += "\r\n";
    pos = eol + 2;
  }
  text = std::move(r);
}

void server_session::impl::close(std::string_view reason) {
  if (m == mode::auth) h.on_auth_abort();
  if (m != mode::closed) {
    m = mode::closed;
    h.on_disconnect(cl, reason);
  }
}

void server_session::impl::compact() {
  if (in_pos > 0 && (in_pos >= in.size() || in_pos > 64 * 1024)) {
    in.erase(0, in_pos);
    in_pos = 0;
  }
}

void server_session::impl::run() {
  // Bounded: every iteration consumes input or changes mode; stops when nothing progresses.
  while (!blocked()) {
    const std::size_t before = in_pos;
    const mode mb = m;
    if (m == mode::data) {
      scan_data();
    } else if (m == mode::bdat) {
      scan_bdat();
    } else {
      if (!next_line()) break;
    }
    if (in_pos == before && m == mb) break;
  }
  compact();
}

// Reads one line as Postfix's smtp_get() with line_length_limit reads it: at most the limit's
// worth of bytes, the rest up to the LF skipped. Only an LF within the limit (or right after a CR
// that is the limit's last byte) ends the line as a terminator: then CRs before it go (all of
// them; with smtpd_forbid_bare_newline only the one of a CRLF, and a missing one is a bare LF).
// A cut line keeps its trailing CRs and is never a bare-LF line.
bool server_session::impl::next_line() {
  std::string_view p = pending();
  const char* nl = static_cast<const char*>(std::memchr(p.data(), '\n', p.size()));
  if (nl == nullptr) {
    // Without LF the line may still be overlong: keep at most the limit plus a margin.
    if (p.size() > opt.line_length_limit + 1 && p.size() > 4096) {
      // Drop the middle of an overlong line so memory stays bounded.
      in.erase(in_pos + opt.line_length_limit + 1, p.size() - opt.line_length_limit - 1);
    }
    return false;
  }
  const std::size_t len = static_cast<std::size_t>(nl - p.data());
  const std::size_t limit = opt.line_length_limit;
  std::string_view line = p.substr(0, std::min(len, limit));
  const bool terminated = len < limit || (len == limit && len > 0 && p[len - 1] == '\r');
  bool bare_lf = false;
  const bool detect_bare_lf = opt.forbid_bare_newline || opt.forbid_bare_newline_reject;
  if (terminated && detect_bare_lf) {
    if (line.empty() || line.back() != '\r')
      bare_lf = true;
    else
      line.remove_suffix(1);
  } else if (terminated) {
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  }
  std::string copy(line);
  in_pos += len + 1;
  const bool more = in_pos < in.size();
  if (m == mode::auth)
    auth_line(copy, bare_lf);
  else
    command(copy, bare_lf, more);
  // The next read is a new request: the next command, DATA content or a BDAT chunk.
  start_request();
  return true;
}

// --- commands -----------------------------------------------------------------------------
void server_session::impl::finish_command(int id, bool success) {
  if (success)
    ++ok[id];
  else
    ++error_count;
  after_command(id);
}

void server_session::impl::after_command(int id) {
  if (id == c_helo || id == c_ehlo || id == c_rset || id == c_noop || id == c_vrfy ||
      id == c_etrn || id == c_xclient) {
    if (junk_cmds++ > opt.junk_command_limit) ++error_count;
  }
  check_hard_limit();
}

void server_session::impl::check_hard_limit() {
  if (m == mode::closed) return;
  if (m == mode::command && error_count >= opt.hard_error_limit) {
    send("421 4.7.0 " + opt.myhostname + " Error: too many errors");
    close_now("too many errors");
  }
}

void server_session::impl::close_now(std::string_view reason) {
  if (held_until) close_after_held = true;
  close(reason);
}

void server_session::impl::command(const std::string& line, bool bare_lf, bool more_input) {
  if (bare_lf && opt.forbid_bare_newline_reject) {
    send(std::to_string(opt.forbid_bare_newline_reject_code) + " 5.5.2 " + opt.myhostname +
         " Error: bare <LF> received");
    close_now("bare <LF> received");
    return;
  }
  // smtputf8_enable = yes (the default; another value is refused at start-up): a command
  // that is not UTF-8 is refused before it is parsed. Postfix checks the whole line, bytes
  // after a NUL too ("\0\xE9" is bad UTF-8, diff_fuzz seed 94547).
  if (!valid_utf8(line)) {
    send("500 5.5.2 Error: bad UTF-8 syntax");
    ++error_count;
    ++total[c_unknown];
    last_cmd = "UNKNOWN";
    check_hard_limit();
    return;
  }
  // Postfix's line reader hands smtpd a C string: a NUL byte ends the command there
  // ("NOOP\0x" is NOOP, "\0\0" is an empty line and gets "bad syntax").
  const std::string_view text = std::string_view(line).substr(0, line.find('\0'));
  auto argv = tokenize(text);
  if (argv.empty()) {
    send("500 5.5.2 Error: bad syntax");
    ++error_count;
    check_hard_limit();
    return;
  }
  int id = c_unknown;
  for (int i = 0; i < c_unknown; ++i)
    if (iequals(argv[0], cmd_upper[static_cast<std::size_t>(i)])) {
      id = i;
      break;
    }
  ++total[id];
  // Postfix 3.7.11's order: a forbidden command, then smtpd_delay_reject = no's standing
  // refusal (which unknown commands get too), then "not recognized", then TLS enforcement.
  if (id == c_unknown) {
    last_cmd = "UNKNOWN";
    if (forbidden(argv[0])) {
      send("221 2.7.0 Error: I can break rules, too. Goodbye.");
      close_now("non-SMTP command");
      return;
    }
  }
  if (access_denied && id != c_quit) {
    // The greeting was a rejection (smtpd_delay_reject = no): Postfix answers every command
    // but QUIT like this, and counts it as an error.
    send("503 5.7.0 Error: access denied for " + access_denied_namaddr);
    ++error_count;
    check_hard_limit();
    return;
  }
  if (id == c_unknown) {
    send("500 5.5.2 Error: command not recognized");
    ++error_count;
    check_hard_limit();
    return;
  }
  last_cmd = cmd_upper[static_cast<std::size_t>(id)];
  if (opt.tls_required && !tls_on && id != c_helo && id != c_ehlo && id != c_xclient &&
      id != c_starttls && id != c_noop && id != c_quit) {
    // smtpd_tls_security_level = encrypt: only the commands Postfix marks as allowed before
    // TLS get through; the rest count as errors.
    send("530 5.7.0 Must issue a STARTTLS command first");
    ++error_count;
    check_hard_limit();
    return;
  }
  cur_cmd = id;
  // Postfix's SMTPD_FLAG_ILL_PIPELINING: input already waiting behind a command that must end
  // a pipelined group (or behind any command before EHLO made the session ESMTP). Flagged
  // once per connection, logged, and tested later by reject_unauth_pipelining.
  if (more_input && !cl.unauth_pipelining && (cl.protocol != "ESMTP" || ends_group(id)) &&
      flag_ill_pipelining(last_cmd, pending()))
    return;
  bool success = false;
  switch (id) {
    case c_helo:
      success = helo(argv, false);
      break;
    case c_ehlo:
      success = helo(argv, true);
      break;
    case c_xforward:
      success = xforward(argv);
      break;
    case c_xclient:
      if (xclient(argv)) {
        // A successful XCLIENT starts the session over: Postfix's error and junk counters
        // begin again at zero, yet its statistics show the command as failed ("xclient=0/1").
        error_count = 0;
        junk_cmds = 0;
        return;
      }
      break;
    case c_starttls:
      success = starttls(argv);
      break;
    case c_auth:
      success = auth(argv);
      break;
    case c_mail:
      success = mail(argv);
      break;
    case c_rcpt:
      success = rcpt(argv);
      break;
    case c_data:
      success = data(argv);
      break;
    case c_bdat:
      success = bdat(argv);
      break;
    case c_rset:
      success = rset(argv);
      break;
    case c_noop:
      send("250 2.0.0 Ok");
      success = true;
      break;
    case c_vrfy:
      success = vrfy(argv, line);
      break;
    case c_etrn:
      success = etrn(argv);
      break;
    case c_quit:
      send("221 2.0.0 Bye");
      ++ok[c_quit];
      close_now("quit");
      return;
    default:
      break;
  }
  // DATA/BDAT LAST/AUTH continue later and count then.
  if (m == mode::data || m == mode::commit || m == mode::auth || (m == mode::bdat && id == c_bdat))
    return;  // counted when the exchange, the content or the chunk is complete
  if (m == mode::closed) return;
  finish_command(id, success);
}

// RFC 2920 section 3.1: these end a command group, so nothing may follow them in one write
// (as observed on Postfix 3.7.11: AUTH, ETRN, QUIT, RSET, MAIL and RCPT may be followed).
bool server_session::impl::ends_group(int id) {
  // Postfix's SMTPD_CMD_FLAG_LAST commands.
  return id == c_helo || id == c_ehlo || id == c_data || id == c_vrfy || id == c_noop;
}

bool server_session::impl::flag_ill_pipelining(std::string_view where, std::string_view waiting) {
  cl.unauth_pipelining = true;
  h.on_improper_pipelining(cl, where, waiting.substr(0, improper_pipelining_shown_max));
  if (!opt.forbid_unauth_pipelining) return false;
  // Postfix answers this instead of running the command, and hangs up without another log
  // line than the disconnect.
  send("554 5.5.0 Error: SMTP protocol synchronization");
  close_now("");
  return true;
}

bool server_session::impl::forbidden(std::string_view word) const {
  // Postfix's is_header(): a header name followed by ':' is never an SMTP command.
  for (std::size_t i = 0; i < word.size(); ++i) {
    const auto c = static_cast<unsigned char>(word[i]);
    if (c == ':') {
      if (i > 0) return true;
      break;
    }
    if (c < 33 || c > 126) break;
  }
  for (const auto& f : opt.forbidden_commands)
    if (iequals(f, word)) return true;
  if (opt.forbid_nonalpha_commands && !word.empty()) {
    const char c = to_upper(word[0]);
    if (c < 'A' || c > 'Z') return true;
  }
  return false;
}

std::string server_session::impl::ehlo_reply() const {
  std::vector<std::string> lines;
  lines.push_back(opt.myhostname);
  auto add = [&](std::string_view kw, std::string text) {
    if (!discarded(kw)) lines.push_back(std::move(text));
  };
  add("PIPELINING", "PIPELINING");
  add("SIZE", opt.message_size_limit ? "SIZE " + std::to_string(opt.message_size_limit)
                                     : std::string("SIZE"));
  if (!opt.disable_vrfy_command) add("VRFY", "VRFY");
  add("ETRN", "ETRN");
  if (opt.tls_offered && !tls_on) add("STARTTLS", "STARTTLS");
  if (sasl_active() && !opt.sasl_mechanisms.empty() && !discarded("AUTH")) {
    std::string mechs;
    for (const auto& s : opt.sasl_mechanisms) {
      if (!mechs.empty()) mechs += ' ';
      mechs += s;
    }
    lines.push_back("AUTH " + mechs);
    if (opt.broken_sasl_auth_clients) lines.push_back("AUTH=" + mechs);
  }
  if (opt.xclient_authorized) add("XCLIENT", "XCLIENT " + std::string(xclient_attrs));
  add("ENHANCEDSTATUSCODES", "ENHANCEDSTATUSCODES");
  add("8BITMIME", "8BITMIME");
  add("DSN", "DSN");
  add("SMTPUTF8", "SMTPUTF8");
  add("CHUNKING", "CHUNKING");
  std::string r;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    r += i + 1 == lines.size() ? "250 " : "250-";
    r += lines[i];
    if (i + 1 != lines.size()) r += "\r\n";
  }
  return r;
}

bool server_session::impl::helo(const std::vector<std::string_view>& argv, bool ehlo) {
  if (argv.size() < 2) {
    send(ehlo ? "501 Syntax: EHLO hostname" : "501 Syntax: HELO hostname");
    return false;
  }
  reset_transaction();
  client_identity probe = cl;
  probe.helo = joined(argv, 1);
  probe.protocol = ehlo ? "ESMTP" : "SMTP";
  if (auto v = h.on_helo(probe)) return send_result(*v);
  cl.helo = probe.helo;
  cl.protocol = probe.protocol;
  if (ehlo)
    send(ehlo_reply());
  else
    send("250 " + opt.myhostname);
  return true;
}

bool server_session::impl::need_helo(bool enhanced) {
  if (opt.helo_required && cl.helo.empty()) {
    send(enhanced ? "503 5.5.1 Error: send HELO/EHLO first" : "503 Error: send HELO/EHLO first");
    return true;
  }
  return false;
}

bool server_session::impl::rset(const std::vector<std::string_view>& argv) {
  if (argv.size() != 1) {
    send("501 5.5.4 Syntax: RSET");
    return false;
  }
  reset_transaction();
  send("250 2.0.0 Ok");
  return true;
}

server_session::server_session(server_options options, server_handler& handler,
                               client_identity client, timestamp now)
    : impl_(std::make_unique<impl>(std::move(options), handler, std::move(client), now)) {}

server_session::~server_session() {
  if (impl_ && impl_->m != impl::mode::closed && impl_->started) {
    if (impl_->m == impl::mode::auth) impl_->h.on_auth_abort();
  }
}

void server_session::start(timestamp now, std::string_view waiting_input) {
  auto& s = *impl_;
  if (s.started) return;
  s.started = true;
  s.now = now;
  s.start_request();
  if (s.opt.tls_wrappermode) {
    // smtps: the handshake comes first; connect checks and the greeting follow it. What the
    // client sent first is its TLS hello, never improper pipelining.
    s.m = impl::mode::tls;
    s.greeting_due = true;
    return;
  }
  if (!waiting_input.empty() && s.flag_ill_pipelining("CONNECT", waiting_input)) return;
  s.greet();
}

bool server_session::impl::refused_event(client_event e) {
  auto v = h.on_client_event(e);
  if (!v) return false;
  send(v->text);
  return true;
}

void server_session::impl::greet() { greeting(h.on_connect(cl)); }

void server_session::impl::greeting(const verdict& refusal) {
  if (refusal) {
    send(refusal->text);
    // 421/521 close at once; any other rejection keeps the session, and every later command
    // except QUIT gets "503 5.7.0 Error: access denied for name[addr]" (see command()).
    if (refusal->code() == 421 || refusal->code() == 521) {
      close("rejected at connect");
    } else {
      access_denied = true;
      access_denied_namaddr = cl.name + "[" + cl.addr + "]";
    }
    return;
  }
  send("220 " + opt.banner);
}

void server_session::receive(std::span<const char> bytes, timestamp now) {
  auto& s = *impl_;
  s.now = now;
  // During the handshake no plaintext is SMTP: the transport must not feed it (it is dropped).
  if (s.m == impl::mode::closed || s.m == impl::mode::tls) return;
  if (s.opt.per_request_deadline) {
    // Bytes that arrive after the deadline are not read: the request has timed out.
    advance(now);
    if (s.m == impl::mode::closed) return;
  }
  s.charge_read(bytes.size());
  s.in.append(bytes.data(), bytes.size());
  s.run();
}

void server_session::receive_eof(timestamp now) {
  auto& s = *impl_;
  s.now = now;
  if (s.m == impl::mode::closed) return;
  s.close("lost connection");
}

void server_session::advance(timestamp now) {
  auto& s = *impl_;
  s.now = now;
  if (s.held_until && now >= *s.held_until) {
    s.held_until.reset();
    s.out += s.held;
    s.held.clear();
    s.pause_request_clock();
    if (s.close_after_held) return;
    s.run();
  }
  if (s.m == impl::mode::closed || s.m == impl::mode::commit || s.m == impl::mode::tls ||
      s.held_until)
    return;
  if (now >= s.request_deadline()) {
    s.send("421 4.4.2 " + s.opt.myhostname + " Error: timeout exceeded");
    s.close_now("timeout");
  }
}

void server_session::finish_message(reply r, timestamp now) {
  auto& s = *impl_;
  s.now = now;
  s.start_request();
  if (s.m != impl::mode::commit) return;
  s.m = impl::mode::command;
  const int id = s.cur_cmd == c_bdat ? c_bdat : c_data;
  const bool good = s.send_result(r);
  if (good) {
    // Postfix's error counters measure errors "without delivering mail".
    s.error_count = 0;
    s.junk_cmds = 0;
  }
  s.reset_transaction();
  s.finish_command(id, good);
  s.run();
}

std::string_view server_session::output() const noexcept { return impl_->out; }

void server_session::consume_output(std::size_t n) noexcept {
  auto& s = *impl_;
  s.out.erase(0, std::min(n, s.out.size()));
  if (s.out.size() < s.opt.output_bytes_max && s.m != impl::mode::closed) s.run();
}

std::optional<timestamp> server_session::deadline() const noexcept {
  const auto& s = *impl_;
  if (s.held_until) return s.held_until;
  if (s.m == impl::mode::closed || s.m == impl::mode::commit || s.m == impl::mode::tls ||
      !s.started)
    return std::nullopt;
  return s.request_deadline();
}

bool server_session::closing() const noexcept {
  return impl_->m == impl::mode::closed && !impl_->held_until;
}

const client_identity& server_session::client() const noexcept { return impl_->cl; }

timestamp server_session::now() const noexcept { return impl_->now; }

std::string server_session::command_counts() const {
  const auto& s = *impl_;
  std::string r;
  int tot = 0, good = 0;
  for (int i = 0; i < c_count; ++i) {
    const auto k = static_cast<std::size_t>(i);
    if (s.total[k] == 0) continue;
    tot += s.total[k];
    good += s.ok[k];
    r += cmd_names[k];
    r += '=';
    r += std::to_string(s.ok[k]);
    // Appended piecewise: GCC 12 at -O3 misreads `"/" + std::to_string(..)` here as an
    // overlapping memcpy (-Wrestrict), which breaks -Werror Release builds.
    if (s.ok[k] != s.total[k]) {
      r += '/';
      r += std::to_string(s.total[k]);
    }
    r += ' ';
  }
  r += "commands=" + std::to_string(good);
  if (good != tot || tot == 0) r += "/" + std::to_string(tot);  // Postfix: "commands=0/0"
  return r;
}

std::string_view server_session::last_command() const noexcept { return impl_->last_cmd; }

bool server_session::want_input() const noexcept {
  return impl_->in.size() - impl_->in_pos < impl_->opt.input_bytes_max;
}

bool server_session::authenticated() const noexcept { return impl_->authenticated; }

void server_session::set_xclient_authorized(bool yes) noexcept {
  impl_->opt.xclient_authorized = yes;
}

void server_session::set_bare_newline_rules(bool normalize, bool reject) noexcept {
  impl_->opt.forbid_bare_newline = normalize;
  impl_->opt.forbid_bare_newline_reject = reject;
}

std::optional<std::uint64_t> server_session::bdat_bytes() const noexcept {
  if (!impl_->bdat_started) return std::nullopt;
  return impl_->bdat_total;
}

}  // namespace relaylab::smtp
