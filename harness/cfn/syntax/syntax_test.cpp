// The syntax adapter: YAML (short-form tags into long form) and JSON into one tree, with
// file:line:column positions.
#include "harness/cfn/syntax/node.hpp"

#include <gtest/gtest.h>

namespace relaylab::cfn {
namespace {

node parse_ok(const std::string& text) {
  std::vector<diagnostic> errors;
  auto n = parse_template(text, "t.yml", errors);
  EXPECT_TRUE(n) << (errors.empty() ? "" : errors[0].to_string());
  return n ? *n : node{};
}

std::string first_error(const std::string& text, const std::string& file = "t.yml") {
  std::vector<diagnostic> errors;
  EXPECT_FALSE(parse_template(text, file, errors));
  return errors.empty() ? "" : errors[0].to_string();
}

TEST(cfn_syntax, yaml_short_forms_become_long_forms) {
  const auto n = parse_ok(
      "A: !Ref Foo\n"
      "B: !GetAtt Server.PrivateIp\n"
      "C: !Sub '${AWS::Region}-x'\n"
      "D: !If [Cond, !Ref X, !Ref AWS::NoValue]\n"
      "E: !Condition IsProd\n"
      "F: !GetAtt [Db, Endpoint.Address]\n");
  const node* a = n.find("A");
  ASSERT_TRUE(a && a->is_mapping());
  EXPECT_EQ(a->entries[0].key, "Ref");
  EXPECT_EQ(a->entries[0].value.value, "Foo");
  EXPECT_EQ(a->where.to_string(), "t.yml:1:4");
  const node* b = n.find("B")->find("Fn::GetAtt");
  ASSERT_TRUE(b && b->is_sequence());
  EXPECT_EQ(b->items[0].value, "Server");
  EXPECT_EQ(b->items[1].value, "PrivateIp");
  EXPECT_EQ(b->items[1].where.to_string(), "t.yml:2:19");
  EXPECT_EQ(n.find("C")->find("Fn::Sub")->value, "${AWS::Region}-x");
  const node* d = n.find("D")->find("Fn::If");
  ASSERT_TRUE(d && d->items.size() == 3);
  EXPECT_EQ(d->items[2].find("Ref")->value, "AWS::NoValue");
  EXPECT_EQ(n.find("E")->find("Condition")->value, "IsProd");
  EXPECT_EQ(n.find("F")->find("Fn::GetAtt")->items[1].value, "Endpoint.Address");
}

TEST(cfn_syntax, unknown_tags_become_fn_names_for_the_evaluator) {
  const auto n = parse_ok("A: !Bogus x\n");
  EXPECT_EQ(n.find("A")->entries[0].key, "Fn::Bogus");
}

TEST(cfn_syntax, json_positions_of_keys_and_values) {
  std::vector<diagnostic> errors;
  const std::string text =
      "{\n"
      "  \"Resources\": {\n"
      "    \"A\": {\"Type\": \"AWS::EC2::VPC\", \"N\": 16, \"B\": true, \"Z\": null,\n"
      "          \"S\": \"q\\\"uote\", \"L\": [1, \"two\"]}\n"
      "  }\n"
      "}\n";
  const auto n = parse_template(text, "t.json", errors);
  ASSERT_TRUE(n) << errors[0].to_string();
  const node* a = n->find("Resources")->find("A");
  ASSERT_TRUE(a);
  EXPECT_EQ(n->find("Resources")->find_entry("A")->key_where.to_string(), "t.json:3:5");
  EXPECT_EQ(a->where.to_string(), "t.json:3:10");
  EXPECT_EQ(a->find("Type")->where.to_string(), "t.json:3:19");
  EXPECT_EQ(a->find("N")->value, "16");
  EXPECT_EQ(a->find("N")->where.to_string(), "t.json:3:41");
  EXPECT_EQ(a->find("B")->value, "true");
  EXPECT_EQ(a->find("B")->where.to_string(), "t.json:3:50");
  EXPECT_TRUE(a->find("Z")->is_null());
  EXPECT_EQ(a->find("S")->value, "q\"uote");
  EXPECT_EQ(a->find("S")->where.to_string(), "t.json:4:16");
  EXPECT_EQ(a->find("L")->items[1].where.to_string(), "t.json:4:36");
}

TEST(cfn_syntax, errors_name_line_and_column) {
  EXPECT_EQ(first_error("A: [1, 2\nB: 3\n").substr(0, 9), "t.yml:2:2");
  EXPECT_EQ(first_error("{\n  \"A\": x\n}\n", "t.json").substr(0, 11), "t.json:2:8:");
  EXPECT_EQ(first_error("A: 1\nA: 2\n"), "t.yml:2:1: error: duplicate key 'A'");
  EXPECT_EQ(first_error("{\"A\": 1,\n \"A\": 2}\n", "t.json"),
            "t.json:2:2: error: duplicate key 'A'");
  EXPECT_NE(first_error("- a\n- b\n").find("a template is a mapping"), std::string::npos);
  std::string deep = "A: ";
  for (int i = 0; i < 150; ++i) deep += "[";
  EXPECT_NE(first_error(deep + "\n").find("t.yml:"), std::string::npos);
}

TEST(cfn_syntax, unreadable_file) {
  std::vector<diagnostic> errors;
  EXPECT_FALSE(read_template("/nonexistent/t.yml", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string().rfind("/nonexistent/t.yml:1:1: error: cannot read", 0), 0u);
}

}  // namespace
}  // namespace relaylab::cfn
