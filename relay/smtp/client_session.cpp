#include "relay/smtp/client_session.hpp"

#include <algorithm>
#include <cstring>

#include "relay/smtp/base64.hpp"
#include "relay/smtp/rfc822_address.hpp"

namespace relaylab::smtp {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// "d.ddd.ddd" at the start of `s`, followed by end or white space: its length, else 0.
std::size_t enhanced_status_length(std::string_view s) {
  std::size_t i = 0;
  if (s.empty() || (s[0] != '2' && s[0] != '4' && s[0] != '5')) return 0;
  i = 1;
  for (int part = 0; part < 2; ++part) {
    if (i >= s.size() || s[i] != '.') return 0;
    ++i;
    const std::size_t start = i;
    while (i < s.size() && is_digit(s[i]) && i - start < 3) ++i;
    if (i == start) return 0;
  }
  if (i < s.size() && s[i] != ' ' && s[i] != '\t') return 0;
  return i;
}

// Fills code and dsn from the first line of reply.text.
void classify(client_reply& r) {
  const std::string_view t = r.text;
  if (t.size() < 3 || !is_digit(t[0]) || !is_digit(t[1]) || !is_digit(t[2])) {
    r.code = 0;
    r.dsn.clear();
    return;
  }
  r.code = (t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0');
  const char cls = t[0];
  std::string_view rest = t.size() > 4 ? t.substr(4) : std::string_view{};
  rest = rest.substr(0, rest.find('\n'));
  if (const std::size_t n = enhanced_status_length(rest); n > 0 && cls >= '2' && cls <= '5') {
    r.dsn.assign(rest.substr(0, n));
    // A reply code and an enhanced code of different classes: the reply code wins.
    r.dsn[0] = cls;
  } else {
    r.dsn = std::string(1, cls) + ".0.0";
  }
}

bool line_is_last(std::string_view line) { return line.size() == 3 || line[3] == ' '; }

bool line_well_formed(std::string_view line) {
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2])) {
    return false;
  }
  return line.size() == 3 || line[3] == ' ' || line[3] == '-';
}

std::string_view cut(std::string_view s, std::size_t n) {
  return s.substr(0, std::min(n, s.size()));
}

}  // namespace

std::string client_reply::one_line() const {
  std::string s = text;
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

std::size_t client_result::accepted() const noexcept {
  return static_cast<std::size_t>(std::count_if(
      rcpt.begin(), rcpt.end(), [](const client_reply& r) { return r.code / 100 == 2; }));
}

client_reply make_client_reply(const std::vector<std::string>& lines) {
  client_reply r;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) r.text += '\n';
    r.text += lines[i];
  }
  classify(r);
  return r;
}

plain_authenticator::plain_authenticator(std::string authzid, std::string user,
                                         std::string password)
    : authzid_(std::move(authzid)), user_(std::move(user)), password_(std::move(password)) {}

client_auth_step plain_authenticator::start(std::string_view server_mechanisms) {
  client_auth_step s;
  bool offered = false;
  std::size_t pos = 0;
  while (pos < server_mechanisms.size()) {
    const std::size_t end = std::min(server_mechanisms.find(' ', pos), server_mechanisms.size());
    if (iequals(server_mechanisms.substr(pos, end - pos), "PLAIN")) offered = true;
    pos = end + 1;
  }
  if (!offered) {
    s.reason = "no mechanism available";
    return s;
  }
  s.ok = true;
  s.mechanism = "PLAIN";
  std::string r = authzid_;
  r += '\0';
  r += user_;
  r += '\0';
  r += password_;
  s.response = std::move(r);
  return s;
}

client_auth_step plain_authenticator::step(std::string_view /*challenge*/) {
  // PLAIN has a single round; a server that challenges after the initial response gets an
  // empty answer, as RFC 4616 clients do.
  client_auth_step s;
  s.ok = true;
  s.response = std::string();
  return s;
}

