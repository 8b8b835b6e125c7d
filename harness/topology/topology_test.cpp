// The topology loader: the hands-on file loads into the expected structs; every bad file of
// testdata/topology/bad/ fails with file:line:column and the message its first line announces
// ("<!-- expect: LINE:COLUMN text -->").
#include "harness/topology/topology.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

namespace relaylab::topology {
namespace {

namespace fs = std::filesystem;
const std::string source_dir = RELAYLAB_SOURCE_DIR;

TEST(topology, handson_loads) {
  std::vector<diagnostic> errors;
  const auto doc = load(source_dir + "/topologies/handson/handson.xml", errors);
  ASSERT_TRUE(doc) << errors.front().to_string();
  EXPECT_EQ(doc->name, "smtp-handson");
  EXPECT_EQ(doc->seed, 20201021u);
  // The network comes from the series' CloudFormation stacks (topologies/handson/cfn).
  ASSERT_EQ(doc->network.vpcs.size(), 1u);
  const auto& vpc = doc->network.vpcs[0];
  EXPECT_EQ(vpc.cidr, "192.168.2.0/24");
  EXPECT_EQ(vpc.internet_gateway, "YYYYMMDD-smtp-handson-igw");
  ASSERT_EQ(vpc.nat_gateways.size(), 1u);
  EXPECT_EQ(vpc.nat_gateways[0].subnet, "YYYYMMDD-smtp-handson-public-subnet");
  ASSERT_EQ(vpc.subnets.size(), 2u);
  EXPECT_EQ(vpc.subnets[0].cidr, "192.168.2.128/25");
  EXPECT_EQ(vpc.subnets[1].cidr, "192.168.2.0/25");
  ASSERT_EQ(vpc.security_groups.size(), 2u);
  const auto& sg = vpc.security_groups[1];
  EXPECT_EQ(sg.name, "sg_YYYYMMDD-smtp-handson-server");
  ASSERT_EQ(sg.ingress.size(), 3u);  // 22, 25 and the seed's 587
  EXPECT_EQ(sg.ingress[2].port_from, 587);
  EXPECT_EQ(sg.ingress[2].port_to, 587);
  EXPECT_EQ(sg.ingress[2].cidr, "0.0.0.0/0");
  const auto* relay = doc->find_host("YYYYMMDD-smtp-handson-server");
  ASSERT_TRUE(relay);
  EXPECT_EQ(relay->net.ipv4, "192.168.2.44");
  EXPECT_EQ(relay->net.public_ipv4, "203.0.113.44");
  const auto* client = doc->find_host("YYYYMMDD-smtp-handson-client");
  ASSERT_TRUE(client && client->client);
  EXPECT_EQ(client->net.ipv4, "192.168.2.132");
  ASSERT_TRUE(relay && relay->relay);
  EXPECT_NE(relay->relay->main_cf.text.find(
                "\nsmtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\n"),
            std::string::npos);
  // Dedented: main.cf lines start in column 1, the -o continuation keeps its indentation.
  EXPECT_EQ(relay->relay->main_cf.text.rfind("compatibility_level = 3.6\n", 0), 0u);
  EXPECT_NE(relay->relay->master_cf.text.find(
                "submission inet n       -       n       -       -       smtpd\n"
                "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"),
            std::string::npos);
  EXPECT_EQ(relay->relay->smtpd_conf.text, "pwcheck_method: auxprop\nmech_list: PLAIN\n");
  ASSERT_EQ(relay->relay->sasl_users.size(), 1u);
  EXPECT_EQ(relay->relay->sasl_users[0].realm, "example.com");
  const auto* mx = doc->find_host("aspmx.l.google.com");
  ASSERT_TRUE(mx);
  EXPECT_EQ(mx->net.ipv6, "2404:6800:4008:c07::1a");
  EXPECT_TRUE(mx->net.subnet.empty());
  ASSERT_EQ(doc->zones.size(), 1u);
  EXPECT_NE(doc->zones[0].text.find("aspmx.l.google.com A 108.177.97.26\n"), std::string::npos);
  ASSERT_GE(doc->scenarios.size(), 6u);
  EXPECT_EQ(doc->scenarios[1].name, "auth-plain-587");
  EXPECT_EQ(doc->scenarios[1].steps[0].send.port, 587);
  EXPECT_EQ(doc->scenarios[1].expectations[0].patterns.size(), 8u);
}

// A VPC with one /24 subnet, then `body`.
std::string group_topology(const std::string& body) {
  return "<topology name=\"t\">\n"                                           // 1
         "  <vpc name=\"v\" cidr=\"10.0.0.0/16\">\n"                         // 2
         "    <route-table name=\"rt\"><route destination=\"10.0.0.0/16\" "  // 3
         "target=\"local\"/></route-table>\n"
         "    <security-group name=\"sg\"/>\n"                                 // 4
         "    <subnet name=\"s\" cidr=\"10.0.1.0/24\" route-table=\"rt\"/>\n"  // 5
         "  </vpc>\n"                                                          // 6
         "  <host name=\"relay\" subnet=\"s\" ipv4=\"10.0.1.5\"/>\n" +         // 7
         body +
         "</topology>\n";
}

// <secondary-ipv4>: a VPC host's further addresses, each with its own public address or none.
TEST(topology, secondary_ipv4_addresses_of_a_host) {
  std::vector<diagnostic> errors;
  const auto doc =
      load(source_dir + "/testdata/topology/secondary/relay-two-addresses.xml", errors);
  ASSERT_TRUE(doc) << errors.front().to_string();
  const sim::host_spec* relay = nullptr;
  for (const auto& h : doc->network.hosts) {
    if (h.name == "relay") relay = &h;
  }
  ASSERT_NE(relay, nullptr);
  const std::vector<sim::secondary_ipv4_spec> want = {{"10.0.1.6", "203.0.113.6"},
                                                      {"10.0.1.7", ""}};
  EXPECT_EQ(relay->secondary_ipv4, want);
  errors.clear();
  EXPECT_FALSE(
      parse("<topology name=\"t\"><host name=\"h\" ipv4=\"198.51.100.1\">"
            "<secondary-ipv4 address=\"198.51.100.2\"/></host></topology>",
            "t.xml", ".", errors));
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].to_string(),
            "t.xml:1:20: error: <secondary-ipv4> is for a host in a subnet (with 'subnet')");
}

