// The smtpd application: what Postfix's smtpd does around its protocol loop (smtpd_check.c
// for policy, smtpd_sasl_glue.c for AUTH, the cleanup/queue hand-off for mail), on top of the
// sans-IO engine in relay/smtp.
#include "relay/smtpd/smtpd.hpp"

#include "relay/log/log.hpp"
#include "relay/policy/policy.hpp"
#include "relay/queue/spool.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtpd/anvil.hpp"
#include "relay/smtpd/diagnostic.hpp"
#include "relay/smtpd/received.hpp"
#include "relay/tls/context.hpp"
#include "relay/tls/settings.hpp"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

namespace relaylab::smtpd {
namespace {

constexpr std::string_view queue_write_error = "451 4.3.0 Error: queue file write error";

/// smtpd_forbid_bare_newline (Postfix 3.7.10+): "yes" is normalize's old spelling.
enum class bare_newline { no, normalize, reject };

std::optional<bare_newline> parse_bare_newline(std::string_view v) {
  std::string s(v);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "no") return bare_newline::no;
  if (s == "yes" || s == "normalize") return bare_newline::normalize;
  if (s == "reject") return bare_newline::reject;
  return std::nullopt;
}

/// smtpd_forbidden_commands: command words, plus Postfix's default inline regexp (a command not
/// starting with a letter). Any other table would be a promise relaylab cannot keep: refused.
bool parse_forbidden_commands(std::string value, smtp::server_options& o, std::string& error) {
  static constexpr std::string_view nonalpha = "regexp:{{/^[^A-Z]/ Bogus}}";
  o.forbid_nonalpha_commands = false;
  if (auto at = value.find(nonalpha); at != std::string::npos) {
    o.forbid_nonalpha_commands = true;
    value.erase(at, nonalpha.size());
  }
  o.forbidden_commands.clear();
  std::string word;
  value += ' ';
  for (char c : value) {
    if (c == ' ' || c == ',' || c == '\t' || c == '\n') {
      if (word.find_first_of(":{}/") != std::string::npos) {
        error = "table " + word + " is not supported (only command names and the default " +
                std::string(nonalpha) + ")";
        return false;
      }
      if (!word.empty()) o.forbidden_commands.push_back(word);
      word.clear();
    } else {
      word += c;
    }
  }
  return true;
}

/// Everything derived from one service's parameters once, shared by its connections.
struct service_settings {
  config::master_service definition;
  config::parameters params;
  smtp::server_options options;
  log::origin smtpd_origin;
  log::origin cleanup_origin;
  std::string mail_name;
  bool sasl_enabled = false;
  bool replace_stray_cr_lf = true;    // cleanup_replace_stray_cr_lf
  std::size_t header_size_limit = 0;  // header_size_limit (bytes per header)
  std::size_t hopcount_limit = 50;    // hopcount_limit (Received: headers, smtpd's own too)
  tls::server_settings tls;
  std::shared_ptr<tls::server_context> tls_context;  // null without TLS
  sasl::security_options sasl_tls_security;          // smtpd_sasl_tls_security_options
  bool sasl_tls_security_differs = false;
  bare_newline bare_lf = bare_newline::no;  // smtpd_forbid_bare_newline
  /// smtpd_client_*_limit (0: no limit). Postfix talks to anvil only when one is on, and then
  /// reports every connection to it (the rates need the connects and disconnects).
  struct client_limits {
    long long connection_count = 0, connection_rate = 0, message_rate = 0, recipient_rate = 0,
              auth_rate = 0;
    bool any() const {
      return connection_count > 0 || connection_rate > 0 || message_rate > 0 ||
             recipient_rate > 0 || auth_rate > 0;
    }
  } limits;
  std::shared_ptr<smtpd::anvil> anvil;  // shared by the service's connections; null: no limit
};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string sasl_peer(const endpoint& e) {
  if (e.addr.empty()) return {};
  return e.addr + ";" + e.port;
}

/// Result of a queue commit, handed from the committer (any thread) to the connection.
struct commit_slot {
  std::mutex mutex;
  bool done = false;
  queue::commit_status status;
  std::string queue_id;
  std::optional<std::string> fixed_reply;  // a final reply that needed no commit
};

class smtpd_connection final : public connection, private smtp::server_handler {
 public:
  smtpd_connection(std::shared_ptr<const service_settings> settings, const dependencies& deps,
                   std::unique_ptr<policy::engine> policy,
                   std::unique_ptr<sasl::server_session> sasl, const endpoint& remote,
                   smtp::timestamp now, std::function<void()> notify,
                   std::string_view waiting_input)
      : settings_(std::move(settings)),
        deps_(deps),
        policy_(std::move(policy)),
        sasl_(std::move(sasl)),
        notify_(std::move(notify)),
        state_(initial_state(remote)),
        logged_name_(remote.name),
        logged_addr_(remote.addr),
        session_(make_options(), *this, make_identity(remote), now) {
    // Postfix logs the connection first, before a TLS wrapper handshake or the pre-greeting
    // check.
    log_info(log::connect_from(logged_name_, logged_addr_));
    session_.start(now, waiting_input);
  }