std::string_view while_text(client_stage s) noexcept {
  switch (s) {
    case client_stage::greeting:
      return "receiving the initial server greeting";
    case client_stage::ehlo:
      return "performing the EHLO handshake";
    case client_stage::helo:
      return "performing the HELO handshake";
    case client_stage::auth:
      return "performing the SASL authentication";
    case client_stage::starttls:
      return "sending STARTTLS command";
    case client_stage::mail:
      return "sending MAIL FROM";
    case client_stage::rcpt:
      return "sending RCPT TO";
    case client_stage::data:
      return "sending DATA command";
    case client_stage::body:
      return "sending message body";
    case client_stage::dot:
      return "sending end of data -- message may be sent more than once";
    case client_stage::rset:
      return "sending final RSET";
    case client_stage::quit:
    case client_stage::idle:
      return "sending QUIT";
  }
  return "sending QUIT";
}

std::string_view in_reply_to_text(client_stage s) noexcept {
  switch (s) {
    case client_stage::greeting:
      return "initial greeting";
    case client_stage::ehlo:
      return "EHLO command";
    case client_stage::helo:
      return "HELO command";
    case client_stage::auth:
      return "AUTH command";
    case client_stage::starttls:
      return "STARTTLS command";
    case client_stage::mail:
      return "MAIL FROM command";
    case client_stage::rcpt:
      return "RCPT TO command";
    case client_stage::data:
      return "DATA command";
    case client_stage::body:
    case client_stage::dot:
      return "end of DATA command";
    case client_stage::rset:
      return "final RSET command";
    case client_stage::quit:
    case client_stage::idle:
      return "QUIT command";
  }
  return "QUIT command";
}

struct client_session::impl {
  struct command {
    client_stage kind;
    std::size_t index = 0;  // recipient index for rcpt
    std::string line;       // with CRLF
  };
  struct awaited {
    client_stage kind;
    std::size_t index = 0;
  };

  client_options options;
  client_authenticator* auth = nullptr;
  client_state state = client_state::greeting;
  ehlo_features features;
  std::optional<client_reply> greeting;
  std::optional<client_error> error;
  bool authenticated = false;
  std::size_t auth_rounds = 0;

  std::string out;
  std::size_t out_pos = 0;
  std::deque<command> unsent;
  std::deque<awaited> outstanding;
  std::optional<client_timestamp> deadline;

  // Reply being read.
  std::string line;
  bool line_cut = false;
  client_reply current;
  std::size_t current_lines = 0;

  // Transaction.
  client_result result;
  std::size_t txn_pending = 0;  // transaction commands not yet answered (queued or sent)
  bool mail_ok = false;
  bool ignore_dot = false;
  bool need_rset = false;
  std::optional<client_result> done;
  bool at_line_start = true;
  bool prev_cr = false;
  bool tls_on = false;

  std::chrono::milliseconds timeout_for(client_stage k) const {
    switch (k) {
      case client_stage::greeting:
      case client_stage::ehlo:
      case client_stage::helo:
      case client_stage::auth:
      case client_stage::starttls:
        return options.helo_timeout;
      case client_stage::mail:
        return options.mail_timeout;
      case client_stage::rcpt:
        return options.rcpt_timeout;
      case client_stage::data:
        return options.data_init_timeout;
      case client_stage::body:
        return options.data_xfer_timeout;
      case client_stage::dot:
        return options.data_done_timeout;
      case client_stage::rset:
        return options.rset_timeout;
      case client_stage::quit:
      case client_stage::idle:
        return options.quit_timeout;
    }
    return options.quit_timeout;
  }

  static bool groupable(client_stage k) {
    return k == client_stage::rset || k == client_stage::mail || k == client_stage::rcpt ||
           k == client_stage::data;
  }

  bool pipelining() const { return features.pipelining && options.use_pipelining; }

  void fail(client_error::kind what, client_stage stage, std::optional<client_reply> reply,
            std::string detail) {
    if (state == client_state::failed || state == client_state::closed) return;
    error = client_error{what, stage, std::move(reply), std::move(detail)};
    state = client_state::failed;
    deadline.reset();
    unsent.clear();
    outstanding.clear();
  }

  void queue(client_stage kind, std::string line_text, std::size_t index = 0) {
    line_text += "\r\n";
    unsent.push_back(command{kind, index, std::move(line_text)});
  }

  void flush(client_timestamp now) {
    while (!unsent.empty()) {
      command& c = unsent.front();
      const bool may_send = outstanding.empty() || (pipelining() && groupable(c.kind) &&
                                                    groupable(outstanding.back().kind));
      if (!may_send) break;
      out += c.line;
      outstanding.push_back(awaited{c.kind, c.index});
      unsent.pop_front();
      if (outstanding.size() == 1) deadline = now + timeout_for(outstanding.front().kind);
    }
  }

