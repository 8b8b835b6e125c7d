// Postfix 3.7.11 smtpd's protocol half. Reply texts were observed on a real Postfix; the golden
// transcripts in testdata/smtp/ record them.
#include "relay/smtp/server_session.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <limits>

#include "relay/smtp/base64.hpp"

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

namespace {

// Postfix's command table order, which is also the order of the disconnect statistics.
enum cmd_id : int {
  c_helo,
  c_ehlo,
  c_xclient,
  c_xforward,
  c_starttls,
  c_auth,
  c_mail,
  c_rcpt,
  c_data,
  c_bdat,
  c_rset,
  c_noop,
  c_vrfy,
  c_etrn,
  c_quit,
  c_unknown,
  c_count
};
constexpr std::array<const char*, c_count> cmd_names = {
    "helo", "ehlo", "xclient", "xforward", "starttls", "auth", "mail", "rcpt",
    "data", "bdat", "rset",    "noop",     "vrfy",     "etrn", "quit", "unknown"};
constexpr std::array<const char*, c_count> cmd_upper = {
    "HELO", "EHLO", "XCLIENT", "XFORWARD", "STARTTLS", "AUTH", "MAIL", "RCPT",
    "DATA", "BDAT", "RSET",    "NOOP",     "VRFY",     "ETRN", "QUIT", "UNKNOWN"};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}
char to_upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_upper(a[i]) != to_upper(b[i])) return false;
  return true;
}
bool istarts(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && iequals(s.substr(0, p.size()), p);
}
bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
std::string upper(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = to_upper(c);
  return r;
}

// Token rules of Postfix's smtpd_token(): whitespace separates, NUL ends a C string.
std::vector<std::string_view> tokenize(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i >= line.size()) break;
    const std::size_t b = i;
    bool quoted = false;  // a quoted string may contain white space, as in "a b"@c
    while (i < line.size() && (quoted || !is_space(line[i]))) {
      if (line[i] == '\\' && i + 1 < line.size())
        ++i;
      else if (line[i] == '"')
        quoted = !quoted;
      ++i;
    }
    std::string_view t = line.substr(b, i - b);
    if (auto z = t.find('\0'); z != std::string_view::npos) t = t.substr(0, z);
    out.push_back(t);
  }
  return out;
}

