#include "fakes/client/dialogue.hpp"

#include <cctype>
#include <charconv>
#include <fstream>
#include <regex>

namespace relaylab::fakes::client {

std::string dialogue::header(std::string_view key) const {
  for (const auto& [k, v] : headers) {
    if (k == key) return v;
  }
  return {};
}

std::string dialogue_error::to_string() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

bool glob_match(std::string_view p, std::string_view t) {
  // Iterative wildcard match with one backtrack point: linear in practice, no recursion.
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi;
      ++ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool unescape(std::string_view text, std::string& out, std::size_t& column, std::string& message) {
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '{' && text.substr(i, 2) == "{{") {
      const auto end = text.find("}}", i + 2);
      const auto star = end == std::string_view::npos ? end : text.rfind('*', end);
      if (end != std::string_view::npos && star != std::string_view::npos && star > i + 2) {
        std::size_t n = 0;
        const auto digits = text.substr(star + 1, end - star - 1);
        auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (ec == std::errc() && p == digits.data() + digits.size() && !digits.empty()) {
          if (n > macro_repeat_max) {
            column = i + 1;
            message = "repeat " + std::to_string(n) + " > " + std::to_string(macro_repeat_max);
            return false;
          }
          std::string unit;
          std::size_t col = 0;
          if (!unescape(text.substr(i + 2, star - i - 2), unit, col, message)) {
            column = i + 2 + col;
            return false;
          }
          if (out.size() + unit.size() * n > dialogue_bytes_max) {
            column = i + 1;
            message = "expansion larger than 64 MiB";
            return false;
          }
          for (std::size_t k = 0; k < n; ++k) out += unit;
          i = end + 2;
          continue;
        }
      }
    }
    if (c != '\\') {
      out.push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= text.size()) {
      column = i + 1;
      message = "backslash at end of line";
      return false;
    }
    const char e = text[i + 1];
    switch (e) {
      case 'r':
        out.push_back('\r');
        i += 2;
        continue;
      case 'n':
        out.push_back('\n');
        i += 2;
        continue;
      case 't':
        out.push_back('\t');
        i += 2;
        continue;
      case '0':
        out.push_back('\0');
        i += 2;
        continue;
      case '\\':
        out.push_back('\\');
        i += 2;
        continue;
      case 'x': {
        unsigned v = 0;
        const auto hex = text.substr(i + 2, 2);
        auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
        if (hex.size() == 2 && ec == std::errc() && p == hex.data() + 2) {
          out.push_back(static_cast<char>(v));
          i += 4;
          continue;
        }
        break;
      }
      default:
        break;
    }
    column = i + 1;
    message = "unknown escape \\" + std::string(1, e) + " (use \\r \\n \\t \\0 \\xHH \\\\)";
    return false;
  }
  return true;
}

