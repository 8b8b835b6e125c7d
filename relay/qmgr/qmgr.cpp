#include "relay/qmgr/qmgr.hpp"

#include "relay/config/config.hpp"
#include "relay/qmgr/bounce.hpp"
#include "relay/qmgr/delivery_log.hpp"
#include "relay/qmgr/log_gate.hpp"

#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace relaylab::qmgr {

namespace asio = boost::asio;
using clock_point = std::chrono::system_clock::time_point;

namespace {

std::size_t positive(long long v, std::size_t fallback) {
  return v > 0 ? static_cast<std::size_t>(v) : fallback;
}

}  // namespace

qmgr_options options_from_config(const config::parameters& p,
                                 const std::vector<std::string>& transports) {
  qmgr_options o;
  o.myhostname = p.get("myhostname");
  o.mail_name = p.get("mail_name");
  o.syslog_name = p.get("syslog_name");
  o.queue_run_delay = p.get_time("queue_run_delay");
  o.minimal_backoff_time = p.get_time("minimal_backoff_time");
  o.maximal_backoff_time = p.get_time("maximal_backoff_time");
  o.maximal_queue_lifetime = p.get_time("maximal_queue_lifetime");
  o.bounce_queue_lifetime = p.get_time("bounce_queue_lifetime");
  o.default_limits.concurrency = positive(p.get_int("default_destination_concurrency_limit"), 20);
  o.default_limits.recipients = positive(p.get_int("default_destination_recipient_limit"), 50);
  o.message_active_limit = positive(p.get_int("qmgr_message_active_limit"), 20000);
  o.message_recipient_limit = positive(p.get_int("qmgr_message_recipient_limit"), 20000);
  o.bounce_size_limit_bytes = positive(p.get_int("bounce_size_limit"), 50000);
  for (const auto& t : transports) {
    transport_limits l = o.default_limits;
    const auto c = t + "_destination_concurrency_limit";
    const auto r = t + "_destination_recipient_limit";
    if (p.is_known(c) || p.is_set(c)) l.concurrency = positive(p.get_int(c), l.concurrency);
    if (p.is_known(r) || p.is_set(r)) l.recipients = positive(p.get_int(r), l.recipients);
    o.transport_limits_by_name[t] = l;
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Built-in agents: error(8) and discard(8).

class manager::error_agent final : public delivery::agent {
 public:
  error_agent(net::runtime& rt, log::logger& log, log::origin origin)
      : rt_(rt), log_(log), origin_(std::move(origin)) {}
  asio::awaitable<std::vector<delivery::recipient_outcome>> deliver(
      const delivery::job& j) override {
    std::vector<delivery::recipient_outcome> out;
    // "5.1.1 text" gives its own status, as error(8) reads the next hop.
    std::string dsn = "5.0.0", text = j.hop.text;
    if (text.size() > 6 && (text[0] == '4' || text[0] == '5') && text[1] == '.' &&
        text.find(' ') != std::string::npos) {
      dsn = text.substr(0, text.find(' '));
      text = text.substr(text.find(' ') + 1);
    }
    for (const auto& r : j.recipients) {
      delivery::recipient_outcome o;
      o.index = r.index;
      o.status =
          dsn[0] == '4' ? delivery::outcome_status::deferred : delivery::outcome_status::bounced;
      o.dsn = dsn;
      o.relay = "none";
      o.reason = text.empty() ? std::string("delivery temporarily suspended") : text;
      log_.info(origin_, delivery_line(j, r, o, j.handed_over, rt_.now()));
      out.push_back(std::move(o));
    }
    co_return out;
  }

 private:
  net::runtime& rt_;
  log::logger& log_;
  log::origin origin_;
};

class manager::discard_agent final : public delivery::agent {
 public:
  discard_agent(net::runtime& rt, log::logger& log, log::origin origin)
      : rt_(rt), log_(log), origin_(std::move(origin)) {}
  asio::awaitable<std::vector<delivery::recipient_outcome>> deliver(
      const delivery::job& j) override {
    std::vector<delivery::recipient_outcome> out;
    for (const auto& r : j.recipients) {
      delivery::recipient_outcome o;
      o.index = r.index;
      o.status = delivery::outcome_status::sent;
      o.dsn = "2.0.0";
      o.relay = "none";
      o.reason = j.hop.text.empty() ? std::string("discarded") : j.hop.text;
      log_.info(origin_, delivery_line(j, r, o, j.handed_over, rt_.now()));
      out.push_back(std::move(o));
    }
    co_return out;
  }

 private:
  net::runtime& rt_;
  log::logger& log_;
  log::origin origin_;
};

// ---------------------------------------------------------------------------------------------

struct manager::destination {
  std::size_t in_flight = 0;
  std::size_t limit = 1;
  std::deque<std::function<void()>> waiters;
};

struct manager::message_state {
  std::string id;
  queue::queued_message msg;
  clock_point active_at{};
  std::size_t jobs_left = 0;
  std::size_t recipients = 0;  // counted against qmgr_message_recipient_limit
  std::vector<delivery::recipient_outcome> failed;
  std::vector<delivery::recipient_outcome> deferred;
  std::set<std::uint32_t> expired;
  bool removed = false;  // complete() deleted it: finish() has nothing left to do on disk
};

manager::manager(queue::spool& spool, net::runtime& rt, log::logger& log, router routes,
                 qmgr_options options)
    : spool_(spool),
      rt_(rt),
      log_(log),
      routes_(std::move(routes)),
      options_(std::move(options)),
      qmgr_origin_{options_.syslog_name, "qmgr", options_.pid},
      bounce_origin_{options_.syslog_name, "bounce", options_.pid},
      alive_(std::make_shared<bool>(true)) {
  error_agent_ = std::make_unique<error_agent>(
      rt_, log_, log::origin{options_.syslog_name, "error", options_.pid});
  discard_agent_ = std::make_unique<discard_agent>(
      rt_, log_, log::origin{options_.syslog_name, "discard", options_.pid});
  agents_["error"] = error_agent_.get();
  agents_["discard"] = discard_agent_.get();
}

manager::~manager() { *alive_ = false; }

void manager::add_transport(std::string name, delivery::agent& agent) {
  agents_[std::move(name)] = &agent;
}

void manager::adopt(const queue::recovery_report& report) {
  for (const auto& m : report.messages) {
    if (m.state == queue::queue_state::deferred && m.next_attempt) {
      schedule_[m.queue_id] = *m.next_attempt;
    } else {
      enqueue(m.queue_id);
    }
  }
}

void manager::start() {
  if (running_) return;
  running_ = true;
  auto alive = alive_;
  asio::post(rt_.executor(), [this, alive] {
    if (!*alive) return;
    scan_due();
    pump();
    asio::co_spawn(rt_.executor(), scan_loop(), asio::detached);
  });
}

void manager::stop() {
  auto alive = alive_;
  asio::post(rt_.executor(), [this, alive] {
    if (*alive) stopped_ = true;
  });
}

void manager::notify_new_message(std::string queue_id) {
  auto alive = alive_;
  asio::post(rt_.executor(), [this, alive, id = std::move(queue_id)]() mutable {
    if (!*alive) return;
    enqueue(std::move(id));
    pump();
  });
}

void manager::flush() {
  auto alive = alive_;
  asio::post(rt_.executor(), [this, alive] {
    if (!*alive) return;
    for (auto& [id, when] : schedule_) when = clock_point::min();
    scan_due();
    pump();
  });
}

qmgr_stats manager::stats() const {
  qmgr_stats s = stats_;
  s.active = active_;
  s.pending = pending_.size();
  s.scheduled = schedule_.size();
  return s;
}

bool manager::idle() const { return active_ == 0 && pending_.empty(); }

void manager::enqueue(std::string queue_id) {
  if (known_.contains(queue_id)) return;
  schedule_.erase(queue_id);
  known_.insert(queue_id);
  pending_.push_back(std::move(queue_id));
}

void manager::pump() {
  if (!running_ || stopped_) return;
  while (!pending_.empty() && active_ < options_.message_active_limit &&
         active_recipients_ < options_.message_recipient_limit) {
    std::string id = std::move(pending_.front());
    pending_.pop_front();
    ++active_;
    asio::co_spawn(rt_.executor(), process(std::move(id)), asio::detached);
  }
}

asio::awaitable<void> manager::scan_loop() {
  auto alive = alive_;
  while (*alive && !stopped_) {
    co_await rt_.sleep_for(options_.queue_run_delay);
    if (!*alive || stopped_) break;
    scan_due();
    pump();
  }
}

void manager::scan_due() {
  const auto now = rt_.now();
  std::vector<std::string> due;
  for (const auto& [id, when] : schedule_)
    if (when <= now) due.push_back(id);
  for (auto& id : due) enqueue(std::move(id));
}

void manager::spool_warning(const std::string& what, std::error_code ec) {
  ++stats_.spool_errors;
  log_.warning(qmgr_origin_, what + ": " + ec.message());
}

const transport_limits& manager::limits_for(const std::string& transport) const {
  if (auto it = options_.transport_limits_by_name.find(transport);
      it != options_.transport_limits_by_name.end())
    return it->second;
  return options_.default_limits;
}

asio::awaitable<queue::commit_status> manager::spool_call(const spool_operation& start) {
  auto ex = rt_.executor();
  // A named initiation, passed as an lvalue: GCC 12 destroys temporaries of a co_await
  // full-expression twice.
  auto initiation = [&start, ex](auto handler) {
    auto h = std::make_shared<decltype(handler)>(std::move(handler));
    start([h, ex](const queue::commit_status& s) { asio::post(ex, [h, s] { (*h)(s); }); });
  };
  const queue::commit_status status =
      co_await asio::async_initiate<decltype(asio::use_awaitable), void(queue::commit_status)>(
          initiation, asio::use_awaitable);
  co_return status;
}

asio::awaitable<void> manager::acquire(destination& d) {
  if (d.in_flight < d.limit) {
    ++d.in_flight;
    co_return;
  }
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [&d](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        d.waiters.emplace_back([h] { (*h)(); });
      },
      asio::use_awaitable);
}

void manager::release(destination& d) {
  if (d.waiters.empty()) {
    --d.in_flight;
    return;
  }
  // The slot passes to the next waiter as it is.
  auto next = std::move(d.waiters.front());
  d.waiters.pop_front();
  asio::post(rt_.executor(), std::move(next));
}

asio::awaitable<void> manager::process(std::string queue_id) {
  auto alive = alive_;
  auto m = std::make_shared<message_state>();
  m->id = queue_id;
  const auto done_without_jobs = [&] {
    --active_;
    known_.erase(queue_id);
    pump();
  };
  const auto state = spool_.state_of(queue_id);
  if (!state) {  // removed meanwhile (queue delete, or a duplicate notification)
    done_without_jobs();
    co_return;
  }
  if (*state != queue::queue_state::active) {
    if (auto ec = spool_.activate(queue_id)) {
      spool_warning(queue_id + ": activate", ec);
      schedule_[queue_id] = rt_.now() + options_.minimal_backoff_time;
      done_without_jobs();
      co_return;
    }
  }
  m->active_at = rt_.now();
  if (auto ec = spool_.load(queue_id, m->msg)) {
    spool_warning(queue_id + ": load", ec);
    if (ec != queue::errc::corrupt && ec != queue::errc::not_found)
      schedule_[queue_id] = rt_.now() + options_.minimal_backoff_time;
    done_without_jobs();
    co_return;
  }
  const auto& file = m->msg.file;
  std::vector<std::uint32_t> undone;
  for (std::uint32_t i = 0; i < file.status.size(); ++i)
    if (!file.status[i].done) undone.push_back(i);
  if (undone.empty()) {  // finished before a crash; only the remove was lost
    if (auto ec = spool_.remove(queue_id)) {
      spool_warning(queue_id + ": remove", ec);
    } else {
      ++stats_.removed;
      log_.info(qmgr_origin_, queue_id + ": removed");
    }
    done_without_jobs();
    co_return;
  }
  log_.info(qmgr_origin_, queue_id + ": from=<" + file.env.sender +
                              ">, size=" + std::to_string(file.content_bytes) +
                              ", nrcpt=" + std::to_string(undone.size()) + " (queue active)");
  m->recipients = undone.size();
  active_recipients_ += m->recipients;

  // Group by next hop (ordered, so job order is reproducible), then cut to recipient limits.
  std::map<std::string, std::pair<delivery::next_hop, std::vector<delivery::job_recipient>>> groups;
  for (auto i : undone) {
    if (file.status[i].failure) {
      // Failed in an earlier run that ended before the notification was queued: notify now,
      // never deliver again.
      const auto& f = *file.status[i].failure;
      m->failed.push_back({i, delivery::outcome_status::bounced, f.dsn, f.relay, f.reason});
      if (f.outcome == queue::done_outcome::expired) m->expired.insert(i);
      continue;
    }
    const auto& r = file.env.recipients[i];
    auto hop = routes_.resolve(r.address);
    auto& g = groups[hop_key(hop)];
    if (g.second.empty()) g.first = std::move(hop);
    g.second.push_back({i, r.address, r.orcpt, r.notify});
  }
  std::vector<std::pair<delivery::next_hop, std::vector<delivery::job_recipient>>> jobs;
  for (auto& [key, g] : groups) {
    const std::size_t per_job = std::max<std::size_t>(1, limits_for(g.first.transport).recipients);
    for (std::size_t at = 0; at < g.second.size(); at += per_job) {
      const auto end = std::min(g.second.size(), at + per_job);
      jobs.emplace_back(g.first, std::vector<delivery::job_recipient>(
                                     g.second.begin() + static_cast<std::ptrdiff_t>(at),
                                     g.second.begin() + static_cast<std::ptrdiff_t>(end)));
    }
  }
  m->jobs_left = jobs.size();
  if (jobs.empty()) {  // only earlier failures left to notify
    co_await finish(m);
    co_return;
  }
  for (auto& [hop, rcpts] : jobs)
    asio::co_spawn(rt_.executor(), run_job(m, std::move(hop), std::move(rcpts)), asio::detached);
}

asio::awaitable<void> manager::run_job(std::shared_ptr<message_state> m, delivery::next_hop hop,
                                       std::vector<delivery::job_recipient> recipients) {
  auto alive = alive_;
  const std::string key = hop_key(hop);
  auto& slot = destinations_[key];
  if (!slot) {
    slot = std::make_unique<destination>();
    slot->limit = std::max<std::size_t>(1, limits_for(hop.transport).concurrency);
  }
  destination& dest = *slot;
  co_await acquire(dest);
  if (!*alive) co_return;

  const auto& file = m->msg.file;
  delivery::job j;
  j.queue_id = m->id;
  j.sender = file.env.sender;
  j.recipients = recipients;
  j.size = file.content_bytes;
  j.hop = hop;
  j.attributes = file.env.attributes;
  j.arrival = file.env.arrival;
  j.queued_active = m->active_at;
  j.handed_over = rt_.now();
  j.read_content = [this, m](std::uint64_t offset, std::size_t bytes_max, std::string& out) {
    return spool_.read_content(m->msg, offset, bytes_max, out);
  };

  std::vector<delivery::recipient_outcome> outcomes;
  std::uint64_t gate_token = 0;
  const auto agent = agents_.find(hop.transport);
  if (agent == agents_.end()) {
    for (const auto& r : recipients) {
      delivery::recipient_outcome o;
      o.index = r.index;
      o.status = delivery::outcome_status::deferred;
      o.dsn = "4.3.0";
      o.relay = "none";
      o.reason = "mail transport unavailable";
      log_.info(log::origin{options_.syslog_name, hop.transport, options_.pid},
                delivery_line(j, r, o, j.handed_over, rt_.now()));
      outcomes.push_back(std::move(o));
    }
  } else {
    ++stats_.deliveries;
    if (options_.gate != nullptr) {
      std::vector<std::string> addresses;
      addresses.reserve(recipients.size());
      for (const auto& r : recipients) addresses.push_back(r.address);
      gate_token = options_.gate->hold(m->id, addresses);
    }
    outcomes = co_await agent->second->deliver(j);
  }
  if (!*alive) co_return;
  release(dest);

  // Exactly one outcome per recipient handed over; anything else is the agent's fault and
  // the recipient is tried again.
  std::map<std::uint32_t, delivery::recipient_outcome> by_index;
  for (auto& o : outcomes) {
    const bool ours = std::any_of(recipients.begin(), recipients.end(),
                                  [&](const auto& r) { return r.index == o.index; });
    if (ours) by_index.try_emplace(o.index, std::move(o));
  }
  std::vector<std::uint32_t> sent;
  std::vector<queue::recipient_failure> failures;
  for (const auto& r : recipients) {
    auto it = by_index.find(r.index);
    if (it == by_index.end()) {
      delivery::recipient_outcome o;
      o.index = r.index;
      o.status = delivery::outcome_status::deferred;
      o.dsn = "4.3.0";
      o.relay = "none";
      o.reason = "delivery agent returned no status";
      m->deferred.push_back(std::move(o));
      continue;
    }
    switch (it->second.status) {
      case delivery::outcome_status::sent:
        sent.push_back(r.index);
        ++stats_.sent;
        break;
      case delivery::outcome_status::bounced:
        ++stats_.bounced;
        failures.push_back({r.index, queue::done_outcome::bounced, it->second.dsn, it->second.relay,
                            it->second.reason});
        m->failed.push_back(std::move(it->second));
        break;
      case delivery::outcome_status::deferred:
        ++stats_.deferred;
        m->deferred.push_back(std::move(it->second));
        break;
    }
  }
  if (!sent.empty() && m->jobs_left == 1 && m->deferred.empty() && m->failed.empty() &&
      sent.size() == recipients.size()) {
    // The message's last job delivered everything: delete it in the spool's next group
    // commit instead of a done mark with an fsync of its own. The agent's log lines stay held
    // until the deletion is durable.
    const spool_operation complete = [this, &m](queue::commit_callback done) {
      spool_.complete(m->id, std::move(done));
    };
    const queue::commit_status status = co_await spool_call(complete);
    if (!*alive) co_return;
    if (!status.ec) {
      m->removed = true;
      sent.clear();
    } else {
      spool_warning(m->id + ": complete", status.ec);
    }
  }
  if (!sent.empty()) {
    // Durable before anything else: a crash from here on never delivers these again.
    if (auto ec = spool_.mark_done(m->id, sent, queue::done_outcome::delivered))
      spool_warning(m->id + ": mark delivered", ec);
  }
  if (!failures.empty()) {
    // Durable before the agent's "status=bounced" lines leave the gate: a crash before finish()
    // queues the notification then sends it after the restart instead of trying (and logging)
    // these recipients again. A failed write leaves them to this run's finish() only.
    if (auto ec = spool_.record_failures(m->id, failures))
      spool_warning(m->id + ": record bounced", ec);
  }
  if (options_.gate != nullptr && agent != agents_.end()) options_.gate->release(m->id, gate_token);
  if (--m->jobs_left == 0) co_await finish(m);
}

asio::awaitable<bool> manager::send_bounce(message_state& m,
                                           const std::vector<std::uint32_t>& failed) {
  const auto& file = m.msg.file;
  queue::incoming_message out;
  if (auto ec = spool_.begin(out)) {
    spool_warning(m.id + ": bounce", ec);
    co_return false;
  }
  bounce_input in;
  in.queue_id = m.id;
  in.new_queue_id = out.queue_id();
  in.sender = file.env.sender;
  in.myhostname = options_.myhostname;
  in.mail_name = options_.mail_name;
  in.arrival = file.env.arrival;
  in.now = rt_.now();
  in.bounce_size_limit_bytes = options_.bounce_size_limit_bytes;
  for (const auto& o : m.failed) {
    if (std::find(failed.begin(), failed.end(), o.index) == failed.end()) continue;
    const auto& r = file.env.recipients[o.index];
    in.recipients.push_back({r.address, r.orcpt, o.dsn, o.relay, o.reason});
  }
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(
      file.content_bytes,
      std::max(options_.bounce_read_bytes_max, options_.bounce_size_limit_bytes + 1)));
  std::string chunk;
  for (std::size_t off = 0; off < want;) {
    if (auto ec =
            spool_.read_content(m.msg, off, std::min<std::size_t>(want - off, 1 << 16), chunk)) {
      spool_warning(m.id + ": bounce: read", ec);
      co_return false;
    }
    if (chunk.empty()) break;
    off += chunk.size();
    in.content += chunk;
  }
  const std::string body = compose_bounce(in);
  out.set_sender("");
  (void)out.add_recipient({file.env.sender, "", 0});
  if (auto ec = out.append_content(body)) {
    spool_warning(m.id + ": bounce", ec);
    co_return false;
  }
  const std::string new_id = out.queue_id();
  const spool_operation commit = [this, &out](queue::commit_callback done) {
    spool_.commit(std::move(out), std::move(done));
  };
  const queue::commit_status status = co_await spool_call(commit);
  if (status.ec) {
    spool_warning(m.id + ": bounce: commit", status.ec);
    co_return false;
  }
  ++stats_.bounces_queued;
  log_.info(bounce_origin_, m.id + ": sender non-delivery notification: " + new_id);
  enqueue(new_id);
  co_return true;
}

