// The server session's state and command handlers, shared by its implementation files:
// server_session.cpp (public API, output, input loop, dispatch, HELO/EHLO, RSET, error limits),
// server_envelope.cpp (MAIL, RCPT), server_data.cpp (DATA, BDAT: framing and dot-unstuffing),
// server_query.cpp (VRFY, ETRN), server_auth.cpp (AUTH), server_xclient.cpp (XCLIENT) and
// server_starttls.cpp (STARTTLS).
// Private to relay/smtp.
#pragma once

#include "relay/smtp/server_session.hpp"
#include "relay/smtp/syntax.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::smtp {
namespace detail {

// Postfix's command table order, which is also the order of the disconnect statistics.
enum cmd_id : int {
  c_helo,
  c_ehlo,
  c_xclient,
  c_xforward,
  c_starttls,
  c_auth,
  c_mail,
  c_rcpt,
  c_data,
  c_bdat,
  c_rset,
  c_noop,
  c_vrfy,
  c_etrn,
  c_quit,
  c_unknown,
  c_count
};
constexpr std::array<const char*, c_count> cmd_names = {
    "helo", "ehlo", "xclient", "xforward", "starttls", "auth", "mail", "rcpt",
    "data", "bdat", "rset",    "noop",     "vrfy",     "etrn", "quit", "unknown"};
constexpr std::array<const char*, c_count> cmd_upper = {
    "HELO", "EHLO", "XCLIENT", "XFORWARD", "STARTTLS", "AUTH", "MAIL", "RCPT",
    "DATA", "BDAT", "RSET",    "NOOP",     "VRFY",     "ETRN", "QUIT", "UNKNOWN"};

constexpr std::string_view xclient_attrs =
    "NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT";

}  // namespace detail

// Private header: the implementation files use the syntax helpers and command ids unqualified.
using namespace detail;
using namespace syntax;

struct server_session::impl {
  enum class mode { command, data, bdat, auth, commit, tls, closed };

  server_options opt;
  server_handler& h;
  client_identity cl;

  std::string in;  // unparsed input starting at in_pos
  std::size_t in_pos = 0;
  std::string out;   // replies ready to send
  std::string held;  // reply held back by error_sleep_time
  std::optional<timestamp> held_until;
  timestamp now{};
  timestamp idle_since{};
  // per_request_deadline: what is left of the request's budget, as of limit_at.
  timestamp time_limit{};
  timestamp limit_at{};
  bool started = false;
  bool tls_on = false;         // the TLS handshake completed
  bool greeting_due = false;   // wrapper mode: greet once TLS is up
  bool access_denied = false;  // greeting was a rejection; see command()
  std::string
      access_denied_namaddr;  // "name[addr]" as at connect time (Postfix uses the real client)
  bool close_after_held = false;
  mode m = mode::command;

  // Session state.
  int error_count = 0;
  int junk_cmds = 0;
  bool authenticated = false;
  bool in_mail = false;
  bool smtputf8_mail = false;  // MAIL FROM had SMTPUTF8 (for the RCPT addresses' check)
  std::uint64_t msg_size = 0;  // SIZE= value; survives a rejected MAIL as in Postfix
  std::size_t rcpt_count = 0;
  std::size_t rcpt_overshoot = 0;
  bool bdat_started = false;
  bool bdat_rejected = false;  // data restrictions rejected this transaction's BDAT
  bool bdat_failed = false;    // a BDAT of this transaction failed: skip the rest
  bool bdat_last = false;
  bool bdat_discard = false;  // skip the chunk, then send bdat_error
  std::string bdat_error;
  std::uint64_t bdat_left = 0;
  std::uint64_t bdat_total = 0;
  std::uint64_t chunk_size = 0;
  std::uint64_t body_bytes = 0;
  bool size_exceeded = false;
  int cur_cmd = c_unknown;
  std::string last_cmd = "CONNECT";
  std::array<int, c_count> total{};
  std::array<int, c_count> ok{};

  // DATA scanner state.
  bool at_line_start = true;
  bool prev_crlf = true;         // the previous DATA line ended in CRLF (or it's the first)
  bool pending_cr = false;       // last byte given to on_body was a '\r' of an unfinished line
  bool content_bare_lf = false;  // reject mode: a content line ended in bare <LF>
  std::string auth_mech;

  impl(server_options o, server_handler& hh, client_identity c, timestamp t)
      : opt(std::move(o)), h(hh), cl(std::move(c)), now(t), idle_since(t) {}