  ~smtpd_connection() override {
    if (sasl_ && auth_in_progress_) sasl_->reset();
  }

  smtp::server_session& session() override { return session_; }

  std::shared_ptr<tls::server_context> tls_context() const override {
    return settings_->tls_context;
  }

  void tls_established(const tls::session_info& info, smtp::timestamp now) override {
    tls_ = info;
    if (settings_->tls.loglevel >= 1) log_info(tls::server_established_line(info, namaddr()));
    std::optional<std::vector<std::string>> mechanisms;
    if (sasl_ && settings_->sasl_tls_security_differs) {
      std::string error;
      if (sasl_->use_security(settings_->sasl_tls_security, error))
        mechanisms = sasl_->mechanisms();
      else
        log_warning("SASL per-connection setup: " + error);
    }
    session_.tls_started(now, std::move(mechanisms));
  }

  void tls_failed(bool peer_closed, const std::vector<std::string>& openssl_errors,
                  smtp::timestamp now) override {
    auto lines = tls::handshake_failure(namaddr(), peer_closed, openssl_errors);
    log_info(lines.info);
    for (const auto& w : lines.warnings) log_warning(w);
    session_.tls_failed(now);
  }

  std::string take_policy_decider() override { return std::exchange(decider_, {}); }

  void run_pending(smtp::timestamp now) override {
    if (!commit_) return;
    queue::commit_status status;
    std::string queue_id;
    std::optional<std::string> fixed_reply;
    {
      std::lock_guard lock(commit_->mutex);
      if (!commit_->done) return;
      status = commit_->status;
      queue_id = commit_->queue_id;
      fixed_reply = std::move(commit_->fixed_reply);
    }
    commit_.reset();
    if (fixed_reply) {
      session_.finish_message({std::move(*fixed_reply)}, now);
    } else if (status.ec) {
      log_warning("queue file write error: " + queue_id + ": " + status.ec.message() +
                  (status.cause ? " (" + status.cause.message() + ")" : std::string()));
      session_.finish_message({std::string(queue::smtp_reply(status.ec))}, now);
    } else {
      // After BDAT ... LAST Postfix also says how many bytes it took.
      auto bdat = session_.bdat_bytes();
      session_.finish_message(
          {bdat ? "250 2.0.0 Ok: " + std::to_string(*bdat) + " bytes queued as " + queue_id
                : "250 2.0.0 Ok: queued as " + queue_id},
          now);
    }
    end_transaction();
  }

 private:
  smtp::server_options make_options() {
    smtp::server_options o = settings_->options;
    if (sasl_) o.sasl_mechanisms = sasl_->mechanisms();
    o.sasl_auth_enable = o.sasl_auth_enable && !o.sasl_mechanisms.empty();
    o.xclient_authorized = policy_->xclient_authorized(state_.client_name, state_.client_addr);
    xclient_allowed_ = o.xclient_authorized;
    const auto rules = bare_newline_rules(state_.client_name, state_.client_addr);
    o.forbid_bare_newline = rules.first;
    o.forbid_bare_newline_reject = rules.second;
    return o;
  }

  /// (normalize, reject) for this client: smtpd_forbid_bare_newline unless the client is in
  /// smtpd_forbid_bare_newline_exclusions.
  std::pair<bool, bool> bare_newline_rules(const std::string& name, const std::string& addr) {
    const auto mode = settings_->bare_lf;
    if (mode == bare_newline::no || policy_->bare_newline_excluded(name, addr))
      return {false, false};
    return {true, mode == bare_newline::reject};
  }

  static policy::session_state initial_state(const endpoint& remote) {
    policy::session_state s;
    s.client_name = remote.name;
    s.client_addr = remote.addr;
    s.client_port = remote.port;
    s.client_namaddr = log::client_namaddr(remote.name, remote.addr);
    return s;
  }

  smtp::client_identity make_identity(const endpoint& remote) {
    smtp::client_identity id;
    id.name = remote.name;
    id.addr = remote.addr;
    id.port = remote.port;
    return id;
  }

  // --- logging ---------------------------------------------------------------------------
  std::string namaddr() const { return log::client_namaddr(logged_name_, logged_addr_); }
  void log_info(std::string_view text) { deps_.log->info(settings_->smtpd_origin, text); }
  void log_warning(std::string_view text) { deps_.log->warning(settings_->smtpd_origin, text); }

