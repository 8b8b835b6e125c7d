// The AWS::LanguageExtensions transform, run as CloudFormation runs it before evaluating a
// stack: Fn::ForEach::NAME loops expanded in Resources, Outputs and Conditions (also nested in
// resource properties and in each other), and the functions it adds — Fn::Length,
// Fn::ToJsonString, Fn::FindInMap with a DefaultValue (evaluator_intrinsics.cpp asks here).
//
// A loop `Fn::ForEach::NAME: [Identifier, Collection, {OutputKey: OutputValue ...}]` repeats its
// fragment for each item of the collection (a list, or an expression that gives one: a Ref to a
// CommaDelimitedList parameter, Fn::Split, Fn::FindInMap ...; it cannot depend on a resource,
// which does not exist yet when AWS runs the transform). In the copy, `${Identifier}` and
// `&{Identifier}` (the item without its non-alphanumeric characters) are replaced in keys and
// strings, and `Ref: Identifier` becomes the item. Each OutputKey must contain one of them; two
// copies giving the same key, or a key already written beside the loop, are errors (AWS refuses
// the template).
#include "harness/cfn/evaluator_support.hpp"

#include <cctype>
#include <map>

namespace relaylab::cfn {

using namespace detail;

namespace {

constexpr std::size_t loop_items_max = 1000;  // of one collection
constexpr std::size_t generated_max = 5000;   // entries one template's loops may generate

const std::string prefix = "Fn::ForEach::";

std::string alphanumeric(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) out += c;
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto k = s.find(from); k != std::string::npos; k = s.find(from, k + to.size())) {
    s.replace(k, from.size(), to);
  }
  return s;
}

std::string substitute(const std::string& s, const std::string& id, const std::string& item) {
  return replace_all(replace_all(s, "${" + id + "}", item), "&{" + id + "}", alphanumeric(item));
}

bool mentions(const std::string& key, const std::string& id) {
  return key.find("${" + id + "}") != std::string::npos ||
         key.find("&{" + id + "}") != std::string::npos;
}

// The fragment copied for one item: ${id}, &{id} and {Ref: id} replaced everywhere.
node instantiate(const node& n, const std::string& id, const std::string& item) {
  if (n.is_mapping() && n.entries.size() == 1 && n.entries[0].key == "Ref" &&
      n.entries[0].value.is_scalar() && n.entries[0].value.value == id) {
    node out = node::scalar(item, n.where);
    out.quoted = true;
    return out;
  }
  node out = n;
  if (n.is_scalar()) out.value = substitute(n.value, id, item);
  for (auto& i : out.items) i = instantiate(i, id, item);
  for (auto& e : out.entries) {
    e.key = substitute(e.key, id, item);
    e.value = instantiate(e.value, id, item);
  }
  return out;
}

bool logical_id(const std::string& s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

bool json_number(const std::string& s) {
  if (s.empty()) return false;
  std::size_t i = s[0] == '-' ? 1 : 0;
  bool digits = false, dot = false;
  for (; i < s.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      digits = true;
    } else if (s[i] == '.' && !dot && digits) {
      dot = true;
    } else {
      return false;
    }
  }
  return digits && s.back() != '.';
}

}  // namespace

bool detail::declares_language_extensions(const node& root) {
  const node* t = root.find("Transform");
  if (!t) return false;
  if (t->is_scalar()) return t->value == "AWS::LanguageExtensions";
  for (const auto& i : t->items) {
    if (i.is_scalar() && i.value == "AWS::LanguageExtensions") return true;
  }
  return false;
}

std::string detail::to_json(const node& v) {
  if (v.is_null()) return "null";
  if (v.is_scalar()) {
    if (!v.quoted && (json_number(v.value) || v.value == "true" || v.value == "false")) {
      return v.value;
    }
    return json_string(v.value);
  }
  std::string out;
  if (v.is_sequence()) {
    for (const auto& i : v.items) out += (out.empty() ? "" : ",") + to_json(i);
    return "[" + out + "]";
  }
  for (const auto& e : v.entries) {
    out += (out.empty() ? "" : ",") + json_string(e.key) + ":" + to_json(e.value);
  }
  return "{" + out + "}";
}

