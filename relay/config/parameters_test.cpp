// Defaults, $name expansion, compatibility levels, typed getters and validation.
#include <gtest/gtest.h>

#include "relay/config/config.hpp"

namespace relaylab::config {
namespace {

host_environment test_host() {
  host_environment env;
  env.hostname = "mx1";
  env.interface_networks = {"127.0.0.1/8", "10.1.2.3/16",        "192.168.2.44/24",
                            "::1/128",     "2001:db8:1:2::5/64", "fe80::1/64"};
  return env;
}

parameters with(std::initializer_list<std::pair<const char*, const char*>> settings) {
  parameters p(test_host());
  for (const auto& [k, v] : settings) p.set(k, v);
  return p;
}

TEST(Defaults, TableHasEveryPostfix37Parameter) {
  const auto& names = parameters::builtin_names();
  EXPECT_EQ(names.size(), 831u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  parameters p;
  EXPECT_TRUE(p.is_known("smtpd_relay_restrictions"));
  EXPECT_TRUE(p.is_known("2bounce_notice_recipient"));
  EXPECT_FALSE(p.is_known("smtpd_nonexistent"));
  EXPECT_EQ(p.raw("smtpd_nonexistent"), std::nullopt);
  EXPECT_EQ(p.get("smtpd_nonexistent"), "");
}

// Values as printed by `postconf -d` (the generated table) and by `man 5 postconf`.
TEST(Defaults, SampleMatchesPostconfAndManPage) {
  parameters p;
  EXPECT_EQ(p.raw("smtpd_timeout"), "${stress?{10}:{300}}s");
  EXPECT_EQ(p.get("smtpd_timeout"), "300s");
  EXPECT_EQ(p.get("message_size_limit"), "10240000");
  EXPECT_EQ(p.get("mail_version"), "3.7.11");
  EXPECT_EQ(p.get("mydestination"),
            p.get("myhostname") + ", localhost." + p.get("mydomain") + ", localhost");
  EXPECT_EQ(p.raw("mydestination"), "$myhostname, localhost.$mydomain, localhost");
  EXPECT_EQ(p.get("smtpd_banner"), p.get("myhostname") + " ESMTP Postfix");
  EXPECT_EQ(p.raw("smtpd_banner"), "$myhostname ESMTP $mail_name");
  EXPECT_EQ(p.get("smtpd_sasl_path"), "smtpd");
  EXPECT_EQ(p.get("smtpd_sasl_auth_enable"), "no");
  EXPECT_EQ(p.get("access_map_reject_code"), "554");
  EXPECT_EQ(p.get("address_verify_cache_cleanup_interval"), "12h");  // man: (default: 12h)
  EXPECT_EQ(p.get("maximal_queue_lifetime"), "5d");
  EXPECT_EQ(p.get("default_process_limit"), "100");
  EXPECT_EQ(p.get("inet_interfaces"), "all");
  EXPECT_EQ(p.get("config_directory"), "/etc/postfix");
  EXPECT_EQ(p.get("smtpd_delay_reject"), "yes");
  EXPECT_EQ(p.get("compatibility_level"), "0");
}

TEST(Defaults, HostnameAndDomainComputedFromEnvironment) {
  host_environment env;
  env.hostname = "mx1";
  parameters short_name(env);
  EXPECT_EQ(short_name.get("myhostname"), "mx1.localdomain");
  EXPECT_EQ(short_name.get("mydomain"), "localdomain");
  env.hostname = "relay.example.com";
  parameters fqdn(env);
  EXPECT_EQ(fqdn.get("myhostname"), "relay.example.com");
  EXPECT_EQ(fqdn.get("mydomain"), "example.com");
  EXPECT_EQ(fqdn.get("myorigin"), "relay.example.com");
  env.hostname = "mx1";
  parameters p(env);
  p.set("mydomain", "corp.example");
  EXPECT_EQ(p.get("myhostname"), "mx1.corp.example");  // Postfix appends the set $mydomain
  parameters q(env);
  q.set("myhostname", "a.b.c");
  EXPECT_EQ(q.get("mydomain"), "b.c");
  q.set("myhostname", "foo.com");
  EXPECT_EQ(q.get("mydomain"), "com");  // observed with postconf 3.7.11
}

// A computed default read many times in one expansion is worked out once; one read inside
// the cycle that defines it (myhostname = a.$mydomain) sees itself undefined, every time.
TEST(Defaults, ComputedDefaultsKeepTheirValuesThroughAnExpansion) {
  host_environment env;
  env.hostname = "mx1";
  parameters p(env);
  p.set("myhostname", "a.$mydomain");
  p.set("smtpd_banner", "$mydomain|$myhostname|$mydomain|${mydomain?set}");
  EXPECT_EQ(p.get("smtpd_banner"), "|a.||");
  EXPECT_EQ(p.get("mydomain"), "");
  p.set("myhostname", "a.b.$mydomain");
  EXPECT_EQ(p.get("smtpd_banner"), "b.|a.b.b.|b.|set");  // as postconf -x of Postfix 3.7.11
}

TEST(Defaults, MynetworksFollowsSettingsChangedBetweenExpansions) {
  auto p = with({{"smtpd_banner", "$mynetworks $mynetworks"}});
  const std::string all = p.get("mynetworks");
  EXPECT_EQ(p.get("smtpd_banner"), all + " " + all);
  p.set("inet_protocols", "ipv4");
  EXPECT_EQ(p.get("mynetworks"), "127.0.0.0/8 10.1.0.0/16 192.168.2.0/24");
  EXPECT_EQ(p.get("smtpd_banner"),
            "127.0.0.0/8 10.1.0.0/16 192.168.2.0/24 127.0.0.0/8 10.1.0.0/16 192.168.2.0/24");
}

TEST(Defaults, MynetworksStyleSubnetAtLevel0) {
  auto p = with({});
  EXPECT_EQ(p.get("mynetworks_style"), "subnet");
  EXPECT_EQ(p.get("mynetworks"),
            "127.0.0.0/8 10.1.0.0/16 192.168.2.0/24 [::1]/128 [2001:db8:1:2::]/64 [fe80::]/64");
}

TEST(Defaults, MynetworksStyleHost) {
  auto p = with({{"mynetworks_style", "host"}});
  EXPECT_EQ(p.get("mynetworks"),
            "127.0.0.1/32 10.1.2.3/32 192.168.2.44/32 [::1]/128 [2001:db8:1:2::5]/128 "
            "[fe80::1]/128");
}

TEST(Defaults, MynetworksStyleClass) {
  auto p = with({{"mynetworks_style", "class"}});
  // IPv4 class A/B/C networks; IPv6 has no classes and uses the subnet.
  EXPECT_EQ(p.get("mynetworks"),
            "127.0.0.0/8 10.0.0.0/8 192.168.2.0/24 [::1]/128 [2001:db8:1:2::]/64 [fe80::]/64");
  host_environment env;
  env.interface_networks = {"172.20.5.1/24", "224.1.2.3/32", "250.0.0.1/8"};
  parameters q(env);
  q.set("mynetworks_style", "class");
  EXPECT_EQ(q.get("mynetworks"), "172.20.0.0/16 224.0.0.0/4");  // class E is skipped
}

TEST(Defaults, MynetworksHonoursInetProtocolsAndInterfaces) {
  auto p = with({{"inet_protocols", "ipv4"}});
  EXPECT_EQ(p.get("mynetworks"), "127.0.0.0/8 10.1.0.0/16 192.168.2.0/24");
  auto q = with({{"inet_interfaces", "127.0.0.1, 192.168.2.44"}});
  EXPECT_EQ(q.get("mynetworks"), "127.0.0.0/8 192.168.2.0/24");
  auto r = with({{"inet_interfaces", "loopback-only"}});
  EXPECT_EQ(r.get("mynetworks"), "127.0.0.0/8 [::1]/128");
  auto s = with({{"mynetworks", "10.0.0.0/8"}});
  EXPECT_EQ(s.get("mynetworks"), "10.0.0.0/8");  // explicit setting wins
}

TEST(Defaults, MynetworksFollowsCompatibilityLevel) {
  auto p = with({{"compatibility_level", "3.6"}});
  EXPECT_EQ(p.get("mynetworks_style"), "host");
  EXPECT_EQ(p.get("mynetworks"),
            "127.0.0.1/32 10.1.2.3/32 192.168.2.44/32 [::1]/128 [2001:db8:1:2::5]/128 "
            "[fe80::1]/128");
}

TEST(CompatibilityLevel, Level0Defaults) {
  auto p = with({});
  EXPECT_EQ(p.get("smtpd_relay_restrictions"), "");
  EXPECT_EQ(p.get("smtputf8_enable"), "no");
  EXPECT_EQ(p.get("append_dot_mydomain"), "yes");
  EXPECT_EQ(p.get("relay_domains"), p.get("mydestination"));
  EXPECT_FALSE(p.get_bool("smtputf8_enable"));
}

TEST(CompatibilityLevel, Level1And2) {
  auto one = with({{"compatibility_level", "1"}});
  EXPECT_EQ(one.get("smtpd_relay_restrictions"),
            "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination");
  EXPECT_EQ(one.get("smtputf8_enable"), "yes");
  EXPECT_EQ(one.get("mynetworks_style"), "subnet");
  auto two = with({{"compatibility_level", "2"}});
  EXPECT_EQ(two.get("mynetworks_style"), "host");
  EXPECT_EQ(two.get("relay_domains"), "");
  EXPECT_EQ(two.get("append_dot_mydomain"), "no");
}

TEST(CompatibilityLevel, Level36AndLater) {
  auto p = with({{"compatibility_level", "3.6"}});
  EXPECT_EQ(p.get("smtpd_relay_restrictions"),
            "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination");
  EXPECT_EQ(p.get("relay_domains"), "");
  EXPECT_TRUE(p.get_bool("smtputf8_enable"));
  EXPECT_FALSE(p.get_bool("append_dot_mydomain"));
  EXPECT_EQ(p.get("smtpd_relay_before_recipient_restrictions"), "yes");
  EXPECT_EQ(with({}).get("smtpd_relay_before_recipient_restrictions"), "no");
  auto q = with({{"compatibility_level", "3.10"}});  // 3.10 > 3.6 as a level
  EXPECT_EQ(q.get("mynetworks_style"), "host");
}

TEST(CompatibilityLevel, CompareLevels) {
  EXPECT_LT(compare_compatibility_levels("3.6", "3.10"), 0);
  EXPECT_GT(compare_compatibility_levels("3.6", "2"), 0);
  EXPECT_EQ(compare_compatibility_levels("3", "3.0.0"), 0);
  EXPECT_LT(compare_compatibility_levels("0", "1"), 0);
}

TEST(Expansion, SimpleForms) {
  auto p = with({{"a", "alpha"}, {"b", "[$a]"}, {"c", "${a}/$(a)"}});
  EXPECT_EQ(p.get("b"), "[alpha]");
  EXPECT_EQ(p.get("c"), "alpha/alpha");
  EXPECT_EQ(p.expand("$a$$b $undefined.").value, "alpha$b .");
  EXPECT_EQ(p.expand("price $").value, "price $");
  EXPECT_EQ(p.expand("$-x").value, "$-x");
}

TEST(Expansion, ConditionalForms) {
  auto p = with({{"full", "x"}, {"empty", ""}});
  EXPECT_EQ(p.expand("${full?yes}").value, "yes");
  EXPECT_EQ(p.expand("${empty?yes}").value, "");
  EXPECT_EQ(p.expand("${undefined?yes}").value, "");
  EXPECT_EQ(p.expand("${full:no}").value, "");
  EXPECT_EQ(p.expand("${empty:no}").value, "no");
  EXPECT_EQ(p.expand("${undefined:no}").value, "no");
  // Whitespace around {text} is ignored, whitespace inside is kept.
  EXPECT_EQ(p.expand("${full? { a b } }").value, " a b ");
  EXPECT_EQ(p.expand("${empty:{ c }}").value, " c ");
  EXPECT_EQ(p.expand("${full?{one}:{two}}").value, "one");
  EXPECT_EQ(p.expand("${empty?{one}:{two}}").value, "two");
  EXPECT_EQ(p.expand("${empty?{one}:two}").value, "two");
  // Without braces the text runs to the end, ':' included (Postfix 2.2 compatibility).
  EXPECT_EQ(p.expand("${full?a:b}").value, "a:b");
  EXPECT_EQ(p.expand("${full?$full$full}").value, "xx");
}

TEST(Expansion, RelationalOperators) {
  auto p = with({{"v", "3"}});
  EXPECT_EQ(p.expand("${{$v} == {3} ? {eq} : {ne}}").value, "eq");
  EXPECT_EQ(p.expand("${{$v} != {3} ? {ne} : {eq}}").value, "eq");
  EXPECT_EQ(p.expand("${{10} > {9} ? {num} : {lex}}").value, "num");  // numeric when digits
  EXPECT_EQ(p.expand("${{b} > {a} ? {gt}}").value, "gt");
  EXPECT_EQ(p.expand("${{a} >= {b} : {lt}}").value, "lt");
  EXPECT_EQ(p.expand("${{2} <= {2}?{le}}").value, "le");
  EXPECT_EQ(p.expand("${{1} < {2}}").value, "true");
  EXPECT_EQ(p.expand("${{2} < {1}}").value, "");
}

TEST(Expansion, LevelOperators) {
  auto p = with({{"compatibility_level", "3.6"}});
  const char* expr = "${{$compatibility_level} %s {%s} ? {T} : {F}}";
  auto eval = [&](const char* op, const char* level) {
    char buf[128];
    std::snprintf(buf, sizeof buf, expr, op, level);
    return p.expand(buf).value;
  };
  EXPECT_EQ(eval("<level", "3.10"), "T");
  EXPECT_EQ(eval("<", "3.10"), "F");  // plain "<" compares text
  EXPECT_EQ(eval("<=level", "3.6"), "T");
  EXPECT_EQ(eval(">level", "2"), "T");
  EXPECT_EQ(eval(">=level", "3.6.0"), "T");
  EXPECT_EQ(eval("==level", "3.6.0"), "T");
  EXPECT_EQ(eval("!=level", "3.6"), "F");
  auto bad = p.expand("${{x.y} <level {2} ? {a} : {b}}");
  EXPECT_NE(bad.error.find("bad compatibility level value"), std::string::npos) << bad.error;
}

TEST(Expansion, SyntaxErrorsAreReported) {
  auto p = with({});
  EXPECT_NE(p.expand("${").error.find("truncated macro reference"), std::string::npos);
  EXPECT_NE(p.expand("${}").error.find("empty macro name"), std::string::npos);
  EXPECT_NE(p.expand("${a b}").error.find("attribute name syntax error"), std::string::npos);
  EXPECT_NE(p.expand("${{a} = {b}?x}").error.find("expected"), std::string::npos);
  EXPECT_NE(p.expand("${{a} == b}").error.find("\"{expression}\" expected"), std::string::npos);
  EXPECT_NE(p.expand("${{a} == {b} x}").error.find("\"?\" or \":\" expected"), std::string::npos);
  EXPECT_NE(p.expand("${{a} == {b").error.find("truncated"), std::string::npos);
  EXPECT_NE(p.expand("${x?{a} junk}").error.find("\":\" expected"), std::string::npos);
  EXPECT_NE(p.expand("${x:{a} junk}").error.find("unexpected input"), std::string::npos);
}

TEST(Expansion, LoopsAreDetected) {
  auto p = with({{"a", "$b"}, {"b", "x $a"}});
  auto e = p.expand_parameter("a");
  EXPECT_NE(e.error.find("unreasonable macro call nesting"), std::string::npos) << e.error;
  auto self = with({{"s", "${s}"}});
  EXPECT_FALSE(self.expand_parameter("s").error.empty());
  auto diags = p.validate();
  ASSERT_FALSE(diags.empty());
  EXPECT_EQ(diags[0].level, diagnostic::severity::fatal);
  EXPECT_NE(diags[0].message.find("macro processing error in a"), std::string::npos);
}

TEST(Expansion, ExponentialExpansionIsBounded) {
  parameters p(test_host());
  p.set("e0", "xxxxxxxxxxxxxxxx");
  for (int i = 1; i <= 40; ++i) {
    p.set("e" + std::to_string(i), "$e" + std::to_string(i - 1) + "$e" + std::to_string(i - 1));
  }
  auto e = p.expand_parameter("e40");
  EXPECT_FALSE(e.error.empty());
  EXPECT_LE(e.value.size(), parameters::expansion_bytes_max + 64 * 1024);
}

// Found by the config fuzz target: each level compares the level below with itself, so the
// output stays one letter while the work doubles per level. The budget is shared with the
// computed defaults it reads (mynetworks), so nesting cannot multiply it.
TEST(Expansion, ExponentialWorkWithSmallOutputIsBounded) {
  parameters p(test_host());
  p.set("w0", "$mynetworks");
  for (int i = 1; i <= 28; ++i) {  // 28 levels stay inside expansion_depth_max
    const std::string below = "$w" + std::to_string(i - 1);
    p.set("w" + std::to_string(i), "${{" + below + "} == {" + below + "} ? {a} : {b}}");
  }
  auto e = p.expand_parameter("w28");
  EXPECT_NE(e.error.find("too many steps"), std::string::npos) << e.error;
  auto small = p.expand_parameter("w3");
  EXPECT_EQ(small.error, "");
  EXPECT_EQ(small.value, "a");
}

TEST(TypedGetters, Booleans) {
  auto p = with({{"smtpd_sasl_auth_enable", "YES"}, {"biff", "No"}});
  EXPECT_TRUE(p.get_bool("smtpd_sasl_auth_enable"));
  EXPECT_FALSE(p.get_bool("biff"));
  auto bad = with({{"smtpd_sasl_auth_enable", "maybe"}});
  EXPECT_FALSE(bad.get_bool("smtpd_sasl_auth_enable"));  // the default, "no"
  EXPECT_EQ(bad.type_of("smtpd_sasl_auth_enable"), value_type::boolean);
}

TEST(TypedGetters, Integers) {
  auto p = with({{"smtpd_recipient_limit", "250"}, {"message_size_limit", "52428800"}});
  EXPECT_EQ(p.get_int("smtpd_recipient_limit"), 250);
  EXPECT_EQ(p.get_size("message_size_limit"), 52428800u);
  EXPECT_EQ(with({}).get_int("smtpd_recipient_limit"), 1000);
  EXPECT_EQ(with({{"smtpd_recipient_limit", "12x"}}).get_int("smtpd_recipient_limit"), 1000);
  EXPECT_EQ(p.type_of("message_size_limit"), value_type::integer);
  EXPECT_EQ(p.type_of("compatibility_level"), value_type::string);
  EXPECT_EQ(p.type_of("lmtp_tcp_port"), value_type::string);
}

TEST(TypedGetters, Times) {
  using std::chrono::milliseconds;
  auto p = with({});
  EXPECT_EQ(p.get_time("smtpd_timeout"), milliseconds(300000));
  EXPECT_EQ(p.get_time("maximal_queue_lifetime"), milliseconds(5LL * 86400 * 1000));
  auto q = with({{"smtpd_timeout", "5m"},
                 {"maximal_queue_lifetime", "2"},                 // bare number: default unit d
                 {"address_verify_cache_cleanup_interval", "3"},  // default unit h
                 {"smtpd_error_sleep_time", "1w"}});
  EXPECT_EQ(q.get_time("smtpd_timeout"), milliseconds(300000));
  EXPECT_EQ(q.get_time("maximal_queue_lifetime"), milliseconds(2LL * 86400 * 1000));
  EXPECT_EQ(q.get_time("address_verify_cache_cleanup_interval"), milliseconds(3 * 3600 * 1000));
  EXPECT_EQ(q.get_time("smtpd_error_sleep_time"), milliseconds(7LL * 86400 * 1000));
  auto stressed = with({{"stress", "yes"}});
  EXPECT_EQ(stressed.get_time("smtpd_timeout"), milliseconds(10000));
  EXPECT_EQ(p.type_of("smtpd_timeout"), value_type::time);
}

TEST(TypedGetters, ParseTime) {
  EXPECT_EQ(parse_time_seconds("10", 's'), 10);
  EXPECT_EQ(parse_time_seconds("10m", 's'), 600);
  EXPECT_EQ(parse_time_seconds("1h", 's'), 3600);
  EXPECT_EQ(parse_time_seconds("2d", 's'), 172800);
  EXPECT_EQ(parse_time_seconds("3", 'h'), 10800);
  EXPECT_EQ(parse_time_seconds("5x", 's'), std::nullopt);
  EXPECT_EQ(parse_time_seconds("5ms", 's'), std::nullopt);
  EXPECT_EQ(parse_time_seconds("-5s", 's'), std::nullopt);
  EXPECT_EQ(parse_time_seconds("", 's'), std::nullopt);
  EXPECT_EQ(parse_time_seconds("99999999999", 's'), std::nullopt);
  EXPECT_EQ(parse_time_seconds("9999999w", 's'), std::nullopt);
  EXPECT_EQ(parse_time_seconds("5M", 's'), std::nullopt);  // units are lower case
}

TEST(TypedGetters, Lists) {
  auto p = with({{"smtpd_recipient_restrictions",
                  "permit_mynetworks,reject_unauth_destination\n\t check_policy_service  "
                  "{ inet:127.0.0.1:9998, timeout=10s }, , inline:{ a=b, c = d } x"}});
  auto l = p.get_list("smtpd_recipient_restrictions");
  ASSERT_EQ(l.size(), 6u);
  EXPECT_EQ(l[0], "permit_mynetworks");
  EXPECT_EQ(l[1], "reject_unauth_destination");
  EXPECT_EQ(l[2], "check_policy_service");
  EXPECT_EQ(l[3], "{ inet:127.0.0.1:9998, timeout=10s }");
  EXPECT_EQ(l[4], "inline:{ a=b, c = d }");
  EXPECT_EQ(l[5], "x");
  EXPECT_TRUE(split_list(" ,, \t").empty());
  EXPECT_EQ(split_list("a{b").size(), 1u);  // unbalanced brace: rest is one element
}

TEST(Overrides, WithOverridesIsACopy) {
  auto p = with({{"smtpd_sasl_auth_enable", "no"}, {"mua", "permit_sasl_authenticated"}});
  auto sub = p.with_overrides(
      {{"smtpd_sasl_auth_enable", "yes"}, {"smtpd_client_restrictions", "$mua, reject"}});
  EXPECT_TRUE(sub.get_bool("smtpd_sasl_auth_enable"));
  EXPECT_FALSE(p.get_bool("smtpd_sasl_auth_enable"));
  EXPECT_EQ(sub.get_list("smtpd_client_restrictions"),
            (std::vector<std::string>{"permit_sasl_authenticated", "reject"}));
  EXPECT_EQ(p.get("smtpd_client_restrictions"), "");
  EXPECT_TRUE(sub.is_set("smtpd_client_restrictions"));
}

TEST(Overrides, OriginsAreKeptForDiagnostics) {
  parameters p(test_host());
  master_service s;
  s.name = "submission";
  s.file = "master.cf";
  s.line = 17;
  s.overrides = {{"smtpd_tls_auth_only", "sometimes"}};
  auto view = p.with_service_overrides(s);
  auto diags = view.validate();
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].to_string(),
            "master.cf:17: fatal: bad boolean configuration: smtpd_tls_auth_only = sometimes "
            "(expected yes or no)");
}

TEST(Validate, TypeErrorsNameFileLineAndParameter) {
  parameters p(test_host());
  p.set("smtpd_sasl_auth_enable", "maybe", {"main.cf", 3});
  p.set("smtpd_recipient_limit", "lots", {"main.cf", 4});
  p.set("smtpd_timeout", "5 minutes", {"main.cf", 5});
  p.set("mynetworks_style", "subnets", {"main.cf", 6});
  p.set("compatibility_level", "latest", {"main.cf", 7});
  p.set("user_thing", "anything goes", {"main.cf", 8});
  auto d = p.validate();
  ASSERT_EQ(d.size(), 5u);
  std::vector<std::string> lines;
  for (const auto& x : d) lines.push_back(x.to_string());
  EXPECT_EQ(lines[0],
            "main.cf:3: fatal: bad boolean configuration: smtpd_sasl_auth_enable = maybe "
            "(expected yes or no)");
  EXPECT_EQ(lines[1],
            "main.cf:4: fatal: bad numerical configuration: smtpd_recipient_limit = lots "
            "(expected an integer)");
  EXPECT_EQ(lines[2],
            "main.cf:5: fatal: parameter smtpd_timeout: bad time value or unit: 5 minutes "
            "(expected a number with an optional unit s, m, h, d or w)");
  EXPECT_EQ(lines[3],
            "main.cf:6: fatal: bad mynetworks_style value: subnets; specify exactly one of "
            "host, subnet, class");
  EXPECT_EQ(lines[4],
            "main.cf:7: fatal: bad compatibility_level value: latest (expected a level like 0, "
            "2 or 3.6)");
  EXPECT_EQ(d[0].parameter, "smtpd_sasl_auth_enable");
}

TEST(Validate, ExpandedValuesAreChecked) {
  auto ok = with({{"yesno", "yes"}, {"smtpd_sasl_auth_enable", "$yesno"}});
  EXPECT_TRUE(ok.validate().empty());
  auto bad = with({{"yesno", "true"}, {"smtpd_sasl_auth_enable", "$yesno"}});
  ASSERT_EQ(bad.validate().size(), 1u);
  EXPECT_NE(bad.validate()[0].message.find("= true"), std::string::npos);
}

TEST(ServiceParameters, AddedLikePostconf) {
  parameters p(test_host());
  EXPECT_FALSE(p.is_known("relay_destination_concurrency_limit"));
  p.add_service_parameters("relay", "smtp");
  p.add_service_parameters("mailman", "pipe");
  p.add_service_parameters("cleanup", "cleanup");
  EXPECT_TRUE(p.is_known("relay_destination_concurrency_limit"));
  EXPECT_FALSE(p.is_known("relay_time_limit"));  // only pipe and spawn get _time_limit
  EXPECT_TRUE(p.is_known("mailman_time_limit"));
  EXPECT_FALSE(p.is_known("cleanup_destination_concurrency_limit"));
  EXPECT_EQ(p.raw("relay_destination_concurrency_limit"), "$default_destination_concurrency_limit");
  EXPECT_EQ(p.get_int("relay_destination_concurrency_limit"), 20);
  EXPECT_EQ(p.type_of("mailman_time_limit"), value_type::time);
  EXPECT_EQ(p.get_time("mailman_time_limit"), std::chrono::seconds(1000));
}

}  // namespace
}  // namespace relaylab::config
