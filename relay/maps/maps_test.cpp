#include "relay/maps/maps.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace relaylab::maps {
namespace {

const std::string kData = RELAYLAB_MAPS_TESTDATA_DIR;

std::unique_ptr<table> must_open(const std::string& spec,
                                 std::vector<std::string>* warnings = nullptr) {
  std::string error;
  open_options o;
  o.warnings = warnings;
  auto t = open(spec, error, o);
  EXPECT_NE(t, nullptr) << error;
  return t;
}

std::string open_error(const std::string& spec) {
  std::string error;
  auto t = open(spec, error);
  EXPECT_EQ(t, nullptr) << spec;
  return error;
}

TEST(maps_inline, plain_and_braced_entries) {
  auto t = must_open("inline:{ a=1, B=two, { c = value with spaces }, {d=x=y} }");
  EXPECT_EQ(t->find("a"), "1");
  EXPECT_EQ(t->find("b"), "two");
  EXPECT_EQ(t->find("A"), "1");
  EXPECT_EQ(t->find("c"), "value with spaces");
  EXPECT_EQ(t->find("d"), "x=y");
  EXPECT_EQ(t->find("e"), std::nullopt);
  EXPECT_EQ(t->name(), "inline:{ a=1, B=two, { c = value with spaces }, {d=x=y} }");
  EXPECT_TRUE(t->fixed_string());
}

TEST(maps_inline, syntax_errors_name_the_spec) {
  EXPECT_NE(open_error("inline:{ a=1").find("balanced braces"), std::string::npos);
  EXPECT_NE(open_error("inline:{ novalue }").find("expected \"key=value\""), std::string::npos);
  EXPECT_NE(open_error("inline:{ {a=1 }").find("inline:{ {a=1 }"), std::string::npos);
}

TEST(maps_texthash, postmap_format_with_continuations_and_folding) {
  std::vector<std::string> warnings;
  auto t = must_open("texthash:" + kData + "/access.txt", &warnings);
  EXPECT_EQ(t->find("example.com"), "REJECT");
  EXPECT_EQ(t->find("EXAMPLE.com"), "REJECT");
  EXPECT_EQ(t->find("multi"), "first part,  second part");
  EXPECT_EQ(t->find("nokey"), std::nullopt);
  EXPECT_EQ(t->find("dup"), "one");  // first wins, as Postfix
  EXPECT_EQ(t->find("with:colon:"), "x");
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_EQ(warnings[0], kData + "/access.txt, line 5: expected format: key whitespace value");
  EXPECT_EQ(warnings[1], kData + "/access.txt, line 7: duplicate entry: \"dup\"");
  EXPECT_NE(warnings[2].find("line 8: record is in \"key: value\" format"), std::string::npos);
}

TEST(maps_texthash, missing_file_is_an_error_naming_the_path) {
  auto e = open_error("texthash:" + kData + "/does-not-exist");
  EXPECT_NE(e.find(kData + "/does-not-exist: cannot open table source"), std::string::npos);
}

TEST(maps_texthash, size_limits) {
  std::string error;
  open_options o;
  o.entries_max = 2;
  EXPECT_EQ(open("texthash:" + kData + "/access.txt", error, o), nullptr);
  EXPECT_NE(error.find("more than 2 entries"), std::string::npos);
  o = {};
  o.file_bytes_max = 10;
  EXPECT_EQ(open("texthash:" + kData + "/access.txt", error, o), nullptr);
  EXPECT_NE(error.find("larger than 10 bytes"), std::string::npos);
}

TEST(maps_hash, aliases_source_is_read_in_aliases_format) {
  std::vector<std::string> warnings;
  auto t = must_open("hash:" + kData + "/aliases", &warnings);
  EXPECT_EQ(t->find("postmaster"), "root");
  EXPECT_EQ(t->find("sales-team"), "alice,  bob");
  EXPECT_EQ(t->find("Sales-Team"), "alice,  bob");
  EXPECT_EQ(t->find("quoted name"), "carol");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], kData + "/aliases, line 6: need name:value pair");
}

