// The default VPC as a template (default_vpc.hpp).
#include "harness/cfn/default_vpc.hpp"

#include <algorithm>
#include <string_view>

namespace relaylab::cfn {
namespace {

// Written as a template so that Fn::GetAZs, Ref and Export work as in any stack; the subnets
// (default_vpc_text) export their IDs as "relaylab-default-subnet-<AZ>" for the instances
// placed in them.
constexpr std::string_view default_vpc_template = R"(
Description: The account's default VPC, as AWS creates it (relaylab import cfn adds it).
Resources:
  DefaultVpc:
    Type: AWS::EC2::VPC
    Properties:
      CidrBlock: 172.31.0.0/16
      EnableDnsSupport: true
      EnableDnsHostnames: true
      Tags: [{Key: Name, Value: default-vpc}]
  DefaultGateway:
    Type: AWS::EC2::InternetGateway
    Properties:
      Tags: [{Key: Name, Value: default-vpc-igw}]
  DefaultGatewayAttachment:
    Type: AWS::EC2::VPCGatewayAttachment
    Properties: {VpcId: !Ref DefaultVpc, InternetGatewayId: !Ref DefaultGateway}
  DefaultRouteTable:
    Type: AWS::EC2::RouteTable
    Properties:
      VpcId: !Ref DefaultVpc
      Tags: [{Key: Name, Value: default-vpc-main}]
  DefaultRoute:
    Type: AWS::EC2::Route
    DependsOn: DefaultGatewayAttachment
    Properties:
      RouteTableId: !Ref DefaultRouteTable
      DestinationCidrBlock: 0.0.0.0/0
      GatewayId: !Ref DefaultGateway
)";

// The default subnet of the i-th AZ of Fn::GetAZs (172.31.16*i.0/20), its route table
// association and the export of its ID, added to the Resources and Outputs of the template.
std::string default_vpc_text(std::size_t zones) {
  std::string resources, outputs;
  for (std::size_t i = 0; i < zones; ++i) {
    const std::string n = std::to_string(i);
    const std::string az = "{AZ: !Select [" + n + ", !GetAZs \"\"]}";
    resources += "  DefaultSubnet" + n +
                 ":\n"
                 "    Type: AWS::EC2::Subnet\n"
                 "    Properties:\n"
                 "      VpcId: !Ref DefaultVpc\n"
                 "      CidrBlock: 172.31." +
                 std::to_string(16 * i) +
                 ".0/20\n"
                 "      AvailabilityZone: !Select [" +
                 n +
                 ", !GetAZs \"\"]\n"
                 "      MapPublicIpOnLaunch: true\n"
                 "      Tags: [{Key: Name, Value: !Sub [\"default-${AZ}\", " +
                 az +
                 "]}]\n"
                 "  DefaultSubnet" +
                 n +
                 "Routes:\n"
                 "    Type: AWS::EC2::SubnetRouteTableAssociation\n"
                 "    Properties: {SubnetId: !Ref DefaultSubnet" +
                 n + ", RouteTableId: !Ref DefaultRouteTable}\n";
    outputs += "  Subnet" + n + ": {Value: !Ref DefaultSubnet" + n +
               ", Export: {Name: !Sub [\"relaylab-default-subnet-${AZ}\", " + az + "]}}\n";
  }
  return std::string(default_vpc_template) + resources + "Outputs:\n" + outputs;
}

node mapping(std::vector<entry> entries, const position& at) {
  node n;
  n.type = node::kind::mapping;
  n.entries = std::move(entries);
  n.where = at;
  return n;
}

entry field(std::string key, node value) {
  entry e;
  e.key = std::move(key);
  e.key_where = value.where;
  e.value = std::move(value);
  return e;
}

// The Properties mapping of a resource declaration, made when it is absent.
node& properties(node& decl) {
  for (auto& e : decl.entries) {
    if (e.key == "Properties" && e.value.is_mapping()) return e.value;
  }
  decl.entries.push_back(field("Properties", mapping({}, decl.where)));
  return decl.entries.back().value;
}

// {Fn::ImportValue: {Fn::Sub: ["relaylab-default-subnet-${AZ}", {AZ: <az>}]}}, where <az> is
// the instance's AvailabilityZone expression, or the first of Fn::GetAZs.
node default_subnet_of(const node* az, const position& at) {
  node zone;
  if (az) {
    zone = *az;
  } else {
    node azs = mapping({field("Fn::GetAZs", node::scalar("", at))}, at);
    zone = mapping({field("Fn::Select", node::sequence({node::scalar("0", at), azs}, at))}, at);
  }
  node name = node::sequence(
      {node::scalar("relaylab-default-subnet-${AZ}", at), mapping({field("AZ", zone)}, at)}, at);
  return mapping({field("Fn::ImportValue", mapping({field("Fn::Sub", name)}, at))}, at);
}

}  // namespace

