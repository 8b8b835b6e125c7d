#include "relay/qmgr/qmgr.hpp"

#include "relay/qmgr/delivery_log.hpp"

#include "relay/log/log.hpp"
#include "relay/qmgr/log_gate.hpp"
#include "relay/qmgr/test_support.hpp"
#include "relay/qmgr/virtual_runtime.hpp"
#include "relay/queue/mailq.hpp"
#include "relay/queue/storage.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <random>

namespace relaylab::qmgr {
namespace {

using namespace std::chrono_literals;
using testing::fake_agent;
using clock_point = std::chrono::system_clock::time_point;

const clock_point t0 = clock_point(std::chrono::seconds(1795844642));  // 2026-11-28 05:44:02

const std::string content =
    "Received: from client.example.net (localhost [127.0.0.1])\r\n"
    "\tby relay.example.com (Postfix) with ESMTP id X\r\n"
    "Subject: test one\r\nMessage-ID: <m1@client.example>\r\n\r\nline one\r\n.dot line\r\n";

/// One relay host's worth of queue: storage survives a "crash", everything else is rebuilt.
struct host {
  queue::mem_storage storage;
  std::unique_ptr<virtual_runtime> rt;
  std::unique_ptr<queue::spool> spool;
  std::unique_ptr<log::logger> logger;
  log::memory_sink* sink = nullptr;
  /// With `gated`, the agents log through agent_log into a log_gate, as in the daemon.
  bool gated = false;
  std::unique_ptr<log::logger> agent_log;
  std::unique_ptr<fake_agent> smtp;
  std::unique_ptr<manager> qm;
  qmgr_options options;
  routing_options routing;
  std::uint64_t seed = 1;

  host() {
    options.myhostname = "relay.example.com";
    options.pid = 4110;
    routing.myhostname = "relay.example.com";
    routing.mydestination = {"relay.example.com", "localhost"};
  }

  /// (Re)starts everything above the storage at `now`; returns the recovery report.
  queue::recovery_report boot(clock_point now = t0) {
    qm.reset();
    smtp.reset();
    spool.reset();
    agent_log.reset();
    logger.reset();
    rt = std::make_unique<virtual_runtime>(now);
    queue::spool_options so;
    so.mode = queue::commit_mode::immediate;
    auto engine = std::make_shared<std::mt19937_64>(seed++);
    spool = std::make_unique<queue::spool>(
        storage, [r = rt.get()] { return r->now(); }, [engine] { return (*engine)(); }, so);
    EXPECT_FALSE(spool->open());
    queue::recovery_report report;
    EXPECT_FALSE(spool->recover(report));
    logger = std::make_unique<log::logger>(
        log::logger_options{"relay.example.com", [r = rt.get()] { return r->now(); }});
    auto s = std::make_unique<log::memory_sink>(true);
    sink = s.get();
    logger->add_sink(std::move(s));
    smtp = std::make_unique<fake_agent>(*rt);
    options.gate = nullptr;
    if (gated) {
      agent_log = std::make_unique<log::logger>(
          log::logger_options{"relay.example.com", [r = rt.get()] { return r->now(); }});
      auto g = std::make_unique<log_gate>(*logger);
      options.gate = g.get();
      agent_log->add_sink(std::move(g));
      smtp->log = agent_log.get();
    }
    qm = std::make_unique<manager>(*spool, *rt, *logger, router(routing), options);
    qm->add_transport("smtp", *smtp);
    qm->adopt(report);
    qm->start();
    return report;
  }

  std::string submit(const std::string& sender, const std::vector<std::string>& rcpts,
                     const std::string& body = content) {
    queue::incoming_message m;
    EXPECT_FALSE(spool->begin(m));
    m.set_sender(sender);
    for (const auto& r : rcpts) EXPECT_FALSE(m.add_recipient({r, "", 0}));
    EXPECT_FALSE(m.append_content(body));
    const std::string id = m.queue_id();
    bool ok = false;
    spool->commit(std::move(m), [&](const queue::commit_status& s) { ok = !s.ec; });
    EXPECT_TRUE(ok);
    qm->notify_new_message(id);
    return id;
  }

