#include "fakes/mx/script.hpp"

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

namespace relaylab::fakes::mx {

std::string_view to_string(stage s) noexcept {
  switch (s) {
    case stage::connect:
      return "connect";
    case stage::helo:
      return "helo";
    case stage::mail:
      return "mail";
    case stage::rcpt:
      return "rcpt";
    case stage::data:
      return "data";
    case stage::dot:
      return "dot";
  }
  return "?";
}

std::string parse_error::to_string() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::uint64_t n = 0;
  const auto* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc() || p == text.data()) return std::nullopt;
  const std::string_view unit(p, static_cast<std::size_t>(end - p));
  std::uint64_t ms = 0;
  constexpr std::uint64_t day_ms = 24ull * 3600 * 1000;
  if (n > day_ms) return std::nullopt;
  if (unit == "ms") {
    ms = n;
  } else if (unit == "s" || (unit.empty() && n == 0)) {
    ms = n * 1000;
  } else if (unit == "m") {
    ms = n * 60 * 1000;
  } else if (unit == "h") {
    ms = n * 3600 * 1000;
  } else {
    return std::nullopt;
  }
  if (ms > day_ms) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

namespace {

struct token {
  std::string text;
  std::size_t column = 0;
  bool quoted = false;
};

class parser {
 public:
  parser(std::string_view file, parse_error& err) : file_(file), err_(err) {}

  bool fail(std::size_t line, std::size_t column, std::string message) {
    err_.file = std::string(file_);
    err_.line = line;
    err_.column = column;
    err_.message = std::move(message);
    return false;
  }

