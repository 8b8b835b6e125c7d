// Resources → the network model: every resource type, AWS's defaults, address assignment,
// warnings and the errors for what cannot be modelled.
#include "harness/cfn/cfn.hpp"
#include "harness/cfn/explain.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <set>

namespace relaylab::cfn {
namespace {

struct imported {
  std::vector<diagnostic> errors;
  std::optional<import_result> r;
  std::string first_error() const { return errors.empty() ? "" : errors[0].to_string(); }
};

imported import_yaml(const std::vector<std::pair<std::string, std::string>>& files,
                     import_options o = {}) {
  imported out;
  std::vector<stack> stacks;
  for (const auto& [file, text] : files) {
    auto root = parse_template(text, file, out.errors);
    if (!root) return out;
    stacks.push_back({file, file.substr(0, file.find('.')), std::move(*root)});
  }
  out.r = import_stacks(std::move(stacks), o, out.errors);
  return out;
}

const sim::vpc_spec& vpc(const import_result& r) { return r.network.vpcs.at(0); }
template <class T>
const T& named(const std::vector<T>& v, const std::string& name) {
  for (const auto& x : v) {
    if (x.name == name) return x;
  }
  static const T none{};
  ADD_FAILURE() << "nothing named " << name;
  return none;
}

// A VPC with a public and a private subnet, a NAT gateway, an ACL, groups and two instances.
const std::string network =
    "Resources:\n"
    "  Vpc:\n"
    "    Type: AWS::EC2::VPC\n"
    "    Properties: {CidrBlock: 10.0.0.0/16, Tags: [{Key: Name, Value: lab}]}\n"
    "  V6:\n"
    "    Type: AWS::EC2::VPCCidrBlock\n"
    "    Properties: {VpcId: !Ref Vpc, AmazonProvidedIpv6CidrBlock: true}\n"
    "  Igw: {Type: AWS::EC2::InternetGateway}\n"
    "  Attach:\n"
    "    Type: AWS::EC2::VPCGatewayAttachment\n"
    "    Properties: {VpcId: !Ref Vpc, InternetGatewayId: !Ref Igw}\n"
    "  Public:\n"
    "    Type: AWS::EC2::Subnet\n"
    "    Properties:\n"
    "      VpcId: !Ref Vpc\n"
    "      CidrBlock: 10.0.1.0/24\n"
    "      MapPublicIpOnLaunch: true\n"
    "      Ipv6CidrBlock: !Select [1, !Cidr [!Select [0, !GetAtt Vpc.Ipv6CidrBlocks], 4, 64]]\n"
    "  Private:\n"
    "    Type: AWS::EC2::Subnet\n"
    "    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.2.0/24}\n"
    "  PublicRt: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}\n"
    "  PublicDefault:\n"
    "    Type: AWS::EC2::Route\n"
    "    Properties: {RouteTableId: !Ref PublicRt, DestinationCidrBlock: 0.0.0.0/0, "
    "GatewayId: !Ref Igw}\n"
    "  PublicV6:\n"
    "    Type: AWS::EC2::Route\n"
    "    Properties: {RouteTableId: !Ref PublicRt, DestinationIpv6CidrBlock: '::/0', "
    "GatewayId: !Ref Igw}\n"
    "  PublicAssoc:\n"
    "    Type: AWS::EC2::SubnetRouteTableAssociation\n"
    "    Properties: {SubnetId: !Ref Public, RouteTableId: !Ref PublicRt}\n"
    "  NatIp: {Type: AWS::EC2::EIP, Properties: {Domain: vpc}}\n"
    "  Nat:\n"
    "    Type: AWS::EC2::NatGateway\n"
    "    Properties: {SubnetId: !Ref Public, AllocationId: !GetAtt NatIp.AllocationId}\n"
    "  PrivateRt: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}\n"
    "  PrivateDefault:\n"
    "    Type: AWS::EC2::Route\n"
    "    Properties: {RouteTableId: !Ref PrivateRt, DestinationCidrBlock: 0.0.0.0/0, "
    "NatGatewayId: !Ref Nat}\n"
    "  PrivateAssoc:\n"
    "    Type: AWS::EC2::SubnetRouteTableAssociation\n"
    "    Properties: {SubnetId: !Ref Private, RouteTableId: !Ref PrivateRt}\n"
    "  Acl: {Type: AWS::EC2::NetworkAcl, Properties: {VpcId: !Ref Vpc}}\n"
    "  AclIn:\n"
    "    Type: AWS::EC2::NetworkAclEntry\n"
    "    Properties: {NetworkAclId: !Ref Acl, RuleNumber: 100, Protocol: 6, RuleAction: allow,\n"
    "                 CidrBlock: 0.0.0.0/0, PortRange: {From: 25, To: 587}}\n"
    "  AclEphemeral:\n"
    "    Type: AWS::EC2::NetworkAclEntry\n"
    "    Properties: {NetworkAclId: !Ref Acl, RuleNumber: 110, Protocol: 6, RuleAction: allow,\n"
    "                 CidrBlock: 10.0.0.0/16, PortRange: {From: 1024, To: 65535}}\n"
    "  AclOut:\n"
    "    Type: AWS::EC2::NetworkAclEntry\n"
    "    Properties: {NetworkAclId: !Ref Acl, RuleNumber: 100, Protocol: -1, Egress: true,\n"
    "                 RuleAction: allow, CidrBlock: 0.0.0.0/0}\n"
    "  AclUdp:\n"
    "    Type: AWS::EC2::NetworkAclEntry\n"
    "    Properties: {NetworkAclId: !Ref Acl, RuleNumber: 90, Protocol: 17, RuleAction: deny,\n"
    "                 CidrBlock: 0.0.0.0/0, PortRange: {From: 53, To: 53}}\n"
    "  AclAssoc:\n"
    "    Type: AWS::EC2::SubnetNetworkAclAssociation\n"
    "    Properties: {SubnetId: !Ref Private, NetworkAclId: !Ref Acl}\n"
    "  WebSg:\n"
    "    Type: AWS::EC2::SecurityGroup\n"
    "    Properties:\n"
    "      GroupName: web\n"
    "      GroupDescription: web\n"
    "      VpcId: !Ref Vpc\n"
    "      SecurityGroupIngress:\n"
    "        - {IpProtocol: tcp, FromPort: 587, ToPort: 587, CidrIp: 0.0.0.0/0}\n"
    "        - {IpProtocol: udp, FromPort: 53, ToPort: 53, CidrIp: 0.0.0.0/0}\n"
    "  AppSg:\n"
    "    Type: AWS::EC2::SecurityGroup\n"
    "    Properties:\n"
    "      GroupDescription: app\n"
    "      VpcId: !Ref Vpc\n"
    "      SecurityGroupEgress: [{IpProtocol: '-1', CidrIp: 10.0.0.0/16}]\n"
    "      Tags: [{Key: Name, Value: app group}]\n"
    "  WebFromApp:\n"
    "    Type: AWS::EC2::SecurityGroupIngress\n"
    "    Properties: {GroupId: !Ref WebSg, IpProtocol: tcp, FromPort: 25, ToPort: 25,\n"
    "                 SourceSecurityGroupId: !GetAtt AppSg.GroupId}\n"
    "  AppOut:\n"
    "    Type: AWS::EC2::SecurityGroupEgress\n"
    "    Properties: {GroupId: !Ref AppSg, IpProtocol: tcp, FromPort: 443, ToPort: 443,\n"
    "                 CidrIp: 0.0.0.0/0}\n"
    "  Web:\n"
    "    Type: AWS::EC2::Instance\n"
    "    Properties:\n"
    "      NetworkInterfaces:\n"
    "        - {DeviceIndex: 0, SubnetId: !Ref Public, GroupSet: [!Ref WebSg],\n"
    "           Ipv6AddressCount: 1}\n"
    "      Tags: [{Key: Name, Value: !Sub '${AWS::StackName}-web'}]\n"
    "  App:\n"
    "    Type: AWS::EC2::Instance\n"
    "    Properties: {SubnetId: !Ref Private, SecurityGroupIds: [!Ref AppSg]}\n"
    "  Spare:\n"
    "    Type: AWS::EC2::Instance\n"
    "    Properties: {SubnetId: !Ref Private, PrivateIpAddress: 10.0.2.4}\n"
    "  Bucket: {Type: AWS::S3::Bucket}\n"
    "  Role: {Type: AWS::IAM::Role}\n"
    "  Role2: {Type: AWS::IAM::Role}\n";

TEST(cfn_network, every_resource_type) {
  const auto im = import_yaml({{"net.yml", network}});
  ASSERT_TRUE(im.r) << im.first_error();
  const auto& v = vpc(*im.r);
  EXPECT_EQ(v.name, "lab");
  EXPECT_EQ(v.cidr, "10.0.0.0/16");
  EXPECT_EQ(v.cidr6, "2600:1f18::/56");
  EXPECT_EQ(v.internet_gateway, "Igw");
  ASSERT_EQ(v.nat_gateways.size(), 1u);
  EXPECT_EQ(v.nat_gateways[0].subnet, "Public");
  EXPECT_EQ(v.nat_gateways[0].public_ip, "203.0.113.1");
  const auto& pub = named(v.subnets, "Public");
  EXPECT_EQ(pub.route_table, "PublicRt");
  EXPECT_EQ(pub.cidr6, "2600:1f18:0:1::/64");
  EXPECT_EQ(pub.nacl, "");
  EXPECT_EQ(named(v.subnets, "Private").nacl, "Acl");
  const auto& prt = named(v.route_tables, "PublicRt");
  ASSERT_EQ(prt.routes.size(), 4u);  // local v4, local v6, 0.0.0.0/0, ::/0
  EXPECT_EQ(prt.routes[0].destination, "10.0.0.0/16");
  EXPECT_EQ(prt.routes[0].target, sim::route_target::local);
  EXPECT_EQ(prt.routes[2].target, sim::route_target::internet_gateway);
  EXPECT_EQ(named(v.route_tables, "PrivateRt").routes.back().target_name, "Nat");
  const auto& acl = named(v.nacls, "Acl");
  ASSERT_EQ(acl.inbound.size(), 2u);  // the UDP entry changes nothing for TCP
  EXPECT_EQ(acl.inbound[0].port_from, 25);
  EXPECT_EQ(acl.inbound[0].port_to, 587);
  ASSERT_EQ(acl.outbound.size(), 1u);
  EXPECT_EQ(acl.outbound[0].protocol, "all");
  const auto& web = named(v.security_groups, "web");
  ASSERT_EQ(web.ingress.size(), 2u);
  EXPECT_EQ(web.ingress[0].port_from, 587);
  EXPECT_EQ(web.ingress[1].group, "app_group");
  ASSERT_EQ(web.egress.size(), 2u);  // AWS's default egress, IPv4 and IPv6
  EXPECT_EQ(web.egress[0].cidr, "0.0.0.0/0");
  const auto& app = named(v.security_groups, "app_group");
  ASSERT_EQ(app.egress.size(), 2u);  // its own, no default, plus the egress resource
  EXPECT_EQ(app.egress[0].cidr, "10.0.0.0/16");
  EXPECT_EQ(app.egress[1].port_from, 443);
  const auto& hosts = im.r->network.hosts;
  ASSERT_EQ(hosts.size(), 3u);
  const auto& h_app = named(hosts, "App");
  EXPECT_EQ(h_app.ipv4, "10.0.2.5");  // .4 is Spare's; .0-.3 are AWS's
  EXPECT_EQ(h_app.public_ipv4, "");
  EXPECT_EQ(named(hosts, "Spare").ipv4, "10.0.2.4");
  EXPECT_EQ(named(hosts, "Spare").security_groups, std::vector<std::string>{"lab-default"});
  const auto& h_web = named(hosts, "net-web");
  EXPECT_EQ(h_web.ipv4, "10.0.1.4");
  EXPECT_EQ(h_web.public_ipv4, "203.0.113.2");
  EXPECT_EQ(h_web.ipv6, "2600:1f18:0:1::4");
  EXPECT_EQ(h_web.security_groups, std::vector<std::string>{"web"});
  // One warning per type outside the model.
  ASSERT_EQ(im.r->warnings.size(), 2u);
  EXPECT_EQ(im.r->warnings[0].message,
            "AWS::IAM::Role is outside the network model: left out (2 resources: Role, Role2)");
  EXPECT_EQ(im.r->warnings[1].where.to_string(), "net.yml:100:3");
}

TEST(cfn_network, ip_overrides_and_explain) {
  import_options o;
  o.ips = {{"App", "10.0.2.200"}};
  o.public_ips = {{"net-web", "198.51.100.9"}};
  const auto im = import_yaml({{"net.yml", network}}, o);
  ASSERT_TRUE(im.r) << im.first_error();
  EXPECT_EQ(named(im.r->network.hosts, "App").ipv4, "10.0.2.200");
  EXPECT_EQ(named(im.r->network.hosts, "net-web").public_ipv4, "198.51.100.9");
  std::string error;
  const auto e = explain(*im.r, "net-web:25", "App", error);
  ASSERT_TRUE(e) << error;
  EXPECT_TRUE(e->connected) << e->text;
  EXPECT_NE(e->text.find("security group web ingress tcp 25 from members of app_group: allowed"),
            std::string::npos)
      << e->text;
  const auto blocked = explain(*im.r, "net-web:22", "App", error);
  ASSERT_TRUE(blocked);
  EXPECT_FALSE(blocked->connected);
  EXPECT_NE(
      blocked->text.find("security groups of net-web allow no inbound TCP 22 from 10.0.2.200"),
      std::string::npos)
      << blocked->text;
  EXPECT_NE(blocked->text.find("    web: net.yml:63:3 WebSg\n"), std::string::npos)
      << blocked->text;
  o.ips = {{"App", "10.0.2.255"}};
  EXPECT_NE(import_yaml({{"net.yml", network}}, o).first_error().find("AWS reserves"),
            std::string::npos);
}

TEST(cfn_network, order_of_templates_does_not_matter) {
  const std::string a =
      "Resources:\n"
      "  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.1.0.0/16}}\n"
      "Outputs:\n"
      "  V: {Value: !Ref Vpc, Export: {Name: vpc-id}}\n";
  const std::string b =
      "Resources:\n"
      "  S:\n"
      "    Type: AWS::EC2::Subnet\n"
      "    Properties: {VpcId: !ImportValue vpc-id, CidrBlock: 10.1.0.0/24}\n"
      "  H: {Type: AWS::EC2::Instance, Properties: {SubnetId: !Ref S}}\n";
  const auto x = import_yaml({{"a.yml", a}, {"b.yml", b}});
  const auto y = import_yaml({{"b.yml", b}, {"a.yml", a}});
  ASSERT_TRUE(x.r && y.r) << x.first_error() << y.first_error();
  EXPECT_EQ(write_topology(*x.r, "t", ""), write_topology(*y.r, "t", ""));
  EXPECT_EQ(x.r->network.hosts.at(0).ipv4, "10.1.0.4");
  EXPECT_EQ(x.r->network.vpcs.at(0).subnets.at(0).route_table, "Vpc-main");
}

TEST(cfn_network, what_cannot_be_modelled_is_an_error) {
  const std::string vpc =
      "Resources:\n  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n";
  auto err = [&](const std::string& more) {
    return import_yaml({{"t.yml", vpc + more}}).first_error();
  };
  EXPECT_EQ(err("  S: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: "
                "10.1.0.0/24}}\n"),
            "t.yml:3:72: error: S: subnet 10.1.0.0/24 is not inside its VPC Vpc's 10.0.0.0/16");
  EXPECT_EQ(err("  P: {Type: AWS::EC2::VPCPeeringConnection}\n"),
            "t.yml:3:3: error: P: AWS::EC2::VPCPeeringConnection: VPC peering would change "
            "which connections go through, and cannot be modelled");
  EXPECT_EQ(err("  N: {Type: AWS::CloudFormation::Stack, Properties: {TemplateURL: "
                "https://example.com/vpc.yml}}\n"),
            "t.yml:3:67: error: N: the nested stack's template is at "
            "'https://example.com/vpc.yml', which relaylab import does not fetch: give it as a "
            "file with --stack-template https://example.com/vpc.yml=FILE (the template before "
            "`aws cloudformation package` uploaded it, or a copy: aws s3 cp)");
  EXPECT_NE(err("  T: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}\n"
                "  R: {Type: AWS::EC2::Route, Properties: {RouteTableId: !Ref T, "
                "DestinationCidrBlock: 0.0.0.0/0, GatewayId: igw-123}}\n")
                .find("GatewayId: 'igw-123' is not a AWS::EC2::InternetGateway"),
            std::string::npos);
  EXPECT_NE(err("  S: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: "
                "10.0.0.0/24}}\n"
                "  E: {Type: AWS::EC2::EIP}\n"
                "  N: {Type: AWS::EC2::NatGateway, Properties: {SubnetId: !Ref S, "
                "AllocationId: !GetAtt E.AllocationId}}\n")
                .find("whose route table has no 0.0.0.0/0 route to an internet gateway"),
            std::string::npos);
}

// Resources that rely on the default VPC (not in any template): errors naming the resource and
// what to add.
// Templates for the account's default VPC import as AWS runs them: the default VPC (172.31.0.0/16,
// a /20 per AZ with MapPublicIpOnLaunch, an internet gateway) is added, a group without VpcId
// is in it, an instance without a subnet goes into its AZ's default subnet.
TEST(cfn_network, default_vpc_is_modelled_as_aws_creates_it) {
  const auto im = import_yaml({{"t.yml",
                                "Resources:\n"
                                "  G:\n"
                                "    Type: AWS::EC2::SecurityGroup\n"
                                "    Properties:\n"
                                "      GroupDescription: web\n"
                                "      SecurityGroupIngress:\n"
                                "        - {IpProtocol: tcp, FromPort: 80, ToPort: 80, CidrIp: "
                                "0.0.0.0/0}\n"
                                "        - {IpProtocol: tcp, FromPort: 22, ToPort: 22, "
                                "SourceSecurityGroupName: !Ref Admin}\n"
                                "  Admin: {Type: AWS::EC2::SecurityGroup, Properties: "
                                "{GroupDescription: admin}}\n"
                                "  Web: {Type: AWS::EC2::Instance, Properties: {ImageId: ami-1, "
                                "SecurityGroups: [!Ref G]}}\n"
                                "  Other:\n"
                                "    Type: AWS::EC2::Instance\n"
                                "    Properties: {AvailabilityZone: !Select [2, !GetAZs ''], "
                                "SecurityGroups: [!Ref Admin]}\n"}});
  ASSERT_TRUE(im.r) << im.first_error();
  const auto& v = vpc(*im.r);
  EXPECT_EQ(v.name, "default-vpc");
  EXPECT_EQ(v.cidr, "172.31.0.0/16");
  EXPECT_FALSE(v.internet_gateway.empty());
  ASSERT_EQ(v.subnets.size(), 6u);  // one per Availability Zone of us-east-1 (a to f)
  EXPECT_EQ(named(v.subnets, "default-us-east-1a").cidr, "172.31.0.0/20");
  EXPECT_EQ(named(v.subnets, "default-us-east-1b").cidr, "172.31.16.0/20");
  EXPECT_EQ(named(v.subnets, "default-us-east-1c").cidr, "172.31.32.0/20");
  EXPECT_EQ(named(v.subnets, "default-us-east-1f").cidr, "172.31.80.0/20");
  const auto& web = named(im.r->network.hosts, "Web");
  EXPECT_EQ(web.subnet, "default-us-east-1a");  // no AvailabilityZone: the first AZ
  EXPECT_EQ(web.ipv4, "172.31.0.4");
  EXPECT_FALSE(web.public_ipv4.empty());  // MapPublicIpOnLaunch
  EXPECT_EQ(web.security_groups, std::vector<std::string>{"G"});
  const auto& other = named(im.r->network.hosts, "Other");
  EXPECT_EQ(other.subnet, "default-us-east-1c");
  EXPECT_EQ(other.ipv4, "172.31.32.4");
  const auto& g = named(v.security_groups, "G");
  ASSERT_EQ(g.ingress.size(), 2u);
  EXPECT_EQ(g.ingress[1].group, "Admin");
}

// A template that deploys into an existing VPC takes the default VPC's by the names the
// written topology gives them: --param VpcId=default-vpc, SubnetId=default-<zone>.
TEST(cfn_network, default_vpc_resources_given_as_parameters) {
  const std::string t =
      "Parameters:\n"
      "  VpcId: {Type: 'AWS::EC2::VPC::Id'}\n"
      "  SubnetId: {Type: 'AWS::EC2::Subnet::Id'}\n"
      "  Subnets: {Type: 'List<AWS::EC2::Subnet::Id>'}\n"
      "Resources:\n"
      "  G: {Type: AWS::EC2::SecurityGroup, Properties: {GroupDescription: g, VpcId: !Ref "
      "VpcId}}\n"
      "  A: {Type: AWS::EC2::Instance, Properties: {SubnetId: !Ref SubnetId, SecurityGroupIds: "
      "[!Ref G]}}\n"
      "  B: {Type: AWS::EC2::Instance, Properties: {SubnetId: !Select [1, !Ref Subnets]}}\n";
  import_options o;
  o.eval.params = {{"VpcId", "default-vpc"},
                   {"SubnetId", "default-us-east-1d"},
                   {"Subnets", "default-us-east-1a, default-us-east-1b"}};
  const auto im = import_yaml({{"t.yml", t}}, o);
  ASSERT_TRUE(im.r) << im.first_error();
  const auto& v = vpc(*im.r);
  EXPECT_EQ(v.name, "default-vpc");
  EXPECT_EQ(named(im.r->network.hosts, "A").subnet, "default-us-east-1d");
  EXPECT_EQ(named(im.r->network.hosts, "A").ipv4, "172.31.48.4");
  EXPECT_EQ(named(im.r->network.hosts, "B").subnet, "default-us-east-1b");
  EXPECT_EQ(named(im.r->network.hosts, "A").security_groups, std::vector<std::string>{"G"});
  // A zone the region has no default subnet in stays a value nothing has.
  o.eval.params = {{"VpcId", "default-vpc"},
                   {"SubnetId", "default-us-east-1z"},
                   {"Subnets", "default-us-east-1a, default-us-east-1b"}};
  const auto bad = import_yaml({{"t.yml", t}}, o);
  EXPECT_FALSE(bad.r);
  EXPECT_NE(bad.first_error().find("'default-us-east-1z' is not a AWS::EC2::Subnet"),
            std::string::npos)
      << bad.first_error();
}

// What the default VPC cannot stand in for stays an error naming what to add.
TEST(cfn_network, default_vpc_errors_name_what_to_add) {
  const std::string vpc =
      "Resources:\n  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n"
      "  S: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.0.0/24}}\n";
  auto errors = [&](const std::string& more) {
    const auto im = import_yaml({{"t.yml", vpc + more}});
    std::string out;
    for (const auto& e : im.errors) out += e.to_string() + "\n";
    return out;
  };
  EXPECT_EQ(errors("  I:\n    Type: AWS::EC2::Instance\n    Properties:\n"
                   "      NetworkInterfaces: [{DeviceIndex: 0, AssociatePublicIpAddress: true}]\n"),
            "t.yml:4:3: error: I: NetworkInterfaces without SubnetId: add SubnetId naming an "
            "AWS::EC2::Subnet of the templates (only an instance without NetworkInterfaces is "
            "placed in the default VPC)\n");
  EXPECT_EQ(errors("  G: {Type: AWS::EC2::SecurityGroup, Properties: {GroupDescription: g}}\n"
                   "  I: {Type: AWS::EC2::Instance, Properties: {SubnetId: !Ref S, "
                   "SecurityGroupIds: [!Ref G]}}\n"),
            "t.yml:5:83: error: I: security group G is not in Vpc but in default-vpc\n");
  EXPECT_EQ(errors("  I: {Type: AWS::EC2::Instance, Properties: {AvailabilityZone: eu-west-1a}}\n"),
            "t.yml:4:64: error: I: AvailabilityZone 'eu-west-1a' has no default subnet: the "
            "default VPC of us-east-1 has us-east-1a, us-east-1b, us-east-1c, us-east-1d, "
            "us-east-1e and us-east-1f (--region or --azs, or add SubnetId)\n");
}

// AWS::EC2::EgressOnlyInternetGateway: attached by its VpcId, a route target for IPv6 only;
// the imported network lets IPv6 out of the private subnet and no connection in.
const std::string egress_only =
    "Resources:\n"
    "  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n"
    "  V6: {Type: AWS::EC2::VPCCidrBlock, Properties: {VpcId: !Ref Vpc, "
    "AmazonProvidedIpv6CidrBlock: true}}\n"
    "  Eigw:\n"
    "    Type: AWS::EC2::EgressOnlyInternetGateway\n"
    "    Properties: {VpcId: !Ref Vpc}\n"
    "  Private:\n"
    "    Type: AWS::EC2::Subnet\n"
    "    DependsOn: V6\n"
    "    Properties:\n"
    "      VpcId: !Ref Vpc\n"
    "      CidrBlock: 10.0.1.0/24\n"
    "      AssignIpv6AddressOnCreation: true\n"
    "      Ipv6CidrBlock: !Select [1, !Cidr [!Select [0, !GetAtt Vpc.Ipv6CidrBlocks], 4, 64]]\n"
    "  Rt: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}\n"
    "  Out6:\n"
    "    Type: AWS::EC2::Route\n"
    "    Properties: {RouteTableId: !Ref Rt, DestinationIpv6CidrBlock: '::/0',\n"
    "                 EgressOnlyInternetGatewayId: !Ref Eigw}\n"
    "  Assoc: {Type: AWS::EC2::SubnetRouteTableAssociation, Properties: {SubnetId: !Ref "
    "Private, RouteTableId: !Ref Rt}}\n"
    "  Sg:\n"
    "    Type: AWS::EC2::SecurityGroup\n"
    "    Properties:\n"
    "      GroupDescription: smtp\n"
    "      VpcId: !Ref Vpc\n"
    "      SecurityGroupIngress: [{IpProtocol: tcp, FromPort: 25, ToPort: 25, CidrIpv6: '::/0'}]\n"
    "  Mta: {Type: AWS::EC2::Instance, Properties: {SubnetId: !Ref Private, "
    "SecurityGroupIds: [!Ref Sg]}}\n"
    "Outputs:\n"
    "  Gw: {Value: !GetAtt Eigw.Id}\n";

TEST(cfn_network, egress_only_internet_gateway_routes_ipv6_out) {
  const auto im = import_yaml({{"t.yml", egress_only}});
  ASSERT_TRUE(im.r) << im.first_error();
  EXPECT_TRUE(im.r->warnings.empty()) << im.r->warnings.front().to_string();
  const auto& v = vpc(*im.r);
  EXPECT_EQ(v.egress_only_internet_gateway, "Eigw");
  EXPECT_EQ(v.internet_gateway, "");
  const auto& rt = named(v.route_tables, "Rt");
  ASSERT_EQ(rt.routes.size(), 3u);
  EXPECT_EQ(rt.routes[2].destination, "::/0");
  EXPECT_EQ(rt.routes[2].target, sim::route_target::egress_only_internet_gateway);
  EXPECT_EQ(rt.routes[2].target_name, "Eigw");
  const auto xml = write_topology(*im.r, "t", "");
  EXPECT_NE(xml.find("    <egress-only-internet-gateway name=\"Eigw\"/>\n"), std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<route destination=\"::/0\" target=\"Eigw\"/>"), std::string::npos);
  const auto& mta = named(im.r->network.hosts, "Mta");
  ASSERT_FALSE(mta.ipv6.empty());
  // Out: through the gateway, seen as its own address; in: dropped at the gateway.
  import_result r = *im.r;
  sim::host_spec mx;
  mx.name = "mx";
  mx.ipv4 = "108.177.97.26";
  mx.ipv6 = "2404:6800:4008:c07::1a";
  r.network.hosts.push_back(mx);
  std::string error;
  const auto out = explain(r, "2404:6800:4008:c07::1a:25", "Mta", error);
  ASSERT_TRUE(out) << error;
  EXPECT_NE(out->text.find("::/0 → egress-only internet gateway Eigw"), std::string::npos)
      << out->text;
  EXPECT_NE(out->text.find("    Eigw: t.yml:4:3 Eigw\n"), std::string::npos) << out->text;
  const auto in = explain(r, mta.ipv6 + ":25", "mx", error);
  ASSERT_TRUE(in) << error;
  EXPECT_FALSE(in->connected);
  EXPECT_NE(in->text.find("egress-only internet gateway Eigw of VPC Vpc lets no connection in"),
            std::string::npos)
      << in->text;
}

TEST(cfn_network, egress_only_internet_gateway_errors) {
  auto err = [&](const std::string& from, const std::string& to) {
    std::string t = egress_only;
    t.replace(t.find(from), from.size(), to);
    return import_yaml({{"t.yml", t}}).first_error();
  };
  // AWS refuses an IPv4 destination.
  EXPECT_EQ(err("DestinationIpv6CidrBlock: '::/0'", "DestinationCidrBlock: 0.0.0.0/0"),
            "t.yml:18:63: error: Out6: egress-only internet gateway Eigw carries IPv6 only "
            "(DestinationIpv6CidrBlock), not 0.0.0.0/0");
  EXPECT_EQ(err("EgressOnlyInternetGatewayId: !Ref Eigw", "EgressOnlyInternetGatewayId: eigw-1"),
            "t.yml:19:47: error: Out6: EgressOnlyInternetGatewayId: 'eigw-1' is not a "
            "AWS::EC2::EgressOnlyInternetGateway of the templates given");
  EXPECT_EQ(err("    Properties: {VpcId: !Ref Vpc}\n",
                "    Properties: {VpcId: !Ref Vpc}\n"
                "  Eigw2: {Type: AWS::EC2::EgressOnlyInternetGateway, Properties: {VpcId: !Ref "
                "Vpc}}\n"),
            "t.yml:7:3: error: Eigw2: VPC Vpc already has egress-only internet gateway Eigw; a "
            "second one cannot be modelled");
  EXPECT_EQ(err("    Properties: {VpcId: !Ref Vpc}\n",
                "    Properties: {VpcId: !Ref Other}\n"
                "  Other: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.1.0.0/16}}\n"),
            "t.yml:20:47: error: Out6: egress-only internet gateway Eigw is attached to Other, "
            "not to Vpc (its VpcId)");
}

// An AWS::EC2::NetworkInterface as an instance's DeviceIndex 0 interface (NetworkInterfaceId)
// gives the host its subnet, groups and addresses; an EIPAssociation on it the public address;
// Fn::GetAtt PrimaryPrivateIpAddress its address. One no instance uses is left out, warned.
const std::string interface_stack =
    "Resources:\n"
    "  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n"
    "  Igw: {Type: AWS::EC2::InternetGateway}\n"
    "  Attach: {Type: AWS::EC2::VPCGatewayAttachment, Properties: {VpcId: !Ref Vpc, "
    "InternetGatewayId: !Ref Igw}}\n"
    "  Public: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.1.0/24, "
    "MapPublicIpOnLaunch: true}}\n"
    "  Rt: {Type: AWS::EC2::RouteTable, Properties: {VpcId: !Ref Vpc}}\n"
    "  Out: {Type: AWS::EC2::Route, Properties: {RouteTableId: !Ref Rt, DestinationCidrBlock: "
    "0.0.0.0/0, GatewayId: !Ref Igw}}\n"
    "  Assoc: {Type: AWS::EC2::SubnetRouteTableAssociation, Properties: {SubnetId: !Ref "
    "Public, RouteTableId: !Ref Rt}}\n"
    "  Sg:\n"
    "    Type: AWS::EC2::SecurityGroup\n"
    "    Properties:\n"
    "      GroupDescription: smtp\n"
    "      VpcId: !Ref Vpc\n"
    "      SecurityGroupIngress: [{IpProtocol: tcp, FromPort: 25, ToPort: 25, CidrIp: 0.0.0.0/0}]\n"
    "  Ip: {Type: AWS::EC2::EIP, Properties: {Domain: vpc}}\n"
    "  Eni:\n"
    "    Type: AWS::EC2::NetworkInterface\n"
    "    Properties: {SubnetId: !Ref Public, GroupSet: [!Ref Sg], PrivateIpAddress: 10.0.1.50}\n"
    "  IpAssoc: {Type: AWS::EC2::EIPAssociation, Properties: {AllocationId: !GetAtt "
    "Ip.AllocationId, NetworkInterfaceId: !Ref Eni}}\n"
    "  Mta:\n"
    "    Type: AWS::EC2::Instance\n"
    "    Properties:\n"
    "      NetworkInterfaces: [{DeviceIndex: '0', NetworkInterfaceId: !Ref Eni}]\n"
    "  Spare: {Type: AWS::EC2::NetworkInterface, Properties: {SubnetId: !Ref Public}}\n"
    "  Plain: {Type: AWS::EC2::NetworkInterface, Properties: {SubnetId: !Ref Public}}\n"
    "  Other:\n"
    "    Type: AWS::EC2::Instance\n"
    "    Properties:\n"
    "      NetworkInterfaces: [{DeviceIndex: 0, NetworkInterfaceId: !Ref Plain}]\n"
    "  Probe:\n"
    "    Type: AWS::EC2::SecurityGroup\n"
    "    Properties:\n"
    "      GroupDescription: probe\n"
    "      VpcId: !Ref Vpc\n"
    "      SecurityGroupIngress:\n"
    "        - {IpProtocol: tcp, FromPort: 1, ToPort: 1, CidrIp: !Sub "
    "'${Eni.PrimaryPrivateIpAddress}/32',\n"
    "           Description: !Sub ['secondary: [${S}]', {S: !Join [',', !GetAtt "
    "Eni.SecondaryPrivateIpAddresses]}]}\n"
    "        - {IpProtocol: tcp, FromPort: 1, ToPort: 1, CidrIp: !Sub "
    "'${Plain.PrimaryPrivateIpAddress}/32'}\n"
    "Outputs:\n"
    "  Public: {Value: !Ref Ip}\n";

TEST(cfn_network, network_interface_is_the_instances_interface) {
  const auto im = import_yaml({{"t.yml", interface_stack}});
  ASSERT_TRUE(im.r) << im.first_error();
  const auto& hosts = im.r->network.hosts;
  ASSERT_EQ(hosts.size(), 2u);  // Mta and Other; Spare is left out
  const auto& mta = named(hosts, "Mta");
  EXPECT_EQ(mta.subnet, "Public");
  EXPECT_EQ(mta.ipv4, "10.0.1.50");
  EXPECT_EQ(mta.public_ipv4, "203.0.113.1");  // the EIP, through the interface
  EXPECT_EQ(mta.security_groups, std::vector<std::string>{"Sg"});
  const auto& other = named(hosts, "Other");
  EXPECT_EQ(other.security_groups, std::vector<std::string>{"Vpc-default"});  // no GroupSet
  // An existing interface gets no public address at launch (MapPublicIpOnLaunch is for the
  // interface AWS creates).
  EXPECT_EQ(other.public_ipv4, "");
  ASSERT_EQ(im.r->warnings.size(), 1u);
  EXPECT_EQ(im.r->warnings[0].where.to_string(), "t.yml:24:3");
  EXPECT_EQ(im.r->warnings[0].message,
            "AWS::EC2::NetworkInterface attached to no instance (as its DeviceIndex 0 "
            "NetworkInterfaceId): left out, nothing answers at its address (1 resource: Spare)");
  // Fn::GetAtt of the interfaces, as a group rule shows them: its address, none secondary.
  const auto& probe = named(vpc(*im.r).security_groups, "Probe");
  ASSERT_EQ(probe.ingress.size(), 2u);
  EXPECT_EQ(probe.ingress[0].cidr, "10.0.1.50/32");
  EXPECT_EQ(probe.ingress[0].description, "secondary: []");
  EXPECT_EQ(probe.ingress[1].cidr, other.ipv4 + "/32");
}

TEST(cfn_network, network_interface_errors) {
  auto err = [&](const std::string& from, const std::string& to) {
    std::string t = interface_stack;
    t.replace(t.find(from), from.size(), to);
    return import_yaml({{"t.yml", t}}).first_error();
  };
  // A second interface stays an error; so does one attached after launch.
  EXPECT_EQ(err("[{DeviceIndex: '0', NetworkInterfaceId: !Ref Eni}]",
                "[{DeviceIndex: '0', NetworkInterfaceId: !Ref Eni}, {DeviceIndex: '1', "
                "NetworkInterfaceId: !Ref Spare}]"),
            "t.yml:23:26: error: Mta: NetworkInterfaces: one interface (DeviceIndex 0) can be "
            "modelled, not 2");
  EXPECT_EQ(
      err("  Spare: {Type: AWS::EC2::NetworkInterface, Properties: {SubnetId: !Ref Public}}\n",
          "  Spare: {Type: AWS::EC2::NetworkInterface, Properties: {SubnetId: !Ref Public}}\n"
          "  Second: {Type: AWS::EC2::NetworkInterfaceAttachment, Properties: {DeviceIndex: "
          "1, InstanceId: !Ref Mta, NetworkInterfaceId: !Ref Spare}}\n"),
      "t.yml:25:3: error: Second: AWS::EC2::NetworkInterfaceAttachment: a network "
      "interface attached after launch (a second interface) would change which "
      "connections go through, and cannot be modelled");
  EXPECT_EQ(err("NetworkInterfaceId: !Ref Plain}", "NetworkInterfaceId: !Ref Eni}"),
            "t.yml:29:64: error: Other: NetworkInterfaces: network interface Eni is already "
            "the interface of instance Mta");
  EXPECT_EQ(err("{DeviceIndex: '0', NetworkInterfaceId: !Ref Eni}",
                "{DeviceIndex: '0', NetworkInterfaceId: !Ref Eni, SubnetId: !Ref Public}"),
            "t.yml:23:86: error: Mta: NetworkInterfaces: SubnetId cannot be given with "
            "NetworkInterfaceId (the interface Eni has its own; AWS refuses both)");
  EXPECT_EQ(err("PrivateIpAddress: 10.0.1.50}",
                "PrivateIpAddress: 10.0.1.50, "
                "SecondaryPrivateIpAddressCount: 60}"),
            "t.yml:18:123: error: Eni: SecondaryPrivateIpAddressCount: expected 0 to 49 "
            "addresses with the listed ones, got '60'");
  EXPECT_EQ(err("NetworkInterfaceId: !Ref Eni}}",
                "NetworkInterfaceId: !Ref Eni, "
                "PrivateIpAddress: 10.0.1.51}}"),
            "t.yml:19:145: error: IpAssoc: PrivateIpAddress 10.0.1.51 is no address of Mta "
            "(primary 10.0.1.50, 0 secondary)");
  EXPECT_EQ(err("NetworkInterfaceId: !Ref Plain}", "NetworkInterfaceId: eni-1}"),
            "t.yml:29:64: error: Other: NetworkInterfaces: NetworkInterfaceId: 'eni-1' is not a "
            "AWS::EC2::NetworkInterface of the templates given");
}

// Secondary private addresses: listed (PrivateIpAddresses, not Primary) and counted
// (SecondaryPrivateIpAddressCount, assigned after every primary address), on an interface
// resource and inline; GetAtt SecondaryPrivateIpAddresses; an EIP associated with one; --ip
// still sets the primary; an address outside the subnet is an error at its place.
TEST(cfn_network, secondary_private_addresses) {
  auto with = [&](const std::vector<std::pair<std::string, std::string>>& edits,
                  import_options o = {}) {
    std::string t = interface_stack;
    for (const auto& [from, to] : edits) t.replace(t.find(from), from.size(), to);
    return import_yaml({{"t.yml", t}}, o);
  };
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"PrivateIpAddress: 10.0.1.50}",
       "PrivateIpAddresses: [{PrivateIpAddress: 10.0.1.50, Primary: true}, {PrivateIpAddress: "
       "10.0.1.60, Primary: false}], SecondaryPrivateIpAddressCount: 2}"},
      {"NetworkInterfaceId: !Ref Eni}}",
       "NetworkInterfaceId: !Ref Eni, PrivateIpAddress: !Select [1, !GetAtt "
       "Eni.SecondaryPrivateIpAddresses]}}"},
      {"NetworkInterfaceId: !Ref Plain}]",
       "SubnetId: !Ref Public, SecondaryPrivateIpAddressCount: 1}]"}};
  const auto im = with(edits);
  ASSERT_TRUE(im.r) << im.first_error();
  const auto& mta = named(im.r->network.hosts, "Mta");
  EXPECT_EQ(mta.ipv4, "10.0.1.50");
  EXPECT_EQ(mta.public_ipv4, "");  // the EIP went to a secondary address
  const std::vector<sim::secondary_ipv4_spec> want = {
      {"10.0.1.60", ""}, {"10.0.1.7", "203.0.113.1"}, {"10.0.1.8", ""}};
  EXPECT_EQ(mta.secondary_ipv4, want);
  const auto& other = named(im.r->network.hosts, "Other");
  // Primaries first (Other, then the interfaces Plain and Spare no instance uses): secondary
  // addresses move no other address.
  EXPECT_EQ(other.ipv4, "10.0.1.4");
  const std::vector<sim::secondary_ipv4_spec> other_want = {{"10.0.1.9", ""}};
  EXPECT_EQ(other.secondary_ipv4, other_want);
  // Written into the topology, which the loader's checks accept.
  const auto xml = write_topology(*im.r, "t", "test");
  EXPECT_NE(xml.find("    <secondary-ipv4 address=\"10.0.1.7\" public-ipv4=\"203.0.113.1\"/>\n"),
            std::string::npos)
      << xml;
  // Reached as the host, with its groups: TCP 25 from the internet to the EIP.
  std::string error;
  auto r = *im.r;
  sim::host_spec mx;
  mx.name = "mx";
  mx.ipv4 = "198.51.100.7";
  r.network.hosts.push_back(mx);
  const auto path = explain(r, "203.0.113.1:25", "mx", error);
  ASSERT_TRUE(path) << error;
  EXPECT_TRUE(path->connected) << path->text;
  const auto blocked = explain(r, "203.0.113.1:587", "mx", error);
  ASSERT_TRUE(blocked) << error;
  EXPECT_FALSE(blocked->connected) << blocked->text;
  // --ip sets the primary address; the assigned secondaries move around it.
  import_options o;
  o.ips = {{"Other", "10.0.1.5"}};
  const auto given = with(edits, o);
  ASSERT_TRUE(given.r) << given.first_error();
  EXPECT_EQ(named(given.r->network.hosts, "Other").ipv4, "10.0.1.5");
  EXPECT_EQ(named(given.r->network.hosts, "Mta").secondary_ipv4.at(1).address, "10.0.1.7");
  // Errors at the address written.
  EXPECT_EQ(with({{"PrivateIpAddress: 10.0.1.50}",
                   "PrivateIpAddresses: [{PrivateIpAddress: 10.0.1.50, Primary: true}, "
                   "{PrivateIpAddress: 10.0.2.9, Primary: false}]}"}})
                .first_error(),
            "t.yml:18:148: error: Mta: secondary address 10.0.2.9 is not an address AWS can "
            "assign in subnet 10.0.1.0/24");
  EXPECT_EQ(with({{"PrivateIpAddress: 10.0.1.50}",
                   "PrivateIpAddresses: [{PrivateIpAddress: 10.0.1.50, Primary: false}]}"}})
                .first_error(),
            "t.yml:18:82: error: Eni: PrivateIpAddresses: one entry must be Primary: true (AWS "
            "needs the primary address)");
}

