// The support classification (support.inc) and the start-up check built on it.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "relay/config/config.hpp"
#include "relay/config/test_util.hpp"

namespace relaylab::config {
namespace {

using test::temp_dir;
using test::testdata;

host_environment test_host() {
  host_environment env;
  env.hostname = "relay";
  env.interface_networks = {"127.0.0.1/8", "::1/128"};
  return env;
}

std::string joined(const configuration& c) {
  std::string out;
  for (const auto& d : c.diagnostics) out += d.to_string() + "\n";
  return out;
}

std::vector<const diagnostic*> of(const configuration& c, std::string_view parameter) {
  std::vector<const diagnostic*> out;
  for (const auto& d : c.diagnostics) {
    if (d.parameter == parameter) out.push_back(&d);
  }
  return out;
}

// The line of `path` that starts with `prefix` (1-based), 0 if none.
int line_of(const std::filesystem::path& path, std::string_view prefix) {
  std::ifstream in(path);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.compare(0, prefix.size(), prefix) == 0) return n;
  }
  return 0;
}

TEST(Support, EveryBuiltinParameterHasExactlyOneClass) {
  const auto& table = support_table();
  const auto& names = parameters::builtin_names();
  ASSERT_EQ(table.size(), names.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i].name, names[i]) << "support.inc must list defaults.inc's names, sorted";
    if (table[i].level != support_class::implemented) {
      EXPECT_FALSE(table[i].reason.empty()) << table[i].name;
    }
  }
}

TEST(Support, EveryNameOfPostconfDOnDebianIsClassified) {
  // testdata/config/postconf-d-names.txt: `postconf -d` of Postfix 3.7.11 with Debian's stock
  // master.cf (built-ins plus the names derived from its services).
  std::ifstream in(testdata("postconf-d-names.txt"));
  ASSERT_TRUE(in);
  auto c = load(testdata("debian"), test_host());
  std::size_t n = 0;
  std::map<support_class, std::size_t> counts;
  for (std::string name; std::getline(in, name); ++n) {
    ASSERT_TRUE(c.main.is_known(name)) << name;
    auto e = classify(name, c.main);
    ASSERT_TRUE(e) << name;
    ++counts[e->level];
  }
  EXPECT_EQ(n, 1043u);
  EXPECT_EQ(counts[support_class::implemented] + counts[support_class::warned] +
                counts[support_class::refused],
            n);
}

TEST(Support, ServiceDerivedNamesFollowTheirSuffix) {
  parameters p;
  p.add_service_parameters("relay", "smtp");
  p.add_service_parameters("maildrop", "pipe");
  auto level = [&](std::string_view n) { return classify(n, p)->level; };
  EXPECT_EQ(level("relay_destination_concurrency_limit"), support_class::implemented);
  EXPECT_EQ(level("relay_destination_recipient_limit"), support_class::implemented);
  EXPECT_EQ(level("relay_delivery_slot_cost"), support_class::warned);
  EXPECT_EQ(level("relay_recipient_limit"), support_class::warned);
  EXPECT_EQ(level("relay_destination_rate_delay"), support_class::refused);
  EXPECT_EQ(level("relay_transport_rate_delay"), support_class::refused);
  EXPECT_EQ(level("maildrop_time_limit"), support_class::warned);
  EXPECT_EQ(level("maildrop_destination_concurrency_limit"), support_class::refused);
  EXPECT_FALSE(classify("nosuch_destination_concurrency_limit", p));  // no such service
}

TEST(Support, TlsParametersBelongToRelayTls) {
  parameters p;
  for (const char* n : {"smtpd_tls_security_level", "smtpd_tls_auth_only", "smtp_tls_policy_maps",
                        "tls_high_cipherlist", "smtpd_tls_wrappermode"}) {
    EXPECT_EQ(classify(n, p)->level, support_class::implemented) << n;
  }
  EXPECT_EQ(classify("lmtp_tls_security_level", p)->level, support_class::refused);
  EXPECT_EQ(classify("smtpd_tls_fingerprint_digest", p)->level, support_class::warned);
}

TEST(Support, RefusedInMainCfIsFatalWithFileAndLine) {
  temp_dir d;
  d.write("main.cf", "myhostname = relay.example.com\nheader_checks = regexp:/etc/x\n");
  d.write("master.cf", "smtp inet n - y - - smtpd\n");
  auto c = load(d.path(), test_host());
  EXPECT_FALSE(c.ok());
  auto ds = of(c, "header_checks");
  ASSERT_EQ(ds.size(), 1u) << joined(c);
  EXPECT_EQ(ds[0]->level, diagnostic::severity::fatal);
  EXPECT_EQ(ds[0]->to_string(),
            (d.path() / "main.cf").string() +
                ":2: fatal: header_checks = regexp:/etc/x is not implemented by relaylab and "
                "would change what the relay promises (header/body checks are not "
                "implemented); remove it or set it to its default \"\"");
}

TEST(Support, RefusedInMasterCfOverrideIsFatalAtMasterCfLine) {
  temp_dir d;
  d.write("main.cf", "smtpd_milters =\n");
  d.write("master.cf",
          "smtp inet n - y - - smtpd\n"
          "submission inet n - y - - smtpd\n"
          "  -o smtpd_sasl_auth_enable=yes\n"
          "  -o smtpd_milters=inet:127.0.0.1:8891\n");
  auto c = load(d.path(), test_host());
  EXPECT_FALSE(c.ok());
  auto ds = of(c, "smtpd_milters");
  ASSERT_EQ(ds.size(), 1u) << joined(c);
  EXPECT_EQ(ds[0]->level, diagnostic::severity::fatal);
  EXPECT_EQ(ds[0]->file, (d.path() / "master.cf").string());
  EXPECT_EQ(ds[0]->line, 2);
  EXPECT_NE(ds[0]->message.find("milters are not implemented"), std::string::npos);
}

