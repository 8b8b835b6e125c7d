// relaylab import cfn --explain HOST:PORT FROM: the path a TCP connection from FROM would take
// through an imported network, hop by hop, with the rule that lets it through each hop or the
// one that drops it. The decision is the simulation's own (sim::network::decide), so what
// --explain says is what `relaylab run` does.
#pragma once

#include "harness/cfn/cfn.hpp"

#include <optional>
#include <string>

namespace relaylab::cfn {

struct explanation {
  std::string text;  // lines ending in '\n'
  bool connected = false;
};

/// `to` is HOST:PORT, HOST a host name (its private address from the same VPC, its public one
/// from elsewhere) or a numeric address; `from` a host name. Errors (nullopt, `error` set): a
/// malformed `to`, an unknown host.
std::optional<explanation> explain(const import_result& r, const std::string& to,
                                   const std::string& from, std::string& error);

/// The same for any network (the topology loader's, with hand-written parts).
std::optional<explanation> explain(const sim::network_spec& net, const std::vector<origin>& where,
                                   const std::string& to, const std::string& from,
                                   std::string& error);

}  // namespace relaylab::cfn