// RFC 3461 xtext: printable ASCII except '+' and '=', with "+HH" escapes.
std::optional<std::string> xtext_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '+') {
      if (i + 2 >= s.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      const int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c < 33 || c > 126 || c == '=') {
      return std::nullopt;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool valid_hostname(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  std::size_t label = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '.') {
      if (label == 0 || s[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && !(c == '-' && label > 0) && c != '_') return false;
    if (++label > 63) return false;
  }
  return s.back() != '-';
}

bool valid_ipv4(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (i <= s.size()) {
    std::size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i || j - i > 3) return false;
    if (std::stoi(std::string(s.substr(i, j - i))) > 255) return false;
    ++parts;
    if (j == s.size()) break;
    if (s[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

bool valid_ipv6(std::string_view s) {
  if (s.empty() || s.size() > 45) return false;
  int groups = 0, doubles = 0;
  std::size_t i = 0;
  if (s.substr(0, 2) == "::") {
    doubles = 1;
    i = 2;
  }
  while (i < s.size()) {
    std::size_t j = i;
    while (j < s.size() && std::isxdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j < s.size() && s[j] == '.') return valid_ipv4(s.substr(i)) && groups + 2 <= 8;
    if (j == i || j - i > 4) return false;
    ++groups;
    if (j == s.size()) break;
    if (s[j] != ':') return false;
    if (j + 1 < s.size() && s[j + 1] == ':') {
      if (++doubles > 1) return false;
      i = j + 2;
      if (i == s.size()) break;
    } else {
      i = j + 1;
      if (i == s.size()) return false;
    }
  }
  return doubles ? groups < 8 : groups == 8;
}

// Address syntax as Postfix's extract_addr() accepts it: quoted strings and backslash escapes
// are fine, unquoted white space or control characters are not, nothing may follow '>'.
std::optional<std::string> parse_address(std::string_view tok, bool allow_empty) {
  if (tok.empty()) return std::nullopt;
  std::string_view inner = tok;
  if (tok.front() == '<') {
    // Find the matching '>' outside quotes; it must end the token.
    bool q = false;
    std::size_t end = std::string_view::npos;
    for (std::size_t i = 1; i < tok.size(); ++i) {
      if (tok[i] == '\\') {
        ++i;
        continue;
      }
      if (tok[i] == '"')
        q = !q;
      else if (!q && tok[i] == '>') {
        end = i;
        break;
      }
    }
    if (end == std::string_view::npos || end + 1 != tok.size()) return std::nullopt;
    inner = tok.substr(1, end - 1);
  }
  bool q = false;
  for (std::size_t i = 0; i < inner.size(); ++i) {
    const auto c = static_cast<unsigned char>(inner[i]);
    if (c == '\\') {
      ++i;
      continue;
    }
    if (c == '"') {
      q = !q;
      continue;
    }
    if (q) continue;
    if (c <= ' ' || c == 127 || c == '<' || c == '>' || c == '(' || c == ')' || c == ';')
      return std::nullopt;
  }
  if (q) return std::nullopt;
  // A source route "@a,@b:user@domain" is accepted and dropped, as Postfix does.
  if (!inner.empty() && inner.front() == '@') {
    auto colon = inner.find(':');
    if (colon == std::string_view::npos) return std::nullopt;
    inner = inner.substr(colon + 1);
  }
  if (inner.empty() && !allow_empty) return std::nullopt;
  return std::string(inner);
}

// Cyrus sasl_decode64 as Postfix uses it: full quanta are checked first ("bad protocol /
// cancel"), a trailing partial quantum means "another step is needed in authentication".
std::optional<std::string> sasl_decode(std::string_view s, std::string& error) {
  const std::size_t full = s.size() / 4 * 4;
  auto d = base64_decode(s.substr(0, full));
  if (!d) {
    error = "bad protocol / cancel";
    return std::nullopt;
  }
  if (full != s.size()) {
    error = "another step is needed in authentication";
    return std::nullopt;
  }
  return d;
}

constexpr std::string_view xclient_attrs =
    "NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT";

}  // namespace

struct server_session::impl {
  enum class mode { command, data, bdat, auth, commit, closed };

  server_options opt;
  server_handler& h;
  client_identity cl;

  std::string in;  // unparsed input starting at in_pos
  std::size_t in_pos = 0;
  std::string out;   // replies ready to send
  std::string held;  // reply held back by error_sleep_time
  std::optional<timestamp> held_until;
  timestamp now{};
  timestamp idle_since{};
  bool started = false;
  bool access_denied = false;  // greeting was a rejection; see command()
  std::string
      access_denied_namaddr;  // "name[addr]" as at connect time (Postfix uses the real client)
  bool close_after_held = false;
  mode m = mode::command;

  // Session state.
  int error_count = 0;
  int junk_cmds = 0;
  bool authenticated = false;
  bool ehlo_pipelining = false;  // PIPELINING was offered in an EHLO reply
  bool in_mail = false;
  std::uint64_t msg_size = 0;  // SIZE= value; survives a rejected MAIL as in Postfix
  std::size_t rcpt_count = 0;
  std::size_t rcpt_overshoot = 0;
  bool bdat_started = false;
  bool bdat_rejected = false;  // data restrictions rejected this transaction's BDAT
  bool bdat_last = false;
  bool bdat_discard = false;  // skip the chunk, then send bdat_error
  std::string bdat_error;
  std::uint64_t bdat_left = 0;
  std::uint64_t bdat_total = 0;
  std::uint64_t chunk_size = 0;
  std::uint64_t body_bytes = 0;
  bool size_exceeded = false;
  int cur_cmd = c_unknown;
  std::string last_cmd = "CONNECT";
  std::array<int, c_count> total{};
  std::array<int, c_count> ok{};

  // DATA scanner state.
  bool at_line_start = true;
  bool prev_crlf = true;    // the previous DATA line ended in CRLF (or it's the first)
  bool pending_cr = false;  // last byte given to on_body was a '\r' of an unfinished line
  std::string auth_mech;

  impl(server_options o, server_handler& hh, client_identity c, timestamp t)
      : opt(std::move(o)), h(hh), cl(std::move(c)), now(t), idle_since(t) {}

  bool discarded(std::string_view kw) const {
    for (const auto& d : opt.discard_ehlo_keywords)
      if (iequals(d, kw)) return true;
    return false;
  }

  // --- output -------------------------------------------------------------------------------
  void send(std::string text) {
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
  static void strip_enhanced(std::string& text) {
    std::string r;
    std::size_t pos = 0;
    while (pos <= text.size()) {
      std::size_t eol = text.find("\r\n", pos);
      std::string_view line(text.data() + pos,
                            (eol == std::string::npos ? text.size() : eol) - pos);
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
  // Sends a handler or engine reply and reports whether it was a success (2xx/3xx).
  bool send_result(const reply& r) {
    send(r.text);
    const int code = r.code();
    return code >= 200 && code < 400;
  }
  void close(std::string_view reason) {
    if (m == mode::auth) h.on_auth_abort();
    if (m != mode::closed) {
      m = mode::closed;
      h.on_disconnect(cl, reason);
    }
  }

  // --- input --------------------------------------------------------------------------------
  std::string_view pending() const { return std::string_view(in).substr(in_pos); }
  void compact() {
    if (in_pos > 0 && (in_pos >= in.size() || in_pos > 64 * 1024)) {
      in.erase(0, in_pos);
      in_pos = 0;
    }
  }
  bool blocked() const {
    return m == mode::closed || m == mode::commit || held_until.has_value() ||
           out.size() >= opt.output_bytes_max;
  }

  void run() {
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

  // Reads one line as Postfix's smtp_get() with line_length_limit: the line ends at LF, a CR
  // before the LF is dropped, bytes past the limit are skipped.
  bool next_line() {
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
    const bool bare_lf = len == 0 || p[len - 1] != '\r';
    std::string_view line = p.substr(0, len);
    bool truncated = false;
    if (line.size() > opt.line_length_limit) {
      line = line.substr(0, opt.line_length_limit);
      truncated = true;
    }
    if (!truncated && !line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    else if (truncated && !line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    std::string copy(line);
    in_pos += len + 1;
    const bool more = in_pos < in.size();
    if (m == mode::auth)
      auth_line(copy, bare_lf);
    else
      command(copy, bare_lf, more);
    return true;
  }

  // --- commands -----------------------------------------------------------------------------
  void finish_command(int id, bool success) {
    if (success)
      ++ok[id];
    else
      ++error_count;
    after_command(id);
  }
  void after_command(int id) {
    if (id == c_helo || id == c_ehlo || id == c_rset || id == c_noop || id == c_vrfy ||
        id == c_etrn || id == c_xclient) {
      if (junk_cmds++ > opt.junk_command_limit) ++error_count;
    }
    check_hard_limit();
  }
  void check_hard_limit() {
    if (m == mode::closed) return;
    if (m == mode::command && error_count >= opt.hard_error_limit) {
      send("421 4.7.0 " + opt.myhostname + " Error: too many errors");
      close_now("too many errors");
    }
  }
  void close_now(std::string_view reason) {
    if (held_until) close_after_held = true;
    close(reason);
  }

  void command(const std::string& line, bool bare_lf, bool more_input) {
    if (bare_lf && opt.forbid_bare_newline_reject) {
      send(std::to_string(opt.forbid_bare_newline_reject_code) + " 5.5.2 " + opt.myhostname +
           " Error: bare <LF> received");
      close_now("bare <LF> received");
      return;
    }
    // Postfix's line reader hands smtpd a C string: a NUL byte ends the command there
    // ("NOOP\0x" is NOOP, "\0\0" is an empty line and gets "bad syntax").
    auto argv = tokenize(std::string_view(line).substr(0, line.find('\0')));
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
    if (id == c_xforward) id = c_unknown;  // not implemented: smtpd_authorized_xforward_hosts
    ++total[id];
    if (id == c_unknown) {
      last_cmd = "UNKNOWN";
      if (forbidden(argv[0])) {
        send("221 2.7.0 Error: I can break rules, too. Goodbye.");
        close_now("non-SMTP command");
        return;
      }
      send("500 5.5.2 Error: command not recognized");
      ++error_count;
      check_hard_limit();
      return;
    }
    last_cmd = cmd_upper[static_cast<std::size_t>(id)];
    if (access_denied && id != c_quit) {
      // The greeting was a rejection (smtpd_delay_reject = no): Postfix answers every
      // recognized command but QUIT like this, and counts it as an error.
      send("503 5.7.0 Error: access denied for " + access_denied_namaddr);
      ++error_count;
      check_hard_limit();
      return;
    }
    cur_cmd = id;
    // reject_unauth_pipelining: the client sent more before it saw this command's reply.
    if (more_input && (cl.protocol != "ESMTP" || !ehlo_pipelining)) cl.unauth_pipelining = true;
    bool success = false;
    switch (id) {
      case c_helo:
        success = helo(argv, false);
        break;
      case c_ehlo:
        success = helo(argv, true);
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
        send("502 5.5.1 Error: command not implemented");
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
    if (m == mode::data || m == mode::commit || m == mode::auth ||
        (m == mode::bdat && id == c_bdat))
      return;  // counted when the exchange, the content or the chunk is complete
    if (m == mode::closed) return;
    finish_command(id, success);
  }

  bool forbidden(std::string_view word) const {
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

  void reset_transaction() {
    const bool had = in_mail;
    in_mail = false;
    msg_size = 0;
    rcpt_count = 0;
    rcpt_overshoot = 0;
    bdat_started = bdat_rejected = false;
    bdat_total = 0;
    body_bytes = 0;
    size_exceeded = false;
    (void)had;
    h.on_reset();
  }

  std::string ehlo_reply() const {
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
    if (opt.sasl_auth_enable && !opt.sasl_mechanisms.empty() && !discarded("AUTH")) {
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

  std::string joined(const std::vector<std::string_view>& argv, std::size_t from) const {
    std::string r;
    for (std::size_t i = from; i < argv.size(); ++i) {
      if (i > from) r += ' ';
      r += argv[i];
    }
    return r;
  }

  bool helo(const std::vector<std::string_view>& argv, bool ehlo) {
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
    if (ehlo) {
      ehlo_pipelining = !discarded("PIPELINING");
      send(ehlo_reply());
    } else {
      ehlo_pipelining = false;
      send("250 " + opt.myhostname);
    }
    return true;
  }

  bool need_helo(bool enhanced) {
    if (opt.helo_required && cl.helo.empty()) {
      send(enhanced ? "503 5.5.1 Error: send HELO/EHLO first" : "503 Error: send HELO/EHLO first");
      return true;
    }
    return false;
  }

  // Splits "FROM:<addr> params" into the address token and the parameter tokens.
  bool split_path(const std::vector<std::string_view>& argv, std::string_view keyword,
                  std::string_view& addr, std::size_t& first_param) {
    if (argv.size() < 2 || !istarts(argv[1], keyword)) return false;
    if (argv[1].size() > keyword.size()) {
      addr = argv[1].substr(keyword.size());
      first_param = 2;
    } else {
      if (argv.size() < 3) return false;
      addr = argv[2];
      first_param = 3;
    }
    return true;
  }

  bool mail(const std::vector<std::string_view>& argv) {
    if (need_helo(true)) return false;
    if (in_mail) {
      send("503 5.5.1 Error: nested MAIL command");
      return false;
    }
    std::string_view atok;
    std::size_t first = 0;
    if (!split_path(argv, "FROM:", atok, first)) {
      send("501 5.5.4 Syntax: MAIL FROM:<address>");
      return false;
    }
    auto addr = parse_address(atok, true);
    if (!addr) {
      send("501 5.1.7 Bad sender address syntax");
      return false;
    }
    mail_command mc;
    mc.sender = *addr;
    bool have_ret = false, have_envid = false;
    for (std::size_t i = first; i < argv.size(); ++i) {
      const std::string_view p = argv[i];
      mc.parameters.emplace_back(p);
      if (istarts(p, "SIZE=")) {
        auto v = p.substr(5);
        if (!all_digits(v)) {
          send("501 5.5.4 Bad message size syntax");
          return false;
        }
        std::uint64_t n = 0;
        bool overflow = false;
        for (char c : v) {
          if (n > (std::uint64_t(std::numeric_limits<std::int64_t>::max()) - (c - '0')) / 10) {
            overflow = true;
            break;
          }
          n = n * 10 + std::uint64_t(c - '0');
        }
        if (overflow) {
          send("552 5.3.4 Message size exceeds file system imposed limit");
          return false;
        }
        msg_size = n;
        mc.size = n;
      } else if (istarts(p, "BODY=")) {
        auto v = upper(p.substr(5));
        if (v != "8BITMIME" && v != "7BIT") {
          send("555 5.5.4 Unsupported option: " + std::string(p));
          return false;
        }
        mc.body = v;
      } else if (iequals(p, "SMTPUTF8") && !discarded("SMTPUTF8")) {
      } else if (istarts(p, "RET=") && !discarded("DSN")) {
        auto v = upper(p.substr(4));
        if (have_ret || (v != "FULL" && v != "HDRS")) {
          send("501 5.5.4 Bad RET parameter syntax");
          return false;
        }
        have_ret = true;
      } else if (istarts(p, "ENVID=") && !discarded("DSN")) {
        auto v = xtext_decode(p.substr(6));
        if (have_envid || !v || v->empty()) {
          send("501 5.5.4 Bad ENVID parameter syntax");
          return false;
        }
        have_envid = true;
      } else if ((istarts(p, "RET=") || istarts(p, "ENVID=")) && discarded("DSN")) {
        send("501 5.7.1 DSN support is disabled");
        return false;
      } else if (istarts(p, "AUTH=")) {
        if (!xtext_decode(p.substr(5))) {
          send("501 5.5.4 Bad AUTH parameter syntax");
          return false;
        }
      } else {
        send("555 5.5.4 Unsupported option: " + std::string(p));
        return false;
      }
    }
    if (opt.message_size_limit > 0 && msg_size > opt.message_size_limit) {
      send("552 5.3.4 Message size exceeds fixed limit");
      return false;
    }
    if (auto v = h.on_mail(cl, mc)) return send_result(*v);
    in_mail = true;
    rcpt_count = 0;
    send("250 2.1.0 Ok");
    return true;
  }

  bool rcpt(const std::vector<std::string_view>& argv) {
    if (!in_mail) {
      send("503 5.5.1 Error: need MAIL command");
      return false;
    }
    std::string_view atok;
    std::size_t first = 0;
    if (!split_path(argv, "TO:", atok, first)) {
      send("501 5.5.4 Syntax: RCPT TO:<address>");
      return false;
    }
    auto addr = parse_address(atok, false);
    if (!addr) {
      send("501 5.1.3 Bad recipient address syntax");
      return false;
    }
    rcpt_command rc;
    rc.recipient = *addr;
    bool have_notify = false, have_orcpt = false;
    for (std::size_t i = first; i < argv.size(); ++i) {
      const std::string_view p = argv[i];
      rc.parameters.emplace_back(p);
      if ((istarts(p, "NOTIFY=") || istarts(p, "ORCPT=")) && discarded("DSN")) {
        send("501 5.7.1 DSN support is disabled");
        return false;
      }
      if (istarts(p, "NOTIFY=")) {
        bool good = !have_notify;
        bool never = false, other = false;
        std::string_view v = p.substr(7);
        if (v.empty()) good = false;
        while (good && !v.empty()) {
          auto comma = v.find(',');
          auto item = v.substr(0, comma);
          if (iequals(item, "NEVER"))
            never = true;
          else if (iequals(item, "SUCCESS") || iequals(item, "DELAY") || iequals(item, "FAILURE"))
            other = true;
          else
            good = false;
          if (comma == std::string_view::npos) break;
          v = v.substr(comma + 1);
          if (v.empty()) good = false;
        }
        if (!good || (never && other)) {
          send("501 5.5.4 Error: Bad NOTIFY parameter syntax");
          return false;
        }
        have_notify = true;
      } else if (istarts(p, "ORCPT=")) {
        std::string_view v = p.substr(6);
        auto semi = v.find(';');
        bool good = !have_orcpt && semi != std::string_view::npos && semi > 0;
        if (good) {
          for (char c : v.substr(0, semi))
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') good = false;
          auto x = xtext_decode(v.substr(semi + 1));
          if (!x || x->empty()) good = false;
        }
        if (!good) {
          send("501 5.5.4 Error: Bad ORCPT parameter syntax");
          return false;
        }
        have_orcpt = true;
      } else {
        send("555 5.5.4 Unsupported option: " + std::string(p));
        return false;
      }
    }
    if (opt.recipient_limit && rcpt_count >= opt.recipient_limit) {
      send("452 4.5.3 Error: too many recipients");
      // Postfix does not count the first recipient_overshoot_limit excess recipients as errors.
      return rcpt_overshoot++ < opt.recipient_overshoot_limit;
    }
    if (auto v = h.on_rcpt(cl, rc)) {
      const bool good = send_result(*v);
      if (good) ++rcpt_count;
      return good;
    }
    ++rcpt_count;
    send("250 2.1.5 Ok");
    return true;
  }

  bool data(const std::vector<std::string_view>& argv) {
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
    return true;
  }

  bool bdat(const std::vector<std::string_view>& argv) {
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
  void scan_bdat() {
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
    m = mode::command;
    if (bdat_discard) {
      send(bdat_error);
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

  void body(const char* p, std::size_t n) {
    if (n == 0) return;
    if (size_exceeded) return;
    body_bytes += n;
    if (opt.message_size_limit > 0 && body_bytes > opt.message_size_limit) {
      size_exceeded = true;
      return;
    }
    h.on_body(std::span<const char>(p, n));
  }

  // The DATA hot path: memchr for LF, hand whole runs of ordinary CRLF lines to on_body in one
  // call, and copy nothing. Only dot lines and bare-LF lines break a run.
  void scan_data() {
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
        if (!crlf && opt.forbid_bare_newline_reject) {
          flush(cur);
          in_pos = static_cast<std::size_t>(nl + 1 - in.data());
          bare_lf_reject();
          return;
        }
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
        if (opt.forbid_bare_newline_reject) {
          flush(nl);
          in_pos = static_cast<std::size_t>(nl + 1 - in.data());
          bare_lf_reject();
          return;
        }
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

  void bare_lf_reject() {
    m = mode::command;
    send(std::to_string(opt.forbid_bare_newline_reject_code) + " 5.5.2 " + opt.myhostname +
         " Error: bare <LF> received");
    ++total[c_data];
    close_now("bare <LF> received");
  }

  void end_of_data() {
    m = mode::commit;
    h.on_message_end(cl, size_exceeded);
  }

  bool rset(const std::vector<std::string_view>& argv) {
    if (argv.size() != 1) {
      send("501 5.5.4 Syntax: RSET");
      return false;
    }
    reset_transaction();
    send("250 2.0.0 Ok");
    return true;
  }

  bool vrfy(const std::vector<std::string_view>& argv, const std::string&) {
    if (opt.disable_vrfy_command) {
      send("502 5.5.1 VRFY command is disabled");
      return false;
    }
    if (argv.size() < 2) {
      send("501 5.5.4 Syntax: VRFY address [SMTPUTF8]");
      return false;
    }
    std::size_t n = argv.size();
    if (n > 2 && iequals(argv[n - 1], "SMTPUTF8")) --n;
    std::string arg;
    for (std::size_t i = 1; i < n; ++i) {
      if (i > 1) arg += ' ';
      arg += argv[i];
    }
    auto addr = parse_address(arg, false);
    if (!addr) {
      send("501 5.1.3 Bad recipient address syntax");
      return false;
    }
    if (auto v = h.on_vrfy(cl, *addr)) return send_result(*v);
    send("252 2.0.0 " + arg);
    return true;
  }

  bool etrn(const std::vector<std::string_view>& argv) {
    if (need_helo(false)) return false;
    if (in_mail) {
      send("503 Error: MAIL transaction in progress");
      return false;
    }
    if (argv.size() != 2) {
      send("500 Syntax: ETRN domain");
      return false;
    }
    std::string_view d = argv[1];
    if (!d.empty() && (d[0] == '@' || d[0] == '#')) d.remove_prefix(1);
    if (!valid_hostname(d)) {
      send("501 Error: invalid parameter syntax");
      return false;
    }
    // No flush(8) service: Postfix answers this for every domain not in fast_flush_domains.
    send("459 <" + std::string(d) + ">: service unavailable");
    return false;
  }

  // --- AUTH ---------------------------------------------------------------------------------
  bool auth(const std::vector<std::string_view>& argv) {
    if (need_helo(true)) return false;
    if (!opt.sasl_auth_enable || discarded("AUTH")) {
      send("503 5.5.1 Error: authentication not enabled");
      return false;
    }
    if (in_mail) {
      send("503 5.5.1 Error: MAIL transaction in progress");
      return false;
    }
    if (authenticated) {
      send("503 5.5.1 Error: already authenticated");
      return false;
    }
    if (argv.size() < 2 || argv.size() > 3) {
      send("501 5.5.4 Syntax: AUTH mechanism");
      return false;
    }
    auth_mech = upper(argv[1]);
    std::optional<std::string> initial;
    if (argv.size() == 3) {
      std::string err;
      initial = sasl_decode(argv[2], err);
      if (!initial) {
        h.on_auth_decode_error(cl, auth_mech, err);
        send("535 5.7.8 Error: authentication failed: " + err);
        return false;
      }
    }
    std::optional<std::string_view> iv;
    if (initial) iv = *initial;
    return auth_result(h.on_auth_start(cl, auth_mech, iv));
  }

  bool auth_result(const auth_step& s) {
    switch (s.state) {
      case auth_step::status::challenge:
        m = mode::auth;
        send("334 " + base64_encode(s.challenge));
        return true;
      case auth_step::status::success:
        m = mode::command;
        authenticated = true;
        return send_result(reply{s.reply});
      case auth_step::status::failure:
        m = mode::command;
        send_result(reply{s.reply});
        return false;
    }
    return false;
  }

  void auth_line(const std::string& line, bool) {
    if (line == "*") {
      m = mode::command;
      h.on_auth_abort();
      h.on_auth_cancelled(cl, auth_mech);
      send("501 5.7.0 Authentication aborted");
      finish_command(c_auth, false);
      return;
    }
    std::string err;
    auto d = sasl_decode(line, err);
    bool good;
    if (!d) {
      m = mode::command;
      h.on_auth_abort();
      h.on_auth_decode_error(cl, auth_mech, err);
      send("535 5.7.8 Error: authentication failed: " + err);
      good = false;
    } else {
      good = auth_result(h.on_auth_continue(cl, *d));
    }
    if (m != mode::auth) finish_command(c_auth, good);
  }

  // --- XCLIENT ------------------------------------------------------------------------------
  bool xclient(const std::vector<std::string_view>& argv) {
    if (!opt.xclient_authorized) {
      send("550 5.7.0 Error: insufficient authorization");
      return false;
    }
    if (argv.size() < 2) {
      send("501 5.5.4 Syntax: XCLIENT attribute=value...");
      return false;
    }
    if (in_mail) {
      send("503 5.5.1 Error: MAIL transaction in progress");
      return false;
    }
    client_identity next = cl;
    std::optional<std::string> login;
    for (std::size_t i = 1; i < argv.size(); ++i) {
      auto eq = argv[i].find('=');
      if (eq == std::string_view::npos) {
        send("501 5.5.4 Error: attribute=value expected");
        return false;
      }
      const std::string name = upper(argv[i].substr(0, eq));
      auto val = xtext_decode(argv[i].substr(eq + 1));
      if (!val) {
        send("501 5.5.4 Bad " + name + " syntax: " + std::string(argv[i].substr(eq + 1)));
        return false;
      }
      const bool unavailable = *val == "[UNAVAILABLE]";
      const bool tempunavail = *val == "[TEMPUNAVAIL]";
      auto bad = [&] {
        send("501 5.5.4 Bad " + name + " syntax: " + *val);
        return false;
      };
      if (name == "NAME" || name == "REVERSE_NAME") {
        if (unavailable || tempunavail) {
          if (name == "NAME") next.name = "unknown";
        } else if (!valid_hostname(*val)) {
          return bad();
        } else if (name == "NAME") {
          next.name = *val;
        }
      } else if (name == "ADDR" || name == "DESTADDR") {
        if (unavailable) {
          if (name == "ADDR") next.addr = "unknown";
          continue;
        }
        std::string a = *val;
        bool good;
        if (istarts(a, "IPV6:")) {
          a = a.substr(5);
          good = opt.inet_ipv6 && valid_ipv6(a);
        } else {
          good = valid_ipv4(a);
        }
        if (!good) return bad();
        if (name == "ADDR") next.addr = a;
      } else if (name == "PORT" || name == "DESTPORT") {
        if (unavailable) {
          if (name == "PORT") next.port = "unknown";
          continue;
        }
        if (!all_digits(*val) || val->size() > 5 || std::stoul(*val) > 65535) return bad();
        if (name == "PORT") next.port = *val;
      } else if (name == "PROTO") {
        if (unavailable) continue;
        auto u = upper(*val);
        if (u != "SMTP" && u != "ESMTP") return bad();
        next.protocol = u;
      } else if (name == "HELO") {
        if (unavailable) {
          next.helo.clear();
          continue;
        }
        next.helo = *val;
      } else if (name == "LOGIN") {
        if (!unavailable) login = *val;
      } else {
        send("501 5.5.4 Bad XCLIENT attribute name: " + std::string(argv[i].substr(0, eq)));
        return false;
      }
    }
    // Success starts a new session for the new client, with a new greeting.
    reset_transaction();
    next.unauth_pipelining = false;
    cl = next;
    authenticated = login.has_value();
    ehlo_pipelining = false;
    h.on_xclient(cl);
    send("220 " + opt.banner);
    return true;
  }
};

server_session::server_session(server_options options, server_handler& handler,
                               client_identity client, timestamp now)
    : impl_(std::make_unique<impl>(std::move(options), handler, std::move(client), now)) {}

server_session::~server_session() {
  if (impl_ && impl_->m != impl::mode::closed && impl_->started) {
    if (impl_->m == impl::mode::auth) impl_->h.on_auth_abort();
  }
}

void server_session::start(timestamp now) {
  auto& s = *impl_;
  if (s.started) return;
  s.started = true;
  s.now = now;
  s.idle_since = now;
  if (auto v = s.h.on_connect(s.cl)) {
    s.send(v->text);
    // 421/521 close at once; any other rejection keeps the session, and every later command
    // except QUIT gets "503 5.7.0 Error: access denied for name[addr]" (see command()).
    if (v->code() == 421 || v->code() == 521) {
      s.close("rejected at connect");
    } else {
      s.access_denied = true;
      s.access_denied_namaddr = s.cl.name + "[" + s.cl.addr + "]";
    }
    return;
  }
  s.send("220 " + s.opt.banner);
}

void server_session::receive(std::span<const char> bytes, timestamp now) {
  auto& s = *impl_;
  s.now = now;
  if (s.m == impl::mode::closed) return;
  s.idle_since = now;
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
    s.idle_since = now;
    if (s.close_after_held) return;
    s.run();
  }
  if (s.m == impl::mode::closed || s.m == impl::mode::commit || s.held_until) return;
  if (now - s.idle_since >= std::chrono::duration_cast<timestamp>(s.opt.timeout)) {
    s.send("421 4.4.2 " + s.opt.myhostname + " Error: timeout exceeded");
    s.close_now("timeout");
  }
}

void server_session::finish_message(reply r, timestamp now) {
  auto& s = *impl_;
  s.now = now;
  s.idle_since = now;
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
  if (s.m == impl::mode::closed || s.m == impl::mode::commit || !s.started) return std::nullopt;
  return s.idle_since + std::chrono::duration_cast<timestamp>(s.opt.timeout);
}

bool server_session::closing() const noexcept {
  return impl_->m == impl::mode::closed && !impl_->held_until;
}

const client_identity& server_session::client() const noexcept { return impl_->cl; }

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

std::optional<std::uint64_t> server_session::bdat_bytes() const noexcept {
  if (!impl_->bdat_started) return std::nullopt;
  return impl_->bdat_total;
}

}  // namespace relaylab::smtp