  void log_reject(const policy::rejection& r) {
    log::reject_context c;
    c.queue_id = message_.valid() ? message_.queue_id() : std::string();
    c.action = r.warn_only ? "reject_warning" : "reject";
    c.stage = r.stage;
    c.name = logged_name_;
    c.addr = logged_addr_;
    c.reply = r.reply;
    if (r.stage == "RCPT" || r.stage == "MAIL" || r.stage == "DATA" ||
        r.stage == "END-OF-MESSAGE" || r.stage == "VRFY") {
      if (state_.in_transaction || r.stage == "MAIL") c.sender = state_.sender;
    }
    if (r.stage == "RCPT" || r.stage == "VRFY") c.recipient = state_.recipient;
    c.protocol = state_.protocol;
    if (!state_.helo_name.empty()) c.helo = state_.helo_name;
    deps_.log->info(settings_->smtpd_origin, log::reject_line(c));
  }

  /// Logs a policy result; returns the reply when the command is refused.
  smtp::verdict decide(std::optional<policy::rejection> r) {
    decider_ = policy_->last_decider();
    if (!r) return std::nullopt;
    log_reject(*r);
    if (r->warn_only) return std::nullopt;
    return smtp::reply{r->reply};
  }

  void sync_client(const smtp::client_identity& client) {
    state_.client_name = client.name;
    state_.client_addr = client.addr;
    state_.client_port = client.port;
    state_.helo_name = client.helo;
    state_.protocol = client.protocol;
    state_.unauth_pipelining = client.unauth_pipelining;
  }

  void end_transaction() {
    message_ = queue::incoming_message();
    state_.sender.clear();
    state_.recipient.clear();
    state_.recipient_count = 0;
    state_.in_transaction = false;
    state_.queue_id.clear();
    message_id_.clear();
    headers_.reset();
    cleanup_ = content_cleanup(settings_->replace_stray_cr_lf, settings_->header_size_limit);
    policy_->reset_transaction();
  }

  // --- server_handler ----------------------------------------------------------------------
  smtp::verdict on_connect(const smtp::client_identity& client) override {
    sync_client(client);
    if (auto refused = anvil_connect()) return refused;
    return decide(policy_->check_client(state_));
  }

  // --- anvil: smtpd_client_*_limit ----------------------------------------------------------
  /// Postfix leaves XCLIENT-authorized clients and smtpd_client_event_limit_exceptions out of
  /// the count; both follow the identity XCLIENT installs.
  bool anvil_counts() const {
    return settings_->anvil && !xclient_allowed_ &&
           !policy_->event_limit_excepted(state_.client_name, state_.client_addr);
  }

  std::string anvil_warning(std::string_view what, long long n) const {
    return std::string(what) + " limit exceeded: " + std::to_string(n) + " from " + namaddr() +
           " for service " + settings_->definition.name;
  }

  smtp::verdict anvil_connect() {
    if (!anvil_counts()) return std::nullopt;
    const auto r = settings_->anvil->connect(anvil_link_, settings_->definition.name,
                                             state_.client_addr, session_.now());
    const auto& limit = settings_->limits;
    const char* what = nullptr;
    long long n = 0;
    if (limit.connection_count > 0 && r.count > limit.connection_count) {
      what = "Connection concurrency";
      n = r.count;
    } else if (limit.connection_rate > 0 && r.rate > limit.connection_rate) {
      what = "Connection rate";
      n = r.rate;
    }
    if (!what) return std::nullopt;
    log_warning(anvil_warning(what, n));
    anvil_refused_ = true;
    return smtp::reply{"421 4.7.0 " + settings_->options.myhostname +
                       " Error: too many connections from " + state_.client_addr};
  }

  smtp::verdict on_client_event(smtp::client_event event) override {
    const auto& limit = settings_->limits;
    const long long max = event == smtp::client_event::mail   ? limit.message_rate
                          : event == smtp::client_event::rcpt ? limit.recipient_rate
                                                              : limit.auth_rate;
    if (max <= 0 || !anvil_counts()) return std::nullopt;
    auto& a = *settings_->anvil;
    const auto& service = settings_->definition.name;
    const auto& addr = state_.client_addr;
    const auto now = session_.now();
    switch (event) {
      case smtp::client_event::mail:
        if (const int rate = a.mail(anvil_link_, service, addr, now); rate > max) {
          log_warning(anvil_warning("Message delivery request rate", rate));
          return smtp::reply{"450 4.7.1 Error: too much mail from " + addr};
        }
        break;
      case smtp::client_event::rcpt:
        if (const int rate = a.rcpt(anvil_link_, service, addr, now); rate > max) {
          log_warning(anvil_warning("Recipient address rate", rate));
          return smtp::reply{"450 4.7.1 Error: too many recipients from " + addr};
        }
        break;
      case smtp::client_event::auth:
        if (const int rate = a.auth(anvil_link_, service, addr, now); rate > max) {
          log_warning(anvil_warning("AUTH command rate", rate));
          return smtp::reply{"450 4.7.1 Error: too many AUTH commands from " + addr};
        }
        break;
    }
    return std::nullopt;
  }

