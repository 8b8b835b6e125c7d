// Fake DNS: zones held in memory behind relay/delivery's resolver interface.
//
// Records: MX (including the null MX "0 ."), A, AAAA, CNAME; per name a forced failure
// (NXDOMAIN, SERVFAIL, or TIMEOUT, which answers only after `timeout` of the injected runtime's
// time). Everything can change at run time (the "DNS record change" fault). Names are
// case-insensitive and a trailing dot is ignored. A name that appears nowhere is NXDOMAIN; a
// name with records of other types only is NODATA. Zone text format: docs/fakes.md.
// Single-threaded: use from the runtime's executor.
#pragma once

#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it

#include "relay/delivery/resolver.hpp"
#include "relay/net/stream.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::fakes::dns {

enum class failure { none, nxdomain, servfail, timeout };

struct name_records {
  std::vector<delivery::mx_record> mx;
  std::vector<std::string> a;
  std::vector<std::string> aaaa;
  std::string cname;  // "" = none
  failure fail = failure::none;
  bool empty() const noexcept {
    return mx.empty() && a.empty() && aaaa.empty() && cname.empty() && fail == failure::none;
  }
};

struct zone_error {
  std::string file;
  std::size_t line = 0;
  std::size_t column = 0;
  std::string message;
  std::string to_string() const;  // "file:line:column: message"
};

class fake_resolver final : public delivery::resolver {
 public:
  /// `rt` gives the time a TIMEOUT answer takes (sleep_for); may be null (then a TIMEOUT
  /// answers at once). `timeout` is the resolver's own timeout (Postfix: resolver retries
  /// add up to about a minute; tests pick their own).
  explicit fake_resolver(net::runtime* rt = nullptr,
                         net::duration timeout = std::chrono::seconds(30));

  void add_mx(std::string_view name, int preference, std::string_view host);
  /// RFC 7505 null MX: "name MX 0 .".
  void set_null_mx(std::string_view name);
  /// Errors: not a numeric IPv4 (add_a) / IPv6 (add_aaaa) address → false.
  bool add_a(std::string_view name, std::string_view address);
  bool add_aaaa(std::string_view name, std::string_view address);
  void set_cname(std::string_view name, std::string_view target);
  void set_failure(std::string_view name, failure f);
  /// Removes every record and failure of `name` (it becomes NXDOMAIN).
  void remove(std::string_view name);
  /// Replaces all records of `name` (for "the MX record changed" faults).
  void replace(std::string_view name, name_records records);
  const name_records* find(std::string_view name) const;

  /// Loads zone text into this resolver (records add to what is there). On error returns
  /// false with `error` naming file:line:column (unknown type, bad preference, bad address,
  /// missing data, a CNAME next to other data).
  bool load(std::string_view text, std::string_view file, zone_error& error);
  /// Reads a file (at most 4 MiB) and loads it. Errors: as load(), or unreadable (line 0).
  bool load_file(const std::string& path, zone_error& error);

  boost::asio::awaitable<delivery::mx_answer> lookup_mx(std::string domain) override;
  boost::asio::awaitable<delivery::address_answer> lookup_addresses(std::string host, bool ipv4,
                                                                    bool ipv6) override;

  std::uint64_t queries() const noexcept { return queries_; }
  /// Queries in order, "MX x.example" / "A mx1.x.example" / "AAAA ..." (at most 10000 kept).
  const std::vector<std::string>& query_log() const noexcept { return log_; }

 private:
  static std::string key(std::string_view name);
  /// Follows CNAMEs (at most cname_depth_max); returns the final name's records or the
  /// failure met on the way.
  struct resolved {
    const name_records* records = nullptr;
    delivery::dns_status status = delivery::dns_status::ok;
    std::string canonical;
  };
  resolved follow(std::string_view name) const;
  void note(std::string entry);

  net::runtime* rt_;
  net::duration timeout_;
  std::map<std::string, name_records> names_;
  std::uint64_t queries_ = 0;
  std::vector<std::string> log_;
};

inline constexpr int cname_depth_max = 8;

}  // namespace relaylab::fakes::dns
