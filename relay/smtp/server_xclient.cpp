// XCLIENT: an authorized client asks to be treated as another client.
#include "relay/smtp/server_session_impl.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "relay/smtp/base64.hpp"

namespace relaylab::smtp {

// --- XCLIENT ------------------------------------------------------------------------------
bool server_session::impl::xclient(const std::vector<std::string_view>& argv) {
  // Postfix's order: the transaction, the syntax, then the authorization (found by
  // tests/oracle/diff_fuzz.py: an unauthorized XCLIENT inside a transaction gets the 503).
  if (in_mail) {
    send("503 5.5.1 Error: MAIL transaction in progress");
    return false;
  }
  if (argv.size() < 2) {
    send("501 5.5.4 Syntax: XCLIENT attribute=value...");
    return false;
  }
  if (!opt.xclient_authorized) {
    send("550 5.7.0 Error: insufficient authorization");
    return false;
  }
  client_identity next = cl;
  std::optional<std::string> login;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    auto eq = argv[i].find('=');
    if (eq == std::string_view::npos) {
      send("501 5.5.4 Error: attribute=value expected");
      return false;
    }
    const std::string name = upper(argv[i].substr(0, eq));
    auto val = xtext_decode(argv[i].substr(eq + 1));
    if (!val) {
      send("501 5.5.4 Bad " + name + " syntax: " + std::string(argv[i].substr(eq + 1)));
      return false;
    }
    const bool unavailable = *val == "[UNAVAILABLE]";
    const bool tempunavail = *val == "[TEMPUNAVAIL]";
    auto bad = [&] {
      send("501 5.5.4 Bad " + name + " syntax: " + *val);
      return false;
    };
    if (name == "NAME" || name == "REVERSE_NAME") {
      if (unavailable || tempunavail) {
        if (name == "NAME") next.name = "unknown";
      } else if (!valid_hostname(*val)) {
        return bad();
      } else if (name == "NAME") {
        next.name = *val;
      }
    } else if (name == "ADDR" || name == "DESTADDR") {
      if (unavailable) {
        if (name == "ADDR") next.addr = "unknown";
        continue;
      }
      std::string a = *val;
      bool good;
      if (istarts(a, "IPV6:")) {
        a = a.substr(5);
        good = opt.inet_ipv6 && valid_ipv6(a);
      } else {
        good = valid_ipv4(a);
      }
      if (!good) return bad();
      if (name == "ADDR") next.addr = a;
    } else if (name == "PORT" || name == "DESTPORT") {
      if (unavailable) {
        if (name == "PORT") next.port = "unknown";
        continue;
      }
      if (!all_digits(*val) || val->size() > 5 || std::stoul(*val) > 65535) return bad();
      if (name == "PORT") next.port = *val;
    } else if (name == "PROTO") {
      if (unavailable) continue;
      auto u = upper(*val);
      if (u != "SMTP" && u != "ESMTP") return bad();
      next.protocol = u;
    } else if (name == "HELO") {
      if (unavailable) {
        next.helo.clear();
        continue;
      }
      next.helo = *val;
    } else if (name == "LOGIN") {
      if (!unavailable) login = *val;
    } else {
      send("501 5.5.4 Bad XCLIENT attribute name: " + std::string(argv[i].substr(0, eq)));
      return false;
    }
  }
  // Success starts a new session for the new client, with a new greeting.
  reset_transaction();
  next.unauth_pipelining = ill_pipelining;  // Postfix's XCLIENT keeps the flag
  cl = next;
  authenticated = login.has_value();
  ehlo_pipelining = false;
  h.on_xclient(cl);
  if (login) h.on_xclient_login(*login);
  send("220 " + opt.banner);
  return true;
}

// --- XFORWARD ------------------------------------------------------------------------------
// No client is ever authorized: a non-empty smtpd_authorized_xforward_hosts is refused at
// start-up. Postfix's checks, in its order, give the replies a client sees.
bool server_session::impl::xforward(const std::vector<std::string_view>& argv) {
  if (in_mail) {
    send("503 5.5.1 Error: MAIL transaction in progress");
    return false;
  }
  if (argv.size() < 2) {
    send("501 5.5.4 Syntax: XFORWARD attribute=value...");
    return false;
  }
  send("550 5.7.0 Error: insufficient authorization");
  return false;
}

}  // namespace relaylab::smtp
