// smtpd_tls_* parameters → server_settings, and the refusals (fail closed, with file:line).
#include "relay/tls/settings.hpp"

#include "relay/tls/client.hpp"
#include "relay/tls/context.hpp"
#include "relay/tls/pki.hpp"
#include "relay/tls/test_files.hpp"

#include <gtest/gtest.h>

namespace relaylab::tls {
namespace {

config::parameters params(std::initializer_list<std::pair<const char*, std::string>> kv) {
  config::parameters p;
  int line = 1;
  for (const auto& [k, v] : kv) p.set(k, v, config::parameters::origin{"main.cf", line++});
  return p;
}

std::string fatals(const std::vector<config::diagnostic>& d) {
  std::string r;
  for (const auto& x : d)
    if (x.level == config::diagnostic::severity::fatal) r += x.to_string() + "\n";
  return r;
}

TEST(TlsSettings, DefaultsAreNoTls) {
  std::vector<config::diagnostic> d;
  auto s = server_settings_from(config::parameters{}, d);
  ASSERT_TRUE(s) << fatals(d);
  EXPECT_EQ(s->level, server_level::none);
  EXPECT_FALSE(s->use_tls());
  EXPECT_FALSE(s->auth_only);
  // Postfix 3.7's defaults: medium grade, no SSLv2/SSLv3.
  EXPECT_NE(s->cipher_list.find("MEDIUM"), std::string::npos);
  EXPECT_FALSE(s->protocols.enabled[0]);
  EXPECT_FALSE(s->protocols.enabled[1]);
  EXPECT_TRUE(s->protocols.enabled[5]);
}

TEST(TlsSettings, LevelsAndLegacySwitches) {
  std::vector<config::diagnostic> d;
  auto s = server_settings_from(
      params({{"smtpd_tls_security_level", "encrypt"}, {"smtpd_tls_cert_file", "/c.pem"}}), d);
  ASSERT_TRUE(s) << fatals(d);
  EXPECT_TRUE(s->enforce_tls());
  ASSERT_EQ(s->key_pairs.size(), 1u);
  EXPECT_EQ(s->key_pairs[0].key_file, "/c.pem");  // key defaults to the cert file

  s = server_settings_from(params({{"smtpd_use_tls", "yes"}, {"smtpd_tls_cert_file", "/c"}}), d);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->level, server_level::may);
  s = server_settings_from(params({{"smtpd_enforce_tls", "yes"}, {"smtpd_tls_cert_file", "/c"}}),
                           d);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->level, server_level::encrypt);
  // The level parameter wins over the legacy switches.
  s = server_settings_from(
      params({{"smtpd_enforce_tls", "yes"}, {"smtpd_tls_security_level", "none"}}), d);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->level, server_level::none);
}

TEST(TlsSettings, VerifyMeansEncryptWithAWarning) {
  std::vector<config::diagnostic> d;
  auto s = server_settings_from(
      params({{"smtpd_tls_security_level", "verify"}, {"smtpd_tls_cert_file", "/c"}}), d);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->level, server_level::encrypt);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].level, config::diagnostic::severity::warning);
  EXPECT_EQ(d[0].line, 1);
}

TEST(TlsSettings, RefusalsNameFileLineAndParameter) {
  struct refusal {
    std::vector<std::pair<const char*, std::string>> kv;
    std::string expected;
  } cases[] = {
      {{{"smtpd_tls_security_level", "dane"}},
       "main.cf:1: fatal: invalid TLS security level: smtpd_tls_security_level = dane"},
      {{{"smtpd_tls_security_level", "encrypt"}},
       "main.cf:1: fatal: smtpd_tls_security_level asks for TLS but no server certificate"},
      {{{"smtpd_tls_wrappermode", "yes"}},
       "main.cf:1: fatal: smtpd_tls_wrappermode asks for TLS but no server certificate"},
      {{{"smtpd_tls_ask_ccert", "yes"}}, "main.cf:1: fatal: smtpd_tls_ask_ccert = yes is not"},
      {{{"smtpd_tls_req_ccert", "yes"}}, "main.cf:1: fatal: smtpd_tls_req_ccert = yes is not"},
      {{{"smtpd_tls_protocols", "!SSLv2, TLSv9"}},
       "main.cf:1: fatal: smtpd_tls_protocols: invalid TLS protocol name: \"TLSv9\""},
      {{{"smtpd_tls_ciphers", "strong"}},
       "main.cf:1: fatal: smtpd_tls_ciphers: invalid cipher grade: \"strong\""},
      {{{"smtpd_tls_eecdh_grade", "none"}},
       "main.cf:1: fatal: smtpd_tls_eecdh_grade = none is not supported"},
      {{{"tls_ssl_options", "NO_TICKET, FROBNICATE"}},
       "main.cf:1: fatal: tls_ssl_options: \"FROBNICATE\" is not supported"},
      {{{"smtpd_tls_dcert_file", "/d.pem"}}, "main.cf:1: fatal: smtpd_tls_dcert_file"},
  };
  for (const auto& c : cases) {
    config::parameters p;
    int line = 1;
    for (const auto& [k, v] : c.kv) p.set(k, v, config::parameters::origin{"main.cf", line++});
    std::vector<config::diagnostic> d;
    EXPECT_FALSE(server_settings_from(p, d)) << c.expected;
    EXPECT_NE(fatals(d).find(c.expected), std::string::npos) << fatals(d);
  }
}