  smtp::verdict on_helo(const smtp::client_identity& client) override {
    sync_client(client);
    end_transaction();
    return decide(policy_->check_helo(state_));
  }

  smtp::verdict on_mail(const smtp::client_identity& client,
                        const smtp::mail_command& mail) override {
    sync_client(client);
    if (auto ec = deps_.spool->check_space(mail.size.value_or(0))) {
      log_warning("not enough free space in mail queue: " + std::to_string(mail.size.value_or(0)) +
                  " bytes needed (" + ec.message() + ")");
      return smtp::reply{std::string(queue::smtp_reply(ec))};
    }
    state_.sender = mail.sender;
    auto verdict = decide(policy_->check_mail(state_));
    if (verdict) {
      state_.sender.clear();
      return verdict;
    }
    state_.in_transaction = true;
    return std::nullopt;
  }

  smtp::verdict on_rcpt(const smtp::client_identity& client,
                        const smtp::rcpt_command& rcpt) override {
    sync_client(client);
    state_.recipient = rcpt.recipient;
    if (auto verdict = decide(policy_->check_rcpt(state_))) return verdict;
    if (!message_.valid()) {
      if (deps_.spool->begin(message_)) return smtp::reply{std::string(queue_write_error)};
      state_.queue_id = message_.queue_id();
      message_.set_sender(state_.sender);
      add_attributes();
      log_info(log::client_line(message_.queue_id(), logged_name_, logged_addr_, state_.sasl_method,
                                state_.sasl_username));
    }
    if (auto ec = message_.add_recipient({state_.recipient, {}, 0}))
      return smtp::reply{std::string(queue::smtp_reply(ec))};
    ++state_.recipient_count;
    if (state_.recipient_count == 1) first_recipient_ = state_.recipient;
    return std::nullopt;
  }

  void add_attributes() {
    message_.add_attribute("client_name", state_.client_name);
    message_.add_attribute("client_address", state_.client_addr);
    message_.add_attribute("client_port", state_.client_port);
    message_.add_attribute("helo_name", state_.helo_name);
    message_.add_attribute("protocol_name", state_.protocol);
    if (!state_.sasl_method.empty()) {
      message_.add_attribute("sasl_method", state_.sasl_method);
      message_.add_attribute("sasl_username", state_.sasl_username);
    }
  }

  smtp::verdict on_data(const smtp::client_identity& client) override {
    sync_client(client);
    if (auto verdict = decide(policy_->check_data(state_))) return verdict;
    if (message_.valid()) {
      received_header_fields f;
      f.helo = state_.helo_name;
      f.client_name = state_.client_name;
      f.client_addr = state_.client_addr;
      f.myhostname = settings_->options.myhostname;
      f.mail_name = settings_->mail_name;
      f.protocol = state_.protocol;
      // Postfix: "with ESMTP", plus S under TLS and A after AUTH ("ESMTPSA").
      if (tls_) f.protocol += "S";
      if (!state_.sasl_method.empty() && state_.protocol == "ESMTP") f.protocol += "A";
      if (tls_ && settings_->tls.received_header) f.tls_note = tls::received_note(*tls_);
      f.queue_id = message_.queue_id();
      if (state_.recipient_count == 1) f.recipient = first_recipient_;
      f.time = deps_.wall_clock();
      (void)message_.append_content(format_received_header(f));
    }
    return std::nullopt;
  }

  void on_body(std::span<const char> chunk) override {
    if (!message_.valid()) return;
    cleaned_.clear();
    cleanup_.feed(std::string_view(chunk.data(), chunk.size()), cleaned_);
    headers_.feed(cleaned_, message_id_);
    (void)message_.append_content(cleaned_);  // size overrun is reported by the engine
  }

  void on_message_end(const smtp::client_identity& client, bool size_exceeded) override {
    sync_client(client);
    if (!message_.valid()) {
      pending_reply(std::string(queue_write_error));
      return;
    }
    if (size_exceeded) {
      pending_reply("552 5.3.4 Message size exceeds fixed limit");
      return;
    }
    auto r = policy_->check_end_of_data(state_);
    decider_ = policy_->last_decider();
    if (r) {
      log_reject(*r);
      if (!r->warn_only) {
        pending_reply(r->reply);
        return;
      }
    }
    cleaned_.clear();
    cleanup_.finish(cleaned_);
    if (!cleaned_.empty()) (void)message_.append_content(cleaned_);
    headers_.finish(message_id_);
    // Postfix's cleanup counts the Received: headers, smtpd's own included (mail loops).
    if (headers_.received_headers() + 1 >= settings_->hopcount_limit) {
      deps_.log->warning(settings_->cleanup_origin,
                         message_.queue_id() + ": message rejected: hopcount exceeded");
      pending_reply("554 5.4.0 Error: too many hops");
      return;
    }
    // Postfix's cleanup logs the Message-ID while it writes the queue file, so the line comes
    // before the queue manager can see the message (and before a write error's warning).
    deps_.log->info(settings_->cleanup_origin, message_.queue_id() + ": message-id=" + message_id_);
    auto slot = std::make_shared<commit_slot>();
    slot->queue_id = message_.queue_id();
    commit_ = slot;
    auto notify = notify_;
    auto on_queued = deps_.on_queued;
    deps_.spool->commit(std::move(message_),
                        [slot, notify, on_queued](const queue::commit_status& s) {
                          {
                            std::lock_guard lock(slot->mutex);
                            slot->done = true;
                            slot->status = s;
                          }
                          if (!s.ec && on_queued) on_queued(slot->queue_id);
                          if (notify) notify();
                        });
  }