  /// Log texts of one program ("qmgr", "bounce") in order.
  std::vector<std::string> texts_of(const std::string& program) const {
    std::vector<std::string> out;
    const auto lines = sink->lines();
    const auto texts = sink->texts();
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (lines[i].find(" postfix/" + program + "[4110]: ") != std::string::npos)
        out.push_back(texts[i]);
    return out;
  }
};

TEST(qmgr, delivers_and_removes) {
  host h;
  h.boot();
  const auto id = h.submit("sender@example.org", {"rcpt@remote.example"});
  h.rt->run_for(1s);
  ASSERT_EQ(h.smtp->jobs.size(), 1u);
  const auto& j = h.smtp->jobs[0].job;
  EXPECT_EQ(j.queue_id, id);
  EXPECT_EQ(j.sender, "sender@example.org");
  EXPECT_EQ(j.hop.transport, "smtp");
  EXPECT_EQ(j.hop.host, "remote.example");
  EXPECT_EQ(j.size, content.size());
  EXPECT_EQ(h.smtp->jobs[0].content, content);
  EXPECT_EQ(h.texts_of("qmgr"), (std::vector<std::string>{
                                    id + ": from=<sender@example.org>, size=" +
                                        std::to_string(content.size()) + ", nrcpt=1 (queue active)",
                                    id + ": removed"}));
  EXPECT_EQ(h.spool->message_count(), 0u);
  EXPECT_TRUE(h.qm->idle());
}

TEST(qmgr, tempfail_then_success) {
  host h;
  h.boot();
  h.smtp->script = [](const auto&, const auto& r, std::size_t attempt) {
    return attempt == 0 ? fake_agent::deferred(r.index) : fake_agent::sent(r.index);
  };
  const auto id = h.submit("sender@example.org", {"rcpt@remote.example"});
  h.rt->run_for(1s);
  EXPECT_EQ(h.spool->state_of(id), queue::queue_state::deferred);
  std::vector<queue::queue_entry> entries;
  ASSERT_FALSE(h.spool->list(entries));
  ASSERT_EQ(entries.size(), 1u);
  ASSERT_EQ(entries[0].recipients.size(), 1u);
  EXPECT_EQ(entries[0].recipients[0].reason,
            "connect to mx.remote.example[192.0.2.1]:25: Connection refused");
  h.rt->run_for(298s);  // minimal_backoff_time is 300 s: nothing yet
  EXPECT_EQ(h.smtp->jobs.size(), 1u);
  h.rt->run_for(2s);
  ASSERT_EQ(h.smtp->jobs.size(), 2u);
  EXPECT_EQ(h.smtp->jobs[1].at, t0 + 300s);
  const std::string active = id +
                             ": from=<sender@example.org>, size=" + std::to_string(content.size()) +
                             ", nrcpt=1 (queue active)";
  EXPECT_EQ(h.texts_of("qmgr"), (std::vector<std::string>{active, active, id + ": removed"}));
  EXPECT_EQ(h.spool->message_count(), 0u);
}

TEST(qmgr, backoff_doubles_and_is_capped) {
  host h;
  h.options.queue_run_delay = 100s;
  h.boot();
  h.smtp->script = [](const auto&, const auto& r, std::size_t) {
    return fake_agent::deferred(r.index);
  };
  const auto id = h.submit("sender@example.org", {"rcpt@remote.example"});
  h.rt->run_for(20000s);
  std::vector<clock_point> times;
  for (const auto& s : h.smtp->jobs) times.push_back(s.at);
  // Postfix: next attempt = now + clamp(time in queue, 300 s, 4000 s).
  const std::vector<clock_point> expected = {t0,         t0 + 300s,   t0 + 600s,
                                             t0 + 1200s, t0 + 2400s,  t0 + 4800s,
                                             t0 + 8800s, t0 + 12800s, t0 + 16800s};
  EXPECT_EQ(times, expected);
  queue::queued_message m;
  ASSERT_FALSE(h.spool->load(id, m));
  EXPECT_EQ(m.file.attempts, expected.size());
  ASSERT_TRUE(m.file.next_attempt);
  EXPECT_EQ(*m.file.next_attempt, t0 + 20800s);
}

TEST(qmgr, permanent_failure_bounces_to_sender) {
  host h;
  h.boot();
  h.smtp->script = [](const auto&, const auto& r, std::size_t) {
    return r.address.starts_with("bad") ? fake_agent::bounced(r.index, r.address)
                                        : fake_agent::sent(r.index);
  };
  const auto id = h.submit("sender@example.org", {"bad@remote.example", "good@remote.example"});
  h.rt->run_for(1s);
  ASSERT_EQ(h.smtp->jobs.size(), 2u);
  const auto& dsn = h.smtp->jobs[1];
  EXPECT_EQ(dsn.job.sender, "");
  ASSERT_EQ(dsn.job.recipients.size(), 1u);
  EXPECT_EQ(dsn.job.recipients[0].address, "sender@example.org");
  EXPECT_EQ(dsn.job.hop.host, "example.org");  // the sender's own next hop
  const auto bounce_lines = h.texts_of("bounce");
  ASSERT_EQ(bounce_lines.size(), 1u);
  const std::string prefix = id + ": sender non-delivery notification: ";
  ASSERT_TRUE(bounce_lines[0].starts_with(prefix));
  EXPECT_EQ(bounce_lines[0].substr(prefix.size()), dsn.job.queue_id);
  // RFC 3464 structure.
  const auto& c = dsn.content;
  const auto has = [&](const std::string& s) { return c.find(s) != std::string::npos; };
  EXPECT_TRUE(has("\r\nFrom: Mail Delivery System <MAILER-DAEMON@relay.example.com>\r\n"));
  EXPECT_TRUE(has("\r\nTo: sender@example.org\r\n"));
  EXPECT_TRUE(has("Content-Type: multipart/report; report-type=delivery-status;\r\n"));
  EXPECT_TRUE(has("This is the mail system at host relay.example.com.\r\n"));
  EXPECT_TRUE(
      has("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; "
          "relay.example.com\r\nX-Postfix-Queue-ID: " +
          id + "\r\n"));
  EXPECT_TRUE(has("Arrival-Date: Sat, 28 Nov 2026 05:44:02 +0000 (UTC)\r\n"));
  EXPECT_TRUE(
      has("Final-Recipient: rfc822; bad@remote.example\r\nOriginal-Recipient: "
          "rfc822;bad@remote.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
          "Remote-MTA: dns; mx.remote.example\r\nDiagnostic-Code: smtp; 550 5.1.1"));
  EXPECT_FALSE(has("good@remote.example"));
  EXPECT_TRUE(has("Content-Type: message/rfc822\r\n"));
  EXPECT_TRUE(has("Return-Path: <sender@example.org>\r\n" + content));
  // Both the original and the notification are gone.
  EXPECT_EQ(h.spool->message_count(), 0u);
  EXPECT_EQ(h.qm->stats().bounces_queued, 1u);
}

TEST(qmgr, null_sender_never_gets_a_bounce) {
  host h;
  h.boot();
  h.smtp->script = [](const auto&, const auto& r, std::size_t) {
    return fake_agent::bounced(r.index, r.address);
  };
  const auto id = h.submit("", {"bad@remote.example"});
  h.rt->run_for(1s);
  EXPECT_EQ(h.smtp->jobs.size(), 1u);
  EXPECT_TRUE(h.texts_of("bounce").empty());
  EXPECT_EQ(h.texts_of("qmgr").back(), id + ": removed");
  EXPECT_EQ(h.spool->message_count(), 0u);
}

TEST(qmgr, lifetime_expiry_returns_mail) {
  host h;
  h.options.maximal_queue_lifetime = 1000s;
  h.options.queue_run_delay = 100s;
  h.boot();
  h.smtp->script = [](const auto& j, const auto& r, std::size_t) {
    return j.sender.empty() ? fake_agent::sent(r.index) : fake_agent::deferred(r.index);
  };
  const auto id = h.submit("sender@example.org", {"slow@remote.example"});
  h.rt->run_for(5000s);
  // Attempts at 0, 300, 600, 1200 s; at 1200 s the message is older than 1000 s.
  EXPECT_EQ(h.smtp->attempts("slow@remote.example"), 4u);
  const auto qmgr = h.texts_of("qmgr");
  EXPECT_NE(std::find(qmgr.begin(), qmgr.end(),
                      id + ": from=<sender@example.org>, status=expired, returned to sender"),
            qmgr.end());
  ASSERT_EQ(h.smtp->attempts("sender@example.org"), 1u);
  const auto& dsn = h.smtp->jobs.back().content;
  EXPECT_NE(dsn.find("Action: failed\r\nStatus: 4.4.1\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Diagnostic-Code: X-Postfix; connect to mx.remote.example[192.0.2.1]:25:"),
            std::string::npos);
  EXPECT_EQ(h.spool->message_count(), 0u);
}

TEST(qmgr, bounce_queue_lifetime_for_null_sender) {
  host h;
  h.options.bounce_queue_lifetime = 0s;
  h.boot();
  h.smtp->script = [](const auto&, const auto& r, std::size_t) {
    return fake_agent::deferred(r.index);
  };
  const auto id = h.submit("", {"sender@example.org"});
  h.rt->run_for(1s);
  EXPECT_EQ(h.smtp->jobs.size(), 1u);  // tried once, expired, no notification
  EXPECT_EQ(h.texts_of("qmgr").back(), id + ": removed");
  EXPECT_TRUE(h.texts_of("bounce").empty());
}

TEST(qmgr, concurrency_and_recipient_limits) {
  host h;
  h.options.default_limits = {3, 2};
  h.boot();
  h.smtp->hold = 10s;
  for (int i = 0; i < 8; ++i) h.submit("s@example.org", {"r@remote.example"});
  const auto big =
      h.submit("s@example.org", {"a@remote.example", "b@remote.example", "c@remote.example",
                                 "d@remote.example", "e@remote.example"});
  h.rt->run_for(1000s);
  EXPECT_EQ(h.smtp->in_flight_max, 3u);
  std::vector<std::size_t> sizes;
  for (const auto& s : h.smtp->jobs)
    if (s.job.queue_id == big) sizes.push_back(s.job.recipients.size());
  EXPECT_EQ(sizes, (std::vector<std::size_t>{2, 2, 1}));
  EXPECT_EQ(h.spool->message_count(), 0u);
  EXPECT_EQ(h.smtp->jobs.size(), 11u);
}

TEST(qmgr, active_limit_bounds_messages_in_flight) {
  host h;
  h.options.message_active_limit = 2;
  h.boot();
  h.smtp->hold = 10s;
  for (int i = 0; i < 6; ++i) h.submit("s@example.org", {"r" + std::to_string(i) + "@d.example"});
  h.rt->run_for(1s);
  EXPECT_EQ(h.qm->stats().active, 2u);
  EXPECT_EQ(h.qm->stats().pending, 4u);
  h.rt->run_for(100s);
  EXPECT_EQ(h.smtp->in_flight_max, 2u);
  EXPECT_EQ(h.spool->message_count(), 0u);
}

TEST(qmgr, restart_never_redelivers_a_done_recipient) {
  host h;
  // one.example answers at once; two.example holds the job, and the host crashes meanwhile.
  h.routing.transport_maps.push_back(std::shared_ptr<const maps::table>([] {
    std::string error;
    return maps::open("inline:{two.example=slow:}", error);
  }()));
  h.boot();
  fake_agent slow(*h.rt);
  slow.hold = 60s;
  h.qm->add_transport("slow", slow);
  const auto id = h.submit("s@example.org", {"a@one.example", "b@two.example"});
  h.rt->run_for(10s);
  EXPECT_EQ(h.smtp->attempts("a@one.example"), 1u);
  EXPECT_EQ(slow.attempts("b@two.example"), 1u);  // in flight
  h.storage.crash();
  const auto report = h.boot(t0 + 3600s);
  ASSERT_EQ(report.messages.size(), 1u);
  EXPECT_EQ(report.messages[0].recipients_undone, 1u);
  fake_agent slow2(*h.rt);
  h.qm->add_transport("slow", slow2);
  h.rt->run_for(100s);
  EXPECT_EQ(h.smtp->attempts("a@one.example"), 0u);  // done before the crash: never again
  EXPECT_EQ(slow2.attempts("b@two.example"), 1u);
  EXPECT_EQ(h.texts_of("qmgr").back(), id + ": removed");
  EXPECT_EQ(h.spool->message_count(), 0u);
}

TEST(qmgr, crash_at_every_storage_step_never_redelivers_done_recipients) {
  // The host crashes after the n-th storage operation of a delivery run fails; after the
  // restart a recipient whose done mark survived is never handed to an agent again, and every
  // recipient is delivered at least once.
  for (std::uint64_t n = 0; n < 40; ++n) {
    host h;
    h.boot();
    const auto id = h.submit("s@example.org", {"a@one.example", "b@two.example"});
    h.storage.faults().fail_at(n, std::make_error_code(std::errc::io_error));
    h.rt->run_for(1s);
    const auto first_a = h.smtp->attempts("a@one.example");
    const auto first_b = h.smtp->attempts("b@two.example");
    h.storage.crash();
    h.boot(t0 + 10000s);
    std::vector<bool> done(2, true);  // a message that is gone is done for everyone
    queue::queued_message m;
    if (!h.spool->load(id, m))
      for (std::size_t i = 0; i < 2; ++i) done[i] = m.file.status[i].done;
    h.qm->flush();
    h.rt->run_for(100000s);
    const auto again_a = h.smtp->attempts("a@one.example");
    const auto again_b = h.smtp->attempts("b@two.example");
    EXPECT_GE(first_a + again_a, 1u) << "n=" << n;
    EXPECT_GE(first_b + again_b, 1u) << "n=" << n;
    if (done[0]) {
      EXPECT_EQ(again_a, 0u) << "n=" << n;
    }
    if (done[1]) {
      EXPECT_EQ(again_b, 0u) << "n=" << n;
    }
    EXPECT_EQ(h.spool->message_count(), 0u) << "n=" << n;
  }
}

std::size_t count_of(const std::vector<std::string>& texts, const std::string& part) {
  return static_cast<std::size_t>(std::count_if(texts.begin(), texts.end(), [&](const auto& t) {
    return t.find(part) != std::string::npos;
  }));
}

std::shared_ptr<const maps::table> two_example_is_slow() {
  std::string error;
  return maps::open("inline:{two.example=slow:}", error);
}

fake_agent::script_fn bad_bounces() {
  return [](const auto&, const auto& r, std::size_t) {
    return r.address.starts_with("bad") ? fake_agent::bounced(r.index, r.address)
                                        : fake_agent::sent(r.index);
  };
}

// Boots `h` gated, with the smtp agent bouncing bad@ addresses and two.example routed to a
// "slow" agent that logs through the gate and holds each job for 60 s. The agent must outlive
// the queue manager's use of it: keep it beside `h`.
std::unique_ptr<fake_agent> boot_bouncing_with_slow_agent(host& h) {
  h.gated = true;
  h.routing.transport_maps.push_back(two_example_is_slow());
  h.boot();
  h.smtp->script = bad_bounces();
  auto slow = std::make_unique<fake_agent>(*h.rt);
  slow->hold = 60s;
  slow->log = h.agent_log.get();
  h.qm->add_transport("slow", *slow);
  return slow;
}

// Sweep seed 512266: a recipient rejected with 550 was logged "status=bounced" when its job
// ended, but nothing durable said so until the whole message finished; a crash in between
// tried it again after the restart, so it was logged and notified twice.
TEST(qmgr, crash_between_a_bounce_and_finish_neither_retries_nor_logs_it_again) {
  host h;
  const auto slow = boot_bouncing_with_slow_agent(h);
  const auto id = h.submit("sender@example.org", {"bad@one.example", "b@two.example"});
  h.rt->run_for(10s);  // bad@one.example has failed; b@two.example is still in flight
  EXPECT_EQ(h.smtp->attempts("bad@one.example"), 1u);
  EXPECT_EQ(count_of(h.sink->texts(), id + ": to=<bad@one.example>, status=bounced"), 1u);
  EXPECT_TRUE(h.texts_of("bounce").empty());
  h.storage.crash();
  const auto report = h.boot(t0 + 3600s);
  ASSERT_EQ(report.messages.size(), 1u);
  fake_agent slow2(*h.rt);
  slow2.log = h.agent_log.get();
  h.qm->add_transport("slow", slow2);
  h.rt->run_for(100s);
  EXPECT_EQ(h.smtp->attempts("bad@one.example"), 0u);
  EXPECT_EQ(slow2.attempts("b@two.example"), 1u);
  const auto after = h.sink->texts();
  EXPECT_EQ(count_of(after, "to=<bad@one.example>"), 0u);
  EXPECT_EQ(count_of(after, id + ": to=<b@two.example>, status=sent"), 1u);
  // The notification still goes out, once, with what the failed attempt reported.
  const auto bounce_lines = h.texts_of("bounce");
  ASSERT_EQ(bounce_lines.size(), 1u);
  EXPECT_TRUE(bounce_lines[0].starts_with(id + ": sender non-delivery notification: "));
  ASSERT_EQ(h.smtp->attempts("sender@example.org"), 1u);
  const auto& dsn = h.smtp->jobs.back().content;
  EXPECT_NE(dsn.find("Final-Recipient: rfc822; bad@one.example\r\n"), std::string::npos);
  EXPECT_NE(dsn.find("Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.remote.example\r\n"
                     "Diagnostic-Code: smtp; 550 5.1.1 <bad@one.example>"),
            std::string::npos);
  EXPECT_EQ(dsn.find("b@two.example"), std::string::npos);
  EXPECT_EQ(count_of(h.texts_of("qmgr"), id + ": removed"), 1u);
  EXPECT_EQ(h.spool->message_count(), 0u);
}

// Recording the failure changes nothing in a run without a crash: the lines come in Postfix's
// order (agent lines when the job ends, then the notification, then the removal).
TEST(qmgr, sent_and_bounced_recipients_log_in_postfix_order) {
  host h;
  h.gated = true;
  h.boot();
  h.smtp->script = bad_bounces();
  const auto id = h.submit("sender@example.org", {"good@remote.example", "bad@remote.example"});
  h.rt->run_for(1s);
  std::vector<std::string> mine;
  for (const auto& t : h.sink->texts())
    if (t.starts_with(id + ": ")) mine.push_back(t.substr(id.size() + 2));
  ASSERT_EQ(mine.size(), 5u);
  EXPECT_EQ(mine[0], "from=<sender@example.org>, size=" + std::to_string(content.size()) +
                         ", nrcpt=2 (queue active)");
  EXPECT_EQ(mine[1], "to=<good@remote.example>, status=sent");
  EXPECT_EQ(mine[2], "to=<bad@remote.example>, status=bounced");
  EXPECT_TRUE(mine[3].starts_with("sender non-delivery notification: "));
  EXPECT_EQ(mine[4], "removed");
}

// The host crashes after the k-th handler of the first run, wherever that is: before the
// failure, between it and the notification, between the notification and the done marks, or
// after the end. Across both runs the failure is logged exactly once (the gate and the durable
// failure record see to that), and the sender is notified at least once and at most twice.
TEST(qmgr, crash_anywhere_around_a_bounce_logs_it_once_and_notifies) {
  for (std::size_t k = 0; k < 120; ++k) {
    host h;
    const auto slow = boot_bouncing_with_slow_agent(h);
    const auto id = h.submit("sender@example.org", {"bad@one.example", "b@two.example"});
    h.rt->run_for(1000s, k);
    const auto first = h.sink->texts();
    const auto notified_first = h.smtp->attempts("sender@example.org");
    h.storage.crash();
    h.boot(t0 + 3600s);
    fake_agent slow2(*h.rt);
    slow2.log = h.agent_log.get();
    h.qm->add_transport("slow", slow2);
    h.smtp->script = bad_bounces();
    h.qm->flush();
    h.rt->run_for(100000s);
    const auto second = h.sink->texts();
    const std::string bounced = id + ": to=<bad@one.example>, status=bounced";
    EXPECT_EQ(count_of(first, bounced) + count_of(second, bounced), 1u) << "k=" << k;
    const auto notified = notified_first + h.smtp->attempts("sender@example.org");
    EXPECT_GE(notified, 1u) << "k=" << k;
    EXPECT_LE(notified, 2u) << "k=" << k;
    EXPECT_GE(slow->attempts("b@two.example") + slow2.attempts("b@two.example"), 1u) << "k=" << k;
    EXPECT_EQ(h.spool->message_count(), 0u) << "k=" << k;
  }
}

// The same for a message that expires: "status=expired, returned to sender" is logged once,
// even when the host crashes before the notification is queued or marked.
TEST(qmgr, crash_anywhere_around_an_expiry_logs_it_once_and_notifies) {
  const auto script = [](const auto& j, const auto& r, std::size_t) {
    return j.sender.empty() ? fake_agent::sent(r.index) : fake_agent::deferred(r.index);
  };
  for (std::size_t k = 0; k < 60; ++k) {
    host h;
    h.options.maximal_queue_lifetime = 0s;  // the first failed attempt expires the message
    h.boot();
    h.smtp->script = script;
    const auto id = h.submit("sender@example.org", {"slow@remote.example"});
    h.rt->run_for(1000s, k);
    const auto first = h.texts_of("qmgr");
    const auto notified_first = h.smtp->attempts("sender@example.org");
    h.storage.crash();
    h.boot(t0 + 3600s);
    h.smtp->script = script;
    h.qm->flush();
    h.rt->run_for(100000s);
    const std::string expired = id + ": from=<sender@example.org>, status=expired";
    EXPECT_EQ(count_of(first, expired) + count_of(h.texts_of("qmgr"), expired), 1u) << "k=" << k;
    const auto notified = notified_first + h.smtp->attempts("sender@example.org");
    EXPECT_GE(notified, 1u) << "k=" << k;
    EXPECT_LE(notified, 2u) << "k=" << k;
    EXPECT_EQ(h.spool->message_count(), 0u) << "k=" << k;
  }
}

TEST(qmgr, routes_by_transport_maps_and_builtin_agents) {
  host h;
  std::string error;
  h.routing.transport_maps.push_back(
      maps::open("inline:{ {err.example = error:5.1.2 no such domain here}, drop.example=discard:, "
                 "gw.example=smtp:[10.0.0.1]:2525 }",
                 error));
  ASSERT_TRUE(h.routing.transport_maps.back()) << error;
  h.boot();
  const auto id = h.submit("sender@example.org",
                           {"x@err.example", "y@drop.example", "z@gw.example", "w@other.example"});
  h.rt->run_for(1s);
  // The fake smtp agent sees gw.example, other.example and the notification.
  ASSERT_EQ(h.smtp->jobs.size(), 3u);
  std::vector<std::string> hops;
  for (const auto& s : h.smtp->jobs) hops.push_back(hop_key(s.job.hop));
  EXPECT_EQ(hops, (std::vector<std::string>{"smtp:[10.0.0.1]:2525", "smtp:other.example",
                                            "smtp:example.org"}));
  const auto& dsn = h.smtp->jobs[2].content;
  EXPECT_NE(dsn.find("<x@err.example>: no such domain here"), std::string::npos);
  EXPECT_NE(dsn.find("Status: 5.1.2\r\n"), std::string::npos);
  EXPECT_EQ(dsn.find("drop.example"), std::string::npos);
  const auto lines = h.sink->lines();
  const auto logged = [&](const std::string& s) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const auto& l) { return l.find(s) != std::string::npos; });
  };
  EXPECT_TRUE(logged("postfix/error[4110]: " + id +
                     ": to=<x@err.example>, relay=none, delay=0, "
                     "delays=0/0/0/0, dsn=5.1.2, status=bounced (no such domain here)"));
  EXPECT_TRUE(logged("postfix/discard[4110]: " + id +
                     ": to=<y@drop.example>, relay=none, "
                     "delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (discarded)"));
  EXPECT_EQ(h.spool->message_count(), 0u);
}

