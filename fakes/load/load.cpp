#include "fakes/load/load.hpp"

#include "fakes/client/smtp_driver.hpp"
#include "relay/smtp/client_session.hpp"
#include "relay/tls/client.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <bit>
#include <cstdio>
#include <functional>
#include <memory>
#include <utility>

namespace relaylab::fakes::load {

// ---------------------------------------------------------------------------------------------
// histogram

namespace {
std::size_t bucket_of(std::uint64_t v) noexcept {
  if (v < 16) return static_cast<std::size_t>(v);
  const int msb = std::bit_width(v) - 1;  // >= 4
  const auto sub = static_cast<std::size_t>((v >> (msb - 4)) & 15);
  return static_cast<std::size_t>(msb - 3) * 16 + sub;
}
std::uint64_t bucket_floor(std::size_t i) noexcept {
  if (i < 16) return i;
  const int msb = static_cast<int>(i / 16) + 3;
  return (16 + (i % 16)) << (msb - 4);
}
}  // namespace

void histogram::add(std::uint64_t us) noexcept {
  const std::size_t i = bucket_of(us);
  ++b_[i < buckets ? i : buckets - 1];
  ++count_;
}

std::uint64_t histogram::quantile(double q) const noexcept {
  if (count_ == 0) return 0;
  auto want = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.999999);
  if (want == 0) want = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets; ++i) {
    seen += b_[i];
    if (seen >= want) return bucket_floor(i);
  }
  return bucket_floor(buckets - 1);
}