// The host's own certificates (the simulation's) serve only where no certificate file is
// named; a named file always wins, so a config's promise about its certificate holds.
TEST(TlsSettings, SuppliedCertificatesOnlyWhereNoFileIsNamed) {
  const std::vector<key_pair_pem> supplied{{"CHAIN", "KEY"}};
  std::vector<config::diagnostic> d;
  auto s = server_settings_from(params({{"smtpd_tls_security_level", "encrypt"}}), d, supplied);
  ASSERT_TRUE(s) << fatals(d);
  ASSERT_EQ(s->pem_pairs.size(), 1u);
  EXPECT_EQ(s->pem_pairs[0].chain_pem, "CHAIN");
  EXPECT_TRUE(s->key_pairs.empty());

  d.clear();
  s = server_settings_from(params({{"smtpd_tls_security_level", "may"},
                                   {"smtpd_tls_cert_file", "/etc/relay/cert.pem"},
                                   {"smtpd_tls_key_file", "/etc/relay/key.pem"}}),
                           d, supplied);
  ASSERT_TRUE(s) << fatals(d);
  EXPECT_TRUE(s->pem_pairs.empty());
  ASSERT_EQ(s->key_pairs.size(), 1u);
  EXPECT_EQ(s->key_pairs[0].cert_file, "/etc/relay/cert.pem");

  // Without supplied certificates, TLS with no certificate is refused.
  d.clear();
  EXPECT_FALSE(server_settings_from(params({{"smtpd_tls_security_level", "encrypt"}}), d));
  EXPECT_NE(fatals(d).find("no server certificate"), std::string::npos);
}

TEST(TlsSettings, ServerTlsRequested) {
  EXPECT_FALSE(server_tls_requested(config::parameters{}));
  EXPECT_FALSE(server_tls_requested(params({{"smtpd_tls_security_level", "none"}})));
  EXPECT_FALSE(server_tls_requested(
      params({{"smtpd_tls_security_level", "none"}, {"smtpd_use_tls", "yes"}})));
  EXPECT_TRUE(server_tls_requested(params({{"smtpd_tls_security_level", "may"}})));
  EXPECT_TRUE(server_tls_requested(params({{"smtpd_tls_security_level", "Encrypt"}})));
  EXPECT_TRUE(server_tls_requested(params({{"smtpd_use_tls", "yes"}})));
  EXPECT_TRUE(server_tls_requested(params({{"smtpd_enforce_tls", "yes"}})));
  EXPECT_TRUE(server_tls_requested(params({{"smtpd_tls_wrappermode", "yes"}})));
  EXPECT_TRUE(server_tls_requested(params({{"smtpd_tls_security_level", "bogus"}})));
}

TEST(TlsSettings, Protocols) {
  std::string e;
  auto p = parse_protocols(">=TLSv1.2", e);
  EXPECT_TRUE(e.empty());
  EXPECT_FALSE(p.enabled[2]);
  EXPECT_FALSE(p.enabled[3]);
  EXPECT_TRUE(p.enabled[4]);
  EXPECT_TRUE(p.enabled[5]);
  p = parse_protocols("TLSv1.3", e);
  EXPECT_TRUE(e.empty());
  EXPECT_FALSE(p.enabled[4]);
  EXPECT_TRUE(p.enabled[5]);
  p = parse_protocols("!SSLv2:!SSLv3:!TLSv1", e);
  EXPECT_TRUE(e.empty());
  EXPECT_FALSE(p.enabled[2]);
  EXPECT_TRUE(p.enabled[3]);
  parse_protocols("!TLSv1 !TLSv1.1 !TLSv1.2 !TLSv1.3", e);
  EXPECT_NE(e.find("no TLS protocol version left"), std::string::npos);
}

TEST(TlsSettings, MandatoryAppliesAtEncrypt) {
  std::vector<config::diagnostic> d;
  auto s = server_settings_from(params({{"smtpd_tls_security_level", "encrypt"},
                                        {"smtpd_tls_cert_file", "/c"},
                                        {"smtpd_tls_mandatory_protocols", ">=TLSv1.3"},
                                        {"smtpd_tls_mandatory_ciphers", "high"},
                                        {"smtpd_tls_mandatory_exclude_ciphers", "aNULL, RC4"}}),
                                d);
  ASSERT_TRUE(s) << fatals(d);
  EXPECT_FALSE(s->protocols.enabled[4]);
  EXPECT_TRUE(s->protocols.enabled[5]);
  EXPECT_EQ(s->cipher_list.find("MEDIUM"), std::string::npos);
  EXPECT_NE(s->cipher_list.find(":!aNULL:!RC4"), std::string::npos);
}

