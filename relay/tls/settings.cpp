#include "relay/tls/settings.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace relaylab::tls {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

config::diagnostic make(const config::parameters& p, std::string_view name,
                        config::diagnostic::severity level, std::string message) {
  config::diagnostic d;
  d.level = level;
  d.parameter = std::string(name);
  if (auto o = p.origin_of(name)) {
    d.file = o->file;
    d.line = o->line;
  }
  d.message = std::move(message);
  return d;
}

void fatal(const config::parameters& p, std::string_view name, std::string message,
           std::vector<config::diagnostic>& diags) {
  diags.push_back(make(p, name, config::diagnostic::severity::fatal, std::move(message)));
}

void warn(const config::parameters& p, std::string_view name, std::string message,
          std::vector<config::diagnostic>& diags) {
  diags.push_back(make(p, name, config::diagnostic::severity::warning, std::move(message)));
}

constexpr std::string_view protocol_names[protocol_set::count] = {"sslv2",   "sslv3",   "tlsv1",
                                                                  "tlsv1.1", "tlsv1.2", "tlsv1.3"};

int protocol_index(std::string_view word) {
  const std::string w = lower(std::string(word));
  for (int i = 0; i < protocol_set::count; ++i)
    if (protocol_names[i] == w) return i;
  return -1;
}

// tls_ssl_options names relaylab maps onto OpenSSL options (see context.cpp).
constexpr std::string_view ssl_option_names[] = {
    "NO_TICKET",         "NO_COMPRESSION",          "NO_RENEGOTIATION",
    "PRIORITIZE_CHACHA", "ENABLE_MIDDLEBOX_COMPAT", "LEGACY_SERVER_CONNECT",
    "NO_ANTI_REPLAY"};

}  // namespace

protocol_set parse_protocols(const std::string& text, std::string& error) {
  // Postfix (tls_proto_mask_lims): names enable, !names disable, >=X and <=X bound the range.
  // A list with no positive name starts from "everything".
  protocol_set out;
  bool any_positive = false;
  bool include[protocol_set::count] = {};
  bool exclude[protocol_set::count] = {};
  int min = 0;
  int max = protocol_set::count - 1;
  for (const auto& raw : config::split_list(text)) {
    std::string_view w = raw;
    // Postfix allows ':' as a separator, too.
    std::size_t start = 0;
    while (start <= w.size()) {
      std::size_t colon = w.find(':', start);
      std::string_view tok =
          w.substr(start, colon == std::string_view::npos ? w.npos : colon - start);
      start = colon == std::string_view::npos ? w.size() + 1 : colon + 1;
      if (tok.empty()) continue;
      if (tok.starts_with(">=") || tok.starts_with("<=")) {
        const int i = protocol_index(tok.substr(2));
        if (i < 0) {
          error = "invalid TLS protocol version: \"" + std::string(tok.substr(2)) +
                  "\" (expected SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3)";
          return out;
        }
        if (tok[0] == '>')
          min = std::max(min, i);
        else
          max = std::min(max, i);
        continue;
      }
      const bool neg = tok.front() == '!';
      const int i = protocol_index(neg ? tok.substr(1) : tok);
      if (i < 0) {
        error = "invalid TLS protocol name: \"" + std::string(tok) +
                "\" (expected SSLv2, SSLv3, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3, optionally "
                "prefixed with ! or >= or <=)";
        return out;
      }
      if (neg) {
        exclude[i] = true;
      } else {
        include[i] = true;
        any_positive = true;
      }
    }
  }
  bool any = false;
  for (int i = 0; i < protocol_set::count; ++i) {
    bool on = any_positive ? include[i] : true;
    if (exclude[i] || i < min || i > max) on = false;
    out.enabled[i] = on;
    // SSLv2/SSLv3 are not in OpenSSL 3; they never count as usable.
    if (on && i >= 2) any = true;
  }
  if (!any) error = "no TLS protocol version left enabled by \"" + text + "\"";
  return out;
}

std::string cipher_list(const config::parameters& p, const std::string& grade,
                        const std::vector<std::string>& exclude, std::string& error) {
  const std::string g = lower(trim(grade));
  std::string list;
  if (g == "high" || g == "medium" || g == "low" || g == "export" || g == "null") {
    list = p.get("tls_" + g + "_cipherlist");
  } else {
    error = "invalid cipher grade: \"" + grade + "\" (expected high, medium, low, export or null)";
    return {};
  }
  if (trim(list).empty()) {
    error = "empty cipher list for grade " + g + " (tls_" + g + "_cipherlist)";
    return {};
  }
  for (const auto& e : exclude) {
    if (e.empty()) continue;
    list += ":!" + e;
  }
  return list;
}