std::vector<std::string> default_vpc_zones(const options& o) {
  if (!o.azs.empty()) return o.azs;
  return known_availability_zones(o.region).value_or(
      std::vector<std::string>{o.region + "a", o.region + "b", o.region + "c"});
}

std::optional<std::string> default_vpc_id(const std::string& type, const std::string& value,
                                          const options& o) {
  if (type == "AWS::EC2::VPC::Id" && value == "default-vpc") {
    return "vpc-" + default_vpc_stack + "-DefaultVpc";
  }
  if (type != "AWS::EC2::Subnet::Id" && type != "List<AWS::EC2::Subnet::Id>") return std::nullopt;
  const auto zones = default_vpc_zones(o);
  for (std::size_t i = 0; i < zones.size(); ++i) {
    if (value == "default-" + zones[i]) {
      return "subnet-" + default_vpc_stack + "-DefaultSubnet" + std::to_string(i);
    }
  }
  return std::nullopt;
}

void add_default_vpc(std::vector<stack>& stacks, const options& o,
                     std::vector<diagnostic>& errors) {
  const std::string& region = o.region;
  // One default subnet per zone Fn::GetAZs gives (the evaluator warns when they are assumed).
  const std::vector<std::string> zones = default_vpc_zones(o);
  std::string zone_list;
  for (std::size_t i = 0; i < zones.size(); ++i) {
    zone_list += (i == 0 ? "" : i + 1 == zones.size() ? " and " : ", ") + zones[i];
  }
  bool needed = false;
  for (auto& s : stacks) {
    if (s.name == default_vpc_stack) {
      errors.push_back({position{s.file, 1, 1},
                        "the stack name '" + default_vpc_stack +
                            "' is the one relaylab import gives the default VPC: rename the file"});
      return;
    }
    if (!s.root.is_mapping()) continue;
    // A --param naming a default-VPC resource for a VPC or subnet parameter.
    if (const node* params = s.root.find("Parameters"); params && params->is_mapping()) {
      for (const auto& [name, value] : o.params) {
        const node* decl = params->find(name);
        const node* type = decl ? decl->find("Type") : nullptr;
        if (!type || !type->is_scalar()) continue;
        std::string_view rest = value;
        while (!needed) {
          const auto comma = rest.find(',');
          std::string item(rest.substr(0, comma));
          item.erase(0, item.find_first_not_of(' '));
          item.erase(item.find_last_not_of(' ') + 1);
          needed = default_vpc_id(type->value, item, o).has_value();
          if (comma == std::string_view::npos) break;
          rest.remove_prefix(comma + 1);
        }
      }
    }
    for (auto& section : s.root.entries) {
      if (section.key != "Resources" || !section.value.is_mapping()) continue;
      for (auto& res : section.value.entries) {
        node& decl = res.value;
        const node* type = decl.find("Type");
        if (!decl.is_mapping() || !type || !type->is_scalar()) continue;
        const node* props = decl.find("Properties");
        auto has = [&](std::string_view key) { return props && props->find(key) != nullptr; };
        if (type->value == "AWS::EC2::SecurityGroup" && !has("VpcId")) {
          properties(decl).entries.push_back(field(
              "VpcId", node::scalar("vpc-" + default_vpc_stack + "-DefaultVpc", res.key_where)));
          needed = true;
        } else if (type->value == "AWS::EC2::Instance" && !has("SubnetId") &&
                   !has("NetworkInterfaces")) {
          const node* az = props ? props->find("AvailabilityZone") : nullptr;
          if (az && az->is_scalar() &&
              std::find(zones.begin(), zones.end(), az->value) == zones.end()) {
            errors.push_back({az->where, res.key + ": AvailabilityZone '" + az->value +
                                             "' has no default subnet: the default VPC of " +
                                             region + " has " + zone_list +
                                             " (--region or --azs, or add SubnetId)"});
            continue;
          }
          node subnet = default_subnet_of(az, res.key_where);
          properties(decl).entries.push_back(field("SubnetId", std::move(subnet)));
          needed = true;
        }
      }
    }
  }
  if (!needed) return;
  const std::string file = "<default VPC>";
  auto root = parse_template(default_vpc_text(zones.size()), file, errors);
  if (root) stacks.push_back({file, default_vpc_stack, std::move(*root)});
}

}  // namespace relaylab::cfn
