// delivery::resolver over the host's resolver library: res_nquery(T_MX) for MX records and
// getaddrinfo for addresses. Lookups block, so they run on a small thread pool and complete
// on the caller's executor; the io thread never waits for DNS. Used by the daemon only: tests
// use a fake resolver (they must not send DNS queries).
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp (via the contracts), which needs it

#include <atomic>
#include <cstddef>
#include <memory>

#include "relay/delivery/resolver.hpp"

namespace relaylab::delivery {

struct system_resolver_options {
  std::size_t threads = 2;
  /// Lookups in flight at most; more fail at once with dns_status::timeout (temporary).
  std::size_t in_flight_max = 64;
};

class system_resolver final : public resolver {
 public:
  explicit system_resolver(system_resolver_options options = {});
  ~system_resolver() override;
  /// Errors as dns_status: nxdomain (HOST_NOT_FOUND), nodata (NO_DATA), servfail (TRY_AGAIN,
  /// NO_RECOVERY, malformed answer), timeout (in_flight_max reached).
  boost::asio::awaitable<mx_answer> lookup_mx(std::string domain) override;
  /// getaddrinfo: EAI_NONAME → nxdomain, EAI_NODATA → nodata, EAI_AGAIN/other → servfail.
  boost::asio::awaitable<address_answer> lookup_addresses(std::string host, bool ipv4,
                                                          bool ipv6) override;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The blocking parts, callable directly (e.g. from tests with /etc/hosts names).
mx_answer system_lookup_mx(const std::string& domain);
address_answer system_lookup_addresses(const std::string& host, bool ipv4, bool ipv6);

}  // namespace relaylab::delivery
