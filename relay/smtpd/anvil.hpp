// Postfix's anvil(8) counters, in process: per (service, client address) the connection count
// and, per anvil_rate_time_unit, the connection, message, recipient, new-TLS-session and AUTH
// rates that smtpd's smtpd_client_*_limit parameters are checked against.
//
// Semantics follow Postfix 3.7.11 anvil.c: a rate window starts at an entry's first event and
// is reset by the first event more than one time unit later (whole seconds, like anvil's
// event_time()); an entry whose connection count dropped to zero is forgotten one time unit
// later. Each connection is a "local" that holds at most one entry, as an smtpd process does:
// disconnect() only counts down the entry this connection registered.
//
// Time is passed in (a monotonic smtp::timestamp), so the same code runs on virtual time.
// Thread-safe: one anvil serves every connection of a service.
#pragma once

#include "relay/smtp/server_session.hpp"

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace relaylab::smtpd {

class anvil {
 public:
  /// `time_unit`: anvil_rate_time_unit (at least one second; less is taken as one).
  explicit anvil(std::chrono::seconds time_unit);

  /// One connection's link to its entry (Postfix's ANVIL_LOCAL). Destroying it counts the
  /// linked entry down, as anvil does when an smtpd process goes away.
  class local {
   public:
    local() = default;
    explicit local(anvil& a) : anvil_(&a) {}
    local(const local&) = delete;
    local& operator=(const local&) = delete;
    ~local();

   private:
    friend class anvil;
    anvil* anvil_ = nullptr;
    std::string linked_;  // key of the entry this connection registered, "" for none
  };

  struct connect_result {
    int count = 0;  // concurrent connections, this one included
    int rate = 0;   // connections in the current window, this one included
  };

  /// A client connected: counts it and links the entry to `l`.
  connect_result connect(local& l, const std::string& service, const std::string& addr,
                         smtp::timestamp now);
  /// The client disconnected: counts down the entry if `l` registered it.
  void disconnect(local& l, const std::string& service, const std::string& addr,
                  smtp::timestamp now);
  /// Rate events; each returns the rate in the current window, this event included.
  int mail(local& l, const std::string& service, const std::string& addr, smtp::timestamp now);
  int rcpt(local& l, const std::string& service, const std::string& addr, smtp::timestamp now);
  int auth(local& l, const std::string& service, const std::string& addr, smtp::timestamp now);
  int newtls(local& l, const std::string& service, const std::string& addr, smtp::timestamp now);
  /// The new-TLS-session rate without counting an event (anvil's NEWTLS_STAT).
  int newtls_stat(const std::string& service, const std::string& addr, smtp::timestamp now);

  /// Entries held (connected clients and those forgotten within one time unit); for tests.
  std::size_t entries() const;

 private:
  struct entry {
    int count = 0, rate = 0, mail = 0, rcpt = 0, ntls = 0, auth = 0;
    long long start = 0;     // window start, whole seconds
    long long expires = -1;  // when count reached 0: forget at this second; -1 while connected
  };
  enum class what { mail, rcpt, auth, ntls };

  static long long seconds(smtp::timestamp t);
  void expire(long long now);
  entry& conn_update(local& l, const std::string& key, long long now);
  void incr(entry& e, int& counter, long long now);
  int event(local& l, const std::string& service, const std::string& addr, smtp::timestamp now,
            what w);
  void drop_one(const std::string& key, long long now);
  void release(local& l);

  const long long unit_;
  mutable std::mutex mutex_;
  std::map<std::string, entry> entries_;
  std::deque<std::pair<long long, std::string>> expiry_;  // (when, key), in time order
};

}  // namespace relaylab::smtpd
