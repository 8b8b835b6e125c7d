// The axes of the matrix and their sample values, read from the configuration: addresses inside
// each mynetworks network, one outside all of them (and an IPv6 one when inet_protocols allows),
// check_client_access keys, the local, relay and virtual domains, a user of
// local_recipient_maps, and Postfix's routing tricks on a foreign recipient.
#include "harness/matrix/matrix.hpp"

#include "relay/maps/maps.hpp"
#include "relay/policy/policy.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>
#include <set>

namespace relaylab::matrix {
namespace {

constexpr const char* foreign_domain = "foreign.example";
constexpr std::size_t access_keys_max = 4;  // per check_client_access table

/// "type:name": letters before the first colon (an IPv6 address has hex digits or nothing).
bool is_table(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0) return false;
  return std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(colon),
                     [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }) &&
         s.find_first_not_of("0123456789abcdefABCDEF") < colon;
}

/// The address after the network address (the first host) of an "addr/len" or "[v6]/len"
/// mynetworks entry; nullopt for tables, names, negations and bad syntax.
std::optional<std::string> first_host(std::string entry, bool& v6) {
  if (entry.empty() || entry[0] == '!' || is_table(entry)) return std::nullopt;
  int prefix = -1;
  if (auto slash = entry.find('/'); slash != std::string::npos) {
    try {
      prefix = std::stoi(entry.substr(slash + 1));
    } catch (...) {
      return std::nullopt;
    }
    entry.resize(slash);
  }
  if (!entry.empty() && entry.front() == '[' && entry.back() == ']')
    entry = entry.substr(1, entry.size() - 2);
  std::array<unsigned char, 16> bytes{};
  char text[INET6_ADDRSTRLEN] = {};
  if (inet_pton(AF_INET, entry.c_str(), bytes.data()) == 1) {
    v6 = false;
    if (prefix >= 0 && prefix < 31) bytes[3] = static_cast<unsigned char>(bytes[3] | 1);
    if (!inet_ntop(AF_INET, bytes.data(), text, sizeof text)) return std::nullopt;
    return std::string(text);
  }
  if (inet_pton(AF_INET6, entry.c_str(), bytes.data()) == 1) {
    v6 = true;
    if (prefix >= 0 && prefix < 127) bytes[15] = static_cast<unsigned char>(bytes[15] | 1);
    if (!inet_ntop(AF_INET6, bytes.data(), text, sizeof text)) return std::nullopt;
    return std::string(text);
  }
  return std::nullopt;
}

/// The first entry of a domain list that is a domain (not a table, file or negation).
std::optional<std::string> first_domain(const config::parameters& p, const char* name) {
  for (const auto& d : p.get_list(name)) {
    if (d.empty() || d[0] == '!' || d[0] == '/' || is_table(d)) continue;
    return d;
  }
  return std::nullopt;
}

/// The first key of the first table in `param` that lists keys (and is not a special name).
std::optional<std::string> first_user(const config::parameters& p, const char* param) {
  for (const auto& spec : p.get_list(param)) {
    if (!is_table(spec)) continue;
    std::string error;
    auto t = maps::open(spec, error);
    if (!t) continue;
    for (const auto& k : t->keys(16)) {
      if (k == "postmaster" || k.find('@') != std::string::npos || k.empty()) continue;
      return k;
    }
  }
  return std::nullopt;
}

/// Keys of every check_client_access table in the restriction lists of `p`.
std::vector<std::string> client_access_keys(const config::parameters& p) {
  std::vector<std::string> out;
  std::vector<std::string> lists{"smtpd_client_restrictions",    "smtpd_helo_restrictions",
                                 "smtpd_sender_restrictions",    "smtpd_relay_restrictions",
                                 "smtpd_recipient_restrictions", "smtpd_data_restrictions"};
  for (const auto& cls : p.get_list("smtpd_restriction_classes")) lists.push_back(cls);
  for (const auto& list : lists) {
    auto tokens = p.get_list(list);
    for (std::size_t i = 0; i + 1 < tokens.size(); ++i) {
      if (tokens[i] != "check_client_access") continue;
      std::string error;
      auto t = maps::open(tokens[i + 1], error);
      if (!t) continue;
      for (auto& k : t->keys(access_keys_max))
        if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(std::move(k));
    }
  }
  return out;
}

