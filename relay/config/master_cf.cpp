// master.cf syntax (Postfix master(5)): 8 columns, then arguments; -o name=value overrides.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "relay/config/config.hpp"
#include "relay/config/text.hpp"

namespace relaylab::config {
namespace {

std::string excerpt(std::string_view s) {
  constexpr std::size_t excerpt_bytes_max = 80;
  std::string out = "\"" + printable(s.substr(0, excerpt_bytes_max));
  if (s.size() > excerpt_bytes_max) out += "...";
  return out + "\"";
}

// Whitespace-separated fields; a {...} group keeps its spaces (Postfix's mystrtokq).
std::vector<std::string> fields(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (i < s.size()) {
    while (i < s.size() && space(s[i])) ++i;
    if (i >= s.size()) break;
    std::size_t start = i;
    int level = 0;
    while (i < s.size() && (level > 0 || !space(s[i]))) {
      if (s[i] == '{') {
        ++level;
      } else if (s[i] == '}' && level > 0) {
        --level;
      }
      ++i;
    }
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

// Well-known mail ports (the /etc/services entries a relay's master.cf uses).
constexpr std::array<std::pair<std::string_view, std::uint16_t>, 7> port_names = {{
    {"smtp", 25},
    {"submission", 587},
    {"submissions", 465},
    {"smtps", 465},
    {"ssmtp", 465},
    {"lmtp", 24},
    {"qmtp", 209},
}};

bool yes_no_dash(std::string_view v) { return v == "y" || v == "n" || v == "-"; }

bool digits(std::string_view v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) != 0;
  });
}

}  // namespace

bool master_service::is_private() const { return private_column != "n"; }
bool master_service::unprivileged() const { return unpriv_column != "n"; }
bool master_service::chroot() const { return chroot_column == "y"; }

