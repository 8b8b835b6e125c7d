// Sans-IO SMTP client protocol engine (the protocol half of Postfix's smtp_proto.c).
//
// Used by relay/delivery (the smtp delivery agent), the load generator and the mailx-like
// client. The session is fed server bytes (`receive`) and time (`advance`) and hands back the
// bytes to send (`output`/`consume_output`), the next deadline, transaction results and, when it
// ends badly, one `client_error`. No sockets, clocks, threads or exceptions.
//
// Flow: greeting → EHLO (HELO when EHLO gets a non-421 error, as Postfix does) → optional AUTH
// through an injected `client_authenticator` → state `ready`. In `ready` the owner starts a
// transaction (MAIL, one RCPT per recipient, DATA; sent in one write when the server offers
// PIPELINING, replies matched in order as RFC 2920 asks), then feeds the content with
// `body()`/`end_body()` while `wants_body()`; the session dot-stuffs it and appends ".".
// The transaction's result (MAIL, per-recipient RCPT, DATA and end-of-data replies, phase
// timestamps) is picked up with `take_result()`; the session is `ready` again for another
// transaction (RSET is sent first when an aborted transaction left state on the server),
// or `quit()`.
//
// Limits: reply lines are cut at reply_line_bytes_max, a reply keeps at most reply_bytes_max of
// text and reply_lines_max lines (more is a protocol error); input held between replies is one
// partial line; output grows by what the owner feeds (body chunks) plus the pipelined commands.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::smtp {

/// Monotonic time from an injected clock (same unit as server_session's timestamp).
using client_timestamp = std::chrono::nanoseconds;

/// One server reply. `text` holds the reply lines as received (with their codes and "-"),
/// joined by "\n", without the final line end, like Postfix's smtp_chat_resp.
struct client_reply {
  int code = 0;     // three-digit code of the first line; 0 when the reply was malformed
  std::string dsn;  // enhanced status from the reply, else "<class>.0.0" ("" for code 0)
  std::string text;
  /// Text with line breaks as spaces (Postfix translit(str, "\n", " ")), for log reasons.
  std::string one_line() const;
};

struct client_options {
  std::string helo_name = "localhost";  // smtp_helo_name
  bool always_send_ehlo = true;         // smtp_always_send_ehlo
  bool never_send_ehlo = false;         // smtp_never_send_ehlo
  bool use_pipelining = true;           // use PIPELINING when offered
  /// Timeouts per phase (Postfix smtp_*_timeout); auth uses helo_timeout.
  std::chrono::milliseconds helo_timeout{300000};  // greeting, EHLO/HELO, AUTH
  std::chrono::milliseconds mail_timeout{300000};
  std::chrono::milliseconds rcpt_timeout{300000};
  std::chrono::milliseconds data_init_timeout{120000};  // DATA → 354
  std::chrono::milliseconds data_xfer_timeout{180000};  // each body write (owner's I/O)
  std::chrono::milliseconds data_done_timeout{600000};  // "." → final reply
  std::chrono::milliseconds rset_timeout{20000};
  std::chrono::milliseconds quit_timeout{300000};
  std::size_t reply_line_bytes_max = 2048;  // longer lines are cut (line_length_limit)
  std::size_t reply_bytes_max = 2048;       // text kept per reply (Postfix: line_length_limit)
  std::size_t reply_lines_max = 1000;
  std::size_t auth_rounds_max = 16;  // 334 challenges per AUTH
  /// AUTH even when EHLO offered no AUTH (s-nail does: the mechanism is its smtp-auth
  /// setting); the authenticator's start() then sees an empty mechanism list. Postfix's smtp
  /// client (the delivery agent) leaves this off.
  bool auth_unoffered = false;
  /// STARTTLS after EHLO: never, when offered (may), or required (the session fails with
  /// client_error::kind::tls when the server does not offer it or refuses it).
  enum class tls_use { none, may, required };
  tls_use starttls = tls_use::none;
};