std::optional<dialogue> parse_dialogue(std::string_view text, std::string_view file,
                                       dialogue_error& error) {
  dialogue d;
  d.file = std::string(file);
  std::size_t lineno = 0;
  auto fail = [&](std::size_t column, std::string message) -> std::optional<dialogue> {
    error = {std::string(file), lineno, column, std::move(message)};
    return std::nullopt;
  };
  bool grouping = false;  // the last step is an open P:/R: group
  std::size_t total = 0;
  while (!text.empty()) {
    ++lineno;
    const auto nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    bool blank = true;
    for (char c : raw) blank = blank && (c == ' ' || c == '\t');
    if (blank || raw.front() == '#') {
      grouping = false;
      continue;
    }
    // [CPRS](*N)?(~)?: text
    std::size_t i = 0;
    const char kind = raw[0];
    std::size_t count = 1;
    bool is_regex = false;
    bool matched = false;
    if (kind == 'C' || kind == 'P' || kind == 'R' || kind == 'S') {
      i = 1;
      bool bad_count = false;
      if (i < raw.size() && raw[i] == '*') {
        const std::size_t start = ++i;
        while (i < raw.size() && std::isdigit(static_cast<unsigned char>(raw[i]))) ++i;
        auto [p, ec] = std::from_chars(raw.data() + start, raw.data() + i, count);
        bad_count = ec != std::errc() || i == start;
        if (bad_count) count = 0;
      }
      if (kind == 'S' && i < raw.size() && raw[i] == '~') {
        is_regex = true;
        ++i;
      }
      if (i < raw.size() && raw[i] == ':' && (i + 1 == raw.size() || raw[i + 1] == ' ')) {
        matched = true;
        if (bad_count || count < 1 || count > repeat_max) {
          return fail(3, "repeat count outside 1.." + std::to_string(repeat_max));
        }
      }
    }
    if (!matched) {
      // A header "key: value", only before the first client line.
      std::size_t k = 0;
      while (k < raw.size() &&
             (std::islower(static_cast<unsigned char>(raw[k])) || raw[k] == '-')) {
        ++k;
      }
      if (k == 0 || k >= raw.size() || raw[k] != ':' || !d.steps.empty() || !d.greeting.empty()) {
        return fail(1, "expected C:/P:/R:/S:/S~: or a header, got \"" + std::string(raw) + "\"");
      }
      std::string_view value = raw.substr(k + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);
      d.headers.emplace_back(std::string(raw.substr(0, k)), std::string(value));
      if (raw.substr(0, k) == "client") d.outside_client = value == "outside";
      continue;
    }
    const std::size_t text_col = i + 3;  // after ": "
    const std::string_view body =
        i + 2 <= raw.size() ? raw.substr(std::min(raw.size(), i + 2)) : std::string_view{};
    if (kind == 'S') {
      pattern p{std::string(body), is_regex, lineno};
      if (is_regex) {
        try {
          std::regex rx(p.text);
        } catch (const std::regex_error& e) {
          return fail(text_col, std::string("bad regular expression: ") + e.what());
        }
      }
      auto& into = d.steps.empty() ? d.greeting : d.steps.back().patterns;
      for (std::size_t n = 0; n < count; ++n) into.push_back(p);
      grouping = false;
      continue;
    }
    if (kind == 'C' && count != 1) return fail(2, "C: takes no repeat count (use P*N:)");
    std::string data;
    std::size_t col = 0;
    std::string msg;
    if (!unescape(body, data, col, msg)) return fail(text_col + col - 1, msg);
    if (kind != 'R') data += "\r\n";
    total += data.size() * count;
    if (total > dialogue_bytes_max) return fail(1, "dialogue larger than 64 MiB");
    std::string shown(raw);
    if (kind == 'C' || !grouping || !d.steps.back().patterns.empty()) {
      d.steps.push_back({});
      d.steps.back().line = lineno;
      grouping = kind != 'C';
    }
    auto& st = d.steps.back();
    for (std::size_t n = 0; n < count; ++n) st.data += data;
    st.shown.push_back(std::move(shown));
  }
  return d;
}

std::optional<dialogue> load_dialogue(const std::string& path, dialogue_error& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = {path, 0, 0, "cannot open file"};
    return std::nullopt;
  }
  std::string text(dialogue_bytes_max + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > dialogue_bytes_max) {
    error = {path, 0, 0, "file larger than 64 MiB"};
    return std::nullopt;
  }
  return parse_dialogue(text, path, error);
}

namespace {

class reply_reader {
 public:
  reply_reader(net::byte_stream& s, const play_options& o) : s_(s), o_(o) {}
  bool closed = false;

  // One reply: its lines (without CRLF), or a single "[...]" marker.
  boost::asio::awaitable<std::vector<std::string>> reply() {
    std::vector<std::string> lines;
    while (lines.size() < o_.reply_lines_max) {
      std::size_t nl;
      while ((nl = buf_.find('\n')) == std::string::npos) {
        if (closed || !co_await fill()) {
          if (!buf_.empty() && closed) {
            lines.push_back("[partial] " + buf_);
            buf_.clear();
          }
          if (!lines.empty()) {
            lines.push_back("[reply incomplete]");
            co_return lines;
          }
          co_return std::vector<std::string>{
              closed
                  ? std::string("[connection closed]")
                  : "[no reply within " + std::to_string(o_.reply_timeout.count() / 1000) + "s]"};
        }
      }
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') {
        line.pop_back();
      } else {
        line += "[bare LF]";
      }
      const bool more = line.size() >= 4 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                        std::isdigit(static_cast<unsigned char>(line[1])) &&
                        std::isdigit(static_cast<unsigned char>(line[2])) && line[3] == '-';
      lines.push_back(std::move(line));
      if (!more) co_return lines;
    }
    lines.push_back("[too many reply lines]");
    co_return lines;
  }

