#include "relay/tls/client.hpp"

#include "relay/tls/context.hpp"
#include "relay/tls/settings.hpp"

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <mutex>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace relaylab::tls {
namespace {

std::string lower_trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

config::diagnostic diag(const config::parameters& p, std::string_view name,
                        config::diagnostic::severity level, std::string message) {
  config::diagnostic d;
  d.level = level;
  d.parameter = std::string(name);
  if (auto o = p.origin_of(name)) {
    d.file = o->file;
    d.line = o->line;
  }
  d.message = std::move(message);
  return d;
}

constexpr int client_proto_versions[protocol_set::count] = {
    0, SSL3_VERSION, TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};

}  // namespace

std::string_view to_string(client_level l) noexcept {
  switch (l) {
    case client_level::none:
      return "none";
    case client_level::may:
      return "may";
    case client_level::encrypt:
      return "encrypt";
    case client_level::verify:
      return "verify";
    case client_level::secure:
      return "secure";
  }
  return "none";
}

std::string_view to_string(trust t) noexcept {
  switch (t) {
    case trust::untrusted:
      return "Untrusted";
    case trust::trusted:
      return "Trusted";
    case trust::verified:
      return "Verified";
  }
  return "Untrusted";
}

std::optional<client_settings> client_settings_from(const config::parameters& p,
                                                    std::vector<config::diagnostic>& diags) {
  using sev = config::diagnostic::severity;
  bool ok = true;
  auto refuse = [&](std::string_view name, std::string why) {
    diags.push_back(diag(p, name, sev::fatal, std::move(why)));
    ok = false;
  };
  client_settings s;
  const std::string level = lower_trim(p.get("smtp_tls_security_level"));
  if (level.empty()) {
    if (p.get_bool("smtp_enforce_tls"))
      s.level =
          p.get_bool("smtp_tls_enforce_peername") ? client_level::verify : client_level::encrypt;
    else if (p.get_bool("smtp_use_tls"))
      s.level = client_level::may;
  } else if (level == "none") {
    s.level = client_level::none;
  } else if (level == "may") {
    s.level = client_level::may;
  } else if (level == "encrypt") {
    s.level = client_level::encrypt;
  } else if (level == "verify") {
    s.level = client_level::verify;
  } else if (level == "secure") {
    s.level = client_level::secure;
  } else if (level == "dane" || level == "dane-only" || level == "fingerprint") {
    refuse("smtp_tls_security_level",
           "smtp_tls_security_level = " + level +
               " is not implemented by relaylab (none, may, encrypt, verify and secure are)");
  } else {
    refuse("smtp_tls_security_level",
           "invalid TLS security level: smtp_tls_security_level = " + level +
               " (expected none, may, encrypt, verify or secure)");
  }
  s.wrappermode = p.get_bool("smtp_tls_wrappermode");
  if (ok && s.wrappermode && s.level < client_level::encrypt) {
    // Postfix's smtp(8) warns and uses "encrypt": a wrapped session has no plaintext fallback.
    diags.push_back(diag(p, "smtp_tls_wrappermode", sev::warning,
                         "smtp_tls_wrappermode requires \"smtp_tls_security_level = encrypt\" "
                         "(or stronger); using encrypt"));
    s.level = client_level::encrypt;
  }
  for (const char* name : {"smtp_tls_policy_maps", "smtp_tls_per_site", "smtp_tls_cert_file",
                           "smtp_tls_key_file", "smtp_tls_eccert_file", "smtp_tls_chain_files"}) {
    if (!lower_trim(p.get(name)).empty())
      refuse(name, std::string(name) + " is not implemented by relaylab");
  }
  s.ca_file = lower_trim(p.get("smtp_tls_CAfile")).empty() ? "" : p.get("smtp_tls_CAfile");
  s.ca_path = lower_trim(p.get("smtp_tls_CApath")).empty() ? "" : p.get("smtp_tls_CApath");
  s.loglevel = static_cast<int>(p.get_int("smtp_tls_loglevel"));
  s.note_starttls_offer = p.get_bool("smtp_tls_note_starttls_offer");
  s.handshake_timeout = p.get_time("smtp_starttls_timeout");
  s.verify_match = p.get_list("smtp_tls_verify_cert_match");
  s.secure_match = p.get_list("smtp_tls_secure_cert_match");
  s.servername = lower_trim(p.get("smtp_tls_servername"));
  const bool mandatory = s.requires_tls();
  const char* proto_param = mandatory ? "smtp_tls_mandatory_protocols" : "smtp_tls_protocols";
  std::string error;
  s.protocols = parse_protocols(p.get(proto_param), error);
  if (!error.empty()) refuse(proto_param, std::string(proto_param) + ": " + error);
  const char* grade_param = mandatory ? "smtp_tls_mandatory_ciphers" : "smtp_tls_ciphers";
  std::vector<std::string> exclude = p.get_list("smtp_tls_exclude_ciphers");
  if (mandatory)
    for (auto& e : p.get_list("smtp_tls_mandatory_exclude_ciphers")) exclude.push_back(e);
  error.clear();
  s.cipher_list = cipher_list(p, p.get(grade_param), exclude, error);
  if (!error.empty()) refuse(grade_param, std::string(grade_param) + ": " + error);
  if (!ok) return std::nullopt;
  return s;
}

std::shared_ptr<client_context> client_context::create(const client_settings& s,
                                                       std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    error = "cannot create a TLS client context";
    return nullptr;
  }
  std::shared_ptr<client_context> c(new client_context(ctx, s));
  int lo = 0, hi = 0;
  for (int i = 2; i < protocol_set::count; ++i)
    if (s.protocols.enabled[i]) {
      if (!lo) lo = client_proto_versions[i];
      hi = client_proto_versions[i];
    }
  if (!lo || SSL_CTX_set_min_proto_version(ctx, lo) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, hi) != 1) {
    error = "cannot set the TLS protocol range";
    return nullptr;
  }
  if (!s.cipher_list.empty() && SSL_CTX_set_cipher_list(ctx, s.cipher_list.c_str()) != 1) {
    error = "cipher list \"" + s.cipher_list + "\" leaves no usable cipher";
    return nullptr;
  }
  if (!s.ca_file.empty() || !s.ca_path.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, s.ca_file.empty() ? nullptr : s.ca_file.c_str(),
                                      s.ca_path.empty() ? nullptr : s.ca_path.c_str()) != 1) {
      auto errs = take_openssl_errors();
      error = "cannot load CA certificates from " + (s.ca_file.empty() ? s.ca_path : s.ca_file) +
              (errs.empty() ? std::string() : ": " + errs.front());
      return nullptr;
    }
  }
  if (!s.ca_pem.empty()) {
    BIO* bio = BIO_new_mem_buf(s.ca_pem.data(), static_cast<int>(s.ca_pem.size()));
    int added = 0;
    while (X509* x = bio ? PEM_read_bio_X509(bio, nullptr, nullptr, nullptr) : nullptr) {
      if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x) == 1) ++added;
      X509_free(x);
    }
    BIO_free(bio);
    ERR_clear_error();  // the end of the PEM text
    if (added == 0) {
      error = "no CA certificate in the in-memory CA list";
      return nullptr;
    }
  }
  // The result is judged after the handshake (Untrusted/Trusted/Verified), as Postfix does.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
  return c;
}

