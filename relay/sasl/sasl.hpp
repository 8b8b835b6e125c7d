// The only interface to Cyrus SASL (libsasl2). Nothing outside relay/sasl includes <sasl/sasl.h>.
//
// CONTRACT (used by relay/smtpd, relaylab's CLI and tests; change only together):
// - server_library: process-wide sasl_server_init() with an explicit config path (the directory
//   holding smtpd.conf) and app name "smtpd", as Postfix's xsasl_cyrus does.
// - server_session: one per SMTP session (sasl_server_new with service "smtp", the server FQDN
//   and smtpd_sasl_local_domain as user realm, smtpd_sasl_security_options as sasl_security_props).
// - Challenges and responses here are raw bytes; base64 is the SMTP codec's job.
// - Errors are values, not exceptions.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace relaylab::sasl {

/// smtpd_sasl_security_options, parsed ("noanonymous, noplaintext, ...").
struct security_options {
  bool noanonymous = true;
  bool noplaintext = false;
  bool noactive = false;
  bool nodictionary = false;
  bool mutual_auth = false;
  /// Parses a Postfix list; on an unknown word returns nullopt and sets `error`.
  static std::optional<security_options> parse(std::string_view text, std::string& error);
};

struct server_config {
  std::string config_path;   // directory with smtpd.conf (cyrus_sasl_config_path or <cfg>/sasl)
  std::string app_name = "smtpd";  // smtpd_sasl_path; names <app_name>.conf
  std::string service = "smtp";    // smtpd_sasl_service
  std::string server_fqdn;         // myhostname
  std::string user_realm;          // smtpd_sasl_local_domain ("" = none)
  security_options security;
};

struct step_result {
  enum class status { challenge, success, failure };
  status state = status::failure;
  std::string challenge;  // raw bytes to send base64-encoded in a 334 reply
  /// For failure: libsasl2's reason as Postfix logs it, e.g. "authentication failure",
  /// "no mechanism available", "bad protocol / cancel"; from sasl_errstring/sasl_errdetail.
  std::string reason;
  int sasl_code = 0;  // the SASL_* result code
};

/// Process-wide libsasl2 server state. Create once per process (per config path).
class server_library {
 public:
  /// Errors: a message naming the config path and libsasl2's reason.
  static std::shared_ptr<server_library> init(const server_config& config, std::string& error);
  ~server_library();
  server_library(const server_library&) = delete;
  server_library& operator=(const server_library&) = delete;
  const server_config& config() const noexcept;

 private:
  explicit server_library(server_config config);
  server_config config_;
  friend class server_session;
};

class server_session {
 public:
  /// local/remote are "addr;port" as libsasl2 expects (may be empty).
  static std::unique_ptr<server_session> create(std::shared_ptr<server_library> lib,
                                                std::string_view local_ip_port,
                                                std::string_view remote_ip_port,
                                                std::string& error);
  ~server_session();
  /// Mechanisms libsasl2 offers under the security options, in its order, e.g. {"PLAIN","LOGIN"}.
  std::vector<std::string> mechanisms() const;
  step_result start(std::string_view mechanism, std::optional<std::string_view> initial_response);
  step_result step(std::string_view response);
  /// After success: SASL_USERNAME as libsasl2 reports it (e.g. "smtp-auth@example.com").
  std::string username() const;
  /// The mechanism of the last start().
  const std::string& mechanism() const noexcept;
  /// Starts over (after failure or abort) so the next start() works on this session.
  void reset();

 private:
  server_session() = default;
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Creates or replaces a user in a sasldb file through libsasl2's sasldb auxprop plugin, the
/// same store Debian's `saslpasswd2 -f FILE -c -u REALM USER` writes.
/// Errors: message naming the file and libsasl2's reason.
bool set_sasldb_password(const std::string& sasldb_path, std::string_view user,
                         std::string_view realm, std::string_view password, std::string& error);

}  // namespace relaylab::sasl
