// Loading a configuration directory, postconf's parameter-name warnings, Cyrus SASL app config,
// and the real host environment.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "relay/config/config.hpp"
#include "relay/config/text.hpp"

namespace relaylab::config {
namespace {

// postconf refuses assignments to these (and Postfix daemons ignore them).
constexpr std::array<std::string_view, 2> read_only_parameters = {"process_id", "process_name"};

// Legacy DBMS client tables whose settings may live in main.cf as <name>_<suffix>.
constexpr std::array<std::string_view, 5> dbms_types = {"ldap", "mysql", "pgsql", "sqlite",
                                                        "memcache"};

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

// Every $name referenced by `text`, in all conditional branches (postconf's scan mode).
void scan_references(std::string_view text, std::vector<std::string>& out, int depth = 0) {
  constexpr int scan_depth_max = 100;
  if (depth > scan_depth_max) return;
  for (std::size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] != '$') continue;
    char n = text[i + 1];
    if (n == '$') {
      ++i;
    } else if (n == '{' || n == '(') {
      char close = n == '{' ? '}' : ')';
      int level = 1;
      std::size_t j = i + 2;
      for (; j < text.size(); ++j) {
        if (text[j] == n) {
          ++level;
        } else if (text[j] == close && --level == 0) {
          break;
        }
      }
      if (j >= text.size()) return;
      std::string_view payload = text.substr(i + 2, j - i - 2);
      std::size_t k = 0;
      while (k < payload.size() && is_name_char(payload[k])) ++k;
      if (k > 0 && (k == payload.size() || payload[k] == '?' || payload[k] == ':')) {
        out.emplace_back(payload.substr(0, k));
        payload.remove_prefix(k);
      }
      scan_references(payload, out, depth + 1);
      i = j;
    } else if (is_name_char(n)) {
      std::size_t j = i + 1;
      while (j < text.size() && is_name_char(text[j])) ++j;
      out.emplace_back(text.substr(i + 1, j - i - 1));
      i = j - 1;
    }
  }
}

std::optional<std::string> read_file(const std::filesystem::path& path, std::string& error) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > config_file_bytes_max) {
    error = "file is larger than " + std::to_string(config_file_bytes_max) + " bytes";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = std::string("cannot open: ") + std::strerror(errno);
    return std::nullopt;
  }
  std::string data;
  data.resize(static_cast<std::size_t>(ec ? 0 : size));
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) {
    error = std::string("read error: ") + std::strerror(errno);
    return std::nullopt;
  }
  return data;
}

}  // namespace

