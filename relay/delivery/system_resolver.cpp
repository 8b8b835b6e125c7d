#include "relay/delivery/system_resolver.hpp"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <sys/socket.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstring>
#include <vector>

namespace relaylab::delivery {

namespace asio = boost::asio;

mx_answer system_lookup_mx(const std::string& domain) {
  mx_answer a;
  struct __res_state rs;
  std::memset(&rs, 0, sizeof rs);
  if (res_ninit(&rs) != 0) {
    a.status = dns_status::servfail;
    return a;
  }
  std::vector<unsigned char> buf(65536);
  const int n =
      res_nquery(&rs, domain.c_str(), ns_c_in, ns_t_mx, buf.data(), static_cast<int>(buf.size()));
  if (n < 0) {
    switch (rs.res_h_errno) {
      case HOST_NOT_FOUND:
        a.status = dns_status::nxdomain;
        break;
      case NO_DATA:
        a.status = dns_status::nodata;
        break;
      default:
        a.status = dns_status::servfail;
    }
    res_nclose(&rs);
    return a;
  }
  ns_msg msg;
  if (ns_initparse(buf.data(), n, &msg) != 0) {
    a.status = dns_status::servfail;
    res_nclose(&rs);
    return a;
  }
  const int count = ns_msg_count(msg, ns_s_an);
  for (int i = 0; i < count; ++i) {
    ns_rr rr;
    if (ns_parserr(&msg, ns_s_an, i, &rr) != 0) continue;
    if (ns_rr_type(rr) != ns_t_mx || ns_rr_rdlen(rr) < 3) continue;
    const unsigned char* rd = ns_rr_rdata(rr);
    mx_record m;
    m.preference = (rd[0] << 8) | rd[1];
    char name[NS_MAXDNAME];
    if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 2, name, sizeof name) < 0) continue;
    m.host = name;
    if (m.host == ".") m.host.clear();
    a.records.push_back(std::move(m));
  }
  res_nclose(&rs);
  a.status = a.records.empty() ? dns_status::nodata : dns_status::ok;
  return a;
}

address_answer system_lookup_addresses(const std::string& host, bool ipv4, bool ipv6) {
  address_answer a;
  addrinfo hints{};
  hints.ai_family = ipv4 && ipv6 ? AF_UNSPEC : (ipv6 ? AF_INET6 : AF_INET);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_CANONNAME;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    a.status = rc == EAI_NONAME   ? dns_status::nxdomain
               : rc == EAI_NODATA ? dns_status::nodata
                                  : dns_status::servfail;
    return a;
  }
  for (addrinfo* p = res; p != nullptr; p = p->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (p->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(p->ai_addr)->sin_addr, text, sizeof text);
    } else if (p->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(p->ai_addr)->sin6_addr, text,
                sizeof text);
    } else {
      continue;
    }
    if (p->ai_canonname && a.canonical_name.empty() && host != p->ai_canonname) {
      a.canonical_name = p->ai_canonname;
    }
    bool seen = false;
    for (const auto& s : a.addresses) seen = seen || s == text;
    if (!seen) a.addresses.emplace_back(text);
  }
  ::freeaddrinfo(res);
  a.status = a.addresses.empty() ? dns_status::nodata : dns_status::ok;
  return a;
}

struct system_resolver::impl {
  explicit impl(system_resolver_options o) : options(o), pool(o.threads == 0 ? 1 : o.threads) {}
  system_resolver_options options;
  asio::thread_pool pool;
  std::atomic<std::size_t> in_flight{0};

  // Runs `f` on the pool; the coroutine resumes on its own executor with the result. Not a
  // coroutine itself: GCC 12 mishandles lambda parameters moved into coroutine frames.
  template <class T, class F>
  asio::awaitable<T> run(F f) {
    return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
        [this, f = std::move(f)](auto handler) mutable {
          asio::post(pool, [h = std::move(handler), f = std::move(f)]() mutable {
            T r = f();
            auto ex = asio::get_associated_executor(h);
            asio::post(
                ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
          });
        },
        asio::use_awaitable);
  }
};

system_resolver::system_resolver(system_resolver_options options)
    : impl_(std::make_unique<impl>(options)) {}

system_resolver::~system_resolver() { impl_->pool.join(); }

asio::awaitable<mx_answer> system_resolver::lookup_mx(std::string domain) {
  if (impl_->in_flight.fetch_add(1) >= impl_->options.in_flight_max) {
    impl_->in_flight.fetch_sub(1);
    co_return mx_answer{dns_status::timeout, {}};
  }
  // Named locals only around co_await: GCC 12 destroys temporaries of a co_await
  // full-expression twice (ASan: heap-use-after-free), so no lambda temporary lives there.
  const std::string name = std::move(domain);
  const std::string* name_ptr = &name;
  auto op = impl_->run<mx_answer>([name_ptr] { return system_lookup_mx(*name_ptr); });
  mx_answer a = co_await std::move(op);
  impl_->in_flight.fetch_sub(1);
  co_return a;
}

asio::awaitable<address_answer> system_resolver::lookup_addresses(std::string host, bool ipv4,
                                                                  bool ipv6) {
  if (impl_->in_flight.fetch_add(1) >= impl_->options.in_flight_max) {
    impl_->in_flight.fetch_sub(1);
    co_return address_answer{dns_status::timeout, {}, {}};
  }
  // See lookup_mx: no temporaries in the co_await expression (GCC 12).
  const std::string name = std::move(host);
  const std::string* name_ptr = &name;
  auto op = impl_->run<address_answer>(
      [name_ptr, ipv4, ipv6] { return system_lookup_addresses(*name_ptr, ipv4, ipv6); });
  address_answer a = co_await std::move(op);
  impl_->in_flight.fetch_sub(1);
  co_return a;
}

}  // namespace relaylab::delivery
