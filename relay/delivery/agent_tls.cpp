#include "relay/delivery/agent_tls.hpp"

#include "relay/tls/client.hpp"

namespace relaylab::delivery {

bool configure_agent_tls(const config::configuration& cfg, smtp_agent_options& ao,
                         std::vector<config::diagnostic>& diags, const std::string& extra_ca_pem) {
  auto settings = tls::client_settings_from(cfg.main, diags);
  bool ok = settings.has_value();
  for (const auto& svc : cfg.all_services) {
    if (svc.command != "smtp" && svc.command != "lmtp") continue;
    for (const auto& [name, value] : svc.overrides) {
      const bool tls_param = name.rfind("smtp_tls_", 0) == 0 || name.rfind("lmtp_tls_", 0) == 0 ||
                             name == "smtp_use_tls" || name == "smtp_enforce_tls" ||
                             name == "smtp_starttls_timeout";
      if (!tls_param || value == cfg.main.get(name)) continue;
      config::diagnostic d;
      d.level = config::diagnostic::severity::fatal;
      d.file = svc.file;
      d.line = svc.line;
      d.parameter = name;
      d.message = "service " + svc.name + ": -o " + name + "=" + value +
                  " is not implemented by relaylab: its delivery agent uses main.cf's TLS "
                  "settings for every transport";
      diags.push_back(std::move(d));
      ok = false;
    }
  }
  if (!ok) return false;
  if (!settings->wants_tls()) return true;
  settings->ca_pem = extra_ca_pem;
  std::string error;
  ao.tls = tls::client_context::create(*settings, error);
  if (!ao.tls) {
    config::diagnostic d;
    d.level = config::diagnostic::severity::fatal;
    auto where = cfg.main.origin_of("smtp_tls_CAfile");
    if (where) {
      d.file = where->file;
      d.line = where->line;
    }
    d.parameter = "smtp_tls_security_level";
    d.message = "smtp_tls: " + error;
    diags.push_back(std::move(d));
    return false;
  }
  ao.client.starttls = settings->requires_tls() ? smtp::client_options::tls_use::required
                                                : smtp::client_options::tls_use::may;
  return true;
}

}  // namespace relaylab::delivery