// Sessions per peer key, each used once. Guarded by a mutex: one context may serve streams
// on several threads (relaylab relay's delivery agents).
struct client_context::session_cache {
  explicit session_cache(std::size_t n) : per_peer(n) {}
  ~session_cache() {
    for (auto& [key, q] : sessions)
      for (SSL_SESSION* s : q) SSL_SESSION_free(s);
  }
  SSL_SESSION* take(const std::string& key) {
    std::lock_guard lock(mu);
    auto it = sessions.find(key);
    while (it != sessions.end() && !it->second.empty()) {
      SSL_SESSION* s = it->second.back();  // the newest ticket
      it->second.pop_back();
      if (SSL_SESSION_is_resumable(s) == 1) return s;
      SSL_SESSION_free(s);
    }
    return nullptr;
  }
  void put(const std::string& key, SSL_SESSION* s) {
    std::lock_guard lock(mu);
    auto& q = sessions[key];
    q.push_back(s);
    while (q.size() > per_peer) {
      SSL_SESSION_free(q.front());
      q.pop_front();
    }
  }
  std::size_t per_peer;
  std::mutex mu;
  std::map<std::string, std::deque<SSL_SESSION*>> sessions;
};

namespace {

// The ex_data slot of an SSL that holds its client_stream's session key (a std::string owned
// by the stream) and of an SSL_CTX that holds its client_context.
int key_index() {
  static const int i = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return i;
}
int context_index() {
  static const int i = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return i;
}

// OpenSSL's new-session callback: returning 1 keeps the reference it hands over.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  const auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, key_index()));
  auto* ctx =
      static_cast<client_context*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), context_index()));
  if (key == nullptr || key->empty() || ctx == nullptr || !ctx->resumption_enabled()) return 0;
  ctx->cache_session(*key, session);
  return 1;
}

}  // namespace