TEST(topology, host_group_expands_in_order_skipping_reserved_and_taken_addresses) {
  std::vector<diagnostic> errors;
  const auto doc = parse(group_topology("  <hosts name=\"clients\" count=\"3\" prefix=\"c-\" "
                                        "subnet=\"s\" security-groups=\"sg\"><client/></hosts>\n"
                                        "  <hosts count=\"2\" prefix=\"mx-\" "
                                        "cidr=\"198.51.100.0/30\"><mx port=\"2525\"/></hosts>\n"),
                         "t.xml", ".", errors);
  ASSERT_TRUE(doc) << errors.front().to_string();
  ASSERT_EQ(doc->hosts.size(), 6u);
  ASSERT_EQ(doc->network.hosts.size(), 6u);
  // .0-.3 are AWS's, .5 is the relay's.
  const char* expected[][2] = {{"c-1", "10.0.1.4"},
                               {"c-2", "10.0.1.6"},
                               {"c-3", "10.0.1.7"},
                               {"mx-1", "198.51.100.1"},
                               {"mx-2", "198.51.100.2"}};
  for (const auto& [name, ip] : expected) {
    const auto* h = doc->find_host(name);
    ASSERT_TRUE(h) << name;
    EXPECT_EQ(h->net.ipv4, ip) << name;
  }
  const auto* c2 = doc->find_host("c-2");
  EXPECT_TRUE(c2->client);
  EXPECT_EQ(c2->net.subnet, "s");
  EXPECT_EQ(c2->net.security_groups, std::vector<std::string>{"sg"});
  EXPECT_EQ(c2->where.to_string(), "t.xml:8:3");
  const auto* m = doc->find_host("mx-2");
  ASSERT_EQ(m->mx.size(), 1u);
  EXPECT_EQ(m->mx[0].port, 2525);
  EXPECT_TRUE(m->net.subnet.empty());
  ASSERT_EQ(doc->groups.size(), 2u);
  const auto* g = doc->find_group("clients");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->first, 1u);
  EXPECT_EQ(g->count, 3u);
  EXPECT_EQ(doc->hosts[g->first].net.name, "c-1");
}