 private:
  boost::asio::awaitable<bool> fill() {
    char tmp[4096];
    std::error_code ec;
    const std::size_t n =
        co_await s_.read_some(std::span<char>(tmp, sizeof tmp), o_.reply_timeout, ec);
    if (n > 0) {
      total_ += n;
      buf_.append(tmp, n);
      if (total_ > o_.read_bytes_max) closed = true;
      co_return true;
    }
    if (ec != std::errc::timed_out) closed = true;
    co_return false;
  }

  net::byte_stream& s_;
  const play_options& o_;
  std::string buf_;
  std::uint64_t total_ = 0;
};

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) {
    if (!s.empty()) s += '\n';
    s += l;
  }
  return s;
}

bool matches(const pattern& p, const std::string& text) {
  if (!p.regex) return glob_match(p.text, text);
  try {
    return std::regex_match(text, std::regex(p.text));
  } catch (const std::regex_error&) {
    return false;
  }
}

}  // namespace

boost::asio::awaitable<play_result> play(const dialogue& d, net::byte_stream& stream,
                                         play_options options) {
  play_result res;
  reply_reader rd(stream, options);
  auto record = [&](const std::vector<std::string>& r) {
    for (const auto& l : r) res.transcript.push_back("S: " + l);
  };
  auto check = [&](const std::vector<pattern>& pats, std::size_t step_line,
                   const std::vector<std::vector<std::string>>& replies) {
    for (std::size_t k = 0; k < pats.size(); ++k) {
      const std::string got = k < replies.size() ? joined(replies[k]) : "[no reply read]";
      if (!matches(pats[k], got)) {
        res.ok = false;
        res.failures.push_back(d.file + ":" + std::to_string(pats[k].line) + ": expected " +
                               (pats[k].regex ? "S~: " : "S: ") + pats[k].text +
                               "\n  received: " + got);
      }
    }
    if (!pats.empty() && replies.size() > pats.size()) {
      res.ok = false;
      res.failures.push_back(d.file + ":" + std::to_string(step_line) + ": " +
                             std::to_string(replies.size()) + " replies for " +
                             std::to_string(pats.size()) +
                             " pattern(s); extra: " + joined(replies[pats.size()]));
    }
  };

  auto greeting = co_await rd.reply();
  record(greeting);
  check(d.greeting, d.greeting.empty() ? 0 : d.greeting.front().line, {greeting});

  std::vector<dialogue_step> steps;
  if (d.outside_client) {
    dialogue_step x;
    x.data = "XCLIENT ADDR=203.0.113.9 NAME=unknown\r\n";
    x.shown = {"C: XCLIENT ADDR=203.0.113.9 NAME=unknown"};
    steps.push_back(std::move(x));
  }
  steps.insert(steps.end(), d.steps.begin(), d.steps.end());

  bool in_data = false;
  std::string partial;
  bool stop = false;
  for (const auto& st : steps) {
    for (const auto& s : st.shown) res.transcript.push_back(s);
    std::vector<std::vector<std::string>> replies;
    if (stop || rd.closed) {
      replies.push_back({"[not sent: connection closed]"});
      record(replies.back());
      check(st.patterns, st.line, replies);
      continue;
    }
    std::error_code ec;
    co_await stream.write_all(std::span<const char>(st.data.data(), st.data.size()),
                              options.reply_timeout, ec);
    if (ec) {
      replies.push_back({"[send failed: " + ec.message() + "]"});
      record(replies.back());
      check(st.patterns, st.line, replies);
      rd.closed = true;
      continue;
    }
    // One reply per complete command line; none for content between 354 and ".".
    std::string chunk = partial + st.data;
    std::size_t pos = 0;
    for (std::size_t nl; (nl = chunk.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      std::string_view line(chunk.data() + pos, nl - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (in_data) {
        if (line != ".") continue;
        in_data = false;
      }
      auto r = co_await rd.reply();
      record(r);
      const bool marker = r[0].starts_with("[");
      const bool data_cmd = line.size() == 4 && (line[0] | 0x20) == 'd' &&
                            (line[1] | 0x20) == 'a' && (line[2] | 0x20) == 't' &&
                            (line[3] | 0x20) == 'a';
      if (data_cmd && r.back().starts_with("354")) in_data = true;
      replies.push_back(std::move(r));
      if (marker) {
        stop = replies.back()[0].starts_with("[no reply");
        break;
      }
    }
    partial = chunk.substr(std::min(pos, chunk.size()));
    check(st.patterns, st.line, replies);
  }
  stream.close();
  co_return res;
}

}  // namespace relaylab::fakes::client
