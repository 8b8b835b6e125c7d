// The process-wide libsasl2 server library for a configuration, initialised as Postfix's smtpd
// does from main.cf (smtpd_sasl_path, smtpd_sasl_service, smtpd_sasl_local_domain,
// smtpd_sasl_security_options). Shared by `relaylab relay` and `relaylab matrix`.
#pragma once

#include "relay/config/config.hpp"

#include <memory>
#include <string>

namespace relaylab::sasl {
class server_library;
}

namespace relaylab::smtpd {

/// True when some inet service has smtpd_sasl_auth_enable = yes (main.cf or -o).
bool sasl_wanted(const config::configuration& cfg);

/// Initialises libsasl2 with smtpd.conf from cfg.sasl_config_path(). Errors (null return,
/// `error` set): "smtpd_sasl_security_options: ..." for a bad value, "SASL: ..." when libsasl2
/// refuses (no smtpd.conf, another configuration already initialised in this process).
std::shared_ptr<sasl::server_library> init_sasl(const config::configuration& cfg,
                                                std::string& error);

}  // namespace relaylab::smtpd
