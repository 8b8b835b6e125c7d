// Stacks, parameters, conditions, outputs and the intrinsic functions (see evaluator.hpp).
#include "harness/cfn/evaluator.hpp"

#include "harness/cfn/address_math.hpp"

#include <algorithm>
#include <charconv>
#include <functional>
#include <regex>

namespace relaylab::cfn {

namespace {

constexpr std::size_t eval_depth_max = 100;
constexpr std::size_t errors_max = 100;

const char* const sections[] = {"AWSTemplateFormatVersion",
                                "Description",
                                "Metadata",
                                "Parameters",
                                "Rules",
                                "Mappings",
                                "Conditions",
                                "Transform",
                                "Resources",
                                "Outputs"};

node no_value(const position& at) {
  node n;
  n.value = "AWS::NoValue";
  n.where = at;
  return n;
}
bool is_no_value(const node& n) { return n.is_null() && n.value == "AWS::NoValue"; }

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "vpc-<stack>-<logical>": readable, unique (logical IDs are alphanumeric).
std::string physical_id(const std::string& type, const std::string& stack,
                        const std::string& logical) {
  static const std::map<std::string, std::string> prefixes = {{"AWS::EC2::VPC", "vpc"},
                                                              {"AWS::EC2::Subnet", "subnet"},
                                                              {"AWS::EC2::InternetGateway", "igw"},
                                                              {"AWS::EC2::RouteTable", "rtb"},
                                                              {"AWS::EC2::NatGateway", "nat"},
                                                              {"AWS::EC2::EIP", "eipalloc"},
                                                              {"AWS::EC2::SecurityGroup", "sg"},
                                                              {"AWS::EC2::NetworkAcl", "acl"},
                                                              {"AWS::EC2::Instance", "i"}};
  const auto it = prefixes.find(type);
  std::string prefix = it != prefixes.end() ? it->second : "";
  if (prefix.empty()) {
    const auto k = type.rfind("::");
    prefix = lower(k == std::string::npos ? type : type.substr(k + 2));
  }
  return prefix + "-" + stack + "-" + logical;
}

std::vector<std::string> split(const std::string& s, const std::string& delim) {
  std::vector<std::string> out;
  if (delim.empty()) return {s};
  std::size_t start = 0;
  for (std::size_t k = s.find(delim); k != std::string::npos; k = s.find(delim, start)) {
    out.push_back(s.substr(start, k - start));
    start = k + delim.size();
  }
  out.push_back(s.substr(start));
  return out;
}

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

node list_of(const std::vector<std::string>& items, const position& at) {
  std::vector<node> v;
  for (const auto& s : items) v.push_back(node::scalar(s, at));
  return node::sequence(std::move(v), at);
}

bool same_value(const node& a, const node& b) {
  if (a.type != b.type) return false;
  if (a.is_scalar() || a.is_null()) return a.value == b.value;
  if (a.is_sequence()) {
    if (a.items.size() != b.items.size()) return false;
    for (std::size_t i = 0; i < a.items.size(); ++i) {
      if (!same_value(a.items[i], b.items[i])) return false;
    }
    return true;
  }
  if (a.entries.size() != b.entries.size()) return false;
  for (std::size_t i = 0; i < a.entries.size(); ++i) {
    if (a.entries[i].key != b.entries[i].key ||
        !same_value(a.entries[i].value, b.entries[i].value)) {
      return false;
    }
  }
  return true;
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

// Names a Ref, Fn::GetAtt or ${} in `n` refers to, with the position of the first reference.
void references(const node& n, std::vector<std::pair<std::string, position>>& out) {
  if (n.is_sequence()) {
    for (const auto& i : n.items) references(i, out);
    return;
  }
  if (!n.is_mapping()) return;
  if (n.entries.size() == 1) {
    const auto& e = n.entries[0];
    if (e.key == "Ref" && e.value.is_scalar()) {
      out.emplace_back(e.value.value, e.value.where);
      return;
    }
    if (e.key == "Fn::GetAtt") {
      if (e.value.is_sequence() && !e.value.items.empty() && e.value.items[0].is_scalar()) {
        out.emplace_back(e.value.items[0].value, e.value.items[0].where);
      } else if (e.value.is_scalar()) {
        out.emplace_back(e.value.value.substr(0, e.value.value.find('.')), e.value.where);
      }
      return;
    }
    if (e.key == "Fn::Sub") {
      const node* str = e.value.is_scalar()                               ? &e.value
                        : e.value.is_sequence() && !e.value.items.empty() ? &e.value.items[0]
                                                                          : nullptr;
      const node* vars =
          e.value.is_sequence() && e.value.items.size() > 1 ? &e.value.items[1] : nullptr;
      if (str && str->is_scalar()) {
        const auto& s = str->value;
        for (std::size_t k = s.find("${"); k != std::string::npos; k = s.find("${", k + 2)) {
          const auto end = s.find('}', k);
          if (end == std::string::npos) break;
          auto name = trim(s.substr(k + 2, end - k - 2));
          if (name.empty() || name[0] == '!') continue;
          if (vars && vars->find(name)) continue;
          out.emplace_back(name.substr(0, name.find('.')), str->where);
        }
      }
      if (vars) references(*vars, out);
      return;
    }
  }
  for (const auto& e : n.entries) references(e.value, out);
}

}  // namespace

evaluator::evaluator(std::vector<stack> stacks, options opts, std::vector<diagnostic>& errors)
    : stacks_(std::move(stacks)),
      opts_(std::move(opts)),
      errors_(errors),
      errors_before_(errors.size()) {
  std::stable_sort(stacks_.begin(), stacks_.end(),
                   [](const stack& a, const stack& b) { return a.name < b.name; });
  for (std::size_t i = 0; i + 1 < stacks_.size(); ++i) {
    if (stacks_[i].name == stacks_[i + 1].name) {
      error(stacks_[i + 1].root.where, "two templates would be the stack '" + stacks_[i].name +
                                           "' (" + stacks_[i].file + " and " + stacks_[i + 1].file +
                                           "): stack names are unique");
    }
  }
  std::vector<resource> declared;
  for (std::size_t s = 0; s < stacks_.size(); ++s) {
    const auto& root = stacks_[s].root;
    for (const auto& e : root.entries) {
      if (std::find(std::begin(sections), std::end(sections), e.key) == std::end(sections)) {
        error(e.key_where, "unknown top-level section '" + e.key + "'");
      } else if (e.key == "Transform") {
        error(e.key_where,
              "Transform (macros such as AWS::Serverless) rewrites the template; "
              "it cannot be imported: expand it first (aws cloudformation "
              "get-template --template-stage Processed)");
      }
    }
    const node* res = root.find("Resources");
    if (!res || !res->is_mapping() || res->entries.empty()) {
      error(res ? res->where : root.where,
            "a template needs a Resources mapping with at least "
            "one resource");
      continue;
    }
    for (const auto& e : res->entries) {
      const node* type = e.value.find("Type");
      if (!e.value.is_mapping() || !type || !type->is_scalar()) {
        error(e.key_where, e.key + ": a resource needs 'Type: AWS::...'");
        continue;
      }
      if (const node* p = e.value.find("Properties"); p && !p->is_mapping() && !p->is_null()) {
        error(p->where, e.key + ": Properties must be a mapping");
        continue;
      }
      declared.push_back({s, e.key, type->value, physical_id(type->value, stacks_[s].name, e.key),
                          &e.value, e.key_where});
    }
    check_cycles(s);
  }
  std::sort(declared.begin(), declared.end(), [&](const resource& a, const resource& b) {
    return std::tie(stacks_[a.stack].name, a.logical) < std::tie(stacks_[b.stack].name, b.logical);
  });
  // A resource whose Condition is false is not created. Conditions may need parameters that
  // SSM resolves against other stacks' resources, so every declared one is known first.
  resources_ = std::move(declared);
  for (std::size_t i = 0; i < resources_.size(); ++i) {
    by_logical_[{resources_[i].stack, resources_[i].logical}] = i;
  }
  std::vector<bool> created(resources_.size(), true);
  for (std::size_t i = 0; i < resources_.size(); ++i) {
    const auto& r = resources_[i];
    if (const node* c = r.decl->find("Condition")) {
      if (!c->is_scalar()) {
        error(c->where, r.logical + ": Condition names a condition");
        created[i] = false;
        continue;
      }
      context_ = r.logical;
      created[i] = condition(r.stack, c->value, c->where).value_or(false);
      context_.clear();
    }
  }
  std::vector<resource> kept;
  for (std::size_t i = 0; i < resources_.size(); ++i) {
    if (created[i]) kept.push_back(resources_[i]);
  }
  // Conditions evaluated above may have looked resources up: the index now follows `kept`.
  not_created_.clear();
  for (std::size_t i = 0; i < resources_.size(); ++i) {
    if (!created[i]) not_created_.insert({resources_[i].stack, resources_[i].logical});
  }
  resources_ = std::move(kept);
  by_logical_.clear();
  props_.clear();
  ssm_.reset();
  for (std::size_t i = 0; i < resources_.size(); ++i) {
    by_logical_[{resources_[i].stack, resources_[i].logical}] = i;
    by_id_[resources_[i].id] = i;
  }
}

const resource* evaluator::find(std::size_t stack, const std::string& logical) const {
  const auto it = by_logical_.find({stack, logical});
  return it == by_logical_.end() ? nullptr : &resources_[it->second];
}

const resource* evaluator::by_id(const std::string& id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &resources_[it->second];
}

void evaluator::error(const position& at, const std::string& message) {
  if (errors_.size() - errors_before_ >= errors_max) return;
  errors_.push_back({at, context_.empty() ? message : context_ + ": " + message});
}

bool evaluator::enter(const std::string& key, const position& at) {
  for (std::size_t i = 0; i < in_progress_.size(); ++i) {
    if (in_progress_[i].first != key) continue;
    std::string chain;
    for (std::size_t k = i; k < in_progress_.size(); ++k) {
      chain += in_progress_[k].first + " (" + in_progress_[k].second.to_string() + ") → ";
    }
    error(at, "circular reference: " + chain + key);
    return false;
  }
  in_progress_.emplace_back(key, at);
  return true;
}

void evaluator::leave() { in_progress_.pop_back(); }

void evaluator::check_cycles(std::size_t s) {
  const node* res = stacks_[s].root.find("Resources");
  std::map<std::string, std::vector<std::pair<std::string, position>>> deps;
  for (const auto& e : res->entries) {
    auto& d = deps[e.key];
    if (const node* p = e.value.find("Properties")) references(*p, d);
    if (const node* dep = e.value.find("DependsOn")) {
      std::vector<const node*> names;
      if (dep->is_scalar()) names.push_back(dep);
      for (const auto& i : dep->items) names.push_back(&i);
      for (const node* n : names) {
        if (!n->is_scalar() || !res->find(n->value)) {
          error(n->where,
                e.key + ": DependsOn names no resource of this template: '" + n->value + "'");
        } else {
          d.emplace_back(n->value, n->where);
        }
      }
    }
  }
  // Depth-first search; a reference back to a resource on the path is a cycle.
  std::map<std::string, int> color;  // 0 new, 1 on the path, 2 done
  std::vector<std::pair<std::string, position>> path;
  bool reported = false;
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    color[name] = 1;
    for (const auto& [to, at] : deps[name]) {
      if (!deps.count(to) || reported) continue;
      if (color[to] == 1) {
        std::string chain;
        position first = at;
        bool on = false;
        for (const auto& [n, where] : path) {
          if (n == to) {
            on = true;
            first = where;
          }
          if (on) chain += n + " (" + where.to_string() + ") → ";
        }
        chain += name + " (" + at.to_string() + ") → " + to;
        // The first hop's reference is where the chain is reported.
        (void)first;
        error(path.empty() ? at : path.front().second,
              "circular dependency between resources: " + chain);
        reported = true;
        return;
      }
      if (color[to] == 0) {
        path.emplace_back(name, at);
        visit(to);
        path.pop_back();
      }
    }
    color[name] = 2;
  };
  for (const auto& e : res->entries) {
    if (color[e.key] == 0 && !reported) visit(e.key);
  }
}

std::optional<bool> evaluator::boolean(const node& v, const std::string& what) {
  if (v.is_scalar()) {
    const auto l = lower(v.value);
    if (l == "true") return true;
    if (l == "false") return false;
  }
  error(v.where, what + ": expected true or false, got '" + v.value + "'");
  return std::nullopt;
}

std::optional<std::string> evaluator::text(const node& v, const std::string& what) {
  if (v.is_scalar()) return v.value;
  error(v.where, what + ": expected a string, got " +
                     (v.is_sequence()  ? "a list"
                      : v.is_mapping() ? "a mapping"
                                       : "nothing"));
  return std::nullopt;
}

position evaluator::property_where(const resource& r, const std::string& key) const {
  if (const node* p = r.decl->find("Properties")) {
    if (const entry* e = p->find_entry(key)) return e->value.where;
  }
  return r.where;
}

std::optional<node> evaluator::property(const resource& r, const std::string& key) {
  const std::size_t index = static_cast<std::size_t>(&r - resources_.data());
  const auto memo_key = std::make_pair(index, key);
  if (auto it = props_.find(memo_key); it != props_.end()) return it->second;
  const node* p = r.decl->find("Properties");
  const node* v = p ? p->find(key) : nullptr;
  if (!v) return std::nullopt;
  const std::string name = stacks_[r.stack].name + "." + r.logical + "." + key;
  if (!enter(name, v->where)) return std::nullopt;
  const auto saved = context_;
  context_ = r.logical;
  auto out = eval_in(r.stack, *v, 0);
  context_ = saved;
  leave();
  if (out && is_no_value(*out)) out.reset();
  props_[memo_key] = out;
  return out;
}

std::optional<node> evaluator::eval(std::size_t stack, const node& expr) {
  auto out = eval_in(stack, expr, 0);
  if (out && is_no_value(*out)) return std::nullopt;
  return out;
}

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
    if (region.empty()) region = opts_.region;
    return list_of({region + "a", region + "b", region + "c"}, at);
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
    auto a = args(3);
    if (!a) return std::nullopt;
    auto m = text((*a)[0], "Fn::FindInMap map");
    auto k1 = text((*a)[1], "Fn::FindInMap key");
    auto k2 = text((*a)[2], "Fn::FindInMap key");
    if (!m || !k1 || !k2) return std::nullopt;
    const node* maps = stacks_[s].root.find("Mappings");
    const node* mp = maps ? maps->find(*m) : nullptr;
    const node* l1 = mp ? mp->find(*k1) : nullptr;
    const node* l2 = l1 ? l1->find(*k2) : nullptr;
    if (!l2) {
      error(at, "Fn::FindInMap: Mappings has no " + *m + "." + *k1 + "." + *k2);
      return std::nullopt;
    }
    return eval_in(s, *l2, depth + 1);
  }
  if (name == "Fn::Base64") {
    auto v = eval_in(s, arg, depth + 1);
    if (!v) return std::nullopt;
    auto t = text(*v, "Fn::Base64");
    if (!t) return std::nullopt;
    return node::scalar(base64(*t), at);
  }
  error(fn.key_where, "unknown intrinsic function '" + name +
                          "' (Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::Select, Fn::Split, "
                          "Fn::If, Fn::Equals, Fn::And, Fn::Or, Fn::Not, Fn::ImportValue, "
                          "Fn::GetAZs, Fn::Cidr, Fn::FindInMap, Fn::Base64)");
  return std::nullopt;
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
  } else if (arg.is_sequence() && arg.items.size() == 2 && arg.items[0].is_scalar()) {
    logical = arg.items[0].value;
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
  if (r->type == "AWS::SSM::Parameter") {
    if (attr == "Value" || attr == "Type") {
      auto v = property(*r, attr);
      if (!v && attr == "Type") return node::scalar("String", at);
      return v;
    }
    error(where, "Fn::GetAtt " + logical + "." + attr + ": an SSM parameter has Value and Type");
    return std::nullopt;
  }
  // A resource outside the network model: its attributes feed nothing that is modelled.
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

std::optional<node> evaluator::parameter(std::size_t s, const std::string& name,
                                         const position& at) {
  const auto key = std::make_pair(s, name);
  if (auto it = params_.find(key); it != params_.end()) return it->second;
  const node* decl = stacks_[s].root.find("Parameters")->find(name);
  const std::string guard_name = stacks_[s].name + ".Parameters." + name;
  if (!enter(guard_name, at)) return std::nullopt;
  std::optional<node> out = [&]() -> std::optional<node> {
    const node* type_n = decl->find("Type");
    const std::string type = type_n && type_n->is_scalar() ? type_n->value : "String";
    std::optional<node> value;
    for (const auto& [k, v] : opts_.params) {
      if (k == name) value = node::scalar(v, decl->where);
    }
    if (!value) {
      if (const node* d = decl->find("Default")) {
        if (d->is_scalar()) {
          value = *d;
        } else if (d->is_sequence()) {
          // A list Default is read as its comma-joined text.
          std::string j;
          for (const auto& i : d->items) j += (j.empty() ? "" : ",") + i.value;
          value = node::scalar(j, d->where);
        }
      }
    }
    if (!value) {
      error(stacks_[s].root.find("Parameters")->find_entry(name)->key_where,
            "parameter '" + name + "' (" + type + ") of " + stacks_[s].file +
                " has no Default; give --param " + name + "=VALUE");
      return std::nullopt;
    }
    if (const node* allowed = decl->find("AllowedValues"); allowed && allowed->is_sequence()) {
      bool ok = false;
      for (const auto& a : allowed->items) ok = ok || a.value == value->value;
      if (!ok) {
        error(value->where,
              "parameter '" + name + "': '" + value->value + "' is not one of its AllowedValues");
        return std::nullopt;
      }
    }
    if (const node* pat = decl->find("AllowedPattern"); pat && pat->is_scalar()) {
      bool ok = false;
      try {
        ok = std::regex_match(value->value, std::regex(pat->value));
      } catch (const std::regex_error&) {
        ok = true;  // a pattern std::regex cannot read is left to CloudFormation
      }
      if (!ok) {
        error(value->where, "parameter '" + name + "': '" + value->value +
                                "' does not match its AllowedPattern " + pat->value);
        return std::nullopt;
      }
    }
    std::string inner = type;
    const std::string ssm = "AWS::SSM::Parameter::Value<";
    if (type.rfind(ssm, 0) == 0 && type.back() == '>') {
      inner = type.substr(ssm.size(), type.size() - ssm.size() - 1);
      auto v = ssm_value(value->value, value->where);
      if (!v) return std::nullopt;
      value = node::scalar(v->value, value->where);
    }
    if (inner.rfind("List<", 0) == 0 || inner == "CommaDelimitedList") {
      std::vector<std::string> parts;
      for (const auto& p : split(value->value, ",")) parts.push_back(trim(p));
      if (value->value.empty()) parts.clear();
      return list_of(parts, value->where);
    }
    return value;
  }();
  leave();
  params_[key] = out;
  return out;
}

std::optional<bool> evaluator::condition(std::size_t s, const std::string& name,
                                         const position& at) {
  const auto key = std::make_pair(s, name);
  if (auto it = conditions_.find(key); it != conditions_.end()) return it->second;
  const node* conds = stacks_[s].root.find("Conditions");
  const node* c = conds ? conds->find(name) : nullptr;
  if (!c) {
    error(at, "no condition named '" + name + "' in " + stacks_[s].file);
    return std::nullopt;
  }
  if (!enter(stacks_[s].name + ".Conditions." + name, at)) return std::nullopt;
  auto out = condition_value(s, *c, 0);
  leave();
  conditions_[key] = out;
  return out;
}

std::optional<bool> evaluator::condition_value(std::size_t s, const node& expr, std::size_t depth) {
  if (depth > eval_depth_max) {
    error(expr.where, "conditions nested deeper than " + std::to_string(eval_depth_max));
    return std::nullopt;
  }
  if (!expr.is_mapping() || expr.entries.size() != 1) {
    error(expr.where, "a condition is Fn::Equals, Fn::And, Fn::Or, Fn::Not or {Condition: name}");
    return std::nullopt;
  }
  const auto& e = expr.entries[0];
  if (e.key == "Condition") {
    if (!e.value.is_scalar()) {
      error(e.value.where, "Condition takes the name of a condition");
      return std::nullopt;
    }
    return condition(s, e.value.value, e.value.where);
  }
  if (e.key == "Fn::Equals") {
    if (!e.value.is_sequence() || e.value.items.size() != 2) {
      error(e.value.where, "Fn::Equals takes [value, value]");
      return std::nullopt;
    }
    auto a = eval_in(s, e.value.items[0], depth + 1);
    auto b = eval_in(s, e.value.items[1], depth + 1);
    if (!a || !b) return std::nullopt;
    return same_value(*a, *b);
  }
  if (e.key == "Fn::And" || e.key == "Fn::Or" || e.key == "Fn::Not") {
    const bool is_not = e.key == "Fn::Not";
    if (!e.value.is_sequence() || (is_not && e.value.items.size() != 1) ||
        (!is_not && (e.value.items.size() < 2 || e.value.items.size() > 10))) {
      error(e.value.where, e.key + (is_not ? " takes [condition]" : " takes 2 to 10 conditions"));
      return std::nullopt;
    }
    bool all = true, any = false;
    for (const auto& i : e.value.items) {
      auto v = condition_value(s, i, depth + 1);
      if (!v) return std::nullopt;
      all = all && *v;
      any = any || *v;
    }
    return is_not ? !all : e.key == "Fn::And" ? all : any;
  }
  if (e.key == "Fn::If" || e.key == "Ref" || e.key == "Fn::FindInMap") {
    auto v = eval_in(s, expr, depth + 1);
    if (!v) return std::nullopt;
    return boolean(*v, "condition");
  }
  error(e.key_where,
        "a condition is Fn::Equals, Fn::And, Fn::Or, Fn::Not or {Condition: name}, "
        "not " +
            e.key);
  return std::nullopt;
}

std::optional<node> evaluator::import_value(const std::string& name, const position& at) {
  if (!exports_) {
    if (!enter("Outputs.*.Export.Name", at)) return std::nullopt;
    const auto saved = context_;
    context_.clear();  // the table's errors belong to no one resource
    std::map<std::string, std::pair<std::size_t, const node*>> table;
    std::map<std::string, position> where;
    for (std::size_t s = 0; s < stacks_.size(); ++s) {
      const node* outs = stacks_[s].root.find("Outputs");
      if (!outs) continue;
      for (const auto& o : outs->entries) {
        const node* ex = o.value.find("Export");
        const node* n = ex ? ex->find("Name") : nullptr;
        const node* v = o.value.find("Value");
        if (!n || !v) continue;
        if (const node* c = o.value.find("Condition"); c && c->is_scalar()) {
          if (!condition(s, c->value, c->where).value_or(false)) continue;
        }
        auto nv = eval(s, *n);
        auto t = nv ? text(*nv, "Export Name") : std::nullopt;
        if (!t) continue;
        if (auto [it, fresh] = where.emplace(*t, n->where); !fresh) {
          error(n->where, "export '" + *t + "' is already exported at " + it->second.to_string());
          continue;
        }
        table[*t] = {s, v};
      }
    }
    leave();
    context_ = saved;
    exports_ = std::move(table);
  }
  const auto it = exports_->find(name);
  if (it == exports_->end()) {
    error(at, "Fn::ImportValue '" + name +
                  "': none of the templates exports it "
                  "(Outputs: ...: Export: Name)");
    return std::nullopt;
  }
  if (!enter("export " + name, at)) return std::nullopt;
  auto v = eval(it->second.first, *it->second.second);
  leave();
  return v;
}

std::optional<node> evaluator::ssm_value(const std::string& name, const position& at) {
  if (!ssm_) {
    if (!enter("AWS::SSM::Parameter names", at)) return std::nullopt;
    const auto saved = context_;
    context_.clear();
    std::map<std::string, std::size_t> table;
    for (std::size_t i = 0; i < resources_.size(); ++i) {
      if (resources_[i].type != "AWS::SSM::Parameter") continue;
      auto n = property(resources_[i], "Name");
      auto t = n ? text(*n, "Name") : std::nullopt;
      if (!t) continue;
      if (auto [it, fresh] = table.emplace(*t, i); !fresh) {
        error(n->where,
              "SSM parameter '" + *t + "' is also created by " + resources_[it->second].logical);
      }
    }
    leave();
    context_ = saved;
    ssm_ = std::move(table);
  }
  const auto it = ssm_->find(name);
  if (it == ssm_->end() && name.rfind("/aws/service/", 0) == 0) {
    // AWS's own public parameters (AMI IDs, regions ...) name nothing in the network: their
    // value stands for itself.
    return node::scalar("resolve:ssm:" + name, at);
  }
  if (it == ssm_->end()) {
    error(at, "SSM parameter '" + name +
                  "': no AWS::SSM::Parameter in the templates given "
                  "has this Name");
    return std::nullopt;
  }
  const auto& r = resources_[it->second];
  auto v = property(r, "Value");
  if (!v) {
    error(at, "SSM parameter '" + name + "' (" + r.logical + ") has no Value");
    return std::nullopt;
  }
  if (v->is_sequence()) {  // a StringList written as a list
    std::string j;
    for (const auto& i : v->items) j += (j.empty() ? "" : ",") + i.value;
    return node::scalar(j, v->where);
  }
  if (!text(*v, "SSM parameter Value")) return std::nullopt;
  return v;
}

void evaluator::evaluate_all() {
  for (const auto& r : resources_) {
    if (const node* p = r.decl->find("Properties")) {
      for (const auto& e : p->entries) property(r, e.key);
    }
  }
  for (std::size_t s = 0; s < stacks_.size(); ++s) {
    if (const node* conds = stacks_[s].root.find("Conditions")) {
      for (const auto& c : conds->entries) condition(s, c.key, c.key_where);
    }
    if (const node* outs = stacks_[s].root.find("Outputs")) {
      for (const auto& o : outs->entries) {
        if (const node* c = o.value.find("Condition"); c && c->is_scalar()) {
          if (!condition(s, c->value, c->where).value_or(false)) continue;
        }
        const auto saved = context_;
        context_ = "Outputs." + o.key;
        if (const node* v = o.value.find("Value")) eval(s, *v);
        context_ = saved;
      }
    }
  }
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