// Templates in the styles others write (testdata/cfn/foreign: the default VPC, old-style JSON
// with Mappings and Fn::Join, rules and ACLs as separate resources, public SSM AMI parameters)
// import without edits; warnings only name resource types outside the network model.
TEST(cfn_network, foreign_templates_import_without_edits) {
  const std::filesystem::path dir = std::string(RELAYLAB_SOURCE_DIR) + "/testdata/cfn/foreign";
  std::size_t files = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.is_directory()) continue;  // stacks/: several stacks, below
    ++files;
    std::vector<diagnostic> errors;
    import_options o;
    o.eval.params = {{"KeyName", "lab"}};
    const auto r = import_templates({f.path().string()}, o, errors);
    ASSERT_TRUE(r) << f.path() << ": " << (errors.empty() ? "" : errors[0].to_string());
    EXPECT_FALSE(r->network.hosts.empty()) << f.path();
    for (const auto& w : r->warnings) {
      EXPECT_NE(w.message.find(" is outside the network model: left out"), std::string::npos)
          << f.path() << ": " << w.to_string();
    }
  }
  EXPECT_GE(files, 5u);
}

// testdata/cfn/foreign/stacks: a network stack exporting "${AWS::StackName}-NAME" and a server
// stack importing "${ParentVPCStack}-NAME", as such collections are deployed: the stack name is
// the file name, so --param ParentVPCStack=dualstack-vpc joins them.
TEST(cfn_network, foreign_stacks_join_by_exported_stack_names) {
  const std::string dir = std::string(RELAYLAB_SOURCE_DIR) + "/testdata/cfn/foreign/stacks/";
  std::vector<diagnostic> errors;
  import_options o;
  o.eval.params = {{"ParentVPCStack", "dualstack-vpc"}};
  const auto r =
      import_templates({dir + "mail-server.yaml", dir + "dualstack-vpc.yaml"}, o, errors);
  ASSERT_TRUE(r) << (errors.empty() ? "" : errors[0].to_string());
  ASSERT_EQ(r->network.hosts.size(), 1u);
  const auto& h = r->network.hosts[0];
  EXPECT_EQ(h.name, "mail-server-server");
  EXPECT_EQ(h.subnet, "PublicOne");
  EXPECT_EQ(h.ipv4, "10.20.0.4");
  EXPECT_EQ(h.public_ipv4, "203.0.113.1");
  EXPECT_EQ(h.security_groups, std::vector<std::string>{"MailGroup"});
  const auto& v = vpc(*r);
  EXPECT_EQ(v.egress_only_internet_gateway, "OutboundV6Gateway");
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_NE(r->warnings[0].message.find("AWS::Logs::LogGroup is outside the network model"),
            std::string::npos);
  // The private subnets: IPv6 out, IPv4 nowhere.
  o.eval.params.push_back({"SubnetName", "SubnetPrivateTwo"});
  errors.clear();
  auto p = import_templates({dir + "dualstack-vpc.yaml", dir + "mail-server.yaml"}, o, errors);
  ASSERT_TRUE(p) << (errors.empty() ? "" : errors[0].to_string());
  const auto ph = p->network.hosts.at(0);  // a copy: hosts grows below
  EXPECT_EQ(ph.subnet, "PrivateTwo");
  EXPECT_FALSE(ph.ipv6.empty());
  sim::host_spec mx;
  mx.name = "mx";
  mx.ipv4 = "108.177.97.26";
  mx.ipv6 = "2404:6800:4008:c07::1a";
  p->network.hosts.push_back(mx);
  std::string error;
  const auto out = explain(*p, "2404:6800:4008:c07::1a:25", ph.name, error);
  ASSERT_TRUE(out) << error;
  EXPECT_TRUE(out->connected) << out->text;
  const auto out4 = explain(*p, "108.177.97.26:25", ph.name, error);
  ASSERT_TRUE(out4) << error;
  EXPECT_FALSE(out4->connected) << out4->text;
  const auto in = explain(*p, ph.ipv6 + ":25", "mx", error);
  ASSERT_TRUE(in) << error;
  EXPECT_FALSE(in->connected) << in->text;
  EXPECT_NE(in->text.find("egress-only internet gateway OutboundV6Gateway"), std::string::npos)
      << in->text;
}

