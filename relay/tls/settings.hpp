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
/// fatal diagnostic was added.
std::optional<server_settings> server_settings_from(const config::parameters& p,
                                                    std::vector<config::diagnostic>& diags);

/// Postfix's cipher list for a grade ("high", "medium", "low", "export", "null") with the
/// exclusions appended, from the tls_*_cipherlist parameters. Empty `error` on success.
std::string cipher_list(const config::parameters& p, const std::string& grade,
                        const std::vector<std::string>& exclude, std::string& error);

}  // namespace relaylab::tls
