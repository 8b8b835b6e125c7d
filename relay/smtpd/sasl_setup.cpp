#include "relay/smtpd/sasl_setup.hpp"

#include "relay/sasl/sasl.hpp"

namespace relaylab::smtpd {

bool sasl_wanted(const config::configuration& cfg) {
  for (const auto& s : cfg.services)
    if (cfg.main.with_overrides(s.overrides).get_bool("smtpd_sasl_auth_enable")) return true;
  return false;
}

std::shared_ptr<sasl::server_library> init_sasl(const config::configuration& cfg,
                                                std::string& error) {
  sasl::server_config sc;
  sc.config_path = cfg.sasl_config_path().string();
  sc.app_name = cfg.main.get("smtpd_sasl_path");
  sc.service = cfg.main.get("smtpd_sasl_service");
  sc.server_fqdn = cfg.main.get("myhostname");
  sc.user_realm = cfg.main.get("smtpd_sasl_local_domain");
  std::string why;
  auto sec = sasl::security_options::parse(cfg.main.get("smtpd_sasl_security_options"), why);
  if (!sec) {
    error = "smtpd_sasl_security_options: " + why;
    return nullptr;
  }
  sc.security = *sec;
  auto lib = sasl::server_library::init(sc, why);
  if (!lib) error = "SASL: " + why;
  return lib;
}

}  // namespace relaylab::smtpd
