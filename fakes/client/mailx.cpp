#include "fakes/client/mailx.hpp"

#include "fakes/client/smtp_driver.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtp/base64.hpp"
#include "relay/smtp/client_session.hpp"
#include "relay/tls/client.hpp"

#include <filesystem>

#include <cctype>
#include <charconv>
#include <ctime>

namespace relaylab::fakes::client {

std::string mailx_settings::get(const std::string& name, std::string fallback) const {
  auto it = vars.find(name);
  return it == vars.end() ? fallback : it->second;
}

void mailx_settings::set(std::string_view a) {
  const auto eq = a.find('=');
  if (eq == std::string_view::npos) {
    vars[std::string(a)] = "";
  } else {
    vars[std::string(a.substr(0, eq))] = std::string(a.substr(eq + 1));
  }
}

bool parse_mailrc(std::string_view text, std::string_view file, mailx_settings& settings,
                  std::string& error) {
  std::size_t lineno = 0;
  while (!text.empty()) {
    ++lineno;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    // Words with shell-like quotes: name='a b' stays one word without its quotes.
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    char quote = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quote) {
        if (c == quote) {
          quote = 0;
        } else if (c == '\\' && quote == '"' && i + 1 < line.size()) {
          cur.push_back(line[++i]);
        } else {
          cur.push_back(c);
        }
        continue;
      }
      if (c == '#' && !in_word) break;
      if (c == ' ' || c == '\t' || c == '\r') {
        if (in_word) words.push_back(std::move(cur));
        cur.clear();
        in_word = false;
        continue;
      }
      in_word = true;
      if (c == '\'' || c == '"') {
        quote = c;
      } else if (c == '\\' && i + 1 < line.size()) {
        cur.push_back(line[++i]);
      } else {
        cur.push_back(c);
      }
    }
    if (quote) {
      error = std::string(file) + ":" + std::to_string(lineno) + ": unterminated quote";
      return false;
    }
    if (in_word) words.push_back(std::move(cur));
    if (words.empty()) continue;
    if (words[0] == "set" || words[0] == "se") {
      for (std::size_t i = 1; i < words.size(); ++i) settings.set(words[i]);
    } else if (words[0] == "unset" || words[0] == "uns") {
      for (std::size_t i = 1; i < words.size(); ++i) settings.vars.erase(words[i]);
    }
  }
  return true;
}

namespace {

bool has_8bit(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return true;
  }
  return false;
}

std::string rfc5322_date(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += sep;
    s += x;
  }
  return s;
}

// Adapter: relay/sasl's libsasl2 client behind the engine's authenticator interface, with the
// mechanism fixed by mailx's smtp-auth setting. As s-nail: AUTH is sent whatever EHLO offered
// (the server's reply decides), and without an initial response: "AUTH PLAIN", then the
// credentials after the server's 334, so a server that refuses AUTH (530 before STARTTLS)
// never receives them.
class sasl_authenticator final : public smtp::client_authenticator {
 public:
  sasl_authenticator(std::string mechanism, std::unique_ptr<sasl::client_session> s)
      : mechanism_(std::move(mechanism)), s_(std::move(s)) {}
  smtp::client_auth_step start(std::string_view /*server_mechanisms*/) override {
    auto r = convert(s_->start(mechanism_));
    if (r.ok && r.response) {
      held_ = std::move(r.response);  // sent in answer to the first 334
      r.response.reset();
    }
    return r;
  }
  smtp::client_auth_step step(std::string_view challenge) override {
    if (held_) {
      smtp::client_auth_step r;
      r.ok = true;
      r.response = std::move(held_);
      held_.reset();
      return r;
    }
    return convert(s_->step(challenge));
  }

 private:
  std::optional<std::string> held_;
  static smtp::client_auth_step convert(const sasl::client_step_result& x) {
    smtp::client_auth_step r;
    r.ok = x.state == sasl::client_step_result::status::response;
    r.mechanism = x.mechanism;
    r.response = x.response;
    r.reason = x.reason;
    return r;
  }
  std::string mechanism_;
  std::unique_ptr<sasl::client_session> s_;
};

