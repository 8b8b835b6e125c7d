// Stacks and their resources: reading the sections, Conditions on resources, cycles between
// resources, properties, and evaluating everything (see evaluator.hpp).
#include "harness/cfn/evaluator_support.hpp"

#include <algorithm>
#include <functional>
#include <map>

namespace relaylab::cfn {

using namespace detail;

namespace {

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

// "vpc-<stack>-<logical>": readable, unique (logical IDs are alphanumeric). Types whose Ref is
// an ARN get one ("arn:aws:acm:REGION:ACCOUNT:certificate/<stack>-<logical>"), so that templates
// that take it apart (Fn::Split on '/' or ':') find its pieces.
std::string physical_id(const std::string& type, const std::string& stack,
                        const std::string& logical, const options& o) {
  static const std::map<std::string, std::pair<std::string, std::string>> arns = {
      {"AWS::CertificateManager::Certificate", {"acm", "certificate/"}},
      {"AWS::ElasticLoadBalancingV2::LoadBalancer", {"elasticloadbalancing", "loadbalancer/app/"}},
      {"AWS::ElasticLoadBalancingV2::TargetGroup", {"elasticloadbalancing", "targetgroup/"}},
      {"AWS::ElasticLoadBalancingV2::Listener", {"elasticloadbalancing", "listener/app/"}},
      {"AWS::SNS::Topic", {"sns", ""}},
      {"AWS::IAM::ManagedPolicy", {"iam", "policy/"}}};
  if (const auto a = arns.find(type); a != arns.end()) {
    const std::string partition = o.region.rfind("cn-", 0) == 0       ? "aws-cn"
                                  : o.region.rfind("us-gov-", 0) == 0 ? "aws-us-gov"
                                                                      : "aws";
    const bool global = a->second.first == "iam";
    return "arn:" + partition + ":" + a->second.first + ":" + (global ? "" : o.region) + ":" +
           o.account_id + ":" + a->second.second + stack + "-" + logical;
  }
  static const std::map<std::string, std::string> prefixes = {{"AWS::EC2::VPC", "vpc"},
                                                              {"AWS::EC2::Subnet", "subnet"},
                                                              {"AWS::EC2::InternetGateway", "igw"},
                                                              {"AWS::EC2::RouteTable", "rtb"},
                                                              {"AWS::EC2::NatGateway", "nat"},
                                                              {"AWS::EC2::EIP", "eipalloc"},
                                                              {"AWS::EC2::SecurityGroup", "sg"},
                                                              {"AWS::EC2::NetworkAcl", "acl"},
                                                              {"AWS::EC2::PrefixList", "pl"},
                                                              {"AWS::EC2::Instance", "i"}};
  const auto it = prefixes.find(type);
  std::string prefix = it != prefixes.end() ? it->second : "";
  if (prefix.empty()) {
    const auto k = type.rfind("::");
    prefix = lower(k == std::string::npos ? type : type.substr(k + 2));
  }
  return prefix + "-" + stack + "-" + logical;
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

namespace {
const std::string expand =
    "expand it before importing (aws cloudformation get-template --template-stage Processed "
    "gives a deployed stack's expanded template)";
}  // namespace

std::string detail::needs_language_extensions(const std::string& what) {
  return what +
         " needs the AWS::LanguageExtensions transform, which this template does not declare "
         "(add Transform: AWS::LanguageExtensions at its top level, as AWS needs too)";
}

std::optional<std::string> detail::unsupported_key(const std::string& key) {
  if (key == "Fn::Transform") {
    return "Fn::Transform runs a macro (AWS::Include or another) that rewrites the template, "
           "which relaylab import does not run; " +
           expand;
  }
  if (key == "Fn::Length" || key == "Fn::ToJsonString" || key == "Fn::ForEach" ||
      key.rfind("Fn::ForEach::", 0) == 0) {
    return needs_language_extensions(key.rfind("Fn::ForEach", 0) == 0 ? "Fn::ForEach" : key);
  }
  if (key.rfind("Fn::Rain::", 0) == 0 || key.rfind("Rain::", 0) == 0) {
    const std::string directive = key.rfind("Fn::", 0) == 0 ? key.substr(4) : key;
    return key + " is the rain tool's directive " + directive +
           ", not CloudFormation's; package the template first (rain pkg) and import the "
           "output";
  }
  return std::nullopt;
}

void evaluator::check_unsupported(const node& n, bool language_extensions) {
  for (const auto& i : n.items) check_unsupported(i, language_extensions);
  for (const auto& e : n.entries) {
    if (language_extensions && (e.key == "Fn::Length" || e.key == "Fn::ToJsonString")) {
      check_unsupported(e.value, language_extensions);
    } else if (language_extensions && e.key.rfind("Fn::ForEach", 0) == 0) {
      // Loops left after the transform ran: outside the sections that take them.
      error(e.key_where, "Fn::ForEach can be used in Resources, Outputs and Conditions only");
    } else if (auto m = unsupported_key(e.key)) {
      error(e.key_where, *m);  // one error per construct: its body is not searched
    } else {
      check_unsupported(e.value, language_extensions);
    }
  }
}

evaluator::evaluator(std::vector<stack> stacks, options opts, std::vector<diagnostic>& errors)
    : stacks_(std::move(stacks)),
      opts_(std::move(opts)),
      errors_(errors),
      errors_before_(errors.size()) {
  std::stable_sort(stacks_.begin(), stacks_.end(),
                   [](const stack& a, const stack& b) { return a.name < b.name; });
  stack_created_.assign(stacks_.size(), true);  // until the Conditions are known
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
        // AWS::LanguageExtensions is run here; any other transform is a macro.
        std::vector<const node*> names;
        if (e.value.is_scalar()) names.push_back(&e.value);
        for (const auto& i : e.value.items) names.push_back(&i);
        if (names.empty()) error(e.value.where, "Transform names a transform or a list of them");
        for (const node* n : names) {
          if (n->is_scalar() && n->value == "AWS::LanguageExtensions") continue;
          error(n->is_scalar() ? n->where : e.key_where,
                "Transform " + (n->is_scalar() ? n->value + " " : std::string()) +
                    "(a macro such as AWS::Serverless) rewrites the template; it cannot be "
                    "imported: expand it first (aws cloudformation get-template "
                    "--template-stage Processed)");
        }
      }
    }
    stacks_[s].language_extensions = declares_language_extensions(root);
    if (stacks_[s].language_extensions) run_language_extensions(s);
    // Functions and directives nothing here evaluates, wherever they are written (also where
    // nothing asks for a value: Metadata, unused Conditions): each named with its section and
    // logical ID.
    for (const auto& e : root.entries) {
      if (e.key == "Resources" || e.key == "Outputs" || e.key == "Conditions") {
        for (const auto& x : e.value.entries) {
          context_ = e.key == "Resources" ? x.key : e.key + "." + x.key;
          if (auto m = unsupported_key(x.key)) {
            error(x.key_where, *m);
          } else {
            check_unsupported(x.value, stacks_[s].language_extensions);
          }
        }
      } else {
        context_ = e.key;
        check_unsupported(e.value, stacks_[s].language_extensions);
      }
    }
    context_.clear();
    const node* res = root.find("Resources");
    if (!res || !res->is_mapping() || res->entries.empty()) {
      error(res ? res->where : root.where,
            "a template needs a Resources mapping with at least "
            "one resource");
      continue;
    }
    for (const auto& e : res->entries) {
      if (unsupported_key(e.key)) continue;  // reported above
      const node* type = e.value.find("Type");
      if (!e.value.is_mapping() || !type || !type->is_scalar()) {
        error(e.key_where, e.key + ": a resource needs 'Type: AWS::...'");
        continue;
      }
      if (const node* p = e.value.find("Properties"); p && !p->is_mapping() && !p->is_null()) {
        error(p->where, e.key + ": Properties must be a mapping");
        continue;
      }
      declared.push_back({s, e.key, type->value,
                          physical_id(type->value, stacks_[s].name, e.key, opts_), &e.value,
                          e.key_where});
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
  // A nested stack exists when its parent's AWS::CloudFormation::Stack resource is created
  // (and the parent's parent's ...).
  stack_created_.assign(stacks_.size(), true);
  for (std::size_t s = 0; s < stacks_.size(); ++s) {
    std::size_t up = s;
    for (std::size_t depth = 0; depth <= stacks_.size() && !stacks_[up].parent.empty(); ++depth) {
      const auto p = stack_named(stacks_[up].parent);
      const auto it = p ? by_logical_.find({*p, stacks_[up].parent_resource}) : by_logical_.end();
      if (it == by_logical_.end() || !created[it->second]) {
        stack_created_[s] = false;
        break;
      }
      up = *p;
    }
  }
  std::vector<resource> kept;
  for (std::size_t i = 0; i < resources_.size(); ++i) {
    if (!stack_created_[resources_[i].stack]) created[i] = false;
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
  exports_.reset();
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
        bool on = false;
        for (const auto& [n, where] : path) {
          on = on || n == to;
          if (on) chain += n + " (" + where.to_string() + ") → ";
        }
        chain += name + " (" + at.to_string() + ") → " + to;
        // Reported at the first reference of the search's path.
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

void evaluator::evaluate_all() {
  for (const auto& r : resources_) {
    if (const node* p = r.decl->find("Properties")) {
      for (const auto& e : p->entries) property(r, e.key);
    }
  }
  for (std::size_t s = 0; s < stacks_.size(); ++s) {
    if (!stack_created_[s]) continue;
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
}  // namespace relaylab::cfn
