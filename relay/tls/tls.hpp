// TLS settings and facts, independent of OpenSSL: what relay/smtpd, relay/net and the harness
// need to know about a TLS service or session. The OpenSSL side is context.hpp/stream.hpp.
//
// CONTRACT (used by relay/smtpd, relay/net, harness; change only together):
// - `server_settings` is what smtpd_tls_* parameters ask for, already checked: settings.cpp
//   turns config::parameters into it and refuses (fatal diagnostic, file:line) every value
//   relaylab does not implement, so a service that starts keeps every TLS promise it makes.
// - `session_info` describes an established session in Postfix's words (tls_misc.c).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace relaylab::tls {

/// smtpd_tls_security_level (smtpd side: none, may, encrypt).
enum class server_level { none, may, encrypt };

/// Protocol versions allowed, as Postfix's smtpd_tls_protocols syntax gives them
/// ("!SSLv2, !SSLv3", ">=TLSv1.2", "TLSv1.2 TLSv1.3").
struct protocol_set {
  // Indexed by protocol: SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3.
  static constexpr int count = 6;
  bool enabled[count] = {true, true, true, true, true, true};
};

/// Parses a Postfix protocol list. Empty `error` on success; otherwise it says which word is
/// wrong and what was expected.
protocol_set parse_protocols(const std::string& text, std::string& error);

/// One certificate with its private key and chain, as PEM files (key and chain may be the
/// same file).
struct key_pair_files {
  std::string cert_file;  // leaf first, then intermediates
  std::string key_file;
};

/// The same, as PEM text (the harness's in-memory certificates; no main.cf parameter).
struct key_pair_pem {
  std::string chain_pem;  // leaf first, then intermediates
  std::string key_pem;
};

struct server_settings {
  server_level level = server_level::none;
  bool wrappermode = false;  // smtpd_tls_wrappermode: TLS before the greeting (smtps, 465)
  bool auth_only = false;    // smtpd_tls_auth_only: no AUTH before STARTTLS
  /// smtpd_tls_chain_files: each file holds a key then its certificates (in order).
  std::vector<std::string> chain_files;
  /// smtpd_tls_cert_file/key_file and smtpd_tls_eccert_file/eckey_file.
  std::vector<key_pair_files> key_pairs;
  /// Pairs given as text, loaded after the files (harness/sim's per-run certificates).
  std::vector<key_pair_pem> pem_pairs;
  protocol_set protocols;                // smtpd_tls_protocols or _mandatory_ at encrypt
  std::string cipher_list;               // OpenSSL cipher string from the cipher grade and excludes
  std::string groups;                    // tls_eecdh_auto_curves (colon-separated for OpenSSL)
  std::vector<std::string> ssl_options;  // tls_ssl_options names (see settings.cpp)
  bool server_preference = false;        // tls_preempt_cipherlist
  std::string ca_file;                   // smtpd_tls_CAfile (completes the chain)
  std::string ca_path;                   // smtpd_tls_CApath
  std::string dh_param_file;             // smtpd_tls_dh1024_param_file
  int loglevel = 0;                      // smtpd_tls_loglevel
  bool received_header = false;
  std::chrono::seconds session_timeout{3600};           // smtpd_tls_session_cache_timeout
  std::chrono::milliseconds handshake_timeout{300000};  // smtpd_starttls_timeout

  /// STARTTLS is offered (or TLS is implicit).
  bool use_tls() const { return wrappermode || level != server_level::none; }
  /// Mail needs TLS first (530 before STARTTLS).
  bool enforce_tls() const { return level == server_level::encrypt; }
};

/// An established session, in the words of Postfix's log lines.
struct session_info {
  std::string protocol;  // "TLSv1.3"
  std::string cipher;    // "TLS_AES_256_GCM_SHA384"
  int cipher_bits = 0;   // 256
  int cipher_alg_bits = 0;
  std::string kex;        // "X25519" (may be empty)
  std::string signature;  // "ECDSA (P-256)" / "RSA-PSS (2048 bits)"
  std::string digest;     // "SHA256"
  bool reused = false;    // resumed from a ticket or cache
};

/// "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519
/// server-signature ECDSA (P-256) server-digest SHA256".
std::string describe(const session_info& s);

/// Postfix's smtpd log line at smtpd_tls_loglevel >= 1: "Anonymous TLS connection established
/// from NAME[ADDR]: ..." (no client certificate is asked for, so always Anonymous).
std::string server_established_line(const session_info& s, const std::string& namaddr);

/// The Received: header comment for smtpd_tls_received_header = yes.
std::string received_note(const session_info& s);

}  // namespace relaylab::tls
