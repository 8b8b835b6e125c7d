// relaylab sasldb set --file F --realm R USER   (password from standard input)
// Writes the same store as Debian's `saslpasswd2 -p -f F -c -u R USER`.
#include "harness/cli/commands.hpp"
#include "relay/sasl/sasl.hpp"

#include <iostream>
#include <memory>
#include <string>

namespace relaylab::cli {

namespace {
struct sasldb_args {
  std::string file;
  std::string realm;
  std::string user;
};

// Like saslpasswd2 -p: one line from stdin, without its newline; bounded.
bool read_password(std::string& out) {
  constexpr std::size_t password_bytes_max = 1024;
  out.clear();
  for (int ch; (ch = std::cin.get()) != EOF && ch != '\n';) {
    if (out.size() >= password_bytes_max) return false;
    out.push_back(static_cast<char>(ch));
  }
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return true;
}
}  // namespace

subcommand add_sasldb(CLI::App& root) {
  auto args = std::make_shared<sasldb_args>();
  subcommand c;
  c.app = root.add_subcommand("sasldb", "Manage Cyrus SASL sasldb users");
  c.app->require_subcommand(1);
  auto* set = c.app->add_subcommand("set", "Create or replace USER (password from stdin)");
  set->add_option("--file,-f", args->file, "sasldb file (sasldb_path)")->required();
  set->add_option("--realm,-u", args->realm, "user realm, e.g. example.com")->required();
  set->add_option("user", args->user, "user name without realm")->required();
  c.run = [args, set] {
    if (!set->parsed()) return exit_usage;
    std::string password;
    if (!read_password(password)) {
      std::cerr << "relaylab sasldb set: password too long\n";
      return exit_usage;
    }
    std::string error;
    if (!sasl::set_sasldb_password(args->file, args->user, args->realm, password, error)) {
      std::cerr << "relaylab sasldb set: " << error << "\n";
      return exit_failure;
    }
    return exit_ok;
  };
  return c;
}

}  // namespace relaylab::cli
