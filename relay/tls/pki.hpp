// An in-memory certificate authority for tests, benchmarks and the harness: a CA and leaf
// certificates for given names, as PEM text, with chosen key types and validity. Not for
// production keys (no key protection, short-lived by design).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace relaylab::tls {

/// Ed25519 keys, signatures and certificates have fixed sizes, so a handshake with them has the
/// same length every time: what the simulation uses, where bytes take virtual time.
enum class key_kind { ecdsa_p256, rsa_2048, ed25519 };

struct issued {
  std::string cert_pem;   // the leaf certificate
  std::string key_pem;    // its private key (PKCS#8, unencrypted)
  std::string chain_pem;  // leaf then issuer: what smtpd_tls_cert_file takes
};

class authority {
 public:
  /// A self-signed CA named `common_name`, valid from a day before `now` for a year. Validity
  /// of the certificates it issues counts from `now` too (the simulation passes its virtual
  /// clock). Serial numbers count from 1 per authority. Throws std::runtime_error when OpenSSL
  /// fails.
  explicit authority(const std::string& common_name, key_kind kind = key_kind::ecdsa_p256,
                     std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
  ~authority();
  authority(const authority&) = delete;
  authority& operator=(const authority&) = delete;

  /// The CA certificate (what a client's CAfile holds).
  const std::string& ca_pem() const;

  /// A server certificate for `names` (first is the subject CN; all go in subjectAltName as
  /// DNS names, or IP addresses when numeric), valid from now+not_before to now+not_after
  /// (a negative not_after gives an expired certificate).
  issued issue(const std::vector<std::string>& names, key_kind kind = key_kind::ecdsa_p256,
               std::chrono::seconds not_before = std::chrono::seconds(-3600),
               std::chrono::seconds not_after = std::chrono::hours(24 * 30)) const;

  /// A self-signed server certificate (no CA), for "does not verify" cases.
  static issued self_signed(
      const std::string& name, key_kind kind = key_kind::ecdsa_p256,
      std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace relaylab::tls
