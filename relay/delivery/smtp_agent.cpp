#include "relay/delivery/smtp_agent.hpp"

#include <algorithm>
#include <array>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>

#include "relay/net/tcp_stream.hpp"

namespace relaylab::delivery {

namespace asio = boost::asio;
using smtp::client_error;
using smtp::client_reply;
using smtp::client_session;
using smtp::client_stage;
using smtp::client_state;

std::string format_delay(std::chrono::microseconds d) {
  constexpr long million = 1000000;
  constexpr int sig_digits = 2;
  constexpr int max_digits = 2;  // delay_logging_resolution_limit
  long long total = std::max<long long>(0, d.count());
  long long sec = total / million;
  long long usec = total % million;
  static constexpr std::array<long, 7> pow10 = {1, 10, 100, 1000, 10000, 100000, 1000000};
  long resolution = million / pow10[max_digits];
  const long width = pow10[sig_digits];
  // Fewer decimals for larger values: two significant digits, never finer than the limit.
  if (sec > 0) {
    long n = 1;
    while (sec >= n && n <= width / 10) n *= 10;
    resolution = (million / width) * n;
  } else {
    while (usec >= width * resolution) resolution *= 10;
  }
  if (resolution > 1) {
    usec += resolution / 2;
    if (usec >= million) {
      sec += 1;
      usec -= million;
    }
  }
  std::string out = std::to_string(sec);
  if (usec >= resolution) {
    out += '.';
    long long rem = usec;
    for (long n = million / 10; rem >= resolution && n > 0; n /= 10) {
      out += static_cast<char>('0' + rem / n);
      rem %= n;
    }
  }
  return out;
}

namespace {

std::chrono::microseconds since(time_point later, time_point earlier) {
  if (later < earlier) return std::chrono::microseconds(0);
  return std::chrono::duration_cast<std::chrono::microseconds>(later - earlier);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view status_word(outcome_status s) {
  switch (s) {
    case outcome_status::sent:
      return "sent";
    case outcome_status::deferred:
      return "deferred";
    case outcome_status::bounced:
      return "bounced";
  }
  return "deferred";
}

bool is_ipv6(std::string_view a) { return a.find(':') != std::string_view::npos; }

// What went wrong, for every recipient still pending or for one of them.
struct failure {
  std::string dsn;
  std::string reason;
  std::string relay = "none";
  bool soft() const { return !dsn.empty() && dsn[0] == '4'; }
};

// Postfix's vsmtp_fill_dsn: a server reply whose class is neither 4 nor 5 where a failure
// was expected is a protocol error (5.5.0).
failure from_reply(const client_reply& r, std::string reason, std::string relay) {
  failure f;
  f.relay = std::move(relay);
  if (r.dsn.empty() || (r.dsn[0] != '4' && r.dsn[0] != '5')) {
    f.dsn = "5.5.0";
    f.reason = "Protocol error: " + reason;
  } else {
    f.dsn = r.dsn;
    f.reason = std::move(reason);
  }
  return f;
}

// A byte_stream failure while the engine was at `stage`.
struct io_failure {
  bool timeout = false;
  client_stage stage = client_stage::idle;
};

smtp::client_timestamp stamp(time_point t) {
  return std::chrono::duration_cast<smtp::client_timestamp>(t.time_since_epoch());
}
time_point from_stamp(smtp::client_timestamp t) {
  return time_point(std::chrono::duration_cast<time_point::duration>(t));
}

// relay/sasl's client behind the engine's authenticator interface, with
// smtp_sasl_mechanism_filter applied to the server's list.
class sasl_authenticator final : public smtp::client_authenticator {
 public:
  sasl_authenticator(std::unique_ptr<sasl::client_session> s, std::vector<std::string> filter)
      : session_(std::move(s)), filter_(std::move(filter)) {}
  smtp::client_auth_step start(std::string_view server_mechanisms) override {
    std::string offered;
    std::size_t pos = 0;
    while (pos < server_mechanisms.size()) {
      std::size_t end = server_mechanisms.find(' ', pos);
      if (end == std::string_view::npos) end = server_mechanisms.size();
      const std::string_view m = server_mechanisms.substr(pos, end - pos);
      const bool keep =
          !m.empty() &&
          (filter_.empty() || std::any_of(filter_.begin(), filter_.end(),
                                          [&](const std::string& f) { return iequals(f, m); }));
      if (keep) {
        if (!offered.empty()) offered += ' ';
        offered += m;
      }
      pos = end + 1;
    }
    return convert(session_->start(offered));
  }
  smtp::client_auth_step step(std::string_view challenge) override {
    return convert(session_->step(challenge));
  }

 private:
  static smtp::client_auth_step convert(const sasl::client_step_result& r) {
    smtp::client_auth_step s;
    s.ok = r.state == sasl::client_step_result::status::response;
    s.mechanism = r.mechanism;
    s.response = r.response;
    s.reason = r.reason;
    return s;
  }
  std::unique_ptr<sasl::client_session> session_;
  std::vector<std::string> filter_;
};

}  // namespace

std::string delivery_log_line(std::string_view queue_id, const job_recipient& r,
                              const recipient_outcome& o, const delivery_times& t) {
  std::string s(queue_id);
  s += ": to=<" + r.address + ">";
  if (!r.orcpt.empty() && !iequals(r.orcpt, r.address)) s += ", orig_to=<" + r.orcpt + ">";
  s += ", relay=" + o.relay;
  if (t.conn_use > 1) s += ", conn_use=" + std::to_string(t.conn_use);
  const time_point setup = t.conn_setup_done.value_or(t.done);
  s += ", delay=" + format_delay(since(t.done, t.arrival));
  s += ", delays=" + format_delay(since(t.queued_active, t.arrival));
  s += "/" + format_delay(since(t.handed_over, t.queued_active));
  s += "/" + format_delay(since(setup, t.handed_over));
  s += "/" + format_delay(since(t.done, setup));
  s += ", dsn=" + o.dsn + ", status=" + std::string(status_word(o.status)) + " (" + o.reason + ")";
  return s;
}

struct smtp_agent::state {
  smtp_agent& agent;
  const job& j;
  std::vector<std::optional<recipient_outcome>> outcomes;
  std::optional<time_point> conn_setup_done;
  failure last;  // the latest reason for recipients still pending
  std::size_t conn_use = 1;

