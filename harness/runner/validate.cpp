// Checks a topology's relay configurations before any scenario runs, as `relaylab relay` checks
// its config directory: main.cf, master.cf (each scenario's overrides in place) and smtpd.conf,
// with diagnostics pointing into the topology file.
#include "harness/runner/runner.hpp"

#include "fakes/client/dialogue.hpp"
#include "fakes/dns/dns.hpp"
#include "fakes/mx/script.hpp"
#include "relay/config/config.hpp"
#include "relay/tls/client.hpp"
#include "relay/tls/settings.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace relaylab::runner {

namespace fs = std::filesystem;

namespace {

// Pseudo file names handed to relay/config's parsers, mapped back to the texts they came from.
constexpr const char* main_cf_name = "main.cf";
constexpr const char* main_cf_append_name = "main.cf (scenario override)";
constexpr const char* master_cf_name = "master.cf";

// Checks main.cf and master.cf as config::load() does. With `ov`, the scenario's appended
// main.cf lines and replacement master.cf are checked in place, and only what they cause is
// reported (the relay's own texts are checked once, without an override).
void check_relay_config(const topology::relay_spec& spec, const topology::override_spec* ov,
                        std::vector<topology::diagnostic>& errors,
                        std::vector<topology::diagnostic>& warnings) {
  const bool own_master = ov && ov->master_cf.present;
  const topology::text_source& master = own_master ? ov->master_cf : spec.master_cf;
  std::vector<config::diagnostic> diags;
  config::parameters main;
  config::parse_main_cf(spec.main_cf.text, main_cf_name, main, diags);
  if (ov && ov->main_cf_append.present) {
    config::parse_main_cf(ov->main_cf_append.text, main_cf_append_name, main, diags);
  }
  const auto services = config::parse_master_cf(
      master.present ? master.text : std::string(default_master_cf), master_cf_name, diags);
  for (const auto& svc : services) main.add_service_parameters(svc.name, svc.command);
  auto names = config::check_parameter_names(main, services, main_cf_name, master_cf_name);
  diags.insert(diags.end(), names.begin(), names.end());
  auto checks = main.validate();
  diags.insert(diags.end(), checks.begin(), checks.end());
  for (const auto& svc : services) {
    if (svc.overrides.empty()) continue;
    for (auto& d : main.with_service_overrides(svc).validate()) {
      if (d.file == master_cf_name) diags.push_back(std::move(d));
    }
  }
  auto support = config::check_support(main);
  diags.insert(diags.end(), support.begin(), support.end());
  for (const auto& svc : services) {
    auto d = config::check_service_support(main, svc);
    diags.insert(diags.end(), d.begin(), d.end());
  }
  // TLS values relay/tls refuses (levels, protocols, ciphers ...), as the run would refuse them.
  // The run supplies a certificate where none is named, so only named files are required.
  // Each service reads main.cf's lines again: a line is reported once.
  const std::vector<tls::key_pair_pem> supplied{{"(the run's certificate)", ""}};
  std::vector<config::diagnostic> tls_diags;
  for (const auto& svc : services) {
    if (svc.command != "smtpd" || svc.type != "inet") continue;
    tls::server_settings_from(main.with_service_overrides(svc), tls_diags, supplied);
  }
  tls::client_settings_from(main, tls_diags);
  for (auto& d : tls_diags) {
    const bool seen = std::any_of(diags.begin(), diags.end(), [&](const config::diagnostic& e) {
      return e.file == d.file && e.line == d.line && e.message == d.message;
    });
    if (!seen) diags.push_back(std::move(d));
  }
  for (const auto& d : diags) {
    const topology::text_source* from = nullptr;
    if (d.file == main_cf_name) {
      from = ov ? nullptr : &spec.main_cf;
    } else if (d.file == main_cf_append_name) {
      from = &ov->main_cf_append;
    } else if (d.file == master_cf_name) {
      from = !ov || own_master ? &master : nullptr;
    }
    if (!from) continue;  // the relay's own text: reported by the check without override
    // A duplicate setting is how an override works, not a mistake in it.
    if (ov && d.message.find("overriding earlier entry") != std::string::npos) continue;
    const auto where =
        d.line > 0 ? topology::locate_in(*from, static_cast<std::size_t>(d.line), 1) : from->where;
    const std::string what = (d.file == master_cf_name ? "master.cf: " : "main.cf: ") + d.message;
    auto& out = d.level == config::diagnostic::severity::fatal ? errors : warnings;
    out.push_back({where, what});
  }
}

// smtpd.conf through relay/config's reader (libsasl2's syntax), which reads files only.
void check_smtpd_conf(const topology::text_source& t, std::vector<topology::diagnostic>& errors) {
  if (!t.present) return;
  std::vector<config::diagnostic> diags;
  if (!t.path.empty()) {
    config::load_sasl_app_config(t.path, diags);
  } else {
    char name[] = "/tmp/relaylab-check-smtpd.conf.XXXXXX";
    const int fd = ::mkstemp(name);
    if (fd < 0) return;  // cannot check here; the runner reports it at setup
    ::close(fd);
    std::ofstream(name, std::ios::binary | std::ios::trunc) << t.text;
    config::load_sasl_app_config(name, diags);
    std::error_code ec;
    fs::remove(name, ec);
  }
  for (const auto& d : diags) {
    if (d.level != config::diagnostic::severity::fatal) continue;
    const auto where =
        d.line > 0 ? topology::locate_in(t, static_cast<std::size_t>(d.line), 1) : t.where;
    errors.push_back({where, "smtpd.conf: " + d.message});
  }
}

}  // namespace