std::optional<std::vector<std::string>> evaluator::loop_collection(std::size_t s, const node& c,
                                                                   const std::string& what) {
  // What the collection refers to must exist before any resource does.
  std::optional<node> v;
  if (c.is_sequence()) {
    v = c;
  } else {
    std::vector<const node*> pending{&c};
    while (!pending.empty()) {
      const node* n = pending.back();
      pending.pop_back();
      for (const auto& i : n->items) pending.push_back(&i);
      for (const auto& e : n->entries) {
        const node* res = stacks_[s].root.find("Resources");
        const bool to_resource =
            (e.key == "Ref" && e.value.is_scalar() && res && res->find(e.value.value) &&
             !(stacks_[s].root.find("Parameters") &&
               stacks_[s].root.find("Parameters")->find(e.value.value))) ||
            e.key == "Fn::GetAtt" || e.key == "Fn::ImportValue";
        if (to_resource) {
          error(e.key_where, what +
                                 "the collection cannot depend on a resource or another "
                                 "stack (" +
                                 e.key +
                                 "): AWS expands the loop before it creates anything; give a "
                                 "list or a Ref to a CommaDelimitedList parameter");
          return std::nullopt;
        }
        pending.push_back(&e.value);
      }
    }
    v = eval_in(s, c, 0);
    if (!v) return std::nullopt;
  }
  if (!v->is_sequence()) {
    error(c.where, what +
                       "the collection must be a list (or a Ref to a CommaDelimitedList "
                       "parameter), not " +
                       (v->is_mapping() ? "a mapping" : "'" + v->value + "'"));
    return std::nullopt;
  }
  if (v->items.size() > loop_items_max) {
    error(c.where, what + "more than " + std::to_string(loop_items_max) + " items");
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& i : v->items) {
    if (c.is_sequence() && !i.is_scalar()) {
      // A literal list may hold expressions: each gives one item.
      auto x = eval_in(s, i, 0);
      if (!x) return std::nullopt;
      if (x->is_scalar()) {
        out.push_back(x->value);
        continue;
      }
    }
    if (!i.is_scalar()) {
      error(i.where, what + "an item of the collection must be a string");
      return std::nullopt;
    }
    out.push_back(i.value);
  }
  return out;
}

