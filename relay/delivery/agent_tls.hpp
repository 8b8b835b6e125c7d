// The delivery agent's TLS from the configuration (Postfix's smtp_tls_* in main.cf, and the
// -o smtp_tls_* lines of master.cf's smtp services): what `relaylab relay` and the simulation
// both do before an agent starts. Every setting relaylab cannot keep is a fatal diagnostic
// (file:line), so a relay that starts keeps every TLS promise its configuration makes towards
// the MX hosts.
#pragma once

#include "relay/config/config.hpp"
#include "relay/delivery/smtp_agent.hpp"

#include <string>
#include <vector>

namespace relaylab::delivery {

/// One SMTP delivery transport: a master.cf service whose command is smtp ("smtp", "relay",
/// an "smtps" with -o smtp_tls_wrappermode=yes ...). `service` is null for the built-in "smtp"
/// when master.cf has no such service.
struct smtp_transport {
  std::string name;
  const config::master_service* service = nullptr;
};

/// The transports Postfix's smtp(8) serves here: "smtp" first (always), then every other
/// "unix" service whose command is smtp, in master.cf order.
std::vector<smtp_transport> smtp_transports(const config::configuration& cfg);

/// lmtp services whose -o lines change smtp_tls_*/lmtp_tls_*: fatal diagnostics (relaylab has
/// no LMTP client, so nobody would keep that promise). False when there was one.
bool refuse_lmtp_tls_overrides(const config::configuration& cfg,
                               std::vector<config::diagnostic>& diags);

/// Reads the smtp_tls_* of `t` (main.cf with the service's -o lines, as Postfix's smtp(8)
/// does) into `ao.tls`, `ao.client.starttls` and `ao.transport`. `extra_ca_pem`: CA
/// certificates trusted besides smtp_tls_CAfile/CApath (the simulation's per-run CA). False
/// after a fatal diagnostic; warnings are appended to `diags` too.
bool configure_transport_tls(const config::configuration& cfg, const smtp_transport& t,
                             smtp_agent_options& ao, std::vector<config::diagnostic>& diags,
                             const std::string& extra_ca_pem = {});

/// One agent for every transport (the simulation): main.cf's smtp_tls_* only; an smtp/lmtp
/// service whose -o lines change them is refused. Same results as configure_transport_tls.
bool configure_agent_tls(const config::configuration& cfg, smtp_agent_options& ao,
                         std::vector<config::diagnostic>& diags,
                         const std::string& extra_ca_pem = {});

}  // namespace relaylab::delivery
