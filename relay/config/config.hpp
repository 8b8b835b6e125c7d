// Postfix main.cf / master.cf and Cyrus SASL smtpd.conf, read into plain values.
//
// CONTRACT (used by relay/policy, relay/smtpd, relay/net, the CLI; change only together):
// - `parameters` holds main.cf settings plus Postfix's built-in defaults for every parameter
//   relaylab supports, and expands $name / ${name} / ${name?x} / ${name:x} lazily on lookup,
//   as Postfix does. Unknown names in main.cf are kept (and warned about), never fatal.
// - `with_overrides` gives the view of one master.cf service (its -o name=value settings).
// - Errors are returned as diagnostics naming file:line and the parameter.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace relaylab::config {

struct diagnostic {
  enum class severity { warning, fatal };
  severity level = severity::warning;
  std::string file;   // path as given
  int line = 0;       // 1-based; 0 when not tied to a line
  std::string parameter;  // the parameter or service concerned, may be empty
  std::string message;    // what is wrong and what was expected
  /// "FILE:LINE: warning: MESSAGE" / "FILE:LINE: fatal: MESSAGE", postconf style.
  std::string to_string() const;
};

/// Facts about the host that Postfix defaults depend on; injected so tests are deterministic.
struct host_environment {
  std::string hostname = "localhost";  // gethostname(); myhostname's default
  /// Interface addresses with prefix lengths ("192.168.2.44/24", "::1/128") for mynetworks_style.
  std::vector<std::string> interface_networks;
  /// Reads the real host (gethostname, getifaddrs). Only CLI entry points call this.
  static host_environment from_system();
};

class parameters {
 public:
  /// Built-in defaults only (like `postconf -d`).
  explicit parameters(host_environment env = {});

  /// Raw value as set in main.cf or -o, or the default; nullopt for an unknown name.
  std::optional<std::string> raw(std::string_view name) const;
  /// Expanded value ($name, ${name}, ${name?text}, ${name:text}, $$); "" for unknown names.
  std::string get(std::string_view name) const;
  /// yes/no; fatal diagnostics for anything else are reported by validate().
  bool get_bool(std::string_view name) const;
  long long get_int(std::string_view name) const;
  /// Postfix time values ("300s", "5m", "1h", "1d", "1w"; bare numbers use the parameter's
  /// default unit).
  std::chrono::milliseconds get_time(std::string_view name) const;
  /// Expanded value split on whitespace and commas, as Postfix splits lists.
  std::vector<std::string> get_list(std::string_view name) const;

  bool is_known(std::string_view name) const;  // has a built-in default
  bool is_set(std::string_view name) const;    // set in main.cf or by an override
  void set(std::string name, std::string value);
  /// Copy with master.cf -o overrides applied.
  parameters with_overrides(const std::vector<std::pair<std::string, std::string>>& o) const;
  /// Type checks of every set value (booleans, integers, times); fatal diagnostics on errors.
  std::vector<diagnostic> validate() const;
  const host_environment& environment() const noexcept;

 private:
  host_environment env_;
  std::map<std::string, std::string, std::less<>> set_;  // explicitly set values
};

struct master_service {
  std::string name;  // "smtp", "submission", "127.0.0.1:2525", "[::1]:25"
  std::string type;  // "inet", "unix", "fifo", "pass", "unix-dgram"
  std::string command;  // e.g. "smtpd"
  std::vector<std::string> args;  // argv after the command, minus -o pairs
  std::vector<std::pair<std::string, std::string>> overrides;  // -o name=value, in order
  std::string file;
  int line = 0;
  /// For inet services: host part ("" = inet_interfaces) and numeric port after resolving
  /// service names through /etc/services-like defaults (smtp=25, submission=587, smtps=465).
  std::string listen_host;
  std::uint16_t listen_port = 0;
};

struct configuration {
  std::filesystem::path config_dir;
  parameters main;
  std::vector<master_service> services;  // inet smtpd services only, in file order
  std::vector<diagnostic> diagnostics;   // warnings (and fatals, if !ok())
  bool ok() const;  // no fatal diagnostics
  /// Where Cyrus SASL's smtpd.conf lives: cyrus_sasl_config_path if set, else <dir>/sasl.
  std::filesystem::path sasl_config_path() const;
};

/// Reads <dir>/main.cf and <dir>/master.cf. Missing master.cf is fatal; missing main.cf is not.
configuration load(const std::filesystem::path& config_dir, host_environment env);

/// Parses main.cf text (continuation lines start with whitespace; # comments).
void parse_main_cf(std::string_view text, const std::string& file, parameters& into,
                   std::vector<diagnostic>& diags);
/// Parses master.cf text into services (all types; callers filter).
std::vector<master_service> parse_master_cf(std::string_view text, const std::string& file,
                                            std::vector<diagnostic>& diags);

/// Cyrus SASL application config ("key: value" lines), e.g. smtpd.conf.
struct sasl_app_config {
  std::map<std::string, std::string, std::less<>> values;  // pwcheck_method, mech_list, ...
  std::string file;
};
std::optional<sasl_app_config> load_sasl_app_config(const std::filesystem::path& file,
                                                    std::vector<diagnostic>& diags);

}  // namespace relaylab::config