void validate(const topology::document& doc, std::vector<topology::diagnostic>& errors) {
  std::vector<topology::diagnostic> warnings;
  validate(doc, errors, warnings);
}

void validate(const topology::document& doc, std::vector<topology::diagnostic>& errors,
              std::vector<topology::diagnostic>& warnings) {
  for (const auto& h : doc.hosts) {
    if (!h.relay) continue;
    check_relay_config(*h.relay, nullptr, errors, warnings);
    check_smtpd_conf(h.relay->smtpd_conf, errors);
    for (const auto& sc : doc.scenarios) {
      for (const auto& o : sc.overrides) {
        if (o.host == h.net.name && (o.main_cf_append.present || o.master_cf.present)) {
          check_relay_config(*h.relay, &o, errors, warnings);
        }
      }
    }
  }
  auto report = [&](const topology::text_source& t, std::size_t line, std::size_t col,
                    const std::string& msg) {
    errors.push_back({topology::locate_in(t, line, col), msg});
  };
  for (const auto& z : doc.zones) {
    fakes::dns::fake_resolver r;
    fakes::dns::zone_error e;
    if (z.present && !r.load(z.text, z.where.file, e)) report(z, e.line, e.column, e.message);
  }
  auto check_script = [&](const topology::text_source& t) {
    if (!t.present) return;
    fakes::mx::parse_error e;
    if (!fakes::mx::parse_script(t.text, t.where.file, e)) report(t, e.line, e.column, e.message);
  };
  for (const auto& h : doc.hosts) {
    for (const auto& m : h.mx) check_script(m.script);
  }
  std::set<std::string> smtpd_confs;
  for (const auto& h : doc.hosts) {
    if (h.relay && h.relay->smtpd_conf.present) smtpd_confs.insert(h.relay->smtpd_conf.text);
  }
  if (smtpd_confs.size() > 1) {
    errors.push_back({doc.hosts.front().where,
                      "relays with different smtpd.conf texts: libsasl2 reads one per process"});
  }
  for (const auto& sc : doc.scenarios) {
    for (const auto& o : sc.overrides) check_script(o.mx_script);
    for (const auto& st : sc.steps) {
      if (st.kind == topology::step_kind::dialogue && st.dialogue.present) {
        fakes::client::dialogue_error e;
        if (!fakes::client::parse_dialogue(st.dialogue.text, st.dialogue.where.file, e)) {
          report(st.dialogue, e.line, e.column, e.message);
        }
      }
      if (st.kind == topology::step_kind::fault && st.fault.kind == topology::fault_kind::dns &&
          st.fault.records.present) {
        fakes::dns::fake_resolver r;
        fakes::dns::zone_error e;
        if (!r.load(st.fault.records.text, st.fault.records.where.file, e)) {
          report(st.fault.records, e.line, e.column, e.message);
        }
      }
    }
  }
}

}  // namespace relaylab::runner
