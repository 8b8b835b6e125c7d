// CloudFormation resources → harness/sim's network_spec (see cfn.hpp for what is modelled and
// how AWS's defaults are reproduced).
#include "harness/cfn/builder.hpp"
#include "harness/cfn/default_vpc.hpp"
#include "harness/cfn/nested_stacks.hpp"

#include <filesystem>

namespace relaylab::cfn {

const origin* import_result::find(const std::string& kind, const std::string& name) const {
  for (const auto& o : origins) {
    if (o.kind == kind && o.name == name) return &o;
  }
  return nullptr;
}

namespace detail {

namespace {

// Types that change which TCP connections go through and that the model cannot carry.
const std::map<std::string, std::string>& refused() {
  static const std::map<std::string, std::string> r = {
      {"AWS::EC2::VPCPeeringConnection", "VPC peering"},
      {"AWS::EC2::TransitGateway", "transit gateways"},
      {"AWS::EC2::TransitGatewayAttachment", "transit gateways"},
      {"AWS::EC2::TransitGatewayVpcAttachment", "transit gateways"},
      {"AWS::EC2::TransitGatewayRoute", "transit gateways"},
      {"AWS::EC2::VPNGatewayRoutePropagation", "routes propagated from a VPN"},
      {"AWS::EC2::VPNConnectionRoute", "VPN routes"},
      {"AWS::EC2::NetworkInterfaceAttachment",
       "a network interface attached after launch (a second interface)"},
      {"AWS::EC2::GatewayRouteTableAssociation", "gateway route tables"},
      {"AWS::EC2::LocalGatewayRoute", "local gateways"},
      {"AWS::EC2::CarrierGateway", "carrier gateways"},
      {"AWS::NetworkFirewall::Firewall", "AWS Network Firewall"},
      {"AWS::EC2::SecurityGroupVpcAssociation", "security groups shared with another VPC"}};
  return r;
}

}  // namespace

std::optional<import_result> builder::run() {
  const std::size_t before = errors_.size();
  const auto& all = ev_.resources();
  // What is left out: one warning per type; what cannot be: errors.
  std::map<std::string, std::vector<const resource*>> outside;
  for (const auto& r : all) {
    // A nested stack's template is a stack of its own (nested_stacks.cpp).
    if (r.type == "AWS::CloudFormation::Stack") continue;
    if (auto it = refused().find(r.type); it != refused().end()) {
      error(r.where, r.logical,
            r.type + ": " + it->second +
                " would change which connections "
                "go through, and cannot be modelled");
    } else if (!modelled().count(r.type)) {
      outside[r.type].push_back(&r);
    }
  }
  for (const auto& [type, list] : outside) {
    std::string names;
    for (const auto* r : list) names += (names.empty() ? "" : ", ") + r->logical;
    result_.warnings.push_back(
        {list.front()->where,
         type + " is outside the network model: left out (" + std::to_string(list.size()) +
             (list.size() == 1 ? " resource: " : " resources: ") + names + ")"});
  }
  auto& net = result_.network;
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::VPC") continue;
    sim::vpc_spec v;
    v.name = name(r);
    if (ev_.property(r, "Ipv4IpamPoolId")) {
      error(ev_.property_where(r, "Ipv4IpamPoolId"), r.logical,
            "a block from an IPAM pool cannot be known before it is deployed; give CidrBlock");
    }
    v.cidr = str(r, "CidrBlock").value_or("");
    if (v.cidr.empty() && written(r, "CidrBlock")) continue;
    const auto c = sim::parse_cidr(v.cidr);
    if (!c || c->base.v6 || v.cidr.find('/') == std::string::npos) {
      error(ev_.property_where(r, "CidrBlock"), r.logical,
            "CidrBlock: expected an IPv4 block such as 10.0.0.0/16, got '" + v.cidr + "'");
      continue;
    }
    v.cidr6 = vpc_cidr6(r);
    vpcs_[&r] = net.vpcs.size();
    net.vpcs.push_back(v);
    add_origin("vpc", r);
  }
  // Internet gateways, by attachment.
  std::map<const resource*, const resource*> igw_vpc;
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::VPCGatewayAttachment") continue;
    if (ev_.property(r, "VpnGatewayId")) {
      error(ev_.property_where(r, "VpnGatewayId"), r.logical,
            "a VPN gateway would route traffic the model cannot carry");
      continue;
    }
    const resource* vpc = ref_prop(r, "VpcId", "AWS::EC2::VPC");
    const resource* igw = ref_prop(r, "InternetGatewayId", "AWS::EC2::InternetGateway");
    auto* v = vpc_of(vpc);
    if (!v || !igw) continue;
    if (!v->internet_gateway.empty() && v->internet_gateway != name(*igw)) {
      error(r.where, r.logical,
            "VPC " + v->name + " already has internet gateway " + v->internet_gateway);
      continue;
    }
    if (igw_vpc.count(igw) && igw_vpc[igw] != vpc) {
      error(r.where, r.logical, "internet gateway " + name(*igw) + " is attached to another VPC");
      continue;
    }
    igw_vpc[igw] = vpc;
    v->internet_gateway = name(*igw);
    add_origin("gateway", *igw);
  }
  // Egress-only internet gateways (IPv6 out only): attached to one VPC by their VpcId.
  std::map<const resource*, const resource*> eigw_vpc;
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::EgressOnlyInternetGateway") continue;
    const resource* vpc = ref_prop(r, "VpcId", "AWS::EC2::VPC");
    auto* v = vpc_of(vpc);
    if (!v) continue;
    if (!v->egress_only_internet_gateway.empty()) {
      error(r.where, r.logical,
            "VPC " + v->name + " already has egress-only internet gateway " +
                v->egress_only_internet_gateway + "; a second one cannot be modelled");
      continue;
    }
    v->egress_only_internet_gateway = name(r);
    eigw_vpc[&r] = vpc;
    add_origin("gateway", r);
  }
  // Route tables and their routes.
  std::map<const resource*, std::pair<const resource*, std::size_t>> tables;  // → vpc, index
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::RouteTable") continue;
    const resource* vpc = ref_prop(r, "VpcId", "AWS::EC2::VPC");
    auto* v = vpc_of(vpc);
    if (!v) continue;
    sim::route_table_spec rt;
    rt.name = name(r);
    rt.routes.push_back({v->cidr, sim::route_target::local, ""});
    if (!v->cidr6.empty()) rt.routes.push_back({v->cidr6, sim::route_target::local, ""});
    tables[&r] = {vpc, v->route_tables.size()};
    v->route_tables.push_back(rt);
    add_origin("route-table", r);
  }
  std::map<const resource*, const resource*> nat_subnet;
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::NatGateway") continue;
    const resource* subnet = ref_prop(r, "SubnetId", "AWS::EC2::Subnet");
    if (auto t = str(r, "ConnectivityType"); t && *t != "public") {
      error(ev_.property_where(r, "ConnectivityType"), r.logical,
            "a private NAT gateway cannot be modelled");
      continue;
    }
    const resource* eip = ref_prop(r, "AllocationId", "AWS::EC2::EIP");
    if (!subnet || !eip) continue;
    auto* v = vpc_of(subnet_vpc(*subnet));
    if (!v) continue;
    ref(*eip, r.where);
    v->nat_gateways.push_back({name(r), name(*subnet), eip_address_[eip]});
    nat_subnet[&r] = subnet;
    add_origin("gateway", r);
  }
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::Route") continue;
    const resource* table = ref_prop(r, "RouteTableId", "AWS::EC2::RouteTable");
    if (!table || !tables.count(table)) continue;
    const auto [vpc, ti] = tables[table];
    auto& rt = vpc_of(vpc)->route_tables[ti];
    sim::route_spec route;
    if (ev_.property(r, "DestinationPrefixListId")) {
      error(ev_.property_where(r, "DestinationPrefixListId"), r.logical,
            "a route to a prefix list cannot be modelled");
      continue;
    }
    route.destination = str(r, "DestinationCidrBlock").value_or("");
    if (route.destination.empty())
      route.destination = str(r, "DestinationIpv6CidrBlock").value_or("");
    if (!sim::parse_cidr(route.destination) || route.destination.find('/') == std::string::npos) {
      error(r.where, r.logical,
            "needs DestinationCidrBlock or DestinationIpv6CidrBlock (a CIDR "
            "block), got '" +
                route.destination + "'");
      continue;
    }
    bool targeted = false;
    for (const char* k :
         {"InstanceId", "NetworkInterfaceId", "VpcPeeringConnectionId", "TransitGatewayId",
          "VpcEndpointId", "CarrierGatewayId", "LocalGatewayId", "CoreNetworkArn"}) {
      if (ev_.property(r, k)) {
        error(ev_.property_where(r, k), r.logical,
              std::string("a route to a ") + k + " cannot be modelled");
        targeted = true;
      }
    }
    if (targeted) continue;
    if (auto gw = ev_.property(r, "GatewayId")) {
      if (gw->is_scalar() && gw->value == "local") {
        route.target = sim::route_target::local;
      } else {
        const resource* igw = target(*gw, "AWS::EC2::InternetGateway", r.logical, "GatewayId");
        if (!igw) continue;
        if (igw_vpc[igw] != vpc) {
          error(gw->where, r.logical,
                "internet gateway " + name(*igw) + " is not attached to " + name(*vpc) +
                    " (AWS::EC2::VPCGatewayAttachment)");
          continue;
        }
        route.target = sim::route_target::internet_gateway;
        route.target_name = name(*igw);
      }
    } else if (auto eigw = ev_.property(r, "EgressOnlyInternetGatewayId")) {
      const resource* g = target(*eigw, "AWS::EC2::EgressOnlyInternetGateway", r.logical,
                                 "EgressOnlyInternetGatewayId");
      if (!g || !eigw_vpc.count(g)) continue;
      if (eigw_vpc[g] != vpc) {
        error(eigw->where, r.logical,
              "egress-only internet gateway " + name(*g) + " is attached to " + name(*eigw_vpc[g]) +
                  ", not to " + name(*vpc) + " (its VpcId)");
        continue;
      }
      // AWS refuses it: an egress-only internet gateway carries IPv6 only.
      if (!sim::parse_cidr(route.destination)->base.v6) {
        error(ev_.property_where(r, "DestinationCidrBlock"), r.logical,
              "egress-only internet gateway " + name(*g) +
                  " carries IPv6 only (DestinationIpv6CidrBlock), not " + route.destination);
        continue;
      }
      route.target = sim::route_target::egress_only_internet_gateway;
      route.target_name = name(*g);
    } else if (auto nat = ev_.property(r, "NatGatewayId")) {
      const resource* n = target(*nat, "AWS::EC2::NatGateway", r.logical, "NatGatewayId");
      if (!n || !nat_subnet.count(n)) continue;
      if (subnet_vpc(*nat_subnet[n]) != vpc) {
        error(nat->where, r.logical, "NAT gateway " + name(*n) + " is in another VPC");
        continue;
      }
      route.target = sim::route_target::nat_gateway;
      route.target_name = name(*n);
    } else {
      if (!written(r, "GatewayId") && !written(r, "NatGatewayId") &&
          !written(r, "EgressOnlyInternetGatewayId")) {
        error(r.where, r.logical, "needs GatewayId, NatGatewayId or EgressOnlyInternetGatewayId");
      }
      continue;
    }
    rt.routes.push_back(route);
  }
  // Network ACLs and their entries.
  std::map<const resource*, std::pair<const resource*, std::size_t>> acls;
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::NetworkAcl") continue;
    const resource* vpc = ref_prop(r, "VpcId", "AWS::EC2::VPC");
    auto* v = vpc_of(vpc);
    if (!v) continue;
    acls[&r] = {vpc, v->nacls.size()};
    v->nacls.push_back({name(r), {}, {}});
    add_origin("network-acl", r);
  }
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::NetworkAclEntry") continue;
    auto acl_id = ev_.property(r, "NetworkAclId");
    if (acl_id && acl_id->is_scalar() && default_acls_.count(acl_id->value)) {
      error(acl_id->where, r.logical,
            "entries of a VPC's default network ACL cannot be "
            "modelled; make a NetworkAcl");
      continue;
    }
    const resource* acl = ref_prop(r, "NetworkAclId", "AWS::EC2::NetworkAcl");
    if (!acl || !acls.count(acl)) continue;
    const auto [vpc, ai] = acls[acl];
    auto& spec = vpc_of(vpc)->nacls[ai];
    sim::nacl_rule rule;
    const auto number = str(r, "RuleNumber").value_or("");
    try {
      rule.number = std::stoi(number);
    } catch (...) {
      rule.number = -1;
    }
    if (rule.number < 1 || rule.number > 32766) {
      error(ev_.property_where(r, "RuleNumber"), r.logical,
            "RuleNumber: expected 1 to 32766, got '" + number + "'");
      continue;
    }
    const auto action = str(r, "RuleAction").value_or("");
    if (action != "allow" && action != "deny") {
      error(ev_.property_where(r, "RuleAction"), r.logical,
            "RuleAction: expected allow or deny, got '" + action + "'");
      continue;
    }
    rule.allow = action == "allow";
    const auto proto = str(r, "Protocol").value_or("");
    if (proto == "-1") {
      rule.protocol = "all";
    } else if (proto == "6") {
      rule.protocol = "tcp";
      auto range = ev_.property(r, "PortRange");
      const node* from = range ? range->find("From") : nullptr;
      const node* to = range ? range->find("To") : nullptr;
      if (!from || !to) {
        error(ev_.property_where(r, "PortRange"), r.logical, "TCP needs PortRange: {From, To}");
        continue;
      }
      try {
        rule.port_from = static_cast<std::uint16_t>(std::stoul(from->value));
        rule.port_to = static_cast<std::uint16_t>(std::stoul(to->value));
      } catch (...) {
        error(range->where, r.logical, "PortRange: expected port numbers");
        continue;
      }
    } else {
      continue;  // UDP, ICMP ...: the model carries TCP only
    }
    rule.cidr = str(r, "CidrBlock").value_or("");
    if (rule.cidr.empty()) rule.cidr = str(r, "Ipv6CidrBlock").value_or("");
    if (!sim::parse_cidr(rule.cidr)) {
      error(r.where, r.logical, "needs CidrBlock or Ipv6CidrBlock");
      continue;
    }
    const bool egress = flag(r, "Egress").value_or(false);
    (egress ? spec.outbound : spec.inbound).push_back(rule);
  }
  // Subnets, with their route table and ACL associations.
  std::map<const resource*, const resource*> subnet_table, subnet_acl;
  for (const auto& r : all) {
    const bool rt = r.type == "AWS::EC2::SubnetRouteTableAssociation";
    if (!rt && r.type != "AWS::EC2::SubnetNetworkAclAssociation") continue;
    const resource* subnet = ref_prop(r, "SubnetId", "AWS::EC2::Subnet");
    const resource* other = nullptr;
    if (!rt) {
      auto id = ev_.property(r, "NetworkAclId");
      if (id && id->is_scalar() && default_acls_.count(id->value)) continue;  // allow all
      other = ref_prop(r, "NetworkAclId", "AWS::EC2::NetworkAcl");
    } else {
      other = ref_prop(r, "RouteTableId", "AWS::EC2::RouteTable");
    }
    if (!subnet || !other) continue;
    auto& slot = (rt ? subnet_table : subnet_acl)[subnet];
    if (slot && slot != other) {
      error(r.where, r.logical,
            "subnet " + name(*subnet) + " already has " + (rt ? "route table " : "network ACL ") +
                name(*slot));
      continue;
    }
    const resource* other_vpc = ref_prop(*other, "VpcId", "AWS::EC2::VPC");
    if (other_vpc != subnet_vpc(*subnet)) {
      error(r.where, r.logical,
            name(*other) + " and subnet " + name(*subnet) + " are in different VPCs");
      continue;
    }
    slot = other;
  }
  std::map<const resource*, std::vector<std::pair<sim::cidr, const resource*>>> blocks;
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::Subnet") continue;
    const resource* vpc = subnet_vpc(r);
    auto* v = vpc_of(vpc);
    if (!v) continue;
    sim::subnet_spec s;
    s.name = name(r);
    s.cidr = str(r, "CidrBlock").value_or("");
    if (s.cidr.empty() && written(r, "CidrBlock")) continue;
    const auto sc = sim::parse_cidr(s.cidr);
    const auto vc = sim::parse_cidr(v->cidr);
    const position at = ev_.property_where(r, "CidrBlock");
    if (!sc || sc->base.v6 || s.cidr.find('/') == std::string::npos) {
      error(at, r.logical, "CidrBlock: expected an IPv4 block, got '" + s.cidr + "'");
      continue;
    }
    if (sc->prefix < vc->prefix || !vc->contains(sc->base)) {
      error(at, r.logical,
            "subnet " + s.cidr + " is not inside its VPC " + v->name + "'s " + v->cidr);
      continue;
    }
    for (const auto& [other, o] : blocks[vpc]) {
      if (other.contains(sc->base) || sc->contains(other.base)) {
        error(at, r.logical,
              "subnet " + s.cidr + " overlaps subnet " + name(*o) + " (" + other.to_string() + ")");
      }
    }
    blocks[vpc].emplace_back(*sc, &r);
    s.cidr6 = subnet_cidr6(r);
    if (!s.cidr6.empty()) {
      const auto c6 = sim::parse_cidr(s.cidr6);
      const auto v6 = sim::parse_cidr(v->cidr6);
      if (!c6 || !v6 || c6->prefix < v6->prefix || !v6->contains(c6->base)) {
        error(ev_.property_where(r, "Ipv6CidrBlock"), r.logical,
              "IPv6 block " + s.cidr6 + " is not inside the VPC's " +
                  (v->cidr6.empty() ? "(none)" : v->cidr6));
      }
    }
    const resource* table = subnet_table[&r];
    s.route_table = table ? name(*table) : main_route_table(*vpc);
    if (const resource* acl = subnet_acl[&r]) s.nacl = name(*acl);
    v->subnets.push_back(s);
    add_origin("subnet", r);
  }
  // Security groups.
  std::map<const resource*, std::pair<sim::vpc_spec*, std::size_t>> groups;
  for (const auto& r : all) {
    if (r.type != "AWS::EC2::SecurityGroup") continue;
    const resource* vpc = ref_prop(r, "VpcId", "AWS::EC2::VPC", false);
    auto* v = vpc_of(vpc);
    if (!v) continue;  // add_default_vpc() gave every group a VpcId; its errors are reported
    sim::security_group_spec g;
    g.name = name(r);
    if (auto in = ev_.property(r, "SecurityGroupIngress")) sg_rules(r, *in, true, g);
    if (auto out = ev_.property(r, "SecurityGroupEgress")) {
      sg_rules(r, *out, false, g);
    } else {
      g.egress.push_back({"all", 0, 65535, "0.0.0.0/0", "", "default egress"});
      if (!v->cidr6.empty()) g.egress.push_back({"all", 0, 65535, "::/0", "", "default egress"});
    }
    groups[&r] = {v, v->security_groups.size()};
    v->security_groups.push_back(g);
    add_origin("security-group", r);
  }
  for (const auto& r : all) {
    const bool in = r.type == "AWS::EC2::SecurityGroupIngress";
    if (!in && r.type != "AWS::EC2::SecurityGroupEgress") continue;
    const resource* g = nullptr;
    if (auto id = ev_.property(r, "GroupId")) {
      g = target(*id, "AWS::EC2::SecurityGroup", r.logical, "GroupId");
    } else if (auto gn = str(r, "GroupName"); gn && in) {
      g = group_named(*gn);
      if (!g)
        error(ev_.property_where(r, "GroupName"), r.logical,
              "no security group named '" + *gn + "'");
    } else {
      error(r.where, r.logical, "needs GroupId");
    }
    if (!g || !groups.count(g)) continue;
    auto [v, gi] = groups[g];
    node rule;
    rule.type = node::kind::mapping;
    rule.where = r.where;
    if (const node* p = r.decl->find("Properties")) {
      for (const auto& e : p->entries) {
        if (e.key == "GroupId" || e.key == "GroupName") continue;
        if (auto val = ev_.property(r, e.key)) rule.entries.push_back({e.key, e.key_where, *val});
      }
    }
    const resource* vpc = ref_prop(*g, "VpcId", "AWS::EC2::VPC", false);
    auto& spec = v->security_groups[gi];
    for (auto& x : sg_rule_of(rule, in, r.logical, vpc)) {
      (in ? spec.ingress : spec.egress).push_back(std::move(x));
    }
  }
  // Hosts.
  ensure_hosts();
  ensure_public();
  std::vector<std::pair<std::string, const host_info*>> hosts;
  std::vector<const host_info*> detached;
  for (const auto& [r, h] : hosts_) {
    if (h.detached) {
      detached.push_back(&h);
    } else {
      hosts.emplace_back(name(*r), &h);
    }
  }
  std::sort(hosts.begin(), hosts.end());
  if (!detached.empty()) {
    // Its address answers nothing: no instance behind it (one warning for them all).
    std::sort(detached.begin(), detached.end(),
              [&](const host_info* a, const host_info* b) { return index(*a->r) < index(*b->r); });
    std::string names;
    for (const auto* h : detached) names += (names.empty() ? "" : ", ") + h->r->logical;
    result_.warnings.push_back(
        {detached.front()->r->where,
         "AWS::EC2::NetworkInterface attached to no instance (as its DeviceIndex 0 "
         "NetworkInterfaceId): left out, nothing answers at its address (" +
             std::to_string(detached.size()) +
             (detached.size() == 1 ? " resource: " : " resources: ") + names + ")"});
  }
  for (const auto& [n, h] : hosts) {
    if (h->ipv4.empty()) continue;
    sim::host_spec s;
    s.name = n;
    s.subnet = name(*h->subnet);
    s.ipv4 = h->ipv4;
    s.public_ipv4 = h->public_ipv4;
    s.ipv6 = h->ipv6;
    for (const auto& x : h->secondary) {
      if (!x.address.empty()) s.secondary_ipv4.push_back({x.address, x.public_ipv4});
    }
    s.security_groups = h->groups;
    net.hosts.push_back(s);
    add_origin("host", *h->r);
  }
  // A NAT gateway forwards to the internet through its own subnet's route table.
  for (const auto& [nat, subnet] : nat_subnet) {
    const resource* table = subnet_table[subnet];
    bool out = false;
    if (table && tables.count(table)) {
      const auto [vpc, ti] = tables[table];
      for (const auto& route : vpc_of(vpc)->route_tables[ti].routes) {
        out = out || (route.target == sim::route_target::internet_gateway &&
                      route.destination == "0.0.0.0/0");
      }
    }
    if (!out) {
      error(ev_.property_where(*nat, "SubnetId"), nat->logical,
            "NAT gateway " + name(*nat) + " is in subnet " + name(*subnet) +
                ", whose route table has no 0.0.0.0/0 route to an internet gateway: it could "
                "not forward anything");
    }
  }
  ev_.evaluate_all();
  // Deterministic output, whatever order the templates came in.
  std::sort(net.vpcs.begin(), net.vpcs.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& v : net.vpcs) {
    auto by_name = [](const auto& a, const auto& b) { return a.name < b.name; };
    std::sort(v.route_tables.begin(), v.route_tables.end(), by_name);
    std::sort(v.subnets.begin(), v.subnets.end(), by_name);
    std::sort(v.security_groups.begin(), v.security_groups.end(), by_name);
    std::sort(v.nacls.begin(), v.nacls.end(), by_name);
    for (auto& a : v.nacls) {
      auto by_number = [](const auto& x, const auto& y) { return x.number < y.number; };
      std::stable_sort(a.inbound.begin(), a.inbound.end(), by_number);
      std::stable_sort(a.outbound.begin(), a.outbound.end(), by_number);
    }
    std::sort(v.nat_gateways.begin(), v.nat_gateways.end(), by_name);
  }
  for (const auto& w : ev_.warnings()) result_.warnings.push_back(w);
  if (errors_.size() != before) return std::nullopt;
  // The network model's own checks (addresses, names), as the topology loader makes them.
  sim::world w;
  std::vector<sim::network_error> net_errors;
  sim::network check(w, net, net_errors);
  for (const auto& e : net_errors) {
    errors_.push_back({ev_.resources().empty() ? position{} : ev_.resources().front().where,
                       "the imported network: " + e.what});
  }
  if (errors_.size() != before) return std::nullopt;
  return std::move(result_);
}

}  // namespace detail

std::optional<import_result> import_stacks(std::vector<stack> stacks, const import_options& opts,
                                           std::vector<diagnostic>& errors) {
  const std::size_t before = errors.size();
  load_nested_stacks(stacks, opts.eval, opts.stack_templates, errors);
  if (errors.size() != before) return std::nullopt;
  add_default_vpc(stacks, opts.eval, errors);
  if (errors.size() != before) return std::nullopt;
  evaluator ev(std::move(stacks), opts.eval, errors);
  if (errors.size() != before) return std::nullopt;
  detail::builder b(ev, opts, errors);
  ev.set_attributes(&b);
  auto out = b.run();
  if (errors.size() != before) return std::nullopt;
  return out;
}

std::optional<import_result> import_templates(const std::vector<std::string>& files,
                                              const import_options& opts,
                                              std::vector<diagnostic>& errors) {
  const std::size_t before = errors.size();
  std::vector<stack> stacks;
  for (const auto& f : files) {
    auto root = read_template(f, errors);
    if (!root) continue;
    stacks.push_back({f, std::filesystem::path(f).stem().string(), std::move(*root)});
  }
  if (errors.size() != before) return std::nullopt;
  return import_stacks(std::move(stacks), opts, errors);
}

}  // namespace relaylab::cfn