  void drop_unsent_transaction() {
    for (auto it = unsent.begin(); it != unsent.end();) {
      if (it->kind == client_stage::rcpt || it->kind == client_stage::data) {
        it = unsent.erase(it);
        --txn_pending;
      } else {
        ++it;
      }
    }
  }

  void finish_transaction(client_timestamp now) {
    result.finished = now;
    need_rset = mail_ok && !result.end_of_data;
    done = std::move(result);
    result = client_result{};
    state = client_state::ready;
  }

  void begin_ready() { state = client_state::ready; }

  void after_hello(client_timestamp now) {
    if (!tls_on && options.starttls != client_options::tls_use::none) {
      if (features.starttls) {
        queue(client_stage::starttls, "STARTTLS");
        state = client_state::hello;
        flush(now);
        return;
      }
      if (options.starttls == client_options::tls_use::required) {
        fail(client_error::kind::tls, client_stage::ehlo, std::nullopt, "not offered");
        return;
      }
    }
    continue_after_tls_choice(now);
  }

  void continue_after_tls_choice(client_timestamp now) {
    if (auth != nullptr && (features.auth || options.auth_unoffered)) {
      client_auth_step s = auth->start(features.auth_mechanisms);
      if (!s.ok) {
        fail(client_error::kind::auth_failed, client_stage::auth, std::nullopt, s.reason);
        return;
      }
      std::string cmd = "AUTH " + s.mechanism;
      if (s.response) {
        // Appended in two steps: GCC 12 at -O3 reports a false -Wrestrict for " " + string.
        cmd += ' ';
        cmd += s.response->empty() ? std::string("=") : base64_encode(*s.response);
      }
      queue(client_stage::auth, std::move(cmd));
      state = client_state::auth;
      flush(now);
      return;
    }
    begin_ready();
  }

  void parse_ehlo(const client_reply& r) {
    features = ehlo_features{};
    features.esmtp = true;
    std::string_view rest = r.text;
    bool first = true;
    while (!rest.empty()) {
      const std::size_t nl = std::min(rest.find('\n'), rest.size());
      std::string_view l = rest.substr(0, nl);
      rest.remove_prefix(std::min(nl + 1, rest.size()));
      l.remove_prefix(std::min<std::size_t>(4, l.size()));
      const std::size_t kend = std::min(l.find_first_of(" \t="), l.size());
      const std::string_view key = l.substr(0, kend);
      std::string_view params = l.substr(std::min(kend + 1, l.size()));
      if (first) {
        features.server_name.assign(key);
        first = false;
        continue;
      }
      if (iequals(key, "PIPELINING")) {
        features.pipelining = true;
      } else if (iequals(key, "SIZE")) {
        features.size = true;
        std::uint64_t v = 0;
        bool digits = !params.empty();
        for (const char c : params) {
          if (!is_digit(c) || v > (UINT64_MAX - 9) / 10) {
            digits = false;
            break;
          }
          v = v * 10 + static_cast<std::uint64_t>(c - '0');
        }
        if (digits) features.size_limit = v;
      } else if (iequals(key, "8BITMIME")) {
        features.eightbitmime = true;
      } else if (iequals(key, "DSN")) {
        features.dsn = true;
      } else if (iequals(key, "SMTPUTF8")) {
        features.smtputf8 = true;
      } else if (iequals(key, "ENHANCEDSTATUSCODES")) {
        features.enhancedstatuscodes = true;
      } else if (iequals(key, "CHUNKING")) {
        features.chunking = true;
      } else if (iequals(key, "STARTTLS")) {
        features.starttls = true;
      } else if (iequals(key, "AUTH")) {
        features.auth = true;
        while (!params.empty() && (params.front() == ' ' || params.front() == '\t')) {
          params.remove_prefix(1);
        }
        // Several AUTH lines (AUTH and the old AUTH=) may be offered; keep the first list.
        if (features.auth_mechanisms.empty()) features.auth_mechanisms.assign(params);
      }
    }
    // Postfix too assumes 8BITMIME from a server that offers SMTPUTF8 but forgot 8BITMIME.
    if (features.smtputf8) features.eightbitmime = true;
  }

