// Sans-IO SMTP server protocol engine (Postfix smtpd.c's protocol half).
//
// CONTRACT (shared by relay/smtp, relay/smtpd and relay/net; change only together):
// - The session is fed bytes (`receive`) and time (`advance`), and hands back bytes to write
//   (`output`/`consume_output`), the next deadline, and whether the connection should close.
// - It owns syntax, command sequencing, line limits, DATA framing and dot-unstuffing, error and
//   junk counting, timeouts, PIPELINING/SIZE/8BITMIME/ENHANCEDSTATUSCODES, AUTH framing (base64,
//   "*" abort, "=" empty response) and XCLIENT syntax.
// - Every semantic decision (policy, SASL, queueing) is asked of a `server_handler`. Handler
//   calls are synchronous except end-of-data: `on_message_end` starts the commit and the owner
//   later calls `finish_message` with the reply; until then the session reads no further
//   commands (pipelined input stays buffered).
// - No sockets, clocks, threads or exceptions on the data path.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::smtp {

/// Monotonic time from an injected clock (real or simulated); only differences matter.
using timestamp = std::chrono::nanoseconds;

/// One complete reply as sent on the wire, without the final CRLF. Multi-line replies are joined
/// with "\r\n" and use "250-" continuation prefixes, e.g. "250 2.1.0 Ok".
struct reply {
  std::string text;
  /// The three-digit code of the first line, 0 if malformed.
  int code() const noexcept;
};

/// Settings the protocol engine needs; relay/smtpd fills them from the Postfix parameters of
/// the same names.
struct server_options {
  std::string myhostname = "localhost";              // myhostname
  std::string banner = "localhost ESMTP";            // smtpd_banner, already $-expanded
  std::uint64_t message_size_limit = 10240000;       // message_size_limit; 0 = unlimited
  std::size_t line_length_limit = 2048;              // line_length_limit
  std::size_t recipient_limit = 1000;                // smtpd_recipient_limit
  bool disable_vrfy_command = false;                 // disable_vrfy_command
  bool helo_required = false;                        // smtpd_helo_required
  int soft_error_limit = 10;                         // smtpd_soft_error_limit
  int hard_error_limit = 20;                         // smtpd_hard_error_limit
  int junk_command_limit = 100;                      // smtpd_junk_command_limit
  std::chrono::milliseconds error_sleep_time{1000};  // smtpd_error_sleep_time
  std::chrono::milliseconds timeout{300000};         // smtpd_timeout
  /// smtpd_per_request_deadline: `timeout` bounds a whole request (a command line, DATA content,
  /// a BDAT chunk), not each read; during DATA and BDAT each byte read adds 1/min_data_rate s
  /// to the budget, which never grows past `timeout` (Postfix's vstream deadline).
  bool per_request_deadline = false;
  std::uint32_t min_data_rate = 500;               // smtpd_min_data_rate (bytes/s, at least 1)
  bool sasl_auth_enable = false;                   // smtpd_sasl_auth_enable
  bool broken_sasl_auth_clients = false;           // broken_sasl_auth_clients: also "AUTH=..."
  std::vector<std::string> sasl_mechanisms;        // as advertised after EHLO "AUTH"
  bool xclient_authorized = false;                 // client in smtpd_authorized_xclient_hosts
  std::vector<std::string> discard_ehlo_keywords;  // smtpd_discard_ehlo_keywords
  bool forbid_bare_newline = false;                // smtpd_forbid_bare_newline
  // STARTTLS (RFC 3207); relay/tls's server_settings decide these.
  bool tls_offered = false;      // smtpd_tls_security_level may/encrypt: EHLO offers STARTTLS
  bool tls_required = false;     // encrypt: "530 5.7.0 Must issue a STARTTLS command first"
  bool tls_auth_only = false;    // smtpd_tls_auth_only: no AUTH offered or accepted before TLS
  bool tls_wrappermode = false;  // smtpd_tls_wrappermode: TLS before the greeting
  // Additions by relay/smtp (defaults are Postfix 3.7.11's):
  /// smtpd_forbid_bare_newline=reject: a line ending in bare LF gets
  /// "<code> 5.5.2 <myhostname> Error: bare <LF> received" and the session closes.
  bool forbid_bare_newline_reject = false;
  int forbid_bare_newline_reject_code = 550;  // smtpd_forbid_bare_newline_reject_code
  /// inet_protocols includes ipv4 / ipv6 (XCLIENT ADDR of that protocol is accepted).
  bool inet_ipv4 = true;
  bool inet_ipv6 = true;
  std::size_t recipient_overshoot_limit = 1000;  // smtpd_recipient_overshoot_limit
  /// smtpd_forbidden_commands (the default's regexp part, /^[^A-Z]/, is forbid_nonalpha_commands).
  std::vector<std::string> forbidden_commands{"CONNECT", "GET", "POST"};
  bool forbid_nonalpha_commands = true;
  /// smtpd_forbid_unauth_pipelining: input waiting before the greeting, or behind a command
  /// read before EHLO or one that must end a pipelined group (HELO, EHLO, DATA, VRFY, NOOP),
  /// gets "554 5.5.0 Error: SMTP protocol synchronization" and the session ends.
  bool forbid_unauth_pipelining = false;
  /// Memory bounds: input is not parsed further while output() holds this much, and
  /// want_input() turns false once this much input is buffered.
  std::size_t output_bytes_max = 64 * 1024;
  std::size_t input_bytes_max = 256 * 1024;
};

