// Loading whole directories: Debian's stock files, postconf's name warnings, SASL config.
#include <gtest/gtest.h>

#include <algorithm>

#include "relay/config/config.hpp"
#include "relay/config/test_util.hpp"

namespace relaylab::config {
namespace {

using test::temp_dir;
using test::testdata;

host_environment test_host() {
  host_environment env;
  env.hostname = "relay";
  env.interface_networks = {"127.0.0.1/8", "172.31.5.10/20", "::1/128"};
  return env;
}

std::vector<std::string> messages(const configuration& c) {
  std::vector<std::string> out;
  for (const auto& d : c.diagnostics) out.push_back(d.to_string());
  return out;
}

std::string joined(const configuration& c) {
  std::string out;
  for (const auto& m : messages(c)) out += m + "\n";
  return out;
}

TEST(Load, DebianStockFilesOnlyWarnAboutWhatRelaylabIgnores) {
  auto c = load(testdata("debian"), test_host());
  EXPECT_TRUE(c.ok());
  const std::string main = testdata("debian") + "/main.cf";
  const std::string master = testdata("debian") + "/master.cf";
  EXPECT_EQ(messages(c),
            (std::vector<std::string>{
                main + ":10: warning: biff is not implemented by relaylab; ignored (local "
                       "delivery detail that does not change where mail goes)",
                main + ":18: warning: readme_directory is not implemented by relaylab; ignored "
                       "(Postfix program, file or directory location relaylab does not use)",
                master + ":67: warning: syslog_name = postfix/$service_name in service relay "
                         "(unix smtp) is not implemented by relaylab; ignored (relaylab reads -o "
                         "overrides only on inet smtpd services; this one only names log lines)",
            }));
  EXPECT_EQ(c.main.get("compatibility_level"), "3.6");
  EXPECT_EQ(c.main.get("smtpd_banner"), "relay.localdomain ESMTP Postfix (Debian/GNU)");
  EXPECT_FALSE(c.main.get_bool("append_dot_mydomain"));
  EXPECT_EQ(c.main.get("mynetworks_style"), "host");
  EXPECT_EQ(c.main.get("mynetworks"), "127.0.0.1/32 172.31.5.10/32 [::1]/128");
  EXPECT_EQ(c.main.get("smtpd_relay_restrictions"),
            "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination");
  EXPECT_EQ(c.main.get("config_directory"), testdata("debian"));
  ASSERT_EQ(c.services.size(), 1u);  // only "smtp inet ... smtpd" is active
  EXPECT_EQ(c.services[0].name, "smtp");
  EXPECT_EQ(c.services[0].listen_port, 25);
  EXPECT_GE(c.all_services.size(), 20u);
  EXPECT_TRUE(c.main.is_known("relay_destination_concurrency_limit"));
  EXPECT_TRUE(c.main.is_known("maildrop_time_limit"));
  EXPECT_EQ(c.sasl_config_path(), std::filesystem::path(testdata("debian")) / "sasl");
}

TEST(Load, PostfixDistFilesOnlyWarn) {
  auto c = load(testdata("dist"), test_host());
  EXPECT_TRUE(c.ok()) << joined(c);
  for (const auto& d : c.diagnostics) {
    EXPECT_NE(d.message.find("is not implemented by relaylab; ignored"), std::string::npos)
        << d.to_string();
  }
  EXPECT_EQ(c.main.get("compatibility_level"), "3.7");  // main.cf.dist sets it
}

TEST(Load, SampleRelay) {
  auto c = load(testdata("sample"), test_host());
  ASSERT_EQ(c.diagnostics.size(), 1u) << joined(c);
  EXPECT_EQ(c.diagnostics[0].parameter, "syslog_name");  // on the relay unix service
  EXPECT_EQ(c.diagnostics[0].level, diagnostic::severity::warning);
  ASSERT_EQ(c.services.size(), 4u);
  EXPECT_EQ(c.services[1].name, "submission");
  EXPECT_EQ(c.services[1].listen_port, 587);
  EXPECT_EQ(c.services[2].listen_host, "127.0.0.1");
  EXPECT_EQ(c.services[2].listen_port, 2525);
  EXPECT_EQ(c.services[3].listen_host, "::1");
  auto sub = c.main.with_overrides(c.services[1].overrides);
  EXPECT_EQ(sub.get_list("smtpd_client_restrictions"),
            (std::vector<std::string>{"permit_sasl_authenticated", "reject"}));
  EXPECT_EQ(sub.get("smtpd_tls_security_level"), "encrypt");
  EXPECT_EQ(c.main.get("smtpd_tls_security_level"), "may");
  EXPECT_EQ(c.main.get("smtpd_banner"), "relay.example.com ESMTP Postfix (has relayhost, modern)");
  EXPECT_EQ(c.main.get_time("smtpd_timeout"), std::chrono::minutes(5));
  EXPECT_EQ(c.main.get_size("message_size_limit"), 20480000u);
}

TEST(Load, MissingMasterCfIsFatalMissingMainCfIsNot) {
  temp_dir d;
  auto c = load(d.path(), test_host());
  EXPECT_FALSE(c.ok());
  ASSERT_EQ(c.diagnostics.size(), 1u);
  EXPECT_NE(c.diagnostics[0].to_string().find("master.cf: fatal: cannot open"), std::string::npos);
  d.write("master.cf", "smtp inet n - y - - smtpd\n");
  auto c2 = load(d.path(), test_host());
  EXPECT_TRUE(c2.ok());
  EXPECT_EQ(c2.services.size(), 1u);
}

// Mirrors what `postconf -c DIR -n` prints for the same files (observed with Postfix 3.7.11).
TEST(Load, UnusedAndUndefinedParametersWarnLikePostconf) {
  temp_dir d;
  d.write("main.cf",
          "compatibility_level = 3.6\n"
          "foo = bar\n"
          "baz = 1\n"
          "x = $baz\n"
          "process_id = 5\n"
          "smtpd_restriction_classes = cls1\n"
          "cls1 = permit\n"
          "cls2 = reject\n"
          "relay_time_limit = 5\n"
          "smtpd_banner = $myhostname $qqq\n"
          "default_rbl_reply = $client_address\n"
          "mua_client_restrictions = permit_sasl_authenticated, reject\n"
          "alias_maps = ldap:myldap\n"
          "myldap_server_host = ldap.example.com\n");
  d.write("master.cf",
          "smtp inet n - y - - smtpd\n"
          "submission inet n - y - - smtpd\n"
          "  -o smtpd_client_restrictions=$mua_client_restrictions\n"
          "  -o zzz=$undefparam\n"
          "  -o submission_foo=1\n"
          "relay unix - - y - - smtp\n");
  auto c = load(d.path(), test_host());
  EXPECT_TRUE(c.ok()) << joined(c);
  std::string main = (d.path() / "main.cf").string(), master = (d.path() / "master.cf").string();
  std::vector<std::string> want = {
      master +
          ":2: warning: undefined parameter: undefparam (referenced as $undefparam but "
          "never set)",
      main + ":5: warning: read-only parameter assignment: process_id=5 (Postfix ignores it)",
      main + ":10: warning: undefined parameter: qqq (referenced as $qqq but never set)",
      main +
          ":11: warning: default_rbl_reply is not implemented by relaylab; ignored (only used "
          "by restrictions relaylab does not implement (reject_unverified_*, RBL, policy "
          "services, client certificates, MX backup, reject_unknown_*))",
      main +
          ":8: warning: unused parameter: cls2=reject (not a Postfix 3.7 parameter, and not "
          "referenced as $cls2)",
      main +
          ":2: warning: unused parameter: foo=bar (not a Postfix 3.7 parameter, and not "
          "referenced as $foo)",
      main +
          ":9: warning: unused parameter: relay_time_limit=5 (not a Postfix 3.7 parameter, "
          "and not referenced as $relay_time_limit)",
      main +
          ":4: warning: unused parameter: x=$baz (not a Postfix 3.7 parameter, and not "
          "referenced as $x)",
      master +
          ":2: warning: unused parameter: zzz=$undefparam (in service submission; not a "
          "Postfix 3.7 parameter, and not referenced as $zzz)",
      master +
          ":2: warning: unused parameter: submission_foo=1 (in service submission; not a "
          "Postfix 3.7 parameter, and not referenced as $submission_foo)",
  };
  auto got = messages(c);
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  EXPECT_FALSE(c.main.is_set("process_id"));
}

TEST(Load, TypeErrorsFromMainAndMasterAreFatal) {
  temp_dir d;
  d.write("main.cf", "smtpd_sasl_auth_enable = maybe\n");
  d.write("master.cf",
          "smtp inet n - y - - smtpd\nsubmission inet n - y - - smtpd\n"
          "  -o smtpd_recipient_limit=many\n");
  auto c = load(d.path(), test_host());
  EXPECT_FALSE(c.ok());
  auto m = messages(c);
  ASSERT_EQ(m.size(), 2u) << joined(c);
  EXPECT_EQ(m[0], (d.path() / "main.cf").string() +
                      ":1: fatal: bad boolean configuration: smtpd_sasl_auth_enable = maybe "
                      "(expected yes or no)");
  EXPECT_EQ(m[1], (d.path() / "master.cf").string() +
                      ":2: fatal: bad numerical configuration: smtpd_recipient_limit = many "
                      "(expected an integer)");
}

TEST(Load, ServicesHoldOnlyInetSmtpd) {
  temp_dir d;
  d.write("master.cf",
          "smtp inet n - y - - postscreen\nsmtpd pass - - y - - smtpd\n"
          "2525 inet n - n - - smtpd\nlocal unix - n n - - local\n");
  auto c = load(d.path(), test_host());
  ASSERT_EQ(c.services.size(), 1u);
  EXPECT_EQ(c.services[0].listen_port, 2525);
  EXPECT_EQ(c.all_services.size(), 4u);
}

TEST(Load, SaslConfigPathFromParameter) {
  temp_dir d;
  d.write("main.cf", "cyrus_sasl_config_path = /opt/sasl\n");
  d.write("master.cf", "smtp inet n - y - - smtpd\n");
  auto c = load(d.path(), test_host());
  EXPECT_EQ(c.sasl_config_path(), std::filesystem::path("/opt/sasl"));
}

TEST(SaslConfig, ReadsKeyValueLines) {
  temp_dir d;
  d.write("smtpd.conf",
          "# Cyrus SASL for Postfix\npwcheck_method: auxprop\n  auxprop_plugin:   sasldb  \n\n"
          "MECH_LIST: PLAIN LOGIN\nsasldb_path: /etc/sasldb2\n");
  std::vector<diagnostic> diags;
  auto cfg = load_sasl_app_config(d.path() / "smtpd.conf", diags);
  ASSERT_TRUE(cfg.has_value());
  EXPECT_TRUE(diags.empty());
  EXPECT_EQ(cfg->values.at("pwcheck_method"), "auxprop");
  EXPECT_EQ(cfg->values.at("auxprop_plugin"), "sasldb");
  EXPECT_EQ(cfg->values.at("mech_list"), "PLAIN LOGIN");  // keys fold to lower case
  EXPECT_EQ(cfg->values.at("sasldb_path"), "/etc/sasldb2");
  EXPECT_EQ(cfg->file, (d.path() / "smtpd.conf").string());
}

TEST(SaslConfig, ARepeatedKeyKeepsItsFirstValueAsLibsasl2Does) {
  temp_dir d;
  d.write("smtpd.conf", "auxprop_plugin: sasldb sql\nAuxprop_Plugin: later\nmech_list:PLAIN\n");
  std::vector<diagnostic> diags;
  auto cfg = load_sasl_app_config(d.path() / "smtpd.conf", diags);
  ASSERT_TRUE(cfg.has_value());
  EXPECT_EQ(cfg->values.at("auxprop_plugin"), "sasldb sql");
  EXPECT_EQ(cfg->values.at("mech_list"), "PLAIN");
}

TEST(SaslConfig, ErrorsNameFileAndLine) {
  temp_dir d;
  d.write("smtpd.conf", "pwcheck_method: auxprop\nmech_list PLAIN\nsasldb_path:\n");
  std::vector<diagnostic> diags;
  auto cfg = load_sasl_app_config(d.path() / "smtpd.conf", diags);
  EXPECT_FALSE(cfg.has_value());
  ASSERT_EQ(diags.size(), 2u);
  std::string f = (d.path() / "smtpd.conf").string();
  EXPECT_EQ(diags[0].to_string(), f + ":2: fatal: bad SASL configuration line \"mech_list "
                                      "PLAIN\" (expected \"key: value\", key of letters, "
                                      "digits, - and _)");
  EXPECT_EQ(diags[1].to_string(),
            f + ":3: fatal: empty value for SASL option sasldb_path (expected \"sasldb_path: "
                "value\")");
}

TEST(SaslConfig, MissingFileIsReported) {
  std::vector<diagnostic> diags;
  auto cfg = load_sasl_app_config("/nonexistent/relaylab/smtpd.conf", diags);
  EXPECT_FALSE(cfg.has_value());
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_NE(diags[0].message.find("cannot open"), std::string::npos);
}

TEST(HostEnvironment, FromSystemHasLoopback) {
  auto env = host_environment::from_system();
  EXPECT_FALSE(env.hostname.empty());
  EXPECT_NE(std::find(env.interface_networks.begin(), env.interface_networks.end(), "127.0.0.1/8"),
            env.interface_networks.end());
}

}  // namespace
}  // namespace relaylab::config
