// Postfix main.cf / master.cf and Cyrus SASL smtpd.conf, read into plain values.
//
// CONTRACT (used by relay/policy, relay/smtpd, relay/net, the CLI; change only together):
// - `parameters` holds main.cf settings plus Postfix's built-in defaults for every parameter
//   relaylab supports, and expands $name / ${name} / ${name?x} / ${name:x} lazily on lookup,
//   as Postfix does. Unknown names in main.cf are kept (and warned about), never fatal.
// - `with_overrides` gives the view of one master.cf service (its -o name=value settings).
// - Errors are returned as diagnostics naming file:line and the parameter.
// - Every Postfix parameter is implemented, warned or refused (support.inc); load() applies
//   check_support() so that nothing relaylab does not implement passes silently.
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

struct master_service;

struct diagnostic {
  enum class severity { warning, fatal };
  severity level = severity::warning;
  std::string file;       // path as given
  int line = 0;           // 1-based; 0 when not tied to a line
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

/// Result of expanding a value: `error` is empty on success, else says what is wrong (syntax,
/// nesting deeper than expansion_depth_max, output longer than expansion_bytes_max).
struct expansion {
  std::string value;
  std::string error;
};

/// Postfix value types, as the daemons read them (derived from each built-in default).
enum class value_type { string, boolean, integer, time };

/// Splits a list the way Postfix does (whitespace and commas separate; a `{...}` group, also
/// inside a token as in `inline:{a=b, c=d}`, stays one element with its braces).
std::vector<std::string> split_list(std::string_view text);

/// Parses a Postfix time value ("10", "5m"; units s m h d w) in seconds, using `default_unit`
/// when no unit is given. nullopt on syntax errors, negative values or values above INT_MAX s.
std::optional<long long> parse_time_seconds(std::string_view text, char default_unit);

/// Compares Postfix compatibility levels ("2", "3.6", "3.10.1"): <0, 0, >0.
int compare_compatibility_levels(std::string_view a, std::string_view b);

class parameters;

/// The protocols of inet_protocols ("all", "ipv4", "ipv6", in any case).
struct inet_protocol_set {
  bool ipv4 = false;
  bool ipv6 = false;
};
inet_protocol_set inet_protocols(const parameters& p);

class parameters {
 public:
  static constexpr int expansion_depth_max = 100;  // as Postfix's mac_expand
  static constexpr std::size_t expansion_bytes_max = 1 << 20;
  /// Where a value was set (main.cf or a master.cf -o line).
  struct origin {
    std::string file;
    int line = 0;
  };

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

  /// Forgets an explicit setting (the default applies again).
  void erase(std::string_view name);
  /// Like set(), remembering where the value came from for diagnostics.
  void set(std::string name, std::string value, origin where);
  std::optional<origin> origin_of(std::string_view name) const;
  /// Names set in main.cf or by overrides, sorted.
  std::vector<std::string> set_names() const;
  /// Built-in default (host-dependent ones computed from the environment and the settings).
  std::optional<std::string> default_value(std::string_view name) const;
  /// Expands `text` (errors: see `expansion`).
  expansion expand(std::string_view text) const;
  /// Expanded value of `name` with any error; "" without error for an unknown name.
  expansion expand_parameter(std::string_view name) const;
  /// Bytes; Postfix size values are plain integers ("10240000").
  std::uint64_t get_size(std::string_view name) const;
  /// Registers the service-defined parameters that postconf derives from a master.cf service
  /// (e.g. relay_destination_concurrency_limit for `relay unix ... smtp`).
  void add_service_parameters(std::string_view service, std::string_view command);
  /// Copy with the -o overrides of `service`, remembering their master.cf file:line.
  parameters with_service_overrides(const master_service& service) const;
  /// Type of a known parameter (string for unknown names).
  value_type type_of(std::string_view name) const;
  /// Every built-in parameter name, sorted.
  static const std::vector<std::string>& builtin_names();