asio::awaitable<void> manager::finish(std::shared_ptr<message_state> m) {
  auto alive = alive_;
  const auto& file = m->msg.file;
  const auto now = rt_.now();
  const auto lifetime =
      file.env.sender.empty() ? options_.bounce_queue_lifetime : options_.maximal_queue_lifetime;
  if (!m->deferred.empty() && now >= file.env.arrival + lifetime) {
    std::vector<queue::recipient_failure> failures;
    for (auto& o : m->deferred) {
      m->expired.insert(o.index);
      ++stats_.expired;
      failures.push_back({o.index, queue::done_outcome::expired, o.dsn, o.relay, o.reason});
      m->failed.push_back(std::move(o));
    }
    m->deferred.clear();
    // Durable before the line, as for bounced recipients: a crash before the notification is
    // queued sends it after the restart without expiring (and logging) the message again.
    if (auto ec = spool_.record_failures(m->id, failures))
      spool_warning(m->id + ": record expired", ec);
    log_.info(qmgr_origin_,
              m->id + ": from=<" + file.env.sender + ">, status=expired, returned to sender");
  }
  if (!m->failed.empty()) {
    std::vector<std::uint32_t> bounced, expired;
    for (const auto& o : m->failed)
      (m->expired.contains(o.index) ? expired : bounced).push_back(o.index);
    std::vector<std::uint32_t> all = bounced;
    all.insert(all.end(), expired.begin(), expired.end());
    bool notified = true;
    if (!file.env.sender.empty()) notified = co_await send_bounce(*m, all);
    if (!*alive) co_return;
    if (notified) {
      if (!bounced.empty())
        if (auto ec = spool_.mark_done(m->id, bounced, queue::done_outcome::bounced))
          spool_warning(m->id + ": mark bounced", ec);
      if (!expired.empty())
        if (auto ec = spool_.mark_done(m->id, expired, queue::done_outcome::expired))
          spool_warning(m->id + ": mark expired", ec);
    } else {
      // No notification could be queued: keep the recipients and try again later.
      for (auto& o : m->failed) m->deferred.push_back(std::move(o));
    }
    m->failed.clear();
  }
  if (!m->deferred.empty()) {
    auto delay = std::chrono::duration_cast<net::duration>(now - file.env.arrival);
    delay = std::clamp(delay, options_.minimal_backoff_time,
                       std::max(options_.minimal_backoff_time, options_.maximal_backoff_time));
    const auto next = now + delay;
    std::vector<queue::recipient_reason> reasons;
    reasons.reserve(m->deferred.size());
    for (const auto& o : m->deferred) reasons.push_back({o.index, o.reason});
    if (auto ec = spool_.defer(m->id, next, reasons)) spool_warning(m->id + ": defer", ec);
    schedule_[m->id] = next;
  } else if (m->removed) {
    ++stats_.removed;
    log_.info(qmgr_origin_, m->id + ": removed");
  } else if (auto ec = spool_.remove(m->id)) {
    spool_warning(m->id + ": remove", ec);
    schedule_[m->id] = now + options_.minimal_backoff_time;
  } else {
    ++stats_.removed;
    log_.info(qmgr_origin_, m->id + ": removed");
  }
  --active_;
  active_recipients_ -= std::min(active_recipients_, m->recipients);
  known_.erase(m->id);
  pump();
}

}  // namespace relaylab::qmgr