// The first error of `body` in the group topology, as "LINE:COLUMN: message".
std::string group_error(const std::string& body) {
  std::vector<diagnostic> errors;
  const auto doc = parse(group_topology(body), "t.xml", ".", errors);
  if (doc || errors.empty()) return "no error";
  const auto& e = errors.front();
  return std::to_string(e.where.line) + ":" + std::to_string(e.where.column) + ": " + e.message;
}

TEST(topology, host_group_errors_name_the_place_and_what_was_expected) {
  EXPECT_EQ(group_error("  <hosts count=\"0\" prefix=\"c-\" subnet=\"s\"/>\n"),
            "8:10: attribute 'count': expected a whole number from 1 to 65536, got '0'");
  EXPECT_EQ(group_error("  <hosts count=\"65537\" prefix=\"c-\" subnet=\"s\"/>\n"),
            "8:10: attribute 'count': expected a whole number from 0 to 65536, got '65537'");
  // 256 - 5 reserved - the relay's = 250.
  EXPECT_EQ(group_error("  <hosts count=\"251\" prefix=\"c-\" subnet=\"s\"/>\n"),
            "8:10: attribute 'count': 251 hosts do not fit in subnet s (10.0.1.0/24): it has 250 "
            "free addresses (AWS reserves the first four and the last; other hosts hold 1)");
  EXPECT_EQ(group_error("  <hosts count=\"250\" prefix=\"c-\" subnet=\"s\"/>\n"), "no error");
  EXPECT_EQ(group_error("  <hosts count=\"3\" prefix=\"c-\" cidr=\"198.51.100.0/30\"/>\n"),
            "8:10: attribute 'count': 3 hosts do not fit in block 198.51.100.0/30: it has 2 free "
            "addresses (the first and the last are reserved)");
  EXPECT_EQ(group_error("  <host name=\"c-2\" ipv4=\"192.0.2.1\"/>\n"
                        "  <hosts count=\"3\" prefix=\"c-\" subnet=\"s\"/>\n"),
            "9:20: host 'c-2' of this <hosts> is already defined at t.xml:8:3");
  EXPECT_EQ(group_error("  <hosts count=\"2\" prefix=\"relay\" subnet=\"s\"/>\n"
                        "  <hosts count=\"1\" prefix=\"relay\" subnet=\"s\"/>\n"),
            "9:20: host 'relay1' of this <hosts> is already defined at t.xml:8:3");
  EXPECT_EQ(group_error("  <hosts name=\"g\" count=\"1\" prefix=\"a\" subnet=\"s\"/>\n"
                        "  <hosts name=\"g\" count=\"1\" prefix=\"b\" subnet=\"s\"/>\n"),
            "9:10: host group 'g' is already defined at t.xml:8:3");
  EXPECT_EQ(group_error("  <hosts count=\"1\" prefix=\"c-\" subnet=\"nowhere\"/>\n"),
            "8:32: attribute 'subnet': no subnet named 'nowhere'");
  EXPECT_EQ(group_error("  <hosts count=\"1\" prefix=\"c-\"/>\n"),
            "8:3: <hosts> needs attribute 'subnet' (a subnet's name) or 'cidr' (a block on the "
            "internet)");
  EXPECT_EQ(group_error("  <hosts count=\"1\" prefix=\"c-\" subnet=\"s\" cidr=\"10.0.0.0/8\"/>\n"),
            "8:43: <hosts> takes 'subnet' (a subnet's name) or 'cidr' (a block on the internet), "
            "not both");
  EXPECT_EQ(group_error("  <hosts count=\"1\" prefix=\"c-\" subnet=\"s\" ipv4=\"10.0.1.9\"/>\n"),
            "8:43: unknown attribute 'ipv4' on <hosts>; expected one of: name, count, prefix, "
            "subnet, cidr, security-groups, latency, jitter, bandwidth, loss");
  EXPECT_EQ(group_error("  <hosts count=\"1\" subnet=\"s\"/>\n"),
            "8:3: <hosts> needs attribute 'prefix'");
  EXPECT_EQ(group_error("  <hosts count=\"1\" prefix=\"c-\" subnet=\"s\"><relay/></hosts>\n"),
            "8:43: unexpected element <relay> inside <hosts>; expected <mx>, <client>");
  EXPECT_EQ(group_error("  <hosts count=\"1\" prefix=\"c-\" subnet=\"s\" "
                        "security-groups=\"nope\"/>\n"),
            "8:43: attribute 'security-groups': no security group named 'nope'");
  EXPECT_EQ(group_error("  <hosts count=\"1\" prefix=\"c-\" cidr=\"198.51.100.0/24\" "
                        "security-groups=\"sg\"/>\n"),
            "8:55: hosts outside every VPC (cidr=, no 'subnet') have no 'security-groups'");
}

