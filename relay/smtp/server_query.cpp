// VRFY and ETRN.
#include "relay/smtp/server_session_impl.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "relay/smtp/base64.hpp"

namespace relaylab::smtp {

bool server_session::impl::vrfy(const std::vector<std::string_view>& argv, const std::string&) {
  if (opt.disable_vrfy_command) {
    send("502 5.5.1 VRFY command is disabled");
    return false;
  }
  std::size_t n = argv.size();
  const bool smtputf8 = n > 1 && !discarded("SMTPUTF8") && iequals(argv[n - 1], "SMTPUTF8");
  if (smtputf8) --n;
  if (n < 2) {
    send("501 5.5.4 Syntax: VRFY address [SMTPUTF8]");
    return false;
  }
  if (refused_event(client_event::rcpt)) return false;
  std::string arg;
  for (std::size_t i = 1; i < n; ++i) {
    if (i > 1) arg += ' ';
    arg += argv[i];
  }
  // The arguments joined by one space are one RFC 822 address list (collapse_args()), so a
  // display name before <address> is fine; a second address is not.
  auto addr = parse_address(arg, false);
  if (!addr || !h.on_address_check(*addr, smtputf8)) {
    send("501 5.1.3 Bad recipient address syntax");
    return false;
  }
  if (auto v = h.on_vrfy(cl, *addr)) return send_result(*v);
  send("252 2.0.0 " + arg);
  return true;
}

bool server_session::impl::etrn(const std::vector<std::string_view>& argv) {
  if (need_helo(false)) return false;
  if (in_mail) {
    send("503 Error: MAIL transaction in progress");
    return false;
  }
  if (argv.size() != 2) {
    send("500 Syntax: ETRN domain");
    return false;
  }
  std::string_view d = argv[1];
  if (!d.empty() && (d[0] == '@' || d[0] == '#')) d.remove_prefix(1);
  // RFC 1985 takes a domain; Postfix also takes an address literal in [].
  const bool literal = d.size() > 2 && d.front() == '[' && d.back() == ']' &&
                       (valid_ipv4(d.substr(1, d.size() - 2)) ||
                        (istarts(d.substr(1), "IPv6:") && valid_ipv6(d.substr(6, d.size() - 7))));
  if (!valid_hostname(d) && !literal) {
    send("501 Error: invalid parameter syntax");
    return false;
  }
  if (auto v = h.on_etrn(cl, d)) return send_result(*v);
  // No flush(8) service: Postfix answers this for every domain not in fast_flush_domains.
  send("459 <" + std::string(d) + ">: service unavailable");
  return false;
}

}  // namespace relaylab::smtp
