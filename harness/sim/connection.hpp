// Internal to harness/sim: the state of one simulated TCP connection, shared by its two
// sockets (socket.cpp) and by the network that opens and routes it (network.cpp).
#pragma once

#include "harness/sim/network.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <deque>

namespace relaylab::sim {

namespace asio = boost::asio;
using bec = boost::system::error_code;

// net::duration is milliseconds; a caller's "forever" (max) must not overflow nanoseconds.
inline duration clamp(net::duration d) {
  constexpr auto limit =
      std::chrono::duration_cast<net::duration>(std::chrono::hours(24 * 365 * 100));
  return d > limit ? duration::max() : duration(d);
}

inline bec generic(std::errc e) {
  return bec(static_cast<int>(e), boost::system::generic_category());
}

// ---------------------------------------------------------------------------------------------
// Connection state.

struct end_state {
  std::string host;
  std::string address;  // local address as this end sees it
  std::uint16_t port = 0;
  std::string peer_address;  // the other end as this end sees it (dialled, or after NAT)
  std::uint16_t peer_port = 0;
  std::uint64_t incarnation = 0;
  std::string inbox;
  bool eof = false;     // FIN received
  bool closed = false;  // closed locally
  bool dead = false;    // its host crashed
  bec error;            // sticky: reset, timed_out
  detail::op_slot read_op;
  std::vector<asio::mutable_buffer> read_bufs;
  event_handle read_timeout;
  detail::op_slot write_op;
  std::string write_data;
  event_handle write_timeout;
  // This end's outbound direction.
  std::size_t in_flight = 0;
  time_point link_free{0};
  time_point last_arrival{0};
  // Segments sent and not yet delivered, in order: a segment that waits for a broken path to
  // heal holds back every later one, as TCP's in-order delivery does.
  struct segment {
    std::string data;
    bool fin = false;
    time_point at{};  // earliest arrival
  };
  std::deque<segment> unacked;
  bool retry_pending = false;  // a retransmission timer owns the head
  int attempts = 0;            // retransmissions of the head so far
};

struct connection_state : std::enable_shared_from_this<connection_state> {
  network* net = nullptr;
  world* w = nullptr;
  link_spec path;
  std::vector<std::string> links;
  end_state ends[2];

  ~connection_state() {
    if (net) net->forget(this);
  }

  void complete_read(int side, bec ec, std::size_t n) {
    auto& e = ends[side];
    e.read_timeout.cancel();
    e.read_bufs.clear();
    auto op = e.read_op.take();
    if (op && !w->shutting_down()) op->complete(ec, n);
  }
  void complete_write(int side, bec ec, std::size_t n) {
    auto& e = ends[side];
    e.write_timeout.cancel();
    e.write_data.clear();
    auto op = e.write_op.take();
    if (op && !w->shutting_down()) op->complete(ec, n);
  }

  // Fills a pending read from the inbox, or reports EOF/error, if it can.
  void service_read(int side) {
    auto& e = ends[side];
    if (!e.read_op) return;
    if (!e.inbox.empty()) {
      std::size_t n = 0;
      for (auto& b : e.read_bufs) {
        const std::size_t k = std::min(b.size(), e.inbox.size() - n);
        std::memcpy(b.data(), e.inbox.data() + n, k);
        n += k;
        if (n == e.inbox.size()) break;
      }
      e.inbox.erase(0, n);
      complete_read(side, {}, n);
      service_write(1 - side);  // the window opened
      return;
    }
    if (e.error) {
      complete_read(side, e.error, 0);
    } else if (e.eof) {
      complete_read(side, asio::error::eof, 0);
    }
  }

  std::size_t window_space(int side) const {
    const auto& e = ends[side];
    const std::size_t used = e.in_flight + ends[1 - side].inbox.size();
    const std::size_t window = net ? net->limits().window_bytes : 0;
    return used >= window ? 0 : window - used;
  }

