// Address classes: the part of trivial-rewrite's resolve_addr() that smtpd_check.c consults.
// It rewrites an address (source route, bang path, percent hack, @myorigin), finds its domain
// and classifies it (local = mydestination or an own address literal, virtual alias, virtual
// mailbox, relay_domains, other) and says whether it is "routed" (an operator left in the
// local-part after resolution: the relay-through-backup-MX trick of Postfix's docs).
#pragma once

#include "relay/policy/compiled.hpp"

#include <string>
#include <string_view>

namespace relaylab::policy::detail {

struct resolved {
  enum cls { local, alias, virtual_mailbox, relay, other };
  cls address_class = other;
  bool routed = false;
  bool error = false;
  std::string recipient;  // lower-cased user@domain
};

class resolver {
 public:
  explicit resolver(const compiled& c) : c_(c) {}

  /// The domain is final here: mydestination, or [address] of inet_interfaces/proxy_interfaces.
  bool is_local(std::string_view domain) const;
  resolved resolve(std::string_view addr) const;

 private:
  std::string rewrite(std::string a) const;

  const compiled& c_;
};

}  // namespace relaylab::policy::detail