  /// A new request (command, DATA content, BDAT chunk) starts with the whole smtpd_timeout.
  void start_request() {
    idle_since = now;
    time_limit = std::chrono::duration_cast<timestamp>(opt.timeout);
    limit_at = now;
  }
  /// The server waited (error_sleep_time): only time spent reading counts against a deadline.
  void pause_request_clock() {
    idle_since = now;
    limit_at = now;
  }
  /// `n` bytes were read at `now`: charge the wait, and in DATA/BDAT earn n/min_data_rate.
  void charge_read(std::size_t n) {
    idle_since = now;
    if (!opt.per_request_deadline) return;
    time_limit -= now - limit_at;
    limit_at = now;
    if ((m == mode::data || m == mode::bdat) && opt.min_data_rate > 0) {
      time_limit += std::chrono::duration_cast<timestamp>(
          std::chrono::duration<double>(static_cast<double>(n) / opt.min_data_rate));
      time_limit = std::min(time_limit, std::chrono::duration_cast<timestamp>(opt.timeout));
    }
  }
  timestamp request_deadline() const {
    if (opt.per_request_deadline) return limit_at + time_limit;
    return idle_since + std::chrono::duration_cast<timestamp>(opt.timeout);
  }

  bool discarded(std::string_view kw) const {
    for (const auto& d : opt.discard_ehlo_keywords)
      if (iequals(d, kw)) return true;
    return false;
  }

  // --- output -------------------------------------------------------------------------------
  void send(std::string text);
  static void strip_enhanced(std::string& text);
  // Sends a handler or engine reply and reports whether it was a success (2xx/3xx).
  bool send_result(const reply& r) {
    send(r.text);
    const int code = r.code();
    return code >= 200 && code < 400;
  }
  void close(std::string_view reason);

  // --- input --------------------------------------------------------------------------------
  std::string_view pending() const { return std::string_view(in).substr(in_pos); }
  void compact();
  bool blocked() const {
    return m == mode::closed || m == mode::commit || m == mode::tls || held_until.has_value() ||
           out.size() >= opt.output_bytes_max;
  }

  void run();

  // Reads one line as Postfix's smtp_get() with line_length_limit: the line ends at LF, a CR
  // before the LF is dropped, bytes past the limit are skipped.
  bool next_line();

  // --- commands -----------------------------------------------------------------------------
  void finish_command(int id, bool success);
  void after_command(int id);
  void check_hard_limit();
  void close_now(std::string_view reason);

  void command(const std::string& line, bool bare_lf, bool more_input);

  bool forbidden(std::string_view word) const;
  static bool ends_group(int id);
  /// Sets Postfix's SMTPD_FLAG_ILL_PIPELINING for the input `waiting` behind `where` (a
  /// command name or "CONNECT") and tells the handler; true when smtpd_forbid_unauth_pipelining
  /// then ended the session.
  bool flag_ill_pipelining(std::string_view where, std::string_view waiting);

  void reset_transaction();

  std::string ehlo_reply() const;

  std::string joined(const std::vector<std::string_view>& argv, std::size_t from) const {
    std::string r;
    for (std::size_t i = from; i < argv.size(); ++i) {
      if (i > from) r += ' ';
      r += argv[i];
    }
    return r;
  }

  bool helo(const std::vector<std::string_view>& argv, bool ehlo);

  bool need_helo(bool enhanced);

  // The greeting (or the connect-time rejection), after on_connect.
  void greet();
  /// The greeting, or `refusal` in its place (then access denied, or closed on 421/521).
  void greeting(const verdict& refusal);
  /// Asks the handler about a MAIL/RCPT/VRFY/AUTH rate event; sends its refusal, if any.
  bool refused_event(client_event e);

  // --- STARTTLS -----------------------------------------------------------------------------
  bool starttls(const std::vector<std::string_view>& argv);
  // AUTH is available now (enabled, and not held back until TLS by smtpd_tls_auth_only).
  bool sasl_active() const { return opt.sasl_auth_enable && (!opt.tls_auth_only || tls_on); }

  // Postfix's check of "MAIL FROM:<addr> params": argv[1] is the keyword with its colon (the
  // tokenizer ends it there), argv[2] the path and the rest parameters.
  static bool split_path(const std::vector<std::string_view>& argv, std::string_view keyword) {
    return argv.size() >= 3 && iequals(argv[1], keyword);
  }

  bool mail(const std::vector<std::string_view>& argv);

  bool rcpt(const std::vector<std::string_view>& argv);

  bool data(const std::vector<std::string_view>& argv);

  bool bdat(const std::vector<std::string_view>& argv);

  // Reads the bytes of a BDAT chunk; they are content as is (no dot-stuffing, no CRLF rules).
  void scan_bdat();

  void body(const char* p, std::size_t n);

  // The DATA hot path: memchr for LF, hand whole runs of ordinary CRLF lines to on_body in one
  // call, and copy nothing. Only dot lines and bare-LF lines break a run.
  void scan_data();

  void end_of_data();

  bool rset(const std::vector<std::string_view>& argv);

  bool vrfy(const std::vector<std::string_view>& argv, const std::string&);

  bool etrn(const std::vector<std::string_view>& argv);

  // --- AUTH ---------------------------------------------------------------------------------
  bool auth(const std::vector<std::string_view>& argv);

  bool auth_result(const auth_step& s);

  void auth_line(const std::string& line, bool);

  // --- XCLIENT ------------------------------------------------------------------------------
  bool xclient(const std::vector<std::string_view>& argv);
  bool xforward(const std::vector<std::string_view>& argv);
};

}  // namespace relaylab::smtp