std::string_view to_string(phase p) noexcept {
  switch (p) {
    case phase::connect:
      return "connect";
    case phase::ehlo:
      return "ehlo";
    case phase::auth:
      return "auth";
    case phase::mail:
      return "mail";
    case phase::rcpt:
      return "rcpt";
    case phase::data:
      return "data";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// report

namespace {
std::string fmt_double(double v, const char* f = "%.3f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}
double per_s(std::uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; }
double ms(std::uint64_t us) { return static_cast<double>(us) / 1000.0; }
}  // namespace

std::string load_report::format_text() const {
  std::string t;
  t += "messages: " + std::to_string(messages_ok) + " ok, " + std::to_string(messages_failed) +
       " failed, " + std::to_string(recipients_ok) + " recipients, " + std::to_string(connections) +
       " connections in " + fmt_double(elapsed_s) + " s\n";
  t += "rate: " + fmt_double(per_s(messages_ok, elapsed_s), "%.1f") + " msg/s, " +
       fmt_double(per_s(auth_ok, elapsed_s), "%.1f") + " auth/s (" + std::to_string(auth_ok) +
       " ok, " + std::to_string(auth_failed) + " failed)\n";
  if (tls_sessions > 0)
    t += "tls: " + std::to_string(tls_sessions) + " sessions, " + std::to_string(tls_resumed) +
         " resumed\n";
  t += "errors:";
  if (errors.empty()) t += " none";
  for (const auto& [k, v] : errors) t += " [" + k + "]=" + std::to_string(v);
  t += "\nlatency (ms)      p50       p90       p99     count\n";
  for (std::size_t i = 0; i < phase_count; ++i) {
    const auto& h = latency[i];
    char line[128];
    std::snprintf(line, sizeof line, "  %-8s %9.3f %9.3f %9.3f %9llu\n",
                  std::string(to_string(static_cast<phase>(i))).c_str(), ms(h.quantile(0.5)),
                  ms(h.quantile(0.9)), ms(h.quantile(0.99)),
                  static_cast<unsigned long long>(h.count()));
    t += line;
  }
  if (cpu_s > 0) {
    const std::uint64_t n = messages_ok + messages_failed;
    t += "cpu: " + fmt_double(cpu_s) + " s (" +
         fmt_double(n ? cpu_s * 1e6 / static_cast<double>(n) : 0.0, "%.1f") + " us/message)\n";
  }
  return t;
}

std::string load_report::format_json() const {
  std::string j = "{";
  auto num = [&](const char* k, const std::string& v) {
    if (j.size() > 1) j += ",";
    j += json_string(k) + ":" + v;
  };
  num("messages_ok", std::to_string(messages_ok));
  num("messages_failed", std::to_string(messages_failed));
  num("recipients_ok", std::to_string(recipients_ok));
  num("connections", std::to_string(connections));
  num("auth_ok", std::to_string(auth_ok));
  num("auth_failed", std::to_string(auth_failed));
  num("tls_sessions", std::to_string(tls_sessions));
  num("tls_resumed", std::to_string(tls_resumed));
  num("elapsed_s", fmt_double(elapsed_s, "%.6f"));
  num("messages_per_s", fmt_double(per_s(messages_ok, elapsed_s), "%.3f"));
  num("auths_per_s", fmt_double(per_s(auth_ok, elapsed_s), "%.3f"));
  std::string e = "{";
  for (const auto& [k, v] : errors) {
    if (e.size() > 1) e += ",";
    e += json_string(k) + ":" + std::to_string(v);
  }
  num("errors", e + "}");
  std::string l = "{";
  for (std::size_t i = 0; i < phase_count; ++i) {
    const auto& h = latency[i];
    if (l.size() > 1) l += ",";
    l += json_string(to_string(static_cast<phase>(i))) +
         ":{\"p50\":" + fmt_double(ms(h.quantile(0.5))) +
         ",\"p90\":" + fmt_double(ms(h.quantile(0.9))) +
         ",\"p99\":" + fmt_double(ms(h.quantile(0.99))) +
         ",\"count\":" + std::to_string(h.count()) + "}";
  }
  num("latency_ms", l + "}");
  num("cpu_s", fmt_double(cpu_s, "%.6f"));
  return j + "}\n";
}

std::string make_message(const load_options& o) {
  std::string m = "From: <" + o.from + ">\r\nTo: <" + o.to + ">\r\nSubject: relaylab load\r\n\r\n";
  std::size_t left = o.message_bytes;
  while (left > 0) {
    const std::size_t n = left >= 78 ? 76 : (left > 2 ? left - 2 : 0);
    m.append(n, 'x');
    m += "\r\n";
    left -= std::min(left, n + 2);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------
// run

namespace {

class login_authenticator final : public smtp::client_authenticator {
 public:
  login_authenticator(std::string user, std::string password)
      : user_(std::move(user)), password_(std::move(password)) {}
  smtp::client_auth_step start(std::string_view) override {
    step_ = 0;
    return {true, "LOGIN", std::nullopt, {}};
  }
  smtp::client_auth_step step(std::string_view) override {
    return {true, "LOGIN", step_++ == 0 ? user_ : password_, {}};
  }

 private:
  std::string user_, password_;
  int step_ = 0;
};

struct shared_state {
  load_options opt;
  std::string message;
  smtp::client_envelope envelope;
  load_report report;
  std::uint64_t claimed = 0;
  std::size_t active = 0;
  smtp::client_timestamp started{};
  progress_fn progress;
};

// Resumes run_load when the last reference goes: each worker holds one and drops it when it
// ends, or when its frame is destroyed with an abandoned load (the simulation's shutdown), so a
// waiting load costs no events or wake-ups and an abandoned one leaves nothing behind.
struct workers_done {
  std::function<void()> resume;
  ~workers_done() {
    if (resume) resume();
  }
};

// Suspends until every other holder of `*done` has let go of it; `*done` is reset once the
// waiter is installed (a pointer to the caller's variable: GCC 12 mishandles shared_ptr
// parameters moved into lambdas inside coroutines).
auto wait_for_workers(std::shared_ptr<workers_done>* done) {
  namespace asio = boost::asio;
  return asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [done](auto handler) {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        (*done)->resume = [h] {
          auto ex = asio::get_associated_executor(*h);
          asio::post(ex, [h] { (*h)(); });
        };
        done->reset();  // the workers hold the rest
      },
      asio::use_awaitable);
}

std::uint64_t us_between(smtp::client_timestamp a, smtp::client_timestamp b) {
  return b > a ? static_cast<std::uint64_t>(
                     std::chrono::duration_cast<std::chrono::microseconds>(b - a).count())
               : 0;
}

std::string error_key(const smtp::client_session& s) {
  const auto& e = s.error();
  if (!e) return "closed";
  if (e->reply && e->reply->code) return std::to_string(e->reply->code);
  switch (e->what) {
    case smtp::client_error::kind::timeout:
      return "timeout";
    case smtp::client_error::kind::lost_connection:
      return "lost connection";
    case smtp::client_error::kind::auth_failed:
      return "auth: " + e->detail;
    case smtp::client_error::kind::tls:
      return "tls: " + e->detail;
    default:
      return "protocol error";
  }
}

boost::asio::awaitable<void> worker(shared_state& st, net::connector& connector, net::runtime& rt) {
  using client::client_now;
  auto& r = st.report;
  const auto& o = st.opt;
  std::unique_ptr<net::byte_stream> stream;
  std::unique_ptr<smtp::client_session> s;
  std::unique_ptr<smtp::client_authenticator> auth;
  if (o.auth) {
    if (o.auth->mechanism == "LOGIN") {
      auth = std::make_unique<login_authenticator>(o.auth->user, o.auth->password);
    } else {
      auth = std::make_unique<smtp::plain_authenticator>("", o.auth->user, o.auth->password);
    }
  }
  smtp::client_options copt;
  copt.helo_name = o.helo_name;
  copt.use_pipelining = o.pipelining;
  copt.helo_timeout = copt.mail_timeout = copt.rcpt_timeout = o.reply_timeout;
  copt.data_init_timeout = copt.data_done_timeout = o.reply_timeout;
  if (o.tls_use == load_options::tls_mode::starttls)
    copt.starttls = smtp::client_options::tls_use::required;
  // The handshake on `stream`; "" or the error key of a failed session.
  auto secure = [&]() -> boost::asio::awaitable<std::string> {
    auto c = std::make_unique<tls::client_stream>(std::move(stream), o.tls);
    c->set_verify_time(rt.now());
    c->set_session_key(o.host + ":" + std::to_string(o.port));
    std::error_code hec;
    std::vector<std::string> names{o.host};
    std::string sni;
    co_await c->handshake(std::move(sni), std::move(names), o.connect_timeout, hec);
    const bool verified = c->peer_trust() == tls::trust::verified;
    const std::string why = c->verify_error();
    if (!hec) {
      ++r.tls_sessions;
      if (c->info().reused) ++r.tls_resumed;
    }
    stream = std::move(c);
    if (hec) co_return std::string("tls: handshake failed");
    if (o.tls_verify && !verified) co_return "tls: untrusted (" + why + ")";
    co_return std::string();
  };
  auto drop = [&] {
    if (stream) stream->close();
    stream.reset();
    s.reset();
  };
  auto claim = [&] {
    if (st.claimed >= o.messages) return false;
    if (o.duration && client_now(rt) - st.started >= *o.duration) return false;
    ++st.claimed;
    return true;
  };
  auto fail_message = [&](const std::string& key) {
    ++r.messages_failed;
    ++r.errors[key];
    if (st.progress) st.progress(r);
  };
  for (std::uint64_t iter = 0; iter < o.messages && claim(); ++iter) {
    if (!s) {
      const auto t0 = client_now(rt);
      std::error_code ec;
      stream = co_await connector.connect(o.host, o.port, o.connect_timeout, ec);
      if (!stream) {
        fail_message("connect: " + ec.message());
        continue;
      }
      ++r.connections;
      const auto t1 = client_now(rt);
      r.latency[static_cast<std::size_t>(phase::connect)].add(us_between(t0, t1));
      s = std::make_unique<smtp::client_session>(copt, t1);
      if (auth) s->set_authenticator(auth.get());
      if (o.tls_use == load_options::tls_mode::implicit) {
        const std::string bad = co_await secure();
        if (!bad.empty()) {
          fail_message(bad);
          drop();
          continue;
        }
      }
      auto past_hello = [&] {
        const auto x = s->state();
        return x != smtp::client_state::greeting && x != smtp::client_state::hello;
      };
      auto d0 = std::make_unique<client::smtp_driver>(*s, *stream, rt);
      co_await d0->pump(past_hello);
      if (s->state() == smtp::client_state::tls) {
        const std::string bad = co_await secure();
        if (!bad.empty()) {
          fail_message(bad);
          drop();
          continue;
        }
        d0 = std::make_unique<client::smtp_driver>(*s, *stream, rt);
        s->tls_started(client_now(rt));
        co_await d0->pump(past_hello);
      }
      auto& drv = *d0;
      const auto t2 = client_now(rt);
      if (s->state() == smtp::client_state::auth || s->state() == smtp::client_state::ready) {
        r.latency[static_cast<std::size_t>(phase::ehlo)].add(us_between(t1, t2));
      }
      co_await drv.pump([&] { return s->state() == smtp::client_state::ready; });
      if (o.auth) {
        if (s->authenticated()) {
          ++r.auth_ok;
          r.latency[static_cast<std::size_t>(phase::auth)].add(us_between(t2, client_now(rt)));
        } else {
          ++r.auth_failed;
          if (s->state() == smtp::client_state::ready) {
            fail_message("auth: not offered");
            drop();
            continue;
          }
        }
      }
      if (s->state() != smtp::client_state::ready) {
        fail_message(error_key(*s));
        drop();
        continue;
      }
    }
    client::smtp_driver drv(*s, *stream, rt);
    s->start(st.envelope, client_now(rt));
    std::optional<smtp::client_result> res;
    co_await drv.pump([&] {
      if (s->wants_body()) {
        s->body(std::span<const char>(st.message.data(), st.message.size()));
        s->end_body(client_now(rt));
      }
      if (!res) res = s->take_result();
      return res.has_value();
    });
    if (res) {
      r.latency[static_cast<std::size_t>(phase::mail)].add(
          us_between(res->started, res->mail_done));
      if (res->mail.code / 100 == 2) {
        r.latency[static_cast<std::size_t>(phase::rcpt)].add(
            us_between(res->mail_done, res->rcpt_done));
      }
      if (res->end_of_data) {
        r.latency[static_cast<std::size_t>(phase::data)].add(
            us_between(res->rcpt_done, res->finished));
      }
      if (res->delivered()) {
        ++r.messages_ok;
        r.recipients_ok += res->accepted();
        if (st.progress) st.progress(r);
      } else {
        std::string key = std::to_string(res->mail.code);
        if (res->mail.code / 100 == 2) {
          key = "rcpt";
          for (const auto& x : res->rcpt) {
            if (x.code / 100 != 2) {
              key = std::to_string(x.code);
              break;
            }
          }
          if (res->accepted() > 0) {
            if (res->data && res->data->code != 354) key = std::to_string(res->data->code);
            if (res->end_of_data) key = std::to_string(res->end_of_data->code);
          }
        }
        fail_message(key);
      }
    } else {
      fail_message(error_key(*s));
    }
    if (s->state() != smtp::client_state::ready) {
      drop();
      continue;
    }
    if (!o.reuse_connection) {
      s->quit(client_now(rt));
      co_await drv.pump([] { return false; });
      drop();
    }
  }
  if (s && s->state() == smtp::client_state::ready) {
    client::smtp_driver drv(*s, *stream, rt);
    s->quit(client_now(rt));
    co_await drv.pump([] { return false; });
  }
  drop();
}

}  // namespace

boost::asio::awaitable<load_report> run_load(load_options options, net::connector& connector,
                                             net::runtime& rt, progress_fn progress) {
  namespace asio = boost::asio;
  auto st = std::make_shared<shared_state>();
  st->opt = std::move(options);
  st->message = make_message(st->opt);
  st->envelope.sender = st->opt.from;
  for (std::size_t i = 0; i < std::max<std::size_t>(1, st->opt.recipients); ++i) {
    st->envelope.recipients.push_back(st->opt.recipients > 1 ? std::to_string(i + 1) + st->opt.to
                                                             : st->opt.to);
  }
  st->envelope.size = st->message.size();
  st->progress = std::move(progress);
  st->started = client::client_now(rt);
  const std::size_t n = std::max<std::size_t>(1, st->opt.sessions);
  auto ex = rt.executor();
  auto done = std::make_shared<workers_done>();
  for (std::size_t i = 0; i < n; ++i) {
    ++st->active;
    asio::co_spawn(
        ex,
        [st, done, &connector, &rt]() -> asio::awaitable<void> {
          co_await worker(*st, connector, rt);
          --st->active;
        },
        asio::detached);
  }
  co_await wait_for_workers(&done);
  st->report.elapsed_s =
      std::chrono::duration<double>(client::client_now(rt) - st->started).count();
  co_return st->report;
}

}  // namespace relaylab::fakes::load
