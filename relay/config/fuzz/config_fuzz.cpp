// libFuzzer target: the main.cf and master.cf readers (relay/config) and everything a start-up
// does with their text before any socket opens: $-expansion of every parameter set, type
// validation, the support classification (implemented / warned / refused) and the per-service
// -o overrides.
//
// Input: 1 byte, then the text. Bit 0 picks main.cf or master.cf; with bit 1 the text is split
// at the first NUL into a main.cf and a master.cf read together. Checked beyond the sanitizers:
// every diagnostic names the file and a line inside it, and an expansion stays within
// expansion_bytes_max.
#include "fuzz/fuzz_input.hpp"
#include "relay/config/config.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::config {
namespace {

[[noreturn]] void fail(const char* what, std::string_view detail) {
  fuzz::fail("config_fuzz", what, detail);
}

void check_diagnostics(const std::vector<diagnostic>& diags, std::string_view text) {
  const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
  for (const auto& d : diags) {
    if (d.file.empty()) fail("diagnostic without a file", d.message);
    if (d.line < 0 || d.line > lines) fail("diagnostic line outside the file", d.message);
    if (d.message.empty()) fail("diagnostic without a message", d.file);
  }
}

void exercise(const parameters& p) {
  for (const auto& name : p.set_names()) {
    const expansion x = p.expand_parameter(name);
    if (x.value.size() > parameters::expansion_bytes_max)
      fail("expansion over expansion_bytes_max", name);
    (void)p.get_list(name);
    (void)classify(name, p);
  }
  (void)p.validate();
  (void)check_support(p);
}

void run(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  std::string_view text = in.rest();
  std::string_view master_text;
  if (mode & 2u) {
    const auto nul = text.find('\0');
    if (nul != std::string_view::npos) {
      master_text = text.substr(nul + 1);
      text = text.substr(0, nul);
    }
  } else if (mode & 1u) {
    master_text = text;
    text = {};
  }

  host_environment env;
  env.hostname = "relay.example.com";
  env.interface_networks = {"192.0.2.44/24", "::1/128"};
  parameters p(env);
  std::vector<diagnostic> diags;
  parse_main_cf(text, "main.cf", p, diags);
  check_diagnostics(diags, text);
  exercise(p);

  if (master_text.empty()) return;
  std::vector<diagnostic> mdiags;
  const auto services = parse_master_cf(master_text, "master.cf", mdiags);
  check_diagnostics(mdiags, master_text);
  // Every service's support check; the full exercise for the services with -o overrides
  // (the others see main.cf's parameters, already exercised), at most eight of them.
  int overridden = 0;
  for (const auto& svc : services) {
    (void)check_service_support(p, svc);
    if (svc.overrides.empty() || ++overridden > 8) continue;
    exercise(p.with_service_overrides(svc));
  }
}

}  // namespace
}  // namespace relaylab::config

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  relaylab::config::run(data, size);
  return 0;
}
