// --explain: sim::network::decide with its hops, in words (explain.hpp).
#include "harness/cfn/explain.hpp"

#include <charconv>

namespace relaylab::cfn {

namespace {

const sim::host_spec* find_host(const sim::network_spec& net, const std::string& name) {
  for (const auto& h : net.hosts) {
    if (h.name == name) return &h;
  }
  return nullptr;
}

const sim::vpc_spec* vpc_of(const sim::network_spec& net, const sim::host_spec& h) {
  for (const auto& v : net.vpcs) {
    for (const auto& s : v.subnets) {
      if (s.name == h.subnet) return &v;
    }
  }
  return nullptr;
}

bool mentions(const std::string& text, const std::string& name) {
  for (auto k = text.find(name); k != std::string::npos; k = text.find(name, k + 1)) {
    auto word = [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    };
    const bool start = k == 0 || !word(text[k - 1]);
    const std::size_t end = k + name.size();
    // A trailing '.' or ':' ends a sentence, not a name.
    const bool stop = end == text.size() || !word(text[end]) ||
                      (text[end] == '.' && (end + 1 == text.size() || text[end + 1] == ' '));
    if (start && stop) return true;
  }
  return false;
}

}  // namespace

std::optional<explanation> explain(const sim::network_spec& net, const std::vector<origin>& where,
                                   const std::string& to, const std::string& from,
                                   std::string& error) {
  const auto colon = to.rfind(':');
  unsigned port = 0;
  if (colon == std::string::npos ||
      std::from_chars(to.data() + colon + 1, to.data() + to.size(), port).ptr !=
          to.data() + to.size() ||
      colon + 1 == to.size() || port > 65535) {
    error = "'" + to + "': expected HOST:PORT";
    return std::nullopt;
  }
  std::string host = to.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const auto* src = find_host(net, from);
  if (!src) {
    error = "no host named '" + from + "'";
    return std::nullopt;
  }
  std::string address = host;
  if (!sim::parse_address(host)) {
    const auto* dst = find_host(net, host);
    if (!dst) {
      error = "no host named '" + host + "' (and not a numeric address)";
      return std::nullopt;
    }
    const auto* sv = vpc_of(net, *src);
    address = sv && sv == vpc_of(net, *dst) ? dst->ipv4
              : !dst->public_ipv4.empty()   ? dst->public_ipv4
                                            : dst->ipv4;
  }
  sim::world w;
  std::vector<sim::network_error> errors;
  sim::network n(w, net, errors);
  if (!errors.empty()) {
    error = "the network is not valid: " + errors.front().what;
    return std::nullopt;
  }
  const auto d = n.decide(from, address, static_cast<std::uint16_t>(port), true);
  explanation out;
  out.text = from + " → " + host + ":" + std::to_string(port) +
             (address != host ? " (" + address + ")" : "") + "\n";
  std::size_t k = 0;
  for (const auto& h : d.hops) out.text += "  " + std::to_string(++k) + ". " + h + "\n";
  // Nothing listens in a network without roles: reaching the host is getting through.
  out.connected = d.outcome == sim::verdict::connected || d.outcome == sim::verdict::refused;
  if (out.connected) {
    out.text += "  reaches " + d.destination_host + ":" + std::to_string(port) + " (seen from " +
                d.seen_address + ")\n";
  } else {
    out.text += "  " + std::to_string(++k) + ". " + d.reason + ": " +
                (d.outcome == sim::verdict::unreachable ? "Network is unreachable (at once)"
                                                        : "dropped (the connect times out)") +
                "\n";
  }
  std::string said = d.reason;
  for (const auto& h : d.hops) said += "\n" + h;
  bool header = false;
  for (const auto& o : where) {
    if (!mentions(said, o.name)) continue;
    if (!header) out.text += "  where:\n";
    header = true;
    out.text += "    " + o.name + ": " + o.where.to_string() + " " + o.logical + "\n";
  }
  return out;
}

std::optional<explanation> explain(const import_result& r, const std::string& to,
                                   const std::string& from, std::string& error) {
  return explain(r.network, r.origins, to, from, error);
}

}  // namespace relaylab::cfn