/// The client as the session currently sees it (XCLIENT may replace it).
struct client_identity {
  std::string name = "unknown";  // verified reverse name, or "unknown"
  std::string addr;              // textual IP address, no brackets
  std::string port;
  std::string helo;               // HELO/EHLO argument, empty before HELO
  std::string protocol = "SMTP";  // "SMTP" or "ESMTP" (Postfix's proto=)
  /// Postfix's SMTPD_FLAG_ILL_PIPELINING, what reject_unauth_pipelining tests: the client
  /// talked before the greeting, or sent more behind a command before EHLO or behind HELO,
  /// EHLO, DATA, VRFY or NOOP. Set once, for the rest of the connection (XCLIENT keeps it).
  bool unauth_pipelining = false;
};

struct mail_command {
  std::string sender;                   // address without <>, "" for the null sender
  std::optional<std::uint64_t> size;    // SIZE=
  std::string body;                     // BODY= value upper-cased, "" if absent
  std::vector<std::string> parameters;  // all ESMTP parameters as given
};

struct rcpt_command {
  std::string recipient;  // address without <>
  std::vector<std::string> parameters;
};

/// Result of one SASL exchange step, produced by the handler from relay/sasl.
struct auth_step {
  enum class status { challenge, success, failure };
  status state = status::failure;
  std::string challenge;  // raw (not base64) server challenge, for status::challenge
  std::string reply;  // full reply for success/failure, e.g. "235 2.7.0 Authentication successful"
};

/// Decision for a command: nullopt means "proceed as normal" (the engine sends its usual reply).
using verdict = std::optional<reply>;

/// The per-client events Postfix's smtpd counts with anvil(8) and checks against its rate
/// limits: MAIL (smtpd_client_message_rate_limit), RCPT and VRFY
/// (smtpd_client_recipient_rate_limit), AUTH (smtpd_client_auth_rate_limit).
enum class client_event { mail, rcpt, auth };

/// What the relay application (relay/smtpd) answers for the engine.
/// How much pending input Postfix shows in its improper-pipelining line (smtpd.c: the first 100
/// bytes it has buffered).
inline constexpr std::size_t improper_pipelining_shown_max = 100;