client_context::client_context(ssl_ctx_st* ctx, client_settings s)
    : ctx_(ctx), settings_(std::move(s)) {}

client_context::~client_context() { SSL_CTX_free(ctx_); }

void client_context::enable_resumption(std::size_t per_peer) {
  if (cache_) return;
  cache_ = std::make_unique<session_cache>(std::max<std::size_t>(per_peer, 1));
  SSL_CTX_set_ex_data(ctx_, context_index(), this);
  SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx_, on_new_session);
}

void client_context::cache_session(const std::string& key, ssl_session_st* s) {
  cache_->put(key, s);
}

client_stream::client_stream(std::unique_ptr<net::byte_stream> inner,
                             std::shared_ptr<client_context> ctx)
    : inner_(std::move(inner)), ctx_(std::move(ctx)), buf_(16 * 1024) {
  ssl_ = SSL_new(ctx_->native());
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl_, rbio, wbio);
  SSL_set_connect_state(ssl_);
}

client_stream::~client_stream() { SSL_free(ssl_); }

void client_stream::set_verify_time(std::chrono::system_clock::time_point t) {
  X509_VERIFY_PARAM_set_time(SSL_get0_param(ssl_),
                             static_cast<time_t>(std::chrono::system_clock::to_time_t(t)));
}

void client_stream::set_session_key(std::string key) { session_key_ = std::move(key); }

session_info client_stream::info() const { return inspect(ssl_, true); }

boost::asio::awaitable<bool> client_stream::flush_out(net::duration timeout, std::error_code& ec) {
  BIO* wbio = SSL_get_wbio(ssl_);
  while (BIO_ctrl_pending(wbio) > 0) {
    const int n = BIO_read(wbio, buf_.data(), static_cast<int>(buf_.size()));
    if (n <= 0) break;
    co_await inner_->write_all(std::span<const char>(buf_.data(), static_cast<std::size_t>(n)),
                               timeout, ec);
    if (ec) co_return false;
  }
  co_return true;
}

boost::asio::awaitable<bool> client_stream::fill_in(net::duration timeout, std::error_code& ec) {
  const std::size_t n = co_await inner_->read_some(buf_, timeout, ec);
  if (ec || n == 0) {
    if (!ec) ec = std::make_error_code(std::errc::connection_reset);
    co_return false;
  }
  BIO_write(SSL_get_rbio(ssl_), buf_.data(), static_cast<int>(n));
  co_return true;
}