  void on_reply(client_reply r, client_timestamp now) {
    if (outstanding.empty()) {
      fail(client_error::kind::protocol, stage_now(), std::move(r), "unexpected reply");
      return;
    }
    const awaited a = outstanding.front();
    outstanding.pop_front();
    deadline.reset();
    if (!outstanding.empty()) deadline = now + timeout_for(outstanding.front().kind);
    const int cls = r.code / 100;
    switch (a.kind) {
      case client_stage::greeting: {
        greeting = r;
        if (cls != 2) {
          fail(client_error::kind::refused, a.kind, std::move(r), {});
          return;
        }
        bool esmtp = options.always_send_ehlo;
        std::string_view words = r.text;
        words = words.substr(0, words.find('\n'));
        for (std::size_t pos = 4; pos < words.size();) {
          const std::size_t end = std::min(words.find(' ', pos), words.size());
          if (iequals(words.substr(pos, end - pos), "ESMTP")) esmtp = true;
          pos = end + 1;
        }
        if (options.never_send_ehlo) esmtp = false;
        queue(esmtp ? client_stage::ehlo : client_stage::helo,
              (esmtp ? "EHLO " : "HELO ") + options.helo_name);
        state = client_state::hello;
        break;
      }
      case client_stage::ehlo:
        if (cls == 2) {
          parse_ehlo(r);
          after_hello(now);
        } else if (r.code == 421) {
          fail(client_error::kind::refused, a.kind, std::move(r), {});
          return;
        } else {
          queue(client_stage::helo, "HELO " + options.helo_name);
        }
        break;
      case client_stage::helo:
        if (cls != 2) {
          fail(client_error::kind::refused, a.kind, std::move(r), {});
          return;
        }
        features = ehlo_features{};
        after_hello(now);
        break;
      case client_stage::starttls:
        if (r.code == 220) {
          state = client_state::tls;
          deadline.reset();
          return;
        }
        if (options.starttls == client_options::tls_use::required) {
          fail(client_error::kind::tls, a.kind, std::move(r), "refused");
          return;
        }
        continue_after_tls_choice(now);  // may: go on in plain text
        break;
      case client_stage::auth:
        if (r.code == 334) {
          if (++auth_rounds > options.auth_rounds_max) {
            fail(client_error::kind::protocol, a.kind, std::move(r), "too many AUTH challenges");
            return;
          }
          std::string_view b64 = r.text.size() > 4 ? std::string_view(r.text).substr(4) : "";
          const auto decoded = base64_decode(b64);
          if (!decoded) {
            fail(client_error::kind::protocol, a.kind, std::move(r), "malformed AUTH challenge");
            return;
          }
          client_auth_step s = auth->step(*decoded);
          if (!s.ok) {
            fail(client_error::kind::auth_failed, a.kind, std::nullopt, s.reason);
            return;
          }
          queue(client_stage::auth, s.response ? base64_encode(*s.response) : std::string());
        } else if (cls == 2) {
          authenticated = true;
          begin_ready();
        } else {
          fail(client_error::kind::auth_failed, a.kind, std::move(r), {});
          return;
        }
        break;
      case client_stage::rset:
        // A failed RSET leaves nothing we could do better than going on (Postfix only uses
        // it to decide about caching the connection).
        break;
      case client_stage::mail:
        --txn_pending;
        result.mail = std::move(r);
        result.mail_done = now;
        mail_ok = cls == 2;
        if (!mail_ok) drop_unsent_transaction();
        break;
      case client_stage::rcpt:
        --txn_pending;
        if (a.index < result.rcpt.size()) result.rcpt[a.index] = std::move(r);
        result.rcpt_done = now;
        if (a.index + 1 == result.rcpt.size() && result.accepted() == 0) {
          drop_unsent_transaction();
        }
        break;
      case client_stage::data:
        --txn_pending;
        result.data_done = now;
        if (r.code / 100 == 3) {
          result.data = std::move(r);
          if (mail_ok && result.accepted() > 0) {
            state = client_state::body;
            at_line_start = true;
            prev_cr = false;
          } else {
            // The server wants content for a transaction we gave up: end it empty.
            out += ".\r\n";
            outstanding.push_back(awaited{client_stage::dot, 0});
            deadline = now + options.data_done_timeout;
            ignore_dot = true;
            ++txn_pending;
          }
        } else {
          result.data = std::move(r);
        }
        break;
      case client_stage::dot:
        --txn_pending;
        if (!ignore_dot) result.end_of_data = std::move(r);
        ignore_dot = false;
        break;
      case client_stage::quit:
        state = client_state::closed;
        deadline.reset();
        return;
      case client_stage::body:
      case client_stage::idle:
        break;
    }
    if (state == client_state::transaction && txn_pending == 0) finish_transaction(now);
    if (state == client_state::end_of_data && txn_pending == 0) finish_transaction(now);
    flush(now);
  }

