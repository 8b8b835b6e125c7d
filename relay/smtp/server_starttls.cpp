// STARTTLS (RFC 3207) as Postfix 3.7.11's smtpd answers it. The handshake itself is the
// transport's (see server_session::tls_wanted); the engine only frames it: the replies, the
// discarding of plaintext that followed the command, and the state reset afterwards.
#include "relay/smtp/server_session_impl.hpp"

namespace relaylab::smtp {

bool server_session::impl::starttls(const std::vector<std::string_view>& argv) {
  if (argv.size() != 1) {
    send("501 5.5.4 Syntax: STARTTLS");
    return false;
  }
  if (tls_on) {
    send("554 5.5.1 Error: TLS already active");
    return false;
  }
  if (!opt.tls_offered || discarded("STARTTLS")) {
    send("502 5.5.1 Error: command not implemented");
    return false;
  }
  send("220 2.0.0 Ready to start TLS");
  // Whatever the client sent after STARTTLS was plaintext the TLS layer must never see as
  // commands (the STARTTLS command injection of CVE-2011-0411): drop it, as Postfix purges its
  // stream before the handshake.
  in.clear();
  in_pos = 0;
  // RFC 3207 section 4.2: forget what was learned before TLS (HELO name, transaction).
  reset_transaction();
  cl.helo.clear();
  m = mode::tls;
  return true;
}

bool server_session::tls_wanted() const noexcept { return impl_->m == impl::mode::tls; }

bool server_session::tls_active() const noexcept { return impl_->tls_on; }

void server_session::tls_started(timestamp now,
                                 std::optional<std::vector<std::string>> sasl_mechanisms) {
  auto& s = *impl_;
  s.now = now;
  s.start_request();
  if (s.m != impl::mode::tls) return;
  s.m = impl::mode::command;
  s.tls_on = true;
  if (sasl_mechanisms) {
    s.opt.sasl_mechanisms = std::move(*sasl_mechanisms);
    if (s.opt.sasl_mechanisms.empty()) s.opt.sasl_auth_enable = false;
  }
  if (s.greeting_due) {
    s.greeting_due = false;
    s.greet();
  }
  s.run();
}

void server_session::tls_failed(timestamp now) {
  auto& s = *impl_;
  s.now = now;
  if (s.m != impl::mode::tls) return;
  s.close("lost connection");
}

}  // namespace relaylab::smtp