  std::vector<std::size_t> pending() const {
    std::vector<std::size_t> p;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      if (!outcomes[i]) p.push_back(i);
    }
    return p;
  }

  void finish(std::size_t i, const failure& f, outcome_status st, time_point done) {
    recipient_outcome o;
    o.index = j.recipients[i].index;
    o.status = st;
    o.dsn = f.dsn;
    o.relay = f.relay;
    o.reason = f.reason;
    delivery_times t{j.arrival, j.queued_active, j.handed_over, conn_setup_done, done, conn_use};
    agent.logger_.info(agent.options_.origin, delivery_log_line(j.queue_id, j.recipients[i], o, t));
    outcomes[i] = std::move(o);
  }

  // Postfix's smtp_rcpt_fail / smtp_bulk_fail: a soft error on a server that is not the last
  // one keeps the recipient for the next server and only logs why.
  void fail_one(std::size_t i, const failure& f, bool final_server, time_point now) {
    if (f.soft() && !final_server) {
      agent.logger_.info(agent.options_.origin, j.queue_id + ": " + f.reason);
      last = f;
      return;
    }
    if (!conn_setup_done) conn_setup_done = now;
    finish(i, f, f.soft() ? outcome_status::deferred : outcome_status::bounced, now);
  }

  void fail_all(const failure& f, bool final_server, time_point now) {
    if (f.soft() && !final_server) {
      agent.logger_.info(agent.options_.origin, j.queue_id + ": " + f.reason);
      last = f;
      return;
    }
    if (!conn_setup_done) conn_setup_done = now;
    for (const std::size_t i : pending()) {
      finish(i, f, f.soft() ? outcome_status::deferred : outcome_status::bounced, now);
    }
  }
};

// Idle sessions by "address:port". Shared with the expiry coroutines, which may outlive the
// agent; `alive` tells them.
struct smtp_agent::session_pool {
  struct idle {
    std::unique_ptr<net::byte_stream> stream;
    std::unique_ptr<client_session> session;
    std::size_t uses = 0;
    time_point connected_at;
    std::uint64_t generation = 0;
  };
  std::multimap<std::string, idle> sessions;
  std::uint64_t next_generation = 1;
  bool alive = true;
};

smtp_agent::smtp_agent(smtp_agent_options options, net::connector& connector, net::runtime& runtime,
                       resolver& dns, log::logger& logger, random_source random)
    : pool_(std::make_shared<session_pool>()),
      options_(std::move(options)),
      connector_(connector),
      runtime_(runtime),
      dns_(dns),
      logger_(logger),
      random_(std::move(random)) {}

smtp_agent::~smtp_agent() {
  pool_->alive = false;
  for (auto& [key, s] : pool_->sessions) s.stream->close();
  pool_->sessions.clear();
}

std::size_t smtp_agent::cached_sessions() const { return pool_->sessions.size(); }

asio::awaitable<void> smtp_agent::expire(std::shared_ptr<session_pool> pool, net::runtime& rt,
                                         std::chrono::milliseconds after, std::string key,
                                         std::uint64_t generation) {
  co_await rt.sleep_for(after);
  if (!pool->alive) co_return;
  auto [first, last] = pool->sessions.equal_range(key);
  auto it =
      std::find_if(first, last, [&](const auto& e) { return e.second.generation == generation; });
  if (it == last) co_return;  // taken for another delivery meanwhile
  session_pool::idle idle = std::move(it->second);
  pool->sessions.erase(it);
  // QUIT without waiting for 221: the session is ours to end, and nothing depends on it.
  idle.session->quit(stamp(rt.now()));
  const std::string out(idle.session->output());
  std::error_code wec;
  const std::span<const char> bytes(out.data(), out.size());
  co_await idle.stream->write_all(bytes, std::chrono::seconds(5), wec);
  idle.stream->close();
}

namespace {

std::string dns_reason(std::string_view name, std::string_view type, dns_status s) {
  std::string r = "Host or domain name not found. Name service error for name=";
  r += name;
  r += " type=";
  r += type;
  r += ": Host not found";
  if (s == dns_status::servfail || s == dns_status::timeout) r += ", try again";
  return r;
}

failure dns_failure(std::string_view name, std::string_view type, dns_status s) {
  failure f;
  f.dsn = (s == dns_status::servfail || s == dns_status::timeout) ? "4.4.3" : "5.4.4";
  f.reason = dns_reason(name, type, s);
  return f;
}

struct candidate {
  std::string host;
  std::string address;
};

}  // namespace

asio::awaitable<std::vector<recipient_outcome>> smtp_agent::deliver(const job& j) {
  state st{*this, j, std::vector<std::optional<recipient_outcome>>(j.recipients.size()), {}, {}};
  auto results = [&st]() {
    std::vector<recipient_outcome> out;
    for (auto& o : st.outcomes) {
      if (o) out.push_back(std::move(*o));
    }
    return out;
  };
  if (j.recipients.empty()) co_return results();
  if (j.hop.transport != options_.transport) {
    failure f{"4.3.5", "mail transport unavailable", "none"};
    st.fail_all(f, true, runtime_.now());
    co_return results();
  }

  // Next hop → hosts in MX preference order.
  std::vector<std::string> hosts;
  if (j.hop.no_mx) {
    hosts.push_back(j.hop.host);
  } else {
    mx_answer mx = co_await dns_.lookup_mx(j.hop.host);
    if (mx.status == dns_status::ok && !mx.records.empty()) {
      for (const auto& r : mx.records) {
        if (r.host.empty() || r.host == ".") {
          failure f{"5.1.0", "Domain " + j.hop.host + " does not accept mail (nullMX)", "none"};
          st.fail_all(f, true, runtime_.now());
          co_return results();
        }
      }
      std::stable_sort(
          mx.records.begin(), mx.records.end(),
          [](const mx_record& a, const mx_record& b) { return a.preference < b.preference; });
      // Randomise hosts of equal preference (Fisher-Yates within each group).
      for (std::size_t b = 0; b < mx.records.size();) {
        std::size_t e = b;
        while (e < mx.records.size() && mx.records[e].preference == mx.records[b].preference) ++e;
        for (std::size_t k = e - b; k > 1; --k) {
          const std::size_t pick = random_ ? random_(k) % k : k - 1;
          std::swap(mx.records[b + k - 1], mx.records[b + pick]);
        }
        b = e;
      }
      for (auto& r : mx.records) {
        if (!r.host.empty() && r.host.back() == '.') r.host.pop_back();
        hosts.push_back(r.host);
      }
    } else if (mx.status == dns_status::nodata ||
               (mx.status == dns_status::ok && mx.records.empty())) {
      hosts.push_back(j.hop.host);
    } else {
      st.fail_all(dns_failure(j.hop.host, "MX", mx.status), true, runtime_.now());
      co_return results();
    }
  }

  // Hosts → addresses, inet_protocols and smtp_address_preference applied.
  std::vector<candidate> candidates;
  std::optional<failure> dns_error;
  const std::string_view addr_type = options_.inet_ipv4 ? "A" : "AAAA";
  for (const auto& h : hosts) {
    if (options_.mx_address_limit && candidates.size() >= options_.mx_address_limit) break;
    std::vector<std::string> addrs;
    boost::system::error_code numeric_ec;
    asio::ip::make_address(h, numeric_ec);
    if (!numeric_ec) {
      addrs.push_back(h);
    } else {
      address_answer a = co_await dns_.lookup_addresses(h, options_.inet_ipv4, options_.inet_ipv6);
      if (a.status != dns_status::ok || a.addresses.empty()) {
        dns_error =
            dns_failure(h, addr_type, a.status == dns_status::ok ? dns_status::nodata : a.status);
        continue;
      }
      addrs = std::move(a.addresses);
    }
    std::erase_if(addrs, [&](const std::string& a) {
      return is_ipv6(a) ? !options_.inet_ipv6 : !options_.inet_ipv4;
    });
    if (options_.preference != address_preference::any) {
      const bool v6_first = options_.preference == address_preference::ipv6;
      std::stable_partition(addrs.begin(), addrs.end(),
                            [&](const std::string& a) { return is_ipv6(a) == v6_first; });
    }
    for (auto& a : addrs) {
      if (options_.mx_address_limit && candidates.size() >= options_.mx_address_limit) break;
      candidates.push_back(candidate{h, std::move(a)});
    }
  }
  if (candidates.empty()) {
    failure f = dns_error.value_or(dns_failure(j.hop.host, addr_type, dns_status::nodata));
    st.fail_all(f, true, runtime_.now());
    co_return results();
  }

  std::size_t sessions = 0;
  for (std::size_t ci = 0; ci < candidates.size() && !st.pending().empty(); ++ci) {
    const candidate& c = candidates[ci];
    const std::string namaddr = c.host + "[" + c.address + "]";
    const std::string namaddrport = namaddr + ":" + std::to_string(j.hop.port);
    const bool last_address = ci + 1 == candidates.size();
    const std::string pool_key = c.address + ":" + std::to_string(j.hop.port);

    std::optional<std::string> sasl_credentials;
    if (options_.sasl_auth_enable && options_.sasl_password_maps && options_.sasl_library) {
      std::string nexthop = j.hop.text;
      if (nexthop.empty()) {
        nexthop = j.hop.no_mx ? "[" + j.hop.host + "]" : j.hop.host;
        if (j.hop.port != 25) nexthop += ":" + std::to_string(j.hop.port);
      }
      sasl_credentials = options_.sasl_password_maps->find(nexthop);
      if (!sasl_credentials) sasl_credentials = options_.sasl_password_maps->find(c.host);
    }
    const bool cacheable = options_.cache_time_limit.count() > 0 && !sasl_credentials;

    // A cached session to this address, else a new connection.
    std::unique_ptr<net::byte_stream> stream;
    std::unique_ptr<client_session> csp;
    std::size_t uses = 0;
    time_point connected_at = runtime_.now();
    if (cacheable) {
      if (auto it = pool_->sessions.find(pool_key); it != pool_->sessions.end()) {
        stream = std::move(it->second.stream);
        csp = std::move(it->second.session);
        uses = it->second.uses;
        connected_at = it->second.connected_at;
        pool_->sessions.erase(it);
      }
    }
    const bool reused = stream != nullptr;
    if (!stream) {
      std::error_code ec;
      stream = co_await connector_.connect(c.address, j.hop.port, options_.connect_timeout, ec);
      if (!stream) {
        if (!ec) ec = std::make_error_code(std::errc::connection_refused);
        failure f{"4.4.1", "connect to " + namaddrport + ": " + net::error_text(ec), "none"};
        logger_.info(options_.origin, f.reason);
        st.last = f;
        continue;
      }
      csp = std::make_unique<client_session>(options_.client, stamp(runtime_.now()));
    }
    ++uses;
    st.conn_use = uses;
    ++sessions;
    const bool final_server =
        last_address || (options_.mx_session_limit && sessions >= options_.mx_session_limit);

    // One SMTP session.
    client_session& cs = *csp;
    std::unique_ptr<smtp::client_authenticator> auth;
    std::optional<std::string> auth_setup_error;
    if (sasl_credentials) {
      const auto& value = sasl_credentials;
      {
        const auto colon = value->find(':');
        sasl::client_config cfg;
        cfg.server_fqdn = c.host;
        cfg.username = value->substr(0, colon);
        cfg.password = colon == std::string::npos ? std::string() : value->substr(colon + 1);
        cfg.authzid = cfg.username;  // Postfix passes the user as authorization id too
        cfg.security = options_.sasl_security;
        std::string err;
        auto session = sasl::client_session::create(options_.sasl_library, cfg, err);
        if (session) {
          auth = std::make_unique<sasl_authenticator>(std::move(session),
                                                      options_.sasl_mechanism_filter);
          cs.set_authenticator(auth.get());
        } else {
          auth_setup_error = err;
        }
      }
    }

    std::vector<char> buf(4096);
    std::optional<io_failure> io_err;
    std::size_t iterations = 0;
    // Writes what the engine has to send, then reads until `done()` or the session ends.
    auto pump = [&](auto done) -> asio::awaitable<void> {
      while (!io_err && iterations++ < options_.io_iterations_max) {
        while (!cs.output().empty() && !io_err) {
          const std::string_view out = cs.output();
          const std::size_t n = std::min(out.size(), options_.content_chunk_bytes);
          const client_stage at = cs.stage();
          const auto timeout = at == client_stage::body || at == client_stage::dot
                                   ? options_.client.data_xfer_timeout
                                   : options_.client.mail_timeout;
          std::error_code wec;
          const std::size_t now_n = stream->write_now(std::span<const char>(out.data(), n));
          if (now_n < n) {
            co_await stream->write_all(std::span<const char>(out.data() + now_n, n - now_n),
                                       timeout, wec);
          }
          if (wec) {
            io_err = io_failure{wec == std::errc::timed_out, at};
            co_return;
          }
          cs.consume_output(n);
        }
        if (cs.state() == client_state::failed || cs.state() == client_state::closed || done()) {
          co_return;
        }
        const auto deadline = cs.deadline();
        if (!deadline) co_return;
        const auto now = stamp(runtime_.now());
        auto wait = std::chrono::duration_cast<net::duration>(*deadline - now);
        if (wait < net::duration(1)) wait = net::duration(1);
        std::error_code rec;
        const std::size_t n = co_await stream->read_some(buf, wait, rec);
        if (rec == std::errc::timed_out) {
          cs.advance(std::max(stamp(runtime_.now()), *deadline));
        } else if (rec || n == 0) {
          cs.receive_eof(stamp(runtime_.now()));
        } else {
          cs.receive(std::span<const char>(buf.data(), n), stamp(runtime_.now()));
        }
      }
    };
    auto session_failure = [&]() -> failure {
      if (io_err) {
        return failure{"4.4.2",
                       (io_err->timeout ? "conversation with " + namaddr + " timed out while "
                                        : "lost connection with " + namaddr + " while ") +
                           std::string(smtp::while_text(io_err->stage)),
                       namaddrport};
      }
      const client_error& e = *cs.error();
      switch (e.what) {
        case client_error::kind::refused: {
          failure f = from_reply(
              *e.reply, "host " + namaddr + " refused to talk to me: " + e.reply->one_line(),
              namaddrport);
          if (e.stage == client_stage::greeting && options_.skip_5xx_greeting && f.dsn[0] == '5' &&
              e.reply->code / 100 == 5) {
            f.dsn[0] = '4';
          }
          return f;
        }
        case client_error::kind::auth_failed:
          if (e.reply) {
            failure f{
                e.reply->dsn,
                "SASL authentication failed; server " + namaddr + " said: " + e.reply->one_line(),
                namaddrport};
            // smtp_sasl_auth_soft_bounce=yes: an authentication failure is never final.
            if (f.dsn.empty() || f.dsn[0] != '4') f.dsn = "4.7.0";
            return f;
          }
          return failure{"4.7.0",
                         "SASL authentication failed; cannot authenticate to server " + namaddr +
                             ": " + e.detail,
                         namaddrport};
        case client_error::kind::protocol:
          return failure{"5.5.0",
                         "Protocol error: host " + namaddr +
                             " said: " + (e.reply ? e.reply->one_line() : std::string()) +
                             " (in reply to " + std::string(smtp::in_reply_to_text(e.stage)) + ")",
                         namaddrport};
        case client_error::kind::timeout:
          return failure{"4.4.2",
                         "conversation with " + namaddr + " timed out while " +
                             std::string(smtp::while_text(e.stage)),
                         namaddrport};
        case client_error::kind::tls:
          if (e.reply)
            return failure{"4.7.5",
                           "TLS is required, but host " + namaddr +
                               " refused to start TLS: " + e.reply->one_line(),
                           namaddrport};
          return failure{"4.7.4", "TLS is required, but was not offered by host " + namaddr,
                         namaddrport};
        case client_error::kind::lost_connection:
          break;
      }
      return failure{
          "4.4.2",
          "lost connection with " + namaddr + " while " + std::string(smtp::while_text(e.stage)),
          namaddrport};
    };
    auto ended = [&] { return io_err || cs.state() == client_state::failed; };

    // After "220" to STARTTLS: the handshake over the same stream, then the trust the level
    // asks for; nullopt when the session can go on over TLS.
    auto start_tls = [&]() -> asio::awaitable<std::optional<failure>> {
      const tls::client_settings& ts = options_.tls->settings();
      auto names_for = [&](const std::vector<std::string>& words) {
        std::vector<std::string> out;
        for (const auto& w : words) {
          if (w == "hostname")
            out.push_back(c.host);
          else if (w == "nexthop")
            out.push_back(j.hop.host);
          else if (w == "dot-nexthop")
            out.push_back("." + j.hop.host);
          else
            out.push_back(w);
        }
        return out;
      };
      std::vector<std::string> names;
      if (ts.level == tls::client_level::verify) names = names_for(ts.verify_match);
      if (ts.level == tls::client_level::secure) names = names_for(ts.secure_match);
      std::string sni;
      if (ts.servername == "hostname")
        sni = c.host;
      else if (ts.servername == "nexthop")
        sni = j.hop.host;
      else
        sni = ts.servername;
      auto secured = std::make_unique<tls::client_stream>(std::move(stream), options_.tls);
      secured->set_verify_time(runtime_.now());
      std::error_code ec;
      co_await secured->handshake(sni, names, ts.handshake_timeout, ec);
      if (ec) {
        logger_.info(options_.origin,
                     "SSL_connect error to " + namaddrport + ": " +
                         (secured->errors().empty() ? std::string("lost connection") : "-1"));
        for (const auto& e : secured->errors())
          logger_.warning(options_.origin, "TLS library problem: " + e);
        stream = std::move(secured);
        co_return failure{"4.7.5", "Cannot start TLS: handshake failure", namaddrport};
      }
      const tls::trust t = secured->peer_trust();
      if (ts.checks_names() && t != tls::trust::verified) {
        logger_.info(options_.origin, "server certificate verification failed for " + namaddrport +
                                          ": " + secured->verify_error());
        stream = std::move(secured);
        co_return failure{"4.7.5", "Server certificate not verified", namaddrport};
      }
      if (ts.loglevel >= 1)
        logger_.info(options_.origin,
                     tls::client_established_line(t, namaddrport, secured->info()));
      stream = std::move(secured);
      co_return std::nullopt;
    };
    std::optional<failure> tls_failure;
    // smtp_tls_wrappermode: the handshake comes first, the 220 arrives over TLS, and the
    // session never sends STARTTLS (client.starttls is none). A cached session is already
    // wrapped.
    if (!reused && options_.tls && options_.tls->settings().wrappermode)
      tls_failure = co_await start_tls();
    if (!tls_failure) {
      co_await pump(
          [&] { return cs.state() == client_state::ready || cs.state() == client_state::tls; });
      if (cs.state() == client_state::tls && !io_err) {
        tls_failure = co_await start_tls();
        if (!tls_failure) {
          cs.tls_started(stamp(runtime_.now()));
          co_await pump([&] { return cs.state() == client_state::ready; });
        }
      }
    }
    if (tls_failure) {
      st.fail_all(*tls_failure, final_server, runtime_.now());
    } else if (auth_setup_error && !ended()) {
      st.fail_all(failure{"4.7.0",
                          "SASL authentication failed; cannot authenticate to server " + namaddr +
                              ": " + *auth_setup_error,
                          namaddrport},
                  final_server, runtime_.now());
    } else if (ended() || cs.state() != client_state::ready) {
      st.fail_all(session_failure(), final_server, runtime_.now());
    } else {
      st.conn_setup_done = runtime_.now();
      const auto& feat = cs.features();
      const std::vector<std::size_t> todo = st.pending();
      if (feat.size && feat.size_limit > 0 && j.size > feat.size_limit) {
        st.fail_all(failure{"5.3.4",
                            "message size " + std::to_string(j.size) + " exceeds size limit " +
                                std::to_string(feat.size_limit) + " of server " + namaddr,
                            namaddrport},
                    final_server, runtime_.now());
      } else {
        smtp::client_envelope env;
        env.sender = j.sender;
        for (const std::size_t i : todo) env.recipients.push_back(j.recipients[i].address);
        env.size = j.size;
        for (const auto& [k, v] : j.attributes) {
          if (k == "encoding" && (v == "8bit" || v == "8BITMIME")) env.body_8bit = true;
          if (k == "smtputf8" && v == "yes") env.smtputf8 = true;
        }
        cs.start(env, stamp(runtime_.now()));
        co_await pump([&] { return cs.wants_body() || cs.state() == client_state::ready; });
        std::optional<failure> local_error;
        if (cs.wants_body() && !ended()) {
          std::uint64_t offset = 0;
          std::string chunk;
          for (std::size_t guard = 0; guard < options_.io_iterations_max && !ended(); ++guard) {
            chunk.clear();
            std::error_code rec = j.read_content
                                      ? j.read_content(offset, options_.content_chunk_bytes, chunk)
                                      : std::error_code();
            if (rec) {
              local_error =
                  failure{"4.3.0", "local data error while talking to " + namaddr, namaddrport};
              break;
            }
            if (chunk.empty()) break;
            offset += chunk.size();
            cs.body(chunk);
            // Write once a chunk's worth is pending (read nothing); the rest leaves with the
            // final dot, so a small message is one write instead of two.
            if (cs.output().size() >= options_.content_chunk_bytes) {
              co_await pump([] { return true; });
            }
          }
          if (!local_error && !ended()) {
            cs.end_body(stamp(runtime_.now()));
            co_await pump([&] { return cs.state() == client_state::ready; });
          }
        }
        const auto res = cs.take_result();
        if (reused && ended() && !local_error && (!res || res->mail.code == 0)) {
          // A cached session the server closed meanwhile: nothing was said yet, so connect
          // afresh to the same address (the loop index stays).
          stream->close();
          --sessions;
          --ci;
          continue;
        }
        if (local_error) {
          st.fail_all(*local_error, final_server, runtime_.now());
        } else if (res) {
          const bool mail_ok = res->mail.code / 100 == 2;
          for (std::size_t k = 0; k < todo.size(); ++k) {
            const std::size_t i = todo[k];
            const client_reply* r = nullptr;
            client_stage where = client_stage::mail;
            time_point when = from_stamp(res->finished);
            if (!mail_ok) {
              r = &res->mail;
              when = from_stamp(res->mail_done);
            } else if (res->rcpt[k].code / 100 != 2) {
              r = &res->rcpt[k];
              where = client_stage::rcpt;
              when = from_stamp(res->rcpt_done);
            } else if (res->data && res->data->code / 100 != 3) {
              r = &res->data.value();
              where = client_stage::data;
            } else if (res->end_of_data) {
              r = &res->end_of_data.value();
              where = client_stage::dot;
            }
            if (r == nullptr) continue;  // handled as a session failure below
            if (where == client_stage::dot && r->code / 100 == 2) {
              st.finish(i, failure{r->dsn, r->one_line(), namaddrport}, outcome_status::sent, when);
              continue;
            }
            st.fail_one(
                i,
                from_reply(*r,
                           "host " + namaddr + " said: " + r->one_line() + " (in reply to " +
                               std::string(smtp::in_reply_to_text(where)) + ")",
                           namaddrport),
                final_server, when);
          }
        }
        if (!res && ended()) st.fail_all(session_failure(), final_server, runtime_.now());
        if (!st.pending().empty() && res && ended()) {
          st.fail_all(session_failure(), final_server, runtime_.now());
        }
      }
    }
    if (cacheable && !ended() && cs.state() == client_state::ready &&
        runtime_.now() - connected_at < options_.reuse_time_limit &&
        pool_->sessions.size() < options_.cache_sessions_max) {
      const std::uint64_t generation = pool_->next_generation++;
      pool_->sessions.emplace(pool_key, session_pool::idle{std::move(stream), std::move(csp), uses,
                                                           connected_at, generation});
      asio::co_spawn(runtime_.executor(),
                     expire(pool_, runtime_, options_.cache_time_limit, pool_key, generation),
                     asio::detached);
      if (options_.mx_session_limit && sessions >= options_.mx_session_limit) break;
      continue;
    }
    if (!ended() && cs.state() == client_state::ready) {
      cs.quit(stamp(runtime_.now()));
      co_await pump([&] { return cs.state() == client_state::closed; });
    }
    stream->close();
    if (options_.mx_session_limit && sessions >= options_.mx_session_limit) break;
  }
  // Whatever is left failed on every server we could try.
  if (!st.pending().empty()) st.fail_all(st.last, true, runtime_.now());
  co_return results();
}

smtp_agent_options smtp_agent_options_from_config(const config::parameters& p, int pid) {
  smtp_agent_options ao;
  ao.client.helo_name = p.get("smtp_helo_name");
  ao.connect_timeout = p.get_time("smtp_connect_timeout");
  ao.client.helo_timeout = p.get_time("smtp_helo_timeout");
  ao.client.mail_timeout = p.get_time("smtp_mail_timeout");
  ao.client.rcpt_timeout = p.get_time("smtp_rcpt_timeout");
  ao.client.data_init_timeout = p.get_time("smtp_data_init_timeout");
  ao.client.data_xfer_timeout = p.get_time("smtp_data_xfer_timeout");
  ao.client.data_done_timeout = p.get_time("smtp_data_done_timeout");
  ao.client.quit_timeout = p.get_time("smtp_quit_timeout");
  const auto protocols = config::inet_protocols(p);
  ao.inet_ipv4 = protocols.ipv4;
  ao.inet_ipv6 = protocols.ipv6;
  ao.origin = {p.get("syslog_name"), "smtp", pid};
  if (p.get_bool("smtp_connection_cache_on_demand"))
    ao.cache_time_limit = p.get_time("smtp_connection_cache_time_limit");
  ao.reuse_time_limit = p.get_time("smtp_connection_reuse_time_limit");
  return ao;
}

}  // namespace relaylab::delivery