  client_stage stage_now() const {
    if (!outstanding.empty()) return outstanding.front().kind;
    if (!unsent.empty()) return unsent.front().kind;
    switch (state) {
      case client_state::greeting:
        return client_stage::greeting;
      case client_state::body:
        return client_stage::body;
      case client_state::end_of_data:
        return client_stage::dot;
      case client_state::quitting:
        return client_stage::quit;
      default:
        return client_stage::idle;
    }
  }

  void complete_line(client_timestamp now) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line_well_formed(line)) {
      client_reply bad;
      bad.text = std::string(cut(line, 100));
      fail(client_error::kind::protocol, stage_now(), std::move(bad), "malformed reply");
      return;
    }
    if (++current_lines > options.reply_lines_max) {
      fail(client_error::kind::protocol, stage_now(), std::move(current),
           "reply has too many lines");
      return;
    }
    const bool last = line_is_last(line);
    if (current.text.size() < options.reply_bytes_max) {
      if (!current.text.empty()) current.text += '\n';
      current.text.append(cut(
          line, options.reply_bytes_max - std::min(options.reply_bytes_max, current.text.size())));
    }
    line.clear();
    line_cut = false;
    if (last) {
      client_reply r = std::move(current);
      current = client_reply{};
      current_lines = 0;
      classify(r);
      on_reply(std::move(r), now);
    }
  }
};

client_session::client_session(client_options options, client_timestamp now)
    : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
  impl_->outstanding.push_back(impl::awaited{client_stage::greeting, 0});
  impl_->deadline = now + impl_->options.helo_timeout;
}

client_session::~client_session() = default;

void client_session::set_authenticator(client_authenticator* a) noexcept { impl_->auth = a; }

void client_session::receive(std::span<const char> bytes, client_timestamp now) {
  impl& s = *impl_;
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (s.state == client_state::failed || s.state == client_state::closed) return;
    if (s.state == client_state::tls) {
      s.line.clear();  // plaintext after the 220 to STARTTLS is never read as a reply
      return;
    }
    const char* start = bytes.data() + i;
    const void* nl = std::memchr(start, '\n', bytes.size() - i);
    const std::size_t n =
        nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - start) : bytes.size() - i;
    const std::size_t room =
        s.options.reply_line_bytes_max - std::min(s.line.size(), s.options.reply_line_bytes_max);
    s.line.append(start, std::min(n, room));
    if (n > room) s.line_cut = true;
    i += n;
    if (nl) {
      ++i;
      s.complete_line(now);
    }
  }
}

void client_session::tls_started(client_timestamp now) {
  impl& s = *impl_;
  if (s.state != client_state::tls) return;
  s.tls_on = true;
  s.features = ehlo_features{};
  s.queue(client_stage::ehlo, "EHLO " + s.options.helo_name);
  s.state = client_state::hello;
  s.flush(now);
}

bool client_session::tls_active() const noexcept { return impl_->tls_on; }

void client_session::receive_eof(client_timestamp /*now*/) {
  impl& s = *impl_;
  if (s.state == client_state::quitting) {
    s.state = client_state::closed;
    s.deadline.reset();
    return;
  }
  s.fail(client_error::kind::lost_connection, s.stage_now(), std::nullopt, {});
}

void client_session::advance(client_timestamp now) {
  impl& s = *impl_;
  if (s.deadline && now >= *s.deadline) {
    if (s.state == client_state::quitting) {
      s.state = client_state::closed;
      s.deadline.reset();
      return;
    }
    s.fail(client_error::kind::timeout, s.stage_now(), std::nullopt, {});
  }
}

