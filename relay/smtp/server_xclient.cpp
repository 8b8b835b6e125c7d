// XCLIENT: an authorized client asks to be treated as another client.
#include "relay/smtp/server_session_impl.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "relay/smtp/base64.hpp"

namespace relaylab::smtp {
namespace {

// Postfix's normalize_mailhost_addr(): "IPv6:" and an IPv6 address or an IPv4 address, as
// valid_mailhost_addr() checks them, parsed as the resolver parses a numeric host (inet_aton,
// so an octet with a leading zero is octal) and printed back; an IPv4-mapped IPv6 address is
// the IPv4 address when inet_protocols has ipv4. nullopt when the address is bad or of a
// protocol that inet_protocols leaves out.
std::optional<std::string> normalize_host_address(std::string_view text, bool ipv4, bool ipv6) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (istarts(text, "IPV6:")) {
    const std::string a(text.substr(5));
    in6_addr b{};
    if (!valid_ipv6(a) || inet_pton(AF_INET6, a.c_str(), &b) != 1) return std::nullopt;
    inet_ntop(AF_INET6, &b, buf, sizeof buf);
    const std::string_view printed(buf);
    if (ipv4 && istarts(printed, "::ffff:")) return std::string(printed.substr(7));
    if (!ipv6) return std::nullopt;
    return std::string(printed);
  }
  const std::string a(text);
  in_addr b{};
  if (!valid_ipv4(a) || inet_aton(a.c_str(), &b) == 0 || !ipv4) return std::nullopt;
  inet_ntop(AF_INET, &b, buf, sizeof buf);
  return std::string(buf);
}

// Postfix's xtext_unquote(): "+XX" with two hex digits of either case, every other byte as it
// is; nullopt for a "+" without two hex digits (XCLIENT then takes the text as it came). The
// value ends at a NUL, as Postfix's C string does.
std::optional<std::string> xtext_unquote(std::string_view s) {
  auto hex = [](char h) -> int {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '+') {
      out += s[i];
      continue;
    }
    const int hi = i + 1 < s.size() ? hex(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out.substr(0, out.find('\0'));
}

// Postfix's printable() with util_utf8_enable (smtputf8_enable = yes): printable ASCII and
// what looks like a UTF-8 sequence stay, any other byte becomes '?'.
void printable(std::string& s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) continue;
    auto cont = [&](std::size_t k) {
      return k < s.size() && static_cast<unsigned char>(s[k]) >= 0x80 &&
             static_cast<unsigned char>(s[k]) < 0xc0;
    };
    if (c >= 194 && c <= 254 && cont(i + 1)) {
      while (cont(i + 1)) ++i;
      continue;
    }
    s[i] = '?';
  }
}

// Postfix's neuter(value, NEUTER_CHARACTERS, '?') for XCLIENT ADDR, DESTADDR and HELO.
void neuter(std::string& s) {
  for (char& c : s)
    if (std::strchr(" <>()\\\";@", c) != nullptr && c != '\0') c = '?';
}

}  // namespace

// --- XCLIENT ------------------------------------------------------------------------------
// Postfix's xclient_cmd(): the attributes take effect one by one as they are read, so when one
// is bad (501) those before it stay in force (diff_fuzz seeds 2236 and 7816: an ADDR outside
// mynetworks, or a LOGIN, before a bad attribute). Only a complete XCLIENT restarts the
// session: then the name the logs show, the XCLIENT authorization and the HELO name follow.
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
  bool got_helo = false;
  bool got_proto = false;
  std::optional<std::string> login;
  auto fail = [&](std::string text) {
    // What was applied stays; the owner sees it with the next command (a LOGIN at once).
    send(std::move(text));
    return false;
  };
  for (std::size_t i = 1; i < argv.size(); ++i) {
    const auto eq = argv[i].find('=');
    if (eq == std::string_view::npos || eq + 1 == argv[i].size())
      return fail("501 5.5.4 Error: attribute=value expected");
    const std::string_view attr = argv[i].substr(0, eq);
    const std::string_view raw = argv[i].substr(eq + 1);
    if (raw.size() > 255) return fail("501 5.5.4 Error: attribute value too long");
    std::string val = xtext_unquote(raw).value_or(std::string(raw));
    printable(val);
    const std::string name = upper(attr);
    const bool unavailable = iequals(val, "[UNAVAILABLE]");
    const bool tempunavail = iequals(val, "[TEMPUNAVAIL]");
    auto bad = [&] { return fail("501 5.5.4 Bad " + name + " syntax: " + val); };
    if (name == "NAME" || name == "REVERSE_NAME") {
      if (!unavailable && !tempunavail && !valid_hostname(val)) return bad();
      if (name == "NAME") cl.name = unavailable || tempunavail ? "unknown" : val;
    } else if (name == "ADDR" || name == "DESTADDR") {
      if (unavailable) {
        if (name == "ADDR") cl.addr = "unknown";
        continue;
      }
      neuter(val);
      auto a = normalize_host_address(val, opt.inet_ipv4, opt.inet_ipv6);
      if (!a) return bad();
      if (name == "ADDR") cl.addr = *a;
    } else if (name == "PORT" || name == "DESTPORT") {
      if (!unavailable && (!all_digits(val) || val.size() > 5)) return bad();
      if (name == "PORT") cl.port = unavailable ? "unknown" : val;
    } else if (name == "HELO") {
      if (unavailable) {
        cl.helo.clear();
      } else {
        if (val.size() > 255) return bad();
        neuter(val);
        cl.helo = val;
      }
      got_helo = true;
    } else if (name == "PROTO") {
      const auto u = upper(val);
      if (u != "SMTP" && u != "ESMTP") return bad();
      cl.protocol = u;
      got_proto = true;
    } else if (name == "LOGIN") {
      if (unavailable) continue;
      login = val;
      authenticated = true;
      h.on_xclient_login(val);
    } else {
      return fail("501 5.5.4 Bad XCLIENT attribute name: " + std::string(attr));
    }
  }
  // Success starts a new session for the new client, with a new greeting.
  reset_transaction();
  if (!got_helo) cl.helo.clear();
  if (!got_proto) cl.protocol = "SMTP";
  // cl.unauth_pipelining stays: Postfix's XCLIENT keeps SMTPD_FLAG_ILL_PIPELINING.
  authenticated = login.has_value();
  h.on_xclient(cl);
  if (login) h.on_xclient_login(*login);
  greeting(h.on_xclient_greeting(cl));
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
