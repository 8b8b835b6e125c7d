// The simulated network: VPCs, subnets, route tables, internet/NAT gateways, security groups,
// network ACLs, hosts inside and outside ("internet") the VPCs, and TCP-like byte streams
// between them on the world's virtual clock.
//
// Connection outcomes, as a Linux client on AWS sees them:
// - the source host has no address of the destination's family, or its subnet's route table
//   has no route for the destination: network_unreachable, at once ("Network is unreachable");
// - anything that silently drops the SYN (blackhole route, security group, network ACL, no
//   public address for the return path, a crashed host, a down link, a partition, nobody owning
//   the address): nothing comes back, so the connect times out after the caller's timeout;
// - the destination host is up and reachable but nothing listens on the port: one round trip,
//   then connection_refused.
// Security groups are stateful (replies always pass); network ACLs are stateless (the reply's
// ephemeral port must also be allowed, both ways) and apply only when traffic crosses a subnet
// boundary.
//
// Streams are reliable and ordered. Each direction has a window (bytes in flight plus unread);
// data arrives after latency + jitter + size/bandwidth, and a lost segment costs a
// retransmission timeout instead of disappearing. When the path breaks (link down, partition,
// crashed peer) data is retransmitted with backoff; after retransmits_max attempts the sender's
// end fails with timed_out. A peer that crashed and came back answers with a reset.
#pragma once

#include "harness/sim/address.hpp"
#include "harness/sim/timer.hpp"
#include "harness/sim/world.hpp"
#include "relay/net/stream.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