  // Splits a line into words; "quoted text" with \" and \\ escapes is one word; '#' outside
  // quotes starts a comment.
  bool tokenize(std::string_view line, std::size_t lineno, std::vector<token>& out) {
    std::size_t i = 0;
    while (i < line.size()) {
      const char c = line[i];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++i;
        continue;
      }
      if (c == '#') break;
      token t;
      t.column = i + 1;
      if (c == '"') {
        t.quoted = true;
        ++i;
        bool closed = false;
        while (i < line.size()) {
          if (line[i] == '\\' && i + 1 < line.size() &&
              (line[i + 1] == '"' || line[i + 1] == '\\')) {
            t.text.push_back(line[i + 1]);
            i += 2;
            continue;
          }
          if (line[i] == '"') {
            closed = true;
            ++i;
            break;
          }
          t.text.push_back(line[i++]);
        }
        if (!closed) return fail(lineno, t.column, "unterminated quoted string");
      } else {
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
          t.text.push_back(line[i++]);
        }
      }
      out.push_back(std::move(t));
    }
    return true;
  }

  bool number(const token& t, std::size_t lineno, std::uint64_t& n) {
    const auto* end = t.text.data() + t.text.size();
    auto [p, ec] = std::from_chars(t.text.data(), end, n);
    if (ec != std::errc() || p != end || t.text.empty()) {
      return fail(lineno, t.column, "expected a number, got \"" + t.text + "\"");
    }
    return true;
  }

  bool duration(const token& t, std::size_t lineno, std::chrono::milliseconds& d) {
    auto v = parse_duration(t.text);
    if (!v) {
      return fail(lineno, t.column,
                  "bad duration \"" + t.text + "\" (expected e.g. 250ms, 5s, 2m, 1h; max 24h)");
    }
    d = *v;
    return true;
  }

  bool reply_text(const token& t, std::size_t lineno) {
    const std::string& r = t.text;
    const bool ok_code = r.size() >= 3 && r[0] >= '2' && r[0] <= '5' &&
                         std::isdigit(static_cast<unsigned char>(r[1])) &&
                         std::isdigit(static_cast<unsigned char>(r[2])) &&
                         (r.size() == 3 || r[3] == ' ');
    if (!ok_code) {
      return fail(lineno, t.column,
                  "reply must start with a code 200-599 and a space, got \"" + r + "\"");
    }
    for (char c : r) {
      if (c == '\r' || c == '\n') return fail(lineno, t.column, "reply must be one line");
    }
    if (r.size() > 512) return fail(lineno, t.column, "reply longer than 512 bytes");
    // An enhanced status code (RFC 3463) must have the reply code's class: "550 4.1.1" is wrong.
    if (r.size() > 5 && std::isdigit(static_cast<unsigned char>(r[4])) && r[5] == '.') {
      if (r[4] != r[0]) {
        return fail(lineno, t.column + 5,
                    std::string("enhanced status code class ") + r[4] +
                        " does not match reply code " + r.substr(0, 3));
      }
    }
    return true;
  }

  // [delay DUR] [accept | reply "TEXT" | disconnect | hang] [times N]
  bool parse_action(const std::vector<token>& t, std::size_t i, std::size_t lineno, rule& r) {
    bool any = false;
    if (i < t.size() && t[i].text == "delay" && !t[i].quoted) {
      if (i + 1 >= t.size()) return fail(lineno, t[i].column, "delay needs a duration");
      if (!duration(t[i + 1], lineno, r.act.delay)) return false;
      i += 2;
      any = true;
    }
    if (i < t.size() && !t[i].quoted) {
      const auto& w = t[i].text;
      if (w == "accept") {
        r.act.what = action::kind::accept;
        ++i;
        any = true;
      } else if (w == "reply") {
        if (i + 1 >= t.size()) return fail(lineno, t[i].column, "reply needs a quoted text");
        if (!reply_text(t[i + 1], lineno)) return false;
        r.act.what = action::kind::reply;
        r.act.reply = t[i + 1].text;
        i += 2;
        any = true;
      } else if (w == "disconnect") {
        r.act.what = action::kind::disconnect;
        ++i;
        any = true;
      } else if (w == "hang") {
        r.act.what = action::kind::hang;
        ++i;
        any = true;
      }
    }
    if (!any) {
      const std::size_t col =
          i < t.size() ? t[i].column : t.back().column + t.back().text.size() + 1;
      return fail(lineno, col,
                  "expected an action: delay DUR, accept, reply \"TEXT\", disconnect or hang");
    }
    if (i < t.size() && t[i].text == "times" && !t[i].quoted) {
      if (i + 1 >= t.size()) return fail(lineno, t[i].column, "times needs a number");
      std::uint64_t n = 0;
      if (!number(t[i + 1], lineno, n)) return false;
      r.times = n;
      i += 2;
    }
    if (i < t.size()) return fail(lineno, t[i].column, "unexpected \"" + t[i].text + "\"");
    return true;
  }

  bool expect_count(const std::vector<token>& t, std::size_t n, std::size_t lineno) {
    if (t.size() < n) {
      return fail(lineno, t.back().column + t.back().text.size(),
                  "\"" + t[0].text + "\" needs " + std::to_string(n - 1) + " argument(s)");
    }
    if (t.size() > n) return fail(lineno, t[n].column, "unexpected \"" + t[n].text + "\"");
    return true;
  }

  bool line(const std::vector<token>& t, std::size_t lineno, script& s) {
    const std::string& d = t[0].text;
    if (d == "hostname") {
      if (!expect_count(t, 2, lineno)) return false;
      s.hostname = t[1].text;
    } else if (d == "banner") {
      if (!expect_count(t, 2, lineno)) return false;
      s.banner = t[1].text;
    } else if (d == "stage") {
      if (t.size() < 2) return fail(lineno, t[0].column + 5, "stage needs a stage name");
      rule r;
      r.line = lineno;
      const auto& n = t[1].text;
      if (n == "connect" || n == "greeting") {
        r.where = stage::connect;
      } else if (n == "helo" || n == "ehlo") {
        r.where = stage::helo;
      } else if (n == "mail") {
        r.where = stage::mail;
      } else if (n == "rcpt") {
        r.where = stage::rcpt;
      } else if (n == "data") {
        r.where = stage::data;
      } else if (n == "dot" || n == "eod" || n == "end-of-data") {
        r.where = stage::dot;
      } else {
        return fail(lineno, t[1].column,
                    "unknown stage \"" + n + "\" (connect, helo, mail, rcpt, data, dot)");
      }
      if (!parse_action(t, 2, lineno, r)) return false;
      s.rules.push_back(std::move(r));
    } else if (d == "rcpt") {
      if (t.size() < 2) return fail(lineno, t[0].column + 4, "rcpt needs an address");
      rule r;
      r.line = lineno;
      r.where = stage::rcpt;
      r.recipient = t[1].text;
      if (r.recipient.size() > 2 && r.recipient.front() == '<' && r.recipient.back() == '>') {
        r.recipient = r.recipient.substr(1, r.recipient.size() - 2);
      }
      if (!parse_action(t, 2, lineno, r)) return false;
      s.rules.push_back(std::move(r));
    } else if (d == "greylist") {
      if (t.size() != 2 && t.size() != 4) {
        return fail(lineno, t[0].column, "usage: greylist N [reply \"TEXT\"]");
      }
      if (!number(t[1], lineno, s.greylist_attempts)) return false;
      if (t.size() == 4) {
        if (t[2].text != "reply") return fail(lineno, t[2].column, "expected reply");
        if (!reply_text(t[3], lineno)) return false;
        if (t[3].text[0] != '4' && t[3].text[0] != '5') {
          return fail(lineno, t[3].column, "greylist reply must be 4xx or 5xx");
        }
        s.greylist_reply = t[3].text;
      }
    } else if (d == "sessions_max") {
      if (!expect_count(t, 2, lineno)) return false;
      std::uint64_t n = 0;
      if (!number(t[1], lineno, n)) return false;
      s.sessions_max = n;
    } else if (d == "rate") {
      if (t.size() != 2 && t.size() != 3) {
        return fail(lineno, t[0].column, "usage: rate N/WINDOW [421|451]");
      }
      const auto slash = t[1].text.find('/');
      if (slash == std::string::npos) {
        return fail(lineno, t[1].column, "expected N/WINDOW, e.g. 10/60s");
      }
      token n{t[1].text.substr(0, slash), t[1].column, false};
      token w{t[1].text.substr(slash + 1), t[1].column + slash + 1, false};
      std::uint64_t count = 0;
      if (!number(n, lineno, count) || !duration(w, lineno, s.rate_window)) return false;
      if (s.rate_window.count() == 0) return fail(lineno, w.column, "window must not be 0");
      s.rate_messages = count;
      if (t.size() == 3) {
        if (t[2].text == "421") {
          s.rate_code = 421;
        } else if (t[2].text == "451") {
          s.rate_code = 451;
        } else {
          return fail(lineno, t[2].column, "rate code must be 421 or 451");
        }
      }
    } else if (d == "auth") {
      if (t.size() == 2 && t[1].text == "required") {
        s.auth_required = true;
      } else if (t.size() == 4 && t[1].text == "user") {
        s.users.push_back({t[2].text, t[3].text});
      } else {
        return fail(lineno, t.size() > 1 ? t[1].column : t[0].column,
                    "usage: auth required | auth user NAME PASSWORD");
      }
    } else if (d == "timeout" || d == "error_sleep") {
      if (!expect_count(t, 2, lineno)) return false;
      if (!duration(t[1], lineno, d == "timeout" ? s.timeout : s.error_sleep)) return false;
      if (d == "timeout" && s.timeout.count() == 0) {
        return fail(lineno, t[1].column, "timeout must not be 0");
      }
    } else if (d == "size_max" || d == "mailbox_max" || d == "greylist_entries_max") {
      if (!expect_count(t, 2, lineno)) return false;
      std::uint64_t n = 0;
      if (!number(t[1], lineno, n)) return false;
      if (d == "size_max") s.message_size_max = n;
      if (d == "mailbox_max") s.mailbox_messages_max = n;
      if (d == "greylist_entries_max") s.greylist_entries_max = n;
    } else {
      return fail(lineno, t[0].column, "unknown directive \"" + d + "\"");
    }
    return true;
  }

 private:
  std::string_view file_;
  parse_error& err_;
};

}  // namespace

std::optional<script> parse_script(std::string_view text, std::string_view file,
                                   parse_error& error) {
  parser p(file, error);
  script s;
  std::size_t lineno = 0;
  constexpr std::size_t lines_max = 100000;
  while (!text.empty()) {
    ++lineno;
    if (lineno > lines_max) {
      p.fail(lineno, 1, "more than 100000 lines");
      return std::nullopt;
    }
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    std::vector<token> tokens;
    if (!p.tokenize(line, lineno, tokens)) return std::nullopt;
    if (tokens.empty()) continue;
    if (!p.line(tokens, lineno, s)) return std::nullopt;
  }
  if (s.auth_required && s.users.empty()) {
    p.fail(lineno, 1, "\"auth required\" without any \"auth user NAME PASSWORD\"");
    return std::nullopt;
  }
  return s;
}

std::optional<script> load_script(const std::string& path, parse_error& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = {path, 0, 0, "cannot open file"};
    return std::nullopt;
  }
  std::string text(script_bytes_max + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > script_bytes_max) {
    error = {path, 0, 0, "file larger than 1 MiB"};
    return std::nullopt;
  }
  return parse_script(text, path, error);
}

}  // namespace relaylab::fakes::mx
