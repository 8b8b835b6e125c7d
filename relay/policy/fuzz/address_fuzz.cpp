// libFuzzer target: the address path of a RCPT/MAIL command, from the SMTP token to the policy
// decision: relay/smtp's parse_address (Postfix extract_addr), then relay/policy's address
// resolution (source routes, bang paths, the percent hack, quoting, address literals) under a
// classic relay configuration.
//
// Input: 1 byte choosing the client and the configuration, then lines: the MAIL token and one
// RCPT token per line. The open-relay oracle: a client outside mynetworks, not authenticated,
// never gets a recipient accepted whose text names none of the relay's own destinations
// (whatever the routing trick, an accepted address must at least mention one, or be a bare
// local part, which gets @$myorigin).
#include "fuzz/fuzz_input.hpp"
#include "relay/config/config.hpp"
#include "relay/policy/policy.hpp"
#include "relay/smtp/syntax.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::policy {
namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  fuzz::fail("address_fuzz", what, detail);
}

// The relay's own destinations; every accepted relay target must name one of them.
constexpr std::array<std::string_view, 6> own = {"example.com",  "relay.example.com",
                                                 "localhost",    "relay.example.org",
                                                 "virt.example", "[127.0.0.1]"};

std::unique_ptr<engine> make_engine(bool swap_bangpath, bool percent_hack, bool strict) {
  config::host_environment env;
  env.hostname = "relay.example.com";
  config::parameters p(env);
  p.set("myhostname", "relay.example.com");
  p.set("mydomain", "example.com");
  p.set("mydestination", "$myhostname, localhost, $mydomain");
  p.set("relay_domains", "relay.example.org");
  p.set("virtual_alias_domains", "virt.example");
  p.set("virtual_alias_maps", "inline:{ {alias@virt.example=bob@example.com} }");
  p.set("local_recipient_maps", "inline:{ {bob=x} {alice=x} }");
  p.set("mynetworks", "127.0.0.0/8, 192.0.2.0/24");
  p.set("inet_interfaces", "127.0.0.1");
  p.set("swap_bangpath", swap_bangpath ? "yes" : "no");
  p.set("allow_percent_hack", percent_hack ? "yes" : "no");
  p.set("strict_rfc821_envelopes", strict ? "yes" : "no");
  p.set("smtpd_relay_restrictions",
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination");
  p.set("smtpd_recipient_restrictions",
        "reject_non_fqdn_recipient, check_recipient_access inline:{ {spam@example.com=REJECT} }, "
        "permit");
  p.set("smtpd_sender_restrictions", "reject_non_fqdn_sender");
  std::vector<config::diagnostic> diags;
  auto e = engine::create(p, diags);
  if (!e) fail("engine::create", diags.empty() ? "" : diags.front().message);
  return e;
}

engine& engine_for(unsigned variant) {
  static std::array<std::unique_ptr<engine>, 8> engines;
  auto& e = engines[variant & 7u];
  if (!e) e = make_engine(variant & 1u, variant & 2u, variant & 4u);
  return *e;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool names_own_destination(std::string_view addr) {
  // An address without a domain or routing operator gets @$myorigin: local.
  if (addr.find_first_of("@!%") == std::string_view::npos) return true;
  const std::string l = lower(addr);
  for (const auto d : own) {
    if (l.find(d) != std::string::npos) return true;
  }
  return false;
}

void run(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t a = in.byte();
  engine& e = engine_for(a);
  const bool outside = (a & 0x08) == 0;
  const bool authenticated = (a & 0x10) != 0;

  session_state s;
  s.client_addr = outside ? "203.0.113.9" : "192.0.2.10";
  s.client_name = "unknown";
  s.helo_name = "client.example.net";
  s.protocol = "ESMTP";
  if (authenticated) {
    s.sasl_method = "PLAIN";
    s.sasl_username = "alice";
  }
  e.reset_session();
  e.reset_transaction();

  // Each token also goes through the small syntax helpers on the way.
  const std::string_view mail = in.until('\n');
  (void)smtp::syntax::tokenize(mail);
  (void)smtp::syntax::xtext_decode(mail);
  (void)smtp::syntax::valid_hostname(mail);
  const auto sender = smtp::syntax::parse_address(mail, true);
  if (!sender) return;
  s.sender = *sender;
  if (e.check_mail(s)) return;
  s.in_transaction = true;

  for (int i = 0; i < 16 && !in.empty(); ++i) {
    const std::string_view tok = in.until('\n');
    const auto rcpt = smtp::syntax::parse_address(tok, false);
    if (!rcpt) continue;
    // Internal form only drops bytes (quotes, backslashes, comments, white space), except that
    // an unterminated domain literal "[x" comes out closed, as Postfix's tok822 writes it.
    const auto literals = static_cast<std::size_t>(std::count(tok.begin(), tok.end(), '['));
    if (rcpt->size() > tok.size() + literals) fail("parse_address grew the token", tok);
    s.recipient = *rcpt;
    const auto r = e.check_rcpt(s);
    if (r) {
      if (r->reply.size() < 4 || r->reply[0] < '4' || r->reply[0] > '5')
        fail("a rejection that is not a 4xx/5xx reply", r->reply);
      continue;
    }
    ++s.recipient_count;
    if (outside && !authenticated && !names_own_destination(*rcpt))
      fail("open relay: accepted for an outside client", *rcpt);
  }
}

}  // namespace
}  // namespace relaylab::policy

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  relaylab::policy::run(data, size);
  return 0;
}
