// YAML templates through yaml-cpp (the only file that includes it). yaml-cpp keeps the
// short-form tags (`!Ref`, `!Sub` ...), which become CloudFormation's long form here.
#include "harness/cfn/syntax/node.hpp"

#include <yaml-cpp/yaml.h>

#include <set>

namespace relaylab::cfn::detail {

namespace {

struct converter {
  const std::string& file;
  std::vector<diagnostic>& errors;

  position at(const YAML::Mark& m) const {
    // yaml-cpp counts lines and columns from 0.
    return {file, static_cast<std::size_t>(std::max(0, m.line)) + 1,
            static_cast<std::size_t>(std::max(0, m.column)) + 1};
  }

  bool convert(const YAML::Node& y, node& out, std::size_t depth) {
    if (depth > nesting_max) {
      errors.push_back(
          {at(y.Mark()), "nested deeper than " + std::to_string(nesting_max) + " levels"});
      return false;
    }
    out.where = at(y.Mark());
    switch (y.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out.type = node::kind::null;
        break;
      case YAML::NodeType::Scalar:
        out.type = node::kind::scalar;
        out.value = y.Scalar();
        out.quoted = y.Tag() == "!";
        break;
      case YAML::NodeType::Sequence:
        out.type = node::kind::sequence;
        for (const auto& item : y) {
          out.items.emplace_back();
          if (!convert(item, out.items.back(), depth + 1)) return false;
        }
        break;
      case YAML::NodeType::Map: {
        out.type = node::kind::mapping;
        std::set<std::string> keys;
        for (const auto& kv : y) {
          entry e;
          e.key_where = at(kv.first.Mark());
          if (!kv.first.IsScalar()) {
            errors.push_back({e.key_where, "a mapping key must be a plain string"});
            return false;
          }
          e.key = kv.first.Scalar();
          if (!keys.insert(e.key).second) {
            errors.push_back({e.key_where, "duplicate key '" + e.key + "'"});
            return false;
          }
          if (!convert(kv.second, e.value, depth + 1)) return false;
          out.entries.push_back(std::move(e));
        }
        break;
      }
    }
    return short_form(y.Tag(), out);
  }

  // `!Name value` → {Fn::Name: value} (Ref and Condition keep their names).
  bool short_form(const std::string& tag, node& n) {
    if (tag.size() < 2 || tag[0] != '!' || tag[1] == '!') return true;
    const std::string name = tag.substr(1);
    node inner = std::move(n);
    node wrapped;
    wrapped.type = node::kind::mapping;
    wrapped.where = inner.where;
    if (name == "GetAtt" && inner.is_scalar()) {
      // !GetAtt Logical.Attribute (the attribute may itself contain dots).
      const auto dot = inner.value.find('.');
      if (dot == std::string::npos || dot == 0 || dot + 1 == inner.value.size()) {
        errors.push_back(
            {inner.where, "!GetAtt expects LogicalId.Attribute, got '" + inner.value + "'"});
        return false;
      }
      // The mark is the tag's; the text follows it after one space.
      auto start = inner.where;
      start.column += tag.size() + 1;
      auto attr = start;
      attr.column += dot + 1;
      inner = node::sequence({node::scalar(inner.value.substr(0, dot), start),
                              node::scalar(inner.value.substr(dot + 1), attr)},
                             inner.where);
    }
    const bool plain = name == "Ref" || name == "Condition";
    wrapped.entries.push_back({plain ? name : "Fn::" + name, inner.where, std::move(inner)});
    n = std::move(wrapped);
    return true;
  }
};

}  // namespace

std::optional<node> parse_yaml(std::string_view text, const std::string& file,
                               std::vector<diagnostic>& errors) {
  converter c{file, errors};
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    errors.push_back({c.at(e.mark), "YAML syntax: " + e.msg});
    return std::nullopt;
  }
  node out;
  try {
    if (!c.convert(root, out, 0)) return std::nullopt;
  } catch (const YAML::Exception& e) {
    errors.push_back({c.at(e.mark), "YAML: " + e.msg});
    return std::nullopt;
  }
  if (!out.is_mapping()) {
    errors.push_back({out.where.line ? out.where : position{file, 1, 1},
                      "a template is a mapping (AWSTemplateFormatVersion, Parameters, "
                      "Resources ...)"});
    return std::nullopt;
  }
  return out;
}

}  // namespace relaylab::cfn::detail