TEST(topology, load_steps_drive_a_host_group) {
  const std::string groups = "  <hosts name=\"g\" count=\"3\" prefix=\"c-\" subnet=\"s\"/>\n";
  std::vector<diagnostic> errors;
  const auto doc =
      parse(group_topology(groups + "  <scenario name=\"x\">\n"
                                    "    <load name=\"a\" group=\"g\" server=\"10.0.1.5\" "
                                    "messages-per-host=\"4\"/>\n"
                                    "    <load name=\"b\" group=\"g\" server=\"10.0.1.5\" "
                                    "messages=\"10\"/>\n"
                                    "  </scenario>\n"),
            "t.xml", ".", errors);
  ASSERT_TRUE(doc) << errors.front().to_string();
  const auto& steps = doc->scenarios.at(0).steps;
  EXPECT_EQ(steps.at(0).load.group, "g");
  EXPECT_TRUE(steps.at(0).load.per_host);
  EXPECT_EQ(steps.at(0).load.messages, 4u);
  EXPECT_FALSE(steps.at(1).load.per_host);
  EXPECT_EQ(steps.at(1).load.messages, 10u);
  auto step_error = [&](const std::string& load) {
    return group_error(groups + "  <scenario name=\"x\">\n    " + load + "\n  </scenario>\n");
  };
  EXPECT_EQ(step_error("<load server=\"10.0.1.5\"/>"),
            "10:5: <load> needs exactly one of 'host' (a host's name) and 'group' (a <hosts name> "
            "group's)");
  EXPECT_EQ(step_error("<load host=\"c-1\" group=\"g\" server=\"10.0.1.5\"/>"),
            "10:5: <load> needs exactly one of 'host' (a host's name) and 'group' (a <hosts name> "
            "group's)");
  EXPECT_EQ(step_error("<load group=\"nope\" server=\"10.0.1.5\"/>"),
            "10:11: attribute 'group': no <hosts name=\"nope\"> in this topology");
  EXPECT_EQ(step_error("<load host=\"c-1\" server=\"10.0.1.5\" messages-per-host=\"2\"/>"),
            "10:40: attribute 'messages-per-host' needs attribute 'group' and no 'messages'");
  EXPECT_EQ(step_error("<load group=\"g\" server=\"10.0.1.5\" messages-per-host=\"5000000\"/>"),
            "10:39: attribute 'messages-per-host': 5000000 x 3 hosts is more than 10000000 "
            "messages");
}

// 20,000 hosts in two groups load (a measure of the loader's cost at scale, not a timed
// assertion).
TEST(topology, host_groups_of_ten_thousand) {
  const std::string xml =
      "<topology name=\"t\">\n"
      "  <vpc name=\"v\" cidr=\"10.0.0.0/16\">\n"
      "    <route-table name=\"rt\"><route destination=\"10.0.0.0/16\" target=\"local\"/>"
      "</route-table>\n"
      "    <subnet name=\"a\" cidr=\"10.0.0.0/18\" route-table=\"rt\"/>\n"
      "  </vpc>\n"
      "  <hosts count=\"10000\" prefix=\"c-\" subnet=\"a\"><client/></hosts>\n"
      "  <hosts count=\"10000\" prefix=\"i-\" cidr=\"198.18.0.0/16\"/>\n"
      "</topology>\n";
  std::vector<diagnostic> errors;
  const auto doc = parse(xml, "t.xml", ".", errors);
  ASSERT_TRUE(doc) << errors.front().to_string();
  ASSERT_EQ(doc->hosts.size(), 20000u);
  EXPECT_EQ(doc->hosts[9999].net.name, "c-10000");
  EXPECT_EQ(doc->hosts[9999].net.ipv4, "10.0.39.19");  // 4 + 9999 = 39 * 256 + 19
  EXPECT_EQ(doc->hosts[19999].net.ipv4, "198.18.39.16");
}