TEST(TlsSettings, ClientSideLevels) {
  struct {
    const char* level;
    client_level expected;
  } ok_cases[] = {{"none", client_level::none},
                  {"may", client_level::may},
                  {"encrypt", client_level::encrypt},
                  {"verify", client_level::verify},
                  {"secure", client_level::secure}};
  for (const auto& c : ok_cases) {
    std::vector<config::diagnostic> d;
    auto s = client_settings_from(params({{"smtp_tls_security_level", c.level}}), d);
    ASSERT_TRUE(s) << c.level << fatals(d);
    EXPECT_EQ(s->level, c.expected);
  }
  for (const char* level : {"dane", "dane-only", "fingerprint", "bogus"}) {
    std::vector<config::diagnostic> d;
    EXPECT_FALSE(client_settings_from(params({{"smtp_tls_security_level", level}}), d));
    EXPECT_NE(fatals(d).find("main.cf:1: fatal: "), std::string::npos) << level;
  }
  std::vector<config::diagnostic> d;
  auto s = client_settings_from(params({{"smtp_enforce_tls", "yes"}}), d);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->level, client_level::verify);  // smtp_tls_enforce_peername defaults to yes
  for (const char* name : {"smtp_tls_policy_maps", "smtp_tls_cert_file"}) {
    d.clear();
    EXPECT_FALSE(client_settings_from(params({{name, "/x"}}), d)) << name;
    EXPECT_NE(fatals(d).find(std::string("main.cf:1: fatal: ") + name), std::string::npos)
        << fatals(d);
  }
}

TEST(TlsSettings, ClientWrappermodeImpliesEncrypt) {
  // Below encrypt: Postfix's warning, and the level encrypt (no plaintext fallback).
  for (const char* level : {"none", "may"}) {
    std::vector<config::diagnostic> d;
    auto s = client_settings_from(
        params({{"smtp_tls_security_level", level}, {"smtp_tls_wrappermode", "yes"}}), d);
    ASSERT_TRUE(s) << level << fatals(d);
    EXPECT_TRUE(s->wrappermode);
    EXPECT_EQ(s->level, client_level::encrypt) << level;
    ASSERT_EQ(d.size(), 1u) << level;
    EXPECT_EQ(d[0].level, config::diagnostic::severity::warning);
    EXPECT_EQ(d[0].parameter, "smtp_tls_wrappermode");
    EXPECT_EQ(d[0].line, 2);
    EXPECT_NE(d[0].message.find("requires \"smtp_tls_security_level = encrypt\" (or stronger)"),
              std::string::npos)
        << d[0].message;
  }
  for (const char* level : {"encrypt", "verify", "secure"}) {
    std::vector<config::diagnostic> d;
    auto s = client_settings_from(
        params({{"smtp_tls_security_level", level}, {"smtp_tls_wrappermode", "yes"}}), d);
    ASSERT_TRUE(s) << level;
    EXPECT_TRUE(s->wrappermode);
    EXPECT_EQ(to_string(s->level), level);
    EXPECT_TRUE(d.empty()) << fatals(d);
  }
  std::vector<config::diagnostic> d;
  auto s = client_settings_from(params({{"smtp_tls_security_level", "encrypt"}}), d);
  ASSERT_TRUE(s);
  EXPECT_FALSE(s->wrappermode);
}

TEST(TlsContext, LoadsCertificatesAndRejectsMismatches) {
  testing::temp_dir dir;
  authority ca("Relaylab Test CA");
  auto a = ca.issue({"mx.example"});
  auto b = ca.issue({"other.example"}, key_kind::rsa_2048);
  const auto cert = dir.write("a.crt", a.chain_pem);
  const auto key = dir.write("a.key", a.key_pem);
  const auto other_key = dir.write("b.key", b.key_pem);
  const auto both = dir.write("chain.pem", a.key_pem + a.chain_pem + b.key_pem + b.chain_pem);
  std::vector<config::diagnostic> d;
  auto s = server_settings_from(params({{"smtpd_tls_security_level", "may"},
                                        {"smtpd_tls_cert_file", cert},
                                        {"smtpd_tls_key_file", key}}),
                                d);
  ASSERT_TRUE(s);
  std::string error;
  EXPECT_TRUE(server_context::create(*s, error)) << error;

  s->key_pairs[0].key_file = other_key;
  EXPECT_FALSE(server_context::create(*s, error));
  EXPECT_NE(error.find("does not match"), std::string::npos) << error;

  s->key_pairs[0].cert_file = (dir.path() / "missing.crt").string();
  EXPECT_FALSE(server_context::create(*s, error));
  EXPECT_NE(error.find("missing.crt"), std::string::npos) << error;

  // smtpd_tls_chain_files: key, then its chain; two pairs (ECDSA and RSA) in one file.
  s->key_pairs.clear();
  s->chain_files = {both};
  EXPECT_TRUE(server_context::create(*s, error)) << error;
  s->chain_files = {dir.write("bad.pem", a.chain_pem + a.key_pem)};
  EXPECT_FALSE(server_context::create(*s, error));
  EXPECT_NE(error.find("comes before its private key"), std::string::npos) << error;
}

}  // namespace
}  // namespace relaylab::tls
