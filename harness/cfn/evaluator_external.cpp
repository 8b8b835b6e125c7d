// Values from outside a stack: Fn::ImportValue against the Outputs that the templates export,
// and SSM parameter names against their AWS::SSM::Parameter resources (see evaluator.hpp).
#include "harness/cfn/evaluator_support.hpp"

namespace relaylab::cfn {

using namespace detail;

std::optional<node> evaluator::import_value(const std::string& name, const position& at) {
  if (!exports_) {
    if (!enter("Outputs.*.Export.Name", at)) return std::nullopt;
    const auto saved = context_;
    context_.clear();  // the table's errors belong to no one resource
    std::map<std::string, std::pair<std::size_t, const node*>> table;
    std::map<std::string, position> where;
    for (std::size_t s = 0; s < stacks_.size(); ++s) {
      const node* outs = stacks_[s].root.find("Outputs");
      if (!outs || !stack_created_[s]) continue;
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
}  // namespace relaylab::cfn