TEST(qmgr, unknown_transport_defers) {
  host h;
  std::string error;
  h.routing.transport_maps.push_back(maps::open("inline:{x.example=nosuch:}", error));
  h.boot();
  const auto id = h.submit("sender@example.org", {"a@x.example"});
  h.rt->run_for(1s);
  EXPECT_EQ(h.spool->state_of(id), queue::queue_state::deferred);
  std::vector<queue::queue_entry> entries;
  ASSERT_FALSE(h.spool->list(entries));
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].recipients[0].reason, "mail transport unavailable");
}

TEST(qmgr, flush_makes_deferred_mail_due) {
  host h;
  h.boot();
  h.smtp->script = [](const auto&, const auto& r, std::size_t attempt) {
    return attempt == 0 ? fake_agent::deferred(r.index) : fake_agent::sent(r.index);
  };
  h.submit("sender@example.org", {"rcpt@remote.example"});
  h.rt->run_for(1s);
  EXPECT_EQ(h.smtp->jobs.size(), 1u);
  h.qm->flush();
  h.rt->run_for(1s);
  EXPECT_EQ(h.smtp->jobs.size(), 2u);
  EXPECT_EQ(h.spool->message_count(), 0u);
}

TEST(qmgr, log_gate_holds_agent_lines_until_outcomes_are_durable) {
  host h;
  h.boot();
  // The agent logs through its own logger into the gate; the gate forwards to the maillog.
  log::logger agent_log({"relay.example.com", [r = h.rt.get()] { return r->now(); }});
  auto gate_sink = std::make_unique<log_gate>(*h.logger);
  h.options.gate = gate_sink.get();
  agent_log.add_sink(std::move(gate_sink));
  h.qm.reset();
  h.qm = std::make_unique<manager>(*h.spool, *h.rt, *h.logger, router(h.routing), h.options);
  h.qm->add_transport("smtp", *h.smtp);
  h.qm->start();
  h.smtp->log = &agent_log;
  h.smtp->hold = 10s;
  agent_log.info({"postfix", "smtp", 1}, "connect to x[192.0.2.1]:25: Connection refused");
  const auto id = h.submit("sender@example.org", {"rcpt@remote.example"});
  h.rt->run_for(5s);  // the agent has logged, the outcome is not recorded yet
  const auto has = [&](const std::string& s) {
    const auto t = h.sink->texts();
    return std::find(t.begin(), t.end(), s) != t.end();
  };
  EXPECT_TRUE(has("connect to x[192.0.2.1]:25: Connection refused"));  // no queue ID: passes
  EXPECT_FALSE(has(id + ": to=<rcpt@remote.example>, status=sent"));
  h.rt->run_for(10s);
  EXPECT_TRUE(has(id + ": to=<rcpt@remote.example>, status=sent"));
  const auto t = h.sink->texts();
  const auto sent_at =
      std::find(t.begin(), t.end(), id + ": to=<rcpt@remote.example>, status=sent");
  const auto removed_at = std::find(t.begin(), t.end(), id + ": removed");
  EXPECT_LT(sent_at, removed_at);
}

