// DNS as the relay needs it, behind an interface: the daemon uses the system resolver, the
// harness passes in its fake DNS (fakes/dns).
//
// CONTRACT (used by relay/delivery, fakes/dns, harness/sim; change only together).
#pragma once

// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without including it.
#include <utility>

#include <boost/asio/awaitable.hpp>

#include <string>
#include <vector>

namespace relaylab::delivery {

enum class dns_status {
  ok,        // records found
  nodata,    // the name exists, no records of that type
  nxdomain,  // "Host or domain name not found. Name service error for name=... type=MX: Host not
             // found"
  servfail,  // temporary: "Host or domain name not found. ... type=MX: Host not found, try again"
  timeout,   // temporary, after the resolver's own timeout
};

struct mx_record {
  int preference = 0;
  std::string host;  // "" (".") for a null MX (RFC 7505)
};

struct mx_answer {
  dns_status status = dns_status::ok;
  std::vector<mx_record> records;  // in answer order; the caller sorts by preference
};

struct address_answer {
  dns_status status = dns_status::ok;
  std::vector<std::string> addresses;  // numeric, AAAA and A as asked, in answer order
  std::string canonical_name;          // after CNAMEs, "" if none
};

class resolver {
 public:
  virtual ~resolver() = default;
  virtual boost::asio::awaitable<mx_answer> lookup_mx(std::string domain) = 0;
  /// A and/or AAAA records of `host`.
  virtual boost::asio::awaitable<address_answer> lookup_addresses(std::string host, bool ipv4,
                                                                  bool ipv6) = 0;
};

}  // namespace relaylab::delivery
