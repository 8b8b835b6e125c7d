// The AWS::LanguageExtensions transform: Fn::ForEach in Resources, Outputs, Conditions and
// resource properties, nested loops, ${} / &{} / Ref substitution, collections from
// parameters; Fn::Length, Fn::ToJsonString, Fn::FindInMap's DefaultValue; broken loops.
#include "harness/cfn/evaluator.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace relaylab::cfn {
namespace {

struct fixture {
  std::vector<diagnostic> errors;
  std::unique_ptr<evaluator> ev;

  bool load(const std::string& text, options o = {}) {
    auto root = parse_template("Transform: AWS::LanguageExtensions\n" + text, "t.yml", errors);
    if (!root) return false;
    std::vector<stack> stacks;
    stacks.push_back({"t.yml", "t", std::move(*root)});
    ev = std::make_unique<evaluator>(std::move(stacks), std::move(o), errors);
    return errors.empty();
  }
  std::string logical_ids() const {
    std::string out;
    for (const auto& r : ev->resources()) out += (out.empty() ? "" : " ") + r.logical;
    return out;
  }
  std::string prop(const std::string& logical, const std::string& key) {
    const resource* r = ev->find(0, logical);
    if (!r) return "<no resource " + logical + ">";
    auto v = ev->property(*r, key);
    return v ? v->value : "<" + (errors.empty() ? "none" : errors.back().to_string()) + ">";
  }
  std::string eval(const std::string& expr) {
    auto doc = parse_template("X: " + expr + "\n", "expr.yml", errors);
    if (!doc) return "<syntax>";
    auto v = ev->eval(0, *doc->find("X"));
    return v ? v->value : "<" + (errors.empty() ? "none" : errors.back().to_string()) + ">";
  }
  std::string first_error() const {
    return errors.empty() ? "<no error>" : errors.front().to_string();
  }
};

TEST(cfn_language_extensions, for_each_repeats_resources_with_substitutions) {
  fixture f;
  ASSERT_TRUE(
      f.load("Parameters:\n"
             "  Zones: {Type: CommaDelimitedList, Default: 'a,b'}\n"
             "Resources:\n"
             "  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n"
             "  Fn::ForEach::Subnets:\n"
             "    - Zone\n"
             "    - !Ref Zones\n"
             "    - Subnet${Zone}:\n"
             "        Type: AWS::EC2::Subnet\n"
             "        Properties:\n"
             "          VpcId: !Ref Vpc\n"
             "          AvailabilityZone: !Sub '${AWS::Region}${Zone}'\n"
             "          Description: !Ref Zone\n"
             "  Fn::ForEach::Groups:\n"
             "    - Cidr\n"
             "    - [10.1.0.0/24, 10.2.0.0/24]\n"
             "    - Group&{Cidr}:\n"
             "        Type: AWS::EC2::SecurityGroup\n"
             "        Properties: {GroupDescription: 'from ${Cidr}', VpcId: !Ref Vpc}\n"))
      << f.first_error();
  EXPECT_EQ(f.logical_ids(), "Group1010024 Group1020024 Subneta Subnetb Vpc");
  EXPECT_EQ(f.prop("Subneta", "AvailabilityZone"), "us-east-1a");
  EXPECT_EQ(f.prop("Subnetb", "Description"), "b");
  EXPECT_EQ(f.prop("Group1020024", "GroupDescription"), "from 10.2.0.0/24");
  // Parameters give the collection: --param changes the resources.
  fixture g;
  options o;
  o.params = {{"Names", "x,y,z"}};
  ASSERT_TRUE(
      g.load("Parameters:\n  Names: {Type: CommaDelimitedList}\nResources:\n"
             "  Fn::ForEach::B: [N, !Ref Names, {'Bucket${N}': {Type: AWS::S3::Bucket}}]\n",
             o))
      << g.first_error();
  EXPECT_EQ(g.logical_ids(), "Bucketx Buckety Bucketz");
}

TEST(cfn_language_extensions, nested_loops_in_outputs_conditions_and_properties) {
  fixture f;
  ASSERT_TRUE(
      f.load("Conditions:\n"
             "  Fn::ForEach::Envs: [E, [dev, prod], {'Is${E}': !Equals [!Ref E, prod]}]\n"
             "Resources:\n"
             "  Fn::ForEach::Buckets:\n"
             "    - Id\n"
             "    - [A, B]\n"
             "    - Bucket${Id}:\n"
             "        Type: AWS::S3::Bucket\n"
             "        Properties:\n"
             "          Fn::ForEach::Props:\n"
             "            - P\n"
             "            - [One, Two]\n"
             "            - Prop${P}: !Sub '${Id}-${P}'\n"
             "Outputs:\n"
             "  Fn::ForEach::Out:\n"
             "    - Id\n"
             "    - [A, B]\n"
             "    - Fn::ForEach::Attr:\n"
             "        - Attr\n"
             "        - [Arn, DomainName]\n"
             "        - Bucket${Id}${Attr}:\n"
             "            Value: !GetAtt [!Sub 'Bucket${Id}', !Ref Attr]\n"))
      << f.first_error();
  EXPECT_EQ(f.logical_ids(), "BucketA BucketB");
  EXPECT_EQ(f.prop("BucketB", "PropTwo"), "B-Two");
  EXPECT_EQ(f.eval("!If [Isprod, yes, no]"), "yes");
  EXPECT_EQ(f.eval("!If [Isdev, yes, no]"), "no");
  const node* outs = f.ev->stacks()[0].root.find("Outputs");
  ASSERT_NE(outs, nullptr);
  ASSERT_EQ(outs->entries.size(), 4u);
  EXPECT_EQ(outs->entries[3].key, "BucketBDomainName");
  EXPECT_EQ(f.ev->eval(0, *outs->entries[3].value.find("Value"))->value,
            "bucket-t-BucketB.DomainName");
  // Positions stay those of the fragment written.
  EXPECT_EQ(outs->entries[3].key_where.to_string(), "t.yml:22:11");
}

TEST(cfn_language_extensions, length_to_json_string_and_find_in_map_default) {
  fixture f;
  ASSERT_TRUE(
      f.load("Mappings:\n  M: {a: {b: found}}\n"
             "Parameters:\n  L: {Type: CommaDelimitedList, Default: 'x,y,z'}\n"
             "Resources:\n  B: {Type: AWS::S3::Bucket}\n"))
      << f.first_error();
  EXPECT_EQ(f.eval("!Length [a, b]"), "2");
  EXPECT_EQ(f.eval("!Length {Ref: L}"), "3");
  EXPECT_EQ(f.eval("!ToJsonString {k: v, n: 1, l: [true, 'x\"y'], q: '2'}"),
            "{\"k\":\"v\",\"n\":1,\"l\":[true,\"x\\\"y\"],\"q\":\"2\"}");
  EXPECT_EQ(f.eval("!FindInMap [M, a, b, {DefaultValue: other}]"), "found");
  EXPECT_EQ(f.eval("!FindInMap [M, a, c, {DefaultValue: other}]"), "other");
  EXPECT_EQ(f.eval("!FindInMap [Nope, !Ref AWS::Region, c, {DefaultValue: !Ref AWS::Region}]"),
            "us-east-1");
  EXPECT_EQ(f.eval("!Length x"),
            "<expr.yml:1:4: error: Fn::Length takes a list (or a function that gives one)>");
  EXPECT_EQ(f.eval("!FindInMap [M, a, c, {Default: other}]"),
            "<expr.yml:1:25: error: Fn::FindInMap's fourth value is {DefaultValue: value}>");
}

TEST(cfn_language_extensions, broken_loops_name_their_place) {
  auto first = [](const std::string& resources) {
    fixture f;
    f.load("Resources:\n  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n" +
           resources);
    return f.first_error();
  };
  // Line 1 is the Transform, 2 Resources, 3 Vpc: the loop is on line 4.
  EXPECT_EQ(first("  Fn::ForEach::S: [Z, [a, b]]\n"),
            "t.yml:4:19: error: Fn::ForEach::S: Fn::ForEach takes [Identifier, Collection, "
            "{OutputKey: OutputValue}], not 2 values");
  EXPECT_EQ(first("  Fn::ForEach::S: [Z, [a, a], {'S${Z}': {Type: AWS::S3::Bucket}}]\n"),
            "t.yml:4:32: error: Fn::ForEach::S: the key 'Sa' is generated twice (also at "
            "t.yml:4:32)");
  EXPECT_EQ(first("  Fn::ForEach::S: [Z, [Vpc], {'${Z}': {Type: AWS::S3::Bucket}}]\n"),
            "t.yml:4:31: error: Fn::ForEach::S: the key 'Vpc' is generated twice (also at "
            "t.yml:3:3)");
  EXPECT_EQ(first("  Fn::ForEach::S: [Z, [a, b], {S: {Type: AWS::S3::Bucket}}]\n"),
            "t.yml:4:32: error: Fn::ForEach::S: the key 'S' must contain ${Z} or &{Z}, or every "
            "item would give the same key");
  EXPECT_EQ(first("  Fn::ForEach::S: [Z, [a-b], {'S${Z}': {Type: AWS::S3::Bucket}}]\n"),
            "t.yml:4:31: error: Fn::ForEach::S: the generated key 'Sa-b' is not alphanumeric, as "
            "a logical ID must be (&{Z} drops the other characters of an item)");
  EXPECT_EQ(first("  Fn::ForEach::S: [Z, !GetAtt Vpc.CidrBlock, {'S${Z}': {Type: "
                  "AWS::S3::Bucket}}]\n"),
            "t.yml:4:23: error: Fn::ForEach::S: the collection cannot depend on a resource or "
            "another stack (Fn::GetAtt): AWS expands the loop before it creates anything; give a "
            "list or a Ref to a CommaDelimitedList parameter");
  EXPECT_EQ(first("  Fn::ForEach::Vpc: [Z, [a], {'S${Z}': {Type: AWS::S3::Bucket}}]\n"),
            "t.yml:4:3: error: Fn::ForEach::Vpc: the loop's name Vpc is also a logical ID of the "
            "template; AWS refuses it");
  // In properties: the resource is named, then the loop.
  EXPECT_EQ(first("  B:\n    Type: AWS::S3::Bucket\n    Properties:\n"
                  "      Fn::ForEach::P: [X, [a], {}]\n"),
            "t.yml:7:32: error: B: Fn::ForEach::P: the fragment must be a mapping {OutputKey: "
            "OutputValue}");
  // Outside the sections that take loops.
  fixture m;
  m.load(
      "Mappings:\n  Fn::ForEach::M: [X, [a], {'M${X}': {k: v}}]\nResources:\n"
      "  B: {Type: AWS::S3::Bucket}\n");
  EXPECT_EQ(m.first_error(),
            "t.yml:3:3: error: Mappings: Fn::ForEach can be used in Resources, Outputs and "
            "Conditions only");
}

}  // namespace
}  // namespace relaylab::cfn
