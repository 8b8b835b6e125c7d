#include "fakes/mx/tls.hpp"

#include "relay/tls/context.hpp"

#include <exception>

namespace relaylab::fakes::mx {

namespace {

tls::server_settings base_settings(const tls_options& options) {
  tls::server_settings s;
  s.level = tls::server_level::may;
  s.wrappermode = options.wrappermode;
  s.handshake_timeout = options.handshake_timeout;
  return s;
}

}  // namespace

std::optional<cert_kind> parse_cert_kind(std::string_view text) {
  if (text == "good") return cert_kind::good;
  if (text == "self-signed") return cert_kind::self_signed;
  if (text == "expired") return cert_kind::expired;
  return std::nullopt;
}

std::string_view to_string(cert_kind k) noexcept {
  switch (k) {
    case cert_kind::good:
      return "good";
    case cert_kind::self_signed:
      return "self-signed";
    case cert_kind::expired:
      return "expired";
  }
  return "good";
}

std::shared_ptr<tls::server_context> make_tls_context(const tls::authority& ca, cert_kind kind,
                                                      const std::vector<std::string>& names,
                                                      tls::key_kind key, std::string& error,
                                                      const tls_options& options,
                                                      std::chrono::system_clock::time_point now) {
  if (names.empty()) {
    error = "a TLS certificate needs at least one host name";
    return nullptr;
  }
  tls::issued cert;
  try {
    using std::chrono::hours;
    switch (kind) {
      case cert_kind::good:
        cert = ca.issue(names, key);
        break;
      case cert_kind::self_signed:
        cert = tls::authority::self_signed(names.front(), key, now);
        break;
      case cert_kind::expired:
        cert = ca.issue(names, key, std::chrono::duration_cast<std::chrono::seconds>(-hours(48)),
                        std::chrono::duration_cast<std::chrono::seconds>(-hours(24)));
        break;
    }
  } catch (const std::exception& e) {
    error = std::string("TLS certificate: ") + e.what();
    return nullptr;
  }
  auto s = base_settings(options);
  s.pem_pairs.push_back({cert.chain_pem, cert.key_pem});
  return tls::server_context::create(s, error);
}

std::shared_ptr<tls::server_context> make_tls_context_files(const std::string& cert_file,
                                                            const std::string& key_file,
                                                            std::string& error,
                                                            const tls_options& options) {
  auto s = base_settings(options);
  s.key_pairs.push_back({cert_file, key_file});
  return tls::server_context::create(s, error);
}

}  // namespace relaylab::fakes::mx
