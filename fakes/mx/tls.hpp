// TLS for the fake MX: server contexts with a good, a self-signed or an expired certificate
// (from an in-memory tls::authority) or from PEM files, for tests, `relaylab mx --tls` and the
// harness's simulated MX hosts.
#pragma once

#include "relay/tls/pki.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::tls {
class server_context;
}

namespace relaylab::fakes::mx {

/// What the MX's certificate looks like to a client that trusts the authority's CA.
enum class cert_kind {
  good,         // issued by the authority, valid now, for the given names
  self_signed,  // no CA ("self-signed certificate")
  expired,      // issued by the authority, expired a day ago ("certificate has expired")
};

/// "good", "self-signed", "expired"; nullopt for anything else.
std::optional<cert_kind> parse_cert_kind(std::string_view text);
std::string_view to_string(cert_kind k) noexcept;

struct tls_options {
  /// TLS before the greeting (smtps, port 465) instead of STARTTLS.
  bool wrappermode = false;
  /// Handshake time limit (smtpd_starttls_timeout).
  std::chrono::milliseconds handshake_timeout{300000};
};

/// A server context with a certificate of `kind` for `names` (first is the CN; all are
/// subjectAltNames) and a `key` key. Validity counts from `now` (the authority's clock: pass
/// the same time, virtual in the simulation). nullptr with `error` when OpenSSL fails.
std::shared_ptr<tls::server_context> make_tls_context(
    const tls::authority& ca, cert_kind kind, const std::vector<std::string>& names,
    tls::key_kind key, std::string& error, const tls_options& options = {},
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// A server context from a PEM certificate chain file and its key file. nullptr with `error`
/// naming the file and OpenSSL's reason.
std::shared_ptr<tls::server_context> make_tls_context_files(const std::string& cert_file,
                                                            const std::string& key_file,
                                                            std::string& error,
                                                            const tls_options& options = {});

}  // namespace relaylab::fakes::mx
