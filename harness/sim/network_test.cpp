// Routing, security group and network ACL decisions, and what a connecting client sees.
#include "harness/sim/network.hpp"
#include "harness/sim/test_support.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace relaylab::sim {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct fixture : ::testing::Test {
  world w{world_options{7, {}}};
  std::vector<network_error> errors;
  network net{w, test::handson_network(), errors};
  void SetUp() override {
    ASSERT_TRUE(errors.empty()) << errors.front().what;
    for (std::uint16_t p : {25, 587, 2525}) {
      ASSERT_FALSE(net.listen("relay", p, [](accepted) {}));
    }
    ASSERT_FALSE(net.listen("mx", 25, [](accepted) {}));
  }
  struct attempt {
    std::error_code ec;
    time_point at{-1};
    bool connected = false;
  };
  attempt connect(const std::string& from, const std::string& addr, std::uint16_t port,
                  duration timeout = 30s) {
    attempt a;
    const time_point start = w.now();
    net.async_connect(from, addr, port, timeout,
                      [&](std::error_code ec, std::unique_ptr<socket> s) {
                        a.ec = ec;
                        a.at = w.now() - start;
                        a.connected = s != nullptr;
                      });
    w.run();
    return a;
  }
};

TEST_F(fixture, private_client_reaches_relay_on_587_and_25) {
  EXPECT_EQ(net.decide("client", "192.168.2.44", 587).outcome, verdict::connected);
  EXPECT_EQ(net.decide("client", "192.168.2.44", 25).outcome, verdict::connected);
  const auto a = connect("client", "192.168.2.44", 587);
  EXPECT_FALSE(a.ec);
  EXPECT_TRUE(a.connected);
}

TEST_F(fixture, ipv6_without_address_or_route_is_network_unreachable_at_once) {
  const auto d = net.decide("relay", "2404:6800:4008:c07::1a", 25);
  EXPECT_EQ(d.outcome, verdict::unreachable) << d.reason;
  const auto a = connect("relay", "2404:6800:4008:c07::1a", 25);
  EXPECT_EQ(a.ec, std::errc::network_unreachable);
  EXPECT_EQ(a.at, duration(0));
}

TEST_F(fixture, no_matching_route_is_network_unreachable) {
  const auto d = net.decide("client", "108.177.97.26", 25);
  EXPECT_EQ(d.outcome, verdict::unreachable);
  EXPECT_NE(d.reason.find("rt-private"), std::string::npos) << d.reason;
}

TEST_F(fixture, relay_reaches_internet_mx_through_the_internet_gateway) {
  const auto d = net.decide("relay", "108.177.97.26", 25);
  EXPECT_EQ(d.outcome, verdict::connected) << d.reason;
  EXPECT_EQ(d.seen_address, "203.0.113.44");  // the relay's public address
}

TEST_F(fixture, security_group_without_the_port_drops_the_syn_and_connect_times_out) {
  // Nothing in sg-server allows 2526 ... and from the internet only 587 is open.
  EXPECT_EQ(net.decide("mx", "203.0.113.44", 25).outcome, verdict::dropped);
  EXPECT_EQ(net.decide("mx", "203.0.113.44", 587).outcome, verdict::connected);
  const auto a = connect("mx", "203.0.113.44", 25, 30s);
  EXPECT_EQ(a.ec, std::errc::timed_out);
  EXPECT_EQ(a.at, duration(30s));
  EXPECT_FALSE(a.connected);
}

TEST_F(fixture, closed_port_is_refused_after_a_round_trip) {
  ASSERT_FALSE(net.change_sg_rule("sg-server", true, {"tcp", 26, 26, "0.0.0.0/0", "", ""}, true));
  const auto a = connect("client", "192.168.2.44", 26);
  EXPECT_EQ(a.ec, std::errc::connection_refused);
  EXPECT_GT(a.at, duration(0));
  EXPECT_LT(a.at, duration(1s));
}

TEST_F(fixture, removing_the_sg_rule_turns_success_into_a_timeout) {
  ASSERT_EQ(net.decide("client", "192.168.2.44", 587).outcome, verdict::connected);
  ASSERT_FALSE(
      net.change_sg_rule("sg-server", true, {"tcp", 587, 587, "0.0.0.0/0", "", ""}, false));
  EXPECT_EQ(net.decide("client", "192.168.2.44", 587).outcome, verdict::dropped);
  EXPECT_TRUE(net.change_sg_rule("sg-server", true, {"tcp", 587, 587, "0.0.0.0/0", "", ""}, false));
}

TEST_F(fixture, sg_rule_naming_another_group_matches_its_members_only) {
  EXPECT_EQ(net.decide("client", "192.168.2.44", 2525).outcome, verdict::connected);
  EXPECT_EQ(net.decide("natted", "192.168.2.44", 2525).outcome, verdict::dropped);
}

TEST_F(fixture, nat_gateway_translates_and_blackhole_drops) {
  const auto d = net.decide("natted", "108.177.97.26", 25);
  EXPECT_EQ(d.outcome, verdict::connected) << d.reason;
  EXPECT_EQ(d.seen_address, "203.0.113.20");
  EXPECT_EQ(net.decide("natted", "198.51.100.7", 25).outcome, verdict::dropped);
}

