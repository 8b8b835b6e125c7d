// Internal to harness/cfn: the builder that maps the evaluated resources onto the network
// model (network_builder.cpp: run(), the resources; builder_addresses.cpp: names and
// addresses; builder_rules.cpp: attributes, default groups, security group rules;
// builder_prefix_lists.cpp: the prefix lists those rules name).
#pragma once

#include "harness/cfn/address_math.hpp"
#include "harness/cfn/cfn.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace relaylab::cfn::detail {

inline const std::string public_pool = "203.0.113.0/24";

const std::map<std::string, std::string>& kinds();
const std::set<std::string>& modelled();
std::string sanitize(std::string s);

class builder final : public attribute_source {
 public:
  builder(evaluator& ev, const import_options& o, std::vector<diagnostic>& errors)
      : ev_(ev), opts_(o), errors_(errors) {}

  std::optional<import_result> run();

  std::optional<node> ref(const resource& r, const position& at) override {
    if (r.type != "AWS::EC2::EIP") return std::nullopt;
    ensure_public();
    const auto it = eip_address_.find(&r);
    if (it == eip_address_.end()) return std::nullopt;
    return node::scalar(it->second, at);
  }
  std::optional<node> attribute(const resource& r, const std::string& name, const position& at,
                                bool& handled) override;

 private:
  using kind_t = std::string;
  struct host_info {
    const resource* r = nullptr;    // the instance, or an interface attached to none
    const resource* eni = nullptr;  // its AWS::EC2::NetworkInterface (DeviceIndex 0), if any
    bool detached = false;          // r is an interface no instance uses: no host
    const resource* subnet = nullptr;
    std::string ipv4, ipv4_given, ipv6, ipv6_given, public_ipv4;
    bool want_public = false, want_ipv6 = false;
    std::vector<std::string> groups;
    position ipv4_at;
    /// Secondary private addresses (PrivateIpAddresses entries not Primary, then
    /// SecondaryPrivateIpAddressCount more), each with the public address of an EIP associated
    /// with it; `given` empty for an assigned one.
    struct secondary_address {
      std::string given, address, public_ipv4;
      position at;
    };
    std::vector<secondary_address> secondary;
    std::uint64_t secondary_count = 0;
  };
  // Reads PrivateIpAddresses and SecondaryPrivateIpAddressCount (builder_secondary.cpp).
  void read_private_addresses(host_info& h, const resource& src, const std::optional<node>& list,
                              const std::optional<node>& count, std::optional<node>& primary);
  // `given`: checks the given secondary addresses and takes them; else assigns the
  // SecondaryPrivateIpAddressCount others from `next` on (builder_secondary.cpp).
  void assign_secondary(host_info& h, const resource& r, const sim::cidr& block,
                        std::set<std::string>& taken, std::uint64_t& next, bool given);

