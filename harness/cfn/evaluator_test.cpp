// The evaluator: every intrinsic function, parameters (Default, --param, SSM types across
// stacks), conditions, exports, pseudo parameters, cycles.
#include "harness/cfn/evaluator.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace relaylab::cfn {
namespace {

struct stacks_fixture {
  std::vector<diagnostic> errors;
  std::unique_ptr<evaluator> ev;

  // `files`: (file name, YAML or JSON text); the stack name is the file name's stem.
  bool load(const std::vector<std::pair<std::string, std::string>>& files, options o = {}) {
    std::vector<stack> stacks;
    for (const auto& [file, text] : files) {
      auto root = parse_template(text, file, errors);
      if (!root) return false;
      stacks.push_back({file, file.substr(0, file.find('.')), std::move(*root)});
    }
    ev = std::make_unique<evaluator>(std::move(stacks), std::move(o), errors);
    return errors.empty();
  }
  std::size_t index(const std::string& name) const {
    for (std::size_t i = 0; i < ev->stacks().size(); ++i) {
      if (ev->stacks()[i].name == name) return i;
    }
    return 0;
  }
  // Evaluates a YAML expression in stack `name`.
  std::optional<node> eval(const std::string& name, const std::string& expr) {
    auto doc = parse_template("X: " + expr + "\n", "expr.yml", errors);
    if (!doc) return std::nullopt;
    const node x = *doc->find("X");
    return ev->eval(index(name), x);
  }
  std::string text(const std::string& name, const std::string& expr) {
    auto v = eval(name, expr);
    if (!v)
      return "<" + (errors.empty() ? std::string("no value") : errors.back().to_string()) + ">";
    if (v->is_sequence()) {
      std::string out = "[";
      for (const auto& i : v->items) out += (out.size() > 1 ? "," : "") + i.value;
      return out + "]";
    }
    return v->value;
  }
};

const std::string base =
    "Parameters:\n"
    "  Env:\n"
    "    Type: String\n"
    "    Default: dev\n"
    "    AllowedValues: [dev, prod]\n"
    "  Cidrs:\n"
    "    Type: CommaDelimitedList\n"
    "    Default: 10.0.0.0/24, 10.0.1.0/24\n"
    "Mappings:\n"
    "  Sizes:\n"
    "    dev: {Instance: t3.micro}\n"
    "Conditions:\n"
    "  IsProd: !Equals [!Ref Env, prod]\n"
    "  IsDev: !Not [!Condition IsProd]\n"
    "  Both: !And [!Condition IsDev, !Equals [a, a]]\n"
    "  Either: !Or [!Condition IsProd, !Equals [!Ref AWS::Region, eu-west-1]]\n"
    "Resources:\n"
    "  Param:\n"
    "    Type: AWS::SSM::Parameter\n"
    "    Properties: {Name: /x/name, Type: String, Value: !Sub '${Env}-value'}\n"
    "  Bucket:\n"
    "    Type: AWS::S3::Bucket\n"
    "  OnlyProd:\n"
    "    Type: AWS::S3::Bucket\n"
    "    Condition: IsProd\n"
    "Outputs:\n"
    "  Out:\n"
    "    Value: !Sub '${AWS::StackName}-exported'\n"
    "    Export: {Name: !Sub '${AWS::StackName}-Out'}\n";

TEST(cfn_evaluator, ref_parameters_pseudo_and_resources) {
  stacks_fixture f;
  ASSERT_TRUE(f.load({{"app.yml", base}}));
  EXPECT_EQ(f.text("app", "!Ref Env"), "dev");
  EXPECT_EQ(f.text("app", "!Ref Cidrs"), "[10.0.0.0/24,10.0.1.0/24]");
  EXPECT_EQ(f.text("app", "!Ref AWS::Region"), "us-east-1");
  EXPECT_EQ(f.text("app", "!Ref AWS::AccountId"), "123456789012");
  EXPECT_EQ(f.text("app", "!Ref AWS::StackName"), "app");
  EXPECT_EQ(f.text("app", "!Ref AWS::Partition"), "aws");
  EXPECT_EQ(f.text("app", "!Ref AWS::URLSuffix"), "amazonaws.com");
  EXPECT_EQ(f.text("app", "!Ref Bucket"), "bucket-app-Bucket");
  EXPECT_EQ(f.text("app", "!Ref Param"), "/x/name");  // an SSM parameter's Ref is its Name
  EXPECT_EQ(f.text("app", "[a, !Ref AWS::NoValue, b]"), "[a,b]");
  EXPECT_EQ(f.text("app", "{Ref: Env}"), "dev");  // long form
}

// A resource whose Ref is an ARN gets one, so that Fn::Split and Fn::Select take it apart as
// templates do (the certificate ID after the '/').
TEST(cfn_evaluator, ref_of_arn_types_is_an_arn) {
  stacks_fixture f;
  options o;
  o.region = "eu-west-1";
  ASSERT_TRUE(f.load({{"a.yml",
                       "Resources:\n  Cert: {Type: AWS::CertificateManager::Certificate}\n"
                       "  Topic: {Type: AWS::SNS::Topic}\n"}},
                     o));
  EXPECT_EQ(f.text("a", "!Ref Cert"), "arn:aws:acm:eu-west-1:123456789012:certificate/a-Cert");
  EXPECT_EQ(f.text("a", "!Select [1, !Split [/, !Ref Cert]]"), "a-Cert");
  EXPECT_EQ(f.text("a", "!Ref Topic"), "arn:aws:sns:eu-west-1:123456789012:a-Topic");
}

TEST(cfn_evaluator, params_and_region_from_options) {
  stacks_fixture f;
  options o;
  o.params = {{"Env", "prod"}};
  o.region = "cn-north-1";
  ASSERT_TRUE(f.load({{"app.yml", base}}, o));
  EXPECT_EQ(f.text("app", "!Ref Env"), "prod");
  EXPECT_EQ(f.text("app", "!Ref AWS::Partition"), "aws-cn");
  EXPECT_EQ(f.text("app", "!Ref AWS::URLSuffix"), "amazonaws.com.cn");
  EXPECT_EQ(f.text("app", "!Ref OnlyProd"), "bucket-app-OnlyProd");  // created: IsProd
}

TEST(cfn_evaluator, param_not_allowed_or_missing) {
  stacks_fixture f;
  options o;
  o.params = {{"Env", "staging"}};
  // The conditions ask for Env while the stacks are read.
  EXPECT_FALSE(f.load({{"app.yml", base}}, o));
  ASSERT_FALSE(f.errors.empty());
  EXPECT_EQ(f.errors[0].to_string(),
            "app.yml:3:5: error: OnlyProd: parameter 'Env': 'staging' (--param Env=staging) is "
            "not one of its AllowedValues: dev, prod");
  stacks_fixture g;
  g.load({{"k.yml",
           "Parameters:\n  KeyName: {Type: 'AWS::EC2::KeyPair::KeyName'}\n"
           "Resources:\n  B: {Type: 'AWS::S3::Bucket'}\n"}});
  EXPECT_EQ(g.text("k", "!Ref KeyName"),
            "<k.yml:2:3: error: parameter 'KeyName' (AWS::EC2::KeyPair::KeyName) of k.yml has "
            "no Default; give --param KeyName=VALUE>");
}

TEST(cfn_evaluator, sub_in_string_and_list_forms) {
  stacks_fixture f;
  ASSERT_TRUE(f.load({{"app.yml", base}}));
  EXPECT_EQ(f.text("app", "!Sub '${Env}-${AWS::Region}-${!Literal}'"), "dev-us-east-1-${Literal}");
  EXPECT_EQ(f.text("app", "!Sub ['${A}/${Env}', {A: !Select [1, !Ref Cidrs]}]"), "10.0.1.0/24/dev");
  EXPECT_EQ(f.text("app", "!Sub '${Param.Value}'"), "dev-value");  // ${Res.Attr} is GetAtt
  EXPECT_EQ(f.text("app", "{'Fn::Sub': 'x${Env}'}"), "xdev");
}

TEST(cfn_evaluator, getatt_join_select_split) {
  stacks_fixture f;
  ASSERT_TRUE(f.load({{"app.yml", base}}));
  EXPECT_EQ(f.text("app", "!GetAtt Param.Value"), "dev-value");
  EXPECT_EQ(f.text("app", "!GetAtt [Param, Type]"), "String");
  EXPECT_EQ(f.text("app", "!GetAtt Bucket.Arn"), "bucket-app-Bucket.Arn");
  EXPECT_EQ(f.text("app", "!Join ['-', [a, !Ref Env, c]]"), "a-dev-c");
  EXPECT_EQ(f.text("app", "!Join [',', !Ref Cidrs]"), "10.0.0.0/24,10.0.1.0/24");
  EXPECT_EQ(f.text("app", "!Select ['1', [a, b, c]]"), "b");
  EXPECT_EQ(f.text("app", "!Split [',', 'a,b,,c']"), "[a,b,,c]");
  EXPECT_EQ(f.text("app", "!Select [3, [a, b]]").find("is outside the list of 2 values") !=
                std::string::npos,
            true);
}

// Attributes that CloudFormation returns as lists stay lists on resources outside the network
// model (aws-cloudformation-templates' DirectoryService outputs select a directory's DNS servers).
TEST(cfn_evaluator, getatt_list_attributes_outside_the_model) {
  stacks_fixture f;
  ASSERT_TRUE(f.load({{"d.yml",
                       "Resources:\n  Dir: {Type: AWS::DirectoryService::SimpleAD}\n"
                       "  Zone: {Type: AWS::Route53::HostedZone}\n"}}));
  EXPECT_EQ(f.text("d", "!Select [1, !GetAtt Dir.DnsIpAddresses]"),
            "simplead-d-Dir.DnsIpAddresses.1");
  EXPECT_EQ(f.text("d", "!Join [',', !GetAtt Zone.NameServers]"),
            "hostedzone-d-Zone.NameServers.0,hostedzone-d-Zone.NameServers.1,"
            "hostedzone-d-Zone.NameServers.2,hostedzone-d-Zone.NameServers.3");
  EXPECT_EQ(f.text("d", "!GetAtt Dir.Alias"), "simplead-d-Dir.Alias");
  EXPECT_NE(f.text("d", "!Select [2, !GetAtt Dir.DnsIpAddresses]").find("outside the list of 2"),
            std::string::npos);
}

TEST(cfn_evaluator, conditions_if_equals_and_or_not) {
  stacks_fixture f;
  ASSERT_TRUE(f.load({{"app.yml", base}}));
  EXPECT_EQ(f.text("app", "!If [IsProd, big, small]"), "small");
  EXPECT_EQ(f.text("app", "!If [IsDev, big, small]"), "big");
  EXPECT_EQ(f.text("app", "!If [Both, yes, no]"), "yes");
  EXPECT_EQ(f.text("app", "!If [Either, yes, no]"), "no");
  EXPECT_EQ(f.text("app", "!Equals [!Ref Env, dev]"), "true");
  EXPECT_EQ(f.text("app", "[!If [IsProd, a, !Ref AWS::NoValue]]"), "[]");
  // A resource whose Condition is false does not exist.
  EXPECT_NE(f.text("app", "!Ref OnlyProd").find("not created"), std::string::npos);
  EXPECT_NE(f.text("app", "!If [Nope, a, b]").find("no condition named 'Nope'"), std::string::npos);
}

// Fn::GetAZs: the zones a new account sees, per region (an account-dependent default); --azs
// (options::azs) replaces them for the import's region; an unknown region gets a, b and c and
// one warning.
TEST(cfn_evaluator, getazs_per_region_and_given) {
  {
    stacks_fixture f;
    options o;
    o.region = "us-east-1";
    ASSERT_TRUE(f.load({{"app.yml", base}}, o));
    EXPECT_EQ(f.text("app", "!GetAZs ''"),
              "[us-east-1a,us-east-1b,us-east-1c,us-east-1d,us-east-1e,us-east-1f]");
    EXPECT_EQ(f.text("app", "!Select [3, !GetAZs '']"), "us-east-1d");
    EXPECT_EQ(f.text("app", "!GetAZs us-west-2"), "[us-west-2a,us-west-2b,us-west-2c,us-west-2d]");
    EXPECT_EQ(f.text("app", "!GetAZs us-west-1"), "[us-west-1b,us-west-1c]");
    EXPECT_EQ(f.text("app", "!GetAZs ap-northeast-1"),
              "[ap-northeast-1a,ap-northeast-1c,ap-northeast-1d]");
    EXPECT_EQ(f.text("app", "!GetAZs ca-central-1"), "[ca-central-1a,ca-central-1b,ca-central-1d]");
    EXPECT_EQ(f.text("app", "!GetAZs {Ref: 'AWS::Region'}"),
              "[us-east-1a,us-east-1b,us-east-1c,us-east-1d,us-east-1e,us-east-1f]");
    EXPECT_TRUE(f.ev->warnings().empty());
    // Beyond the list: Fn::Select's own error.
    EXPECT_NE(f.text("app", "!Select [2, !GetAZs us-west-1]").find("Fn::Select"),
              std::string::npos);
  }
  {
    stacks_fixture f;
    options o;
    o.region = "eu-west-1";
    o.azs = {"eu-west-1b", "eu-west-1c"};
    ASSERT_TRUE(f.load({{"app.yml", base}}, o));
    EXPECT_EQ(f.text("app", "!GetAZs ''"), "[eu-west-1b,eu-west-1c]");
    EXPECT_EQ(f.text("app", "!GetAZs eu-west-1"), "[eu-west-1b,eu-west-1c]");
    EXPECT_EQ(f.text("app", "!GetAZs eu-west-2"), "[eu-west-2a,eu-west-2b,eu-west-2c]");
  }
  {
    stacks_fixture f;
    options o;
    o.region = "xx-nowhere-1";
    ASSERT_TRUE(f.load({{"app.yml", base}}, o));
    EXPECT_EQ(f.text("app", "!GetAZs ''"), "[xx-nowhere-1a,xx-nowhere-1b,xx-nowhere-1c]");
    EXPECT_EQ(f.text("app", "!Select [1, !GetAZs '']"), "xx-nowhere-1b");
    ASSERT_EQ(f.ev->warnings().size(), 1u);  // once per region
    EXPECT_EQ(f.ev->warnings()[0].where.to_string(), "expr.yml:1:4");
    EXPECT_EQ(f.ev->warnings()[0].message,
              "Fn::GetAZs: the Availability Zones of region "
              "'xx-nowhere-1' are not known to relaylab: assumed xx-nowhere-1a, xx-nowhere-1b "
              "and xx-nowhere-1c (--azs NAME,NAME,... gives them)");
  }
  EXPECT_EQ(check_azs_option({"us-east-1a", "us-east-1b"}, "us-east-1"), std::nullopt);
  EXPECT_EQ(check_azs_option({"us-east-1a", "us-west-2b"}, "us-east-1"),
            "--azs us-west-2b: not an Availability Zone name of us-east-1 (--region): expected "
            "us-east-1 and a letter, such as us-east-1a");
  EXPECT_EQ(check_azs_option({"us-east-1a", "us-east-1a"}, "us-east-1"),
            "--azs us-east-1a: given twice");
  EXPECT_EQ(check_azs_option({""}, "us-east-1"),
            "--azs : not an Availability Zone name of us-east-1 (--region): expected us-east-1 "
            "and a letter, such as us-east-1a");
  EXPECT_NE(check_azs_option({}, "us-east-1"), std::nullopt);
}

TEST(cfn_evaluator, getazs_cidr_findinmap_base64) {
  stacks_fixture f;
  options o;
  o.region = "ap-northeast-1";
  ASSERT_TRUE(f.load({{"app.yml", base}}, o));
  EXPECT_EQ(f.text("app", "!Select [0, !GetAZs '']"), "ap-northeast-1a");
  EXPECT_EQ(f.text("app", "!GetAZs eu-west-1"), "[eu-west-1a,eu-west-1b,eu-west-1c]");
  EXPECT_EQ(f.text("app", "!Cidr [192.168.2.0/24, 2, 7]"), "[192.168.2.0/25,192.168.2.128/25]");
  EXPECT_EQ(f.text("app", "!Cidr ['10.0.0.0/16', 3, 8]"), "[10.0.0.0/24,10.0.1.0/24,10.0.2.0/24]");
  EXPECT_EQ(f.text("app", "!Cidr ['2600:1f18:100::/56', 2, 64]"),
            "[2600:1f18:100::/64,2600:1f18:100:1::/64]");
  EXPECT_NE(f.text("app", "!Cidr ['10.0.0.0/24', 4, 7]").find("Fn::Cidr cannot cut"),
            std::string::npos);
  EXPECT_EQ(f.text("app", "!FindInMap [Sizes, !Ref Env, Instance]"), "t3.micro");
  EXPECT_EQ(f.text("app", "!Base64 'hi!'"), "aGkh");
}

TEST(cfn_evaluator, unknown_intrinsic_is_an_error_at_its_key) {
  stacks_fixture f;
  ASSERT_TRUE(f.load({{"app.yml", base}}));
  EXPECT_EQ(f.text("app", "!Bogus x").substr(0, 61),
            "<expr.yml:1:4: error: unknown intrinsic function 'Fn::Bogus' ");
}

// A template may be given before the one it depends on: an import and an SSM parameter
// resolve against a stack that comes later, and JSON and YAML mix.
TEST(cfn_evaluator, import_value_and_ssm_across_stacks_in_any_order) {
  const std::string consumer =
      "Parameters:\n"
      "  Name:\n"
      "    Type: AWS::SSM::Parameter::Value<String>\n"
      "    Default: /x/name\n"
      "  Names:\n"
      "    Type: AWS::SSM::Parameter::Value<List<String>>\n"
      "    Default: /x/list\n"
      "Resources:\n"
      "  B: {Type: AWS::S3::Bucket}\n";
  const std::string json_producer =
      "{\"Resources\": {\"L\": {\"Type\": \"AWS::SSM::Parameter\", \"Properties\": "
      "{\"Name\": \"/x/list\", \"Type\": \"StringList\", \"Value\": \"a,b\"}}}}";
  stacks_fixture f;
  ASSERT_TRUE(f.load({{"aaa.yml", consumer}, {"app.yml", base}, {"list.json", json_producer}}));
  EXPECT_EQ(f.text("aaa", "!ImportValue app-Out"), "app-exported");
  EXPECT_EQ(f.text("aaa", "!Ref Name"), "dev-value");
  EXPECT_EQ(f.text("aaa", "!Ref Names"), "[a,b]");
  EXPECT_NE(f.text("aaa", "!ImportValue nope").find("none of the templates exports it"),
            std::string::npos);
}

TEST(cfn_evaluator, ssm_parameter_missing) {
  stacks_fixture f;
  ASSERT_TRUE(f.load({{"a.yml",
                       "Parameters:\n  P: {Type: 'AWS::SSM::Parameter::Value<String>', "
                       "Default: /nope}\nResources:\n  B: {Type: 'AWS::S3::Bucket'}\n"}}));
  EXPECT_EQ(f.text("a", "!Ref P"),
            "<a.yml:2:60: error: SSM parameter '/nope': no AWS::SSM::Parameter in the "
            "templates given has this Name>");
}

TEST(cfn_evaluator, aws_public_ssm_parameters_stand_for_themselves) {
  stacks_fixture f;
  ASSERT_TRUE(
      f.load({{"a.yml",
               "Parameters:\n  Ami: {Type: 'AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>', "
               "Default: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64}"
               "\nResources:\n  B: {Type: 'AWS::S3::Bucket'}\n"}}));
  EXPECT_EQ(f.text("a", "!Ref Ami"),
            "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64");
}

TEST(cfn_evaluator, cycles_name_their_chain) {
  stacks_fixture f;
  f.load({{"c.yml",
           "Resources:\n"
           "  A:\n"
           "    Type: AWS::SSM::Parameter\n"
           "    Properties: {Name: a, Type: String, Value: !Ref B}\n"
           "  B:\n"
           "    Type: AWS::SSM::Parameter\n"
           "    Properties: {Name: b, Type: String, Value: !GetAtt A.Value}\n"}});
  ASSERT_EQ(f.errors.size(), 1u);
  EXPECT_EQ(f.errors[0].to_string(),
            "c.yml:4:48: error: circular dependency between resources: A (c.yml:4:48) → B "
            "(c.yml:7:56) → A");
}

TEST(cfn_evaluator, conditions_cycle_and_bad_sections) {
  stacks_fixture f;
  f.load({{"c.yml",
           "Conditions:\n"
           "  A: !Condition B\n"
           "  B: !Not [!Condition A]\n"
           "Resources:\n"
           "  R: {Type: AWS::S3::Bucket, Condition: A}\n"
           "Bogus: 1\n"}});
  ASSERT_GE(f.errors.size(), 2u);
  EXPECT_EQ(f.errors[0].to_string(), "c.yml:6:1: error: unknown top-level section 'Bogus'");
  EXPECT_NE(f.errors[1].to_string().find("circular reference: c.Conditions.A"), std::string::npos);
}

// Functions and directives the evaluator does not run are errors naming them, their place and
// the logical ID, wherever they are written (in properties, in Metadata, in a Resources key);
// so are the language extensions' functions without the transform.
TEST(cfn_evaluator, language_extensions_without_transform_macros_and_rain_are_errors) {
  auto first = [](const std::string& resources) {
    stacks_fixture f;
    f.load({{"t.yml", "Resources:\n" + resources}});
    return f.errors.empty() ? std::string("<no error>") : f.errors[0].to_string();
  };
  const std::string expand =
      ", which relaylab import does not run; expand it before importing (aws cloudformation "
      "get-template --template-stage Processed gives a deployed stack's expanded template)";
  const std::string declare =
      " needs the AWS::LanguageExtensions transform, which this template does not declare (add "
      "Transform: AWS::LanguageExtensions at its top level, as AWS needs too)";
  EXPECT_EQ(first("  B:\n    Type: AWS::S3::Bucket\n    Properties:\n"
                  "      Fn::Transform: {Name: AWS::Include, Parameters: {Location: s3://x}}\n"),
            "t.yml:5:7: error: B: Fn::Transform runs a macro (AWS::Include or another) that "
            "rewrites the template" +
                expand);
  EXPECT_EQ(first("  B:\n    Type: AWS::S3::Bucket\n"
                  "    Properties: {Tags: [{Key: n, Value: !Length [a, b]}]}\n"),
            "t.yml:4:41: error: B: Fn::Length" + declare);
  EXPECT_EQ(first("  B:\n    Type: AWS::S3::Bucket\n    Metadata: {X: !ToJsonString {a: b}}\n"),
            "t.yml:4:19: error: B: Fn::ToJsonString" + declare);
  EXPECT_EQ(first("  Fn::ForEach::Buckets:\n    - Name\n    - [a, b]\n"
                  "    - Bucket${Name}: {Type: AWS::S3::Bucket}\n"),
            "t.yml:2:3: error: Fn::ForEach::Buckets: Fn::ForEach" + declare);
  EXPECT_EQ(first("  B:\n    Type: AWS::S3::Bucket\n    Properties:\n"
                  "      BucketName: !Rain::Constant name\n"),
            "t.yml:5:19: error: B: Fn::Rain::Constant is the rain tool's directive "
            "Rain::Constant, not CloudFormation's; package the template first (rain pkg) and "
            "import the output");
  EXPECT_EQ(first("  B:\n    Type: AWS::S3::Bucket\n    Properties:\n"
                  "      Rain::Module: ./m.yml\n")
                .substr(0, 70),
            "t.yml:5:7: error: B: Rain::Module is the rain tool's directive Rain::M");
  // Outside Resources: the section (and output) is named.
  stacks_fixture o;
  o.load({{"o.yml",
           "Resources:\n  B: {Type: AWS::S3::Bucket}\nOutputs:\n"
           "  N: {Value: !Length [a]}\nMappings:\n  M: {Fn::Transform: {Name: X}}\n"}});
  ASSERT_EQ(o.errors.size(), 2u);
  EXPECT_EQ(o.errors[0].to_string().substr(0, 54),
            "o.yml:4:14: error: Outputs.N: Fn::Length needs the AWS");
  EXPECT_EQ(o.errors[1].to_string().substr(0, 51),
            "o.yml:6:7: error: Mappings: Fn::Transform runs a ma");
  // Any other transform is a macro: an error at its name, also in the list form.
  stacks_fixture t;
  t.load({{"x.yml",
           "Transform: [AWS::LanguageExtensions, AWS::Serverless-2016-10-31]\nResources:\n"
           "  B: {Type: AWS::S3::Bucket}\n"}});
  ASSERT_EQ(t.errors.size(), 1u);
  EXPECT_EQ(t.errors[0].to_string(),
            "x.yml:1:38: error: Transform AWS::Serverless-2016-10-31 (a macro such as "
            "AWS::Serverless) rewrites the template; it cannot be imported: expand it first (aws "
            "cloudformation get-template --template-stage Processed)");
  stacks_fixture d;
  ASSERT_TRUE(d.load({{"app.yml", base}}));
  EXPECT_EQ(d.text("app", "!FindInMap [Sizes, x, y, {DefaultValue: z}]"),
            "<expr.yml:1:29: error: Fn::FindInMap with a DefaultValue" + declare + ">");
  EXPECT_EQ(d.text("app", "!Length [a]"), "<expr.yml:1:4: error: Fn::Length" + declare + ">");
}

}  // namespace
}  // namespace relaylab::cfn
