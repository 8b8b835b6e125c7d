#include "relay/sasl/test_support.hpp"

#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

namespace relaylab::sasl::test {

namespace {
std::string quote(std::string_view s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}
}  // namespace

sasl_dir::sasl_dir(std::string_view mech_list, bool name_auxprop_plugin) {
  char tmpl[] = "/tmp/relaylab-sasl-XXXXXX";
  const char* d = ::mkdtemp(tmpl);
  if (d == nullptr) throw std::runtime_error("mkdtemp failed");
  dir = d;
  sasldb = dir + "/sasldb2";
  std::ofstream conf(dir + "/smtpd.conf");
  conf << "pwcheck_method: auxprop\n"
       << (name_auxprop_plugin ? "auxprop_plugin: sasldb\n" : "") << "mech_list: " << mech_list
       << "\n"
       << "sasldb_path: " << sasldb << "\n";
}

sasl_dir::~sasl_dir() {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

const sasl_dir& process_dir() {
  // Destroyed at exit (removing the directory); every library handle is gone by then.
  static const auto d = [] {
    auto p = std::make_unique<sasl_dir>(full_mech_list);
    const std::string out = saslpasswd2(p->sasldb, "example.com", "smtp-auth", "pass");
    if (!out.empty()) throw std::runtime_error("saslpasswd2: " + out);
    return p;
  }();
  return *d;
}

std::shared_ptr<server_library> process_library(std::string_view user_realm,
                                                security_options security) {
  server_config c;
  c.config_path = process_dir().dir;
  c.server_fqdn = "relay.example.com";
  c.user_realm = std::string(user_realm);
  c.security = security;
#ifdef RELAYLAB_SASL_CYRUS_READER
  c.keep_sasldb_open = false;  // the same tests against Cyrus's own sasldb plugin
#endif
  std::string error;
  auto lib = server_library::init(c, error);
  EXPECT_TRUE(lib) << error;
  return lib;
}

std::string saslpasswd2(const std::string& file, std::string_view realm, std::string_view user,
                        std::string_view password) {
  const std::string out_file = file + ".out";
  const std::string cmd = "/usr/sbin/saslpasswd2 -p -f " + quote(file) + " -c -u " + quote(realm) +
                          " " + quote(user) + " >" + quote(out_file) + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "w");
  if (p == nullptr) return "popen failed";
  ::fwrite(password.data(), 1, password.size(), p);
  const int status = ::pclose(p);
  std::ifstream in(out_file);
  std::string out((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(out_file);
  if (status != 0) return "exit status " + std::to_string(status) + ": " + out;
  return {};
}

std::vector<std::string> sasldblistusers2(const std::string& file) {
  const std::string cmd = "/usr/sbin/sasldblistusers2 -f " + quote(file) + " 2>&1";
  std::vector<std::string> lines;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return lines;
  char buf[4096];
  for (int i = 0; i < 10000 && ::fgets(buf, sizeof buf, p) != nullptr; ++i) {
    std::string l(buf);
    while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
    lines.push_back(l);
  }
  ::pclose(p);
  return lines;
}

std::string plain(std::string_view authzid, std::string_view user, std::string_view pass) {
  std::string s(authzid);
  s += '\0';
  s += user;
  s += '\0';
  s += pass;
  return s;
}

}  // namespace relaylab::sasl::test