namespace relaylab::sim {

// ---------------------------------------------------------------------------------------------
// Description (plain data; the topology loader fills it in).

struct link_spec {
  duration latency{std::chrono::microseconds(250)};  // one way
  duration jitter{0};                                // uniform extra delay in [0, jitter]
  std::uint64_t bandwidth_bps = 0;                   // 0 = unlimited
  double loss = 0;                                   // probability a segment is retransmitted
};

/// egress_only_internet_gateway: IPv6 only; out to the internet with the host's own IPv6
/// address, replies back in, and no connection from the internet ever in through it.
enum class route_target {
  local,
  internet_gateway,
  nat_gateway,
  blackhole,
  egress_only_internet_gateway
};

struct route_spec {
  std::string destination;  // CIDR, "0.0.0.0/0", "::/0"
  route_target target = route_target::local;
  std::string target_name;  // gateway name for igw/nat/egress-only igw
};

struct route_table_spec {
  std::string name;
  std::vector<route_spec> routes;
};

struct sg_rule {
  std::string protocol = "tcp";  // "tcp" or "all"
  std::uint16_t port_from = 0;
  std::uint16_t port_to = 65535;
  std::string cidr;   // peer CIDR, or
  std::string group;  // peer security group (members' private addresses)
  std::string description;
  bool operator==(const sg_rule&) const = default;
};

struct security_group_spec {
  std::string name;
  std::vector<sg_rule> ingress;
  std::vector<sg_rule> egress;
};

struct nacl_rule {
  int number = 100;
  bool allow = true;
  std::string protocol = "all";
  std::uint16_t port_from = 0;
  std::uint16_t port_to = 65535;
  std::string cidr = "0.0.0.0/0";
};

struct nacl_spec {
  std::string name;
  std::vector<nacl_rule> inbound;
  std::vector<nacl_rule> outbound;
};

struct subnet_spec {
  std::string name;
  std::string cidr;
  std::string cidr6;  // "" = no IPv6 in this subnet
  std::string route_table;
  std::string nacl;  // "" = allow everything
  link_spec link;
};

struct nat_gateway_spec {
  std::string name;
  std::string subnet;
  std::string public_ip;
};

struct vpc_spec {
  std::string name;
  std::string cidr;
  std::string cidr6;
  std::string internet_gateway;  // name, "" = none
  /// An IPv6 egress-only internet gateway attached to this VPC (AWS: one VpcId), "" = none.
  std::string egress_only_internet_gateway;
  std::vector<nat_gateway_spec> nat_gateways;
  std::vector<subnet_spec> subnets;
  std::vector<route_table_spec> route_tables;
  std::vector<security_group_spec> security_groups;
  std::vector<nacl_spec> nacls;
};

/// A VPC host's further private IPv4 address (AWS: a secondary private address of its
/// interface), with the public address mapped to it 1:1, if any (an EIP associated with it).
/// It answers as the host does: the same listeners, the same security groups. The host's own
/// connections leave from its primary address.
struct secondary_ipv4_spec {
  std::string address;
  std::string public_ipv4;
  bool operator==(const secondary_ipv4_spec&) const = default;
};

struct host_spec {
  std::string name;
  std::string subnet;  // "" = a host on the internet, outside every VPC
  std::string ipv4;    // private address in the subnet, or the internet address
  std::string public_ipv4;
  std::vector<secondary_ipv4_spec> secondary_ipv4;  // VPC hosts only
  std::string ipv6;
  std::vector<std::string> security_groups;  // empty = unfiltered
  link_spec link;                            // for internet hosts (VPC hosts use the subnet's)
};

struct network_spec {
  std::vector<vpc_spec> vpcs;
  std::vector<host_spec> hosts;
  link_spec internet;  // the path between an internet gateway and the internet hosts
};

// ---------------------------------------------------------------------------------------------

/// What a connection attempt from `source` to `address:port` would meet, now.
enum class verdict { connected, unreachable, dropped, refused };
std::string_view to_string(verdict v) noexcept;

struct path_decision {
  verdict outcome = verdict::dropped;
  std::string reason;          // "no route to 2404:6800::/..", "security group sg-x denies ..."
  std::string source_address;  // local address of the client end
  std::string seen_address;    // the client address as the server sees it (after NAT)
  std::string destination_host;
  link_spec path;                  // combined one-way properties
  std::vector<std::string> links;  // link names the path uses (for link faults)
  /// With decide(..., explain = true): each hop and the rule that let the connection through
  /// it ("route table rt-pri: 192.168.2.0/24 local", "security group sg-x ingress tcp 587 from
  /// 0.0.0.0/0"); `reason` says what dropped it.
  std::vector<std::string> hops;
};

class network;
struct connection_state;

/// One end of a simulated TCP connection. Satisfies Asio's AsyncReadStream/AsyncWriteStream
/// (for relay/net's driver) and, through byte_stream_adapter, net::byte_stream.
class socket {
 public:
  using executor_type = boost::asio::any_io_executor;
  /// A sim socket is its own lowest layer (so it can sit under asio::ssl::stream and
  /// tls::server_stream as a tcp::socket does).
  using lowest_layer_type = socket;
  socket(std::shared_ptr<connection_state> c, int side);
  ~socket();
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;