// Two jobs of one message: releasing the first lets its lines (and shared ones) out while the
// second job's stay held, so a crash during the second loses only what was never made durable
// (sweep seed 512266 lost a durable recipient's status=sent line with one hold per message).
TEST(log_gate, releases_each_job_on_its_own) {
  log::logger target({"relay.example.com", [] { return std::chrono::system_clock::time_point{}; }});
  auto mem = std::make_unique<log::memory_sink>();
  auto* sink = mem.get();
  target.add_sink(std::move(mem));
  log::logger agents({"relay.example.com", [] { return std::chrono::system_clock::time_point{}; }});
  auto g = std::make_unique<log_gate>(target);
  log_gate& gate = *g;
  agents.add_sink(std::move(g));
  const std::string id = "926BCF32987";
  const auto one = gate.hold(id, {"u2@dest2.example", "reject-me@dest2.example"});
  const auto two = gate.hold(id, {"u2@dest1.example"});
  const log::origin smtp{"postfix", "smtp", 7};
  agents.info(smtp, id + ": to=<u2@dest1.example>, relay=none, status=deferred (slow)");
  agents.info(smtp, id + ": to=<u2@dest2.example>, relay=mx, status=sent (250 Ok)");
  agents.info(smtp, id + ": lost connection with mx.dest1.example while sending RCPT TO");
  agents.info(smtp, "connect to mx[192.0.2.1]:25: Connection refused");  // no queue ID
  EXPECT_EQ(sink->texts(),
            std::vector<std::string>{"connect to mx[192.0.2.1]:25: Connection refused"});
  gate.release(id, one);
  EXPECT_EQ(sink->texts(),
            (std::vector<std::string>{
                "connect to mx[192.0.2.1]:25: Connection refused",
                id + ": to=<u2@dest2.example>, relay=mx, status=sent (250 Ok)",
                id + ": lost connection with mx.dest1.example while sending RCPT TO"}));
  gate.release(id, two);
  ASSERT_EQ(sink->texts().size(), 4u);
  EXPECT_EQ(sink->texts()[3], id + ": to=<u2@dest1.example>, relay=none, status=deferred (slow)");
  agents.info(smtp, id + ": removed");  // nothing held any more: passes at once
  EXPECT_EQ(sink->texts().size(), 5u);
}

TEST(delivery_log, delay_format) {
  using d = std::chrono::duration<double>;
  EXPECT_EQ(format_delay(d(0)), "0");
  EXPECT_EQ(format_delay(d(0.004)), "0");
  EXPECT_EQ(format_delay(d(0.006)), "0.01");
  EXPECT_EQ(format_delay(d(0.07)), "0.07");
  EXPECT_EQ(format_delay(d(1.23)), "1.2");
  EXPECT_EQ(format_delay(d(18.7)), "18");
  EXPECT_EQ(format_delay(d(123.4)), "123");
}

}  // namespace
}  // namespace relaylab::qmgr
