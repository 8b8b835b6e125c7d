// The builder's Fn::GetAtt answers, AWS's default route table and security group, and
// security group rules.
#include "harness/cfn/builder.hpp"

namespace relaylab::cfn::detail {

std::optional<node> builder::attribute(const resource& r, const std::string& a, const position& at,
                                       bool& handled) {
  if (!modelled().count(r.type) || r.type == "AWS::SSM::Parameter") return std::nullopt;
  handled = true;
  auto id = [&]() { return node::scalar(r.id, at); };
  auto prop = [&](const std::string& key) -> std::optional<node> {
    auto v = ev_.property(r, key);
    if (!v && !written(r, key)) ev_.error(at, "Fn::GetAtt " + r.logical + "." + a + ": no " + key);
    return v;
  };
  auto list = [&](const std::string& v) {
    std::vector<node> items;
    if (!v.empty()) items.push_back(node::scalar(v, at));
    return node::sequence(std::move(items), at);
  };
  const auto& t = r.type;
  if (t == "AWS::EC2::VPC") {
    if (a == "CidrBlock") return prop("CidrBlock");
    if (a == "Ipv6CidrBlocks") return list(vpc_cidr6(r));
    if (a == "CidrBlockAssociations") return list(r.id + "-cidr-assoc");
    if (a == "DefaultSecurityGroup") {
      default_groups_[r.id + "-default-sg"] = &r;
      return node::scalar(r.id + "-default-sg", at);
    }
    if (a == "DefaultNetworkAcl") {
      default_acls_[r.id + "-default-acl"] = &r;
      return node::scalar(r.id + "-default-acl", at);
    }
    if (a == "VpcId") return id();
  } else if (t == "AWS::EC2::Subnet") {
    if (a == "AvailabilityZone") {
      auto v = ev_.property(r, "AvailabilityZone");
      return v ? *v : node::scalar(ev_.availability_zones("", at).front(), at);
    }
    if (a == "CidrBlock") return prop("CidrBlock");
    if (a == "Ipv6CidrBlocks") return list(subnet_cidr6(r));
    if (a == "VpcId") return prop("VpcId");
    if (a == "SubnetId") return id();
    if (a == "NetworkAclAssociationId") return node::scalar(r.id + "-acl-assoc", at);
  } else if (t == "AWS::EC2::EIP") {
    if (a == "AllocationId") return id();
    if (a == "PublicIp") return ref(r, at);
  } else if (t == "AWS::EC2::Instance") {
    ensure_hosts();
    const auto it = hosts_.find(&r);
    const host_info* h = it == hosts_.end() ? nullptr : &it->second;
    if (a == "PrivateIp" || a == "PrivateDnsName") {
      if (!h || h->ipv4.empty()) return std::nullopt;
      if (a == "PrivateIp") return node::scalar(h->ipv4, at);
      std::string dashed = h->ipv4;
      std::replace(dashed.begin(), dashed.end(), '.', '-');
      const auto& region = ev_.opts().region;
      return node::scalar(
          "ip-" + dashed + "." +
              (region == "us-east-1" ? "ec2.internal" : region + ".compute.internal"),
          at);
    }
    if (a == "PublicIp" || a == "PublicDnsName") {
      ensure_public();
      if (!h) return std::nullopt;
      if (a == "PublicIp") return node::scalar(h->public_ipv4, at);
      std::string dashed = h->public_ipv4;
      std::replace(dashed.begin(), dashed.end(), '.', '-');
      return node::scalar(dashed.empty() ? "" : "ec2-" + dashed + ".compute.amazonaws.com", at);
    }
    if (a == "AvailabilityZone") {
      if (h && h->subnet) return attribute(*h->subnet, a, at, handled);
      return node::scalar(ev_.availability_zones("", at).front(), at);
    }
    if (a == "InstanceId") return id();
  } else if (t == "AWS::EC2::NetworkInterface") {
    if (a == "Id") return id();
    const host_info* h = interface_host(r);
    if (a == "PrimaryPrivateIpAddress") {
      if (!h || h->ipv4.empty()) return std::nullopt;  // its error is reported
      return node::scalar(h->ipv4, at);
    }
    if (a == "PrimaryIpv6Address") {
      if (!h || h->ipv6.empty()) {
        ev_.error(at, "Fn::GetAtt " + r.logical + "." + a + ": the interface has no IPv6 address");
        return std::nullopt;
      }
      return node::scalar(h->ipv6, at);
    }
    if (a == "SecondaryPrivateIpAddresses") {
      std::vector<node> items;
      if (h) {
        for (const auto& x : h->secondary) items.push_back(node::scalar(x.address, at));
      }
      return node::sequence(std::move(items), at);
    }
  } else if (t == "AWS::EC2::SecurityGroup") {
    if (a == "GroupId" || a == "Id") return id();
    if (a == "VpcId") return prop("VpcId");
  } else if (t == "AWS::EC2::NatGateway") {
    if (a == "NatGatewayId") return id();
  } else if (t == "AWS::EC2::RouteTable") {
    if (a == "RouteTableId") return id();
  } else if (t == "AWS::EC2::InternetGateway") {
    if (a == "InternetGatewayId") return id();
  } else if (t == "AWS::EC2::EgressOnlyInternetGateway") {
    if (a == "Id") return id();
  } else if (t == "AWS::EC2::NetworkAcl") {
    if (a == "Id") return id();
  } else if (t == "AWS::EC2::PrefixList") {
    if (a == "PrefixListId") return id();
    if (a == "Arn") {
      return node::scalar(
          "arn:aws:ec2:" + ev_.opts().region + ":" + ev_.opts().account_id + ":prefix-list/" + r.id,
          at);
    }
    if (a == "Version") return node::scalar("1", at);
  } else if (t == "AWS::EC2::VPCCidrBlock") {
    if (a == "Id") return id();
    if (a == "Ipv6CidrBlock") {
      if (const resource* v = ref_prop(r, "VpcId", "AWS::EC2::VPC")) {
        return node::scalar(vpc_cidr6(*v), at);
      }
      return std::nullopt;
    }
  } else {
    handled = false;  // association resources: their IDs are all anyone asks for
    return std::nullopt;
  }
  ev_.error(at, "Fn::GetAtt " + r.logical + "." + a + ": " + t + " has no attribute '" + a +
                    "' that can be known before it is deployed");
  return std::nullopt;
}

std::string builder::main_route_table(const resource& vpc) {
  auto* v = vpc_of(&vpc);
  const std::string n = name(vpc) + "-main";
  for (const auto& rt : v->route_tables) {
    if (rt.name == n) return n;
  }
  sim::route_table_spec rt;
  rt.name = n;
  rt.routes.push_back({v->cidr, sim::route_target::local, ""});
  if (!v->cidr6.empty()) rt.routes.push_back({v->cidr6, sim::route_target::local, ""});
  v->route_tables.push_back(rt);
  result_.origins.push_back({"route-table", n, vpc.logical + " (main route table)",
                             ev_.stacks()[vpc.stack].name, vpc.where});
  return n;
}

std::string builder::default_group(const resource& vpc) {
  auto* v = vpc_of(&vpc);
  const std::string n = name(vpc) + "-default";
  if (!v) return n;
  for (const auto& g : v->security_groups) {
    if (g.name == n) return n;
  }
  // AWS's default group: members reach each other, egress anywhere.
  sim::security_group_spec g;
  g.name = n;
  g.ingress.push_back({"all", 0, 65535, "", n, "default group: its members"});
  g.egress.push_back({"all", 0, 65535, "0.0.0.0/0", "", "default egress"});
  if (!v->cidr6.empty()) g.egress.push_back({"all", 0, 65535, "::/0", "", "default egress"});
  v->security_groups.push_back(g);
  result_.origins.push_back({"security-group", n, vpc.logical + " (default security group)",
                             ev_.stacks()[vpc.stack].name, vpc.where});
  return n;
}

std::optional<std::string> builder::group_name(const node& v, const std::string& logical,
                                               const resource* vpc) {
  if (v.is_scalar()) {
    if (auto it = default_groups_.find(v.value); it != default_groups_.end()) {
      return default_group(*it->second);
    }
  }
  const resource* g = target(v, "AWS::EC2::SecurityGroup", logical, "security group");
  if (!g) return std::nullopt;
  if (vpc) {
    const resource* gv = ref_prop(*g, "VpcId", "AWS::EC2::VPC", false);
    if (gv != vpc) {
      error(v.where, logical,
            "security group " + name(*g) + " is not in " + name(*vpc) +
                (gv ? " but in " + name(*gv) : " (its VpcId has no value)"));
      return std::nullopt;
    }
  }
  return name(*g);
}

std::vector<sim::sg_rule> builder::sg_rule_of(const node& rule, bool ingress,
                                              const std::string& logical, const resource* vpc) {
  if (!rule.is_mapping()) {
    error(rule.where, logical, "a security group rule is a mapping");
    return {};
  }
  const std::string direction = ingress ? "ingress rule" : "egress rule";
  const char* list_key = ingress ? "SourcePrefixListId" : "DestinationPrefixListId";
  if (const node* p = rule.find(ingress ? "DestinationPrefixListId" : "SourcePrefixListId")) {
    error(p->where, logical,
          direction + ": expected " + list_key + ", not " +
              (ingress ? "DestinationPrefixListId" : "SourcePrefixListId"));
    return {};
  }
  const node* proto = rule.find("IpProtocol");
  if (!proto || !proto->is_scalar()) {
    error(rule.where, logical, "a security group rule needs IpProtocol");
    return {};
  }
  sim::sg_rule out;
  const std::string p = proto->value;
  if (p == "-1" || p == "all") {
    out.protocol = "all";
  } else if (p == "tcp" || p == "6") {
    out.protocol = "tcp";
    const node* from = rule.find("FromPort");
    const node* to = rule.find("ToPort");
    auto port = [&](const node* n, std::uint16_t def) -> std::optional<std::uint16_t> {
      if (!n || n->value == "-1") return def;
      try {
        const long v = std::stol(n->value);
        if (v >= 0 && v <= 65535) return static_cast<std::uint16_t>(v);
      } catch (...) {
      }
      error(n->where, logical, "expected a port from 0 to 65535, got '" + n->value + "'");
      return std::nullopt;
    };
    auto f = port(from, 0), t = port(to, 65535);
    if (!f || !t) return {};
    if (from && !to) t = f;
    out.port_from = *f;
    out.port_to = *t;
    if (out.port_from > out.port_to) {
      error(rule.where, logical, "FromPort is above ToPort");
      return {};
    }
  } else {
    return {};  // UDP, ICMP ...: the model carries TCP only
  }
  const char* group_key = ingress ? "SourceSecurityGroupId" : "DestinationSecurityGroupId";
  if (const node* c = rule.find("CidrIp")) {
    out.cidr = c->value;
  } else if (const node* c6 = rule.find("CidrIpv6")) {
    out.cidr = c6->value;
  } else if (const node* pl = rule.find(list_key)) {
    auto blocks = prefix_list(*pl, logical, direction + " " + list_key);
    if (!blocks) return {};
    const node* d = rule.find("Description");
    std::vector<sim::sg_rule> rules;
    for (const auto& b : *blocks) {
      auto x = out;
      x.cidr = b;
      x.description = (d ? d->value + ", " : "") + "prefix list " + pl->value;
      rules.push_back(x);
    }
    return rules;
  } else if (const node* g = rule.find(group_key)) {
    auto n = group_name(*g, logical, vpc);
    if (!n) return {};
    out.group = *n;
  } else if (const node* gn = ingress ? rule.find("SourceSecurityGroupName") : nullptr) {
    if (const resource* x = group_named(gn->value)) out.group = name(*x);
    if (out.group.empty()) {
      error(gn->where, logical,
            "SourceSecurityGroupName: no security group named '" + gn->value + "'");
      return {};
    }
  } else {
    error(rule.where, logical,
          std::string("a security group rule needs CidrIp, CidrIpv6, ") + list_key + " or " +
              group_key);
    return {};
  }
  if (!out.cidr.empty() && !sim::parse_cidr(out.cidr)) {
    error(rule.where, logical, "not a CIDR block: '" + out.cidr + "'");
    return {};
  }
  if (const node* d = rule.find("Description")) out.description = d->value;
  return {out};
}

void builder::sg_rules(const resource& sg, const node& list, bool ingress,
                       sim::security_group_spec& out) {
  if (!list.is_sequence()) {
    error(list.where, sg.logical, "expected a list of rules");
    return;
  }
  const resource* vpc = ref_prop(sg, "VpcId", "AWS::EC2::VPC", false);
  for (const auto& rule : list.items) {
    for (auto& r : sg_rule_of(rule, ingress, sg.logical, vpc)) {
      (ingress ? out.ingress : out.egress).push_back(std::move(r));
    }
  }
}

}  // namespace relaylab::cfn::detail