bool client_session::start(const client_envelope& e, client_timestamp now) {
  impl& s = *impl_;
  if (s.state != client_state::ready || e.recipients.empty()) return false;
  s.result = client_result{};
  s.result.started = now;
  s.result.rcpt.resize(e.recipients.size());
  s.mail_ok = false;
  s.ignore_dot = false;
  if (s.need_rset) {
    s.queue(client_stage::rset, "RSET");
    s.need_rset = false;
  }
  std::string mail = "MAIL FROM:<" + rfc822::externalize(e.sender) + ">";
  if (s.features.size && e.size > 0) mail += " SIZE=" + std::to_string(e.size);
  if (s.features.eightbitmime && e.body_8bit) mail += " BODY=8BITMIME";
  if (s.features.smtputf8 && e.smtputf8) mail += " SMTPUTF8";
  if (s.features.dsn && !e.mail_dsn_parameters.empty()) mail += " " + e.mail_dsn_parameters;
  s.queue(client_stage::mail, std::move(mail));
  for (std::size_t i = 0; i < e.recipients.size(); ++i) {
    std::string rcpt = "RCPT TO:<" + rfc822::externalize(e.recipients[i]) + ">";
    if (s.features.dsn && i < e.rcpt_dsn_parameters.size() && !e.rcpt_dsn_parameters[i].empty()) {
      rcpt += " " + e.rcpt_dsn_parameters[i];
    }
    s.queue(client_stage::rcpt, std::move(rcpt), i);
  }
  s.queue(client_stage::data, "DATA");
  s.txn_pending = e.recipients.size() + 2;
  s.state = client_state::transaction;
  s.flush(now);
  return true;
}

bool client_session::wants_body() const noexcept { return impl_->state == client_state::body; }

void client_session::body(std::span<const char> content) {
  impl& s = *impl_;
  if (s.state != client_state::body) return;
  std::size_t i = 0;
  const std::size_t n = content.size();
  const char* p = content.data();
  while (i < n) {
    if (s.at_line_start && p[i] == '.') s.out += '.';
    const void* nl = std::memchr(p + i, '\n', n - i);
    const std::size_t end = nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - p) : n;
    if (end > i) {
      s.out.append(p + i, end - i);
      s.prev_cr = p[end - 1] == '\r';
      s.at_line_start = false;
    }
    if (!nl) break;
    if (!s.prev_cr) s.out += '\r';
    s.out += '\n';
    s.prev_cr = false;
    s.at_line_start = true;
    i = end + 1;
  }
}

void client_session::end_body(client_timestamp now) {
  impl& s = *impl_;
  if (s.state != client_state::body) return;
  if (!s.at_line_start) s.out += s.prev_cr ? "\n" : "\r\n";
  s.out += ".\r\n";
  s.result.body_done = now;
  s.outstanding.push_back(impl::awaited{client_stage::dot, 0});
  s.deadline = now + s.options.data_done_timeout;
  ++s.txn_pending;
  s.state = client_state::end_of_data;
}

std::optional<client_result> client_session::take_result() {
  std::optional<client_result> r = std::move(impl_->done);
  impl_->done.reset();
  return r;
}

void client_session::quit(client_timestamp now) {
  impl& s = *impl_;
  if (s.state == client_state::ready) {
    s.queue(client_stage::quit, "QUIT");
    s.state = client_state::quitting;
    s.flush(now);
    return;
  }
  if (s.state != client_state::failed && s.state != client_state::quitting) {
    s.state = client_state::closed;
    s.deadline.reset();
  }
}

std::string_view client_session::output() const noexcept {
  return std::string_view(impl_->out).substr(impl_->out_pos);
}

void client_session::consume_output(std::size_t n) noexcept {
  impl& s = *impl_;
  s.out_pos = std::min(s.out.size(), s.out_pos + n);
  if (s.out_pos == s.out.size()) {
    s.out.clear();
    s.out_pos = 0;
  }
}

std::optional<client_timestamp> client_session::deadline() const noexcept {
  return impl_->deadline;
}
client_state client_session::state() const noexcept { return impl_->state; }
client_stage client_session::stage() const noexcept { return impl_->stage_now(); }
const ehlo_features& client_session::features() const noexcept { return impl_->features; }
const std::optional<client_reply>& client_session::greeting() const noexcept {
  return impl_->greeting;
}
bool client_session::authenticated() const noexcept { return impl_->authenticated; }
const std::optional<client_error>& client_session::error() const noexcept { return impl_->error; }

}  // namespace relaylab::smtp
