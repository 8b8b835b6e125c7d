// Hostile input: random bytes, NULs, long lines, unbalanced braces, big files. Every case must
// end with diagnostics (never a crash or a hang); the fuzz loop is seeded and bounded.
#include <gtest/gtest.h>

#include <random>

#include "relay/config/config.hpp"
#include "relay/config/test_util.hpp"

namespace relaylab::config {
namespace {

using test::temp_dir;

bool has_fatal(const std::vector<diagnostic>& d) {
  for (const auto& x : d) {
    if (x.level == diagnostic::severity::fatal) return true;
  }
  return false;
}

// Every diagnostic names a file and says something.
void expect_well_formed(const std::vector<diagnostic>& d) {
  for (const auto& x : d) {
    EXPECT_FALSE(x.file.empty());
    EXPECT_FALSE(x.message.empty());
    EXPECT_LT(x.to_string().size(), 2048u) << "diagnostics must stay readable";
  }
}

TEST(Garbage, RandomBytesInMainCf) {
  std::string text;
  std::mt19937 rng(12345);
  for (int i = 0; i < 4096; ++i) text += static_cast<char>(rng() & 0xff);
  parameters p;
  std::vector<diagnostic> d;
  parse_main_cf(text, "main.cf", p, d);
  EXPECT_TRUE(has_fatal(d));
  expect_well_formed(d);
  for (const auto& x : d) EXPECT_GT(x.line, 0);
}

TEST(Garbage, NulsAndControlBytesAreEscapedInMessages) {
  parameters p;
  std::vector<diagnostic> d;
  parse_main_cf(std::string_view("\x01\x02 junk\0more\n", 13), "main.cf", p, d);
  ASSERT_FALSE(d.empty());
  for (const auto& x : d) {
    for (char c : x.to_string()) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << x.to_string();
  }
}

TEST(Garbage, VeryLongLineGivesShortDiagnostic) {
  std::string text(200000, 'a');
  parameters p;
  std::vector<diagnostic> d;
  parse_main_cf(text, "main.cf", p, d);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].message.find("missing '=' after attribute name"), std::string::npos);
  EXPECT_LT(d[0].to_string().size(), 300u);
  std::string value = "smtpd_banner = " + std::string(500000, 'b') + "\n";
  std::vector<diagnostic> d2;
  parse_main_cf(value, "main.cf", p, d2);
  EXPECT_TRUE(d2.empty());
  EXPECT_EQ(p.get("smtpd_banner").size(), 500000u);
}

TEST(Garbage, UnbalancedBracesAreErrorsNotHangs) {
  parameters p;
  for (const char* v : {"${", "${{", "${{a} == {b", "$(((((", "${a?{", "${a:{b}",
                        "${{$compatibility_level} <level {2} ? {subnet} : {host}",
                        "${{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{"}) {
    p.set("smtpd_banner", v, {"main.cf", 1});
    auto d = p.validate();
    ASSERT_EQ(d.size(), 1u) << v;
    EXPECT_EQ(d[0].level, diagnostic::severity::fatal);
    EXPECT_NE(d[0].message.find("macro processing error in smtpd_banner"), std::string::npos);
  }
}

TEST(Garbage, StrayClosingBracesAreText) {
  parameters p;
  p.set("x", "v");
  EXPECT_EQ(p.expand("}}}}${x}").value, "}}}}v");
  EXPECT_TRUE(p.expand("}}}}${x}").error.empty());
}

TEST(Garbage, MegabyteFileOfNonsense) {
  temp_dir dir;
  std::string text;
  std::mt19937 rng(7);
  const char* pieces[] = {"=", "$", "{",      "}", "(", ")",  " ",  "\n", "\n ", "#",   ",",
                          "a", "b", "smtpd_", "?", ":", "\t", "$$", "${", "-o",  "inet"};
  while (text.size() < (1u << 20)) text += pieces[rng() % std::size(pieces)];
  dir.write("main.cf", text);
  dir.write("master.cf", text);
  auto c = load(dir.path(), host_environment{});
  EXPECT_FALSE(c.ok());
  expect_well_formed(c.diagnostics);
}

TEST(Garbage, OversizedFileIsRefused) {
  temp_dir dir;
  dir.write("main.cf", std::string(config_file_bytes_max + 1, '#'));
  dir.write("master.cf", "");
  auto c = load(dir.path(), host_environment{});
  EXPECT_FALSE(c.ok());
  ASSERT_FALSE(c.diagnostics.empty());
  EXPECT_NE(c.diagnostics[0].message.find("file is larger than"), std::string::npos);
}

TEST(Garbage, MasterCfRandomLines) {
  std::mt19937 rng(99);
  std::string text;
  for (int i = 0; i < 2000; ++i) {
    int fields = static_cast<int>(rng() % 12);
    for (int f = 0; f < fields; ++f) {
      static const char* words[] = {"smtp", "inet", "unix", "n", "y",      "-",   "0",     "99999",
                                    "-o",   "a=b",  "{",    "}", "[::1]:", "x:y", "smtpd", "?"};
      text += words[rng() % std::size(words)];
      text += ' ';
    }
    text += '\n';
  }
  std::vector<diagnostic> d;
  auto services = parse_master_cf(text, "master.cf", d);
  EXPECT_TRUE(has_fatal(d));
  expect_well_formed(d);
  for (const auto& s : services) {
    if (s.type == "inet") {
      EXPECT_GT(s.listen_port, 0);
    }
  }
}

// Seeded fuzz loop over everything that reads text: parse, expand, validate, typed getters.
TEST(Garbage, FuzzLoopFixedSeed) {
  std::mt19937 rng(20240304);
  const char alphabet[] = "ab_$${}():?=, \t\n#\\x0<>!lev";
  for (int round = 0; round < 1500; ++round) {
    std::string text;
    std::size_t len = rng() % 200;
    for (std::size_t i = 0; i < len; ++i) {
      text += (rng() % 16 == 0) ? static_cast<char>(rng() & 0xff)
                                : alphabet[rng() % (sizeof alphabet - 1)];
    }
    parameters p;
    std::vector<diagnostic> d;
    parse_main_cf("a = " + text + "\nb = $a$a\nsmtpd_timeout = $b\n" + text, "main.cf", p, d);
    (void)p.validate();
    (void)p.get_time("smtpd_timeout");
    (void)p.get_list("b");
    (void)p.expand(text);
    std::vector<diagnostic> md;
    (void)parse_master_cf(text, "master.cf", md);
    expect_well_formed(d);
    expect_well_formed(md);
  }
}

}  // namespace
}  // namespace relaylab::config