  /// A final reply that needs no commit; delivered through run_pending like a commit result so
  /// that the engine never sees finish_message() from inside its own callback.
  void pending_reply(std::string reply) {
    auto slot = std::make_shared<commit_slot>();
    slot->done = true;
    slot->fixed_reply = std::move(reply);
    commit_ = std::move(slot);
    if (notify_) notify_();
  }

  void on_reset() override { end_transaction(); }

  smtp::auth_step on_auth_start(const smtp::client_identity& client, std::string_view mechanism,
                                std::optional<std::string_view> initial) override {
    sync_client(client);
    auth_mechanism_ = std::string(mechanism);
    if (!sasl_) return auth_failure(no_sasl_result());
    sasl_->reset();  // Postfix uses a fresh SASL handle for every AUTH command
    auth_in_progress_ = true;
    return auth_result(sasl_->start(upper(mechanism), initial));
  }

  smtp::auth_step on_auth_continue(const smtp::client_identity& client,
                                   std::string_view response) override {
    sync_client(client);
    if (!sasl_) return auth_failure(no_sasl_result());
    return auth_result(sasl_->step(response));
  }

  void on_auth_abort() override {
    auth_in_progress_ = false;
    if (sasl_) sasl_->reset();
  }

  void on_auth_cancelled(const smtp::client_identity&, std::string_view mechanism) override {
    log_warning(namaddr() + ": SASL " + std::string(mechanism) + " authentication aborted");
  }

  void on_auth_decode_error(const smtp::client_identity&, std::string_view mechanism,
                            std::string_view reason) override {
    sasl::step_result r;
    r.reason = std::string(reason);
    log_warning(sasl::postfix_failure_log(namaddr(), mechanism, r, std::nullopt));
  }

  static sasl::step_result no_sasl_result() {
    sasl::step_result r;
    r.reason = "no mechanism available";
    return r;
  }

  smtp::auth_step auth_result(const sasl::step_result& r) {
    using status = sasl::step_result::status;
    smtp::auth_step out;
    switch (r.state) {
      case status::challenge:
        out.state = smtp::auth_step::status::challenge;
        out.challenge = r.challenge;
        return out;
      case status::success:
        for (const auto& line : r.log) log_warning(line);
        auth_in_progress_ = false;
        state_.sasl_method = auth_mechanism_;
        state_.sasl_username = sasl_->username();
        out.state = smtp::auth_step::status::success;
        out.reply = "235 2.7.0 Authentication successful";
        return out;
      case status::failure:
        break;
    }
    auth_in_progress_ = false;
    return auth_failure(r);
  }

  /// Postfix's reply and log lines for a failed AUTH (454 for temporary libsasl2 failures).
  smtp::auth_step auth_failure(const sasl::step_result& r) {
    for (const auto& line : r.log) log_warning(line);
    std::optional<std::string> user;
    if (sasl_) user = sasl_->sasl_username();
    std::optional<std::string_view> user_view;
    if (user) user_view = *user;
    log_warning(sasl::postfix_failure_log(namaddr(), auth_mechanism_, r, user_view));
    if (sasl_) sasl_->reset();
    smtp::auth_step out;
    out.state = smtp::auth_step::status::failure;
    out.reply = sasl::postfix_failure_reply(r);
    return out;
  }

  // Postfix's vrfy_cmd() runs smtpd_check_rcpt() on the unquoted address, keeping the RCPT
  // state of a transaction in progress (SMTPD_CHECK_PUSH/POP).
  smtp::verdict on_vrfy(const smtp::client_identity& client, std::string_view address) override {
    sync_client(client);
    std::string saved = std::exchange(state_.recipient, std::string(address));
    auto verdict = decide(policy_->check_vrfy(state_));
    state_.recipient = std::move(saved);
    return verdict;
  }

  bool on_address_check(std::string_view address, bool smtputf8) override {
    return policy_->address_resolves(address, smtputf8);
  }

  smtp::verdict on_etrn(const smtp::client_identity& client, std::string_view domain) override {
    sync_client(client);
    state_.etrn_name = std::string(domain);
    auto verdict = decide(policy_->check_etrn(state_));
    state_.etrn_name.clear();
    return verdict;
  }

