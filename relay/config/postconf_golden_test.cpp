// Golden check against the real Postfix: `postconf -c DIR -hx NAME` must print what
// parameters::get() computes, for the sample relay config and the Debian stock files.
// A missing postconf is a failure: Postfix is part of the build environment.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>

#include "relay/config/config.hpp"
#include "relay/config/test_util.hpp"

namespace relaylab::config {
namespace {

using test::temp_dir;
using test::testdata;

// postconf folds whitespace when it prints a value; compare the folded forms.
std::string fold(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::vector<std::string> postconf(const std::string& dir, const std::vector<std::string>& names,
                                  const std::string& flags = "-hx") {
  std::string cmd = "postconf -c '" + dir + "' " + flags;
  for (const auto& n : names) cmd += " " + n;
  cmd += " 2>/dev/null";
  std::vector<std::string> lines;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return lines;
  std::string cur;
  int c;
  while ((c = std::fgetc(f)) != EOF) {
    if (c == '\n') {
      lines.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(c);
    }
  }
  int status = ::pclose(f);
  EXPECT_EQ(status, 0) << "postconf failed (is Postfix installed?): " << cmd;
  return lines;
}

const std::vector<std::string> golden_names = {"compatibility_level",
                                               "myhostname",
                                               "mydomain",
                                               "myorigin",
                                               "mydestination",
                                               "mynetworks_style",
                                               "mynetworks",
                                               "inet_interfaces",
                                               "smtpd_banner",
                                               "smtpd_relay_restrictions",
                                               "smtpd_recipient_restrictions",
                                               "smtpd_client_restrictions",
                                               "relay_domains",
                                               "smtpd_relay_before_recipient_restrictions",
                                               "smtputf8_enable",
                                               "append_dot_mydomain",
                                               "smtpd_sasl_auth_enable",
                                               "smtpd_sasl_path",
                                               "smtpd_sasl_security_options",
                                               "broken_sasl_auth_clients",
                                               "message_size_limit",
                                               "smtpd_timeout",
                                               "smtpd_tls_security_level",
                                               "virtual_alias_domains",
                                               "delay_warning_time",
                                               "smtp_helo_name",
                                               "relayhost",
                                               "maximal_queue_lifetime",
                                               "proxy_read_maps",
                                               "smtpd_helo_restrictions",
                                               "alias_maps",
                                               "local_recipient_maps",
                                               "default_database_type",
                                               "smtpd_tls_session_cache_database",
                                               "address_verify_map",
                                               "relay_destination_concurrency_limit",
                                               "smtpd_reject_footer",
                                               "smtp_tls_CApath",
                                               "mail_version",
                                               "config_directory",
                                               "queue_directory",
                                               "smtpd_forbid_bare_newline",
                                               "smtpd_discard_ehlo_keywords",
                                               "lmtp_tls_loglevel",
                                               "postscreen_helo_required",
                                               "smtpd_sasl_local_domain",
                                               "smtpd_error_sleep_time"};

void compare_with_postconf(const std::string& dir) {
  auto c = load(dir, host_environment::from_system());
  auto want = postconf(dir, golden_names);
  ASSERT_EQ(want.size(), golden_names.size()) << "postconf -c " << dir << " -hx ...";
  for (std::size_t i = 0; i < golden_names.size(); ++i) {
    EXPECT_EQ(fold(c.main.get(golden_names[i])), fold(want[i])) << golden_names[i];
  }
}

TEST(PostconfGolden, SampleRelayExpandedValues) { compare_with_postconf(testdata("sample")); }

TEST(PostconfGolden, DebianStockExpandedValues) { compare_with_postconf(testdata("debian")); }

TEST(PostconfGolden, RawValuesOfEveryBuiltinDefault) {
  // `postconf -d` with an empty directory prints every built-in default unexpanded.
  temp_dir d;
  d.write("master.cf", "");
  auto lines = postconf(d.path().string(), {}, "-d");
  ASSERT_GT(lines.size(), 800u);
  parameters p(host_environment::from_system());
  std::size_t compared = 0;
  for (const auto& line : lines) {
    auto eq = line.find(" =");
    ASSERT_NE(eq, std::string::npos) << line;
    std::string name = line.substr(0, eq);
    std::string value = eq + 3 <= line.size() ? line.substr(eq + 3) : "";
    ASSERT_TRUE(p.is_known(name)) << name;
    if (name == "process_id" || name == "process_name") continue;  // postconf's own
    EXPECT_EQ(fold(*p.raw(name)), fold(value)) << name;
    ++compared;
  }
  EXPECT_EQ(compared + 2, parameters::builtin_names().size());
}

TEST(PostconfGolden, MynetworksStylesAndLevels) {
  // Computed defaults under each style and several levels, on this host's real interfaces.
  for (const char* main_cf :
       {"mynetworks_style = host\n", "mynetworks_style = subnet\n", "mynetworks_style = class\n",
        "compatibility_level = 2\ninet_protocols = ipv4\n", "compatibility_level = 1\n",
        "inet_interfaces = 127.0.0.1\nmynetworks_style = subnet\n",
        "inet_interfaces = loopback-only\n", "myhostname = foo.com\n", "mydomain = ex.org\n",
        // Computed defaults that read themselves back (the fuzzer's stack overflow): Postfix
        // evaluates myhostname while mydomain is still undefined.
        "myhostname = relay.example.co ${mydomain:none}\n", "myhostname = a.$mydomain\n",
        "myhostname = $mydomain\n", "mydomain = x.$myhostname\n"}) {
    temp_dir d;
    d.write("main.cf", main_cf);
    d.write("master.cf", "smtp inet n - y - - smtpd\n");
    std::vector<std::string> names = {
        "mynetworks",    "mynetworks_style", "myhostname",          "mydomain",
        "relay_domains", "smtputf8_enable",  "append_dot_mydomain", "smtpd_relay_restrictions"};
    auto want = postconf(d.path().string(), names);
    auto c = load(d.path(), host_environment::from_system());
    ASSERT_EQ(want.size(), names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      EXPECT_EQ(fold(c.main.get(names[i])), fold(want[i])) << main_cf << names[i];
    }
  }
}

}  // namespace
}  // namespace relaylab::config
