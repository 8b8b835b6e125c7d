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

#include <string>
#include <vector>

namespace relaylab::cfn {

/// The stack name (AWS::StackName) of the default VPC: its resources' IDs start with
/// "vpc-relaylab-default-vpc-" and the like.
inline const std::string default_vpc_stack = "relaylab-default-vpc";

/// Adds the default VPC stack when a resource of `stacks` needs it, and fills in that
/// resource's VpcId or SubnetId. Errors (a stack already named default_vpc_stack, an instance's
/// AvailabilityZone written as a zone that o.region has no default subnet in) are appended.
void add_default_vpc(std::vector<stack>& stacks, const options& o, std::vector<diagnostic>& errors);

}  // namespace relaylab::cfn