// Many instances in one subnet: addresses from the fifth on in the order of the names, around
// the ones given, each once; a full subnet is an error at the instance that finds no address.
TEST(cfn_network, many_instances_in_one_subnet) {
  std::string t =
      "Resources:\n"
      "  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n"
      "  S: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.0.0/20}}\n";
  const int count = 3000;
  for (int i = 0; i < count; ++i) {
    char logical[16];
    std::snprintf(logical, sizeof logical, "H%04d", i);
    t += std::string("  ") + logical + ": {Type: AWS::EC2::Instance, Properties: {SubnetId: !Ref S";
    // H2999 and H0500 take addresses the others would get.
    if (i == 2999) t += ", PrivateIpAddress: 10.0.0.6";
    if (i == 500) t += ", PrivateIpAddress: 10.0.1.0";
    t += "}}\n";
  }
  const auto im = import_yaml({{"many.yml", t}});
  ASSERT_TRUE(im.r) << im.first_error();
  const auto& hosts = im.r->network.hosts;
  ASSERT_EQ(hosts.size(), static_cast<std::size_t>(count));
  std::set<std::string> seen;
  for (const auto& h : hosts) EXPECT_TRUE(seen.insert(h.ipv4).second) << h.ipv4;
  EXPECT_EQ(named(hosts, "H0000").ipv4, "10.0.0.4");
  EXPECT_EQ(named(hosts, "H0001").ipv4, "10.0.0.5");
  EXPECT_EQ(named(hosts, "H0002").ipv4, "10.0.0.7");  // .6 is H2999's
  EXPECT_EQ(named(hosts, "H0500").ipv4, "10.0.1.0");
  EXPECT_EQ(named(hosts, "H0250").ipv4, "10.0.0.255");
  EXPECT_EQ(named(hosts, "H0251").ipv4, "10.0.1.1");  // .1.0 is H0500's
  EXPECT_EQ(named(hosts, "H2998").ipv4, "10.0.11.187");
  EXPECT_EQ(named(hosts, "H2999").ipv4, "10.0.0.6");

  // A /28 has 11 addresses AWS assigns (the first four and the last are reserved).
  std::string full =
      "Resources:\n"
      "  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n"
      "  S: {Type: AWS::EC2::Subnet, Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.0.0/28}}\n";
  for (int i = 0; i < 12; ++i) {
    full += "  H" + std::to_string(10 + i) +
            ": {Type: AWS::EC2::Instance, Properties: {SubnetId: !Ref S}}\n";
  }
  EXPECT_EQ(import_yaml({{"full.yml", full}}).first_error(),
            "full.yml:15:3: error: H21: subnet 10.0.0.0/28 has no free address left");
}

