// Nested stacks: templates read relative to their parent or given with --stack-template,
// parameters passed in, Fn::GetAtt CHILD.Outputs.NAME, names that do not collide, and the
// errors (a file missing, a remote URL not given, an undeclared parameter, a stack nesting
// itself).
#include "harness/cfn/cfn.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace relaylab::cfn {
namespace {

const std::string dir = std::string(RELAYLAB_SOURCE_DIR) + "/testdata/cfn/nested/";

std::string first(const std::vector<diagnostic>& errors) {
  return errors.empty() ? "<no error>" : errors.front().to_string();
}

// A scratch directory of templates for the broken cases.
struct scratch {
  std::filesystem::path root;
  explicit scratch(const std::string& name)
      : root(std::filesystem::temp_directory_path() / ("relaylab-nested-" + name)) {
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(root);
  }
  ~scratch() { std::filesystem::remove_all(root); }
  std::string write(const std::string& file, const std::string& text) const {
    const auto p = (root / file).string();
    std::ofstream(p) << text;
    return p;
  }
};

TEST(cfn_nested_stacks, children_get_parameters_and_give_outputs) {
  std::vector<diagnostic> errors;
  const auto r = import_templates({dir + "mail-stack.yml"}, {}, errors);
  ASSERT_TRUE(r) << first(errors);
  ASSERT_EQ(r->network.vpcs.size(), 1u);
  const auto& v = r->network.vpcs[0];
  // The child's AWS::StackName is PARENT-LOGICALID; its parameters came from the parent.
  EXPECT_EQ(v.name, "mail-stack-Network-vpc");
  EXPECT_EQ(v.cidr, "10.50.0.0/16");
  ASSERT_EQ(r->network.hosts.size(), 1u);
  const auto& h = r->network.hosts[0];
  EXPECT_EQ(h.name, "Relay");
  EXPECT_EQ(h.subnet, "Public");
  EXPECT_EQ(h.ipv4, "10.50.0.4");
  ASSERT_EQ(v.security_groups.size(), 1u);
  const auto& g = v.security_groups[0];
  EXPECT_EQ(g.name, "Group");
  ASSERT_EQ(g.ingress.size(), 1u);
  EXPECT_EQ(g.ingress[0].cidr, "10.50.0.0/16");  // GetAtt Network.Outputs.VpcCidr
  EXPECT_TRUE(r->warnings.empty()) << r->warnings[0].to_string();
  // Where each came from: the child's file.
  const origin* o = r->find("host", "Relay");
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(o->stack, "mail-stack-Relay");
  EXPECT_EQ(o->where.file, dir + "relay.yml");
}

TEST(cfn_nested_stacks, one_template_nested_twice_gets_qualified_names) {
  scratch s("twice");
  const auto parent = s.write("parent.yml",
                              "Resources:\n"
                              "  Vpc: {Type: AWS::EC2::VPC, Properties: {CidrBlock: 10.0.0.0/16}}\n"
                              "  Subnet:\n"
                              "    Type: AWS::EC2::Subnet\n"
                              "    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.0.0/24}\n"
                              "  A:\n"
                              "    Type: AWS::CloudFormation::Stack\n"
                              "    Properties:\n"
                              "      TemplateURL: https://example.com/host.yml\n"
                              "      Parameters: {SubnetId: !Ref Subnet}\n"
                              "  B:\n"
                              "    Type: AWS::CloudFormation::Stack\n"
                              "    Properties:\n"
                              "      TemplateURL: https://example.com/host.yml\n"
                              "      Parameters: {SubnetId: !Ref Subnet}\n");
  const auto child = s.write("host.yml",
                             "Parameters:\n  SubnetId: {Type: String}\n"
                             "Resources:\n"
                             "  Host:\n"
                             "    Type: AWS::EC2::Instance\n"
                             "    Properties: {SubnetId: !Ref SubnetId}\n");
  import_options o;
  o.stack_templates = {{"https://example.com/host.yml", child}};
  o.ips = {{"parent-A.Host", "10.0.0.10"}};
  std::vector<diagnostic> errors;
  const auto r = import_templates({parent}, o, errors);
  ASSERT_TRUE(r) << first(errors);
  ASSERT_EQ(r->network.hosts.size(), 2u);
  EXPECT_EQ(r->network.hosts[0].name, "parent-A.Host");
  EXPECT_EQ(r->network.hosts[0].ipv4, "10.0.0.10");
  EXPECT_EQ(r->network.hosts[1].name, "parent-B.Host");
  EXPECT_EQ(r->network.hosts[1].ipv4, "10.0.0.4");
}

TEST(cfn_nested_stacks, errors_name_the_template_url) {
  scratch s("errors");
  // A file that is not there.
  std::vector<diagnostic> errors;
  const auto missing = s.write("missing.yml",
                               "Resources:\n  C:\n    Type: AWS::CloudFormation::Stack\n"
                               "    Properties: {TemplateURL: child/none.yml}\n");
  EXPECT_FALSE(import_templates({missing}, {}, errors));
  EXPECT_EQ(first(errors), missing + ":4:31: error: C: the nested stack's template " +
                               (s.root / "child/none.yml").string() +
                               " (TemplateURL 'child/none.yml', relative to the parent "
                               "template) is not a file that can be read");
  // A URL, from Fn::Sub, without --stack-template.
  errors.clear();
  const auto remote = s.write("remote.yml",
                              "Parameters:\n  Bucket: {Type: String, Default: my-bucket}\n"
                              "Resources:\n  C:\n    Type: AWS::CloudFormation::Stack\n"
                              "    Properties:\n"
                              "      TemplateURL: !Sub https://${Bucket}.s3.amazonaws.com/c.yml\n");
  EXPECT_FALSE(import_templates({remote}, {}, errors));
  EXPECT_EQ(first(errors),
            remote +
                ":7:20: error: C: the nested stack's template is at "
                "'https://my-bucket.s3.amazonaws.com/c.yml', which relaylab import does not "
                "fetch: give it as a file with --stack-template "
                "https://my-bucket.s3.amazonaws.com/c.yml=FILE (the template before `aws "
                "cloudformation package` uploaded it, or a copy: aws s3 cp)");
  // A parameter the child does not declare; one it needs and does not get.
  errors.clear();
  s.write("child.yml",
          "Parameters:\n  Need: {Type: String}\n"
          "Resources:\n  B: {Type: AWS::S3::Bucket, Properties: {BucketName: !Ref Need}}\n");
  const auto undeclared =
      s.write("undeclared.yml",
              "Resources:\n  C:\n    Type: AWS::CloudFormation::Stack\n"
              "    Properties: {TemplateURL: child.yml, Parameters: {Other: x}}\n");
  EXPECT_FALSE(import_templates({undeclared}, {}, errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].to_string(), undeclared +
                                       ":4:55: error: C: Parameters: the nested stack's "
                                       "template " +
                                       (s.root / "child.yml").string() +
                                       " has no parameter 'Other'");
  errors.clear();
  const auto unset = s.write("unset.yml",
                             "Resources:\n  C:\n    Type: AWS::CloudFormation::Stack\n"
                             "    Properties: {TemplateURL: child.yml}\n");
  EXPECT_FALSE(import_templates({unset}, {}, errors));
  EXPECT_EQ(first(errors), (s.root / "child.yml").string() +
                               ":2:3: error: B: parameter 'Need' (String) of " +
                               (s.root / "child.yml").string() +
                               " has no Default, and the parent's C (unset) gives it no value in "
                               "its Parameters");
  // An output the child does not have.
  errors.clear();
  const auto no_output =
      s.write("no-output.yml",
              "Resources:\n  C:\n    Type: AWS::CloudFormation::Stack\n"
              "    Properties: {TemplateURL: child.yml, Parameters: {Need: x}}\n"
              "  D: {Type: AWS::S3::Bucket, Properties: {BucketName: !GetAtt C.Outputs.Nope}}\n");
  EXPECT_FALSE(import_templates({no_output}, {}, errors));
  EXPECT_EQ(first(errors), no_output +
                               ":5:55: error: D: Fn::GetAtt C.Outputs.Nope: the nested "
                               "stack's template " +
                               (s.root / "child.yml").string() + " has no output 'Nope'");
  // A template that nests itself.
  errors.clear();
  const auto self = s.write("self.yml",
                            "Resources:\n  C:\n    Type: AWS::CloudFormation::Stack\n"
                            "    Properties: {TemplateURL: ./self.yml}\n");
  EXPECT_FALSE(import_templates({self}, {}, errors));
  EXPECT_NE(
      first(errors).find(":4:31: error: C: the nested stack's template " +
                         (s.root / "self.yml").string() + " is this template or one that nests it"),
      std::string::npos)
      << first(errors);
  // A --stack-template that nothing uses.
  errors.clear();
  import_options o;
  o.stack_templates = {{"https://example.com/x.yml", "x.yml"}};
  EXPECT_FALSE(import_templates({dir + "mail-stack.yml"}, o, errors));
  EXPECT_EQ(first(errors),
            "--stack-template:0:0: error: https://example.com/x.yml=x.yml: no "
            "AWS::CloudFormation::Stack has that TemplateURL");
}

}  // namespace
}  // namespace relaylab::cfn