bool server_tls_requested(const config::parameters& p) {
  if (p.get_bool("smtpd_tls_wrappermode")) return true;
  const std::string level = lower(trim(p.get("smtpd_tls_security_level")));
  if (level.empty()) return p.get_bool("smtpd_enforce_tls") || p.get_bool("smtpd_use_tls");
  return level != "none";
}

std::optional<server_settings> server_settings_from(const config::parameters& p,
                                                    std::vector<config::diagnostic>& diags,
                                                    const std::vector<key_pair_pem>& supplied) {
  const std::size_t before = diags.size();
  auto failed = [&] {
    for (std::size_t i = before; i < diags.size(); ++i)
      if (diags[i].level == config::diagnostic::severity::fatal) return true;
    return false;
  };
  server_settings s;
  // Level: smtpd_tls_security_level wins over the obsolete smtpd_use_tls/smtpd_enforce_tls.
  const std::string level = lower(trim(p.get("smtpd_tls_security_level")));
  if (level.empty()) {
    if (p.get_bool("smtpd_enforce_tls"))
      s.level = server_level::encrypt;
    else if (p.get_bool("smtpd_use_tls"))
      s.level = server_level::may;
  } else if (level == "none") {
    s.level = server_level::none;
  } else if (level == "may") {
    s.level = server_level::may;
  } else if (level == "encrypt") {
    s.level = server_level::encrypt;
  } else if (level == "verify" || level == "secure" || level == "fingerprint") {
    // As Postfix's smtpd: these client-side levels mean encrypt on the server side.
    warn(p, "smtpd_tls_security_level",
         "smtpd_tls_security_level = " + level +
             " is a client-side level; the SMTP server uses \"encrypt\"",
         diags);
    s.level = server_level::encrypt;
  } else {
    fatal(p, "smtpd_tls_security_level",
          "invalid TLS security level: smtpd_tls_security_level = " + level +
              " (expected none, may or encrypt)",
          diags);
  }
  s.wrappermode = p.get_bool("smtpd_tls_wrappermode");
  s.auth_only = p.get_bool("smtpd_tls_auth_only");
  s.loglevel = static_cast<int>(p.get_int("smtpd_tls_loglevel"));
  if (s.loglevel > 1) {
    warn(p, "smtpd_tls_loglevel",
         "smtpd_tls_loglevel = " + std::to_string(s.loglevel) +
             ": relaylab logs TLS at level 1 only (the summary line)",
         diags);
  }
  s.received_header = p.get_bool("smtpd_tls_received_header");
  s.session_timeout = std::chrono::seconds(std::chrono::duration_cast<std::chrono::seconds>(
      p.get_time("smtpd_tls_session_cache_timeout")));
  s.handshake_timeout = p.get_time("smtpd_starttls_timeout");
  if (!trim(p.get("smtpd_tls_session_cache_database")).empty()) {
    warn(p, "smtpd_tls_session_cache_database",
         "smtpd_tls_session_cache_database is not used: relaylab resumes sessions with TLS "
         "session tickets and an in-process cache",
         diags);
  }

  // Client certificates are not implemented: refuse asking for them.
  if (p.get_bool("smtpd_tls_ask_ccert"))
    fatal(p, "smtpd_tls_ask_ccert",
          "smtpd_tls_ask_ccert = yes is not implemented by relaylab (client certificates)", diags);
  if (p.get_bool("smtpd_tls_req_ccert"))
    fatal(p, "smtpd_tls_req_ccert",
          "smtpd_tls_req_ccert = yes is not implemented by relaylab (client certificates)", diags);

  // Keys and certificates.
  for (const auto& f : p.get_list("smtpd_tls_chain_files")) s.chain_files.push_back(f);
  auto add_pair = [&](const char* cert_param, const char* key_param) {
    const std::string cert = trim(p.get(cert_param));
    std::string key = trim(p.get(key_param));
    if (cert.empty()) {
      if (!key.empty() && p.is_set(key_param))
        fatal(p, key_param, std::string(key_param) + " is set but " + cert_param + " is empty",
              diags);
      return;
    }
    if (key.empty()) key = cert;
    s.key_pairs.push_back({cert, key});
  };
  if (s.chain_files.empty()) {
    add_pair("smtpd_tls_cert_file", "smtpd_tls_key_file");
    add_pair("smtpd_tls_eccert_file", "smtpd_tls_eckey_file");
  }
  if (!trim(p.get("smtpd_tls_dcert_file")).empty())
    fatal(p, "smtpd_tls_dcert_file",
          "smtpd_tls_dcert_file (DSA certificates) is not supported by relaylab", diags);
  if (s.chain_files.empty() && s.key_pairs.empty()) s.pem_pairs = supplied;
  if (s.use_tls() && s.chain_files.empty() && s.key_pairs.empty() && s.pem_pairs.empty()) {
    const char* which = s.wrappermode ? "smtpd_tls_wrappermode" : "smtpd_tls_security_level";
    fatal(p, which,
          std::string(which) +
              " asks for TLS but no server certificate is configured (set smtpd_tls_chain_files "
              "or smtpd_tls_cert_file and smtpd_tls_key_file)",
          diags);
  }

  // Protocols and ciphers: the mandatory ones at encrypt (and in wrapper mode, where TLS is
  // the only way in), the opportunistic ones otherwise.
  const bool mandatory = s.enforce_tls();
  const char* proto_param = mandatory ? "smtpd_tls_mandatory_protocols" : "smtpd_tls_protocols";
  std::string error;
  s.protocols = parse_protocols(p.get(proto_param), error);
  if (!error.empty()) fatal(p, proto_param, std::string(proto_param) + ": " + error, diags);
  if (mandatory) {
    // Postfix also applies smtpd_tls_protocols at the mandatory level.
    std::string e2;
    auto opp = parse_protocols(p.get("smtpd_tls_protocols"), e2);
    if (!e2.empty())
      fatal(p, "smtpd_tls_protocols", "smtpd_tls_protocols: " + e2, diags);
    else
      for (int i = 0; i < protocol_set::count; ++i)
        s.protocols.enabled[i] = s.protocols.enabled[i] && opp.enabled[i];
  }
  const char* grade_param = mandatory ? "smtpd_tls_mandatory_ciphers" : "smtpd_tls_ciphers";
  std::vector<std::string> exclude = p.get_list("smtpd_tls_exclude_ciphers");
  if (mandatory)
    for (auto& e : p.get_list("smtpd_tls_mandatory_exclude_ciphers")) exclude.push_back(e);
  error.clear();
  s.cipher_list = cipher_list(p, p.get(grade_param), exclude, error);
  if (!error.empty()) fatal(p, grade_param, std::string(grade_param) + ": " + error, diags);

  const std::string eecdh = lower(trim(p.get("smtpd_tls_eecdh_grade")));
  if (eecdh == "none") {
    fatal(p, "smtpd_tls_eecdh_grade",
          "smtpd_tls_eecdh_grade = none is not supported by relaylab (TLS 1.3 needs (EC)DHE)",
          diags);
  } else if (eecdh != "auto" && eecdh != "strong" && eecdh != "ultra") {
    fatal(p, "smtpd_tls_eecdh_grade",
          "invalid smtpd_tls_eecdh_grade: \"" + eecdh + "\" (expected auto, strong or ultra)",
          diags);
  }
  for (const auto& g : p.get_list("tls_eecdh_auto_curves")) {
    if (!s.groups.empty()) s.groups += ':';
    s.groups += g;
  }
  s.server_preference = p.get_bool("tls_preempt_cipherlist");
  s.ca_file = trim(p.get("smtpd_tls_CAfile"));
  s.ca_path = trim(p.get("smtpd_tls_CApath"));
  s.dh_param_file = trim(p.get("smtpd_tls_dh1024_param_file"));
  for (const auto& o : p.get_list("tls_ssl_options")) {
    s.ssl_options.push_back(o);
    const auto* end = std::end(ssl_option_names);
    if (std::find(std::begin(ssl_option_names), end, o) == end)
      fatal(p, "tls_ssl_options",
            "tls_ssl_options: \"" + o +
                "\" is not supported by relaylab (supported: NO_TICKET, NO_COMPRESSION, "
                "NO_RENEGOTIATION, PRIORITIZE_CHACHA, ENABLE_MIDDLEBOX_COMPAT, "
                "LEGACY_SERVER_CONNECT, NO_ANTI_REPLAY)",
            diags);
  }
  if (failed()) return std::nullopt;
  return s;
}

}  // namespace relaylab::tls
