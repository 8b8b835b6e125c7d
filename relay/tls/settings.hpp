// smtpd_tls_* / smtp_tls_* / tls_* parameters → tls settings, failing closed: every value that
// would change what a client or an MX is promised and that relaylab does not implement is a
// fatal diagnostic naming the file:line where it was set, the parameter and the reason.
#pragma once

#include "relay/config/config.hpp"
#include "relay/tls/tls.hpp"

#include <optional>
#include <vector>

namespace relaylab::tls {

/// The smtpd side of one service (main.cf with the service's -o overrides). nullopt when a
/// fatal diagnostic was added. `supplied`: certificates and keys the host provides (the
/// simulation's per-run ones); they serve only when the parameters name no certificate file
/// (smtpd_tls_chain_files, smtpd_tls_cert_file, smtpd_tls_eccert_file all empty), so a file
/// the configuration names is always the one loaded.
std::optional<server_settings> server_settings_from(const config::parameters& p,
                                                    std::vector<config::diagnostic>& diags,
                                                    const std::vector<key_pair_pem>& supplied = {});

/// Whether the parameters ask the SMTP server for TLS (smtpd_tls_security_level may or
/// encrypt, the obsolete smtpd_use_tls/smtpd_enforce_tls, or smtpd_tls_wrappermode), judged as
/// server_settings_from judges them; invalid values count as asking (server_settings_from
/// refuses them).
bool server_tls_requested(const config::parameters& p);

/// Postfix's cipher list for a grade ("high", "medium", "low", "export", "null") with the
/// exclusions appended, from the tls_*_cipherlist parameters. Empty `error` on success.
std::string cipher_list(const config::parameters& p, const std::string& grade,
                        const std::vector<std::string>& exclude, std::string& error);

}  // namespace relaylab::tls
