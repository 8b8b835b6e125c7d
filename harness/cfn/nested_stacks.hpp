// Nested stacks (AWS::CloudFormation::Stack): their templates read as stacks of their own
// (nested_stacks.cpp).
#pragma once

#include "harness/cfn/evaluator.hpp"

#include <string>
#include <utility>
#include <vector>

namespace relaylab::cfn {

/// Appends to `stacks` the template of every AWS::CloudFormation::Stack of them (and of those,
/// recursively), each named PARENT-LOGICALID with `parent` and `parent_resource` set. Its
/// TemplateURL is a file relative to the parent's, or a URL that `given` (--stack-template
/// URL=FILE) maps to a file. Errors, at the TemplateURL with the logical ID: a URL not given,
/// a file that cannot be read (or its syntax errors), a template that nests itself, nesting
/// deeper than 10, Parameters the child does not declare, a `given` URL no stack names.
void load_nested_stacks(std::vector<stack>& stacks, const options& opts,
                        const std::vector<std::pair<std::string, std::string>>& given,
                        std::vector<diagnostic>& errors);

}  // namespace relaylab::cfn
