#include "fakes/mx/mx.hpp"

#include "relay/tls/context.hpp"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

namespace relaylab::fakes::mx {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_error(const smtp::verdict& v) { return v && v->code() >= 400; }

std::string replace_percent_s(std::string text, std::string_view value) {
  const auto p = text.find("%s");
  if (p != std::string::npos) text.replace(p, 2, value);
  return text;
}

smtp::server_options engine_options(const script& s, const tls::server_context* tls) {
  smtp::server_options o;
  o.myhostname = s.hostname;
  o.banner = s.banner.empty() ? s.hostname + " ESMTP relaylab-fake-mx" : s.banner;
  o.message_size_limit = s.message_size_max;
  o.timeout = s.timeout;
  o.error_sleep_time = s.error_sleep;
  o.sasl_auth_enable = !s.users.empty();
  if (o.sasl_auth_enable) o.sasl_mechanisms = {"PLAIN", "LOGIN"};
  o.inet_ipv6 = true;
  if (tls) {
    const auto& t = tls->settings();
    o.tls_wrappermode = t.wrappermode;
    o.tls_offered = !t.wrappermode;
    o.tls_required = t.enforce_tls() && !t.wrappermode;
    o.tls_auth_only = t.auth_only;
  }
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// server

server::server(script behaviour, server_options options)
    : script_(std::move(behaviour)), options_(std::move(options)), fired_(script_.rules.size()) {}

server::~server() = default;

bool server::prepare(std::string& error) {
  if (options_.maildir.empty()) return true;
  std::error_code ec;
  for (const char* sub : {"tmp", "new", "cur"}) {
    std::filesystem::create_directories(std::filesystem::path(options_.maildir) / sub, ec);
    if (ec) {
      error = "maildir " + options_.maildir + ": " + ec.message();
      return false;
    }
  }
  return true;
}

void server::set_behaviour(script s) {
  script_ = std::move(s);
  fired_.assign(script_.rules.size(), 0);
}

std::unique_ptr<connection> server::open(std::string client_addr, std::string client_port,
                                         timestamp now) {
  smtp::client_identity id;
  id.addr = std::move(client_addr);
  id.port = std::move(client_port);
  return std::make_unique<connection>(*this, std::move(id), now);
}

const rule* server::match(stage where, std::string_view recipient) {
  for (std::size_t i = 0; i < script_.rules.size(); ++i) {
    const rule& r = script_.rules[i];
    if (r.where != where) continue;
    if (!r.recipient.empty() && !iequals(r.recipient, recipient)) continue;
    if (r.times && fired_[i] >= *r.times) continue;
    ++fired_[i];
    return &r;
  }
  return nullptr;
}

bool server::rate_exceeded(timestamp now) {
  if (!script_.rate_messages) return false;
  const auto window = std::chrono::duration_cast<timestamp>(script_.rate_window);
  while (!accepted_at_.empty() && now - accepted_at_.front() >= window) accepted_at_.pop_front();
  return accepted_at_.size() >= *script_.rate_messages;
}

std::string server::next_queue_id() {
  char buf[32];
  std::snprintf(buf, sizeof buf, "FAKE%08llX", static_cast<unsigned long long>(seq_ + 1));
  return buf;
}

bool server::deliver(message m, std::string& error) {
  ++seq_;
  m.seq = seq_;
  if (!options_.maildir.empty()) {
    namespace fs = std::filesystem;
    const std::string name = std::to_string(seq_) + "." + options_.maildir_unique;
    const fs::path tmp = fs::path(options_.maildir) / "tmp" / name;
    const fs::path dst = fs::path(options_.maildir) / "new" / name;
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(m.data.data(), static_cast<std::streamsize>(m.data.size()));
      out.flush();
      if (!out) {
        ++counts_.maildir_errors;
        error = "cannot write " + tmp.string();
        --seq_;
        return false;
      }
    }
    std::error_code ec;
    fs::rename(tmp, dst, ec);
    if (ec) {
      ++counts_.maildir_errors;
      error = "cannot rename " + tmp.string() + ": " + ec.message();
      --seq_;
      return false;
    }
  }
  ++counts_.messages;
  counts_.recipients += m.recipients.size();
  counts_.bytes += m.data.size();
  if (options_.on_message) options_.on_message(m);
  if (mailbox_.size() < script_.mailbox_messages_max) {
    mailbox_.push_back(std::move(m));
  } else {
    ++counts_.mailbox_dropped;
  }
  return true;
}

std::string server::summary() const {
  const auto& c = counts_;
  std::string s;
  auto add = [&](const char* k, std::uint64_t v) {
    if (!s.empty()) s += ' ';
    s += k;
    s += '=';
    s += std::to_string(v);
  };
  add("sessions", c.sessions_total);
  add("refused", c.sessions_refused);
  add("messages", c.messages);
  add("recipients", c.recipients);
  add("bytes", c.bytes);
  add("rejected", c.rejected);
  add("greylisted", c.greylisted);
  add("rate_limited", c.rate_limited);
  add("disconnects", c.disconnects);
  add("hangs", c.hangs);
  add("auth_ok", c.auth_success);
  add("auth_failed", c.auth_failure);
  if (options_.tls) {
    add("tls", c.tls_sessions);
    add("tls_failed", c.tls_failures);
  }
  if (c.maildir_errors) add("maildir_errors", c.maildir_errors);
  return s;
}

// ---------------------------------------------------------------------------------------------
// connection: the engine wrapper

connection::connection(server& srv, smtp::client_identity client, timestamp now)
    : srv_(srv), now_(now) {
  ++srv_.counts_.sessions_total;
  ++srv_.counts_.sessions_active;
  engine_ = std::make_unique<smtp::server_session>(
      engine_options(srv_.script_, srv_.options_.tls.get()), *this, std::move(client), now);
  engine_->start(now);
  after_engine_call();
}

connection::~connection() {
  engine_.reset();  // may call on_auth_abort; before the counters go
  --srv_.counts_.sessions_active;
}

std::uint64_t connection::produced() const noexcept { return consumed_ + engine_->output().size(); }

void connection::start_next_hold() {
  hold_until_.reset();
  if (holds_.empty() || holds_.front().forever) return;
  hold_until_ = now_ + std::chrono::duration_cast<timestamp>(holds_.front().delay);
}

void connection::after_engine_call() {
  // Bounded: each finish_message consumes one pending end of data.
  for (int i = 0; i < 100000 && pending_finish_; ++i) {
    auto r = std::move(*pending_finish_);
    pending_finish_.reset();
    engine_->finish_message(std::move(r), now_);
  }
  if (close_after_reply_from_ && !close_at_) {
    const std::uint64_t from = *close_after_reply_from_;
    const auto out = engine_->output();
    const std::size_t off = from >= consumed_ ? static_cast<std::size_t>(from - consumed_) : 0;
    const auto crlf = out.find("\r\n", off);
    if (crlf != std::string_view::npos) close_at_ = consumed_ + crlf + 2;
  }
  // A hang ends when the engine's own timeout fires: close without the held replies.
  if (!holds_.empty() && holds_.front().forever && engine_->closing()) {
    close_at_ = holds_.front().position;
  }
}

void connection::receive(std::span<const char> bytes, timestamp now) {
  now_ = now;
  engine_->receive(bytes, now);
  after_engine_call();
}

void connection::receive_eof(timestamp now) {
  now_ = now;
  engine_->receive_eof(now);
  after_engine_call();
}

void connection::advance(timestamp now) {
  now_ = now;
  // Release holds whose time has come; the next one starts counting from now.
  for (int i = 0; i < 1000 && hold_until_ && now >= *hold_until_; ++i) {
    holds_.pop_front();
    start_next_hold();
  }
  if (const auto d = engine_->deadline(); d && now >= *d) engine_->advance(now);
  after_engine_call();
}

void connection::run_pending(timestamp now) { advance(now); }

void connection::tls_established(const tls::session_info& info, timestamp now) {
  now_ = now;
  tls_ = info;
  ++srv_.counts_.tls_sessions;
  engine_->tls_started(now);
  after_engine_call();
}

void connection::tls_failed(bool, const std::vector<std::string>&, timestamp now) {
  now_ = now;
  ++srv_.counts_.tls_failures;
  engine_->tls_failed(now);
  after_engine_call();
}

std::string_view connection::output() const noexcept {
  auto out = engine_->output();
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  if (!holds_.empty()) limit = holds_.front().position;
  if (close_at_) limit = std::min(limit, *close_at_);
  if (limit < consumed_ + out.size()) {
    out = out.substr(0, limit > consumed_ ? static_cast<std::size_t>(limit - consumed_) : 0);
  }
  return out;
}

void connection::consume_output(std::size_t n) noexcept {
  engine_->consume_output(n);
  consumed_ += n;
}

std::optional<timestamp> connection::deadline() const noexcept {
  auto d = engine_->deadline();
  if (hold_until_ && (!d || *hold_until_ < *d)) d = hold_until_;
  return d;
}

bool connection::closing() const noexcept {
  if (close_at_) return holds_.empty() || holds_.front().position >= *close_at_;
  // Replies held by a delay still go out before an engine-requested close.
  return engine_->closing() && holds_.empty();
}

// ---------------------------------------------------------------------------------------------
// connection: the handler

smtp::verdict connection::apply(const rule* r, stage where) {
  if (!r) return std::nullopt;
  const std::uint64_t pos = produced();
  if (r->act.delay.count() > 0) {
    holds_.push_back({pos, r->act.delay, false});
    if (holds_.size() == 1) start_next_hold();
  }
  switch (r->act.what) {
    case action::kind::accept:
      return std::nullopt;
    case action::kind::reply: {
      smtp::reply rep{r->act.reply};
      if (rep.code() >= 400) ++srv_.counts_.rejected;
      // A scripted 421 ends the session after its reply, as a real server's would.
      if (rep.code() == 421 && where != stage::connect) close_after_reply_from_ = pos;
      return rep;
    }
    case action::kind::disconnect:
      ++srv_.counts_.disconnects;
      if (!close_at_) close_at_ = pos;
      return std::nullopt;
    case action::kind::hang:
      ++srv_.counts_.hangs;
      holds_.push_back({pos, std::chrono::milliseconds(0), true});
      if (holds_.size() == 1) start_next_hold();
      return std::nullopt;
  }
  return std::nullopt;
}

smtp::verdict connection::on_connect(const smtp::client_identity&) {
  const auto& s = srv_.script_;
  if (s.sessions_max && srv_.counts_.sessions_active > *s.sessions_max) {
    ++srv_.counts_.sessions_refused;
    return smtp::reply{"421 4.7.0 " + s.hostname + " Error: too many connections"};
  }
  return apply(srv_.match(stage::connect, {}), stage::connect);
}

smtp::verdict connection::on_helo(const smtp::client_identity&) {
  return apply(srv_.match(stage::helo, {}), stage::helo);
}

smtp::verdict connection::on_mail(const smtp::client_identity& client,
                                  const smtp::mail_command& mail) {
  const auto& s = srv_.script_;
  if (s.auth_required && !engine_->authenticated()) {
    ++srv_.counts_.rejected;
    return smtp::reply{"530 5.7.0 Authentication required"};
  }
  if (srv_.rate_exceeded(now_)) {
    ++srv_.counts_.rate_limited;
    ++srv_.counts_.rejected;
    if (s.rate_code == 421) {
      close_after_reply_from_ = produced();
      return smtp::reply{"421 4.7.0 " + s.hostname + " Error: too many messages from " +
                         client.addr + ", closing"};
    }
    return smtp::reply{"451 4.7.1 Error: too many messages from " + client.addr +
                       ", try again later"};
  }
  auto v = apply(srv_.match(stage::mail, {}), stage::mail);
  if (!is_error(v) && !close_at_) {
    current_ = message{};
    current_.client_addr = client.addr;
    current_.helo = client.helo;
    current_.auth_user = engine_->authenticated() ? auth_user_ : std::string();
    current_.sender = mail.sender;
    if (tls_) {
      current_.tls = true;
      current_.tls_protocol = tls_->protocol;
      current_.tls_cipher = tls_->cipher;
    }
    in_transaction_ = true;
    size_exceeded_ = false;
  }
  return v;
}

smtp::verdict connection::on_rcpt(const smtp::client_identity& client,
                                  const smtp::rcpt_command& rcpt) {
  auto v = apply(srv_.match(stage::rcpt, rcpt.recipient), stage::rcpt);
  if (!v && !close_at_ && srv_.script_.greylist_attempts > 0) {
    auto key = std::make_tuple(client.addr, current_.sender, rcpt.recipient);
    auto it = srv_.greylist_.find(key);
    if (it == srv_.greylist_.end() && srv_.greylist_.size() < srv_.script_.greylist_entries_max) {
      it = srv_.greylist_.emplace(std::move(key), 0).first;
    }
    if (it != srv_.greylist_.end() && it->second < srv_.script_.greylist_attempts) {
      ++it->second;
      ++srv_.counts_.greylisted;
      ++srv_.counts_.rejected;
      return smtp::reply{replace_percent_s(srv_.script_.greylist_reply, rcpt.recipient)};
    }
  }
  if (!is_error(v) && !close_at_ && in_transaction_) current_.recipients.push_back(rcpt.recipient);
  return v;
}

smtp::verdict connection::on_data(const smtp::client_identity&) {
  return apply(srv_.match(stage::data, {}), stage::data);
}

void connection::on_body(std::span<const char> chunk) {
  if (in_transaction_) current_.data.append(chunk.data(), chunk.size());
}

void connection::on_message_end(const smtp::client_identity&, bool size_exceeded) {
  if (size_exceeded) {
    pending_finish_ = smtp::reply{"552 5.3.4 Error: message file too big"};
    in_transaction_ = false;
    return;
  }
  auto v = apply(srv_.match(stage::dot, {}), stage::dot);
  if (close_at_ || (!holds_.empty() && holds_.back().forever)) {
    in_transaction_ = false;
    return;  // no reply will ever be seen; the message is not accepted
  }
  if (is_error(v)) {
    pending_finish_ = std::move(*v);
    in_transaction_ = false;
    return;
  }
  const std::string queue_id = srv_.next_queue_id();
  current_.queue_id = queue_id;
  std::string error;
  if (!srv_.deliver(std::move(current_), error)) {
    pending_finish_ = smtp::reply{"451 4.3.0 Error: queue file write error"};
  } else {
    if (srv_.script_.rate_messages) srv_.accepted_at_.push_back(now_);
    pending_finish_ = v ? std::move(*v) : smtp::reply{"250 2.0.0 Ok: queued as " + queue_id};
  }
  current_ = message{};
  in_transaction_ = false;
}

void connection::on_reset() {
  current_ = message{};
  in_transaction_ = false;
}

smtp::auth_step connection::check_credentials(std::string_view user, std::string_view password) {
  for (const auto& u : srv_.script_.users) {
    if (u.name == user && u.password == password) {
      ++srv_.counts_.auth_success;
      auth_user_ = std::string(user);
      return {smtp::auth_step::status::success, {}, "235 2.7.0 Authentication successful"};
    }
  }
  ++srv_.counts_.auth_failure;
  return {smtp::auth_step::status::failure,
          {},
          "535 5.7.8 Error: authentication failed: authentication failure"};
}

smtp::auth_step connection::on_auth_start(const smtp::client_identity& client,
                                          std::string_view mechanism,
                                          std::optional<std::string_view> initial) {
  auth_mechanism_.assign(mechanism.begin(), mechanism.end());
  for (auto& c : auth_mechanism_)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auth_user_.clear();
  auth_step_ = 0;
  if (auth_mechanism_ != "PLAIN" && auth_mechanism_ != "LOGIN") {
    ++srv_.counts_.auth_failure;
    return {smtp::auth_step::status::failure,
            {},
            "535 5.7.8 Error: authentication failed: no mechanism available"};
  }
  if (!initial) {
    return {smtp::auth_step::status::challenge, auth_mechanism_ == "LOGIN" ? "Username:" : "", {}};
  }
  return on_auth_continue(client, *initial);
}

smtp::auth_step connection::on_auth_continue(const smtp::client_identity&,
                                             std::string_view response) {
  if (auth_mechanism_ == "PLAIN") {
    // authzid NUL authcid NUL password
    const auto a = response.find('\0');
    const auto b = a == std::string_view::npos ? a : response.find('\0', a + 1);
    if (b == std::string_view::npos) {
      ++srv_.counts_.auth_failure;
      return {smtp::auth_step::status::failure,
              {},
              "535 5.7.8 Error: authentication failed: bad protocol / cancel"};
    }
    return check_credentials(response.substr(a + 1, b - a - 1), response.substr(b + 1));
  }
  if (auth_step_ == 0) {
    auth_user_ = std::string(response);
    auth_step_ = 1;
    return {smtp::auth_step::status::challenge, "Password:", {}};
  }
  const std::string user = auth_user_;
  auth_user_.clear();
  return check_credentials(user, response);
}

void connection::on_auth_abort() {
  auth_mechanism_.clear();
  auth_step_ = 0;
}

smtp::verdict connection::on_vrfy(const smtp::client_identity&, std::string_view) {
  return std::nullopt;
}

void connection::on_xclient(const smtp::client_identity&) {}

void connection::on_disconnect(const smtp::client_identity&, std::string_view) {}

}  // namespace relaylab::fakes::mx