 private:
  std::optional<std::string> lookup(std::string_view name) const;
  host_environment env_;
  std::map<std::string, std::string, std::less<>> set_;  // explicitly set values
  std::map<std::string, origin, std::less<>> origins_;
  std::map<std::string, std::string, std::less<>> service_defaults_;  // name -> "$default"
};

struct master_service {
  std::string name;               // "smtp", "submission", "127.0.0.1:2525", "[::1]:25"
  std::string type;               // "inet", "unix", "fifo", "pass", "unix-dgram"
  std::string command;            // e.g. "smtpd"
  std::vector<std::string> args;  // argv after the command, minus -o pairs
  std::vector<std::pair<std::string, std::string>> overrides;  // -o name=value, in order
  std::string file;
  int line = 0;
  /// For inet services: host part ("" = inet_interfaces) and numeric port after resolving
  /// service names through /etc/services-like defaults (smtp=25, submission=587, smtps=465).
  std::string listen_host;
  std::uint16_t listen_port = 0;
  /// Columns 3-7 as written ("-" means the default).
  std::string private_column, unpriv_column, chroot_column, wakeup_column, maxproc_column;
  bool is_private() const;    // default y
  bool unprivileged() const;  // default y
  bool chroot() const;        // default n (Postfix >= 3.0)
};

struct configuration {
  std::filesystem::path config_dir;
  parameters main;
  std::vector<master_service> services;      // inet smtpd services only, in file order
  std::vector<master_service> all_services;  // every master.cf service, in file order
  std::vector<diagnostic> diagnostics;       // warnings (and fatals, if !ok())
  bool ok() const;                           // no fatal diagnostics
  /// Where Cyrus SASL's smtpd.conf lives: cyrus_sasl_config_path if set, else <dir>/sasl.
  std::filesystem::path sasl_config_path() const;
};

/// Reads <dir>/main.cf and <dir>/master.cf. Missing master.cf is fatal; missing main.cf is not.
/// Diagnostics: syntax errors (fatal), type errors from validate() (fatal), and postconf's
/// warnings (unused parameter, undefined parameter, read-only parameter assignment, overriding
/// earlier entry). Files larger than config_file_bytes_max are fatal.
configuration load(const std::filesystem::path& config_dir, host_environment env);
inline constexpr std::uintmax_t config_file_bytes_max = 16u << 20;

/// postconf's "unused parameter" / "undefined parameter" / "read-only parameter assignment"
/// warnings for a main.cf already parsed into `main` and the given master.cf services.
std::vector<diagnostic> check_parameter_names(const parameters& main,
                                              const std::vector<master_service>& services,
                                              const std::string& main_cf_file,
                                              const std::string& master_cf_file);

/// What relaylab does with a Postfix parameter ("Configuration is a promise", DESIGN.md).
enum class support_class {
  implemented,  // read, and behaves as Postfix does
  warned,       // not implemented, changes nothing promised: a non-default value warns
  refused,      // not implemented, would weaken a promise: a non-default value is fatal
};
std::string_view to_string(support_class c);

struct support_entry {
  std::string_view name;
  support_class level;
  std::string_view reason;  // why warned or refused; for implemented, a note or ""
};

/// Every built-in parameter of Postfix 3.7.11 with its class, sorted by name (support.inc).
const std::vector<support_entry>& support_table();
/// Rules for the parameters Postfix derives from master.cf service names
/// (<service>_destination_concurrency_limit, ...): `name` holds the suffix ("_time_limit").
/// `level` applies to every service except those in `implemented_for`.
struct service_support_rule {
  std::string_view suffix;
  support_class level;
  std::string_view reason;
  std::vector<std::string_view> implemented_for;  // services whose value relaylab reads
};
const std::vector<service_support_rule>& service_support_rules();

/// Class of `name`: a built-in from support_table(), or a service-derived name that `p` knows
/// (see parameters::add_service_parameters) by its suffix; nullopt for names Postfix does not
/// know (check_parameter_names warns about those).
std::optional<support_entry> classify(std::string_view name, const parameters& p);

/// True when the value of `name` in `p` is its built-in default: the same list of words, raw
/// or expanded (so "yes"/"Yes", "a, b"/"a b" and "$myhostname"/its value all count).
bool has_default_value(const parameters& p, std::string_view name);

/// Start-up check of every parameter set in `p` (main.cf, or -o when `p` is a service view):
/// a warned parameter with a non-default value gives a warning, a refused one a fatal
/// diagnostic, each with the file:line where it was set. Names set without an origin (by the
/// program itself) and unknown names are skipped.
std::vector<diagnostic> check_support(const parameters& p);

/// check_support() for the -o overrides of one master.cf service, at master.cf's file:line.
/// relaylab honours -o overrides only on inet smtpd services: on any other service an
/// override of an implemented parameter that changes its value is not read, so it is judged
/// by how the parameter is used (logging names warn, anything else is fatal).
std::vector<diagnostic> check_service_support(const parameters& main,
                                              const master_service& service);

/// Parses main.cf text (continuation lines start with whitespace; # comments).
void parse_main_cf(std::string_view text, const std::string& file, parameters& into,
                   std::vector<diagnostic>& diags);
/// Parses master.cf text into services (all types; callers filter).
std::vector<master_service> parse_master_cf(std::string_view text, const std::string& file,
                                            std::vector<diagnostic>& diags);

/// Cyrus SASL application config ("key: value" lines), e.g. smtpd.conf.
struct sasl_app_config {
  /// pwcheck_method, mech_list, ...; a key given twice keeps its first value, as in libsasl2.
  std::map<std::string, std::string, std::less<>> values;
  std::string file;
};
std::optional<sasl_app_config> load_sasl_app_config(const std::filesystem::path& file,
                                                    std::vector<diagnostic>& diags);

}  // namespace relaylab::config
