// relaylab import cfn: CloudFormation templates (YAML or JSON, several stacks at once) into the
// network model of the simulation (harness/sim's network_spec), and that network written as
// topology XML. The syntax folder reads the files, evaluator.hpp evaluates them, and
// network_builder.cpp maps the resources:
//
//   AWS::EC2::VPC, VPCCidrBlock (IPv6), Subnet, SubnetCidrBlock, InternetGateway,
//   VPCGatewayAttachment, RouteTable, Route, SubnetRouteTableAssociation, NatGateway, EIP,
//   EIPAssociation, SecurityGroup (+ SecurityGroupIngress/Egress), NetworkAcl, NetworkAclEntry,
//   SubnetNetworkAclAssociation, Instance, PrefixList; AWS::SSM::Parameter (for the other
//   stacks).
//
// As AWS does: every route table has its local routes; a subnet without an association uses
// its VPC's main route table (local routes only) and network ACL (allow all); a security group
// without SecurityGroupEgress allows all egress; an instance without groups is in its VPC's
// default group; templates written for the account's default VPC get it, as AWS creates it
// (default_vpc.hpp). Addresses a template leaves to AWS are assigned deterministically (private:
// from the subnet's fifth address on, skipping AWS's reserved first four and the last; public:
// from 203.0.113.0/24), in the order of the names. Traffic the model does not carry (UDP,
// ICMP rules) is left out; anything else that would change TCP reachability and cannot be
// modelled (peering, transit gateways, VPN routes, routes to prefix lists, extra network
// interfaces ...) is an error. A security group rule with SourcePrefixListId or
// DestinationPrefixListId becomes one rule per entry of the list: an AWS::EC2::PrefixList of the
// templates, or one given with --prefix-list. A nested stack (AWS::CloudFormation::Stack) is
// read as a stack of its own (nested_stacks.hpp). Other resource types give one warning per
// type.
#pragma once

#include "harness/cfn/evaluator.hpp"
#include "harness/sim/network.hpp"

#include <optional>
#include <string>
#include <vector>

namespace relaylab::cfn {

struct import_options {
  options eval;
  std::vector<std::pair<std::string, std::string>> ips;         // --ip HOST=ADDRESS (private)
  std::vector<std::pair<std::string, std::string>> public_ips;  // --public-ip HOST|EIP=ADDRESS
  /// --prefix-list ID=CIDR[,CIDR...]: the entries of a prefix list no template defines (an
  /// AWS-managed one such as com.amazonaws.REGION.s3).
  std::vector<std::pair<std::string, std::string>> prefix_lists;
  /// --stack-template URL=FILE: the template of a nested stack whose TemplateURL is URL.
  std::vector<std::pair<std::string, std::string>> stack_templates;
};

/// Where a network element came from, for comments in the XML and for --explain.
struct origin {
  std::string kind;  // "vpc", "subnet", "route-table", "security-group" ...
  std::string name;
  std::string logical;
  std::string stack;
  position where;
};

struct import_result {
  sim::network_spec network;  // VPCs and their hosts
  std::vector<origin> origins;
  std::vector<diagnostic> warnings;  // one per resource type outside the network model
  const origin* find(const std::string& kind, const std::string& name) const;
};

/// Reads, evaluates and maps the templates. Errors (file:line:column, the logical ID first)
/// are appended to `errors`; nullopt when there is any.
std::optional<import_result> import_templates(const std::vector<std::string>& files,
                                              const import_options& opts,
                                              std::vector<diagnostic>& errors);
/// As import_templates(), from templates already read (the evaluator's stacks).
std::optional<import_result> import_stacks(std::vector<stack> stacks, const import_options& opts,
                                           std::vector<diagnostic>& errors);

/// The network as a topology file (topologies/relaylab-topology.xsd) that `relaylab check`
/// accepts: <vpc> elements with their gateways, route tables, ACLs, groups and subnets, then
/// <host> elements; each with a comment naming the template line it came from.
std::string write_topology(const import_result& r, const std::string& name,
                           const std::string& generated_by);

}  // namespace relaylab::cfn
