// The account's default VPC, for templates that rely on it (a SecurityGroup without VpcId, an
// Instance without SubnetId or NetworkInterfaces), as AWS creates it in every region: VPC
// 172.31.0.0/16 with an internet gateway, one /20 default subnet per Availability Zone
// (172.31.0.0/20, 172.31.16.0/20, 172.31.32.0/20 ... for the AZs Fn::GetAZs gives) with
// MapPublicIpOnLaunch, and a route table sending 0.0.0.0/0 to the gateway.
//
// add_default_vpc() adds it as one more stack, written as a template (so the evaluator and the
// builder treat it as any other), and points the templates' default-VPC resources at it: a
// group gets VpcId, an instance gets the SubnetId of the default subnet in its
// AvailabilityZone (the first AZ when it names none, where AWS would pick one). Nothing is
// added when no resource needs it.
#pragma once

#include "harness/cfn/evaluator.hpp"

#include <optional>
#include <string>
#include <vector>

namespace relaylab::cfn {

/// The stack name (AWS::StackName) of the default VPC: its resources' IDs start with
/// "vpc-relaylab-default-vpc-" and the like.
inline const std::string default_vpc_stack = "relaylab-default-vpc";

/// The zones the default VPC has subnets in: --azs, else the region's known zones, else a, b, c.
std::vector<std::string> default_vpc_zones(const options& o);

/// A --param value that names a default-VPC resource by the name the written topology gives
/// it, for a parameter of `type` (AWS::EC2::VPC::Id: "default-vpc"; AWS::EC2::Subnet::Id or a
/// list of them: "default-<zone>", e.g. "default-us-east-1a"): its ID. nullopt otherwise.
/// Templates that deploy into an existing VPC take it so from the account's default VPC.
std::optional<std::string> default_vpc_id(const std::string& type, const std::string& value,
                                          const options& o);

/// Adds the default VPC stack when a resource of `stacks` needs it, or a --param names one of
/// its resources (default_vpc_id()), and fills in that
/// resource's VpcId or SubnetId. Errors (a stack already named default_vpc_stack, an instance's
/// AvailabilityZone written as a zone that o.region has no default subnet in) are appended.
void add_default_vpc(std::vector<stack>& stacks, const options& o, std::vector<diagnostic>& errors);

}  // namespace relaylab::cfn