/// A partial IPv4 key ("192.168", "10.1.2") completed to an address with .1 octets.
std::optional<std::string> access_key_address(const std::string& key) {
  std::array<unsigned char, 16> bytes{};
  if (inet_pton(AF_INET6, key.c_str(), bytes.data()) == 1) return key;
  std::string k = key;
  int dots = static_cast<int>(std::count(k.begin(), k.end(), '.'));
  if (k.find_first_not_of("0123456789.") != std::string::npos || dots > 3) return std::nullopt;
  for (; dots < 3; ++dots) k += ".1";
  if (inet_pton(AF_INET, k.c_str(), bytes.data()) == 1) return k;
  return std::nullopt;
}

bool apply_override(std::vector<sample>& axis, const std::string& prefix, const options& opt,
                    std::set<std::string>& used) {
  for (auto& s : axis) {
    auto it = opt.overrides.find(prefix + s.label);
    if (it == opt.overrides.end()) continue;
    s.value = it->second;
    s.why = "--sample";
    used.insert(it->first);
  }
  return true;
}

}  // namespace

const char* to_string(auth_mode m) {
  switch (m) {
    case auth_mode::none:
      return "none";
    case auth_mode::success:
      return "ok";
    case auth_mode::failure:
      return "bad";
  }
  return "?";
}

std::vector<std::string> sample_keys(const axes& a) {
  std::vector<std::string> out;
  for (const auto& s : a.clients) out.push_back("client." + s.label);
  for (const auto& s : a.senders) out.push_back("sender." + s.label);
  for (const auto& s : a.recipients) out.push_back("rcpt." + s.label);
  out.push_back("auth");
  return out;
}

