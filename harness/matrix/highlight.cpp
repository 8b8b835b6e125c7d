// --highlight: what a mail operator should look at first, one line each, naming the restriction
// that decided. Judged from the driven cells (and, for bare LF, from the listener's setting).
#include "harness/matrix/matrix.hpp"

#include <set>

namespace relaylab::matrix {
namespace {

const std::set<std::string> relay_attempts{"foreign", "percent", "bang", "source-route", "quoted"};

const stage_result* stage_of(const cell& c, const char* name) {
  for (const auto& s : c.stages)
    if (s.stage == name) return &s;
  return nullptr;
}

std::string decided_by(const std::string& decider) {
  return decider.empty() ? "no restriction refused it" : "decided by " + decider;
}

/// The cell without its sender: findings that differ only by sender print as one line.
std::string describe(const cell& c) {
  return c.listener + ", client " + c.client + " [" + c.client_addr + "], AUTH " + c.auth +
         ", RCPT TO:<" + c.recipient_addr + ">";
}

bool loopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "[::1]" || host == "localhost" ||
         host == "loopback-only";
}

/// The listener accepts connections from other hosts (its host part, else inet_interfaces).
bool reachable_from_outside(const table& t, const std::string& listener) {
  auto colon = listener.rfind(':');
  if (colon != std::string::npos && colon > 0) return !loopback(listener.substr(0, colon));
  auto it = t.listener_params.find(listener + ":inet_interfaces");
  if (it == t.listener_params.end()) return true;
  std::string v = it->second;
  for (auto& ch : v)
    if (ch == ',') ch = ' ';
  std::size_t pos = 0;
  bool any = false;
  while (pos < v.size()) {
    auto end = v.find(' ', pos);
    std::string host = v.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? v.size() : end + 1;
    if (host.empty()) continue;
    any = true;
    if (!loopback(host)) return true;
  }
  return !any;
}

std::string param(const table& t, const std::string& listener, const char* name) {
  auto it = t.listener_params.find(listener + ":" + name);
  return it == t.listener_params.end() ? std::string() : it->second;
}

}  // namespace

std::vector<finding> highlight(const table& t) {
  std::vector<finding> out;
  std::vector<std::string> listeners;
  for (const auto& c : t.cells) {
    if (listeners.empty() || listeners.back() != c.listener) listeners.push_back(c.listener);
    const bool inside = c.client.rfind("inside:", 0) == 0;
    const auto* rcpt = stage_of(c, "rcpt");
    if (!inside && !c.authenticated && relay_attempts.count(c.recipient) && rcpt &&
        reply_code(rcpt->reply) / 100 == 2) {
      out.push_back({"open-relay", c.key(),
                     "open relay: " + describe(c) + " -> " + rcpt->reply + " (" +
                         decided_by(rcpt->decider) + ")"});
    }
    if (c.authenticated && c.recipient == "foreign" && !c.accepted()) {
      const auto& d = c.decisive();
      out.push_back({"auth-refused-relay", c.key(),
                     "authenticated user refused relay: " + describe(c) + " -> " + d.reply + " (" +
                         decided_by(d.decider) + ")"});
      if (reply_code(d.reply) / 100 == 5 &&
          d.decider.find("reject_unauth_destination") != std::string::npos) {
        out.push_back({"permanent-auth-reject", c.key(),
                       "permanent reject of an authenticated user on " + c.listener + ": " +
                           d.reply + " (" + decided_by(d.decider) +
                           "): the client bounces the mail; defer_unauth_destination would keep it "
                           "queued (4xx) until the policy is fixed"});
      }
    }
    if (!c.authenticated && !inside && c.recipient == "foreign" && rcpt &&
        reply_code(rcpt->reply) / 100 == 4 &&
        rcpt->decider.find("defer_unauth_destination") != std::string::npos) {
      out.push_back({"defer-unauth-destination", c.key(),
                     "temporary refusal of relaying: " + describe(c) + " -> " + rcpt->reply + " (" +
                         decided_by(rcpt->decider) +
                         "): the client retries for days; reject_unauth_destination answers 554"});
    }
  }
  for (const auto& l : listeners) {
    const bool outside = reachable_from_outside(t, l);
    const std::string tls = param(t, l, "smtpd_tls_security_level");
    bool offered = false, accepted = false;
    for (const auto& c : t.cells) {
      if (c.listener != l || c.client.rfind("inside:", 0) == 0) continue;
      offered = offered || c.auth_offered;
      accepted = accepted || c.authenticated;
    }
    if (outside && (offered || accepted)) {
      out.push_back({"auth-without-tls", l,
                     l + ": AUTH " + std::string(accepted ? "accepted" : "offered") +
                         " without TLS to clients outside mynetworks (smtpd_tls_security_level = " +
                         (tls.empty() ? std::string("(empty)") : tls) +
                         ", smtpd_tls_auth_only = " + param(t, l, "smtpd_tls_auth_only") +
                         "): passwords cross the network in clear"});
    }
    const std::string bare = param(t, l, "smtpd_forbid_bare_newline");
    if (bare.empty() || bare == "no") {
      out.push_back({"bare-lf-accepted", l,
                     l + ": smtpd_forbid_bare_newline = " + (bare.empty() ? "(empty)" : bare) +
                         ": Postfix accepts bare <LF> line endings, so <LF>.<LF> ends DATA there "
                         "(SMTP smuggling, CVE-2023-51764); set it to yes"});
    }
  }
  return out;
}

}  // namespace relaylab::matrix
