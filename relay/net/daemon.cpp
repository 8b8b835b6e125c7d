#include "relay/net/daemon.hpp"

#include <algorithm>
#include <cstring>
#include <exception>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace relaylab::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

std::string strip_brackets(std::string_view h) {
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  return std::string(h);
}

}  // namespace

std::string address_text(const asio::ip::address& a) {
  if (!a.is_v4()) return a.to_string();
  // Asio's to_string goes through inet_ntop and sprintf; this runs once per connection.
  const auto b = a.to_v4().to_bytes();
  char out[16];
  char* p = out;
  for (std::size_t i = 0; i < 4; ++i) {
    if (i != 0) *p++ = '.';
    const unsigned v = b[i];
    if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
    *p++ = static_cast<char>('0' + v % 10);
  }
  return std::string(out, p);
}

struct log_flush_scheduler::state {
  state(boost::asio::io_context::executor_type e, log::logger& l, std::chrono::milliseconds d,
        std::shared_ptr<bool> a)
      : ex(e), log(&l), delay(d), alive(std::move(a)), timer(e) {}
  void flush() const {
    if (!alive || *alive) log->flush();
  }
  boost::asio::io_context::executor_type ex;
  log::logger* log;
  std::chrono::milliseconds delay;
  std::shared_ptr<bool> alive;
  asio::steady_timer timer;
  bool armed = false;
};

log_flush_scheduler::log_flush_scheduler(boost::asio::io_context::executor_type ex,
                                         log::logger& log, std::chrono::milliseconds delay,
                                         std::shared_ptr<bool> alive)
    : state_(std::make_shared<state>(ex, log, delay, std::move(alive))) {}

void log_flush_scheduler::request() const {
  asio::post(state_->ex, [st = state_] {
    if (st->delay.count() <= 0) {
      st->flush();
      return;
    }
    if (st->armed) return;
    st->armed = true;
    st->timer.expires_after(st->delay);
    st->timer.async_wait([st](const boost::system::error_code&) {
      st->armed = false;
      st->flush();
    });
  });
}

std::vector<std::string> listen_hosts(std::string_view service_host,
                                      const std::vector<std::string>& inet_interfaces,
                                      const std::vector<std::string>& inet_protocols,
                                      std::string& error) {
  bool v4 = false, v6 = false;
  for (const auto& p : inet_protocols) {
    if (p == "all") {
      v4 = v6 = true;
    } else if (p == "ipv4") {
      v4 = true;
    } else if (p == "ipv6") {
      v6 = true;
    } else {
      error = "inet_protocols: unknown protocol \"" + p + "\"";
      return {};
    }
  }
  std::vector<std::string> hosts;
  auto add_numeric = [&](std::string_view raw) {
    const std::string h = strip_brackets(raw);
    boost::system::error_code ec;
    const auto a = asio::ip::make_address(h, ec);
    if (ec) {
      error = "\"" + h + "\" is not a numeric IP address (host names are not resolved here)";
      return false;
    }
    if ((a.is_v4() && v4) || (a.is_v6() && v6)) hosts.push_back(a.to_string());
    return true;
  };
  if (!service_host.empty()) {
    if (!add_numeric(service_host)) return {};
  } else {
    for (const auto& i : inet_interfaces) {
      if (i == "all") {
        if (v4) hosts.push_back("0.0.0.0");
        if (v6) hosts.push_back("::");
      } else if (i == "loopback-only") {
        if (v4) hosts.push_back("127.0.0.1");
        if (v6) hosts.push_back("::1");
      } else if (!add_numeric(i)) {
        return {};
      }
    }
  }
  if (hosts.empty()) {
    error = "no listen address left for inet_protocols";
    return {};
  }
  return hosts;
}

struct daemon::listener {
  explicit listener(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
  connection_handler handler;
  tcp::endpoint endpoint;
};

daemon::daemon(asio::io_context& io, daemon_options options, log::logger* log, log::origin origin)
    : io_(io),
      options_(options),
      log_(log),
      origin_(std::move(origin)),
      slot_timer_(io),
      drain_timer_(io),
      alive_(std::make_shared<bool>(true)) {}

daemon::~daemon() {
  *alive_ = false;
  end_log_batching();
}

std::error_code daemon::listen(const listen_address& address, connection_handler handler,
                               std::string& error) {
  boost::system::error_code ec;
  const auto addr = asio::ip::make_address(strip_brackets(address.host), ec);
  if (ec) {
    error = "invalid listen address \"" + address.host + "\"";
    return std::make_error_code(std::errc::invalid_argument);
  }
  auto l = std::make_unique<listener>(io_);
  const tcp::endpoint ep(addr, address.port);
  auto fail = [&](const char* what) {
    error = std::string(what) + " " + addr.to_string() + " port " + std::to_string(address.port) +
            ": " + ec.message();
    return std::error_code(ec.value(), std::system_category());
  };
  if (l->acceptor.open(ep.protocol(), ec)) return fail("socket");
  l->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (addr.is_v6()) l->acceptor.set_option(asio::ip::v6_only(true), ec);
  if (l->acceptor.bind(ep, ec)) return fail("bind");
  if (l->acceptor.listen(options_.listen_backlog, ec)) return fail("listen");
  l->endpoint = l->acceptor.local_endpoint(ec);
  l->handler = std::move(handler);
  listeners_.push_back(std::move(l));
  return {};
}

std::vector<tcp::endpoint> daemon::endpoints() const {
  std::vector<tcp::endpoint> out;
  for (const auto& l : listeners_) out.push_back(l->endpoint);
  return out;
}

void daemon::start() {
  if (log_ && !log_batching_ && !stopping_) {
    log_batching_ = true;
    // Posted, the flush runs after the handlers already queued (or log_flush_delay_ms later):
    // everything logged meanwhile joins the batch. Called under the logger's lock from any
    // thread; asio::post is thread-safe.
    log_->set_flush_hook(
        [flush = log_flush_scheduler(io_.get_executor(), *log_, options_.log_flush_delay_ms,
                                     alive_)] { flush.request(); });
  }
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    asio::co_spawn(io_, accept_loop(i), asio::detached);
  }
}