TEST(maps_hash, other_sources_use_postmap_format_and_proxy_is_stripped) {
  auto t = must_open("proxy:hash:" + kData + "/access.txt");
  EXPECT_EQ(t->find("Example.Com"), "REJECT");
  auto l = must_open("lmdb:" + kData + "/access.txt");
  EXPECT_EQ(l->find("multi"), "first part,  second part");
  std::string error;
  open_options o;
  o.aliases = true;
  auto a = open("btree:" + kData + "/aliases", error, o);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->find("postmaster"), "root");
}

TEST(maps_hash, missing_alias_database_source_is_an_error) {
  EXPECT_NE(open_error("hash:" + kData + "/no-aliases").find("cannot open"), std::string::npos);
}

TEST(maps_cidr, first_match_negation_if_endif_v4_v6) {
  auto t = must_open("cidr:" + kData + "/nets.cidr");
  EXPECT_FALSE(t->fixed_string());
  EXPECT_EQ(t->find("192.168.1.1"), "exact");
  EXPECT_EQ(t->find("192.168.7.7"), "wide");
  EXPECT_EQ(t->find("172.16.0.1"), "not-ten");
  EXPECT_EQ(t->find("10.1.2.3"), "inner");
  EXPECT_EQ(t->find("10.1.9.9"), "outer");
  EXPECT_EQ(t->find("10.2.0.1"), std::nullopt);
  EXPECT_EQ(t->find("2001:DB8::1"), "v6");
  EXPECT_EQ(t->find("2001:db9::1"), std::nullopt);
  EXPECT_EQ(t->find("not-an-address"), std::nullopt);
}

TEST(maps_cidr, inline_rules) {
  auto t = must_open("cidr:{ {10.0.0.0/8 ten}, {::/0 any-v6} }");
  EXPECT_EQ(t->find("10.9.9.9"), "ten");
  EXPECT_EQ(t->find("::1"), "any-v6");
  EXPECT_EQ(t->find("11.0.0.1"), std::nullopt);
}

TEST(maps_cidr, errors_name_file_line_and_expectation) {
  const std::string path = ::testing::TempDir() + "/bad.cidr";
  auto write = [&](const char* text) { std::ofstream(path) << text; };
  write("# c\n192.168.1.1/24 x\n");
  EXPECT_NE(open_error("cidr:" + path).find(path + ":2: non-null host address bits"),
            std::string::npos);
  write("10.0.0.0/33 x\n");
  EXPECT_NE(open_error("cidr:" + path).find(path + ":1: bad prefix length"), std::string::npos);
  write("bogus x\n");
  EXPECT_NE(open_error("cidr:" + path).find(path + ":1: expected network_address"),
            std::string::npos);
  write("10.0.0.0/8\n");
  EXPECT_NE(open_error("cidr:" + path).find("expected format: pattern whitespace result"),
            std::string::npos);
  write("if 10.0.0.0/8\n10.1.0.0/16 x\n");
  EXPECT_NE(open_error("cidr:" + path).find("missing endif"), std::string::npos);
  write("endif\n");
  EXPECT_NE(open_error("cidr:" + path).find(":1: endif without matching if"), std::string::npos);
}

TEST(maps_static, returns_value_for_any_key) {
  EXPECT_EQ(must_open("static:OK")->find("anything"), "OK");
  EXPECT_EQ(must_open("static:{ REJECT with text }")->find("x"), "REJECT with text");
  EXPECT_NE(open_error("static:{ open").find("balanced braces"), std::string::npos);
}

TEST(maps_unix, passwd_byname_uses_the_user_database) {
  auto t = must_open("proxy:unix:passwd.byname");
  auto root = t->find("ROOT");
  ASSERT_TRUE(root.has_value());
  EXPECT_EQ(root->substr(0, 7), "root:x:");
  EXPECT_EQ(t->find("no-such-user-relaylab"), std::nullopt);
  EXPECT_NE(open_error("unix:shadow.byname").find("expected unix:passwd.byname"),
            std::string::npos);
}

TEST(maps_open, unknown_type_and_bad_spec) {
  EXPECT_NE(open_error("regexp:/etc/x").find("unsupported table type \"regexp\""),
            std::string::npos);
  EXPECT_NE(open_error("nocolon").find("expected type:name"), std::string::npos);
  EXPECT_NE(open_error("texthash:").find("expected texthash:/path/name"), std::string::npos);
}

TEST(maps_fold_case, ascii_only) { EXPECT_EQ(fold_case("AbC-Ü"), "abc-Ü"); }

}  // namespace
}  // namespace relaylab::maps