/// What the server offered in its EHLO reply.
struct ehlo_features {
  bool esmtp = false;  // EHLO succeeded
  std::string server_name;
  bool pipelining = false;
  bool size = false;
  std::uint64_t size_limit = 0;  // 0 = none given
  bool eightbitmime = false;
  bool dsn = false;
  bool smtputf8 = false;
  bool enhancedstatuscodes = false;
  bool chunking = false;
  bool starttls = false;
  bool auth = false;
  std::string auth_mechanisms;  // as offered, space separated: "PLAIN LOGIN"
};

/// One answer of an authenticator (relay/sasl's client_session fits behind it).
struct client_auth_step {
  bool ok = false;        // false: cannot authenticate (reason says why)
  std::string mechanism;  // from start(): the chosen mechanism
  /// Raw bytes to send base64-encoded. From start(): nullopt = no initial response.
  std::optional<std::string> response;
  std::string reason;
};

/// Drives AUTH. start() chooses a mechanism from the server's list; step() answers a decoded
/// 334 challenge.
class client_authenticator {
 public:
  virtual ~client_authenticator() = default;
  virtual client_auth_step start(std::string_view server_mechanisms) = 0;
  virtual client_auth_step step(std::string_view challenge) = 0;
};

/// AUTH PLAIN without libsasl2 (load generator, tests): "authzid\0user\0password".
class plain_authenticator final : public client_authenticator {
 public:
  plain_authenticator(std::string authzid, std::string user, std::string password);
  client_auth_step start(std::string_view server_mechanisms) override;
  client_auth_step step(std::string_view challenge) override;

 private:
  std::string authzid_, user_, password_;
};

/// Where the session is, for logs; named as Postfix's messages name it.
enum class client_stage {
  greeting,  // receiving the initial server greeting
  ehlo,      // performing the EHLO handshake
  helo,      // performing the HELO handshake
  auth,      // performing SASL authentication
  starttls,  // sending STARTTLS / in reply to STARTTLS
  mail,      // sending MAIL FROM / in reply to MAIL FROM command
  rcpt,      // sending RCPT TO / in reply to RCPT TO command
  data,      // sending DATA command / in reply to DATA command
  body,      // sending message body
  dot,       // sending end of data -- message may be sent more than once
  rset,      // sending final RSET
  quit,      // sending QUIT
  idle,      // ready, nothing outstanding
};
/// Postfix's "while ..." words: "receiving the initial server greeting", "performing the EHLO
/// handshake", "sending MAIL FROM", "sending message body", "sending end of data -- message may
/// be sent more than once" ...
std::string_view while_text(client_stage s) noexcept;
/// Postfix's "in reply to ..." words: "MAIL FROM command", "RCPT TO command", "DATA command",
/// "end of DATA command", "EHLO command", "HELO command", "AUTH command", "initial greeting",
/// "final RSET command", "QUIT command".
std::string_view in_reply_to_text(client_stage s) noexcept;

enum class client_state {
  greeting,     // waiting for the greeting
  hello,        // EHLO/HELO outstanding
  auth,         // AUTH exchange in progress
  tls,          // 220 to STARTTLS: the owner runs the handshake, then tls_started()
  ready,        // may start a transaction or quit
  transaction,  // MAIL/RCPT/DATA outstanding
  body,         // wants_body(): feed body()/end_body()
  end_of_data,  // waiting for the final reply
  quitting,     // QUIT sent
  closed,       // QUIT answered (or the server closed after QUIT)
  failed,       // see error()
};

struct client_error {
  enum class kind {
    refused,          // non-2xx greeting, 421 to EHLO, non-2xx HELO: "host X refused to talk to me"
    auth_failed,      // AUTH rejected by the server (reply set) or by the authenticator (detail)
    protocol,         // malformed or unexpected reply, too many lines, bad 334 base64
    timeout,          // a deadline passed (advance())
    lost_connection,  // receive_eof() before the session was done
    tls,              // STARTTLS required but not offered (no reply) or refused (reply set)
  };
  kind what = kind::protocol;
  client_stage stage = client_stage::greeting;
  std::optional<client_reply> reply;
  std::string detail;
};