  void on_improper_pipelining(const smtp::client_identity& client, std::string_view where,
                              std::string_view pending) override {
    log_info(log::improper_pipelining_after(where, client.name, client.addr, pending));
  }

  void on_xclient(const smtp::client_identity& client) override {
    end_transaction();
    sync_client(client);
    logged_name_ = client.name;
    logged_addr_ = client.addr;
    state_.client_namaddr = namaddr();
    // Postfix re-checks the authorization against the identity XCLIENT installed.
    xclient_allowed_ = policy_->xclient_authorized(client.name, client.addr);
    session_.set_xclient_authorized(xclient_allowed_);
    const auto rules = bare_newline_rules(client.name, client.addr);
    session_.set_bare_newline_rules(rules.first, rules.second);
    state_.sasl_method.clear();
    state_.sasl_username.clear();
    policy_->reset_session();
  }

  void on_xclient_login(std::string_view user) override {
    state_.sasl_method = "XCLIENT";
    state_.sasl_username = std::string(user);
  }

  smtp::verdict on_xclient_greeting(const smtp::client_identity& client) override {
    sync_client(client);
    return decide(policy_->check_client(state_));
  }

  void on_disconnect(const smtp::client_identity& client, std::string_view reason) override {
    sync_client(client);
    if (auth_in_progress_ && sasl_) sasl_->reset();
    auth_in_progress_ = false;
    if (anvil_counts())
      settings_->anvil->disconnect(anvil_link_, settings_->definition.name, state_.client_addr,
                                   session_.now());
    // After anvil's 421 Postfix has no reason to log, only the disconnect line.
    if (!anvil_refused_ && !reason.empty() && reason != "quit" && reason != "QUIT")
      log_info(std::string(reason) + " after " + std::string(session_.last_command()) + " from " +
               namaddr());
    log_info(log::disconnect_from(logged_name_, logged_addr_, session_.command_counts()));
  }

 private:
  std::shared_ptr<const service_settings> settings_;
  dependencies deps_;
  std::unique_ptr<policy::engine> policy_;
  std::unique_ptr<sasl::server_session> sasl_;
  std::function<void()> notify_;
  policy::session_state state_;
  // The client as Postfix's state->namaddr names it in logs and client-restriction replies:
  // set at connect and by a complete XCLIENT, not by one that failed part-way (state_.client_*
  // then already hold what it applied).
  std::string logged_name_;
  std::string logged_addr_;
  queue::incoming_message message_;
  std::string first_recipient_;
  std::string message_id_;
  header_scanner headers_;
  content_cleanup cleanup_{settings_->replace_stray_cr_lf, settings_->header_size_limit};
  std::string cleaned_;  // reused buffer for cleaned content
  std::shared_ptr<commit_slot> commit_;
  std::string auth_mechanism_;
  std::string decider_;  // take_policy_decider()
  bool auth_in_progress_ = false;
  bool xclient_allowed_ = false;    // smtpd_authorized_xclient_hosts matches the current client
  bool anvil_refused_ = false;      // the connection got anvil's 421 instead of the greeting
  smtpd::anvil::local anvil_link_;  // this connection's anvil entry; before session_
  std::optional<tls::session_info> tls_;
  smtp::server_session session_;  // last: its constructor may call back into this handler
};

class smtpd_service final : public service {
 public:
  smtpd_service(std::shared_ptr<service_settings> settings, dependencies deps,
                std::unique_ptr<policy::engine> policy)
      : settings_(std::move(settings)), deps_(std::move(deps)), policy_(std::move(policy)) {}

  const config::master_service& definition() const override { return settings_->definition; }

  std::unique_ptr<connection> open(const endpoint& remote, const endpoint& local,
                                   smtp::timestamp now, std::function<void()> notify,
                                   std::string_view waiting_input) override {
    auto policy = policy_->new_session();
    std::unique_ptr<sasl::server_session> sasl;
    if (settings_->sasl_enabled && deps_.sasl) {
      std::string error;
      sasl = sasl::server_session::create(deps_.sasl, sasl_peer(local), sasl_peer(remote), error);
      if (!sasl) deps_.log->warning(settings_->smtpd_origin, "SASL per-connection setup: " + error);
    }
    return std::make_unique<smtpd_connection>(settings_, deps_, std::move(policy), std::move(sasl),
                                              remote, now, std::move(notify), waiting_input);
  }

