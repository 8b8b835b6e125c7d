// Expressions: Ref, pseudo parameters, Fn::GetAtt, Fn::Sub and the other intrinsic functions,
// and Fn::Cidr's address arithmetic (see evaluator.hpp).
#include "harness/cfn/evaluator_support.hpp"

#include "harness/cfn/address_math.hpp"

#include <charconv>

namespace relaylab::cfn {

using namespace detail;

namespace {

// Attributes of resource types outside the network model that CloudFormation returns as lists,
// with the number of items a deployed resource has (CloudFormation's resource reference).
std::size_t outside_list_attribute_size(std::string_view type, std::string_view attr) {
  struct list_attribute {
    std::string_view type, attr;
    std::size_t items;
  };
  static constexpr list_attribute lists[] = {
      {"AWS::DirectoryService::MicrosoftAD", "DnsIpAddresses", 2},
      {"AWS::DirectoryService::SimpleAD", "DnsIpAddresses", 2},
      {"AWS::Route53::HostedZone", "NameServers", 4},
      {"AWS::EC2::VPCEndpoint", "DnsEntries", 1},
      {"AWS::EC2::VPCEndpoint", "NetworkInterfaceIds", 1},
      {"AWS::ElasticLoadBalancingV2::LoadBalancer", "SecurityGroups", 1},
      {"AWS::GlobalAccelerator::Accelerator", "Ipv4Addresses", 2},
  };
  for (const auto& l : lists) {
    if (l.type == type && l.attr == attr) return l.items;
  }
  return 0;
}

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                       (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += t[(v >> k) & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += t[(v >> 18) & 63];
    out += t[(v >> 12) & 63];
    out += i + 1 < in.size() ? t[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::uint64_t> whole_number(const std::string& s) {
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

std::optional<node> evaluator::eval_in(std::size_t s, const node& expr, std::size_t depth) {
  if (depth > eval_depth_max) {
    error(expr.where, "expressions nested deeper than " + std::to_string(eval_depth_max));
    return std::nullopt;
  }
  if (expr.is_scalar() || expr.is_null()) return expr;
  if (expr.is_sequence()) {
    node out = node::sequence({}, expr.where);
    for (const auto& i : expr.items) {
      auto v = eval_in(s, i, depth + 1);
      if (!v) return std::nullopt;
      if (!is_no_value(*v)) out.items.push_back(std::move(*v));
    }
    return out;
  }
  if (expr.entries.size() == 1) {
    const auto& e = expr.entries[0];
    if (e.key == "Ref" || e.key.rfind("Fn::", 0) == 0) return intrinsic(s, e, expr, depth);
  }
  node out;
  out.type = node::kind::mapping;
  out.where = expr.where;
  for (const auto& e : expr.entries) {
    auto v = eval_in(s, e.value, depth + 1);
    if (!v) return std::nullopt;
    if (!is_no_value(*v)) out.entries.push_back({e.key, e.key_where, std::move(*v)});
  }
  return out;
}

std::optional<node> evaluator::intrinsic(std::size_t s, const entry& fn, const node& whole,
                                         std::size_t depth) {
  const auto& name = fn.key;
  const auto& arg = fn.value;
  const position at = whole.where;
  auto args = [&](std::size_t n) -> std::optional<std::vector<node>> {
    if (!arg.is_sequence() || arg.items.size() != n) {
      error(arg.where, name + " takes a list of " + std::to_string(n) + " values");
      return std::nullopt;
    }
    std::vector<node> out;
    for (const auto& i : arg.items) {
      auto v = eval_in(s, i, depth + 1);
      if (!v) return std::nullopt;
      out.push_back(std::move(*v));
    }
    return out;
  };
  auto list_arg = [&](node v, const std::string& what) -> std::optional<node> {
    if (!v.is_sequence()) {
      error(v.where, name + ": " + what + " must be a list");
      return std::nullopt;
    }
    return v;
  };
  if (name == "Ref") return ref(s, arg, at);
  if (name == "Fn::GetAtt") return get_att(s, arg, at, depth);
  if (name == "Fn::Sub") return sub(s, arg, at, depth);
  if (name == "Fn::Join") {
    if (!arg.is_sequence() || arg.items.size() != 2) {
      error(arg.where, "Fn::Join takes [delimiter, [values ...]]");
      return std::nullopt;
    }
    auto delim = eval_in(s, arg.items[0], depth + 1);
    auto values = eval_in(s, arg.items[1], depth + 1);
    if (!delim || !values) return std::nullopt;
    auto d = text(*delim, "Fn::Join delimiter");
    auto list = list_arg(*values, "the values");
    if (!d || !list) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < list->items.size(); ++i) {
      auto t = text(list->items[i], "Fn::Join value");
      if (!t) return std::nullopt;
      out += (i ? *d : "") + *t;
    }
    return node::scalar(out, at);
  }
  if (name == "Fn::Select") {
    auto a = args(2);
    if (!a) return std::nullopt;
    auto index = text((*a)[0], "Fn::Select index");
    auto list = list_arg((*a)[1], "the values");
    if (!index || !list) return std::nullopt;
    const auto k = whole_number(*index);
    if (!k || *k >= list->items.size()) {
      error((*a)[0].where, "Fn::Select index " + *index + " is outside the list of " +
                               std::to_string(list->items.size()) + " values");
      return std::nullopt;
    }
    return list->items[*k];
  }
  if (name == "Fn::Split") {
    auto a = args(2);
    if (!a) return std::nullopt;
    auto d = text((*a)[0], "Fn::Split delimiter");
    auto v = text((*a)[1], "Fn::Split source");
    if (!d || !v) return std::nullopt;
    return list_of(split(*v, *d), at);
  }
  if (name == "Fn::If") {
    if (!arg.is_sequence() || arg.items.size() != 3 || !arg.items[0].is_scalar()) {
      error(arg.where, "Fn::If takes [condition name, value if true, value if false]");
      return std::nullopt;
    }
    auto c = condition(s, arg.items[0].value, arg.items[0].where);
    if (!c) return std::nullopt;
    return eval_in(s, arg.items[*c ? 1 : 2], depth + 1);
  }
  if (name == "Fn::Equals" || name == "Fn::And" || name == "Fn::Or" || name == "Fn::Not") {
    auto c = condition_value(s, whole, depth);
    if (!c) return std::nullopt;
    return node::scalar(*c ? "true" : "false", at);
  }
  if (name == "Fn::ImportValue") {
    auto v = eval_in(s, arg, depth + 1);
    if (!v) return std::nullopt;
    auto n = text(*v, "Fn::ImportValue");
    if (!n) return std::nullopt;
    return import_value(*n, at);
  }
  if (name == "Fn::GetAZs") {
    auto v = eval_in(s, arg, depth + 1);
    if (!v) return std::nullopt;
    std::string region = v->is_null() ? "" : text(*v, "Fn::GetAZs region").value_or("");
    return list_of(availability_zones(region, at), at);
  }
  if (name == "Fn::Cidr") {
    auto a = args(3);
    if (!a) return std::nullopt;
    auto block = text((*a)[0], "Fn::Cidr block");
    auto count = text((*a)[1], "Fn::Cidr count");
    auto bits = text((*a)[2], "Fn::Cidr bits");
    if (!block || !count || !bits) return std::nullopt;
    const auto c = whole_number(*count);
    const auto b = whole_number(*bits);
    auto out = c && b && *c >= 1 && *c <= 256 ? cidr_split(*block, *c, *b) : std::nullopt;
    if (!out) {
      error(at, "Fn::Cidr cannot cut " + std::string(*count) + " blocks of " + *bits +
                    " host bits out of '" + *block + "' (count 1 to 256)");
      return std::nullopt;
    }
    return list_of(*out, at);
  }
  if (name == "Fn::FindInMap") {
    // [Map, Key, Key, {DefaultValue: V}]: V where the map has no such entry (a language
    // extension).
    const node* fallback = nullptr;
    if (arg.is_sequence() && arg.items.size() == 4 && arg.items[3].is_mapping()) {
      fallback = arg.items[3].find("DefaultValue");
      if (fallback && !stacks_[s].language_extensions) {
        error(arg.items[3].where, needs_language_extensions("Fn::FindInMap with a DefaultValue"));
        return std::nullopt;
      }
      if (!fallback || arg.items[3].entries.size() != 1) {
        error(arg.items[3].where, "Fn::FindInMap's fourth value is {DefaultValue: value}");
        return std::nullopt;
      }
    }
    std::optional<std::vector<node>> a;
    if (fallback) {
      node three = node::sequence({arg.items[0], arg.items[1], arg.items[2]}, arg.where);
      std::vector<node> out;
      for (const auto& i : three.items) {
        auto v = eval_in(s, i, depth + 1);
        if (!v) return std::nullopt;
        out.push_back(std::move(*v));
      }
      a = std::move(out);
    } else {
      a = args(3);
    }
    if (!a) return std::nullopt;
    auto m = text((*a)[0], "Fn::FindInMap map");
    auto k1 = text((*a)[1], "Fn::FindInMap key");
    auto k2 = text((*a)[2], "Fn::FindInMap key");
    if (!m || !k1 || !k2) return std::nullopt;
    const node* maps = stacks_[s].root.find("Mappings");
    const node* mp = maps ? maps->find(*m) : nullptr;
    const node* l1 = mp ? mp->find(*k1) : nullptr;
    const node* l2 = l1 ? l1->find(*k2) : nullptr;
    if (!l2 && fallback) return eval_in(s, *fallback, depth + 1);
    if (!l2) {
      error(at, "Fn::FindInMap: Mappings has no " + *m + "." + *k1 + "." + *k2);
      return std::nullopt;
    }
    return eval_in(s, *l2, depth + 1);
  }
  if (name == "Fn::Length" || name == "Fn::ToJsonString") {
    return language_function(s, fn, at, depth);
  }
  if (name == "Fn::Base64") {
    auto v = eval_in(s, arg, depth + 1);
    if (!v) return std::nullopt;
    auto t = text(*v, "Fn::Base64");
    if (!t) return std::nullopt;
    return node::scalar(base64(*t), at);
  }
  if (auto m = unsupported_key(name)) {
    error(fn.key_where, *m);
    return std::nullopt;
  }
  error(fn.key_where, "unknown intrinsic function '" + name +
                          "' (Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::Select, Fn::Split, "
                          "Fn::If, Fn::Equals, Fn::And, Fn::Or, Fn::Not, Fn::ImportValue, "
                          "Fn::GetAZs, Fn::Cidr, Fn::FindInMap, Fn::Base64; with the "
                          "AWS::LanguageExtensions transform Fn::Length, Fn::ToJsonString)");
  return std::nullopt;
}

std::vector<std::string> evaluator::availability_zones(const std::string& r, const position& at) {
  const std::string region = r.empty() ? opts_.region : r;
  if (region == opts_.region && !opts_.azs.empty()) return opts_.azs;
  if (auto known = known_availability_zones(region)) return *known;
  std::vector<std::string> out{region + "a", region + "b", region + "c"};
  if (azs_assumed_.insert(region).second) {
    warnings_.push_back({at, "Fn::GetAZs: the Availability Zones of region '" + region +
                                 "' are not known to relaylab: assumed " + out[0] + ", " + out[1] +
                                 " and " + out[2] + " (--azs NAME,NAME,... gives them)"});
  }
  return out;
}

std::optional<node> evaluator::pseudo(std::size_t s, const std::string& name, const position& at) {
  const auto& r = opts_.region;
  const std::string partition = r.rfind("cn-", 0) == 0       ? "aws-cn"
                                : r.rfind("us-gov-", 0) == 0 ? "aws-us-gov"
                                                             : "aws";
  if (name == "AWS::Region") return node::scalar(r, at);
  if (name == "AWS::AccountId") return node::scalar(opts_.account_id, at);
  if (name == "AWS::StackName") return node::scalar(stacks_[s].name, at);
  if (name == "AWS::StackId") {
    return node::scalar("arn:" + partition + ":cloudformation:" + r + ":" + opts_.account_id +
                            ":stack/" + stacks_[s].name + "/relaylab",
                        at);
  }
  if (name == "AWS::Partition") return node::scalar(partition, at);
  if (name == "AWS::URLSuffix") {
    return node::scalar(partition == "aws-cn" ? "amazonaws.com.cn" : "amazonaws.com", at);
  }
  if (name == "AWS::NoValue") return no_value(at);
  if (name == "AWS::NotificationARNs") return node::sequence({}, at);
  error(at, "unknown pseudo parameter '" + name + "'");
  return std::nullopt;
}

std::optional<node> evaluator::ref(std::size_t s, const node& arg, const position& at) {
  if (!arg.is_scalar()) {
    error(arg.where, "Ref takes the name of a parameter or resource");
    return std::nullopt;
  }
  const auto& name = arg.value;
  if (name.rfind("AWS::", 0) == 0) return pseudo(s, name, at);
  const node* params = stacks_[s].root.find("Parameters");
  if (params && params->find(name)) return parameter(s, name, arg.where);
  if (const resource* r = find(s, name)) {
    if (attributes_) {
      const std::size_t before = errors_.size();
      if (auto v = attributes_->ref(*r, at)) return v;
      if (errors_.size() != before) return std::nullopt;
    }
    if (r->type == "AWS::SSM::Parameter") {
      auto n = property(*r, "Name");
      if (!n) error(at, "Ref to " + name + ": the SSM parameter has no Name");
      return n;
    }
    return node::scalar(r->id, at);
  }
  if (not_created_.count({s, name})) {
    error(arg.where, "Ref to '" + name +
                         "': the resource is not created (its Condition is "
                         "false)");
    return std::nullopt;
  }
  error(arg.where,
        "Ref to '" + name + "': no parameter or resource of that name in " + stacks_[s].file);
  return std::nullopt;
}

std::optional<node> evaluator::get_att(std::size_t s, const node& arg, const position& at,
                                       std::size_t depth) {
  std::string logical, attr;
  position where = arg.where;
  if (arg.is_scalar() && arg.value.find('.') != std::string::npos) {
    logical = arg.value.substr(0, arg.value.find('.'));
    attr = arg.value.substr(arg.value.find('.') + 1);
  } else if (arg.is_sequence() && arg.items.size() == 2 &&
             (arg.items[0].is_scalar() || stacks_[s].language_extensions)) {
    // The language extensions take a function for the logical ID too (Fn::Sub in a loop).
    auto l = arg.items[0].is_scalar() ? std::optional<node>(arg.items[0])
                                      : eval_in(s, arg.items[0], depth + 1);
    if (!l) return std::nullopt;
    auto id = text(*l, "Fn::GetAtt logical ID");
    if (!id) return std::nullopt;
    logical = *id;
    where = arg.items[0].where;
    auto a = eval_in(s, arg.items[1], depth + 1);
    if (!a) return std::nullopt;
    auto t = text(*a, "Fn::GetAtt attribute");
    if (!t) return std::nullopt;
    attr = *t;
  } else {
    error(arg.where, "Fn::GetAtt takes [LogicalId, Attribute]");
    return std::nullopt;
  }
  const resource* r = find(s, logical);
  if (!r) {
    error(where, "Fn::GetAtt " + logical + "." + attr + ": " +
                     (not_created_.count({s, logical})
                          ? "the resource is not created (its Condition is false)"
                          : "no resource of that name in " + stacks_[s].file));
    return std::nullopt;
  }
  if (attributes_) {
    bool handled = false;
    auto v = attributes_->attribute(*r, attr, at, handled);
    if (handled) return v;
  }
  if (r->type == "AWS::CloudFormation::Stack" && attr.rfind("Outputs.", 0) == 0) {
    return nested_output(*r, attr.substr(8), at);
  }
  if (r->type == "AWS::SSM::Parameter") {
    if (attr == "Value" || attr == "Type") {
      auto v = property(*r, attr);
      if (!v && attr == "Type") return node::scalar("String", at);
      return v;
    }
    error(where, "Fn::GetAtt " + logical + "." + attr + ": an SSM parameter has Value and Type");
    return std::nullopt;
  }
  // A resource outside the network model: its attributes feed nothing that is modelled, but
  // the ones CloudFormation documents as lists are lists, so that Fn::Select and Fn::Join take
  // them as templates do (a directory's two DNS servers, a hosted zone's four name servers).
  if (const std::size_t n = outside_list_attribute_size(r->type, attr); n > 0) {
    std::vector<node> items;
    for (std::size_t i = 0; i < n; ++i) {
      items.push_back(node::scalar(r->id + "." + attr + "." + std::to_string(i), at));
    }
    return node::sequence(std::move(items), at);
  }
  return node::scalar(r->id + "." + attr, at);
}

std::optional<node> evaluator::sub(std::size_t s, const node& arg, const position& at,
                                   std::size_t depth) {
  const node* str = &arg;
  std::optional<node> vars;
  if (arg.is_sequence()) {
    if (arg.items.size() != 2 || !arg.items[1].is_mapping()) {
      error(arg.where, "Fn::Sub takes a string or [string, {Name: value ...}]");
      return std::nullopt;
    }
    str = &arg.items[0];
    vars = eval_in(s, arg.items[1], depth + 1);
    if (!vars) return std::nullopt;
  }
  if (!str->is_scalar()) {
    error(str->where, "Fn::Sub takes a string");
    return std::nullopt;
  }
  const std::string& in = str->value;
  std::string out;
  std::size_t i = 0;
  while (i < in.size()) {
    const auto k = in.find("${", i);
    if (k == std::string::npos) {
      out += in.substr(i);
      break;
    }
    out += in.substr(i, k - i);
    const auto end = in.find('}', k);
    if (end == std::string::npos) {
      error(str->where, "Fn::Sub: '${' without '}' in '" + in + "'");
      return std::nullopt;
    }
    const std::string name = trim(in.substr(k + 2, end - k - 2));
    i = end + 1;
    if (!name.empty() && name[0] == '!') {
      out += "${" + name.substr(1) + "}";
      continue;
    }
    std::optional<node> v;
    if (vars && vars->find(name)) {
      v = *vars->find(name);
    } else if (name.find('.') != std::string::npos && name.rfind("AWS::", 0) != 0) {
      node ga = node::scalar(name, str->where);
      v = get_att(s, ga, at, depth + 1);
    } else {
      v = ref(s, node::scalar(name, str->where), at);
    }
    if (!v) return std::nullopt;
    auto t = text(*v, "Fn::Sub ${" + name + "}");
    if (!t) return std::nullopt;
    out += *t;
  }
  return node::scalar(out, at);
}

std::optional<std::vector<std::string>> cidr_split(const std::string& block, std::uint64_t count,
                                                   std::uint64_t bits) {
  const auto c = sim::parse_cidr(block);
  if (!c || block.find('/') == std::string::npos) return std::nullopt;
  const int total = address_bits(c->base);
  if (bits > static_cast<std::uint64_t>(total)) return std::nullopt;
  const int prefix = total - static_cast<int>(bits);
  if (prefix < c->prefix ||
      (prefix - c->prefix < 64 && count > (std::uint64_t{1} << (prefix - c->prefix)))) {
    return std::nullopt;
  }
  std::vector<std::string> out;
  const auto base = network_of(c->base, c->prefix);
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto a = add_shifted(base, i, static_cast<int>(bits));
    if (!a) return std::nullopt;
    out.push_back(sim::cidr{*a, prefix}.to_string());
  }
  return out;
}
}  // namespace relaylab::cfn