  // Sends what a pending write can send now.
  void service_write(int side) {
    auto& e = ends[side];
    if (!e.write_op) return;
    if (e.error) {
      complete_write(side, e.error, 0);
      return;
    }
    const std::size_t space = window_space(side);
    if (space == 0) return;
    const std::size_t seg = net ? net->limits().segment_bytes : 65536;
    const std::size_t n = std::min({space, e.write_data.size(), seg});
    transmit(side, e.write_data.substr(0, n), false);
    complete_write(side, {}, n);
  }

  duration one_way(std::size_t bytes, end_state& from) {
    duration d = path.latency;
    if (path.jitter.count() > 0) {
      d += duration(w->random_between(0, static_cast<std::uint64_t>(path.jitter.count())));
    }
    if (path.loss > 0 && w->chance(path.loss)) {
      d += net ? net->limits().retransmit_first : duration(std::chrono::milliseconds(200));
    }
    time_point start = std::max(w->now(), from.link_free);
    if (path.bandwidth_bps > 0) {
      const auto tx =
          duration(static_cast<std::int64_t>((static_cast<long double>(bytes) * 8 * 1e9) /
                                             static_cast<long double>(path.bandwidth_bps)));
      from.link_free = start + tx;
      start = from.link_free;
    }
    return (start - w->now()) + d;
  }

  void transmit(int side, std::string data, bool fin) {
    auto& e = ends[side];
    e.in_flight += data.size();
    time_point at = w->now() + one_way(data.size(), e);
    at = std::max(at, e.last_arrival);  // in order
    e.last_arrival = at;
    e.unacked.push_back({std::move(data), fin, at});
    auto self = shared_from_this();
    w->schedule_at(at, [self, side] { self->drain(side); });
  }

  // Drops what is still queued in this direction (the connection is dead or reset).
  void discard_unacked(end_state& from) {
    for (const auto& sg : from.unacked) from.in_flight -= std::min(from.in_flight, sg.data.size());
    from.unacked.clear();
  }

  // Delivers the queued segments whose time has come, strictly in order.
  void drain(int side) {
    auto& from = ends[side];
    auto& to = ends[1 - side];
    while (!from.unacked.empty() && from.unacked.front().at <= w->now() && !from.retry_pending) {
      if (from.dead || !net) {
        discard_unacked(from);
        return;
      }
      if (!net->path_open(links, from.host, to.host)) {
        if (from.attempts >= net->limits().retransmits_max) {
          discard_unacked(from);
          fail(side, generic(std::errc::timed_out));
          return;
        }
        duration backoff = net->limits().retransmit_first * (1ll << std::min(from.attempts, 20));
        backoff = std::min(backoff, net->limits().retransmit_max);
        from.retry_pending = true;
        auto self = shared_from_this();
        w->schedule_after(backoff, [self, side] {
          auto& f = self->ends[side];
          f.retry_pending = false;
          ++f.attempts;
          self->drain(side);
        });
        return;
      }
      from.attempts = 0;
      auto sg = std::move(from.unacked.front());
      from.unacked.pop_front();
      from.in_flight -= std::min(from.in_flight, sg.data.size());
      if (to.dead || net->incarnation(to.host) != to.incarnation) {
        discard_unacked(from);
        fail(side, generic(std::errc::connection_reset));  // the peer rebooted: RST
        return;
      }
      if (to.closed) {
        // Data for a socket that is gone: the peer's stack answers with a reset.
        if (!sg.data.empty()) {
          discard_unacked(from);
          fail(side, generic(std::errc::connection_reset));
        }
        continue;
      }
      to.inbox += sg.data;
      if (sg.fin) to.eof = true;
      service_read(1 - side);
    }
  }

  void fail(int side, bec ec) {
    auto& e = ends[side];
    if (!e.error) e.error = ec;
    service_read(side);
    service_write(side);
  }
};

}  // namespace relaylab::sim