// Rules naming a prefix list: one rule per entry, from an AWS::EC2::PrefixList of the templates
// (Ref or GetAtt PrefixListId) or from --prefix-list; an unknown list is an error naming the rule
// and the option.
TEST(cfn_network, prefix_list_rules_expand_per_entry) {
  const std::string t =
      "Resources:\n"
      "  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n"
      "  Office:\n"
      "    Type: AWS::EC2::PrefixList\n"
      "    Properties:\n"
      "      PrefixListName: office\n"
      "      AddressFamily: IPv4\n"
      "      MaxEntries: 5\n"
      "      Entries: [{Cidr: 198.51.100.0/24, Description: hq}, {Cidr: 192.0.2.0/28}]\n"
      "  Sg:\n"
      "    Type: AWS::EC2::SecurityGroup\n"
      "    Properties:\n"
      "      GroupDescription: relay\n"
      "      VpcId: !Ref Vpc\n"
      "      SecurityGroupIngress:\n"
      "        - {IpProtocol: tcp, FromPort: 587, ToPort: 587, SourcePrefixListId: !Ref Office, "
      "Description: submission}\n"
      "      SecurityGroupEgress:\n"
      "        - {IpProtocol: tcp, FromPort: 443, ToPort: 443, DestinationPrefixListId: "
      "pl-63a5400a}\n"
      "  In25:\n"
      "    Type: AWS::EC2::SecurityGroupIngress\n"
      "    Properties: {GroupId: !Ref Sg, IpProtocol: tcp, FromPort: 25, ToPort: 25, "
      "SourcePrefixListId: !GetAtt Office.PrefixListId}\n";
  import_options o;
  o.prefix_lists = {{"pl-63a5400a", "52.216.0.0/15, 3.5.0.0/19"}};
  const auto im = import_yaml({{"pl.yml", t}}, o);
  ASSERT_TRUE(im.r) << im.first_error();
  const auto& g = named(vpc(*im.r).security_groups, "Sg");
  ASSERT_EQ(g.ingress.size(), 4u);
  EXPECT_EQ(g.ingress[0], (sim::sg_rule{"tcp", 587, 587, "198.51.100.0/24", "",
                                        "submission, prefix list pl-pl-Office"}));
  EXPECT_EQ(g.ingress[1].cidr, "192.0.2.0/28");
  EXPECT_EQ(g.ingress[2],
            (sim::sg_rule{"tcp", 25, 25, "198.51.100.0/24", "", "prefix list pl-pl-Office"}));
  EXPECT_EQ(g.ingress[3].cidr, "192.0.2.0/28");
  ASSERT_EQ(g.egress.size(), 2u);
  EXPECT_EQ(g.egress[0],
            (sim::sg_rule{"tcp", 443, 443, "52.216.0.0/15", "", "prefix list pl-63a5400a"}));
  EXPECT_EQ(g.egress[1].cidr, "3.5.0.0/19");
  EXPECT_TRUE(im.r->warnings.empty());

  // Not defined, not given: the rule's place, the rule, and the option to pass.
  EXPECT_EQ(import_yaml({{"pl.yml", t}}).first_error(),
            "pl.yml:18:82: error: Sg: egress rule DestinationPrefixListId: prefix list "
            "'pl-63a5400a' is neither an AWS::EC2::PrefixList of the templates given nor given "
            "with --prefix-list; for an AWS-managed list pass its entries: --prefix-list "
            "pl-63a5400a=CIDR[,CIDR...] (aws ec2 get-managed-prefix-list-entries "
            "--prefix-list-id pl-63a5400a)");
  o.prefix_lists = {{"pl-63a5400a", "52.216.0.0/15,s3"}};
  EXPECT_EQ(import_yaml({{"pl.yml", t}}, o).first_error(),
            "--prefix-list:0:0: error: pl-63a5400a=52.216.0.0/15,s3: expected "
            "ID=CIDR[,CIDR...], and 's3' is not a CIDR block such as 52.216.0.0/15");
  o.prefix_lists = {{"pl-63a5400a", "3.5.0.0/19"}, {"pl-63a5400a", "3.5.0.0/19"}};
  EXPECT_EQ(import_yaml({{"pl.yml", t}}, o).first_error(),
            "--prefix-list:0:0: error: pl-63a5400a=3.5.0.0/19: prefix list pl-63a5400a is "
            "given twice");
  o.prefix_lists = {{"pl-63a5400a", "3.5.0.0/19"}};
  auto with = [&](const std::string& from, const std::string& to) {
    auto x = t;
    const auto k = x.find(from);
    EXPECT_NE(k, std::string::npos) << from;
    x.replace(k, from.size(), to);
    return import_yaml({{"pl.yml", x}}, o).first_error();
  };
  EXPECT_EQ(with("Cidr: 192.0.2.0/28", "Cidr: '2001:db8::/32'"),
            "pl.yml:9:66: error: Office: Entries: 2001:db8::/32 is not an IPv4 block "
            "(AddressFamily)");
  EXPECT_EQ(with("MaxEntries: 5", "MaxEntries: 1"),
            "pl.yml:8:19: error: Office: MaxEntries: expected a number of at least the 2 "
            "entries, got '1'");
  EXPECT_EQ(with("AddressFamily: IPv4", "AddressFamily: ipv4"),
            "pl.yml:7:22: error: Office: AddressFamily: expected IPv4 or IPv6, got 'ipv4'");
  EXPECT_EQ(with("SourcePrefixListId: !Ref Office", "DestinationPrefixListId: !Ref Office"),
            "pl.yml:16:82: error: Sg: ingress rule: expected SourcePrefixListId, not "
            "DestinationPrefixListId");
}

}  // namespace
}  // namespace relaylab::cfn
