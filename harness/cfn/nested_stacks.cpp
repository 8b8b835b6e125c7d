// Nested stacks: an AWS::CloudFormation::Stack's template read as one more stack, named
// PARENT-LOGICALID as AWS names it (without AWS's random suffix, so that names are
// deterministic). Its TemplateURL is a file relative to the parent template (as written before
// `aws cloudformation package` uploads it), or a URL that --stack-template URL=FILE maps to a
// file; a URL without one is an error naming it. The evaluator then gives the child's
// parameters the parent's Parameters (evaluated in the parent) and the parent's
// Fn::GetAtt CHILD.Outputs.NAME the child's outputs (evaluator_parameters.cpp,
// evaluator_intrinsics.cpp).
#include "harness/cfn/nested_stacks.hpp"

#include "harness/cfn/evaluator_support.hpp"

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

namespace relaylab::cfn {

namespace {

constexpr std::size_t nesting_depth_max = 10;  // parent → child → ...
constexpr std::size_t nested_stacks_max = 500;

bool remote(const std::string& url) { return url.find("://") != std::string::npos; }

}  // namespace

void load_nested_stacks(std::vector<stack>& stacks, const options& opts,
                        const std::vector<std::pair<std::string, std::string>>& given,
                        std::vector<diagnostic>& errors) {
  const std::map<std::string, std::string> files(given.begin(), given.end());
  std::set<std::string> used;  // --stack-template URLs some stack names
  // A stack's ancestors' files, so that a template nesting itself stops.
  auto chain = [&](std::size_t s) {
    std::vector<std::string> out;
    for (std::string name = stacks[s].name; !name.empty();) {
      const stack* x = nullptr;
      for (const auto& t : stacks) {
        if (t.name == name) x = &t;
      }
      if (!x) break;
      std::error_code ec;
      const auto canonical = std::filesystem::weakly_canonical(x->file, ec);
      out.push_back(ec ? x->file : canonical.string());
      name = x->parent;
    }
    return out;
  };
  for (std::size_t s = 0; s < stacks.size(); ++s) {
    const node* res = stacks[s].root.find("Resources");
    if (!res || !res->is_mapping()) continue;
    // A TemplateURL that is an expression (Fn::Sub of a bucket parameter ...) is evaluated with
    // the stacks read so far; its errors are the final evaluation's to report.
    std::unique_ptr<evaluator> scratch;
    std::vector<diagnostic> scratch_errors;
    for (const auto& e : res->entries) {
      const node* type = e.value.find("Type");
      if (!type || type->value != "AWS::CloudFormation::Stack") continue;
      const node* props = e.value.find("Properties");
      const node* url_n = props ? props->find("TemplateURL") : nullptr;
      const std::string context = e.key + ": ";
      if (!url_n) {
        errors.push_back({e.key_where, context + "a nested stack needs TemplateURL"});
        continue;
      }
      std::string url;
      if (url_n->is_scalar()) {
        url = url_n->value;
      } else {
        if (!scratch) {
          scratch = std::make_unique<evaluator>(stacks, opts, scratch_errors);
        }
        std::size_t index = 0;
        for (std::size_t k = 0; k < scratch->stacks().size(); ++k) {
          if (scratch->stacks()[k].name == stacks[s].name) index = k;
        }
        auto v = scratch->eval(index, *url_n);
        if (!v || !v->is_scalar()) continue;  // the final evaluation reports why
        url = v->value;
      }
      std::string file;
      if (const auto it = files.find(url); it != files.end()) {
        file = it->second;
        used.insert(url);
      } else if (remote(url)) {
        errors.push_back(
            {url_n->where,
             context + "the nested stack's template is at '" + url +
                 "', which relaylab import does not fetch: give it as a file with "
                 "--stack-template " +
                 url +
                 "=FILE (the template before `aws cloudformation package` uploaded it, or "
                 "a copy: aws s3 cp)"});
        continue;
      } else {
        const auto base = std::filesystem::path(stacks[s].file).parent_path();
        file = (base / url).lexically_normal().string();
      }
      std::error_code ec;
      if (!std::filesystem::is_regular_file(file, ec)) {
        errors.push_back(
            {url_n->where,
             context + "the nested stack's template " + file + " (TemplateURL '" + url +
                 (remote(url) || files.count(url) ? "', given with --stack-template)"
                                                  : "', relative to the parent template)") +
                 " is not a file that can be read"});
        continue;
      }
      const auto ancestors = chain(s);
      const auto canonical = std::filesystem::weakly_canonical(file, ec);
      const std::string key = ec ? file : canonical.string();
      if (std::find(ancestors.begin(), ancestors.end(), key) != ancestors.end()) {
        errors.push_back({url_n->where, context + "the nested stack's template " + file +
                                            " is this template or one that nests it: the "
                                            "stacks would nest each other without end"});
        continue;
      }
      if (ancestors.size() >= nesting_depth_max || stacks.size() >= nested_stacks_max) {
        errors.push_back({url_n->where, context + "stacks nested deeper than " +
                                            std::to_string(nesting_depth_max) + " or more than " +
                                            std::to_string(nested_stacks_max) + " stacks"});
        continue;
      }
      auto root = read_template(file, errors);
      if (!root) continue;
      // Parameters the child does not declare: AWS refuses the parent.
      const node* declared = root->find("Parameters");
      if (const node* p = props->find("Parameters"); p && p->is_mapping()) {
        for (const auto& x : p->entries) {
          if (!declared || !declared->find(x.key)) {
            errors.push_back({x.key_where, context + "Parameters: the nested stack's template " +
                                               file + " has no parameter '" + x.key + "'"});
          }
        }
      } else if (p && !p->is_mapping()) {
        errors.push_back({p->where, context + "Parameters must be a mapping {Name: value}"});
      }
      stack child{file, stacks[s].name + "-" + e.key, std::move(*root)};
      child.parent = stacks[s].name;
      child.parent_resource = e.key;
      child.parent_where = url_n->where;
      stacks.push_back(std::move(child));
    }
  }
  for (const auto& [url, file] : given) {
    if (!used.count(url)) {
      errors.push_back({position{"--stack-template", 0, 0},
                        url + "=" + file + ": no AWS::CloudFormation::Stack has that TemplateURL"});
    }
  }
}

std::optional<std::size_t> evaluator::stack_named(const std::string& name) const {
  for (std::size_t s = 0; s < stacks_.size(); ++s) {
    if (stacks_[s].name == name) return s;
  }
  return std::nullopt;
}

std::optional<node> evaluator::parent_parameter(std::size_t s, const std::string& name,
                                                bool& given) {
  given = false;
  const auto p = stack_named(stacks_[s].parent);
  const resource* r = p ? find(*p, stacks_[s].parent_resource) : nullptr;
  if (!r) return std::nullopt;
  const node* props = r->decl->find("Properties");
  const node* params = props ? props->find("Parameters") : nullptr;
  if (!params || !params->find(name)) return std::nullopt;
  given = true;
  auto all = property(*r, "Parameters");
  const node* v = all ? all->find(name) : nullptr;
  if (!v) {
    if (all) {
      // AWS::NoValue: as if the parent did not give it.
      given = false;
    }
    return std::nullopt;
  }
  if (v->is_sequence()) {
    // A list passed to a nested stack is its comma-joined text, as CloudFormation passes it.
    std::string joined;
    for (const auto& i : v->items) {
      auto t = text(i, "Parameters: " + name);
      if (!t) return std::nullopt;
      joined += (joined.empty() ? "" : ",") + *t;
    }
    return node::scalar(joined, v->where);
  }
  auto t = text(*v, r->logical + ": Parameters: " + name);
  if (!t) return std::nullopt;
  return node::scalar(*t, v->where);
}

std::optional<node> evaluator::nested_output(const resource& r, const std::string& output,
                                             const position& at) {
  const auto child = stack_named(stacks_[r.stack].name + "-" + r.logical);
  if (!child) return std::nullopt;  // its template could not be read: reported
  const node* outs = stacks_[*child].root.find("Outputs");
  const node* o = outs ? outs->find(output) : nullptr;
  const node* v = o ? o->find("Value") : nullptr;
  if (!v) {
    error(at, "Fn::GetAtt " + r.logical + ".Outputs." + output + ": the nested stack's template " +
                  stacks_[*child].file + " has no output '" + output + "'");
    return std::nullopt;
  }
  if (const node* c = o->find("Condition"); c && c->is_scalar()) {
    auto on = condition(*child, c->value, c->where);
    if (!on) return std::nullopt;
    if (!*on) {
      error(at, "Fn::GetAtt " + r.logical + ".Outputs." + output +
                    ": the output is not created (its Condition " + c->value + " is false)");
      return std::nullopt;
    }
  }
  if (!enter(stacks_[*child].name + ".Outputs." + output, at)) return std::nullopt;
  const auto saved = context_;
  context_ = "Outputs." + output;
  auto out = eval(*child, *v);
  context_ = saved;
  leave();
  return out;
}

}  // namespace relaylab::cfn