TEST_F(fixture, nacl_rules_are_ordered_by_number_and_default_deny) {
  ASSERT_FALSE(net.listen("mx", 465, [](accepted) {}));
  const auto d = net.decide("natted", "108.177.97.26", 465);
  EXPECT_EQ(d.outcome, verdict::dropped);
  EXPECT_NE(d.reason.find("rule 100"), std::string::npos) << d.reason;
}

TEST_F(fixture, crashed_host_and_down_link_drop_silently) {
  ASSERT_FALSE(net.crash_host("mx"));
  EXPECT_EQ(net.decide("relay", "108.177.97.26", 25).outcome, verdict::dropped);
  ASSERT_FALSE(net.restart_host("mx"));
  ASSERT_FALSE(net.set_link_up("internet", false));
  EXPECT_EQ(net.decide("relay", "108.177.97.26", 25).outcome, verdict::dropped);
  ASSERT_FALSE(net.set_link_up("internet", true));
  net.partition({"relay"}, {"mx"});
  EXPECT_EQ(net.decide("relay", "108.177.97.26", 25).outcome, verdict::dropped);
  net.heal();
  EXPECT_EQ(net.decide("relay", "108.177.97.26", 25).outcome, verdict::connected);
  EXPECT_TRUE(net.set_link_up("no-such-link", false));
}

// A dual-stack VPC as widdix's vpc-2azs builds it: the private subnet's IPv4 goes nowhere, its
// IPv6 ::/0 goes to an egress-only internet gateway; the public subnet's ::/0 to the IGW.
network_spec egress_only_network() {
  network_spec n;
  vpc_spec v;
  v.name = "vpc";
  v.cidr = "10.0.0.0/16";
  v.cidr6 = "2600:1f18:100::/56";
  v.internet_gateway = "igw";
  v.egress_only_internet_gateway = "eigw";
  v.route_tables.push_back({"rt-public",
                            {{"10.0.0.0/16", route_target::local, ""},
                             {"2600:1f18:100::/56", route_target::local, ""},
                             {"0.0.0.0/0", route_target::internet_gateway, "igw"},
                             {"::/0", route_target::internet_gateway, "igw"}}});
  v.route_tables.push_back({"rt-private",
                            {{"10.0.0.0/16", route_target::local, ""},
                             {"2600:1f18:100::/56", route_target::local, ""},
                             {"::/0", route_target::egress_only_internet_gateway, "eigw"}}});
  v.subnets.push_back({"public", "10.0.0.0/24", "2600:1f18:100::/64", "rt-public", "", {}});
  v.subnets.push_back({"private", "10.0.1.0/24", "2600:1f18:100:1::/64", "rt-private", "", {}});
  security_group_spec open;
  open.name = "sg-open";
  open.ingress.push_back({"tcp", 25, 25, "::/0", "", ""});
  open.egress.push_back({"all", 0, 65535, "0.0.0.0/0", "", ""});
  open.egress.push_back({"all", 0, 65535, "::/0", "", ""});
  v.security_groups.push_back(open);
  n.vpcs.push_back(v);
  host_spec priv;
  priv.name = "private";
  priv.subnet = "private";
  priv.ipv4 = "10.0.1.10";
  priv.ipv6 = "2600:1f18:100:1::10";
  priv.security_groups = {"sg-open"};
  n.hosts.push_back(priv);
  host_spec pub;
  pub.name = "public";
  pub.subnet = "public";
  pub.ipv4 = "10.0.0.10";
  pub.ipv6 = "2600:1f18:100::10";
  pub.security_groups = {"sg-open"};
  n.hosts.push_back(pub);
  host_spec mx;
  mx.name = "mx";
  mx.ipv4 = "108.177.97.26";
  mx.ipv6 = "2404:6800:4008:c07::1a";
  n.hosts.push_back(mx);
  return n;
}

TEST(network, egress_only_gateway_lets_ipv6_out_with_the_hosts_own_address) {
  world w;
  std::vector<network_error> errors;
  network net(w, egress_only_network(), errors);
  ASSERT_TRUE(errors.empty()) << errors.front().what;
  ASSERT_FALSE(net.listen("mx", 25, [](accepted) {}));
  const auto d = net.decide("private", "2404:6800:4008:c07::1a", 25, true);
  EXPECT_EQ(d.outcome, verdict::connected) << d.reason;
  EXPECT_EQ(d.source_address, "2600:1f18:100:1::10");
  EXPECT_EQ(d.seen_address, "2600:1f18:100:1::10");  // no NAT
  ASSERT_FALSE(d.hops.empty());
  EXPECT_EQ(d.hops.front(),
            "route table rt-private of subnet private: ::/0 → egress-only internet gateway eigw");
  // IPv4 has no route out of the private subnet at all.
  EXPECT_EQ(net.decide("private", "108.177.97.26", 25).outcome, verdict::unreachable);
}

