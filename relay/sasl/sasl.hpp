// The only interface to Cyrus SASL (libsasl2). Nothing outside relay/sasl includes <sasl/sasl.h>.
//
// CONTRACT (used by relay/smtpd, relaylab's CLI and tests; change only together):
// - server_library: process-wide sasl_server_init() with an explicit config path (the directory
//   holding smtpd.conf) and app name "smtpd", as Postfix's xsasl_cyrus does.
// - server_session: one per SMTP session (sasl_server_new with service "smtp", the server FQDN
//   and smtpd_sasl_local_domain as user realm, smtpd_sasl_security_options as sasl_security_props).
// - Challenges and responses here are raw bytes; base64 is the SMTP codec's job (decode_base64
//   below gives Postfix's exact failure reasons for bad base64 if the codec wants them).
// - Errors are values, not exceptions.
//
// Process-wide limits (libsasl2's, not ours): sasl_server_init() reads ONE config file
// (<config_path>/<app_name>.conf) per process. server_library::init() therefore succeeds again
// only for the same config_path and app_name while an earlier library is alive (it then shares
// that initialisation); another path or name is an error until every server_library handle is
// gone (sasl_server_done() then runs and a new init may read another file). libsasl2 is not
// thread-safe here: create, start and step sessions from one thread at a time.
//
// Cost per AUTH (PLAIN via sasldb): libsasl2's sasldb plugin opens, reads and closes the
// Berkeley DB file for every property lookup (PLAIN does four: ~35 system calls per AUTH).
// By default `auxprop_plugin: sasldb` (and a config naming no auxprop_plugin, where libsasl2
// asks every plugin it loaded, sasldb among them) is served by relaylab's reader instead (see
// server_config::keep_sasldb_open), which stats the file once per lookup and reopens it only
// when it changed, so users added with saslpasswd2 still take effect at the next AUTH.
// bench/sasl_bench measures both. A session costs one sasl_server_new.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace relaylab::sasl {

namespace detail {
struct server_core;  // the process-wide sasl_server_init, shared by same-config libraries
}

/// smtpd_sasl_security_options, parsed ("noanonymous, noplaintext, ...").
struct security_options {
  bool noanonymous = true;
  bool noplaintext = false;
  bool noactive = false;
  bool nodictionary = false;
  bool mutual_auth = false;
  bool forward_secrecy = false;
  /// Parses a Postfix list (words separated by commas or white space, case-sensitive as in
  /// Postfix); "" gives all false (Postfix then sets no flag at all). On an unknown word returns
  /// nullopt and sets `error` to Postfix's warning text, e.g.
  /// `unknown SASL security options value "bogus" in "bogus"`.
  static std::optional<security_options> parse(std::string_view text, std::string& error);
};

struct server_config {
  std::string config_path;  // directory with smtpd.conf (cyrus_sasl_config_path or <cfg>/sasl)
  std::string app_name = "smtpd";  // smtpd_sasl_path; names <app_name>.conf
  std::string service = "smtp";    // smtpd_sasl_service
  std::string server_fqdn;         // myhostname
  std::string user_realm;          // smtpd_sasl_local_domain ("" = none)
  security_options security;
  /// Largest response (decoded bytes) handed to libsasl2; larger ones fail with SASL_BUFOVER
  /// before libsasl2 sees them. Postfix's smtpd_sasl_response_limit (12288, base64) is the SMTP
  /// layer's job and is stricter.
  std::size_t response_bytes_max = 12288;
  /// Which code reads a sasldb named by `auxprop_plugin: sasldb`. true: relaylab's reader
  /// (sasldb_reader.cpp), which keeps the Berkeley DB open and reopens it when the file
  /// changes. false: Cyrus's own plugin, which opens the file for every property lookup (as
  /// Postfix uses it). Same answers, same log lines; the reader costs ~35 fewer system calls per
  /// AUTH PLAIN. Process-wide like the config file: libraries sharing one initialisation must
  /// agree on it.
  bool keep_sasldb_open = true;
};

