// The delivery agent's TLS (Postfix's smtp_tls_*): settings that fail closed, a client
// context, and client_stream, TLS over any net::byte_stream (TCP or simulated) through
// OpenSSL memory BIOs, so the same code runs on real sockets and on virtual time.
#pragma once

#include "relay/config/config.hpp"
#include "relay/net/stream.hpp"
#include "relay/tls/tls.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/awaitable.hpp>

struct ssl_st;
struct ssl_ctx_st;
struct ssl_session_st;

namespace relaylab::tls {

/// smtp_tls_security_level as relaylab implements it.
enum class client_level { none, may, encrypt, verify, secure };
std::string_view to_string(client_level l) noexcept;

struct client_settings {
  client_level level = client_level::none;
  std::string ca_file;  // smtp_tls_CAfile
  std::string ca_path;  // smtp_tls_CApath
  std::string ca_pem;   // trusted CAs as PEM text (the harness's per-run CA; no parameter)
  protocol_set protocols;
  std::string cipher_list;
  int loglevel = 0;  // smtp_tls_loglevel
  /// smtp_tls_verify_cert_match / smtp_tls_secure_cert_match: "hostname", "nexthop",
  /// "dot-nexthop" or literal names.
  std::vector<std::string> verify_match{"hostname"};
  std::vector<std::string> secure_match{"nexthop", "dot-nexthop"};
  std::string servername;  // smtp_tls_servername: "", "hostname", "nexthop" or a name
  std::chrono::milliseconds handshake_timeout{300000};  // smtp_starttls_timeout
  bool note_starttls_offer = false;
  /// smtp_tls_wrappermode: TLS right after the TCP connect, before the 220 (SMTPS, port
  /// 465), never STARTTLS. Implies at least `encrypt`.
  bool wrappermode = false;

  bool wants_tls() const { return level != client_level::none; }
  bool requires_tls() const { return level >= client_level::encrypt; }
  bool checks_names() const { return level >= client_level::verify; }
};

/// The delivery side (main.cf, or a smtp service's view with its -o lines). nullopt after a
/// fatal diagnostic: dane, dane-only, fingerprint, smtp_tls_policy_maps, smtp_tls_per_site,
/// client certificates, bad protocols or ciphers. smtp_tls_wrappermode = yes with a level below
/// encrypt gets Postfix's warning ("smtp_tls_wrappermode requires "smtp_tls_security_level =
/// encrypt" (or stronger)") and the level encrypt, as Postfix's smtp(8) uses then.
std::optional<client_settings> client_settings_from(const config::parameters& p,
                                                    std::vector<config::diagnostic>& diags);

class client_context {
 public:
  static std::shared_ptr<client_context> create(const client_settings& s, std::string& error);
  ~client_context();
  client_context(const client_context&) = delete;
  client_context& operator=(const client_context&) = delete;
  ssl_ctx_st* native() const { return ctx_; }
  const client_settings& settings() const { return settings_; }

  /// Client-side resumption: keeps up to `per_peer` sessions (TLS 1.3 tickets, or TLS 1.2
  /// session IDs and tickets) per peer key, for later streams of this context that name the
  /// same key (client_stream::set_session_key). Each session is used once, as RFC 8446
  /// recommends for tickets; the server's new tickets refill the cache. Off by default, as
  /// Postfix's smtp(8) caches nothing without smtp_tls_session_cache_database.
  void enable_resumption(std::size_t per_peer = 16);
  bool resumption_enabled() const noexcept { return cache_ != nullptr; }
  /// Takes over a reference to `s` (the new-session callback).
  void cache_session(const std::string& key, ssl_session_st* s);

 private:
  friend class client_stream;
  struct session_cache;
  client_context(ssl_ctx_st* ctx, client_settings s);
  ssl_ctx_st* ctx_;
  client_settings settings_;
  std::unique_ptr<session_cache> cache_;
};

/// How far the server's certificate was checked (Postfix's "Untrusted", "Trusted",
/// "Verified" TLS connection).
enum class trust { untrusted, trusted, verified };
std::string_view to_string(trust t) noexcept;

class client_stream final : public net::byte_stream {
 public:
  client_stream(std::unique_ptr<net::byte_stream> inner, std::shared_ptr<client_context> ctx);
  ~client_stream() override;

  /// Runs the handshake. `sni`: name sent as SNI ("" none); `names`: names the certificate
  /// must match for trust::verified (empty: no name check). On failure `ec` is set and
  /// errors() says why.
  boost::asio::awaitable<void> handshake(std::string sni, std::vector<std::string> names,
                                         net::duration timeout, std::error_code& ec);
  /// Certificates are checked for validity at `t` (the injected clock; virtual in the
  /// simulation) instead of the system clock. Call before handshake().
  void set_verify_time(std::chrono::system_clock::time_point t);
  /// The peer this stream talks to, for the context's session cache (host:port, plus
  /// anything that changes what was verified: the names passed to handshake() are added to
  /// the key). With resumption enabled, the handshake offers a cached session for the key,
  /// and the sessions the server issues are cached under it. Call before handshake().
  void set_session_key(std::string key);
  trust peer_trust() const noexcept { return trust_; }
  /// OpenSSL's verification error ("unable to get local issuer certificate"), "" if none.
  const std::string& verify_error() const noexcept { return verify_error_; }
  const std::vector<std::string>& errors() const noexcept { return errors_; }
  session_info info() const;

  boost::asio::awaitable<std::size_t> read_some(std::span<char> buffer, net::duration timeout,
                                                std::error_code& ec) override;
  boost::asio::awaitable<void> write_all(std::span<const char> data, net::duration timeout,
                                         std::error_code& ec) override;
  void close() noexcept override;
  std::string local_address() const override { return inner_->local_address(); }

 private:
  boost::asio::awaitable<bool> flush_out(net::duration timeout, std::error_code& ec);
  boost::asio::awaitable<bool> fill_in(net::duration timeout, std::error_code& ec);

  std::unique_ptr<net::byte_stream> inner_;
  std::shared_ptr<client_context> ctx_;
  ssl_st* ssl_ = nullptr;
  trust trust_ = trust::untrusted;
  std::string verify_error_;
  std::vector<std::string> errors_;
  std::vector<char> buf_;
  std::string session_key_;
};

/// "Trusted TLS connection established to HOST[ADDR]:PORT: TLSv1.3 with cipher ...".
std::string client_established_line(trust t, const std::string& namaddrport, const session_info& s);

}  // namespace relaylab::tls