class server_handler {
 public:
  virtual ~server_handler() = default;
  /// Before the greeting. A reply here replaces the 220 greeting (e.g. "554 5.7.1 ..." or
  /// "421 4.3.2 Service currently unavailable").
  virtual verdict on_connect(const client_identity& client) = 0;
  virtual verdict on_helo(const client_identity& client) = 0;
  virtual verdict on_mail(const client_identity& client, const mail_command& mail) = 0;
  virtual verdict on_rcpt(const client_identity& client, const rcpt_command& rcpt) = 0;
  /// DATA accepted syntactically; smtpd_data_restrictions decide.
  virtual verdict on_data(const client_identity& client) = 0;
  /// Message content, already dot-unstuffed, lines ending in CRLF; called zero or more times.
  virtual void on_body(std::span<const char> chunk) = 0;
  /// End of DATA seen; `size_exceeded` says message_size_limit was passed (content was dropped).
  /// The owner must call server_session::finish_message() with the final reply, now or later.
  virtual void on_message_end(const client_identity& client, bool size_exceeded) = 0;
  /// RSET, a new HELO/EHLO, XCLIENT or end of a transaction: forget the current envelope.
  virtual void on_reset() = 0;
  /// AUTH MECH [initial-response]; `initial` is decoded ("=" gives an empty string).
  virtual auth_step on_auth_start(const client_identity& client, std::string_view mechanism,
                                  std::optional<std::string_view> initial) = 0;
  /// The client's decoded answer to a 334 challenge.
  virtual auth_step on_auth_continue(const client_identity& client, std::string_view response) = 0;
  /// The client sent "*" (or the session ended) during an exchange.
  virtual void on_auth_abort() = 0;
  /// The engine failed an AUTH exchange itself because a response was not valid base64
  /// (`reason` is libsasl2's text Postfix replies with, e.g. "bad protocol / cancel").
  virtual void on_auth_decode_error(const client_identity& client, std::string_view mechanism,
                                    std::string_view reason) {
    (void)client;
    (void)mechanism;
    (void)reason;
  }
  /// The client cancelled an exchange with "*" (Postfix logs "authentication aborted").
  virtual void on_auth_cancelled(const client_identity& client, std::string_view mechanism) {
    (void)client;
    (void)mechanism;
  }
  virtual verdict on_vrfy(const client_identity& client, std::string_view address) = 0;
  /// A MAIL, RCPT, VRFY or AUTH command passed its first syntax check (Postfix's place for the
  /// anvil rate check: after "MAIL FROM:"/"RCPT TO:" and VRFY's argument count, before the
  /// address is parsed; AUTH before anything else). A reply refuses the command.
  virtual verdict on_client_event(client_event event) {
    (void)event;
    return std::nullopt;
  }
  /// The last step of extract_addr() for MAIL, RCPT and VRFY (smtpd_check_addr()): false when a
  /// non-empty address (internal form) does not resolve, or has a non-ASCII domain without
  /// SMTPUTF8; the command then gets the syntax error. Default: every address is fine.
  virtual bool on_address_check(std::string_view address, bool smtputf8) {
    (void)address;
    (void)smtputf8;
    return true;
  }
  /// ETRN with a valid domain (or address literal), before the flush request: Postfix's
  /// smtpd_check_etrn(). nullopt lets the engine answer as Postfix without a flush service.
  virtual verdict on_etrn(const client_identity& client, std::string_view domain) {
    (void)client;
    (void)domain;
    return std::nullopt;
  }
  /// XCLIENT changed the client identity; policy state derived from the old one is stale.
  virtual void on_xclient(const client_identity& client) = 0;
  /// After on_xclient: XCLIENT LOGIN=user made the session authenticated as `user`, as a SASL
  /// login would (Postfix's smtpd_sasl_auth_extern() with method "XCLIENT").
  virtual void on_xclient_login(std::string_view user) { (void)user; }
  /// After a successful XCLIENT Postfix goes back to its greeting stage, so with
  /// smtpd_delay_reject = no the client restrictions judge the new identity there: a verdict
  /// replaces the new 220 greeting, as on_connect's replaces the first (no anvil event: this
  /// is not a new connection).
  virtual verdict on_xclient_greeting(const client_identity& client) {
    (void)client;
    return std::nullopt;
  }
  /// Input was waiting where Postfix flags improper pipelining (see
  /// client_identity::unauth_pipelining); `where` is "CONNECT" or the command's name, `pending`
  /// the first improper_pipelining_shown_max waiting bytes. For Postfix's "improper command
  /// pipelining after WHERE from name[addr]: ..." line.
  virtual void on_improper_pipelining(const client_identity& client, std::string_view where,
                                      std::string_view pending) {
    (void)client;
    (void)where;
    (void)pending;
  }
  /// The session is over (QUIT, error limit, timeout, lost connection). For the disconnect log;
  /// `reason` is what Postfix logs before " after CMD from ...", "" when it logs nothing.
  virtual void on_disconnect(const client_identity& client, std::string_view reason) = 0;
};

