// Graphviz DOT for a topology: each VPC and subnet a cluster, instances with their addresses
// and security group rules, gateways, internet hosts, and optionally the path mail took.
#pragma once

#include "harness/topology/topology.hpp"

#include <string>
#include <vector>

namespace relaylab::topology {

/// One hop of a scenario's mail, drawn as a bold numbered edge between two hosts.
struct drawn_hop {
  std::string from_host, to_host;
  std::string label;  // "587 AUTH PLAIN", "25 status=sent", "25 Network is unreachable"
  bool failed = false;
};

/// Deterministic DOT text (same document → same bytes).
std::string to_dot(const document& doc, const std::vector<drawn_hop>& mail_path = {});

}  // namespace relaylab::topology