// mailx -v: one line per protocol line; AUTH secrets are not shown.
class verbose_trace {
 public:
  explicit verbose_trace(std::ostream* out) : out_(out) {}
  void operator()(char dir, std::string_view bytes) {
    if (!out_) return;
    std::string& buf = dir == 'C' ? client_ : server_;
    buf.append(bytes);
    for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (dir == 'C') {
        if (in_body_) {
          if (line == ".") {
            in_body_ = false;
            *out_ << ">>> .\n";
          }
          continue;  // mailx -v does not echo the message
        }
        if (hide_next_) {
          line = "[secret]";
        } else if (line.size() > 5 && (line.starts_with("AUTH ") || line.starts_with("auth "))) {
          const auto sp = line.find(' ', 5);
          if (sp != std::string::npos) line = line.substr(0, sp) + " [secret]";
        }
        if (line == "DATA") data_sent_ = true;
        *out_ << ">>> " << line << "\n";
      } else {
        *out_ << "<<< " << line << "\n";
        hide_next_ = line.starts_with("334 ");
        if (line.starts_with("354") && data_sent_) in_body_ = true;
      }
    }
  }

 private:
  std::ostream* out_;
  std::string client_, server_;
  bool in_body_ = false, hide_next_ = false, data_sent_ = false;
};

std::string reply_text(const smtp::client_reply& r) { return r.one_line(); }

}  // namespace

std::string build_mailx_message(const mailx_message_input& in, const mailx_environment& env) {
  const bool eight = has_8bit(in.body) || has_8bit(in.subject);
  std::string m;
  m += "Date: " + rfc5322_date(env.now) + "\r\n";
  m += "From: " + in.from + "\r\n";
  m += "To: " + join(in.to, ", ") + "\r\n";
  if (!in.subject.empty()) {
    m += "Subject: ";
    m += has_8bit(in.subject) ? "=?utf-8?B?" + smtp::base64_encode(in.subject) + "?=" : in.subject;
    m += "\r\n";
  }
  char hex[32];
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(env.now.time_since_epoch());
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(secs.count()));
  m += "Message-ID: <" + std::string(hex) + "." + env.random16 + "%" + in.from + ">\r\n";
  m += "User-Agent: " + in.user_agent + "\r\n";
  if (eight) {
    m += "MIME-Version: 1.0\r\n";
    m += "Content-Type: text/plain; charset=utf-8\r\n";
    m += "Content-Transfer-Encoding: 8bit\r\n";
  }
  m += "\r\n";
  // Body lines end in CRLF; a final line without newline gets one.
  for (std::size_t i = 0; i < in.body.size(); ++i) {
    const char c = in.body[i];
    if (c == '\n' && (i == 0 || in.body[i - 1] != '\r')) m += '\r';
    m += c;
  }
  if (!in.body.empty() && in.body.back() != '\n') m += "\r\n";
  return m;
}

std::optional<smtp_url> parse_smtp_url(std::string_view url, std::string& error) {
  smtp_url u;
  std::string_view rest = url;
  if (rest.starts_with("smtp://")) {
    rest.remove_prefix(7);
  } else if (rest.starts_with("submission://")) {
    rest.remove_prefix(13);
    u.port = 587;
  } else if (rest.starts_with("smtps://")) {
    rest.remove_prefix(8);
    u.port = 465;
    u.tls = true;
  } else if (rest.find("://") != std::string_view::npos) {
    error = "unsupported URL scheme in \"" + std::string(url) +
            "\" (smtp://, submission:// or smtps://)";
    return std::nullopt;
  }
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view port;
  if (rest.starts_with("[")) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) {
      error = "missing ] in \"" + std::string(url) + "\"";
      return std::nullopt;
    }
    u.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (rest.starts_with(":")) port = rest.substr(1);
  } else {
    const auto colon = rest.rfind(':');
    u.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) port = rest.substr(colon + 1);
  }
  if (u.host.empty()) {
    error = "no host in \"" + std::string(url) + "\"";
    return std::nullopt;
  }
  if (!port.empty()) {
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535) {
      error = "bad port \"" + std::string(port) + "\" in \"" + std::string(url) + "\"";
      return std::nullopt;
    }
    u.port = static_cast<std::uint16_t>(p);
  }
  if (u.host == "localhost") u.host = "127.0.0.1";
  return u;
}