std::vector<diagnostic> check_parameter_names(const parameters& main,
                                              const std::vector<master_service>& services,
                                              const std::string& main_cf_file,
                                              const std::string& master_cf_file) {
  std::vector<diagnostic> out;
  auto warn = [&](const std::string& file, int line, const std::string& name, std::string msg) {
    out.push_back({diagnostic::severity::warning, file, line, name, std::move(msg)});
  };
  auto main_line = [&](const std::string& name) {
    auto o = main.origin_of(name);
    return o && o->file == main_cf_file ? o->line : 0;
  };
  // Names set in main.cf (not by -o: load() keeps those in per-service views).
  std::vector<std::string> main_names;
  for (const auto& n : main.set_names()) {
    auto o = main.origin_of(n);
    if (o && o->file == main_cf_file) main_names.push_back(n);
  }
  auto main_has = [&](std::string_view n) {
    return std::find(main_names.begin(), main_names.end(), n) != main_names.end();
  };
  std::set<std::string, std::less<>> valid_global;
  std::vector<std::set<std::string, std::less<>>> valid_local(services.size());
  auto local_value = [&](std::size_t s, std::string_view n) -> const std::string* {
    const std::string* found = nullptr;
    for (const auto& [k, v] : services[s].overrides) {
      if (k == n) found = &v;
    }
    return found;
  };
  auto flag = [&](const std::string& name, std::optional<std::size_t> scope,
                  const std::string& file, int line, bool warn_undefined) {
    bool supplied = false;
    if (scope && local_value(*scope, name)) {
      supplied = true;
      valid_local[*scope].insert(name);
    } else if (main_has(name)) {
      supplied = true;
      valid_global.insert(name);
    }
    if (!scope) {
      for (std::size_t s = 0; s < services.size(); ++s) {
        if (local_value(s, name)) {
          supplied = true;
          valid_local[s].insert(name);
        }
      }
    }
    if (!supplied && warn_undefined && !main.is_known(name)) {
      warn(file, line, name,
           "undefined parameter: " + name + " (referenced as $" + name + " but never set)");
    }
  };
  auto flag_dbms = [&](std::string_view value) {
    for (const auto& token : split_list(value)) {
      auto colon = token.find(':');
      if (colon == std::string::npos) continue;
      std::string_view type = std::string_view(token).substr(0, colon);
      std::string_view table = std::string_view(token).substr(colon + 1);
      if (std::find(dbms_types.begin(), dbms_types.end(), type) == dbms_types.end()) continue;
      if (table.empty() || table.front() == '/') continue;
      std::string prefix = std::string(table) + "_";
      for (const auto& n : main_names) {
        if (n.compare(0, prefix.size(), prefix) == 0) valid_global.insert(n);
      }
    }
  };
  auto is_read_only = [](std::string_view n) {
    return std::find(read_only_parameters.begin(), read_only_parameters.end(), n) !=
           read_only_parameters.end();
  };

  // Restriction classes name user-defined parameters.
  std::set<std::string, std::less<>> rest_classes;
  for (const auto& n : split_list(main.get("smtpd_restriction_classes"))) {
    rest_classes.insert(n);
    flag(n, std::nullopt, main_cf_file, main_line("smtpd_restriction_classes"), false);
  }
  for (std::size_t s = 0; s < services.size(); ++s) {
    const master_service& svc = services[s];
    if (const std::string* rc = local_value(s, "smtpd_restriction_classes")) {
      for (const auto& n : split_list(main.expand(*rc).value)) {
        flag(n, s, master_cf_file, svc.line, false);
      }
    }
    for (const auto& [k, v] : svc.overrides) {
      if (rest_classes.count(k)) valid_local[s].insert(k);
      if (main.is_known(k) && parameters_is_raw(k)) continue;
      std::vector<std::string> refs;
      scan_references(v, refs);
      for (const auto& r : refs) flag(r, s, master_cf_file, svc.line, true);
      flag_dbms(v);
    }
  }
  // Defaults of parameters left unset may name legacy parameters (virtual_maps, ...).
  for (const auto& n : parameters::builtin_names()) {
    if (main_has(n) || parameters_is_raw(n)) continue;
    std::vector<std::string> refs;
    scan_references(main.default_value(n).value_or(""), refs);
    for (const auto& r : refs) flag(r, std::nullopt, main_cf_file, 0, false);
  }
  for (const auto& n : main_names) {
    if (is_read_only(n)) {
      warn(main_cf_file, main_line(n), n,
           "read-only parameter assignment: " + n + "=" + printable(main.raw(n).value_or("")) +
               " (Postfix ignores it)");
      continue;
    }
    if (main.is_known(n) && parameters_is_raw(n)) continue;
    std::vector<std::string> refs;
    std::string value = main.raw(n).value_or("");
    scan_references(value, refs);
    for (const auto& r : refs) flag(r, std::nullopt, main_cf_file, main_line(n), true);
    flag_dbms(value);
  }
  for (const auto& n : main_names) {
    if (main.is_known(n) || valid_global.count(n) || is_read_only(n)) continue;
    warn(main_cf_file, main_line(n), n,
         "unused parameter: " + n + "=" + printable(main.raw(n).value_or("")) +
             " (not a Postfix 3.7 parameter, and not referenced as $" + n + ")");
  }
  for (std::size_t s = 0; s < services.size(); ++s) {
    std::set<std::string, std::less<>> seen;
    for (const auto& [k, v] : services[s].overrides) {
      if (!seen.insert(k).second) continue;
      if (main.is_known(k) || valid_local[s].count(k)) continue;
      warn(master_cf_file, services[s].line, k,
           "unused parameter: " + k + "=" + printable(*local_value(s, k)) + " (in service " +
               services[s].name + "; not a Postfix 3.7 parameter, and not referenced as $" + k +
               ")");
    }
  }
  return out;
}

bool configuration::ok() const {
  return std::none_of(diagnostics.begin(), diagnostics.end(),
                      [](const diagnostic& d) { return d.level == diagnostic::severity::fatal; });
}

std::filesystem::path configuration::sasl_config_path() const {
  std::string p = main.get("cyrus_sasl_config_path");
  if (!p.empty()) return p;
  return config_dir / "sasl";
}