struct step_result {
  enum class status { challenge, success, failure };
  status state = status::failure;
  std::string challenge;  // raw bytes to send base64-encoded in a 334 reply
  /// For failure: libsasl2's reason as Postfix logs it, e.g. "authentication failure",
  /// "no mechanism available", "bad protocol / cancel": sasl_errstring(code), with SASL_NOUSER
  /// reported as SASL_BADAUTH (Postfix hides unknown users). Reply/log: see postfix_failure_*.
  std::string reason;
  int sasl_code = 0;  // the SASL_* result code
  /// For failure: Postfix answers 454 4.7.0 instead of 535 5.7.8 (SASL_FAIL, SASL_NOMEM,
  /// SASL_TRYAGAIN, SASL_UNAVAIL, as Postfix 3.7's xsasl_cyrus_server does).
  bool temporary = false;
  /// What libsasl2 logged during this call, formatted as Postfix's smtpd logs it (each a
  /// `warning:` line): "SASL authentication failure: Password verification failed",
  /// "SASL authentication problem: unable to open Berkeley db ...". Control characters are
  /// replaced by '?' as Postfix's logger does. At most log_lines_max lines
  /// of at most log_line_bytes_max bytes each.
  std::vector<std::string> log;
};

inline constexpr std::size_t log_lines_max = 16;
inline constexpr std::size_t log_line_bytes_max = 1000;

/// Postfix's reply to a failed AUTH: "535 5.7.8 Error: authentication failed: <reason>" or, when
/// `r.temporary`, "454 4.7.0 Temporary authentication failure: <reason>".
std::string postfix_failure_reply(const step_result& r);
/// The reason as Postfix logs it: r.reason, or "(reason unavailable)" when empty.
std::string postfix_failure_detail(const step_result& r);
/// Postfix's warning text for a failed AUTH (without the "warning: " prefix):
/// "<client_namaddr>: SASL <mechanism> authentication failed: <detail>, sasl_username=<user>",
/// mechanism and user cut to 100 bytes, user nullopt printed as "(unavailable)" (pass
/// server_session::sasl_username()), control characters as '?'.
std::string postfix_failure_log(std::string_view client_namaddr, std::string_view mechanism,
                                const step_result& r,
                                std::optional<std::string_view> sasl_username);

/// Decodes a client response the way Postfix does (libsasl2's sasl_decode64), so that bad
/// input fails with Postfix's exact reason: "bad protocol / cancel" (SASL_BADPROT) for a bad
/// character, "another step is needed in authentication" (SASL_CONTINUE) for "=" or a length
/// that is not a multiple of 4, "overflowed buffer" past 64 KiB. "" decodes to "".
/// Returns status::success with `out` set, or status::failure (not temporary).
step_result decode_base64(std::string_view text, std::string& out);
/// Encodes for a 334 reply / an AUTH response line (sasl_encode64).
std::string encode_base64(std::string_view bytes);

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
  std::shared_ptr<detail::server_core> core_;
  friend class server_session;
};

class server_session {
 public:
  /// local/remote are "addr;port" as libsasl2 expects: numeric IPv4/IPv6, no brackets (may be
  /// empty; Postfix passes none). Errors: "SASL per-connection server initialization: invalid
  /// parameter supplied" for a malformed address (checked before libsasl2, which leaks on it),
  /// else libsasl2's reason from sasl_server_new or sasl_setprop(SASL_SEC_PROPS).
  static std::unique_ptr<server_session> create(std::shared_ptr<server_library> lib,
                                                std::string_view local_ip_port,
                                                std::string_view remote_ip_port,
                                                std::string& error);
  ~server_session();
  /// Switches to other security options for the rest of the session, on a fresh libsasl2
  /// handle: smtpd_sasl_tls_security_options once TLS is established. Errors as create().
  bool use_security(const security_options& options, std::string& error);
  /// Mechanisms libsasl2 offers under the security options, in its order, e.g. {"PLAIN","LOGIN"}.
  std::vector<std::string> mechanisms() const;
  /// Starts an exchange on a fresh libsasl2 connection (Postfix too never reuses a SASL handle
  /// for a second AUTH). nullopt = no initial response; "" = an empty one. A mechanism that
  /// libsasl2 does not offer fails with "no mechanism available".
  step_result start(std::string_view mechanism, std::optional<std::string_view> initial_response);
  /// Next client response (decoded). Without an exchange in progress: failure SASL_NOTDONE.
  step_result step(std::string_view response);
  /// SASL_USERNAME as libsasl2 reports it (e.g. "smtp-auth@example.com"), raw bytes. Also after
  /// a failure when libsasl2 got that far (Postfix logs it as sasl_username=); "" if unknown.
  std::string username() const;
  /// SASL_USERNAME, nullopt when libsasl2 has none (Postfix: "(unavailable)"); it can be ""
  /// (LOGIN with a blank username), which Postfix logs as "sasl_username=".
  std::optional<std::string> sasl_username() const;
  /// The mechanism of the last start().
  const std::string& mechanism() const noexcept;
  /// Starts over on a fresh libsasl2 connection (after failure or a "*" abort). Call it for every
  /// AUTH command before decoding its initial response, as Postfix makes a new SASL handle
  /// there: a bad-base64 failure then logs sasl_username=(unavailable), not an earlier user.
  /// A handle that no start() or checkpass() has used yet is kept: it is already fresh.
  void reset();

