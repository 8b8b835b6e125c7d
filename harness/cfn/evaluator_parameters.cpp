// Parameters (--param, Default, AllowedValues, AllowedPattern, list and SSM types) and
// Conditions (see evaluator.hpp).
#include "harness/cfn/default_vpc.hpp"
#include "harness/cfn/evaluator_support.hpp"

#include <regex>

namespace relaylab::cfn {

using namespace detail;

namespace {

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

}  // namespace

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
    bool given = false;  // by --param, not the Default
    bool from_parent = false;
    const bool nested = !stacks_[s].parent.empty();
    if (nested) {
      // A nested stack's parameters come from its parent's Stack resource (not --param).
      value = parent_parameter(s, name, from_parent);
      if (!value && from_parent) return std::nullopt;  // its error is reported
    } else {
      for (const auto& [k, v] : opts_.params) {
        if (k == name) value = node::scalar(v, decl->where), given = true;
      }
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
                (nested ? " has no Default, and the parent's " + stacks_[s].parent_resource + " (" +
                              stacks_[s].parent + ") gives it no value in its Parameters"
                        : " has no Default; give --param " + name + "=VALUE"));
      return std::nullopt;
    }
    if (const node* allowed = decl->find("AllowedValues"); allowed && allowed->is_sequence()) {
      bool ok = false;
      for (const auto& a : allowed->items) ok = ok || a.value == value->value;
      if (!ok) {
        // The values, so that the fix can be read off the message (the first eight).
        std::string list;
        for (std::size_t i = 0; i < allowed->items.size() && i < 8; ++i)
          list += (i ? ", " : "") + allowed->items[i].value;
        if (allowed->items.size() > 8) list += ", ...";
        error(value->where, "parameter '" + name + "': '" + value->value + "' (" +
                                (given         ? "--param " + name + "=" + value->value
                                 : from_parent ? "given by " + stacks_[s].parent_resource
                                               : "its Default") +
                                ") is not one of its AllowedValues: " + list);
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
    // --param VpcId=default-vpc, SubnetId=default-us-east-1a: the account's default VPC.
    auto resolve = [&](std::string v) {
      if (!given) return v;
      return default_vpc_id(inner, v, opts_).value_or(v);
    };
    if (inner.rfind("List<", 0) == 0 || inner == "CommaDelimitedList") {
      std::vector<std::string> parts;
      for (const auto& p : split(value->value, ",")) parts.push_back(resolve(trim(p)));
      if (value->value.empty()) parts.clear();
      return list_of(parts, value->where);
    }
    value->value = resolve(value->value);
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
}  // namespace relaylab::cfn
