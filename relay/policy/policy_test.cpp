// Policy tests. The golden part replays testdata/policy/smtpd_check.in through the engine and
// compares every reply with smtpd_check.ref, which record.py captured from a real Postfix 3.7.11
// (Postfix's own smtpd_check.in/.ref idea). The unit part covers what a live Postfix cannot show
// through master.cf overrides (trivial-rewrite settings) and relaylab's own additions.
#include "relay/policy/policy.hpp"
#include "relay/smtp/syntax.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

namespace relaylab::policy {
namespace {

const std::string kData = RELAYLAB_TESTDATA_DIR;

// The path in the internal form smtpd gives the policy (quotes and source route removed), as
// relay/smtp parses MAIL FROM and RCPT TO.
std::string internal(const std::string& path) {
  return smtp::syntax::parse_address(path, true).value_or(path);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string subst(std::string s) {
  for (std::size_t p; (p = s.find("@TESTDATA@")) != std::string::npos;) {
    s.replace(p, 10, kData);
  }
  return s;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The base main.cf shared by every golden profile.
config::parameters base_parameters() {
  config::host_environment env;
  env.hostname = "relay.example.com";
  config::parameters p(env);
  std::vector<config::diagnostic> diags;
  config::parse_main_cf(subst(read_text(kData + "/main.cf")), kData + "/main.cf", p, diags);
  return p;
}

struct profile {
  std::string name;
  std::vector<std::pair<std::string, std::string>> config;
  std::vector<std::string> commands;
};

std::vector<profile> read_profiles() {
  std::vector<profile> out;
  for (const auto& line : lines_of(read_text(kData + "/smtpd_check.in"))) {
    if (line.empty() || line[0] == '#') continue;
    auto sp = line.find(' ');
    std::string word = line.substr(0, sp);
    std::string rest = sp == std::string::npos ? "" : line.substr(sp + 1);
    if (word == "profile") {
      out.push_back({rest, {}, {}});
    } else if (word == "config") {
      auto eq = rest.find('=');
      auto trim = [](std::string s) {
        s.erase(0, s.find_first_not_of(' '));
        s.erase(s.find_last_not_of(' ') + 1);
        return s;
      };
      out.back().config.emplace_back(trim(rest.substr(0, eq)), trim(rest.substr(eq + 1)));
    } else {
      out.back().commands.push_back(line);
    }
  }
  return out;
}

// ">>> command" / reply pairs of one profile, in order.
std::vector<std::pair<std::string, std::string>> read_reference(const std::string& name) {
  std::vector<std::pair<std::string, std::string>> out;
  auto lines = lines_of(read_text(kData + "/smtpd_check.ref"));
  bool in_profile = false;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind(">>> profile ", 0) == 0) {
      in_profile = lines[i].substr(12) == name;
      continue;
    }
    if (!in_profile || lines[i].rfind(">>> ", 0) != 0) continue;
    std::string reply = i + 1 < lines.size() ? lines[i + 1] : "";
    out.emplace_back(lines[i].substr(4), reply);
  }
  return out;
}

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

class golden : public ::testing::TestWithParam<std::string> {};

TEST_P(golden, replies_match_postfix) {
  profile prof;
  for (auto& p : read_profiles()) {
    if (p.name == GetParam()) prof = p;
  }
  ASSERT_EQ(prof.name, GetParam());
  config::parameters params = base_parameters();
  for (const auto& [k, v] : prof.config) params.set(k, subst(v));
  std::vector<config::diagnostic> diags;
  auto base = engine::create(params, diags);
  auto has_fatal = [&](const std::string& text, const std::string& parameter) {
    for (const auto& d : diags) {
      if (d.level == config::diagnostic::severity::fatal && d.message == text &&
          d.parameter == parameter) {
        return true;
      }
    }
    return false;
  };
  if (prof.name == "missing_required") {
    // Postfix's smtpd exits at startup (the client gets no greeting at all).
    EXPECT_EQ(base, nullptr);
    EXPECT_TRUE(
        has_fatal("in parameter smtpd_relay_restrictions or "
                  "smtpd_recipient_restrictions, specify at least one working instance "
                  "of: reject_unauth_destination, defer_unauth_destination, reject, "
                  "defer, defer_if_permit or check_relay_domains",
                  "smtpd_relay_restrictions"));
    return;
  }
  ASSERT_NE(base, nullptr);
  if (prof.name == "unknown_restriction") {
    EXPECT_TRUE(has_fatal("unknown smtpd restriction: \"reject_bogus_thing\"",
                          "smtpd_recipient_restrictions"));
  } else {
    for (const auto& d : diags) {
      EXPECT_NE(d.level, config::diagnostic::severity::fatal) << d.message;
    }
  }

  auto ref = read_reference(prof.name);
  ASSERT_EQ(ref.size(), prof.commands.size()) << "re-run record.py";
  std::unique_ptr<engine> e;
  session_state s;
  bool access_denied = false;
  bool closed = false;
  int checked = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const std::string& cmd = prof.commands[i];
    const std::string& want = ref[i].second;
    ASSERT_EQ(ref[i].first, cmd);
    SCOPED_TRACE(prof.name + ": " + cmd + " -> " + want);
    auto sp = cmd.find(' ');
    std::string word = cmd.substr(0, sp);
    std::string arg = sp == std::string::npos ? "" : cmd.substr(sp + 1);
    auto expect = [&](const std::optional<rejection>& r, const char* ok_prefix) {
      ++checked;
      if (r && !r->warn_only) {
        EXPECT_EQ(r->reply, want);
        return false;
      }
      EXPECT_TRUE(starts(want, ok_prefix)) << "policy accepted, Postfix said: " << want;
      return true;
    };
    if (word == "session") {
      std::istringstream in(arg);
      std::string addr, name, login;
      in >> addr >> name >> login;
      if (starts(addr, "IPV6:")) addr = addr.substr(5);
      e = base->new_session();
      s = session_state{};
      s.client_addr = addr;
      s.client_name = name;
      s.sasl_username = login;
      s.sasl_method = login.empty() ? "" : "XCLIENT";
      closed = false;
      auto r = e->check_client(s);
      access_denied = r.has_value() && !r->warn_only;
      expect(r, "220");
      continue;
    }
    if (closed) continue;
    if (access_denied) {
      // smtpd's own answer after a rejected connection (smtpd_delay_reject = no).
      EXPECT_EQ(want,
                "503 5.7.0 Error: access denied for " + s.client_name + "[" + s.client_addr + "]");
      continue;
    }
    if (word == "helo" || word == "ehlo") {
      s.protocol = word == "ehlo" ? "ESMTP" : "SMTP";
      s.helo_name = arg;
      s.in_transaction = false;
      s.recipient_count = 0;
      e->reset_transaction();
      if (!expect(e->check_helo(s), "250")) s.helo_name.clear();
    } else if (word == "mail" || word == "pipe_mail") {
      if (s.in_transaction) {
        EXPECT_EQ(want, "503 5.5.1 Error: nested MAIL command");
        continue;
      }
      s.sender = arg == "<>" ? "" : internal("<" + arg + ">");
      // Postfix flags input waiting behind MAIL only before EHLO (MAIL may start a group);
      // the flag then stays for the connection.
      if (word == "pipe_mail" && s.protocol != "ESMTP") s.unauth_pipelining = true;
      e->reset_transaction();
      s.in_transaction = expect(e->check_mail(s), "250");
      if (word == "pipe_mail") s.in_transaction = false;  // the pipelined RSET
    } else if (word == "rcpt") {
      s.recipient = internal("<" + arg + ">");
      if (expect(e->check_rcpt(s), "250")) ++s.recipient_count;
    } else if (word == "data" || word == "pipe_data") {
      if (word == "pipe_data") s.unauth_pipelining = true;  // DATA ends a group
      bool ok = expect(e->check_data(s), "354");
      if (!ok) s.in_transaction = false, s.recipient_count = 0;
      if (word == "pipe_data") closed = true;
    } else if (word == "eod") {
      expect(e->check_end_of_data(s), "250");
      s.in_transaction = false;
      s.recipient_count = 0;
      e->reset_transaction();
    } else if (word == "etrn") {
      // A permitted ETRN gets 459 (no fast_flush_domains match), as relay/smtp answers.
      s.etrn_name = arg;
      expect(e->check_etrn(s), "459");
      s.etrn_name.clear();
    } else if (word == "rset") {
      EXPECT_TRUE(starts(want, "250"));
      s.in_transaction = false;
      s.recipient_count = 0;
      e->reset_transaction();
    } else {
      FAIL() << "unknown command " << cmd;
    }
  }
  EXPECT_GT(checked, 0);
  RecordProperty("replies_compared", checked);
}

std::vector<std::string> profile_names() {
  std::vector<std::string> out;
  for (const auto& p : read_profiles()) out.push_back(p.name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(smtpd_check, golden, ::testing::ValuesIn(profile_names()),
                         [](const auto& info) { return info.param; });

TEST(golden_data, has_enough_cases) {
  int pairs = 0;
  for (const auto& p : read_profiles()) pairs += static_cast<int>(read_reference(p.name).size());
  EXPECT_GE(pairs, 300);
  EXPECT_GE(profile_names().size(), 30u);
}

// ------------------------------------------------------------------------------------------
// Unit tests.

using cfg = std::map<std::string, std::string>;

struct fixture {
  config::parameters params = base_parameters();
  std::vector<config::diagnostic> diags;
  std::unique_ptr<engine> e;
  session_state s;

  explicit fixture(std::map<std::string, std::string> overrides = {}) {
    for (const auto& [k, v] : overrides) params.set(k, subst(v));
    e = engine::create(params, diags);
    s.client_addr = "203.0.113.9";
    s.client_name = "unknown";
    s.helo_name = "client.example.net";
    s.sender = "a@remote.example";
    s.in_transaction = true;
  }
  std::string rcpt(const std::string& to) {
    s.recipient = to;
    auto r = e->check_rcpt(s);
    return r ? r->reply : "OK";
  }
  std::string mail(const std::string& from) {
    s.sender = from;
    auto r = e->check_mail(s);
    return r ? r->reply : "OK";
  }
  std::string fatal_messages() const {
    std::string out;
    for (const auto& d : diags) {
      if (d.level == config::diagnostic::severity::fatal)
        out += d.parameter + ": " + d.message + "\n";
    }
    return out;
  }
};

const std::map<std::string, std::string> kClassic = {
    {"smtpd_relay_restrictions", ""},
    {"smtpd_recipient_restrictions", "permit_mynetworks, reject_unauth_destination"}};

std::map<std::string, std::string> classic(std::map<std::string, std::string> more) {
  more.insert(kClassic.begin(), kClassic.end());
  return more;
}

TEST(policy_resolve, swap_bangpath_no_keeps_bang_local_part_local_but_routed) {
  fixture f(classic({{"swap_bangpath", "no"}}));
  ASSERT_NE(f.e, nullptr) << f.fatal_messages();
  // Routed (the '!'), so not an authorized destination while allow_untrusted_routing = no.
  EXPECT_EQ(f.rcpt("remote.example!user@relay.example.com"),
            "554 5.7.1 <remote.example!user@relay.example.com>: Relay access denied");
  fixture g(classic({{"swap_bangpath", "no"}, {"allow_untrusted_routing", "yes"}}));
  EXPECT_EQ(g.rcpt("remote.example!user@relay.example.com"),
            "550 5.1.1 <remote.example!user@relay.example.com>: Recipient address rejected: "
            "User unknown in local recipient table");
}

TEST(policy_resolve, percent_hack_on_and_off) {
  fixture on(classic({{"allow_untrusted_routing", "yes"}}));
  EXPECT_EQ(on.rcpt("user%remote.example@relay.example.com"),
            "554 5.7.1 <user%remote.example@relay.example.com>: Relay access denied");
  EXPECT_EQ(on.rcpt("root%localhost@relay.example.com"), "OK");
  fixture off(classic({{"allow_percent_hack", "no"}, {"allow_untrusted_routing", "yes"}}));
  EXPECT_EQ(off.rcpt("user%remote.example@relay.example.com"),
            "550 5.1.1 <user%remote.example@relay.example.com>: Recipient address rejected: "
            "User unknown in local recipient table");
}

TEST(policy_resolve, dequoted_address_setting) {
  fixture on(classic({{"allow_untrusted_routing", "yes"}}));
  EXPECT_EQ(on.rcpt("user@remote.example@relay.example.com"),
            "554 5.7.1 <user@remote.example@relay.example.com>: Relay access denied");
  EXPECT_EQ(on.rcpt("root@localhost@relay.example.com"), "OK");
  fixture off(classic({{"resolve_dequoted_address", "no"}, {"allow_untrusted_routing", "yes"}}));
  EXPECT_EQ(off.rcpt("user@remote.example@relay.example.com"),
            "550 5.1.1 <user@remote.example@relay.example.com>: Recipient address rejected: "
            "User unknown in local recipient table");
}

TEST(policy_resolve, source_route_bang_and_percent_chains_end_remote) {
  fixture f(kClassic);
  EXPECT_EQ(f.rcpt("@relay.example.com:user@remote.example"),
            "554 5.7.1 <@relay.example.com:user@remote.example>: Relay access denied");
  EXPECT_EQ(f.rcpt("a!b!user@relay.example.com"),
            "554 5.7.1 <a!b!user@relay.example.com>: Relay access denied");
  EXPECT_EQ(f.rcpt("user%remote.example%relay.example.com@relay.example.com"),
            "554 5.7.1 <user%remote.example%relay.example.com@relay.example.com>: Relay access "
            "denied");
  EXPECT_EQ(f.rcpt("root@LOCALHOST."), "OK");
  EXPECT_EQ(f.rcpt("root"), "OK");  // @$myorigin
}

TEST(policy_address_classes, mynetworks_mydestination_relay_domains) {
  fixture f(cfg{{"mynetworks",
                 "10.0.0.0/8 [2001:db8::]/32 [::ffff:127.0.0.0]/104 !192.168.1.1 "
                 "192.168.1.0/24 inline:{172.16.0.1=x}"},
                {"proxy_interfaces", "198.51.100.1"},
                {"mydestination", "$myhostname, .sub.example.com, inline:{table.example=x}"}});
  ASSERT_NE(f.e, nullptr) << f.fatal_messages();
  EXPECT_TRUE(f.e->in_mynetworks("10.1.2.3"));
  EXPECT_TRUE(f.e->in_mynetworks("2001:db8:1::1"));
  EXPECT_TRUE(f.e->in_mynetworks("::ffff:127.0.0.1"));
  EXPECT_FALSE(f.e->in_mynetworks("192.168.1.1"));
  EXPECT_TRUE(f.e->in_mynetworks("192.168.1.2"));
  EXPECT_TRUE(f.e->in_mynetworks("172.16.0.1"));
  EXPECT_FALSE(f.e->in_mynetworks("172.16.0.2"));
  EXPECT_TRUE(f.e->is_local_domain("Relay.Example.COM."));
  EXPECT_TRUE(f.e->is_local_domain("a.sub.example.com"));
  EXPECT_FALSE(f.e->is_local_domain("sub.example.com"));
  EXPECT_TRUE(f.e->is_local_domain("table.example"));
  EXPECT_TRUE(f.e->is_local_domain("[127.0.0.1]"));
  EXPECT_TRUE(f.e->is_local_domain("[198.51.100.1]"));
  EXPECT_FALSE(f.e->is_local_domain("[198.51.100.2]"));
  EXPECT_TRUE(f.e->is_relay_domain("relay.example.org"));
  EXPECT_TRUE(f.e->is_relay_domain("deep.sub.relay.example.org"));
  EXPECT_FALSE(f.e->is_relay_domain("example.org"));
}

TEST(policy_address_classes, relay_domains_subdomain_style_without_parent_matching) {
  fixture f(cfg{{"parent_domain_matches_subdomains", ""},
                {"relay_domains", "relay.example.org .wild.example"}});
  EXPECT_FALSE(f.e->is_relay_domain("sub.relay.example.org"));
  EXPECT_TRUE(f.e->is_relay_domain("a.wild.example"));
  EXPECT_FALSE(f.e->is_relay_domain("wild.example"));
}

TEST(policy_reply, one_builder_enforces_code_dsn_and_length) {
  // A reply code outside 4xx/5xx becomes Postfix's generic deferral.
  fixture bad_code(classic({{"relay_domains_reject_code", "299"}}));
  EXPECT_EQ(bad_code.rcpt("b@remote.example"), "450 4.7.1 Service unavailable");
  // The enhanced status class follows the reply code.
  fixture f(classic({{"smtpd_recipient_restrictions",
                      "check_recipient_access inline:{{a@x.example=450 5.2.2 Over quota}, "
                      "{b@x.example=550 4.1.1 Gone}, {c@x.example=REJECT 5.1.7 Bad}, "
                      "{d@x.example=550 Nine 9.9.9}}, reject_unauth_destination"}}));
  ASSERT_NE(f.e, nullptr) << f.fatal_messages();
  EXPECT_EQ(f.rcpt("a@x.example"),
            "450 4.2.2 <a@x.example>: Recipient address rejected: Over quota");
  EXPECT_EQ(f.rcpt("b@x.example"), "550 5.1.1 <b@x.example>: Recipient address rejected: Gone");
  EXPECT_EQ(f.rcpt("c@x.example"), "554 5.1.1 <c@x.example>: Recipient address rejected: Bad");
  EXPECT_EQ(f.rcpt("d@x.example"),
            "550 5.7.1 <d@x.example>: Recipient address rejected: Nine 9.9.9");
  // Long and unprintable text: not cut (Postfix's vstring_truncate(error_text, 510) does not
  // terminate the string), control characters become spaces.
  std::string path = ::testing::TempDir() + "/long_access";
  std::ofstream(path) << "long@x.example 550 " << std::string(600, 'x') << "\n";
  fixture l(classic({{"smtpd_recipient_restrictions",
                      "check_recipient_access texthash:" + path + ", reject_unauth_destination"}}));
  std::string r = l.rcpt("long@x.example");
  EXPECT_EQ(r, "550 5.7.1 <long@x.example>: Recipient address rejected: " + std::string(600, 'x'));
  l.s.recipient = "bell\x07@x.example";
  auto rr = l.e->check_rcpt(l.s);
  ASSERT_TRUE(rr.has_value());
  EXPECT_EQ(rr->reply.find('\x07'), std::string::npos);
}

TEST(policy_reply, codes_come_from_parameters) {
  fixture f(classic({{"access_map_reject_code", "553"},
                     {"reject_code", "550"},
                     {"defer_code", "451"},
                     {"access_map_defer_code", "421"},
                     {"smtpd_restriction_classes", "rc, dc"},
                     {"rc", "reject"},
                     {"dc", "defer"},
                     {"smtpd_sender_restrictions",
                      "check_sender_access inline:{x@remote.example=REJECT, "
                      "{y@remote.example=rc}, {z@remote.example=dc}, {w@remote.example=DEFER}}"}}));
  EXPECT_EQ(f.rcpt("root@relay.example.com"), "OK");
  f.s.sender = "x@remote.example";
  EXPECT_EQ(f.rcpt("root@relay.example.com"),
            "553 5.7.1 <x@remote.example>: Sender address rejected: Access denied");
  f.s.sender = "y@remote.example";
  EXPECT_EQ(f.rcpt("root@relay.example.com"),
            "550 5.7.1 <y@remote.example>: Sender address rejected: Access denied");
  f.s.sender = "z@remote.example";
  EXPECT_EQ(f.rcpt("root@relay.example.com"),
            "451 4.3.2 <z@remote.example>: Sender address rejected: Try again later");
  f.s.sender = "w@remote.example";
  EXPECT_EQ(f.rcpt("root@relay.example.com"),
            "421 4.7.1 <w@remote.example>: Sender address rejected: Access denied");
}

TEST(policy_stages, delay_reject_yes_defers_client_helo_mail_to_rcpt) {
  fixture f(cfg{{"smtpd_client_restrictions", "reject"}});
  EXPECT_EQ(f.e->check_client(f.s), std::nullopt);
  EXPECT_EQ(f.e->check_helo(f.s), std::nullopt);
  EXPECT_EQ(f.e->check_mail(f.s), std::nullopt);
  f.s.recipient = "root@relay.example.com";
  auto r = f.e->check_rcpt(f.s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->reply, "554 5.7.1 <unknown[203.0.113.9]>: Client host rejected: Access denied");
  EXPECT_EQ(r->stage, "RCPT");
  // Bare "postmaster" is accepted before any delayed restriction.
  EXPECT_EQ(f.rcpt("postmaster"), "OK");
}

TEST(policy_stages, delay_reject_no_reports_the_stage) {
  fixture f(cfg{{"smtpd_delay_reject", "no"}, {"smtpd_helo_restrictions", "reject"}});
  auto r = f.e->check_helo(f.s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->stage, "HELO");
  EXPECT_EQ(r->reply, "554 5.7.1 <client.example.net>: Helo command rejected: Access denied");
}

TEST(policy_stages, defer_if_permit_flags_are_per_session) {
  fixture f(cfg{{"smtpd_delay_reject", "no"}, {"smtpd_client_restrictions", "defer_if_permit"}});
  EXPECT_EQ(f.e->check_client(f.s), std::nullopt);
  EXPECT_EQ(f.e->check_mail(f.s), std::nullopt);
  EXPECT_EQ(f.rcpt("root@relay.example.com"),
            "450 4.7.0 <unknown[203.0.113.9]>: Client host rejected: defer_if_permit requested");
  auto other = f.e->new_session();
  f.s.recipient = "root@relay.example.com";
  EXPECT_EQ(other->check_rcpt(f.s), std::nullopt);
  f.e->reset_session();
  EXPECT_EQ(f.rcpt("root@relay.example.com"), "OK");
}

TEST(policy_stages, warn_if_reject_is_reported_not_enforced) {
  fixture f(classic({{"smtpd_recipient_restrictions",
                      "warn_if_reject reject_non_fqdn_recipient, warn_if_reject reject, "
                      "permit_mynetworks, reject_unauth_destination"}}));
  f.s.recipient = "root@localhost";
  auto r = f.e->check_rcpt(f.s);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->warn_only);
  EXPECT_EQ(r->reply,
            "504 5.5.2 <root@localhost>: Recipient address rejected: need fully-qualified "
            "address");
  auto w = f.e->take_warnings();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[1].reply, "554 5.7.1 <root@localhost>: Recipient address rejected: Access denied");
  EXPECT_TRUE(f.e->take_warnings().empty());
}

TEST(policy_stages, restriction_classes_and_null_sender_key) {
  fixture f(cfg{{"smtpd_restriction_classes", "strict, lenient"},
                {"strict", "reject_non_fqdn_sender, reject"},
                {"lenient", "permit"},
                {"smtpd_null_access_lookup_key", "<null>"},
                {"smtpd_sender_restrictions",
                 "check_sender_access inline:{{<null>=strict}, {x@remote.example=lenient}, "
                 "{y@remote.example=strict}}"}});
  ASSERT_NE(f.e, nullptr) << f.fatal_messages();
  f.s.sender = "";
  EXPECT_EQ(f.rcpt("root@relay.example.com"),
            "554 5.7.1 <>: Sender address rejected: Access denied");
  f.s.sender = "x@remote.example";
  EXPECT_EQ(f.rcpt("root@relay.example.com"), "OK");
  f.s.sender = "y@remote.example";
  EXPECT_EQ(f.rcpt("root@relay.example.com"),
            "554 5.7.1 <y@remote.example>: Sender address rejected: Access denied");
}

TEST(policy_stages, client_name_lookups_and_unknown_client) {
  fixture f(cfg{{"smtpd_client_restrictions",
                 "check_client_access inline:{example.net=OK}, reject_unknown_client_hostname, "
                 "permit_inet_interfaces, reject"}});
  EXPECT_EQ(f.rcpt("root@relay.example.com"),
            "450 4.7.25 Client host rejected: cannot find your hostname, [203.0.113.9]");
  f.s.client_name = "mail.example.net";
  EXPECT_EQ(f.rcpt("root@relay.example.com"), "OK");
  f.s.client_name = "localhost";
  f.s.client_addr = "127.0.0.1";
  EXPECT_EQ(f.rcpt("root@relay.example.com"), "OK");  // permit_inet_interfaces
}

TEST(policy_stages, sasl_restrictions_need_smtpd_sasl_auth_enable) {
  fixture off(classic(
      {{"smtpd_sasl_auth_enable", "no"},
       {"smtpd_recipient_restrictions", "permit_sasl_authenticated, reject_unauth_destination"}}));
  off.s.sasl_method = "PLAIN";
  off.s.sasl_username = "alice";
  EXPECT_EQ(off.rcpt("b@remote.example"), "554 5.7.1 <b@remote.example>: Relay access denied");
  fixture on(classic({{"smtpd_recipient_restrictions",
                       "check_sasl_access inline:{mallory=REJECT}, permit_sasl_authenticated, "
                       "reject_unauth_destination"}}));
  on.s.sasl_method = "PLAIN";
  on.s.sasl_username = "alice";
  EXPECT_EQ(on.rcpt("b@remote.example"), "OK");
  on.s.sasl_username = "mallory";
  EXPECT_EQ(on.rcpt("b@remote.example"),
            "554 5.7.1 <mallory>: SASL login name rejected: Access denied");
}

TEST(policy_stages, data_stage_bare_table_is_a_server_error) {
  fixture f(cfg{{"smtpd_data_restrictions", "inline:{a=REJECT}"}});
  ASSERT_NE(f.e, nullptr);
  EXPECT_NE(f.fatal_messages().find("before restriction"), std::string::npos);
  auto r = f.e->check_data(f.s);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->reply, "451 4.3.5 Server configuration error");
  EXPECT_EQ(r->stage, "DATA");
}