  // --- Addition (bench/, to separate the password store's cost from the mechanism's) ---

  /// Checks a plaintext password with libsasl2's sasl_checkpass on a fresh handle (as start()
  /// uses): the configured pwcheck_method (auxprop: the sasldb plugin's lookups and the
  /// comparison) without any mechanism. Not used by the SMTP path.
  /// Errors: failure with libsasl2's reason ("authentication failure" for a wrong password or
  /// unknown user, as start() reports them); SASL_BADPARAM for a NUL in user or password.
  step_result check_password(std::string_view user, std::string_view password);

 private:
  server_session() = default;
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Creates or replaces a user in a sasldb file through libsasl2's sasldb auxprop plugin, the
/// same store Debian's `saslpasswd2 -f FILE -c -u REALM USER` writes.
/// Errors: message naming the file and libsasl2's reason.
/// Uses the live server_library's initialisation if there is one, else a temporary one.
/// `realm` must not be empty (saslpasswd2 would use the host name; we read no environment).
bool set_sasldb_password(const std::string& sasldb_path, std::string_view user,
                         std::string_view realm, std::string_view password, std::string& error);

// ---------------------------------------------------------------------------------------------
// Client side (the relay's smtp_sasl_auth_enable to a relayhost; relaylab send/load clients).

struct client_config {
  std::string service = "smtp";
  std::string server_fqdn;  // the server's host name (DIGEST-MD5 digest-uri); must not be empty
  std::string username;     // SASL_CB_AUTHNAME
  std::string password;     // SASL_CB_PASS
  /// SASL_CB_USER (authorization identity). Postfix's smtp client passes the username here too,
  /// so its PLAIN response is "user\0user\0pass"; "" sends "\0user\0pass" like mailx.
  std::string authzid;
  /// smtp_sasl_security_options. NOTE Postfix's default for its SMTP client is
  /// "noplaintext, noanonymous", which excludes PLAIN and LOGIN; this default only sets
  /// noanonymous so that PLAIN and LOGIN work without TLS.
  security_options security;
};

struct client_step_result {
  enum class status { response, failure };
  status state = status::failure;
  /// start(): the mechanism libsasl2 chose from the server's list.
  std::string mechanism;
  /// Bytes to send base64-encoded. From start(): nullopt = no initial response ("AUTH MECH"),
  /// "" = empty initial response ("AUTH MECH =").
  std::optional<std::string> response;
  std::string reason;  // failure: sasl_errstring text, e.g. "no mechanism available"
  int sasl_code = 0;
};

/// Process-wide libsasl2 client state (sasl_client_init), shared, made at the first init() and
/// kept until the process exits (sasl_client_done then). Errors: libsasl2's reason.
class client_library {
 public:
  static std::shared_ptr<client_library> init(std::string& error);
  ~client_library();
  client_library(const client_library&) = delete;
  client_library& operator=(const client_library&) = delete;

 private:
  client_library() = default;
};

class client_session {
 public:
  /// Errors: empty server_fqdn, NUL in a credential, libsasl2's reason from sasl_client_new.
  static std::unique_ptr<client_session> create(std::shared_ptr<client_library> lib,
                                                client_config config, std::string& error);
  ~client_session();
  /// Chooses the best mechanism under config.security from the server's EHLO AUTH list
  /// ("PLAIN LOGIN CRAM-MD5", space separated) and produces the initial response if the
  /// mechanism has one. A fresh libsasl2 connection is used for every start().
  client_step_result start(std::string_view server_mechanisms);
  /// Answers a decoded 334 challenge.
  client_step_result step(std::string_view challenge);
  const std::string& mechanism() const noexcept;

 private:
  client_session() = default;
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace relaylab::sasl