void evaluator::expand_loops(std::size_t s, node& mapping, const std::string& section,
                             bool top_level, std::size_t depth, std::size_t& generated) {
  if (depth > eval_depth_max) {
    error(mapping.where, "Fn::ForEach loops nested deeper than " + std::to_string(eval_depth_max));
    return;
  }
  // Loops first (their fragments may hold loops of their own), then everything inside.
  std::vector<entry> out;
  std::map<std::string, position> keys;  // written beside the loops, then generated
  for (const auto& e : mapping.entries) {
    if (e.key.rfind(prefix, 0) != 0) keys.emplace(e.key, e.key_where);
  }
  for (auto& e : mapping.entries) {
    if (e.key.rfind(prefix, 0) != 0) {
      out.push_back(std::move(e));
      continue;
    }
    const std::string loop = e.key;
    const auto saved = context_;
    if (top_level) context_ = section == "Resources" ? loop : section + "." + loop;
    // Errors name the loop: as the context at the top level, else after the resource's name.
    const std::string what = top_level ? "" : loop + ": ";
    const node& v = e.value;
    if (loop.size() == prefix.size() || !logical_id(loop.substr(prefix.size()))) {
      error(e.key_where, "a loop's name (after Fn::ForEach::) must be alphanumeric");
    } else if (top_level && section == "Resources" && keys.count(loop.substr(prefix.size()))) {
      error(e.key_where, "the loop's name " + loop.substr(prefix.size()) +
                             " is also a logical ID of the template; AWS refuses it");
    } else if (!v.is_sequence() || v.items.size() != 3) {
      error(v.where,
            "Fn::ForEach takes [Identifier, Collection, {OutputKey: OutputValue}], "
            "not " +
                (v.is_sequence() ? std::to_string(v.items.size()) + " values"
                                 : std::string("a single value")));
    } else if (!v.items[0].is_scalar() || !logical_id(v.items[0].value)) {
      error(v.items[0].where, what + "the identifier must be an alphanumeric name");
    } else if (!v.items[2].is_mapping() || v.items[2].entries.empty()) {
      error(v.items[2].where, what + "the fragment must be a mapping {OutputKey: OutputValue}");
    } else if (auto items = loop_collection(s, v.items[1], what)) {
      const std::string& id = v.items[0].value;
      bool ok = true;
      for (const auto& f : v.items[2].entries) {
        if (f.key.rfind(prefix, 0) != 0 && !mentions(f.key, id)) {
          error(f.key_where, what + "the key '" + f.key + "' must contain ${" + id + "} or &{" +
                                 id + "}, or every item would give the same key");
          ok = false;
        }
      }
      node copies;
      copies.type = node::kind::mapping;
      copies.where = v.where;
      for (const auto& item : *items) {
        if (!ok) break;
        for (const auto& f : v.items[2].entries) {
          entry c{substitute(f.key, id, item), f.key_where, instantiate(f.value, id, item)};
          // An inner loop of the same name repeats for each item: only the generated keys
          // must be unique.
          copies.entries.push_back(std::move(c));
        }
      }
      // Loops inside the fragment, with this loop's identifier already replaced.
      if (ok) expand_loops(s, copies, section, false, depth + 1, generated);
      for (auto& c : copies.entries) {
        if (c.key.rfind(prefix, 0) == 0) continue;  // an inner loop that failed: reported
        if (++generated > generated_max) {
          error(e.key_where,
                what + "loops generate more than " + std::to_string(generated_max) + " keys");
          ok = false;
          break;
        }
        if (top_level && !logical_id(c.key)) {
          error(c.key_where, what + "the generated key '" + c.key +
                                 "' is not alphanumeric, as a logical ID must be (&{" + id +
                                 "} drops the other characters of an item)");
          continue;
        }
        if (auto [it, fresh] = keys.emplace(c.key, c.key_where); !fresh) {
          error(c.key_where, what + "the key '" + c.key + "' is generated twice (also at " +
                                 it->second.to_string() + ")");
          continue;
        }
        out.push_back(std::move(c));
      }
    }
    context_ = saved;
  }
  mapping.entries = std::move(out);
  // Loops nested deeper: in a resource's properties (or an output's value), at any depth.
  for (auto& e : mapping.entries) {
    const auto saved = context_;
    if (top_level) context_ = section == "Resources" ? e.key : section + "." + e.key;
    std::vector<node*> pending{&e.value};
    while (!pending.empty()) {
      node* n = pending.back();
      pending.pop_back();
      if (n->is_mapping()) {
        bool has_loop = false;
        for (const auto& x : n->entries) has_loop = has_loop || x.key.rfind(prefix, 0) == 0;
        if (has_loop) expand_loops(s, *n, section, false, depth + 1, generated);
        for (auto& x : n->entries) pending.push_back(&x.value);
      }
      for (auto& i : n->items) pending.push_back(&i);
    }
    context_ = saved;
  }
}

void evaluator::run_language_extensions(std::size_t s) {
  auto& root = stacks_[s].root;
  std::size_t generated = 0;
  for (auto& e : root.entries) {
    if (e.key != "Resources" && e.key != "Outputs" && e.key != "Conditions") continue;
    if (e.value.is_mapping()) expand_loops(s, e.value, e.key, true, 0, generated);
  }
  params_.clear();  // evaluated before the resources existed: asked again later
  conditions_.clear();
}

std::optional<node> evaluator::language_function(std::size_t s, const entry& fn, const position& at,
                                                 std::size_t depth) {
  if (!stacks_[s].language_extensions) {
    error(fn.key_where, *unsupported_key(fn.key));
    return std::nullopt;
  }
  auto v = eval_in(s, fn.value, depth + 1);
  if (!v) return std::nullopt;
  if (fn.key == "Fn::Length") {
    if (!v->is_sequence()) {
      error(fn.value.where, "Fn::Length takes a list (or a function that gives one)");
      return std::nullopt;
    }
    return node::scalar(std::to_string(v->items.size()), at);
  }
  // Fn::ToJsonString
  if (!v->is_mapping() && !v->is_sequence()) {
    error(fn.value.where, "Fn::ToJsonString takes a mapping or a list");
    return std::nullopt;
  }
  node out = node::scalar(to_json(*v), at);
  out.quoted = true;
  return out;
}

}  // namespace relaylab::cfn