TEST(network, egress_only_gateway_lets_no_connection_in) {
  world w;
  std::vector<network_error> errors;
  network net(w, egress_only_network(), errors);
  ASSERT_TRUE(errors.empty()) << errors.front().what;
  ASSERT_FALSE(net.listen("private", 25, [](accepted) {}));
  ASSERT_FALSE(net.listen("public", 25, [](accepted) {}));
  const auto in = net.decide("mx", "2600:1f18:100:1::10", 25);
  EXPECT_EQ(in.outcome, verdict::dropped);
  EXPECT_EQ(in.reason,
            "egress-only internet gateway eigw of VPC vpc lets no connection in from the internet "
            "(route table rt-private sends the reply to 2404:6800:4008:c07::1a through it)");
  // The public subnet's replies go through the internet gateway: that one gets in.
  EXPECT_EQ(net.decide("mx", "2600:1f18:100::10", 25).outcome, verdict::connected);
  // Between the two subnets the VPC's local route carries it.
  const auto local = net.decide("public", "2600:1f18:100:1::10", 25);
  EXPECT_EQ(local.outcome, verdict::connected) << local.reason;
}

TEST(network, egress_only_gateway_routes_are_checked) {
  world w;
  {
    auto spec = egress_only_network();
    spec.vpcs[0].route_tables[1].routes.push_back(
        {"0.0.0.0/0", route_target::egress_only_internet_gateway, "eigw"});
    std::vector<network_error> errors;
    network n(w, spec, errors);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].what,
              "route table rt-private: egress-only internet gateway eigw carries IPv6 only, not "
              "0.0.0.0/0");
  }
  {
    auto spec = egress_only_network();
    spec.vpcs[0].egress_only_internet_gateway = "";
    std::vector<network_error> errors;
    network n(w, spec, errors);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].what,
              "route table rt-private: unknown egress-only internet gateway 'eigw'");
  }
}

TEST(network, bad_specs_are_reported) {
  world w;
  auto spec = test::handson_network();
  spec.hosts[0].ipv4 = "10.9.9.9";  // outside its subnet
  spec.hosts[1].security_groups = {"sg-nope"};
  spec.vpcs[0].subnets[0].route_table = "rt-nope";
  std::vector<network_error> errors;
  network n(w, spec, errors);
  ASSERT_EQ(errors.size(), 3u);
}

// Secondary private addresses answer as the host: its listeners, its security groups, a
// public address mapped 1:1 to each; the host's own connections leave from its primary address.
TEST(network_secondary_ipv4, answers_as_the_host_with_its_groups) {
  world w{world_options{7, {}}};
  std::vector<network_error> errors;
  auto spec = test::handson_network();
  for (auto& h : spec.hosts) {
    if (h.name == "relay")
      h.secondary_ipv4 = {{"192.168.2.45", "203.0.113.45"}, {"192.168.2.46", ""}};
  }
  network net{w, spec, errors};
  ASSERT_TRUE(errors.empty()) << errors.front().what;
  std::string local;
  ASSERT_FALSE(net.listen("relay", 587, [&](accepted a) { local = a.local_address; }));
  ASSERT_FALSE(net.listen("relay", 25, [](accepted) {}));
  EXPECT_EQ(net.decide("client", "192.168.2.46", 587).outcome, verdict::connected);
  EXPECT_EQ(net.decide("client", "192.168.2.45", 25).outcome, verdict::connected);
  // From the internet: sg-server takes 587 from anywhere, 25 from the VPC only.
  EXPECT_EQ(net.decide("mx", "203.0.113.45", 587).outcome, verdict::connected);
  EXPECT_EQ(net.decide("mx", "203.0.113.45", 25).outcome, verdict::dropped);
  // The private secondary address is not routed from the internet.
  EXPECT_EQ(net.decide("mx", "192.168.2.46", 587).outcome, verdict::dropped);
  net.async_connect("mx", "203.0.113.45", 587, std::chrono::seconds(30),
                    [](std::error_code, std::unique_ptr<socket>) {});
  w.run();
  EXPECT_EQ(local, "192.168.2.45");  // the 1:1 NAT gives the secondary private address
  EXPECT_EQ(net.decide("relay", "108.177.97.26", 25).source_address, "192.168.2.44");
}

TEST(network_secondary_ipv4, outside_the_subnet_or_twice_is_an_error) {
  world w{world_options{7, {}}};
  std::vector<network_error> errors;
  auto spec = test::handson_network();
  for (auto& h : spec.hosts) {
    if (h.name == "relay") {
      h.secondary_ipv4 = {
          {"192.168.3.9", ""}, {"192.168.2.44", ""}, {"192.168.2.50", ""}, {"192.168.2.50", ""}};
    }
  }
  network net{w, spec, errors};
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].what,
            "host relay: secondary ipv4 192.168.3.9 is not in subnet public (192.168.2.0/24)");
  EXPECT_EQ(errors[1].what, "host relay: secondary ipv4 192.168.2.44 is its primary address");
  EXPECT_EQ(errors[2].what, "host relay: secondary ipv4 192.168.2.50 twice");
}

}  // namespace
}  // namespace relaylab::sim