boost::asio::awaitable<mailx_result> mailx_send(mailx_settings settings,
                                                mailx_message_input message, mailx_environment env,
                                                net::connector& connector, net::runtime& rt,
                                                std::ostream* verbose) {
  mailx_result res;
  auto fail = [&](std::string why) {
    res.exit_status = mailx_exit_send_failed;
    res.error = std::move(why);
    return res;
  };
  const std::string url_text = settings.get("smtp", settings.get("mta"));
  if (url_text.empty()) co_return fail("no smtp server given (-S smtp=smtp://HOST:PORT)");
  std::string err;
  const auto url = parse_smtp_url(url_text, err);
  if (!url) co_return fail(err);

  // AUTH set up before connecting, so a bad setting fails without network traffic.
  std::string mech = settings.get("smtp-auth", "none");
  for (auto& c : mech) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::shared_ptr<sasl::client_library> sasl_lib;
  std::unique_ptr<sasl_authenticator> auth;
  if (mech != "NONE") {
    if (mech != "PLAIN" && mech != "LOGIN" && mech != "CRAM-MD5") {
      co_return fail("unsupported smtp-auth \"" + settings.get("smtp-auth") +
                     "\" (plain, login, cram-md5, none)");
    }
    const std::string user = settings.get("smtp-auth-user");
    const std::string pass = settings.get("smtp-auth-password");
    if (user.empty()) co_return fail("smtp-auth is set but smtp-auth-user is not");
    sasl_lib = sasl::client_library::init(err);
    if (!sasl_lib) co_return fail("SASL: " + err);
    sasl::client_config cfg;
    cfg.server_fqdn = url->host;
    cfg.username = user;
    cfg.password = pass;
    auto s = sasl::client_session::create(sasl_lib, cfg, err);
    if (!s) co_return fail("SASL: " + err);
    auth = std::make_unique<sasl_authenticator>(mech, std::move(s));
  }

  // TLS set up before connecting too.
  const bool starttls = settings.vars.count("smtp-use-starttls") > 0;
  std::shared_ptr<tls::client_context> tls_ctx;
  std::string verify = settings.get("tls-verify", settings.get("ssl-verify", "strict"));
  for (auto& c : verify) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (verify.empty()) verify = "strict";
  if (starttls || url->tls) {
    if (verify != "strict" && verify != "ask" && verify != "warn" && verify != "ignore") {
      co_return fail("unsupported ssl-verify \"" + verify + "\" (strict, ask, warn, ignore)");
    }
    tls::client_settings cs;
    cs.level = tls::client_level::encrypt;
    cs.ca_file = settings.get("tls-ca-file", settings.get("ssl-ca-file"));
    std::error_code fe;
    if (cs.ca_file.empty() && std::filesystem::is_directory("/etc/ssl/certs", fe))
      cs.ca_path = "/etc/ssl/certs";
    tls_ctx = tls::client_context::create(cs, err);
    if (!tls_ctx) co_return fail("TLS: " + err);
  }

  if (verbose) *verbose << "Connecting to " << url->host << ":" << url->port << " ...\n";
  std::error_code ec;
  auto stream = co_await connector.connect(url->host, url->port, std::chrono::seconds(30), ec);
  if (!stream) co_return fail(url->host + ":" + std::to_string(url->port) + ": " + ec.message());
  const std::string hostport = url->host + ":" + std::to_string(url->port);

  // The handshake and the certificate check ssl-verify asks for; false when the send fails.
  auto secure = [&]() -> boost::asio::awaitable<bool> {
    auto secured = std::make_unique<tls::client_stream>(std::move(stream), tls_ctx);
    secured->set_verify_time(rt.now());
    std::error_code hec;
    std::vector<std::string> names{url->host};
    // No SNI for an address literal (RFC 6066 3).
    const bool literal = url->host.find_first_not_of("0123456789.") == std::string::npos ||
                         url->host.find(':') != std::string::npos;
    // Named: GCC 12 mishandles a conditional's temporary passed to a coroutine.
    std::string sni = literal ? std::string() : url->host;
    co_await secured->handshake(std::move(sni), std::move(names), std::chrono::seconds(30), hec);
    if (hec) {
      std::string why = secured->errors().empty() ? hec.message() : secured->errors().front();
      stream = std::move(secured);
      stream->close();
      res.error = "could not initiate TLS connection: " + why;
      co_return false;
    }
    std::string problem;
    if (secured->peer_trust() == tls::trust::untrusted) {
      problem = "TLS certificate verify failed: " + secured->verify_error();
    } else if (secured->peer_trust() != tls::trust::verified) {
      problem = "TLS certificate does not match: " + hostport;
    }
    res.tls = secured->info();
    if (verbose)
      *verbose << "TLS connection established: " << tls::describe(secured->info()) << "\n";
    stream = std::move(secured);
    if (!problem.empty()) {
      if (verify == "strict" || verify == "ask") {
        stream->close();
        res.error = problem;
        co_return false;
      }
      if (verify == "warn") res.warnings.push_back(problem);
    }
    co_return true;
  };
  if (url->tls && !co_await secure()) co_return fail(res.error);

  smtp::client_options opt;
  opt.helo_name = settings.get("hostname", settings.get("smtp-hostname", env.hostname));
  if (opt.helo_name.empty()) opt.helo_name = "localhost";
  if (starttls && !url->tls) opt.starttls = smtp::client_options::tls_use::required;
  opt.auth_unoffered = true;  // s-nail sends AUTH whatever EHLO offered
  smtp::client_session s(opt, client_now(rt));
  if (auth) s.set_authenticator(auth.get());
  verbose_trace trace(verbose);
  auto drv = std::make_unique<smtp_driver>(s, *stream, rt,
                                           [&](char d, std::string_view b) { trace(d, b); });
  auto describe = [&]() -> std::string {
    const auto& e = s.error();
    if (!e) return "connection closed";
    std::string t = "smtp-server: ";
    if (e->reply) return t + reply_text(*e->reply);
    return t + (e->detail.empty() ? std::string(smtp::while_text(e->stage)) : e->detail);
  };

  auto ready_or_tls = [&] {
    return s.state() == smtp::client_state::ready || s.state() == smtp::client_state::tls;
  };
  co_await drv->pump(ready_or_tls);
  if (s.state() == smtp::client_state::tls) {
    if (!co_await secure()) co_return fail(res.error);
    drv = std::make_unique<smtp_driver>(s, *stream, rt,
                                        [&](char d, std::string_view b) { trace(d, b); });
    s.tls_started(client_now(rt));
    co_await drv->pump(ready_or_tls);
  }
  if (s.state() != smtp::client_state::ready) {
    const auto& e = s.error();
    if (e && e->what == smtp::client_error::kind::tls && !e->reply) {
      stream->close();
      co_return fail("smtp-server: STARTTLS not offered by the server (smtp-use-starttls is set)");
    }
    stream->close();
    co_return fail(describe());
  }
  const std::string content = build_mailx_message(message, env);
  smtp::client_envelope envl;
  envl.sender = message.from;
  envl.recipients = message.to;
  envl.size = content.size();
  envl.body_8bit = has_8bit(content);
  s.start(envl, client_now(rt));
  std::optional<smtp::client_result> result;
  co_await drv->pump([&] {
    if (s.wants_body()) {
      s.body(std::span<const char>(content.data(), content.size()));
      s.end_body(client_now(rt));
    }
    if (!result) result = s.take_result();
    return result.has_value();
  });
  if (!result) {
    stream->close();
    co_return fail(describe());
  }
  s.quit(client_now(rt));
  co_await drv->pump([&] { return false; });
  stream->close();
  if (!result->delivered()) {
    if (result->mail.code / 100 != 2) co_return fail("smtp-server: " + reply_text(result->mail));
    for (const auto& r : result->rcpt) {
      if (r.code / 100 != 2) co_return fail("smtp-server: " + reply_text(r));
    }
    if (result->data && result->data->code != 354) {
      co_return fail("smtp-server: " + reply_text(*result->data));
    }
    if (result->end_of_data) co_return fail("smtp-server: " + reply_text(*result->end_of_data));
    co_return fail("smtp-server: message not sent");
  }
  // mailx fails the send when any recipient was refused, even if others took it.
  for (const auto& r : result->rcpt) {
    if (r.code / 100 != 2) co_return fail("smtp-server: " + reply_text(r));
  }
  co_return res;
}

}  // namespace relaylab::fakes::client