 private:
  std::shared_ptr<service_settings> settings_;
  dependencies deps_;
  std::unique_ptr<policy::engine> policy_;  // compiled once; new_session() per connection
};

smtp::server_options options_from(const config::parameters& p) {
  smtp::server_options o;
  o.myhostname = p.get("myhostname");
  o.banner = p.get("smtpd_banner");
  o.message_size_limit = static_cast<std::uint64_t>(std::max(0LL, p.get_int("message_size_limit")));
  o.line_length_limit = static_cast<std::size_t>(std::max(256LL, p.get_int("line_length_limit")));
  o.recipient_limit = static_cast<std::size_t>(std::max(1LL, p.get_int("smtpd_recipient_limit")));
  o.disable_vrfy_command = p.get_bool("disable_vrfy_command");
  o.helo_required = p.get_bool("smtpd_helo_required");
  o.soft_error_limit = static_cast<int>(p.get_int("smtpd_soft_error_limit"));
  o.hard_error_limit = static_cast<int>(p.get_int("smtpd_hard_error_limit"));
  o.junk_command_limit = static_cast<int>(p.get_int("smtpd_junk_command_limit"));
  o.error_sleep_time = p.get_time("smtpd_error_sleep_time");
  o.timeout = p.get_time("smtpd_timeout");
  o.per_request_deadline = p.get_bool("smtpd_per_request_deadline");
  o.min_data_rate = static_cast<std::uint32_t>(
      std::clamp(p.get_int("smtpd_min_data_rate"), 1LL, static_cast<long long>(UINT32_MAX)));
  o.sasl_auth_enable = p.get_bool("smtpd_sasl_auth_enable");
  o.broken_sasl_auth_clients = p.get_bool("broken_sasl_auth_clients");
  o.discard_ehlo_keywords = p.get_list("smtpd_discard_ehlo_keywords");
  o.forbid_unauth_pipelining = p.get_bool("smtpd_forbid_unauth_pipelining");
  o.forbid_bare_newline_reject_code =
      static_cast<int>(p.get_int("smtpd_forbid_bare_newline_reject_code"));
  const auto protocols = config::inet_protocols(p);
  o.inet_ipv4 = protocols.ipv4;
  o.inet_ipv6 = protocols.ipv6;
  return o;
}

config::diagnostic service_fatal(const config::master_service& definition, std::string parameter,
                                 std::string message) {
  return detail::service_diagnostic(config::diagnostic::severity::fatal, definition,
                                    std::move(parameter), std::move(message));
}

// smtpd_min_data_rate has Postfix's minimum of 1 ("fatal: bad numerical configuration").
bool check_min_data_rate(const service_settings& s, const config::master_service& definition,
                         std::vector<config::diagnostic>& diags) {
  const long long rate = s.params.get_int("smtpd_min_data_rate");
  if (rate >= 1) return true;
  diags.push_back(service_fatal(definition, "smtpd_min_data_rate",
                                "smtpd_min_data_rate = " + std::to_string(rate) +
                                    ": specify a rate of 1 byte per second or more"));
  return false;
}

// smtpd_client_*_limit and anvil_rate_time_unit: an anvil for the service when a limit is on.
bool configure_limits(service_settings& s, const config::master_service& definition,
                      std::vector<config::diagnostic>& diags) {
  auto& l = s.limits;
  bool ok = true;
  auto count = [&](const char* name) {
    const long long value = s.params.get_int(name);
    if (value < 0 && ok) {
      diags.push_back(service_fatal(definition, name,
                                    std::string(name) + " = " + std::to_string(value) +
                                        ": specify a count of 0 (no limit) or more"));
      ok = false;
    }
    return value;
  };
  l.connection_count = count("smtpd_client_connection_count_limit");
  l.connection_rate = count("smtpd_client_connection_rate_limit");
  l.message_rate = count("smtpd_client_message_rate_limit");
  l.recipient_rate = count("smtpd_client_recipient_rate_limit");
  l.auth_rate = count("smtpd_client_auth_rate_limit");
  if (!ok) return false;
  if (!l.any()) return true;
  const auto unit =
      std::chrono::duration_cast<std::chrono::seconds>(s.params.get_time("anvil_rate_time_unit"));
  if (unit.count() < 1) {
    diags.push_back(service_fatal(definition, "anvil_rate_time_unit",
                                  "anvil_rate_time_unit = " + s.params.get("anvil_rate_time_unit") +
                                      ": specify a time of one second or more"));
    return false;
  }
  s.anvil = std::make_shared<smtpd::anvil>(unit);
  return true;
}

// smtpd_tls_*: settings (refusing what relaylab does not implement), the OpenSSL context
// (certificates load now, so a bad file stops start-up), and the engine's switches.
bool configure_tls(service_settings& s, const config::master_service& definition,
                   const std::vector<tls::key_pair_pem>& supplied,
                   std::vector<config::diagnostic>& diags) {
  auto tls_settings = tls::server_settings_from(s.params, diags, supplied);
  if (!tls_settings) return false;
  s.tls = *tls_settings;
  if (s.tls.use_tls()) {
    std::string error;
    s.tls_context = tls::server_context::create(s.tls, error);
    if (!s.tls_context) {
      diags.push_back(service_fatal(definition, "smtpd_tls_cert_file", "TLS: " + error));
      return false;
    }
  }
  s.options.tls_offered = s.tls.use_tls() && !s.tls.wrappermode;
  s.options.tls_required = s.tls.enforce_tls() && !s.tls.wrappermode;
  // Postfix's smtpd: smtpd_tls_auth_only, or TLS enforced, keeps AUTH until after TLS.
  s.options.tls_auth_only = s.tls.use_tls() && (s.tls.auth_only || s.tls.enforce_tls());
  s.options.tls_wrappermode = s.tls.wrappermode;
  std::string error;
  auto before = sasl::security_options::parse(s.params.get("smtpd_sasl_security_options"), error);
  auto after =
      sasl::security_options::parse(s.params.get("smtpd_sasl_tls_security_options"), error);
  if (!after) {
    diags.push_back(service_fatal(definition, "smtpd_sasl_tls_security_options", std::move(error)));
    return false;
  }
  s.sasl_tls_security = *after;
  s.sasl_tls_security_differs = before && s.params.get("smtpd_sasl_tls_security_options") !=
                                              s.params.get("smtpd_sasl_security_options");
  return true;
}

}  // namespace