  executor_type get_executor() const noexcept;

  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return async_read_some_for(buffers, duration::max(), std::forward<Token>(token));
  }
  /// As async_read_some; completes with std::errc::timed_out after `timeout`.
  template <class MutableBufferSequence, class Token>
  auto async_read_some_for(const MutableBufferSequence& buffers, duration timeout, Token&& token) {
    std::vector<boost::asio::mutable_buffer> bufs(boost::asio::buffer_sequence_begin(buffers),
                                                  boost::asio::buffer_sequence_end(buffers));
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this, timeout](auto handler, std::vector<boost::asio::mutable_buffer> b) {
          start_read(std::move(b), timeout,
                     detail::make_op<void(boost::system::error_code, std::size_t)>(
                         std::move(handler), get_executor()));
        },
        token, std::move(bufs));
  }
  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return async_write_some_for(buffers, duration::max(), std::forward<Token>(token));
  }
  template <class ConstBufferSequence, class Token>
  auto async_write_some_for(const ConstBufferSequence& buffers, duration timeout, Token&& token) {
    std::string data;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      const boost::asio::const_buffer b(*it);
      data.append(static_cast<const char*>(b.data()), b.size());
    }
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this, timeout](auto handler, std::string d) {
          start_write(std::move(d), timeout,
                      detail::make_op<void(boost::system::error_code, std::size_t)>(
                          std::move(handler), get_executor()));
        },
        token, std::move(data));
  }

  /// Sends FIN after the data already written; pending operations of this end complete with
  /// operation_aborted. Idempotent.
  void close(boost::system::error_code& ec);
  void close() {
    boost::system::error_code ec;
    close(ec);
  }
  bool is_open() const noexcept;
  socket& lowest_layer() noexcept { return *this; }
  /// Completes this end's pending read and write with operation_aborted; the connection
  /// stays open.
  void cancel(boost::system::error_code& ec);
  // No write-at-once path (relay/net/write_now.hpp): every write goes through the network.
  bool non_blocking() const noexcept { return false; }
  void non_blocking(bool, boost::system::error_code& ec) noexcept { ec = {}; }
  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence&, boost::system::error_code& ec) noexcept {
    ec = boost::asio::error::would_block;
    return 0;
  }

  const std::string& local_address() const noexcept;
  std::uint16_t local_port() const noexcept;
  const std::string& remote_address() const noexcept;
  std::uint16_t remote_port() const noexcept;
  const std::string& host() const noexcept;

 private:
  void start_read(std::vector<boost::asio::mutable_buffer> bufs, duration timeout,
                  std::unique_ptr<detail::pending_op> op);
  void start_write(std::string data, duration timeout, std::unique_ptr<detail::pending_op> op);

  std::shared_ptr<connection_state> c_;
  int side_;
};

/// net::byte_stream over a sim::socket (for the delivery agent, fake clients).
class byte_stream_adapter final : public net::byte_stream {
 public:
  explicit byte_stream_adapter(std::unique_ptr<socket> s) : s_(std::move(s)) {}
  boost::asio::awaitable<std::size_t> read_some(std::span<char> buffer, net::duration timeout,
                                                std::error_code& ec) override;
  boost::asio::awaitable<void> write_all(std::span<const char> data, net::duration timeout,
                                         std::error_code& ec) override;
  void close() noexcept override;
  std::string local_address() const override;
  socket& lowest() noexcept { return *s_; }

 private:
  std::unique_ptr<socket> s_;
};

struct accepted {
  std::unique_ptr<socket> stream;
  std::string remote_address;  // as seen by the server (after NAT)
  std::uint16_t remote_port = 0;
  std::string local_address;
  std::uint16_t local_port = 0;
};

/// Called on the io_context for each connection a listener accepts.
using accept_handler = std::function<void(accepted)>;

struct network_limits {
  std::size_t window_bytes = 256 * 1024;
  std::size_t segment_bytes = 64 * 1024;  // one delivery event carries at most this much
  int retransmits_max = 15;
  duration retransmit_first{std::chrono::milliseconds(200)};
  duration retransmit_max{std::chrono::seconds(120)};
  duration syn_retransmit{std::chrono::seconds(1)};  // a lost SYN costs this
};

/// Errors found while building the network (unknown names, bad CIDRs ...).
struct network_error {
  std::string what;
};

class network {
 public:
  /// Builds the model; problems are appended to `errors` (the network is then unusable).
  network(world& w, network_spec spec, std::vector<network_error>& errors,
          network_limits limits = {});
  ~network();
  network(const network&) = delete;
  network& operator=(const network&) = delete;

  world& owner() noexcept { return world_; }
  const network_spec& spec() const noexcept { return spec_; }
  bool has_host(const std::string& name) const;

  /// What a connection from `source` to address:port meets right now (no side effects; used
  /// by connect() and by `relaylab draw`/tests).
  path_decision decide(const std::string& source, const std::string& address, std::uint16_t port,
                       bool explain = false) const;