TEST(topology, inline_text_positions_map_back_to_the_xml) {
  const std::string xml =
      "<topology name=\"t\">\n"                  // 1
      "  <host name=\"h\" ipv4=\"10.0.0.1\">\n"  // 2
      "    <relay>\n"                            // 3
      "      <main-cf>\n"                        // 4
      "        myhostname = a\n"                 // 5
      "        bogus line\n"                     // 6
      "      </main-cf>\n"
      "    </relay>\n"
      "  </host>\n"
      "</topology>\n";
  std::vector<diagnostic> errors;
  const auto doc = parse(xml, "t.xml", ".", errors);
  ASSERT_TRUE(doc) << errors.front().to_string();
  const auto& t = doc->hosts[0].relay->main_cf;
  EXPECT_EQ(t.text, "myhostname = a\nbogus line\n");
  EXPECT_EQ(locate_in(t, 2, 1).to_string(), "t.xml:6:9");
  EXPECT_EQ(locate_in(t, 1, 3).to_string(), "t.xml:5:11");
}

TEST(topology, durations) {
  EXPECT_EQ(parse_duration_ms("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_duration_ms("30s"), std::chrono::milliseconds(30000));
  EXPECT_EQ(parse_duration_ms("1.5h"), std::chrono::milliseconds(5400000));
  EXPECT_EQ(parse_duration_ms("0"), std::chrono::milliseconds(0));
  EXPECT_FALSE(parse_duration_ms("5"));
  EXPECT_FALSE(parse_duration_ms("s"));
  EXPECT_FALSE(parse_duration_ms("5 s"));
  EXPECT_FALSE(parse_duration_ms("5parsecs"));
}

TEST(topology, errors_collect_more_than_one_problem) {
  const std::string xml =
      "<topology name=\"t\">\n"
      "  <host name=\"a\" ipv4=\"300.1.1.1\"/>\n"
      "  <host name=\"b\" ipv6=\"10.0.0.1\"/>\n"
      "</topology>\n";
  std::vector<diagnostic> errors;
  EXPECT_FALSE(parse(xml, "t.xml", ".", errors));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0].where.to_string(), "t.xml:2:18");
  EXPECT_EQ(errors[1].where.to_string(), "t.xml:3:18");
}

TEST(topology, egress_only_internet_gateway_is_a_route_target) {
  const std::string xml =
      "<topology name=\"t\">\n"
      "  <vpc name=\"v\" cidr=\"10.0.0.0/16\" ipv6-cidr=\"2600:1f18:100::/56\">\n"
      "    <egress-only-internet-gateway name=\"eigw\"/>\n"
      "    <route-table name=\"rt\">\n"
      "      <route destination=\"10.0.0.0/16\" target=\"local\"/>\n"
      "      <route destination=\"2600:1f18:100::/56\" target=\"local\"/>\n"
      "      <route destination=\"::/0\" target=\"eigw\"/>\n"
      "    </route-table>\n"
      "    <subnet name=\"s\" cidr=\"10.0.1.0/24\" ipv6-cidr=\"2600:1f18:100:1::/64\" "
      "route-table=\"rt\"/>\n"
      "  </vpc>\n"
      "  <host name=\"a\" subnet=\"s\" ipv4=\"10.0.1.10\" ipv6=\"2600:1f18:100:1::10\"/>\n"
      "  <host name=\"mx\" ipv4=\"108.177.97.26\" ipv6=\"2404:6800:4008:c07::1a\"/>\n"
      "</topology>\n";
  std::vector<diagnostic> errors;
  const auto doc = parse(xml, "t.xml", ".", errors);
  ASSERT_TRUE(doc) << errors.front().to_string();
  ASSERT_EQ(doc->network.vpcs.size(), 1u);
  const auto& v = doc->network.vpcs[0];
  EXPECT_EQ(v.egress_only_internet_gateway, "eigw");
  EXPECT_EQ(v.internet_gateway, "");
  ASSERT_EQ(v.route_tables.size(), 1u);
  ASSERT_EQ(v.route_tables[0].routes.size(), 3u);
  EXPECT_EQ(v.route_tables[0].routes[2].target, sim::route_target::egress_only_internet_gateway);
  EXPECT_EQ(v.route_tables[0].routes[2].target_name, "eigw");
  // The loaded network lets IPv6 out through it and no connection in.
  sim::world w;
  std::vector<sim::network_error> net_errors;
  sim::network net(w, doc->network, net_errors);
  ASSERT_TRUE(net_errors.empty()) << net_errors.front().what;
  ASSERT_FALSE(net.listen("mx", 25, [](sim::accepted) {}));
  ASSERT_FALSE(net.listen("a", 25, [](sim::accepted) {}));
  EXPECT_EQ(net.decide("a", "2404:6800:4008:c07::1a", 25).outcome, sim::verdict::connected);
  const auto in = net.decide("mx", "2600:1f18:100:1::10", 25);
  EXPECT_EQ(in.outcome, sim::verdict::dropped);
  EXPECT_NE(in.reason.find("egress-only internet gateway eigw"), std::string::npos) << in.reason;
}

