// Start-up warnings about what a service's settings leave open to attack, each naming the
// service (listener) and the fix. Postfix 3.7 says nothing here; relaylab relay does.
#include "relay/smtpd/smtpd.hpp"

#include "relay/smtpd/diagnostic.hpp"

#include <cctype>
#include <string>

namespace relaylab::smtpd {
namespace {

std::string lowered(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool blank(const std::string& s) {
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c)) && c != ',') return false;
  return true;
}

config::diagnostic warning(const config::master_service& svc, std::string parameter,
                           std::string message) {
  return detail::service_diagnostic(config::diagnostic::severity::warning, svc,
                                    std::move(parameter), std::move(message));
}

}  // namespace

std::vector<config::diagnostic> exposure_warnings(const config::configuration& cfg,
                                                  const config::master_service& svc) {
  std::vector<config::diagnostic> out;
  const auto p = cfg.main.with_service_overrides(svc);
  const std::string mode = lowered(p.get("smtpd_forbid_bare_newline"));
  if (mode == "no") {
    out.push_back(warning(
        svc, "smtpd_forbid_bare_newline",
        "smtpd_forbid_bare_newline = no: a bare <LF> before or after the \".\" ends DATA "
        "(<LF>.<LF>, <LF>.<CR><LF>, <CR><LF>.<LF>), so a client can smuggle a second message "
        "(SMTP smuggling, CVE-2023-51764); fix: smtpd_forbid_bare_newline = normalize (or "
        "reject) in main.cf or with -o on this service"));
    return out;
  }
  const std::string excl = p.get("smtpd_forbid_bare_newline_exclusions");
  if (!blank(excl)) {
    out.push_back(warning(
        svc, "smtpd_forbid_bare_newline_exclusions",
        "smtpd_forbid_bare_newline_exclusions = " + excl +
            ": clients it matches may still smuggle messages (SMTP smuggling, CVE-2023-51764); "
            "fix: smtpd_forbid_bare_newline_exclusions = (empty) unless a client there needs "
            "bare <LF> line endings"));
  }
  return out;
}

}  // namespace relaylab::smtpd