configuration load(const std::filesystem::path& config_dir, host_environment env) {
  configuration c{config_dir, parameters(std::move(env)), {}, {}, {}};
  const std::string main_file = (config_dir / "main.cf").string();
  const std::string master_file = (config_dir / "master.cf").string();
  std::string error;
  std::error_code ec;
  if (std::filesystem::exists(main_file, ec)) {
    if (auto text = read_file(main_file, error)) {
      parse_main_cf(*text, main_file, c.main, c.diagnostics);
    } else {
      c.diagnostics.push_back({diagnostic::severity::fatal, main_file, 0, "", error});
    }
  }
  // Postfix daemons run with the directory they were given, whatever main.cf says.
  c.main.set("config_directory", config_dir.string());
  auto master_text = read_file(master_file, error);
  if (!master_text) {
    c.diagnostics.push_back({diagnostic::severity::fatal, master_file, 0, "", error});
  } else {
    c.all_services = parse_master_cf(*master_text, master_file, c.diagnostics);
  }
  for (const auto& s : c.all_services) c.main.add_service_parameters(s.name, s.command);
  auto names = check_parameter_names(c.main, c.all_services, main_file, master_file);
  c.diagnostics.insert(c.diagnostics.end(), names.begin(), names.end());
  for (const auto& n : c.main.set_names()) {
    if (n == "process_id" || n == "process_name") c.main.erase(n);
  }
  auto checks = c.main.validate();
  c.diagnostics.insert(c.diagnostics.end(), checks.begin(), checks.end());
  for (const auto& s : c.all_services) {
    if (s.overrides.empty()) continue;
    for (auto& d : c.main.with_service_overrides(s).validate()) {
      if (d.file == master_file) c.diagnostics.push_back(std::move(d));
    }
  }
  // Fail closed: what relaylab does not implement warns or stops, never passes silently.
  auto support = check_support(c.main);
  c.diagnostics.insert(c.diagnostics.end(), support.begin(), support.end());
  for (const auto& s : c.all_services) {
    auto d = check_service_support(c.main, s);
    c.diagnostics.insert(c.diagnostics.end(), d.begin(), d.end());
  }
  for (const auto& s : c.all_services) {
    if (s.type == "inet" && s.command == "smtpd") c.services.push_back(s);
  }
  return c;
}

std::optional<sasl_app_config> load_sasl_app_config(const std::filesystem::path& file,
                                                    std::vector<diagnostic>& diags) {
  std::string error;
  auto text = read_file(file, error);
  const std::string name = file.string();
  if (!text) {
    diags.push_back({diagnostic::severity::fatal, name, 0, "", error});
    return std::nullopt;
  }
  // As Cyrus SASL's config reader: "key: value"; keys [A-Za-z0-9_-] (folded to lower case);
  // # comments and blank lines; an empty value is an error; a repeated key keeps its first
  // value (libsasl2 looks options up first match first).
  sasl_app_config cfg;
  cfg.file = name;
  bool ok = true;
  int lineno = 0;
  std::size_t pos = 0;
  while (pos < text->size()) {
    auto nl = text->find('\n', pos);
    std::string_view line =
        std::string_view(*text).substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text->size() : nl + 1;
    ++lineno;
    std::string_view s = trim(line);
    if (s.empty() || s.front() == '#') continue;
    std::size_t k = 0;
    std::string key;
    while (k < s.size() &&
           (std::isalnum(static_cast<unsigned char>(s[k])) || s[k] == '-' || s[k] == '_')) {
      key += static_cast<char>(std::tolower(static_cast<unsigned char>(s[k])));
      ++k;
    }
    if (key.empty() || k >= s.size() || s[k] != ':') {
      diags.push_back({diagnostic::severity::fatal, name, lineno, key,
                       "bad SASL configuration line \"" + printable(s.substr(0, 80)) +
                           "\" (expected \"key: value\", key of letters, digits, - and _)"});
      ok = false;
      continue;
    }
    std::string_view value = trim(s.substr(k + 1));
    if (value.empty()) {
      diags.push_back(
          {diagnostic::severity::fatal, name, lineno, key,
           "empty value for SASL option " + key + " (expected \"" + key + ": value\")"});
      ok = false;
      continue;
    }
    cfg.values.try_emplace(key, std::string(value));
  }
  if (!ok) return std::nullopt;
  return cfg;
}

host_environment host_environment::from_system() {
  host_environment env;
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) == 0 && name[0] != '\0') {
    env.hostname = name.data();
  }
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return env;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    const unsigned char* addr = nullptr;
    const unsigned char* mask = nullptr;
    std::size_t len = 0;
    if (family == AF_INET) {
      addr = reinterpret_cast<const unsigned char*>(
          &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr);
      if (i->ifa_netmask) {
        mask = reinterpret_cast<const unsigned char*>(
            &reinterpret_cast<const sockaddr_in*>(i->ifa_netmask)->sin_addr);
      }
      len = 4;
    } else {
      addr = reinterpret_cast<const unsigned char*>(
          &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr);
      if (i->ifa_netmask) {
        mask = reinterpret_cast<const unsigned char*>(
            &reinterpret_cast<const sockaddr_in6*>(i->ifa_netmask)->sin6_addr);
      }
      len = 16;
    }
    int prefix = static_cast<int>(len * 8);
    if (mask) {
      prefix = 0;
      for (std::size_t b = 0; b < len; ++b) prefix += __builtin_popcount(mask[b]);
    }
    char buf[INET6_ADDRSTRLEN] = {};
    if (::inet_ntop(family, addr, buf, sizeof buf) == nullptr) continue;
    env.interface_networks.push_back(std::string(buf) + "/" + std::to_string(prefix));
  }
  ::freeifaddrs(list);
  return env;
}

}  // namespace relaylab::config
