// The builder's names and addresses: Name tags, IPv6 blocks, private and public addresses
// (see cfn.hpp for the rules).
#include "harness/cfn/builder.hpp"

namespace relaylab::cfn::detail {

const std::map<std::string, std::string>& kinds() {
  static const std::map<std::string, std::string> k = {
      {"AWS::EC2::VPC", "vpc"},
      {"AWS::EC2::Subnet", "subnet"},
      {"AWS::EC2::RouteTable", "route-table"},
      {"AWS::EC2::InternetGateway", "gateway"},
      {"AWS::EC2::NatGateway", "gateway"},
      {"AWS::EC2::EgressOnlyInternetGateway", "gateway"},
      {"AWS::EC2::SecurityGroup", "security-group"},
      {"AWS::EC2::NetworkAcl", "network-acl"},
      {"AWS::EC2::Instance", "host"},
      {"AWS::EC2::EIP", "eip"}};
  return k;
}

const std::set<std::string>& modelled() {
  static const std::set<std::string> m = {"AWS::EC2::VPC",
                                          "AWS::EC2::VPCCidrBlock",
                                          "AWS::EC2::Subnet",
                                          "AWS::EC2::SubnetCidrBlock",
                                          "AWS::EC2::InternetGateway",
                                          "AWS::EC2::EgressOnlyInternetGateway",
                                          "AWS::EC2::VPCGatewayAttachment",
                                          "AWS::EC2::RouteTable",
                                          "AWS::EC2::Route",
                                          "AWS::EC2::SubnetRouteTableAssociation",
                                          "AWS::EC2::NatGateway",
                                          "AWS::EC2::EIP",
                                          "AWS::EC2::EIPAssociation",
                                          "AWS::EC2::SecurityGroup",
                                          "AWS::EC2::SecurityGroupIngress",
                                          "AWS::EC2::SecurityGroupEgress",
                                          "AWS::EC2::NetworkAcl",
                                          "AWS::EC2::NetworkAclEntry",
                                          "AWS::EC2::SubnetNetworkAclAssociation",
                                          "AWS::EC2::Instance",
                                          "AWS::EC2::NetworkInterface",
                                          "AWS::EC2::PrefixList",
                                          "AWS::SSM::Parameter"};
  return m;
}

std::string sanitize(std::string s) {
  for (auto& c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') c = '_';
  }
  return s;
}

const std::string& builder::name(const resource& r) {
  const auto k = kinds().find(r.type);
  const kind_t kind = k == kinds().end() ? r.type : k->second;
  auto& table = names_[kind];
  if (table.empty()) {
    // Every resource of the kind at once, so that clashes are seen.
    std::map<std::string, std::vector<std::size_t>> by_name;
    for (const auto& x : ev_.resources()) {
      const auto kx = kinds().find(x.type);
      if ((kx == kinds().end() ? x.type : kx->second) != kind) continue;
      std::string n;
      if (auto tags = ev_.property(x, "Tags"); tags && tags->is_sequence()) {
        for (const auto& t : tags->items) {
          const node* key = t.find("Key");
          const node* value = t.find("Value");
          if (key && value && key->value == "Name" && value->is_scalar()) n = value->value;
        }
      }
      if (n.empty() && x.type == "AWS::EC2::SecurityGroup") n = str(x, "GroupName").value_or("");
      if (n.empty()) n = x.logical;
      by_name[sanitize(n)].push_back(index(x));
    }
    for (const auto& [n, list] : by_name) {
      for (const auto i : list) {
        const auto& x = ev_.resources()[i];
        table[i] = list.size() == 1 ? n : ev_.stacks()[x.stack].name + "." + x.logical;
      }
    }
  }
  return table[index(r)];
}

std::string builder::vpc_cidr6(const resource& vpc) {
  if (auto it = cidr6_.find(&vpc); it != cidr6_.end()) return it->second.value_or("");
  cidr6_[&vpc] = std::nullopt;  // while it is being found
  std::string out;
  std::size_t vpc_number = 0;
  for (const auto& x : ev_.resources()) {
    if (&x == &vpc) break;
    if (x.type == "AWS::EC2::VPC") ++vpc_number;
  }
  for (const auto& x : ev_.resources()) {
    if (x.type != "AWS::EC2::VPCCidrBlock") continue;
    const resource* owner = ref_prop(x, "VpcId", "AWS::EC2::VPC");
    if (owner != &vpc) continue;
    if (ev_.property(x, "CidrBlock")) {
      error(ev_.property_where(x, "CidrBlock"), x.logical,
            "a secondary IPv4 block of a VPC cannot be modelled (one IPv4 block per VPC)");
      continue;
    }
    std::string block;
    if (auto given = str(x, "Ipv6CidrBlock")) {
      block = *given;
    } else if (flag(x, "AmazonProvidedIpv6CidrBlock").value_or(false) ||
               ev_.property(x, "Ipv6Pool")) {
      // Amazon's /56, made up: 2600:1f18:<n>00::/56 for the n-th VPC.
      char buf[40];
      std::snprintf(buf, sizeof buf, "2600:1f18:%zx00::/56", vpc_number);
      block = sim::parse_cidr(buf)->to_string();
    } else {
      error(x.where, x.logical, "needs Ipv6CidrBlock or AmazonProvidedIpv6CidrBlock: true");
      continue;
    }
    if (!out.empty()) {
      error(x.where, x.logical, "a second IPv6 block of a VPC cannot be modelled");
      continue;
    }
    out = block;
  }
  cidr6_[&vpc] = out;
  return out;
}

std::string builder::subnet_cidr6(const resource& subnet) {
  if (auto it = cidr6_.find(&subnet); it != cidr6_.end()) return it->second.value_or("");
  cidr6_[&subnet] = std::nullopt;
  std::string out = str(subnet, "Ipv6CidrBlock").value_or("");
  for (const auto& x : ev_.resources()) {
    if (x.type != "AWS::EC2::SubnetCidrBlock") continue;
    if (ref_prop(x, "SubnetId", "AWS::EC2::Subnet") != &subnet) continue;
    auto b = str(x, "Ipv6CidrBlock");
    if (!b) {
      error(x.where, x.logical, "needs Ipv6CidrBlock");
    } else if (!out.empty()) {
      error(x.where, x.logical, "a second IPv6 block of a subnet cannot be modelled");
    } else {
      out = *b;
    }
  }
  cidr6_[&subnet] = out;
  return out;
}

void builder::ensure_hosts() {
  if (hosts_done_) return;
  if (hosts_busy_) {
    ev_.error(position{},
              "an instance's address depends on itself (through its own "
              "properties)");
    return;
  }
  hosts_busy_ = true;
  // Address holders: instances, and the network interfaces no instance uses (AWS gives them an
  // address in their subnet too).
  std::vector<const resource*> instances;
  for (const auto& r : ev_.resources()) {
    if (r.type == "AWS::EC2::Instance") instances.push_back(&r);
  }
  std::map<const resource*, const resource*> eni_user;  // interface → its instance
  for (const resource* r : instances) {
    auto nis = ev_.property(*r, "NetworkInterfaces");
    if (!nis || !nis->is_sequence() || nis->items.size() != 1) continue;
    const node* id = nis->items[0].find("NetworkInterfaceId");
    if (!id) continue;
    const resource* eni = target(*id, "AWS::EC2::NetworkInterface", r->logical,
                                 "NetworkInterfaces: NetworkInterfaceId");
    if (!eni) continue;
    if (auto [it, fresh] = eni_user.emplace(eni, r); !fresh) {
      error(id->where, r->logical,
            "NetworkInterfaces: network interface " + name(*eni) +
                " is already the interface of instance " + name(*it->second));
    }
  }
  for (const auto& r : ev_.resources()) {
    if (r.type == "AWS::EC2::NetworkInterface" && !eni_user.count(&r)) instances.push_back(&r);
  }
  std::sort(instances.begin(), instances.end(),
            [&](const resource* a, const resource* b) { return name(*a) < name(*b); });
  for (const resource* r : instances) {
    host_info h;
    h.r = r;
    const node* ni = nullptr;
    const resource* src = r;  // whose SubnetId, groups and addresses these are
    if (r->type == "AWS::EC2::NetworkInterface") {
      h.detached = true;
      h.eni = r;
    }
    auto nis = r->type == "AWS::EC2::Instance" ? ev_.property(*r, "NetworkInterfaces")
                                               : std::optional<node>();
    if (nis) {
      if (!nis->is_sequence() || nis->items.size() != 1) {
        error(nis->where, r->logical,
              "NetworkInterfaces: one interface (DeviceIndex 0) can be "
              "modelled, not " +
                  std::to_string(nis->items.size()));
      } else {
        ni = &nis->items[0];
        if (const node* d = ni->find("DeviceIndex"); d && d->value != "0") {
          error(d->where, r->logical, "NetworkInterfaces: DeviceIndex must be 0");
        }
        if (ni->find("NetworkInterfaceId")) {
          // An existing interface: it brings the subnet, groups and addresses (AWS refuses
          // them on the instance or the interface entry as well).
          for (const auto& [e, inst] : eni_user) {
            if (inst == r) h.eni = e;
          }
          if (!h.eni) continue;  // reported above
          src = h.eni;
          for (const char* k :
               {"SubnetId", "GroupSet", "PrivateIpAddress", "PrivateIpAddresses", "Ipv6Addresses",
                "Ipv6AddressCount", "AssociatePublicIpAddress", "SecondaryPrivateIpAddressCount"}) {
            if (const node* v = ni->find(k)) {
              error(v->where, r->logical,
                    std::string("NetworkInterfaces: ") + k +
                        " cannot be given with NetworkInterfaceId (the interface " + name(*h.eni) +
                        " has its own; AWS refuses both)");
            }
          }
          for (const char* k : {"SubnetId", "SecurityGroupIds", "SecurityGroups",
                                "PrivateIpAddress", "Ipv6Addresses", "Ipv6AddressCount"}) {
            if (written(*r, k)) {
              error(ev_.property_where(*r, k), r->logical,
                    std::string(k) +
                        " cannot be given with NetworkInterfaces (AWS refuses "
                        "both; the interface " +
                        name(*h.eni) + " has its own)");
            }
          }
          ni = nullptr;
        }
      }
    }
    if (src->type == "AWS::EC2::NetworkInterface") {
      for (const char* k : {"Ipv4Prefixes", "Ipv4PrefixCount", "Ipv6Prefixes", "Ipv6PrefixCount"}) {
        if (auto v = ev_.property(*src, k);
            v && v->value != "0" && !(v->is_sequence() && v->items.empty())) {
          error(ev_.property_where(*src, k), src->logical,
                std::string(k) + ": prefixes delegated to an interface cannot be modelled");
        }
      }
    }
    auto get = [&](const char* key) -> std::optional<node> {
      if (src != r || h.detached) return ev_.property(*src, key);
      if (ni) {
        if (const node* v = ni->find(key)) return *v;
      }
      return std::nullopt;
    };
    std::optional<node> subnet =
        src == r && !h.detached ? ev_.property(*r, "SubnetId") : std::optional<node>();
    if (!subnet) subnet = get("SubnetId");
    if (!subnet && (written(*src, "SubnetId") || (nis && !ni && src == r))) continue;
    if (!subnet) {
      error(src->where, src->logical,
            h.detached || src != r
                ? "needs SubnetId"
                : "NetworkInterfaces without SubnetId: add SubnetId naming an AWS::EC2::Subnet of "
                  "the templates (only an instance without NetworkInterfaces is placed in the "
                  "default VPC)");
      continue;
    }
    h.subnet = target(*subnet, "AWS::EC2::Subnet", src->logical, "SubnetId");
    if (!h.subnet) continue;
    const resource* vpc = subnet_vpc(*h.subnet);
    std::optional<node> ip =
        src == r && !h.detached ? ev_.property(*r, "PrivateIpAddress") : std::optional<node>();
    if (!ip) ip = get("PrivateIpAddress");
    // PrivateIpAddresses: [{PrivateIpAddress, Primary}], SecondaryPrivateIpAddressCount.
    read_private_addresses(h, *src, get("PrivateIpAddresses"),
                           get("SecondaryPrivateIpAddressCount"), ip);
    if (ip && ip->is_scalar()) {
      h.ipv4_given = ip->value;
      h.ipv4_at = ip->where;
    }
    std::optional<node> groups =
        src == r && !h.detached ? ev_.property(*r, "SecurityGroupIds") : std::optional<node>();
    if (!groups) groups = get("GroupSet");
    bool by_name = false;
    if (!groups && src == r && !h.detached) {
      groups = ev_.property(*r, "SecurityGroups");
      by_name = true;
    }
    if (groups && groups->is_sequence()) {
      for (const auto& g : groups->items) {
        std::optional<std::string> n;
        if (by_name && g.is_scalar()) {
          if (const resource* x = group_named(g.value)) n = name(*x);
          if (!n)
            error(g.where, r->logical,
                  "SecurityGroups: no security group named '" + g.value + "' (GroupName)");
        } else {
          n = group_name(g, src->logical, vpc);
        }
        if (n) h.groups.push_back(*n);
      }
    } else if (vpc) {
      h.groups.push_back(default_group(*vpc));
    }
    if (src != r || h.detached) {
      // An existing interface gets no public address at launch (AWS assigns one only to the
      // interface it creates); an EIPAssociation with its NetworkInterfaceId gives one.
      h.want_public = false;
    } else if (auto pub = get("AssociatePublicIpAddress")) {
      h.want_public = ev_.boolean(*pub, r->logical + ": AssociatePublicIpAddress").value_or(false);
    } else {
      h.want_public = flag(*h.subnet, "MapPublicIpOnLaunch").value_or(false);
    }
    std::optional<node> v6 =
        src == r && !h.detached ? ev_.property(*r, "Ipv6Addresses") : std::optional<node>();
    if (!v6) v6 = get("Ipv6Addresses");
    if (v6 && v6->is_sequence() && !v6->items.empty()) {
      const node* a = v6->items[0].find("Ipv6Address");
      if (a) h.ipv6_given = a->value;
    }
    std::optional<node> count =
        src == r && !h.detached ? ev_.property(*r, "Ipv6AddressCount") : std::optional<node>();
    if (!count) count = get("Ipv6AddressCount");
    h.want_ipv6 = !h.ipv6_given.empty() || (count && count->value != "0") ||
                  flag(*h.subnet, "AssignIpv6AddressOnCreation").value_or(false);
    hosts_[r] = std::move(h);
  }
  std::map<std::string, host_info*> by_name;
  for (auto& [r, h] : hosts_) by_name[name(*r)] = &h;
  for (const auto& [host, ip] : opts_.ips) {
    if (const auto it = by_name.find(host); it != by_name.end()) {
      it->second->ipv4_given = ip;
      it->second->ipv4_at = position{"--ip " + host + "=" + ip, 0, 0};
    } else {
      errors_.push_back(
          {position{"--ip", 0, 0}, "no instance named '" + host + "' in the templates given"});
    }
  }
  // Given addresses first, checked; then the others, in the order of the names. Each block
  // keeps where its search stopped: every address below it is taken, so assigning N addresses
  // costs N set look-ups (plus the given ones skipped), not N^2.
  std::set<std::string> taken;
  std::map<std::string, std::uint64_t> next;  // block → the first offset not yet tried
  auto assign = [&](bool v6) {
    for (const resource* r : instances) {
      auto it = hosts_.find(r);
      if (it == hosts_.end()) continue;
      auto& h = it->second;
      const std::string block =
          v6 ? subnet_cidr6(*h.subnet) : str(*h.subnet, "CidrBlock").value_or("");
      const auto c = sim::parse_cidr(block);
      if (!c) continue;
      const auto& given = v6 ? h.ipv6_given : h.ipv4_given;
      if (v6 && !h.want_ipv6) continue;
      if (!given.empty()) {
        const auto a = sim::parse_address(given);
        const auto net = network_of(c->base, c->prefix);
        const bool reserved = a && (network_of(*a, address_bits(*a) - 2) == net ||
                                    *a == *add_shifted(net, block_size(*c) - 1, 0));
        if (!a || !c->contains(*a) || reserved) {
          error(!h.ipv4_at.file.empty() ? h.ipv4_at : r->where, r->logical,
                "address " + given + " is not an address AWS can assign in subnet " + block +
                    (reserved ? " (AWS reserves the first four and the last)" : ""));
        } else if (!taken.insert(a->to_string()).second) {
          error(!h.ipv4_at.file.empty() ? h.ipv4_at : r->where, r->logical,
                "address " + given + " is already taken");
        } else {
          (v6 ? h.ipv6 : h.ipv4) = a->to_string();
        }
      }
      std::uint64_t unused = 0;
      if (!v6) assign_secondary(h, *r, *c, taken, unused, true);
    }
    for (const resource* r : instances) {
      auto it = hosts_.find(r);
      if (it == hosts_.end()) continue;
      auto& h = it->second;
      if ((v6 && !h.want_ipv6) || !(v6 ? h.ipv6 : h.ipv4).empty() ||
          !(v6 ? h.ipv6_given : h.ipv4_given).empty()) {
        continue;
      }
      const std::string block =
          v6 ? subnet_cidr6(*h.subnet) : str(*h.subnet, "CidrBlock").value_or("");
      const auto c = sim::parse_cidr(block);
      if (!c) {
        if (v6) error(r->where, r->logical, "wants an IPv6 address; its subnet has no IPv6 block");
        continue;
      }
      const auto net = network_of(c->base, c->prefix);
      bool placed = false;
      auto& k = next.try_emplace(sim::cidr{net, c->prefix}.to_string(), 4).first->second;
      for (; k + 1 < block_size(*c) && k < 65536 && !placed; ++k) {
        const auto a = add_shifted(net, k, 0);
        if (a && taken.insert(a->to_string()).second) {
          (v6 ? h.ipv6 : h.ipv4) = a->to_string();
          placed = true;
        }
      }
      if (!placed) error(r->where, r->logical, "subnet " + block + " has no free address left");
    }
    // Secondary addresses after every primary one: adding some to one interface moves no
    // other instance's address.
    for (const resource* r : instances) {
      auto it = hosts_.find(r);
      if (v6 || it == hosts_.end() || it->second.secondary_count == 0) continue;
      auto& h = it->second;
      const auto c = sim::parse_cidr(str(*h.subnet, "CidrBlock").value_or(""));
      if (!c) continue;
      const auto net = network_of(c->base, c->prefix);
      auto& k = next.try_emplace(sim::cidr{net, c->prefix}.to_string(), 4).first->second;
      assign_secondary(h, *r, sim::cidr{net, c->prefix}, taken, k, false);
    }
  };
  assign(false);
  assign(true);
  hosts_busy_ = false;
  hosts_done_ = true;
}

const builder::host_info* builder::interface_host(const resource& eni) {
  ensure_hosts();
  for (const auto& [r, h] : hosts_) {
    if (h.eni == &eni) return &h;
  }
  return nullptr;
}

void builder::ensure_public() {
  if (public_done_) return;
  if (public_busy_) {
    ev_.error(position{}, "a public address depends on itself");
    return;
  }
  ensure_hosts();
  public_busy_ = true;
  const auto pool = *sim::parse_cidr(public_pool);
  std::set<std::string> taken;
  std::map<std::string, std::string> given;  // name → address
  for (const auto& [n, ip] : opts_.public_ips) {
    const auto a = sim::parse_address(ip);
    if (!a || a->v6) {
      errors_.push_back(
          {position{"--public-ip", 0, 0}, n + "=" + ip + ": expected a numeric IPv4 address"});
      continue;
    }
    given[n] = a->to_string();
    taken.insert(a->to_string());
  }
  std::uint64_t next = 1;
  auto allocate = [&]() -> std::string {
    for (; next < 255; ++next) {
      const auto a = add_shifted(pool.base, next, 0)->to_string();
      if (taken.insert(a).second) return a;
    }
    return "";
  };
  std::vector<const resource*> eips;
  for (const auto& r : ev_.resources()) {
    if (r.type == "AWS::EC2::EIP") eips.push_back(&r);
  }
  std::sort(eips.begin(), eips.end(),
            [&](const resource* a, const resource* b) { return name(*a) < name(*b); });
  std::set<std::string> used_names;
  for (const resource* e : eips) {
    const auto g = given.find(name(*e));
    eip_address_[e] = g != given.end() ? g->second : allocate();
    if (g != given.end()) used_names.insert(g->first);
  }
  // Elastic IPs on instances: EIP InstanceId, or an EIPAssociation.
  std::map<const resource*, std::string> on_instance;
  std::map<const host_info::secondary_address*, std::string> on_secondary;
  for (const auto& r : ev_.resources()) {
    const resource* inst = nullptr;
    const resource* eip = nullptr;
    const host_info* on_host = nullptr;
    const host_info::secondary_address* secondary = nullptr;
    if (r.type == "AWS::EC2::EIP" && ev_.property(r, "InstanceId")) {
      inst = ref_prop(r, "InstanceId", "AWS::EC2::Instance");
      eip = &r;
    } else if (r.type == "AWS::EC2::EIPAssociation") {
      if (auto eni_id = ev_.property(r, "NetworkInterfaceId")) {
        // On an interface: the instance whose DeviceIndex 0 interface it is gets the address
        // (an interface no instance uses is left out, and so is its address).
        const resource* eni =
            target(*eni_id, "AWS::EC2::NetworkInterface", r.logical, "NetworkInterfaceId");
        if (!eni) continue;
        if (ev_.property(r, "InstanceId")) {
          error(ev_.property_where(r, "InstanceId"), r.logical,
                "InstanceId and NetworkInterfaceId: AWS takes one of them, not both");
          continue;
        }
        const host_info* h = interface_host(*eni);
        if (!h) continue;
        inst = h->detached ? nullptr : h->r;
        on_host = h;
      } else {
        inst = ref_prop(r, "InstanceId", "AWS::EC2::Instance");
        if (inst && hosts_.count(inst)) on_host = &hosts_[inst];
      }
      // PrivateIpAddress: the primary address, or a secondary one that the EIP maps to.
      if (auto pip = str(r, "PrivateIpAddress"); pip && on_host && *pip != on_host->ipv4) {
        for (const auto& x : on_host->secondary) {
          if (x.address == *pip) secondary = &x;
        }
        if (!secondary) {
          error(ev_.property_where(r, "PrivateIpAddress"), r.logical,
                "PrivateIpAddress " + *pip + " is no address of " + name(*on_host->r) +
                    " (primary " + on_host->ipv4 + ", " +
                    std::to_string(on_host->secondary.size()) + " secondary)");
          continue;
        }
      }
      if (ev_.property(r, "AllocationId")) {
        eip = ref_prop(r, "AllocationId", "AWS::EC2::EIP");
      } else if (auto addr = str(r, "EIP")) {
        for (const auto& [e, a] : eip_address_) {
          if (a == *addr) eip = e;
        }
        if (!eip) error(ev_.property_where(r, "EIP"), r.logical, "no EIP has address " + *addr);
      } else {
        error(r.where, r.logical, "needs AllocationId or EIP");
      }
    }
    if (secondary && eip) {
      on_secondary[secondary] = eip_address_[eip];
    } else if (inst && eip) {
      on_instance[inst] = eip_address_[eip];
    }
  }
  for (auto& [r, h] : hosts_) {
    for (auto& x : h.secondary) {
      if (auto it = on_secondary.find(&x); it != on_secondary.end()) x.public_ipv4 = it->second;
    }
  }
  std::vector<host_info*> order;
  for (auto& [r, h] : hosts_) order.push_back(&h);
  std::sort(order.begin(), order.end(),
            [&](const host_info* a, const host_info* b) { return name(*a->r) < name(*b->r); });
  for (host_info* h : order) {
    const auto g = given.find(name(*h->r));
    if (g != given.end()) {
      h->public_ipv4 = g->second;
      used_names.insert(g->first);
    } else if (on_instance.count(h->r)) {
      h->public_ipv4 = on_instance[h->r];
    } else if (h->want_public) {
      h->public_ipv4 = allocate();
    }
  }
  for (const auto& [n, ip] : given) {
    if (!used_names.count(n)) {
      errors_.push_back({position{"--public-ip", 0, 0},
                         "no instance or EIP named '" + n + "' in the templates given"});
    }
  }
  public_busy_ = false;
  public_done_ = true;
}

}  // namespace relaylab::cfn::detail
