#include "relay/qmgr/router.hpp"

#include <gtest/gtest.h>

namespace relaylab::qmgr {
namespace {

routing_options base_options() {
  routing_options o;
  o.myhostname = "relay.example.com";
  o.local_transport = "local:relay.example.com";
  o.mydestination = {"relay.example.com", "localhost.example.com", "localhost"};
  return o;
}

std::shared_ptr<const maps::table> table(const std::string& spec) {
  std::string error;
  auto t = maps::open(spec, error);
  EXPECT_TRUE(t) << error;
  return t;
}

TEST(router, nexthop_forms) {
  delivery::next_hop h;
  ASSERT_TRUE(parse_nexthop("[127.0.0.1]:2525", h));
  EXPECT_EQ(h.host, "127.0.0.1");
  EXPECT_EQ(h.port, 2525);
  EXPECT_TRUE(h.no_mx);
  ASSERT_TRUE(parse_nexthop("[mail.example.com]", h));
  EXPECT_EQ(h.host, "mail.example.com");
  EXPECT_EQ(h.port, 25);
  EXPECT_TRUE(h.no_mx);
  ASSERT_TRUE(parse_nexthop("mail.example.com:587", h));
  EXPECT_EQ(h.host, "mail.example.com");
  EXPECT_EQ(h.port, 587);
  EXPECT_FALSE(h.no_mx);
  ASSERT_TRUE(parse_nexthop("example.com", h));
  EXPECT_FALSE(h.no_mx);
  EXPECT_FALSE(parse_nexthop("[unclosed:25", h));
  EXPECT_FALSE(parse_nexthop("[h]:0", h));
  EXPECT_FALSE(parse_nexthop("[h]:99999", h));
  EXPECT_FALSE(parse_nexthop("[]", h));
  EXPECT_FALSE(parse_nexthop("", h));
}

TEST(router, default_class_uses_domain_or_relayhost) {
  auto o = base_options();
  router r(o);
  EXPECT_EQ(hop_key(r.resolve("user@remote.example")), "smtp:remote.example");
  o.relayhost = "[127.0.0.1]:2525";
  router rh(o);
  const auto h = rh.resolve("user@remote.example");
  EXPECT_EQ(hop_key(h), "smtp:[127.0.0.1]:2525");
  EXPECT_TRUE(h.no_mx);
  o.relayhost = "smarthost.example";
  EXPECT_EQ(hop_key(router(o).resolve("user@remote.example")), "smtp:smarthost.example");
  o.default_transport = "relay";
  EXPECT_EQ(hop_key(router(o).resolve("user@remote.example")), "relay:smarthost.example");
}

TEST(router, mydestination_goes_local) {
  auto o = base_options();
  o.relayhost = "[127.0.0.1]:2525";
  router r(o);
  EXPECT_EQ(hop_key(r.resolve("nobody@localhost")), "local:relay.example.com");
  EXPECT_EQ(hop_key(r.resolve("Nobody@RELAY.example.com")), "local:relay.example.com");
  EXPECT_EQ(hop_key(r.resolve("postmaster")), "local:relay.example.com");
  EXPECT_TRUE(r.is_local_domain("LOCALHOST"));
  EXPECT_FALSE(r.is_local_domain("example.com"));
}

TEST(router, transport_maps_order_and_forms) {
  auto o = base_options();
  o.relayhost = "[127.0.0.1]:2525";
  o.transport_maps.push_back(
      table("inline:{ user@special.example=local:, special.example=smtp:[10.0.0.1]:2525, "
            ".sub.example=smtp:sub-gw.example, plain.example=smtp, gw.example=:[10.0.0.9], "
            "bracket.example=[10.0.0.7]:26, {err.example=error:5.1.2 no such domain}, "
            "drop.example=discard:, relay.example.com=smtp:[10.0.0.2] }"));
  router r(o);
  // Full address before domain.
  EXPECT_EQ(r.resolve("user@special.example").transport, "local");
  auto h = r.resolve("other@special.example");
  EXPECT_EQ(hop_key(h), "smtp:[10.0.0.1]:2525");
  // ".domain" matches subdomains only (transport_maps is not in
  // parent_domain_matches_transport_maps).
  EXPECT_EQ(hop_key(r.resolve("a@x.sub.example")), "smtp:sub-gw.example");
  EXPECT_EQ(hop_key(r.resolve("a@y.x.sub.example")), "smtp:sub-gw.example");
  EXPECT_EQ(hop_key(r.resolve("a@sub.example")), "smtp:[127.0.0.1]:2525");
  // A transport without next hop keeps the default next hop (relayhost here).
  EXPECT_EQ(hop_key(r.resolve("a@plain.example")), "smtp:[127.0.0.1]:2525");
  // An empty transport keeps the default transport.
  EXPECT_EQ(hop_key(r.resolve("a@gw.example")), "smtp:[10.0.0.9]");
  EXPECT_EQ(hop_key(r.resolve("a@bracket.example")), "smtp:[10.0.0.7]:26");
  h = r.resolve("a@err.example");
  EXPECT_EQ(h.transport, "error");
  EXPECT_EQ(h.text, "5.1.2 no such domain");
  h = r.resolve("a@drop.example");
  EXPECT_EQ(h.transport, "discard");
  EXPECT_EQ(h.text, "");
  // transport_maps wins over the local class.
  EXPECT_EQ(hop_key(r.resolve("a@relay.example.com")), "smtp:[10.0.0.2]");
}

TEST(router, wildcard_is_last) {
  auto o = base_options();
  o.transport_maps.push_back(table("inline:{*=smtp:[10.9.9.9], one.example=smtp:[10.1.1.1]}"));
  router r(o);
  EXPECT_EQ(hop_key(r.resolve("a@one.example")), "smtp:[10.1.1.1]");
  EXPECT_EQ(hop_key(r.resolve("a@two.example")), "smtp:[10.9.9.9]");
}

TEST(router, bad_values_become_errors) {
  auto o = base_options();
  o.transport_maps.push_back(table("inline:{x.example=smtp:[10.0.0.1]:notaport}"));
  router r(o);
  const auto h = r.resolve("a@x.example");
  EXPECT_EQ(h.transport, "error");
  EXPECT_NE(h.text.find("bad next hop"), std::string::npos);
  auto o2 = base_options();
  o2.relayhost = "[broken";
  EXPECT_EQ(router(o2).resolve("a@y.example").transport, "error");
}

}  // namespace
}  // namespace relaylab::qmgr
