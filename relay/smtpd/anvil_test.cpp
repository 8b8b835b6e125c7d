// The anvil counters on an injected clock: windows, concurrency, links, expiry.
#include "relay/smtpd/anvil.hpp"

#include <gtest/gtest.h>

namespace relaylab::smtpd {
namespace {

using namespace std::chrono_literals;

smtp::timestamp at(std::chrono::seconds s) { return s; }

TEST(anvil, connection_count_and_rate_per_service_and_address) {
  anvil a(60s);
  anvil::local c1, c2, c3, c4;
  auto r = a.connect(c1, "smtp", "192.0.2.1", at(0s));
  EXPECT_EQ(r.count, 1);
  EXPECT_EQ(r.rate, 1);
  r = a.connect(c2, "smtp", "192.0.2.1", at(10s));
  EXPECT_EQ(r.count, 2);
  EXPECT_EQ(r.rate, 2);
  // Another service or address is another entry.
  EXPECT_EQ(a.connect(c3, "submission", "192.0.2.1", at(10s)).count, 1);
  EXPECT_EQ(a.connect(c4, "smtp", "192.0.2.2", at(10s)).count, 1);
  a.disconnect(c1, "smtp", "192.0.2.1", at(20s));
  anvil::local c5;
  r = a.connect(c5, "smtp", "192.0.2.1", at(30s));
  EXPECT_EQ(r.count, 2);
  EXPECT_EQ(r.rate, 3);
}

TEST(anvil, rate_window_resets_only_after_more_than_one_unit) {
  anvil a(60s);
  anvil::local c;
  a.connect(c, "smtp", "192.0.2.1", at(100s));
  EXPECT_EQ(a.auth(c, "smtp", "192.0.2.1", at(100s)), 1);
  EXPECT_EQ(a.auth(c, "smtp", "192.0.2.1", at(160s)), 2);  // start + unit is not yet over
  EXPECT_EQ(a.mail(c, "smtp", "192.0.2.1", at(160s)), 1);
  EXPECT_EQ(a.auth(c, "smtp", "192.0.2.1", at(161s)), 1);  // every rate starts over
  EXPECT_EQ(a.mail(c, "smtp", "192.0.2.1", at(161s)), 1);
  EXPECT_EQ(a.rcpt(c, "smtp", "192.0.2.1", at(161s)), 1);
  // Sub-second differences count as whole seconds, like anvil's event_time().
  EXPECT_EQ(a.rcpt(c, "smtp", "192.0.2.1", smtp::timestamp(221999ms)), 2);
}

TEST(anvil, disconnect_counts_down_only_the_entry_this_connection_registered) {
  anvil a(60s);
  anvil::local c1, c2;
  a.connect(c1, "smtp", "192.0.2.1", at(0s));
  a.disconnect(c2, "smtp", "192.0.2.1", at(1s));  // not c2's entry
  anvil::local c3;
  EXPECT_EQ(a.connect(c3, "smtp", "192.0.2.1", at(2s)).count, 2);
}

TEST(anvil, event_for_an_unknown_client_registers_it) {
  anvil a(60s);
  {
    anvil::local c;  // e.g. XCLIENT to an address that never connected
    EXPECT_EQ(a.rcpt(c, "smtp", "203.0.113.9", at(0s)), 1);
    anvil::local other;
    EXPECT_EQ(a.connect(other, "smtp", "203.0.113.9", at(1s)).count, 2);
  }
  EXPECT_EQ(a.entries(), 1u);  // both gone: remembered for one time unit
}

TEST(anvil, idle_entries_are_forgotten_one_unit_after_the_last_disconnect) {
  anvil a(60s);
  anvil::local c;
  a.connect(c, "smtp", "192.0.2.1", at(0s));
  EXPECT_EQ(a.auth(c, "smtp", "192.0.2.1", at(0s)), 1);
  a.disconnect(c, "smtp", "192.0.2.1", at(30s));
  EXPECT_EQ(a.entries(), 1u);
  anvil::local c2;
  EXPECT_EQ(a.connect(c2, "smtp", "192.0.2.1", at(50s)).rate, 2);  // within the window
  a.disconnect(c2, "smtp", "192.0.2.1", at(50s));
  EXPECT_EQ(a.newtls_stat("smtp", "192.0.2.1", at(109s)), 0);
  EXPECT_EQ(a.entries(), 1u);
  EXPECT_EQ(a.newtls_stat("smtp", "192.0.2.1", at(110s)), 0);
  EXPECT_EQ(a.entries(), 0u);
}

TEST(anvil, new_tls_sessions_are_counted_and_reported) {
  anvil a(60s);
  anvil::local c;
  a.connect(c, "smtp", "192.0.2.1", at(100s));
  EXPECT_EQ(a.newtls(c, "smtp", "192.0.2.1", at(101s)), 1);
  EXPECT_EQ(a.newtls(c, "smtp", "192.0.2.1", at(102s)), 2);
  EXPECT_EQ(a.newtls_stat("smtp", "192.0.2.1", at(103s)), 2);
  EXPECT_EQ(a.newtls_stat("smtp", "192.0.2.1", at(162s)), 0);
}

}  // namespace
}  // namespace relaylab::smtpd
