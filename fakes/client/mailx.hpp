// A mailx (s-nail) compatible sender: `echo body | relaylab send -v -s SUBJECT
// -S smtp=smtp://HOST:PORT -r FROM RCPT...` with .mailrc settings (smtp, smtp-auth,
// smtp-auth-user, smtp-auth-password, hostname), the message built as mailx builds it, AUTH
// PLAIN/LOGIN/CRAM-MD5 through relay/sasl (libsasl2), and mailx's exit status.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it

#include "relay/net/stream.hpp"
#include "relay/tls/tls.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::fakes::client {

/// s-nail's exit status when sending failed (its n_EXIT_SEND).
inline constexpr int mailx_exit_send_failed = 4;

/// mailx variables: `set name=value` lines of a .mailrc, then -S name=value.
struct mailx_settings {
  std::map<std::string, std::string> vars;
  std::string get(const std::string& name, std::string fallback = {}) const;
  /// "name=value" or "name" (a boolean); `unset name` removes.
  void set(std::string_view assignment);
};

/// Reads .mailrc text: `set a=b c='d e' f="g"`, `unset a`, comments (#). Other commands
/// (alias, account ...) are ignored as mailx would not need them to send. Errors: an
/// unterminated quote → false with `error` = "file:line: ...".
bool parse_mailrc(std::string_view text, std::string_view file, mailx_settings& settings,
                  std::string& error);

struct mailx_message_input {
  std::string from;  // -r
  std::vector<std::string> to;
  std::string subject;  // -s
  std::string body;     // standard input
  std::string user_agent = "relaylab-send";
};

/// What mailx takes from the environment; only the CLI makes the real ones.
struct mailx_environment {
  std::chrono::system_clock::time_point now;
  std::string random16;  // 16 random [A-Za-z0-9] characters for the Message-ID
  std::string hostname;  // EHLO name unless `hostname` is set
};

/// The message as mailx sends it: Date (UTC, RFC 5322), From, To, Subject (RFC 2047 B-encoded
/// when 8-bit), Message-ID <hex-time.random16%from>, User-Agent, MIME headers (MIME-Version,
/// Content-Type text/plain; charset=utf-8, Content-Transfer-Encoding 8bit) only for 8-bit
/// text; CRLF line ends.
std::string build_mailx_message(const mailx_message_input& in, const mailx_environment& env);

struct smtp_url {
  std::string host;
  std::uint16_t port = 25;
  bool tls = false;  // smtps://: TLS from the first byte (implicit TLS)
};
/// "smtp://HOST[:PORT]", "submission://HOST[:PORT]" (587), "smtps://HOST[:PORT]" (465,
/// implicit TLS), "HOST[:PORT]", IPv6 as "[::1]".
/// Errors: nullopt with `error` naming the problem.
std::optional<smtp_url> parse_smtp_url(std::string_view url, std::string& error);

struct mailx_result {
  int exit_status = 0;  // 0 sent; mailx_exit_send_failed otherwise
  std::string error;    // mailx-like diagnostic, e.g. "smtp-server: 550 5.1.1 ..."
  /// ssl-verify=warn: what was wrong with the certificate (the send went on).
  std::vector<std::string> warnings;
  /// The session's TLS once the handshake succeeded (STARTTLS or smtps://), else nullopt.
  std::optional<tls::session_info> tls;
};

/// Sends one message. `verbose` (may be null) gets the transcript as mailx -v prints it
/// (">>> " client lines, "<<< " server lines, AUTH secrets hidden). The host must be numeric
/// (or "localhost"): no DNS here. AUTH uses settings smtp-auth (plain|login|cram-md5; "none"
/// or unset = no AUTH), smtp-auth-user, smtp-auth-password through relay/sasl's client.
/// TLS as s-nail: smtp-use-starttls (STARTTLS after EHLO; when the server does not offer it
/// the send fails before AUTH or any mail is sent), an smtps:// URL (implicit TLS),
/// ssl-verify / tls-verify = strict (default: a certificate that does not verify or does not
/// match the URL's host fails the send), warn (goes on, result.warnings says why) or ignore,
/// ssl-ca-file / tls-ca-file (else the system's /etc/ssl/certs).
boost::asio::awaitable<mailx_result> mailx_send(mailx_settings settings,
                                                mailx_message_input message, mailx_environment env,
                                                net::connector& connector, net::runtime& rt,
                                                std::ostream* verbose);

}  // namespace relaylab::fakes::client
