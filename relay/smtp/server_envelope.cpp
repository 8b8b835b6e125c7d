// Postfix smtpd's MAIL and RCPT commands: path syntax, ESMTP parameters, the handler's verdict.
#include "relay/smtp/server_session_impl.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "relay/smtp/base64.hpp"

namespace relaylab::smtp {

void server_session::impl::reset_transaction() {
  const bool had = in_mail;
  in_mail = false;
  smtputf8_mail = false;
  msg_size = 0;
  rcpt_count = 0;
  rcpt_overshoot = 0;
  bdat_started = bdat_rejected = bdat_failed = false;
  bdat_total = 0;
  body_bytes = 0;
  size_exceeded = false;
  (void)had;
  h.on_reset();
}

bool server_session::impl::mail(const std::vector<std::string_view>& argv) {
  if (need_helo(true)) return false;
  if (in_mail) {
    send("503 5.5.1 Error: nested MAIL command");
    return false;
  }
  if (!split_path(argv, "FROM:")) {
    send("501 5.5.4 Syntax: MAIL FROM:<address>");
    return false;
  }
  if (refused_event(client_event::mail)) return false;
  const std::size_t first = 3;
  // SMTPUTF8 among the parameters decides whether a non-ASCII domain is acceptable.
  const bool smtputf8 = !discarded("SMTPUTF8") &&
                        std::any_of(argv.begin() + 3, argv.end(),
                                    [](std::string_view p) { return iequals(p, "SMTPUTF8"); });
  std::optional<std::string> addr;
  if (!token_unterminated(argv[2])) addr = parse_address(argv[2], true);
  if (!addr || (!addr->empty() && !h.on_address_check(*addr, smtputf8))) {
    send("501 5.1.7 Bad sender address syntax");
    return false;
  }
  mail_command mc;
  mc.sender = *addr;
  bool have_ret = false, have_envid = false;
  for (std::size_t i = first; i < argv.size(); ++i) {
    const std::string_view p = argv[i];
    mc.parameters.emplace_back(p);
    if (istarts(p, "SIZE=")) {
      auto v = p.substr(5);
      if (!all_digits(v)) {
        send("501 5.5.4 Bad message size syntax");
        return false;
      }
      std::uint64_t n = 0;
      bool overflow = false;
      for (char c : v) {
        if (n > (std::uint64_t(std::numeric_limits<std::int64_t>::max()) - (c - '0')) / 10) {
          overflow = true;
          break;
        }
        n = n * 10 + std::uint64_t(c - '0');
      }
      if (overflow) {
        send("552 5.3.4 Message size exceeds file system imposed limit");
        return false;
      }
      msg_size = n;
      mc.size = n;
    } else if (istarts(p, "BODY=")) {
      auto v = upper(p.substr(5));
      if (v != "8BITMIME" && v != "7BIT") {
        send("555 5.5.4 Unsupported option: " + std::string(p));
        return false;
      }
      mc.body = v;
    } else if (iequals(p, "SMTPUTF8") && !discarded("SMTPUTF8")) {
    } else if (istarts(p, "RET=") && !discarded("DSN")) {
      auto v = upper(p.substr(4));
      if (have_ret || (v != "FULL" && v != "HDRS")) {
        send("501 5.5.4 Bad RET parameter syntax");
        return false;
      }
      have_ret = true;
    } else if (istarts(p, "ENVID=") && !discarded("DSN")) {
      auto v = xtext_decode(p.substr(6));
      if (have_envid || !v || v->empty()) {
        send("501 5.5.4 Bad ENVID parameter syntax");
        return false;
      }
      have_envid = true;
    } else if ((istarts(p, "RET=") || istarts(p, "ENVID=")) && discarded("DSN")) {
      send("501 5.7.1 DSN support is disabled");
      return false;
    } else if (istarts(p, "AUTH=")) {
      if (!xtext_decode(p.substr(5))) {
        send("501 5.5.4 Bad AUTH parameter syntax");
        return false;
      }
    } else {
      send("555 5.5.4 Unsupported option: " + std::string(p));
      return false;
    }
  }
  if (opt.message_size_limit > 0 && msg_size > opt.message_size_limit) {
    send("552 5.3.4 Message size exceeds fixed limit");
    return false;
  }
  if (auto v = h.on_mail(cl, mc)) return send_result(*v);
  in_mail = true;
  smtputf8_mail = smtputf8;
  rcpt_count = 0;
  send("250 2.1.0 Ok");
  return true;
}

bool server_session::impl::rcpt(const std::vector<std::string_view>& argv) {
  if (!in_mail) {
    send("503 5.5.1 Error: need MAIL command");
    return false;
  }
  if (!split_path(argv, "TO:")) {
    send("501 5.5.4 Syntax: RCPT TO:<address>");
    return false;
  }
  if (refused_event(client_event::rcpt)) return false;
  const std::size_t first = 3;
  std::optional<std::string> addr;
  if (!token_unterminated(argv[2])) addr = parse_address(argv[2], false);
  if (!addr || !h.on_address_check(*addr, smtputf8_mail)) {
    send("501 5.1.3 Bad recipient address syntax");
    return false;
  }
  rcpt_command rc;
  rc.recipient = *addr;
  bool have_notify = false, have_orcpt = false;
  for (std::size_t i = first; i < argv.size(); ++i) {
    const std::string_view p = argv[i];
    rc.parameters.emplace_back(p);
    if ((istarts(p, "NOTIFY=") || istarts(p, "ORCPT=")) && discarded("DSN")) {
      send("501 5.7.1 DSN support is disabled");
      return false;
    }
    if (istarts(p, "NOTIFY=")) {
      bool good = !have_notify;
      bool never = false, other = false;
      std::string_view v = p.substr(7);
      if (v.empty()) good = false;
      while (good && !v.empty()) {
        auto comma = v.find(',');
        auto item = v.substr(0, comma);
        if (iequals(item, "NEVER"))
          never = true;
        else if (iequals(item, "SUCCESS") || iequals(item, "DELAY") || iequals(item, "FAILURE"))
          other = true;
        else
          good = false;
        if (comma == std::string_view::npos) break;
        v = v.substr(comma + 1);
        if (v.empty()) good = false;
      }
      if (!good || (never && other)) {
        send("501 5.5.4 Error: Bad NOTIFY parameter syntax");
        return false;
      }
      have_notify = true;
    } else if (istarts(p, "ORCPT=")) {
      std::string_view v = p.substr(6);
      auto semi = v.find(';');
      bool good = !have_orcpt && semi != std::string_view::npos && semi > 0;
      if (good) {
        for (char c : v.substr(0, semi))
          if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') good = false;
        auto x = xtext_decode(v.substr(semi + 1));
        if (!x || x->empty()) good = false;
      }
      if (!good) {
        send("501 5.5.4 Error: Bad ORCPT parameter syntax");
        return false;
      }
      have_orcpt = true;
    } else {
      send("555 5.5.4 Unsupported option: " + std::string(p));
      return false;
    }
  }
  if (opt.recipient_limit && rcpt_count >= opt.recipient_limit) {
    send("452 4.5.3 Error: too many recipients");
    // Postfix does not count the first recipient_overshoot_limit excess recipients as errors.
    return rcpt_overshoot++ < opt.recipient_overshoot_limit;
  }
  if (auto v = h.on_rcpt(cl, rc)) {
    const bool good = send_result(*v);
    if (good) ++rcpt_count;
    return good;
  }
  ++rcpt_count;
  send("250 2.1.5 Ok");
  return true;
}

}  // namespace relaylab::smtp
