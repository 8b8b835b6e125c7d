// Test helpers for relay/sasl: temporary SASL config dirs and Debian's sasl2-bin tools.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "relay/sasl/sasl.hpp"

namespace relaylab::sasl::test {

/// A temporary directory with smtpd.conf (auxprop, with "auxprop_plugin: sasldb" unless
/// `name_auxprop_plugin` is false) and a sasldb path; removed on exit.
struct sasl_dir {
  std::string dir;
  std::string sasldb;
  sasl_dir(const sasl_dir&) = delete;
  sasl_dir& operator=(const sasl_dir&) = delete;
  explicit sasl_dir(std::string_view mech_list, bool name_auxprop_plugin = true);
  ~sasl_dir();
};

/// The mech_list used by the process-wide test config (as in the Postfix observations).
inline constexpr std::string_view full_mech_list =
    "PLAIN LOGIN CRAM-MD5 DIGEST-MD5 SCRAM-SHA-1 SCRAM-SHA-256 ANONYMOUS NTLM";

/// One config dir per test process (libsasl2 reads one config per process). Its sasldb holds
/// smtp-auth@example.com / "pass", written by Debian's saslpasswd2.
const sasl_dir& process_dir();
/// A server library on process_dir() with the given per-session settings.
std::shared_ptr<server_library> process_library(std::string_view user_realm = "",
                                                security_options security = {});

/// Runs `saslpasswd2 -p -f FILE -c -u REALM USER` with the password on stdin. "" on success,
/// else the tool's output.
std::string saslpasswd2(const std::string& file, std::string_view realm, std::string_view user,
                        std::string_view password);
/// `sasldblistusers2 -f FILE` output lines.
std::vector<std::string> sasldblistusers2(const std::string& file);

/// PLAIN initial response bytes "authzid\0user\0pass".
std::string plain(std::string_view authzid, std::string_view user, std::string_view pass);

}  // namespace relaylab::sasl::test
