// A CloudFormation template as one tree, whatever it was written in (YAML or JSON), with the
// file:line:column of every value. yaml-cpp and nlohmann/json stay inside this folder
// (yaml.cpp, json.cpp): nothing here mentions them.
//
// YAML's short-form tags are turned into the long form as CloudFormation does: `!Ref X` is
// {Ref: X}, `!GetAtt A.B` is {Fn::GetAtt: [A, B]}, `!Sub ...` is {Fn::Sub: ...}, `!Condition
// C` is {Condition: C}, and any other `!Name v` is {Fn::Name: v} (an unknown one is the
// evaluator's error, at the tag).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::cfn {

/// file:line:column, 1-based; columns count UTF-8 characters.
struct position {
  std::string file;
  std::size_t line = 0;
  std::size_t column = 0;
  std::string to_string() const;
};

struct diagnostic {
  position where;
  std::string message;
  std::string to_string() const;  // "file:line:column: error: message"
};

struct entry;

struct node {
  enum class kind { null, scalar, sequence, mapping };
  kind type = kind::null;
  std::string value;  // scalar text (numbers and booleans as written)
  /// A quoted YAML scalar or a JSON string (`"true"` stays a string).
  bool quoted = false;
  std::vector<node> items;     // sequence
  std::vector<entry> entries;  // mapping, in file order
  position where;

  bool is_scalar() const noexcept { return type == kind::scalar; }
  bool is_sequence() const noexcept { return type == kind::sequence; }
  bool is_mapping() const noexcept { return type == kind::mapping; }
  bool is_null() const noexcept { return type == kind::null; }
  /// The value of `key` in a mapping; nullptr when absent or not a mapping.
  const node* find(std::string_view key) const;
  const entry* find_entry(std::string_view key) const;

  static node scalar(std::string v, position at);
  static node sequence(std::vector<node> v, position at);
};

struct entry {
  std::string key;
  position key_where;
  node value;
};

inline constexpr std::size_t template_bytes_max = 1 << 20;  // CloudFormation's own limit
inline constexpr std::size_t nesting_max = 100;

/// Reads a template file: JSON when its first non-blank character is '{', YAML otherwise
/// (CloudFormation decides the same way). Errors (appended; nullopt returned): unreadable or
/// too large file, syntax errors at their line:column, duplicate mapping keys, nesting deeper
/// than nesting_max, a short-form tag on a value it cannot take.
std::optional<node> read_template(const std::string& path, std::vector<diagnostic>& errors);
/// As read_template(), from text; `file` names it in positions.
std::optional<node> parse_template(std::string_view text, const std::string& file,
                                   std::vector<diagnostic>& errors);

namespace detail {
std::optional<node> parse_yaml(std::string_view text, const std::string& file,
                               std::vector<diagnostic>& errors);
std::optional<node> parse_json(std::string_view text, const std::string& file,
                               std::vector<diagnostic>& errors);
/// 1-based line:column of byte `offset` in `text` (columns in UTF-8 characters).
position at_offset(std::string_view text, std::size_t offset, const std::string& file);
}  // namespace detail

}  // namespace relaylab::cfn