TEST(policy_config, errors_name_the_parameter) {
  fixture unknown(cfg{{"smtpd_helo_restrictions", "reject_nonsense"}});
  EXPECT_EQ(unknown.fatal_messages(),
            "smtpd_helo_restrictions: unknown smtpd restriction: \"reject_nonsense\"\n");
  fixture no_class(cfg{{"smtpd_restriction_classes", "empty_class"}});
  EXPECT_EQ(no_class.fatal_messages(),
            "smtpd_restriction_classes: restriction class `empty_class' needs a definition\n");
  fixture bad_table(
      cfg{{"smtpd_client_restrictions", "check_client_access texthash:/nonexistent"}});
  EXPECT_EQ(bad_table.e, nullptr);
  EXPECT_NE(bad_table.fatal_messages().find("smtpd_client_restrictions: table "
                                            "texthash:/nonexistent: /nonexistent: cannot open"),
            std::string::npos);
  fixture bad_arg(cfg{{"smtpd_client_restrictions", "check_client_access permit"}});
  EXPECT_NE(bad_arg.fatal_messages().find("need maptype:mapname"), std::string::npos);
  fixture via_class(cfg{{"smtpd_relay_restrictions", ""},
                        {"smtpd_restriction_classes", "guard"},
                        {"guard", "reject_unauth_destination"},
                        {"smtpd_recipient_restrictions", "permit_mynetworks, guard"}});
  EXPECT_NE(via_class.e, nullptr) << via_class.fatal_messages();
  fixture warn_only(cfg{{"smtpd_relay_restrictions", ""},
                        {"smtpd_recipient_restrictions", "warn_if_reject reject, permit"}});
  EXPECT_EQ(warn_only.e, nullptr);
}

