// A small VPC shared by the sim tests: the hands-on layout (public subnet with the relay,
// private subnet with the client, Gmail's MX on the internet).
#pragma once

#include "harness/sim/network.hpp"

namespace relaylab::sim::test {

inline network_spec handson_network() {
  network_spec n;
  vpc_spec v;
  v.name = "vpc";
  v.cidr = "192.168.0.0/16";
  v.internet_gateway = "igw";
  v.nat_gateways.push_back({"nat", "public", "203.0.113.20"});
  v.route_tables.push_back({"rt-public",
                            {{"192.168.0.0/16", route_target::local, ""},
                             {"0.0.0.0/0", route_target::internet_gateway, "igw"}}});
  v.route_tables.push_back({"rt-private", {{"192.168.0.0/16", route_target::local, ""}}});
  v.route_tables.push_back({"rt-nat",
                            {{"192.168.0.0/16", route_target::local, ""},
                             {"0.0.0.0/0", route_target::nat_gateway, "nat"},
                             {"198.51.100.0/24", route_target::blackhole, ""}}});
  v.subnets.push_back({"public", "192.168.2.0/24", "", "rt-public", "", {}});
  v.subnets.push_back({"private", "192.168.3.0/24", "", "rt-private", "", {}});
  v.subnets.push_back({"natted", "192.168.4.0/24", "", "rt-nat", "acl", {}});
  security_group_spec server;
  server.name = "sg-server";
  server.ingress.push_back({"tcp", 587, 587, "0.0.0.0/0", "", ""});
  server.ingress.push_back({"tcp", 25, 25, "192.168.0.0/16", "", ""});
  server.ingress.push_back({"tcp", 2525, 2525, "", "sg-client", ""});
  server.egress.push_back({"all", 0, 65535, "0.0.0.0/0", "", ""});
  server.egress.push_back({"all", 0, 65535, "::/0", "", ""});
  v.security_groups.push_back(server);
  security_group_spec client;
  client.name = "sg-client";
  client.egress.push_back({"all", 0, 65535, "0.0.0.0/0", "", ""});
  v.security_groups.push_back(client);
  nacl_spec acl;
  acl.name = "acl";
  acl.outbound.push_back({100, false, "tcp", 465, 465, "0.0.0.0/0"});
  acl.outbound.push_back({200, true, "all", 0, 65535, "0.0.0.0/0"});
  acl.inbound.push_back({100, true, "tcp", 1024, 65535, "0.0.0.0/0"});
  v.nacls.push_back(acl);
  n.vpcs.push_back(v);
  host_spec relay;
  relay.name = "relay";
  relay.subnet = "public";
  relay.ipv4 = "192.168.2.44";
  relay.public_ipv4 = "203.0.113.44";
  relay.security_groups = {"sg-server"};
  n.hosts.push_back(relay);
  host_spec cl;
  cl.name = "client";
  cl.subnet = "private";
  cl.ipv4 = "192.168.3.10";
  cl.security_groups = {"sg-client"};
  n.hosts.push_back(cl);
  host_spec natted;
  natted.name = "natted";
  natted.subnet = "natted";
  natted.ipv4 = "192.168.4.10";
  n.hosts.push_back(natted);
  host_spec mx;
  mx.name = "mx";
  mx.ipv4 = "108.177.97.26";
  mx.ipv6 = "2404:6800:4008:c07::1a";
  mx.link.latency = std::chrono::milliseconds(10);
  n.hosts.push_back(mx);
  host_spec outside;
  outside.name = "outside";
  outside.ipv4 = "198.51.100.7";
  n.hosts.push_back(outside);
  return n;
}

}  // namespace relaylab::sim::test
