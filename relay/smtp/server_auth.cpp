// AUTH (RFC 4954): the exchange's framing; mechanisms and verdicts are the handler's.
#include "relay/smtp/server_session_impl.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "relay/smtp/base64.hpp"

namespace relaylab::smtp {

// --- AUTH ---------------------------------------------------------------------------------
bool server_session::impl::auth(const std::vector<std::string_view>& argv) {
  // Postfix checks the AUTH rate in front of the command (smtpd_sasl_auth_cmd_wrapper).
  if (refused_event(client_event::auth)) return false;
  if (need_helo(true)) return false;
  if (!sasl_active() || discarded("AUTH")) {
    send("503 5.5.1 Error: authentication not enabled");
    return false;
  }
  if (in_mail) {
    send("503 5.5.1 Error: MAIL transaction in progress");
    return false;
  }
  if (authenticated) {
    send("503 5.5.1 Error: already authenticated");
    return false;
  }
  if (argv.size() < 2 || argv.size() > 3) {
    send("501 5.5.4 Syntax: AUTH mechanism");
    return false;
  }
  auth_mech = upper(argv[1]);
  std::optional<std::string> initial;
  if (argv.size() == 3) {
    std::string err;
    initial = sasl_decode(argv[2], err);
    if (!initial) {
      h.on_auth_decode_error(cl, auth_mech, err);
      send("535 5.7.8 Error: authentication failed: " + err);
      return false;
    }
  }
  std::optional<std::string_view> iv;
  if (initial) iv = *initial;
  return auth_result(h.on_auth_start(cl, auth_mech, iv));
}

bool server_session::impl::auth_result(const auth_step& s) {
  switch (s.state) {
    case auth_step::status::challenge:
      m = mode::auth;
      send("334 " + base64_encode(s.challenge));
      return true;
    case auth_step::status::success:
      m = mode::command;
      authenticated = true;
      return send_result(reply{s.reply});
    case auth_step::status::failure:
      m = mode::command;
      send_result(reply{s.reply});
      return false;
  }
  return false;
}

void server_session::impl::auth_line(const std::string& raw, bool) {
  // Postfix reads the response as a C string: it ends at a NUL (diff_fuzz seeds 32574 and
  // 34012: "\0" is the empty response, not a partial quantum).
  const std::string line = raw.substr(0, raw.find('\0'));
  if (line == "*") {
    m = mode::command;
    h.on_auth_abort();
    h.on_auth_cancelled(cl, auth_mech);
    send("501 5.7.0 Authentication aborted");
    finish_command(c_auth, false);
    return;
  }
  std::string err;
  auto d = sasl_decode(line, err);
  bool good;
  if (!d) {
    m = mode::command;
    h.on_auth_abort();
    h.on_auth_decode_error(cl, auth_mech, err);
    send("535 5.7.8 Error: authentication failed: " + err);
    good = false;
  } else {
    good = auth_result(h.on_auth_continue(cl, *d));
  }
  if (m != mode::auth) finish_command(c_auth, good);
}

}  // namespace relaylab::smtp