std::unique_ptr<service> service::create(const config::configuration& cfg,
                                         const config::master_service& definition,
                                         dependencies deps,
                                         std::vector<config::diagnostic>& diags) {
  auto settings = std::make_shared<service_settings>();
  settings->definition = definition;
  settings->params = cfg.main.with_service_overrides(definition);
  for (auto& d : settings->params.validate()) diags.push_back(std::move(d));
  settings->options = options_from(settings->params);
  if (auto mode = parse_bare_newline(settings->params.get("smtpd_forbid_bare_newline"))) {
    settings->bare_lf = *mode;
  } else {
    diags.push_back(service_fatal(definition, "smtpd_forbid_bare_newline",
                                  "invalid smtpd_forbid_bare_newline value \"" +
                                      settings->params.get("smtpd_forbid_bare_newline") +
                                      "\" (specify no, normalize, yes or reject)"));
    return nullptr;
  }
  if (std::string error; !parse_forbidden_commands(settings->params.get("smtpd_forbidden_commands"),
                                                   settings->options, error)) {
    diags.push_back(service_fatal(definition, "smtpd_forbidden_commands",
                                  "smtpd_forbidden_commands: " + error));
    return nullptr;
  }
  if (const int code = settings->options.forbid_bare_newline_reject_code;
      code < 500 || code > 599) {
    diags.push_back(service_fatal(definition, "smtpd_forbid_bare_newline_reject_code",
                                  "smtpd_forbid_bare_newline_reject_code = " +
                                      std::to_string(code) + ": specify a 5XX status code"));
    return nullptr;
  }
  settings->mail_name = settings->params.get("mail_name");
  settings->replace_stray_cr_lf = settings->params.get_bool("cleanup_replace_stray_cr_lf");
  settings->header_size_limit =
      static_cast<std::size_t>(std::max(0LL, settings->params.get_int("header_size_limit")));
  settings->hopcount_limit =
      static_cast<std::size_t>(std::max(1LL, settings->params.get_int("hopcount_limit")));
  settings->sasl_enabled = settings->options.sasl_auth_enable;
  if (!check_min_data_rate(*settings, definition, diags)) return nullptr;
  if (!configure_limits(*settings, definition, diags)) return nullptr;
  settings->smtpd_origin.syslog_name = settings->params.get("syslog_name");
  settings->smtpd_origin.program = "smtpd";
  settings->smtpd_origin.pid = deps.pid;
  settings->cleanup_origin = settings->smtpd_origin;
  settings->cleanup_origin.program = "cleanup";

  if (!configure_tls(*settings, definition, deps.tls_certificates, diags)) return nullptr;

  std::size_t fatal_before = 0;
  for (auto& d : diags)
    if (d.level == config::diagnostic::severity::fatal) ++fatal_before;
  // Compile once now so that configuration errors stop start-up, not the first client.
  auto policy = policy::engine::create(settings->params, diags);
  if (!policy) return nullptr;
  std::size_t fatal_after = 0;
  for (auto& d : diags)
    if (d.level == config::diagnostic::severity::fatal) ++fatal_after;
  if (fatal_after != fatal_before) return nullptr;
  if (settings->sasl_enabled && !deps.sasl) {
    config::diagnostic d;
    d.level = config::diagnostic::severity::fatal;
    d.file = definition.file;
    d.line = definition.line;
    d.parameter = "smtpd_sasl_auth_enable";
    d.message = "service " + definition.name +
                ": smtpd_sasl_auth_enable = yes but no SASL server is configured";
    diags.push_back(std::move(d));
    return nullptr;
  }
  return std::make_unique<smtpd_service>(std::move(settings), std::move(deps), std::move(policy));
}

}  // namespace relaylab::smtpd