TEST(policy_config, dns_restrictions_are_recognised_but_never_match) {
  fixture f(cfg{{"smtpd_recipient_restrictions",
                 "reject_unknown_recipient_domain, reject_rbl_client zen.example"}});
  ASSERT_NE(f.e, nullptr);
  EXPECT_EQ(f.fatal_messages(), "");
  int warnings = 0;
  for (const auto& d : f.diags) warnings += d.message.find("not supported") != std::string::npos;
  EXPECT_EQ(warnings, 2);
  EXPECT_EQ(f.rcpt("root@relay.example.com"), "OK");
}

TEST(policy_helpers, valid_hostname_and_hostaddr) {
  EXPECT_TRUE(smtp::syntax::valid_hostname("mail.example.com"));
  EXPECT_TRUE(smtp::syntax::valid_hostname("under_score.example"));
  EXPECT_FALSE(smtp::syntax::valid_hostname("192.0.2.1"));
  EXPECT_FALSE(smtp::syntax::valid_hostname("-bad.example"));
  EXPECT_FALSE(smtp::syntax::valid_hostname("bad-.example"));
  EXPECT_FALSE(smtp::syntax::valid_hostname("a..b"));
  EXPECT_FALSE(smtp::syntax::valid_hostname("trailing.dot."));
  EXPECT_FALSE(smtp::syntax::valid_hostname(std::string(64, 'a') + ".example"));
  EXPECT_TRUE(valid_hostaddr("192.0.2.1"));
  EXPECT_FALSE(valid_hostaddr("192.0.2.256"));
  EXPECT_TRUE(valid_hostaddr("2001:db8::1"));
  EXPECT_FALSE(valid_hostaddr("2001:db8::g"));
}

}  // namespace
}  // namespace relaylab::policy