/// One message to send.
struct client_envelope {
  std::string sender;  // without <>; "" for the null sender
  std::vector<std::string> recipients;
  /// Parameters appended to each RCPT when the server offers DSN ("NOTIFY=NEVER ORCPT=..."),
  /// one per recipient or empty.
  std::vector<std::string> rcpt_dsn_parameters;
  std::uint64_t size = 0;           // SIZE= when offered and non-zero
  bool body_8bit = false;           // BODY=8BITMIME when offered
  bool smtputf8 = false;            // SMTPUTF8 when offered
  std::string mail_dsn_parameters;  // "RET=HDRS ENVID=x" when the server offers DSN
};

struct client_result {
  client_reply mail;
  /// One per recipient in envelope order; code 0 when no reply was read for it (MAIL failed).
  std::vector<client_reply> rcpt;
  std::optional<client_reply> data;         // the DATA reply, if one was read
  std::optional<client_reply> end_of_data;  // the final reply, if the body was sent
  /// Phase timestamps: transaction start, MAIL reply, last RCPT reply, DATA reply, body
  /// handed over completely (end_body), final reply.
  client_timestamp started{}, mail_done{}, rcpt_done{}, data_done{}, body_done{}, finished{};
  std::size_t accepted() const noexcept;  // recipients with a 2xx RCPT reply
  /// True when the message went through (end-of-data 2xx).
  bool delivered() const noexcept { return end_of_data && end_of_data->code / 100 == 2; }
};

class client_session {
 public:
  client_session(client_options options, client_timestamp now);
  ~client_session();
  client_session(const client_session&) = delete;
  client_session& operator=(const client_session&) = delete;

  /// Optional; must outlive the session. AUTH runs after EHLO when set and AUTH is offered.
  void set_authenticator(client_authenticator* a) noexcept;

  /// The handshake after "220" to STARTTLS succeeded: EHLO is sent again (RFC 3207 4.2).
  void tls_started(client_timestamp now);
  /// True once TLS is on.
  bool tls_active() const noexcept;
  /// Server bytes; always consumes all of them. Bytes after the 220 reply to STARTTLS are
  /// discarded (plaintext injected before the handshake, as CVE-2011-0411 on the client side).
  void receive(std::span<const char> bytes, client_timestamp now);
  /// The server closed (or the connection failed): lost_connection unless QUIT was sent.
  void receive_eof(client_timestamp now);
  /// Time passed; fails with timeout once deadline() is reached.
  void advance(client_timestamp now);

  /// Starts a transaction. Returns false (and does nothing) unless state() == ready or
  /// recipients is empty.
  bool start(const client_envelope& envelope, client_timestamp now);
  /// True while the server waits for content (after 354).
  bool wants_body() const noexcept;
  /// Content bytes (lines ending in CRLF or LF; bare LF becomes CRLF), dot-stuffed into
  /// output(). Ignored unless wants_body().
  void body(std::span<const char> content);
  /// Ends the content (adds CRLF if missing) and sends ".".
  void end_body(client_timestamp now);
  /// The finished transaction, once; nullopt while none is waiting.
  std::optional<client_result> take_result();
  /// Sends QUIT (from ready) or gives up the connection (otherwise: state becomes closed).
  void quit(client_timestamp now);

  std::string_view output() const noexcept;
  void consume_output(std::size_t n) noexcept;
  std::optional<client_timestamp> deadline() const noexcept;

  client_state state() const noexcept;
  /// What the session is doing now, for "lost connection with X while <stage>".
  client_stage stage() const noexcept;
  const ehlo_features& features() const noexcept;
  const std::optional<client_reply>& greeting() const noexcept;
  bool authenticated() const noexcept;
  /// Set when state() == failed.
  const std::optional<client_error>& error() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Formats a client_reply from raw lines (for tests and fakes): {"250-a", "250 b"}.
client_reply make_client_reply(const std::vector<std::string>& lines);

}  // namespace relaylab::smtp
