// Internal to harness/cfn: helpers the evaluator's files share (evaluator.cpp: stacks and
// resources; evaluator_intrinsics.cpp: Ref, Fn::* and pseudo parameters;
// evaluator_parameters.cpp: parameters and conditions; evaluator_external.cpp: exports and SSM
// parameters).
#pragma once

#include "harness/cfn/evaluator.hpp"

#include <cctype>
#include <optional>
#include <string>
#include <vector>

namespace relaylab::cfn::detail {

inline constexpr std::size_t eval_depth_max = 100;

inline node no_value(const position& at) {
  node n;
  n.value = "AWS::NoValue";
  n.where = at;
  return n;
}
inline bool is_no_value(const node& n) { return n.is_null() && n.value == "AWS::NoValue"; }

inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

inline std::vector<std::string> split(const std::string& s, const std::string& delim) {
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

inline std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

/// What is wrong with a key that names a function or directive the evaluator does not run
/// (Fn::Transform, the AWS::LanguageExtensions functions, rain's directives); nullopt for any
/// other key. Such a key is an error wherever it is written.
std::optional<std::string> unsupported_key(const std::string& key);
/// "WHAT needs the AWS::LanguageExtensions transform (Transform: AWS::LanguageExtensions) ..."
std::string needs_language_extensions(const std::string& what);
/// Transform: AWS::LanguageExtensions, alone or in the list form.
bool declares_language_extensions(const node& root);
/// A value as Fn::ToJsonString writes it: compact JSON, numbers and booleans as written.
std::string to_json(const node& v);

inline node list_of(const std::vector<std::string>& items, const position& at) {
  std::vector<node> v;
  for (const auto& s : items) v.push_back(node::scalar(s, at));
  return node::sequence(std::move(v), at);
}

}  // namespace relaylab::cfn::detail
