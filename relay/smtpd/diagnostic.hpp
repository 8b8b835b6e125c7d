// A diagnostic about one master.cf service, at its file:line ("service NAME: ..."). Private to
// relay/smtpd.
#pragma once

#include "relay/config/config.hpp"

#include <string>

namespace relaylab::smtpd::detail {

inline config::diagnostic service_diagnostic(config::diagnostic::severity level,
                                             const config::master_service& definition,
                                             std::string parameter, std::string message) {
  config::diagnostic d;
  d.level = level;
  d.file = definition.file;
  d.line = definition.line;
  d.parameter = std::move(parameter);
  d.message = "service " + definition.name + ": " + std::move(message);
  return d;
}

}  // namespace relaylab::smtpd::detail