boost::asio::awaitable<void> client_stream::handshake(std::string sni,
                                                      std::vector<std::string> names,
                                                      net::duration timeout, std::error_code& ec) {
  ERR_clear_error();
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl_, sni.c_str());
  bool first = true;
  for (const auto& n : names) {
    if (first)
      SSL_set1_host(ssl_, n.c_str());
    else
      SSL_add1_host(ssl_, n.c_str());
    first = false;
  }
  if (!names.empty()) SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (ctx_->resumption_enabled() && !session_key_.empty()) {
    // What was verified is part of the key: a session checked against other names (or SNI)
    // must not come back as "Verified" here.
    session_key_ += "\n" + sni;
    for (const auto& n : names) session_key_ += "\n" + n;
    SSL_set_ex_data(ssl_, key_index(), &session_key_);
    if (SSL_SESSION* s = ctx_->cache_->take(session_key_)) {
      SSL_set_session(ssl_, s);
      SSL_SESSION_free(s);
    }
  }
  for (int i = 0; i < 1000; ++i) {
    const int r = SSL_do_handshake(ssl_);
    const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    if (!co_await flush_out(timeout, ec)) co_return;
    if (r == 1) break;
    if (err == SSL_ERROR_WANT_READ) {
      if (!co_await fill_in(timeout, ec)) co_return;
      continue;
    }
    errors_ = take_openssl_errors();
    ec = std::make_error_code(std::errc::protocol_error);
    co_return;
  }
  if (SSL_is_init_finished(ssl_) != 1) {
    ec = std::make_error_code(std::errc::protocol_error);
    co_return;
  }
  const long v = SSL_get_verify_result(ssl_);
  if (SSL_get0_peer_certificate(ssl_) == nullptr) {
    trust_ = trust::untrusted;
    verify_error_ = "no certificate presented";
  } else if (v == X509_V_OK) {
    trust_ = names.empty() ? trust::trusted : trust::verified;
  } else if (v == X509_V_ERR_HOSTNAME_MISMATCH) {
    trust_ = trust::trusted;
    verify_error_ = "subject name does not match";
  } else {
    trust_ = trust::untrusted;
    verify_error_ = X509_verify_cert_error_string(v);
  }
}

boost::asio::awaitable<std::size_t> client_stream::read_some(std::span<char> buffer,
                                                             net::duration timeout,
                                                             std::error_code& ec) {
  for (int i = 0; i < 10000; ++i) {
    const int r = SSL_read(ssl_, buffer.data(), static_cast<int>(buffer.size()));
    if (r > 0) co_return static_cast<std::size_t>(r);
    const int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_ZERO_RETURN) {
      ec = std::make_error_code(std::errc::connection_reset);
      co_return 0;
    }
    if (err != SSL_ERROR_WANT_READ) {
      errors_ = take_openssl_errors();
      ec = std::make_error_code(std::errc::protocol_error);
      co_return 0;
    }
    // Post-handshake messages (tickets, key updates) may need an answer.
    if (!co_await flush_out(timeout, ec)) co_return 0;
    if (!co_await fill_in(timeout, ec)) co_return 0;
  }
  ec = std::make_error_code(std::errc::protocol_error);
  co_return 0;
}

boost::asio::awaitable<void> client_stream::write_all(std::span<const char> data,
                                                      net::duration timeout, std::error_code& ec) {
  std::size_t done = 0;
  while (done < data.size()) {
    const int r = SSL_write(ssl_, data.data() + done,
                            static_cast<int>(std::min<std::size_t>(data.size() - done, 16 * 1024)));
    if (r <= 0) {
      errors_ = take_openssl_errors();
      ec = std::make_error_code(std::errc::protocol_error);
      co_return;
    }
    done += static_cast<std::size_t>(r);
    if (!co_await flush_out(timeout, ec)) co_return;
  }
}

void client_stream::close() noexcept {
  // close_notify goes out with the last write if the inner stream takes it at once.
  if (SSL_is_init_finished(ssl_) == 1) {
    SSL_shutdown(ssl_);
    BIO* wbio = SSL_get_wbio(ssl_);
    while (BIO_ctrl_pending(wbio) > 0) {
      const int n = BIO_read(wbio, buf_.data(), static_cast<int>(buf_.size()));
      if (n <= 0) break;
      inner_->write_now(std::span<const char>(buf_.data(), static_cast<std::size_t>(n)));
    }
  }
  inner_->close();
}

std::string client_established_line(trust t, const std::string& namaddrport,
                                    const session_info& s) {
  return std::string(to_string(t)) + " TLS connection established to " + namaddrport + ": " +
         describe(s);
}

}  // namespace relaylab::tls