asio::awaitable<void> daemon::accept_loop(std::size_t index) {
  auto alive = alive_;
  listener& l = *listeners_[index];
  // Each iteration accepts one connection or handles one error; the loop ends on stop().
  while (!stopping_) {
    if (connections_.size() >= options_.connections_max) {
      boost::system::error_code ec;
      slot_timer_.expires_after(std::chrono::seconds(1));
      co_await slot_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    boost::system::error_code ec;
    tcp::endpoint remote;  // filled in by accept() itself: no getpeername
    tcp::socket sock =
        co_await l.acceptor.async_accept(remote, asio::redirect_error(asio::use_awaitable, ec));
    if (!*alive || stopping_) break;
    if (ec) {
      if (log_) log_->warning(origin_, "accept: " + ec.message());
      // EMFILE and friends: back off instead of spinning.
      boost::system::error_code ec2;
      asio::steady_timer backoff(io_, std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec2));
      continue;
    }
    {
      // TCP_NODELAY: around a TLS handshake the server makes small writes in a row (its last
      // flight, session tickets, the next reply); with Nagle a later one waits for the
      // client's delayed ACK, tens of ms per STARTTLS session on Linux loopback (61 against
      // 370 msg/s for one 587tls session in bench/compare-postfix).
      boost::system::error_code nd;
      sock.set_option(tcp::no_delay(true), nd);
    }
    accepted_connection info;
    // A listener bound to one address accepts on that address: getsockname only for wildcards.
    tcp::endpoint local = l.endpoint;
    if (local.address().is_unspecified()) {
      boost::system::error_code e2;
      local = sock.local_endpoint(e2);
      if (e2) continue;  // the peer already went away
    }
    info.remote_addr = address_text(remote.address());
    info.remote_port = std::to_string(remote.port());
    info.local_addr = address_text(local.address());
    info.local_port = std::to_string(local.port());
    info.listener = index;
    auto ex = io_.get_executor();
    info.signal =
        make_connection_signal([ex](std::function<void()> f) { asio::post(ex, std::move(f)); });
    const std::uint64_t id = next_id_++;
    ++accepted_total_;
    connections_.emplace(id, info.signal);
    auto handler = l.handler;
    asio::co_spawn(
        io_,
        [this, alive, id, handler, s = std::move(sock),
         info = std::move(info)]() mutable -> asio::awaitable<void> {
          try {
            co_await handler(std::move(s), std::move(info));
          } catch (const std::exception& e) {
            if (*alive && log_)
              log_->error(origin_, std::string("connection handler: ") + e.what());
          }
          if (*alive) connection_ended(id);
        },
        asio::detached);
  }
}

void daemon::connection_ended(std::uint64_t id) {
  connections_.erase(id);
  slot_timer_.cancel();
  if (stopping_ && connections_.empty()) {
    drain_timer_.cancel();
    end_log_batching();
  }
}

void daemon::end_log_batching() {
  // After the last connection the io_context may stop running, and a posted flush with it:
  // from here on (shutdown, other threads still logging) each line is written at once.
  if (!log_batching_) return;
  log_batching_ = false;
  log_->set_flush_hook({});
}

void daemon::stop() {
  if (stopping_) return;
  stopping_ = true;
  for (auto& l : listeners_) {
    boost::system::error_code ec;
    l->acceptor.close(ec);
  }
  slot_timer_.cancel();
  if (connections_.empty()) {
    end_log_batching();
    return;
  }
  drain_timer_.expires_after(options_.drain_timeout_ms);
  drain_timer_.async_wait([this, alive = alive_](const boost::system::error_code&) {
    if (!*alive) return;
    // Copy: request_stop() may end connections (and erase them) re-entrantly.
    std::vector<std::shared_ptr<connection_signal>> open;
    for (const auto& [id, sig] : connections_) open.push_back(sig);
    for (const auto& sig : open) sig->request_stop();
  });
}

}  // namespace relaylab::net

#include <netdb.h>
#include <sys/socket.h>

namespace relaylab::net {

std::string verified_peer_name(const std::string& addr) {
  boost::system::error_code ec;
  const auto a = asio::ip::make_address(addr, ec);
  if (ec) return "unknown";
  const tcp::endpoint ep(a, 0);
  char host[NI_MAXHOST];
  if (::getnameinfo(ep.data(), static_cast<socklen_t>(ep.size()), host, sizeof host, nullptr, 0,
                    NI_NAMEREQD) != 0) {
    return "unknown";
  }
  addrinfo hints{};
  hints.ai_family = a.is_v4() ? AF_INET : AF_INET6;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host, nullptr, &hints, &res) != 0) return "unknown";
  bool confirmed = false;
  // getaddrinfo results are a short list; bound the walk anyway.
  int n = 0;
  for (addrinfo* r = res; r != nullptr && n < 64 && !confirmed; r = r->ai_next, ++n) {
    tcp::endpoint got;
    if (r->ai_addrlen > got.capacity()) continue;
    std::memcpy(got.data(), r->ai_addr, r->ai_addrlen);
    got.resize(r->ai_addrlen);
    confirmed = got.address() == a;
  }
  ::freeaddrinfo(res);
  return confirmed ? std::string(host) : std::string("unknown");
}

}  // namespace relaylab::net
