// The OpenSSL side of relay/tls: a server context built from server_settings, and what an
// established SSL* says about itself. The only code besides stream.hpp that includes OpenSSL.
#pragma once

#include "relay/tls/tls.hpp"

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

namespace relaylab::tls {

class server_context {
 public:
  /// Loads keys and certificates and applies protocols, ciphers and groups. nullptr with
  /// `error` saying which file or setting failed and why (OpenSSL's reason included).
  static std::shared_ptr<server_context> create(const server_settings& s, std::string& error);

  boost::asio::ssl::context& asio() { return ctx_; }
  const server_settings& settings() const { return settings_; }

 private:
  explicit server_context(const server_settings& s);
  boost::asio::ssl::context ctx_;
  server_settings settings_;
};

/// Facts about an established session (protocol, cipher, key exchange, signature): the
/// local end's signature (server), or with `peer` the server's as a client saw it.
session_info inspect(const SSL* ssl, bool peer = false);

/// Drains OpenSSL's error queue into Postfix-style text: "error:0A00010B:SSL routines::wrong
/// version number" lines (empty when the queue is empty).
std::vector<std::string> take_openssl_errors();
/// Where the first OpenSSL error of a failed handshake on `ssl` is written, with its source
/// file and line as Postfix logs them (asio takes that error off the queue before the caller
/// can read it). `slot` must outlive the handshake; nullptr detaches.
void capture_first_error(SSL* ssl, std::string* slot);
/// One packed OpenSSL error code as "error:0A00010B:SSL routines::wrong version number".
std::string openssl_error_text(unsigned long code);

/// What Postfix's smtpd logs when a server handshake fails: "SSL_accept error from
/// NAME[ADDR]: -1" (or ": lost connection") followed by "TLS library problem: ..." warnings.
struct failure_lines {
  std::string info;
  std::vector<std::string> warnings;
};
failure_lines handshake_failure(const std::string& namaddr, bool peer_closed,
                                const std::vector<std::string>& openssl_errors);

}  // namespace relaylab::tls