std::vector<master_service> parse_master_cf(std::string_view text, const std::string& file,
                                            std::vector<diagnostic>& diags) {
  std::vector<master_service> out;
  auto report = [&](diagnostic::severity level, int line, std::string service,
                    std::string message) {
    diags.push_back({level, file, line, std::move(service), std::move(message)});
  };
  auto lines = logical_lines(text, [&](int line, std::string_view phys) {
    report(diagnostic::severity::warning, line, "",
           "logical line must not start with whitespace: " + excerpt(phys) +
               " (a continuation line needs a service line before it)");
  });
  constexpr std::size_t columns = 8;
  for (const auto& l : lines) {
    if (l.has_nul) {
      report(diagnostic::severity::warning, l.line, "",
             "NUL byte in line; the text after it is ignored, as Postfix does");
    }
    auto f = fields(l.text);
    if (f.empty()) continue;
    if (f.size() < columns) {
      report(diagnostic::severity::fatal, l.line, f[0],
             "bad field count: " + std::to_string(f.size()) + " fields in " +
                 excerpt(trim(l.text)) +
                 " (expected: service type private unpriv chroot wakeup maxproc command)");
      continue;
    }
    master_service s;
    s.name = f[0];
    s.type = f[1];
    s.private_column = f[2];
    s.unpriv_column = f[3];
    s.chroot_column = f[4];
    s.wakeup_column = f[5];
    s.maxproc_column = f[6];
    s.command = f[7];
    s.file = file;
    s.line = l.line;
    auto bad_field = [&](std::string_view what, const std::string& value, std::string_view want) {
      report(diagnostic::severity::fatal, l.line, s.name,
             "invalid " + std::string(what) + " field \"" + printable(value) + "\" in " +
                 excerpt(trim(l.text)) + " (expected " + std::string(want) + ")");
    };
    static constexpr std::array<std::string_view, 5> types = {"inet", "unix", "unix-dgram", "fifo",
                                                              "pass"};
    bool ok = true;
    if (std::find(types.begin(), types.end(), s.type) == types.end()) {
      bad_field("type", s.type, "inet, unix, unix-dgram, fifo or pass");
      ok = false;
    }
    if (!yes_no_dash(s.private_column)) {
      bad_field("private", s.private_column, "y, n or -");
      ok = false;
    }
    if (!yes_no_dash(s.unpriv_column)) {
      bad_field("unprivileged", s.unpriv_column, "y, n or -");
      ok = false;
    }
    if (!yes_no_dash(s.chroot_column)) {
      bad_field("chroot", s.chroot_column, "y, n or -");
      ok = false;
    }
    std::string_view wake = s.wakeup_column;
    if (!wake.empty() && wake.back() == '?') wake.remove_suffix(1);
    if (s.wakeup_column != "-" && !digits(wake)) {
      bad_field("wakeup", s.wakeup_column, "a number of seconds, optionally followed by ?, or -");
      ok = false;
    }
    if (s.maxproc_column != "-" && !digits(s.maxproc_column)) {
      bad_field("max process", s.maxproc_column, "a number or -");
      ok = false;
    }
    if (!ok) continue;

    // Arguments: -o pairs are overrides until the first non-option argument (as getopt).
    bool options = true;
    for (std::size_t i = columns; i < f.size(); ++i) {
      const std::string& a = f[i];
      if (options && (a.empty() || a[0] != '-' || a == "--")) options = false;
      std::string setting;
      if (options && a == "-o") {
        if (i + 1 >= f.size()) {
          report(diagnostic::severity::warning, l.line, s.name,
                 "-o option without a name=value argument (ignored)");
          continue;
        }
        setting = f[++i];
      } else if (options && a.size() > 2 && a.compare(0, 2, "-o") == 0) {
        setting = a.substr(2);
      } else {
        s.args.push_back(a);
        continue;
      }
      std::string_view nv = setting;
      if (!nv.empty() && nv.front() == '{') {
        nv.remove_prefix(1);
        if (!nv.empty() && nv.back() == '}') {
          nv.remove_suffix(1);
        } else {
          report(diagnostic::severity::warning, l.line, s.name,
                 "missing '}' in " + excerpt(setting) + " (expected -o { name = value })");
        }
      }
      nv = trim(nv);
      std::size_t name_end = 0;
      while (name_end < nv.size() && nv[name_end] != '=' &&
             !std::isspace(static_cast<unsigned char>(nv[name_end]))) {
        ++name_end;
      }
      std::string_view name = nv.substr(0, name_end);
      std::string_view rest = trim(nv.substr(name_end));
      if (name.empty() || rest.empty() || rest.front() != '=') {
        report(diagnostic::severity::warning, l.line, s.name,
               std::string(name.empty() ? "missing attribute name: "
                                        : "missing '=' after attribute name: ") +
                   excerpt(nv) + " (expected -o name=value; ignored)");
        continue;
      }
      s.overrides.emplace_back(std::string(name), std::string(trim(rest.substr(1))));
    }

    if (s.type == "inet") {
      std::string_view addr = s.name;
      std::string_view port = addr;
      std::string_view host;
      bool syntax_ok = true;
      if (!addr.empty() && addr.front() == '[') {
        auto close = addr.find(']');
        if (close == std::string_view::npos || close + 1 >= addr.size() || addr[close + 1] != ':') {
          syntax_ok = false;
        } else {
          host = addr.substr(1, close - 1);
          port = addr.substr(close + 2);
        }
      } else if (auto colon = addr.rfind(':'); colon != std::string_view::npos) {
        host = addr.substr(0, colon);
        port = addr.substr(colon + 1);
      }
      if (host == "*") host = {};
      std::uint16_t number = 0;
      if (!syntax_ok) {
        report(diagnostic::severity::fatal, l.line, s.name,
               "bad inet service address \"" + printable(s.name) +
                   "\" (expected port, host:port or [ipv6]:port)");
        continue;
      }
      if (digits(port)) {
        unsigned value = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc{} || ptr != port.data() + port.size() || value == 0 || value > 65535) {
          report(diagnostic::severity::fatal, l.line, s.name,
                 "bad port number \"" + printable(port) + "\" in service \"" + printable(s.name) +
                     "\" (expected 1-65535)");
          continue;
        }
        number = static_cast<std::uint16_t>(value);
      } else {
        auto it = std::find_if(port_names.begin(), port_names.end(),
                               [&](const auto& p) { return p.first == port; });
        if (it == port_names.end()) {
          report(diagnostic::severity::fatal, l.line, s.name,
                 "unknown service name \"" + printable(port) + "\" in inet service \"" +
                     printable(s.name) +
                     "\" (expected a port number or one of smtp, submission, submissions, "
                     "smtps, ssmtp, lmtp, qmtp)");
          continue;
        }
        number = it->second;
      }
      s.listen_host = std::string(host);
      s.listen_port = number;
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace relaylab::config
