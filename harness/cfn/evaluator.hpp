// CloudFormation templates evaluated together, as the stacks they become: parameters (their
// Default, then --param; SSM parameter types resolved against the AWS::SSM::Parameter resources
// of the other templates), pseudo parameters, Conditions, Mappings, Outputs with Export, and
// every intrinsic function in long form (the syntax folder has already turned short forms into
// it). Evaluation is lazy and memoised: a value is computed the first time something asks for
// it, so templates may be given in any order; a value that needs itself is a cycle, reported
// with the chain of names. The AWS::LanguageExtensions transform is run as AWS runs it
// (language_extensions.cpp); what else rewrites a template before CloudFormation evaluates it
// (other transforms, Fn::Transform, rain's directives) is an error wherever it is written, and
// so are the language extensions' functions in a template that does not declare the transform.
//
// Values are node trees too: a scalar is a string, a list a sequence. Each value keeps the
// position of the expression that produced it, so later checks (a subnet outside its VPC) point
// at the template text.
#pragma once

#include "harness/cfn/syntax/node.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace relaylab::cfn {

struct options {
  std::vector<std::pair<std::string, std::string>> params;  // --param KEY=VALUE (every stack)
  std::string region = "us-east-1";
  std::string account_id = "123456789012";
  /// --azs: what Fn::GetAZs gives for `region` (empty: known_availability_zones(region)).
  std::vector<std::string> azs;
};

/// The Availability Zones Fn::GetAZs gives in `region` for a new account (zone names and the
/// zones offered are account-dependent: availability_zones.cpp), nullopt for a region the table
/// does not know.
std::optional<std::vector<std::string>> known_availability_zones(const std::string& region);
/// An error for an --azs list that cannot be `region`'s zones (a name not "<region><letter>",
/// one given twice, none), naming the option; nullopt when it is good.
std::optional<std::string> check_azs_option(const std::vector<std::string>& azs,
                                            const std::string& region);

struct stack {
  std::string file;
  std::string name;  // AWS::StackName: the file name without its extension
  node root;
  /// Transform: AWS::LanguageExtensions (language_extensions.cpp): set by the evaluator.
  bool language_extensions = false;
  /// A nested stack (nested_stacks.hpp): the parent stack's name and its
  /// AWS::CloudFormation::Stack resource, whose Parameters give this stack's parameters and
  /// whose Fn::GetAtt Outputs.NAME are its outputs; "" for a stack given on its own.
  std::string parent{}, parent_resource{};
  position parent_where{};  // the parent's TemplateURL
};

struct resource {
  std::size_t stack = 0;
  std::string logical;
  std::string type;
  std::string id;  // physical ID: what Ref returns for most types ("subnet-<stack>-<logical>")
  const node* decl = nullptr;
  position where;  // of the logical ID
};

class evaluator;

/// What the network builder knows about Ref and Fn::GetAtt of the resources it models (an EIP's
/// Ref is its address, an instance's PrivateIp is assigned ...). nullopt = not handled here.
class attribute_source {
 public:
  virtual ~attribute_source() = default;
  virtual std::optional<node> ref(const resource& r, const position& at) = 0;
  virtual std::optional<node> attribute(const resource& r, const std::string& name,
                                        const position& at, bool& handled) = 0;
};

class evaluator {
 public:
  /// Errors found while reading the stacks' sections are appended to `errors` (so are all
  /// later evaluation errors).
  evaluator(std::vector<stack> stacks, options opts, std::vector<diagnostic>& errors);

  const std::vector<stack>& stacks() const noexcept { return stacks_; }
  const options& opts() const noexcept { return opts_; }
  /// Created resources (their Condition true), sorted by stack name, then logical ID.
  const std::vector<resource>& resources() const noexcept { return resources_; }
  const resource* find(std::size_t stack, const std::string& logical) const;
  /// The created resource whose physical ID is `id`.
  const resource* by_id(const std::string& id) const;
  void set_attributes(attribute_source* s) noexcept { attributes_ = s; }

  /// The evaluated property (nullopt when absent, AWS::NoValue, or an error was reported).
  std::optional<node> property(const resource& r, const std::string& key);
  /// Where a property is written (the resource's position when it is absent).
  position property_where(const resource& r, const std::string& key) const;
  /// An expression evaluated in a stack (errors reported; nullopt on error or NoValue).
  std::optional<node> eval(std::size_t stack, const node& expr);
  /// Evaluates everything that has not been evaluated (every property, output and condition),
  /// so that errors anywhere in the templates are reported even where nothing asked.
  void evaluate_all();

