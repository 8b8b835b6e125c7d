// The delivery agent's TLS from the configuration (Postfix's smtp_tls_* in main.cf): what
// `relaylab relay` and the simulation both do before the agent starts. Every setting relaylab
// cannot keep is a fatal diagnostic (file:line), so a relay that starts keeps every TLS promise
// its configuration makes towards the MX hosts.
#pragma once

#include "relay/config/config.hpp"
#include "relay/delivery/smtp_agent.hpp"

#include <string>
#include <vector>

namespace relaylab::delivery {

/// Reads main.cf's smtp_tls_* (tls::client_settings_from), refuses smtp/lmtp services whose
/// -o lines change them (the agent has one set of TLS settings for every transport), and sets
/// `ao.tls` and `ao.client.starttls`. `extra_ca_pem`: CA certificates trusted besides
/// smtp_tls_CAfile/CApath (the simulation's per-run CA). False after a fatal diagnostic.
bool configure_agent_tls(const config::configuration& cfg, smtp_agent_options& ao,
                         std::vector<config::diagnostic>& diags,
                         const std::string& extra_ca_pem = {});

}  // namespace relaylab::delivery