TEST(topology, egress_only_internet_gateway_errors_name_line_and_column) {
  const std::string xml =
      "<topology name=\"t\">\n"
      "  <vpc name=\"v\" cidr=\"10.0.0.0/16\" ipv6-cidr=\"2600:1f18:100::/56\">\n"
      "    <egress-only-internet-gateway name=\"eigw\" subnet=\"x\"/>\n"
      "    <route-table name=\"rt\">\n"
      "      <route destination=\"0.0.0.0/0\" target=\"eigw\"/>\n"
      "      <route destination=\"::/0\" target=\"eigw-nope\"/>\n"
      "    </route-table>\n"
      "  </vpc>\n"
      "</topology>\n";
  std::vector<diagnostic> errors;
  EXPECT_FALSE(parse(xml, "t.xml", ".", errors));
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].where.to_string(), "t.xml:3:47");  // unknown attribute 'subnet'
  EXPECT_EQ(errors[1].to_string(),
            "t.xml:5:14: error: attribute 'destination': egress-only internet gateway 'eigw' "
            "carries IPv6 only; got the IPv4 block '0.0.0.0/0'");
  EXPECT_EQ(errors[2].where.to_string(), "t.xml:6:33");
  EXPECT_NE(errors[2].message.find("egress-only internet gateway"), std::string::npos);
}

TEST(topology, missing_file_is_an_error_naming_it) {
  std::vector<diagnostic> errors;
  EXPECT_FALSE(load(source_dir + "/testdata/topology/no-such-file.xml", errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].to_string().find("no-such-file.xml:1:1: error: cannot read"),
            std::string::npos);
}

TEST(topology, every_bad_file_fails_at_the_announced_place) {
  const fs::path dir = source_dir + "/testdata/topology/bad";
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".xml") continue;
    ++files;
    std::ifstream in(entry.path());
    std::string first;
    std::getline(in, first);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(first, m, std::regex(R"(expect: (\d+):(\d+) (.*) -->)")))
        << entry.path() << " lacks its expect comment";
    std::vector<diagnostic> errors;
    const auto doc = load(entry.path().string(), errors);
    // Files whose error is in an embedded relay configuration are valid topologies: the runner's
    // validate() finds their error (relaylab check, tests cli.check_bad.*).
    if (std::regex_search(m[3].str(),
                          std::regex(R"(^(in \S+ )?(main\.cf|master\.cf|smtpd\.conf): )"))) {
      EXPECT_TRUE(doc) << entry.path() << ": "
                       << (errors.empty() ? "" : errors.front().to_string());
      continue;
    }
    EXPECT_FALSE(doc) << entry.path();
    ASSERT_FALSE(errors.empty()) << entry.path();
    const auto& e = errors.front();
    // "in PATH message": an error in a file the topology refers to (an imported template).
    std::smatch in_file;
    std::string message = m[3].str();
    std::string file = entry.path().string();
    if (std::regex_search(message, in_file, std::regex(R"(^in (\S+) (.*))"))) {
      file = (entry.path().parent_path() / in_file[1].str()).lexically_normal().string();
      message = in_file[2].str();
    }
    EXPECT_EQ(e.where.file, file);
    EXPECT_EQ(std::to_string(e.where.line) + ":" + std::to_string(e.where.column),
              m[1].str() + ":" + m[2].str())
        << e.to_string();
    EXPECT_NE(e.message.find(message), std::string::npos) << e.to_string();
  }
  EXPECT_GE(files, 15u);
}

}  // namespace
}  // namespace relaylab::topology
