#include "relay/delivery/agent_tls.hpp"

#include "relay/tls/client.hpp"

namespace relaylab::delivery {
namespace {

bool is_tls_parameter(const std::string& name) {
  return name.rfind("smtp_tls_", 0) == 0 || name.rfind("lmtp_tls_", 0) == 0 ||
         name == "smtp_use_tls" || name == "smtp_enforce_tls" || name == "smtp_starttls_timeout";
}

config::diagnostic service_refusal(const config::master_service& svc, const std::string& name,
                                   const std::string& value, const std::string& why) {
  config::diagnostic d;
  d.level = config::diagnostic::severity::fatal;
  d.file = svc.file;
  d.line = svc.line;
  d.parameter = name;
  d.message = "service " + svc.name + ": -o " + name + "=" + value +
              " is not implemented by relaylab: " + why;
  return d;
}

// The TLS of one agent from `view` (main.cf, or main.cf with a service's -o lines).
bool apply_tls(const config::configuration& cfg, const config::parameters& view,
               smtp_agent_options& ao, std::vector<config::diagnostic>& diags,
               const std::string& extra_ca_pem) {
  auto settings = tls::client_settings_from(view, diags);
  if (!settings) return false;
  ao.tls.reset();
  ao.client.starttls = smtp::client_options::tls_use::none;
  if (!settings->wants_tls()) return true;
  settings->ca_pem = extra_ca_pem;
  std::string error;
  ao.tls = tls::client_context::create(*settings, error);
  if (!ao.tls) {
    config::diagnostic d;
    d.level = config::diagnostic::severity::fatal;
    auto where = view.origin_of("smtp_tls_CAfile");
    if (!where) where = cfg.main.origin_of("smtp_tls_CAfile");
    if (where) {
      d.file = where->file;
      d.line = where->line;
    }
    d.parameter = "smtp_tls_security_level";
    d.message = "smtp_tls: " + error;
    diags.push_back(std::move(d));
    return false;
  }
  // Wrapped sessions never send STARTTLS: TLS is on before the greeting.
  if (settings->wrappermode)
    ao.client.starttls = smtp::client_options::tls_use::none;
  else
    ao.client.starttls = settings->requires_tls() ? smtp::client_options::tls_use::required
                                                  : smtp::client_options::tls_use::may;
  return true;
}

}  // namespace

bool refuse_lmtp_tls_overrides(const config::configuration& cfg,
                               std::vector<config::diagnostic>& diags) {
  bool ok = true;
  for (const auto& svc : cfg.all_services) {
    if (svc.command != "lmtp") continue;
    for (const auto& [name, value] : svc.overrides) {
      if (!is_tls_parameter(name) || value == cfg.main.get(name)) continue;
      diags.push_back(service_refusal(svc, name, value, "relaylab has no LMTP client"));
      ok = false;
    }
  }
  return ok;
}

std::vector<smtp_transport> smtp_transports(const config::configuration& cfg) {
  std::vector<smtp_transport> out{{"smtp", nullptr}};
  for (const auto& svc : cfg.all_services) {
    if (svc.type != "unix" || svc.command != "smtp") continue;
    if (svc.name == "smtp") {
      if (!out.front().service) out.front().service = &svc;
      continue;
    }
    bool seen = false;
    for (const auto& t : out) seen = seen || t.name == svc.name;
    if (!seen) out.push_back({svc.name, &svc});
  }
  return out;
}

bool configure_transport_tls(const config::configuration& cfg, const smtp_transport& t,
                             smtp_agent_options& ao, std::vector<config::diagnostic>& diags,
                             const std::string& extra_ca_pem) {
  ao.transport = t.name;
  const config::parameters view =
      t.service ? cfg.main.with_service_overrides(*t.service) : cfg.main;
  return apply_tls(cfg, view, ao, diags, extra_ca_pem);
}

bool configure_agent_tls(const config::configuration& cfg, smtp_agent_options& ao,
                         std::vector<config::diagnostic>& diags, const std::string& extra_ca_pem) {
  bool ok = true;
  for (const auto& svc : cfg.all_services) {
    if (svc.command != "smtp" && svc.command != "lmtp") continue;
    for (const auto& [name, value] : svc.overrides) {
      if (!is_tls_parameter(name) || value == cfg.main.get(name)) continue;
      diags.push_back(service_refusal(
          svc, name, value, "this delivery agent uses main.cf's TLS settings for every transport"));
      ok = false;
    }
  }
  return apply_tls(cfg, cfg.main, ao, diags, extra_ca_pem) && ok;
}

}  // namespace relaylab::delivery