class server_session {
 public:
  server_session(server_options options, server_handler& handler, client_identity client,
                 timestamp now);
  ~server_session();
  server_session(const server_session&) = delete;
  server_session& operator=(const server_session&) = delete;

  /// Queues the greeting (asks handler.on_connect first). Call once, before receive().
  /// `waiting_input`: what the client had already sent when the greeting was due, peeked, not
  /// consumed (the transport still feeds it to receive() afterwards). Postfix's pre-greeting
  /// check: unless in wrapper mode, such input is logged and flags improper pipelining, and
  /// with forbid_unauth_pipelining it gets "554 5.5.0 Error: SMTP protocol synchronization"
  /// instead of the greeting (before the connect checks: no anvil event, no restrictions).
  void start(timestamp now, std::string_view waiting_input = {});
  /// Feeds received bytes. Always consumes all of them (buffering what it cannot act on yet).
  void receive(std::span<const char> bytes, timestamp now);
  /// The peer closed its side (EOF) or the connection failed.
  void receive_eof(timestamp now);
  /// Time has passed; fires timeouts and releases replies delayed by error_sleep_time.
  void advance(timestamp now);
  /// Completes a pending end-of-data (see server_handler::on_message_end).
  void finish_message(reply r, timestamp now);

  /// Bytes to send now. Stable until consume_output() or the next call that produces output.
  std::string_view output() const noexcept;
  void consume_output(std::size_t n) noexcept;
  /// When advance() must next be called, if at all.
  std::optional<timestamp> deadline() const noexcept;
  /// True once the session wants the connection closed after output() has been flushed.
  bool closing() const noexcept;

  const client_identity& client() const noexcept;
  /// The time of the call being processed (start, receive, advance ...): handlers that need
  /// the clock (anvil's rate windows) read it here.
  timestamp now() const noexcept;
  /// Commands seen, for Postfix's disconnect line "ehlo=1 mail=1 rcpt=0/1 data=0/1 quit=1
  /// commands=3/5" (accepted/total per command).
  std::string command_counts() const;
  /// Name of the last command (for "timeout after DATA from ..." / "lost connection after").
  std::string_view last_command() const noexcept;
  /// False while the session holds input_bytes_max or more unparsed bytes (pipelined input
  /// behind a pending commit, an error-sleep delay or unsent output); the owner should stop
  /// reading from the socket until it turns true again. receive() still accepts everything.
  bool want_input() const noexcept;
  /// True once AUTH succeeded in this session (XCLIENT LOGIN= sets it, XCLIENT clears it).
  bool authenticated() const noexcept;
  /// During on_message_end of a BDAT transaction: the message's byte count, which Postfix
  /// puts in its reply ("250 2.0.0 Ok: 8 bytes queued as ..."); nullopt for DATA.
  std::optional<std::uint64_t> bdat_bytes() const noexcept;
  /// TLS: true while the session waits for the transport to run the TLS handshake (after the
  /// "220 2.0.0 Ready to start TLS" reply, or from start() in wrapper mode). The owner flushes
  /// output(), runs the handshake and calls tls_started() or tls_failed(); input is not taken
  /// meanwhile (plaintext pipelined after STARTTLS was already discarded, CVE-2011-0411).
  bool tls_wanted() const noexcept;
  /// The handshake succeeded. `sasl_mechanisms` replaces the AUTH list when given (SASL
  /// security options may differ under TLS). In wrapper mode this sends the greeting.
  void tls_started(timestamp now,
                   std::optional<std::vector<std::string>> sasl_mechanisms = std::nullopt);
  /// The handshake failed: the session ends ("lost connection after STARTTLS").
  void tls_failed(timestamp now);
  /// TLS is on for this connection.
  bool tls_active() const noexcept;
  /// XCLIENT authorization follows the client address: Postfix re-evaluates
  /// smtpd_authorized_xclient_hosts for the address XCLIENT set, so call this from on_xclient.
  void set_xclient_authorized(bool yes) noexcept;
  /// smtpd_forbid_bare_newline for this client: Postfix re-evaluates the exclusions for the
  /// client XCLIENT installed, so the owner calls this at connect time and from on_xclient.
  /// `normalize`: only <CR><LF>.<CR><LF> ends DATA; `reject`: also refuse any bare <LF>.
  void set_bare_newline_rules(bool normalize, bool reject) noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace relaylab::smtp