TEST(Support, WarnedGivesAWarningAndLoadingContinues) {
  temp_dir d;
  d.write("main.cf", "myhostname = relay.example.com\n\ndaemon_timeout = 1h\nbiff = no\n");
  d.write("master.cf", "smtp inet n - y - - smtpd\n  -o smtpd_client_port_logging=yes\n");
  auto c = load(d.path(), test_host());
  EXPECT_TRUE(c.ok()) << joined(c);
  ASSERT_EQ(c.diagnostics.size(), 3u) << joined(c);
  EXPECT_EQ(c.diagnostics[0].to_string(),
            (d.path() / "main.cf").string() +
                ":3: warning: daemon_timeout is not implemented by relaylab; ignored (process, "
                "IPC or internal service tuning)");
  EXPECT_EQ(c.diagnostics[1].parameter, "biff");
  EXPECT_EQ(c.diagnostics[1].line, 4);
  EXPECT_EQ(c.diagnostics[2].parameter, "smtpd_client_port_logging");
  EXPECT_EQ(c.diagnostics[2].file, (d.path() / "master.cf").string());
  EXPECT_EQ(c.diagnostics[2].line, 1);
  for (const auto& x : c.diagnostics) EXPECT_EQ(x.level, diagnostic::severity::warning);
}

TEST(Support, DefaultValuesAreAcceptedWhateverTheirSpelling) {
  temp_dir d;
  d.write("main.cf",
          "compatibility_level = 3.6\n"
          "header_checks =\n"
          "smtputf8_enable = yes\n"
          "soft_bounce = No\n"
          "delay_warning_time = 0h\n"
          "smtpd_milters = \n"
          "message_drop_headers = bcc content-length, resent-bcc,return-path\n"
          "smtp_sasl_tls_security_options = $smtp_sasl_security_options\n"
          "daemon_timeout = 18000s\n"
          "smtpd_sasl_tls_security_options = noanonymous\n");
  d.write("master.cf",
          "smtp inet n - y - - smtpd\n  -o content_filter=\n"
          "relay unix - - y - - smtp\n  -o syslog_name=postfix\n");
  auto c = load(d.path(), test_host());
  EXPECT_TRUE(c.ok()) << joined(c);
  EXPECT_TRUE(c.diagnostics.empty()) << joined(c);
}

TEST(Support, ARefusedValueThatIsWhatRelaylabDoesIsAccepted) {
  // Debian's postinst writes mailbox_size_limit = 0: no limit, which is what relaylab's local
  // delivery does. Any real limit is still refused.
  temp_dir d;
  d.write("main.cf", "mailbox_size_limit = 0\n");
  d.write("master.cf", "smtp inet n - y - - smtpd\n");
  auto c = load(d.path(), test_host());
  EXPECT_TRUE(c.ok()) << joined(c);
  EXPECT_TRUE(c.diagnostics.empty()) << joined(c);
  d.write("main.cf", "mailbox_size_limit = 1000000\n");
  auto limited = load(d.path(), test_host());
  EXPECT_FALSE(limited.ok());
  ASSERT_EQ(limited.diagnostics.size(), 1u) << joined(limited);
  EXPECT_EQ(limited.diagnostics[0].line, 1);
  EXPECT_EQ(limited.diagnostics[0].parameter, "mailbox_size_limit");
}

TEST(Support, RawParametersCompareTheirText) {
  // smtpd_reject_footer is expanded per reply: $client_address is not "empty".
  temp_dir d;
  d.write("main.cf", "smtpd_reject_footer = $client_address\n");
  d.write("master.cf", "smtp inet n - y - - smtpd\n");
  auto c = load(d.path(), test_host());
  EXPECT_FALSE(c.ok()) << joined(c);
}

TEST(Support, OverridesOnServicesRelaylabDoesNotConfigureAreNotSilent) {
  // relaylab reads -o only on inet smtpd services; elsewhere main.cf's value is used.
  temp_dir d;
  d.write("main.cf", "");
  d.write("master.cf",
          "smtp inet n - y - - smtpd\n"
          "relay unix - - y - - smtp\n  -o smtp_helo_name=other.example\n"
          "  -o syslog_name=postfix/relay\n  -o smtp_tls_security_level=may\n");
  auto c = load(d.path(), test_host());
  EXPECT_FALSE(c.ok());
  auto helo = of(c, "smtp_helo_name");
  ASSERT_EQ(helo.size(), 1u) << joined(c);
  EXPECT_EQ(helo[0]->level, diagnostic::severity::fatal);
  EXPECT_EQ(helo[0]->line, 2);
  EXPECT_TRUE(of(c, "smtp_tls_security_level").empty()) << joined(c);  // relay/tls reads it
  auto name = of(c, "syslog_name");
  ASSERT_EQ(name.size(), 1u) << joined(c);
  EXPECT_EQ(name[0]->level, diagnostic::severity::warning);
}

TEST(Support, DebianInstalledMainCfStartsUnchanged) {
  // What postfix.postinst writes on Debian 12, mailbox_size_limit = 0 included (see
  // ARefusedValueThatIsWhatRelaylabDoesIsAccepted): no fatal diagnostic.
  const auto dir = std::filesystem::path(testdata("debian-installed"));
  ASSERT_GT(line_of(dir / "main.cf", "mailbox_size_limit"), 0);
  auto c = load(dir, test_host());
  EXPECT_TRUE(c.ok()) << joined(c);
  for (const auto& d : c.diagnostics)
    EXPECT_NE(d.level, diagnostic::severity::fatal) << d.file << ":" << d.line << ": " << d.message;
}

}  // namespace
}  // namespace relaylab::config