  /// Accepts connections to `port` on every address of `host`. Errors: unknown host,
  /// address_in_use.
  std::error_code listen(const std::string& host, std::uint16_t port, accept_handler handler);
  void unlisten(const std::string& host, std::uint16_t port);

  /// Asio-style connect: completes with (error, socket) as described in the header comment.
  /// Errors: network_unreachable, connection_refused, timed_out, host_unreachable (the source
  /// host is down).
  void async_connect(const std::string& source, const std::string& address, std::uint16_t port,
                     duration timeout,
                     std::function<void(std::error_code, std::unique_ptr<socket>)> done);

  // Faults. All take effect at the current virtual time.
  /// `link` is a subnet name, an internet host name, or "internet". Errors: unknown name.
  std::error_code set_link_up(const std::string& link, bool up);
  /// Aborts every connection of the host (its peers hear nothing) and makes it unreachable
  /// until restart_host(). Errors: unknown host.
  std::error_code crash_host(const std::string& host);
  std::error_code restart_host(const std::string& host);
  bool host_up(const std::string& host) const;
  /// No traffic between any host of `a` and any host of `b` until heal().
  void partition(std::vector<std::string> a, std::vector<std::string> b);
  void heal();
  /// Adds or removes a rule of a security group (ingress when `ingress`). Errors: unknown
  /// group; removing a rule that is not there.
  std::error_code change_sg_rule(const std::string& group, bool ingress, const sg_rule& rule,
                                 bool add);

  const network_limits& limits() const noexcept { return limits_; }

  // Internals shared with socket.
  bool path_open(const std::vector<std::string>& links, const std::string& a,
                 const std::string& b) const;
  std::uint64_t incarnation(const std::string& host) const;
  void forget(connection_state* c);

 private:
  struct host_state;
  struct vpc_state;
  struct subnet_state;
  const host_state* find_host(const std::string& name) const;
  const host_state* owner_of(const ip_address& a, bool& via_public) const;
  const subnet_state* subnet_of(const host_state& h) const;
  bool sg_allows(const host_state& h, bool ingress, std::uint16_t port, const ip_address& peer,
                 const host_state* peer_host, std::string& why,
                 std::vector<std::string>* hops = nullptr) const;
  bool nacl_allows(const subnet_state& s, bool inbound, std::uint16_t port, const ip_address& peer,
                   std::string& why, std::vector<std::string>* hops = nullptr) const;
  link_spec link_of(const host_state& h) const;

  world& world_;
  network_spec spec_;
  network_limits limits_;
  std::vector<std::unique_ptr<vpc_state>> vpcs_;
  std::map<std::string, std::unique_ptr<host_state>> hosts_;
  struct address_owner {
    const host_state* host;
    bool via_public;  // reached through a public address (see owner_of)
  };
  std::map<ip_address, address_owner> owners_;      // built once: addresses never change
  std::map<std::string, security_group_spec> sgs_;  // current rules (faults change them)
  std::set<std::string> links_down_;
  std::vector<std::pair<std::set<std::string>, std::set<std::string>>> partitions_;
  std::set<connection_state*> connections_;
};

/// net::connector for coroutines running "on" one host.
class host_connector final : public net::connector {
 public:
  host_connector(network& n, std::string host) : net_(n), host_(std::move(host)) {}
  boost::asio::awaitable<std::unique_ptr<net::byte_stream>> connect(std::string address,
                                                                    std::uint16_t port,
                                                                    net::duration timeout,
                                                                    std::error_code& ec) override;

 private:
  network& net_;
  std::string host_;
};

/// net::runtime on the world's virtual clock.
class sim_runtime final : public net::runtime {
 public:
  explicit sim_runtime(world& w) : world_(w) {}
  boost::asio::any_io_executor executor() override { return world_.executor(); }
  std::chrono::system_clock::time_point now() override { return world_.wall_now(); }
  boost::asio::awaitable<void> sleep_for(net::duration d) override;

 private:
  world& world_;
};

}  // namespace relaylab::sim