  /// Reports an error prefixed with the logical ID being evaluated.
  void error(const position& at, const std::string& message);
  /// What Fn::GetAZs gives in `region` ("" = AWS::Region): --azs for the import's region, else
  /// the table's zones; for a region it does not know, <region>a, b and c, with one warning.
  std::vector<std::string> availability_zones(const std::string& region, const position& at);
  /// Warnings of the evaluation (an assumed list of Availability Zones).
  const std::vector<diagnostic>& warnings() const noexcept { return warnings_; }
  bool failed() const noexcept { return errors_.size() != errors_before_; }

  /// Accepts "true"/"false" (any case), as CloudFormation does for Boolean properties.
  std::optional<bool> boolean(const node& v, const std::string& what);
  /// A scalar as a string, or an error naming `what`.
  std::optional<std::string> text(const node& v, const std::string& what);

 private:
  std::optional<node> eval_in(std::size_t stack, const node& expr, std::size_t depth);
  std::optional<node> intrinsic(std::size_t stack, const entry& fn, const node& whole,
                                std::size_t depth);
  std::optional<node> ref(std::size_t stack, const node& arg, const position& at);
  std::optional<node> get_att(std::size_t stack, const node& arg, const position& at,
                              std::size_t depth);
  std::optional<node> sub(std::size_t stack, const node& arg, const position& at,
                          std::size_t depth);
  std::optional<node> parameter(std::size_t stack, const std::string& name, const position& at);
  std::optional<bool> condition(std::size_t stack, const std::string& name, const position& at);
  std::optional<bool> condition_value(std::size_t stack, const node& expr, std::size_t depth);
  std::optional<node> import_value(const std::string& name, const position& at);
  std::optional<node> ssm_value(const std::string& name, const position& at);
  std::optional<node> pseudo(std::size_t stack, const std::string& name, const position& at);
  void check_cycles(std::size_t stack);
  // Nested stacks: the stack of that name; an output of a nested stack (GetAtt Outputs.NAME);
  // the parent's value of a nested stack's parameter (nullopt, with given = false, when the
  // parent gives none).
  std::optional<std::size_t> stack_named(const std::string& name) const;
  std::optional<node> nested_output(const resource& r, const std::string& output,
                                    const position& at);
  std::optional<node> parent_parameter(std::size_t stack, const std::string& name, bool& given);
  void check_unsupported(const node& n, bool language_extensions);
  // AWS::LanguageExtensions (language_extensions.cpp): Fn::ForEach expanded in place, before
  // anything else reads the stack; Fn::Length and Fn::ToJsonString.
  void run_language_extensions(std::size_t stack);
  void expand_loops(std::size_t stack, node& mapping, const std::string& section, bool top_level,
                    std::size_t depth, std::size_t& generated);
  std::optional<std::vector<std::string>> loop_collection(std::size_t stack, const node& c,
                                                          const std::string& what);
  std::optional<node> language_function(std::size_t stack, const entry& fn, const position& at,
                                        std::size_t depth);

  // A value being computed: asking for it again is a cycle.
  bool enter(const std::string& key, const position& at);
  void leave();

  std::vector<stack> stacks_;
  options opts_;
  std::vector<diagnostic>& errors_;
  std::vector<diagnostic> warnings_;
  std::set<std::string> azs_assumed_;  // regions warned about
  std::size_t errors_before_;
  attribute_source* attributes_ = nullptr;
  std::vector<resource> resources_;
  std::map<std::string, std::size_t> by_id_;
  std::set<std::pair<std::size_t, std::string>> not_created_;  // Condition false
  std::vector<bool> stack_created_;  // false: a nested stack whose Stack resource is not
  std::map<std::pair<std::size_t, std::string>, std::size_t> by_logical_;
  std::map<std::pair<std::size_t, std::string>, std::optional<node>> params_;
  std::map<std::pair<std::size_t, std::string>, std::optional<bool>> conditions_;
  std::map<std::pair<std::size_t, std::string>, std::optional<node>> props_;  // "index\nkey"
  std::vector<std::pair<std::string, position>> in_progress_;
  std::optional<std::map<std::string, std::pair<std::size_t, const node*>>> exports_;
  std::optional<std::map<std::string, std::size_t>> ssm_;  // Name → resource index
  std::string context_;                                    // logical ID being evaluated
};

/// Splits `block` into `count` blocks of `bits` host bits each (Fn::Cidr). nullopt when the
/// block is malformed or too small.
std::optional<std::vector<std::string>> cidr_split(const std::string& block, std::uint64_t count,
                                                   std::uint64_t bits);

}  // namespace relaylab::cfn