std::optional<axes> make_axes(const config::configuration& cfg, const options& opt,
                              std::vector<std::string>& errors) {
  axes a;
  const config::parameters& p = cfg.main;
  for (const auto& s : cfg.services)
    if (s.type == "inet") a.listeners.push_back(s);
  std::vector<config::diagnostic> diags;
  auto policy = policy::engine::create(p, diags);
  if (!policy) {
    for (const auto& d : diags) errors.push_back(d.to_string());
    return std::nullopt;
  }

  // Clients.
  const auto protocols = p.get_list("inet_protocols");
  const bool ipv6 = std::any_of(protocols.begin(), protocols.end(),
                                [](const std::string& x) { return x == "all" || x == "ipv6"; });
  for (const auto& entry : p.get_list("mynetworks")) {
    bool v6 = false;
    auto host = first_host(entry, v6);
    if (!host) {
      a.notes.push_back("mynetworks entry " + entry + ": no sample address (not a network)");
      continue;
    }
    if (v6 && !ipv6) continue;
    if (!policy->in_mynetworks(*host)) {
      a.notes.push_back("mynetworks entry " + entry + ": " + *host + " is not in mynetworks");
      continue;
    }
    a.clients.push_back({"inside:" + entry, *host, "unknown", "first host of mynetworks " + entry});
  }
  for (const char* candidate : {"192.0.2.10", "198.51.100.10", "203.0.113.10"}) {
    if (policy->in_mynetworks(candidate)) continue;
    a.clients.push_back({"outside", candidate, "unknown", "outside every mynetworks entry"});
    break;
  }
  if (ipv6) {
    for (const char* candidate : {"2001:db8::10", "2001:db8:1::10"}) {
      if (policy->in_mynetworks(candidate)) continue;
      a.clients.push_back({"outside6", candidate, "unknown", "IPv6, outside mynetworks"});
      break;
    }
  }
  std::vector<std::string> keys;
  for (const auto& svc : a.listeners)
    for (auto& k : client_access_keys(p.with_overrides(svc.overrides)))
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(std::move(k));
  for (const auto& k : keys) {
    if (auto addr = access_key_address(k)) {
      a.clients.push_back({"access:" + k, *addr, "unknown", "check_client_access key " + k});
    } else if (!a.clients.empty()) {
      a.clients.push_back({"access:" + k, a.clients.back().value, k,
                           "check_client_access key " + k + " as the client name"});
    }
  }

  // Senders and recipients.
  const std::string local = first_domain(p, "mydestination").value_or(p.get("myhostname"));
  const auto user = first_user(p, "local_recipient_maps");
  const std::string known = user.value_or("root");
  a.senders.push_back({"local", known + "@" + local, "", "mydestination " + local});
  a.senders.push_back({"foreign", std::string("sender@") + foreign_domain, "", "foreign domain"});
  a.senders.push_back({"null", "", "", "null sender"});

  a.recipients.push_back({"local-user", known + "@" + local, "",
                          user ? "local_recipient_maps user" : "root (no listable table)"});
  a.recipients.push_back({"local-unknown", "no-such-user-x9@" + local, "", "not in the maps"});
  if (auto d = first_domain(p, "relay_domains"))
    a.recipients.push_back({"relay-domain", "someone@" + *d, "", "relay_domains " + *d});
  if (auto d = first_domain(p, "virtual_alias_domains"))
    a.recipients.push_back({"virtual-alias", "someone@" + *d, "", "virtual_alias_domains " + *d});
  if (auto d = first_domain(p, "virtual_mailbox_domains"))
    a.recipients.push_back(
        {"virtual-mailbox", "someone@" + *d, "", "virtual_mailbox_domains " + *d});
  const std::string victim = std::string("victim@") + foreign_domain;
  a.recipients.push_back({"foreign", victim, "", "foreign domain"});
  a.recipients.push_back(
      {"percent", std::string("victim%") + foreign_domain + "@" + local, "", "% hack"});
  a.recipients.push_back(
      {"bang", std::string(foreign_domain) + "!victim@" + local, "", "UUCP bang path"});
  a.recipients.push_back({"source-route", "@" + local + ":" + victim, "", "source route"});
  a.recipients.push_back({"quoted", "\"" + victim + "\"@" + local, "", "quoted local part"});

  // Overrides.
  std::set<std::string> used;
  apply_override(a.clients, "client.", opt, used);
  apply_override(a.senders, "sender.", opt, used);
  apply_override(a.recipients, "rcpt.", opt, used);
  a.auth = opt.auth;
  if (auto it = opt.overrides.find("auth"); it != opt.overrides.end()) {
    used.insert(it->first);
    auto colon = it->second.find(':');
    if (colon == std::string::npos) {
      errors.push_back("--sample auth=" + it->second + ": expected auth=USER:PASSWORD");
      return std::nullopt;
    }
    a.auth = credentials{it->second.substr(0, colon), it->second.substr(colon + 1)};
  }
  for (const auto& [k, v] : opt.overrides) {
    if (used.count(k)) continue;
    std::string known_keys;
    for (const auto& x : sample_keys(a)) known_keys += (known_keys.empty() ? "" : ", ") + x;
    errors.push_back("--sample " + k + "=" + v + ": no such sample (known: " + known_keys + ")");
  }
  if (!errors.empty()) return std::nullopt;

  a.auths = {auth_mode::none, auth_mode::success, auth_mode::failure};
  if (!a.auth) {
    a.auths = {auth_mode::none, auth_mode::failure};
    a.notes.push_back(
        "AUTH success not sampled: no credentials (give --auth-user/--auth-password or "
        "--sample auth=USER:PASSWORD)");
  }
  return a;
}

}  // namespace relaylab::matrix