  void error(const position& at, const std::string& logical, const std::string& message) {
    errors_.push_back({at, logical + ": " + message});
  }
  std::size_t index(const resource& r) const {
    return static_cast<std::size_t>(&r - ev_.resources().data());
  }
  std::optional<std::string> str(const resource& r, const std::string& key) {
    auto v = ev_.property(r, key);
    if (!v) return std::nullopt;
    if (!v->is_scalar()) {
      error(v->where, r.logical, key + ": expected a string");
      return std::nullopt;
    }
    return v->value;
  }
  std::optional<bool> flag(const resource& r, const std::string& key) {
    auto v = ev_.property(r, key);
    if (!v) return std::nullopt;
    return ev_.boolean(*v, r.logical + ": " + key);
  }
  // The resource of `type` whose physical ID a value holds; an error naming `what` otherwise.
  const resource* target(const node& v, const std::string& type, const std::string& logical,
                         const std::string& what) {
    if (!v.is_scalar()) {
      error(v.where, logical, what + ": expected the ID of a " + type);
      return nullptr;
    }
    const resource* r = ev_.by_id(v.value);
    if (!r || r->type != type) {
      error(v.where, logical,
            what + ": '" + v.value + "' is not a " + type + " of the templates given");
      return nullptr;
    }
    return r;
  }
  const resource* ref_prop(const resource& r, const std::string& key, const std::string& type,
                           bool required = true) {
    auto v = ev_.property(r, key);
    if (!v) {
      if (required && !written(r, key))
        error(ev_.property_where(r, key), r.logical, "needs " + key);
      return nullptr;
    }
    return target(*v, type, r.logical, key);
  }
  // Written in the template (when property() has no value, its error is already reported).
  static bool written(const resource& r, const std::string& key) {
    const node* p = r.decl->find("Properties");
    return p && p->find(key);
  }
  /// The security group a name stands for: its GroupName, or the ID that Ref gives (for a
  /// group of the default VPC, Ref gives what AWS calls its name).
  const resource* group_named(const std::string& v) {
    for (const auto& x : ev_.resources()) {
      if (x.type == "AWS::EC2::SecurityGroup" && str(x, "GroupName") == v) return &x;
    }
    const resource* r = ev_.by_id(v);
    return r && r->type == "AWS::EC2::SecurityGroup" ? r : nullptr;
  }
  const std::string& name(const resource& r);
  std::string vpc_cidr6(const resource& vpc);
  std::string subnet_cidr6(const resource& subnet);
  const resource* subnet_vpc(const resource& subnet) {
    return ref_prop(subnet, "VpcId", "AWS::EC2::VPC");
  }
  void ensure_hosts();
  // The host_info of an AWS::EC2::NetworkInterface: its instance's, or its own when detached.
  const host_info* interface_host(const resource& eni);
  void ensure_public();
  std::optional<std::string> group_name(const node& v, const std::string& logical,
                                        const resource* vpc);
  void sg_rules(const resource& sg, const node& list, bool ingress, sim::security_group_spec& out);
  // A rule (inline or a SecurityGroupIngress/Egress resource's properties): one sim rule, one
  // per CIDR block of its prefix list, or none (left out, or an error reported).
  std::vector<sim::sg_rule> sg_rule_of(const node& rule, bool ingress, const std::string& logical,
                                       const resource* vpc);
  // The CIDR blocks of the prefix list whose ID `v` holds: an AWS::EC2::PrefixList of the
  // templates (its Entries) or one given with --prefix-list; an error naming `what` otherwise.
  std::optional<std::vector<std::string>> prefix_list(const node& v, const std::string& logical,
                                                      const std::string& what);
  const std::map<std::string, std::vector<std::string>>& given_prefix_lists();
  void add_origin(const std::string& kind, const resource& r) {
    result_.origins.push_back({kind, name(r), r.logical, ev_.stacks()[r.stack].name, r.where});
  }
  sim::vpc_spec* vpc_of(const resource* vpc) {
    if (!vpc) return nullptr;
    const auto it = vpcs_.find(vpc);
    return it == vpcs_.end() ? nullptr : &result_.network.vpcs[it->second];
  }
  std::string main_route_table(const resource& vpc);
  std::string default_group(const resource& vpc);

  evaluator& ev_;
  const import_options& opts_;
  std::vector<diagnostic>& errors_;
  import_result result_;
  std::map<kind_t, std::map<std::size_t, std::string>> names_;
  std::map<const resource*, std::optional<std::string>> cidr6_;
  std::map<const resource*, std::size_t> vpcs_;  // → result_.network.vpcs
  std::map<const resource*, host_info> hosts_;
  bool hosts_done_ = false, hosts_busy_ = false, public_done_ = false, public_busy_ = false;
  std::map<const resource*, std::string> eip_address_;
  std::map<std::string, const resource*> default_groups_;  // its ID → the VPC
  std::map<std::string, const resource*> default_acls_;
  std::optional<std::map<std::string, std::vector<std::string>>> given_prefix_lists_;
  std::map<const resource*, std::optional<std::vector<std::string>>> prefix_lists_;
};

}  // namespace relaylab::cfn::detail
