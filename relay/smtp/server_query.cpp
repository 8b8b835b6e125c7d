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
  if (argv.size() < 2) {
    send("501 5.5.4 Syntax: VRFY address [SMTPUTF8]");
    return false;
  }
  std::size_t n = argv.size();
  if (n > 2 && iequals(argv[n - 1], "SMTPUTF8")) --n;
  std::string arg;
  for (std::size_t i = 1; i < n; ++i) {
    if (i > 1) arg += ' ';
    arg += argv[i];
  }
  auto addr = parse_address(arg, false);
  if (!addr) {
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
  if (!valid_hostname(d)) {
    send("501 Error: invalid parameter syntax");
    return false;
  }
  // No flush(8) service: Postfix answers this for every domain not in fast_flush_domains.
  send("459 <" + std::string(d) + ">: service unavailable");
  return false;
}

}  // namespace relaylab::smtp
