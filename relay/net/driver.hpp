// Drives one sans-IO SMTP server session over an Asio stream with C++20 coroutines.
//
// The driver is a template over the stream, the timer and the connection so the same code runs
// over a tcp::socket with steady_timer (the daemon), over a simulated stream with timers on a
// virtual clock (harness/sim), and over a test engine. Requirements:
//   AsyncStream: AsyncReadStream + AsyncWriteStream (async_read_some/async_write_some with
//     use_awaitable), and either `lowest_layer().close(ec)` or `close(ec)`.
//   Timer: constructible from the coroutine's executor (any_io_executor); expires_after(d),
//     async_wait(token), cancel(). Its clock must agree with `now` (steady or virtual).
//   Connection: `session()` giving an engine with receive(span<const char>, ts),
//     receive_eof(ts), advance(ts), output() -> string_view, consume_output(n),
//     deadline() -> optional<ts>, closing(); and `run_pending(ts)`. smtpd::connection fits.
//
// Loop: one reader coroutine (read → session.receive → write the replies) and the driving loop
// (run_pending after notify → advance at the deadline → write output → close when the session
// is closing and everything is written). Whoever has output and finds nobody writing writes
// it, so a command's reply leaves from the reader without waking the loop; the loop wakes for
// notify, the session's deadline, closing and errors. Its timer is not re-armed per command:
// when it fires early (the deadline moved later) it is armed again for the new deadline, and
// the reader wakes it only if the deadline moved earlier. Output is copied into a driver-owned
// buffer before each write, because session.output() may change while the write is in flight.
//
// Memory: at most read_buffer_bytes + write_chunk_bytes of driver buffers; the reader stops
// reading while session.output() holds output_bytes_max or more, so a client that pipelines
// without reading replies is held back by TCP flow control, not by our memory.
//
// STARTTLS and wrapper mode: with a stream that can switch to TLS in place (tls::server_stream:
// async_start_tls(token), tls_handshake_timeout(), tls_info(), tls_errors(ec)), the reader,
// whenever session.tls_wanted() (after the 220 to STARTTLS, or from the start in wrapper mode),
// waits until every plaintext reply is written, runs the handshake bounded by the timeout
// (the stream is closed when it expires), and reports the outcome to the connection
// (tls_established / tls_failed) before it reads again. Streams without TLS fail such a
// session at once (conn.tls_failed or session.tls_failed).
#pragma once

#include "relay/net/write_now.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>  // before Boost 1.74 awaitable.hpp, which uses std::exchange without it
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace relaylab::net {

/// Monotonic time as the session sees it (same unit as smtp::timestamp).
using timestamp = std::chrono::nanoseconds;
using clock_fn = std::function<timestamp()>;

/// Shared between a connection's driver and the world outside it: the `notify` given to
/// smtpd::service::open (callable from any thread) and the daemon's stop request.
class connection_signal {
 public:
  /// `post_fn` runs a function on the connection's executor (e.g. asio::post(ex, f)).
  explicit connection_signal(std::function<void(std::function<void()>)> post_fn);
  /// The callable for smtpd::service::open's `notify`: thread-safe, harmless after the driver
  /// ended or the signal was destroyed.
  std::function<void()> notifier();
  /// Asks the driver to close the connection now (daemon shutdown). Call on the executor.
  void request_stop();
  bool stop_requested() const noexcept { return stop_.load(); }
  /// Driver side, on the executor.
  bool take_pending() noexcept { return pending_.exchange(false); }
  void set_waker(std::function<void()> w) { waker_ = std::move(w); }
  void wake() {
    if (waker_) waker_();
  }

 private:
  std::function<void(std::function<void()>)> post_;
  std::atomic<bool> pending_{false};
  std::atomic<bool> stop_{false};
  std::function<void()> waker_;
  std::weak_ptr<connection_signal> self_;
  friend std::shared_ptr<connection_signal> make_connection_signal(
      std::function<void(std::function<void()>)> post_fn);
};

/// Creates a signal whose notifier posts through `post_fn`.
std::shared_ptr<connection_signal> make_connection_signal(
    std::function<void(std::function<void()>)> post_fn);

struct driver_options {
  std::size_t read_buffer_bytes = 4096;
  std::size_t write_chunk_bytes = 64 * 1024;
  /// The reader waits while session.output() holds at least this much.
  std::size_t output_bytes_max = 64 * 1024;
  /// How long to wait when the session has no deadline (it normally always has smtpd_timeout).
  std::chrono::milliseconds idle_wait_ms{3600 * 1000};
  /// Upper bound on loop iterations (each is one wake-up), a guard against busy loops.
  std::uint64_t iterations_max = 100'000'000;
};

/// Why the driver returned.
enum class driver_end {
  closed,    // the session asked to close and all output was written
  peer_eof,  // the peer closed; the session was told (receive_eof) and its output flushed
  io_error,  // a read or write failed (reset, broken pipe)
  stopped,   // connection_signal::request_stop()
  iteration_limit,
};
std::string_view to_string(driver_end e) noexcept;

struct driver_result {
  driver_end end = driver_end::closed;
  std::error_code error;  // the I/O error for io_error
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
};

namespace detail {
template <class S>
void close_stream(S& s) {
  boost::system::error_code ec;
  if constexpr (requires { s.lowest_layer().close(ec); }) {
    s.lowest_layer().close(ec);
  } else {
    s.close(ec);
  }
}

struct driver_state {
  bool main_dirty = false;
  bool reader_paused = false;
  bool reader_done = false;
  bool eof = false;
  bool closing_down = false;
  bool writing = false;  // a flush() is in a write; the other coroutine leaves output to it
  bool write_failed = false;
  std::error_code read_error;
  std::error_code write_error;
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
  // When the main loop's wait ends (its deadline or idle wait); max while it is not waiting.
  timestamp main_wakes_at = timestamp::max();
  std::string write_buf;
};

template <class Timer>
void wake(driver_state& st, Timer& t) {
  st.main_dirty = true;
  t.cancel();
}

// The writer has taken n bytes of the session's output: a reader paused for output room
// resumes once the output is below the bound again.
template <class Session, class Timer>
void take_output(Session& session, std::size_t n, const driver_options& opt, const driver_state& st,
                 Timer& wake_reader) {
  session.consume_output(n);
  if (st.reader_paused && session.output().size() < opt.output_bytes_max) wake_reader.cancel();
}

// Writes everything the session has produced, a chunk at a time. One writer at a time: a
// coroutine that finds another one writing returns at once, and the writer's loop takes the
// new output too. Output is copied before each write (session.output() may change meanwhile).
template <class Timer, class AsyncStream, class Connection>
boost::asio::awaitable<void> flush(AsyncStream& stream, Connection& conn, connection_signal* signal,
                                   const clock_fn& now, const driver_options& opt, driver_state& st,
                                   Timer& wake_reader) {
  namespace asio = boost::asio;
  auto& session = conn.session();
  if (st.writing || st.write_failed) co_return;
  st.writing = true;
  while (!session.output().empty()) {
    const auto out = session.output();
    st.write_buf.assign(out.substr(0, opt.write_chunk_bytes));
    take_output(session, st.write_buf.size(), opt, st, wake_reader);
    boost::system::error_code ec;
    const std::size_t n = co_await asio::async_write(stream, asio::buffer(st.write_buf),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    st.bytes_written += n;
    if (ec) {
      st.write_failed = true;
      st.write_error = ec;
      break;
    }
    // Work that became ready while writing (notify) is handled before more output.
    if (signal && signal->take_pending()) conn.run_pending(now());
  }
  st.writing = false;
}

// flush() without a coroutine frame: writes what the socket takes now. True when nothing is
// left for this caller (all written, or another writer is active and takes it); false when the
// rest needs flush() (the socket is full, the stream cannot write at once, or an error, which
// flush()'s asynchronous write then reports).
template <class Timer, class AsyncStream, class Connection>
bool flush_now(AsyncStream& stream, Connection& conn, connection_signal* signal,
               const clock_fn& now, const driver_options& opt, driver_state& st,
               Timer& wake_reader) {
  auto& session = conn.session();
  if (st.writing || st.write_failed) return true;
  while (!session.output().empty()) {
    const auto chunk = session.output().substr(0, opt.write_chunk_bytes);
    const std::size_t n = write_now(stream, boost::asio::buffer(chunk.data(), chunk.size()));
    if (n == 0) return false;
    st.bytes_written += n;
    take_output(session, n, opt, st, wake_reader);
    if (signal && signal->take_pending()) conn.run_pending(now());
  }
  return true;
}

// Writes every reply queued so far, also waiting for another writer to finish. False when a
// write failed.
template <class Timer, class AsyncStream, class Connection>
boost::asio::awaitable<bool> drain_output(AsyncStream& stream, Connection& conn,
                                          connection_signal* signal, const clock_fn& now,
                                          const driver_options& opt, driver_state& st,
                                          Timer& wake_reader) {
  namespace asio = boost::asio;
  auto& session = conn.session();
  for (std::uint64_t i = 0; i < opt.iterations_max && !st.write_failed && !st.closing_down; ++i) {
    if (st.writing) {
      boost::system::error_code ec;
      wake_reader.expires_after(std::chrono::milliseconds(1));
      co_await wake_reader.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (session.output().empty()) break;
    co_await flush<Timer>(stream, conn, signal, now, opt, st, wake_reader);
  }
  co_return !st.write_failed && !st.closing_down;
}

// The TLS handshake the session asked for (see the header comment). False when the
// connection cannot go on (write failure, handshake failure, or no TLS on this stream).
template <class Timer, class AsyncStream, class Connection>
boost::asio::awaitable<bool> start_tls(AsyncStream& stream, Connection& conn,
                                       connection_signal* signal, const clock_fn& now,
                                       const driver_options& opt, driver_state& st,
                                       Timer& wake_reader) {
  namespace asio = boost::asio;
  auto& session = conn.session();
  if (!co_await drain_output<Timer>(stream, conn, signal, now, opt, st, wake_reader))
    co_return false;
  if constexpr (requires(boost::system::error_code ec) {
                  stream.async_start_tls(asio::redirect_error(asio::use_awaitable, ec));
                  stream.tls_handshake_timeout();
                  stream.tls_errors(ec);
                  stream.tls_peer_closed(ec);
                  conn.tls_established(stream.tls_info(), now());
                }) {
    auto ex = co_await asio::this_coro::executor;
    Timer guard(ex);
    auto expired = std::make_shared<bool>(false);
    auto finished = std::make_shared<bool>(false);
    guard.expires_after(stream.tls_handshake_timeout());
    guard.async_wait([&stream, expired, finished](boost::system::error_code ec) {
      if (ec || *finished) return;
      *expired = true;
      close_stream(stream);
    });
    boost::system::error_code ec;
    co_await stream.async_start_tls(asio::redirect_error(asio::use_awaitable, ec));
    *finished = true;
    guard.cancel();
    if (st.closing_down) co_return false;
    if (ec || *expired) {
      const bool peer_closed = !*expired && stream.tls_peer_closed(ec);
      conn.tls_failed(peer_closed, *expired ? std::vector<std::string>{} : stream.tls_errors(ec),
                      now());
      co_return false;
    }
    conn.tls_established(stream.tls_info(), now());
    co_return true;
  } else {
    if constexpr (requires { conn.tls_failed(false, std::vector<std::string>{}, now()); }) {
      conn.tls_failed(false, {"TLS is not available on this transport"}, now());
    } else {
      session.tls_failed(now());
    }
    co_return false;
  }
}

// The reader: read → session.receive → write the replies itself. The main loop is woken only
// when it has something to do: the session is closing, a write failed, or the session's
// deadline moved before the main loop's wake-up time (its timer is not re-armed per command).
template <class Timer, class AsyncStream, class Connection>
boost::asio::awaitable<void> read_loop(AsyncStream& stream, Connection& conn,
                                       connection_signal* signal, clock_fn now, driver_options opt,
                                       driver_state& st, Timer& wake_main, Timer& wake_reader) {
  namespace asio = boost::asio;
  auto& session = conn.session();
  std::vector<char> buf(opt.read_buffer_bytes);
  for (std::uint64_t i = 0; i < opt.iterations_max && !st.closing_down; ++i) {
    if (session.closing() || st.write_failed) break;
    if constexpr (requires { session.tls_wanted(); }) {
      if (session.tls_wanted()) {
        if (!co_await start_tls<Timer>(stream, conn, signal, now, opt, st, wake_reader)) break;
        // Replies produced by the handshake's outcome (the greeting in wrapper mode).
        if (!flush_now<Timer>(stream, conn, signal, now, opt, st, wake_reader))
          co_await flush<Timer>(stream, conn, signal, now, opt, st, wake_reader);
        continue;
      }
    }
    if (session.output().size() >= opt.output_bytes_max) {
      st.reader_paused = true;
      boost::system::error_code ec;
      wake_reader.expires_after(opt.idle_wait_ms);
      co_await wake_reader.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      st.reader_paused = false;
      continue;
    }
    boost::system::error_code ec;
    const std::size_t n = co_await stream.async_read_some(
        asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
    if (st.closing_down) break;
    if (n > 0) {
      st.bytes_read += n;
      session.receive(std::span<const char>(buf.data(), n), now());
    }
    if (ec) {
      if (ec != asio::error::eof) st.read_error = ec;
      st.eof = true;
      session.receive_eof(now());
      break;
    }
    if (!flush_now<Timer>(stream, conn, signal, now, opt, st, wake_reader)) {
      co_await flush<Timer>(stream, conn, signal, now, opt, st, wake_reader);
    }
    if (st.closing_down) break;
    const auto d = session.deadline();
    if (session.closing() || st.write_failed || (d && *d < st.main_wakes_at)) {
      wake(st, wake_main);
    }
  }
  st.reader_done = true;
  wake(st, wake_main);
}
}  // namespace detail

/// Runs `conn` over `stream` until the session closes, the peer goes away, or a stop request.
/// The stream is closed on return. Never throws for I/O errors (they end the connection).
template <class Timer, class AsyncStream, class Connection>
boost::asio::awaitable<driver_result> run_connection(AsyncStream& stream, Connection& conn,
                                                     std::shared_ptr<connection_signal> signal,
                                                     clock_fn now, driver_options opt = {}) {
  namespace asio = boost::asio;
  auto ex = co_await asio::this_coro::executor;
  auto& session = conn.session();
  Timer wake_main(ex);
  Timer wake_reader(ex);
  detail::driver_state st;
  driver_result result;
  detail::make_non_blocking(stream);
  if (signal) {
    signal->set_waker([&] {
      detail::wake(st, wake_main);
      // A stop must also end a write stuck on a client that does not read.
      if (signal->stop_requested() && !st.closing_down) {
        st.closing_down = true;
        detail::close_stream(stream);
        wake_reader.cancel();
      }
    });
  }

  asio::co_spawn(
      ex,
      detail::read_loop<Timer>(stream, conn, signal.get(), now, opt, st, wake_main, wake_reader),
      asio::detached);

  std::uint64_t i = 0;
  for (; i < opt.iterations_max; ++i) {
    st.main_dirty = false;
    if (signal && signal->take_pending()) conn.run_pending(now());
    if (const auto d = session.deadline(); d && now() >= *d) session.advance(now());
    // Write what the session has produced (unless the reader is writing: it takes this too).
    if (!detail::flush_now<Timer>(stream, conn, signal.get(), now, opt, st, wake_reader)) {
      co_await detail::flush<Timer>(stream, conn, signal.get(), now, opt, st, wake_reader);
    }
    if (st.write_failed) {
      result.end = driver_end::io_error;
      result.error = st.write_error;
      break;
    }
    if (session.closing() && !st.writing) {
      result.end = st.eof ? driver_end::peer_eof : driver_end::closed;
      break;
    }
    if ((st.eof || st.reader_done) && !st.writing) {
      // The session did not ask to close after EOF or a read error; nothing more can arrive.
      result.end = st.read_error ? driver_end::io_error : driver_end::peer_eof;
      result.error = st.read_error;
      break;
    }
    if (signal && signal->stop_requested()) {
      result.end = driver_end::stopped;
      break;
    }
    if (st.main_dirty) continue;
    const auto t = now();
    auto wait = std::chrono::duration_cast<timestamp>(opt.idle_wait_ms);
    if (const auto d = session.deadline()) wait = *d > t ? *d - t : timestamp::zero();
    st.main_wakes_at = t + wait;
    wake_main.expires_after(wait);
    boost::system::error_code ec;
    co_await wake_main.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    st.main_wakes_at = timestamp::max();
  }
  if (i >= opt.iterations_max) result.end = driver_end::iteration_limit;
  if (signal && signal->stop_requested() && result.end != driver_end::closed) {
    result.end = driver_end::stopped;
    result.error = {};
  }
  if (st.read_error && result.end == driver_end::peer_eof) {
    result.end = driver_end::io_error;
    result.error = st.read_error;
  }

  // A TLS session that ended normally says so (close_notify), as Postfix's smtpd does: clients
  // such as openssl s_client treat a bare TCP close as truncation. Bounded by a short timer, and
  // only once the reader has stopped (the shutdown reads the peer's answer itself).
  if constexpr (requires(boost::system::error_code ec) {
                  stream.tls_active();
                  stream.async_tls_shutdown(asio::redirect_error(asio::use_awaitable, ec));
                }) {
    const bool clean_end = result.end == driver_end::closed && !st.closing_down &&
                           !st.write_failed && stream.tls_active();
    if (clean_end && !st.reader_done) {
      // The reader waits for input that will not come (the session closed after work that
      // finished outside it, e.g. a queue commit): cancel its read, keep the connection.
      boost::system::error_code ec;
      stream.lowest_layer().cancel(ec);
    }
    for (int k = 0; clean_end && k < 50 && !st.reader_done; ++k) {
      wake_main.expires_after(std::chrono::milliseconds(1));
      boost::system::error_code ec;
      co_await wake_main.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (clean_end && st.reader_done) {
      auto finished = std::make_shared<bool>(false);
      Timer guard(ex);
      guard.expires_after(std::chrono::milliseconds(1000));
      guard.async_wait([&stream, finished](boost::system::error_code ec) {
        if (!ec && !*finished) detail::close_stream(stream);
      });
      boost::system::error_code ec;
      co_await stream.async_tls_shutdown(asio::redirect_error(asio::use_awaitable, ec));
      *finished = true;
      guard.cancel();
    }
  }

  // Tear down: close the stream (aborts a pending read), then wait for the reader to finish so
  // that nothing refers to this frame afterwards.
  if (!st.closing_down) {
    st.closing_down = true;
    detail::close_stream(stream);
  }
  wake_reader.cancel();
  for (int k = 0; k < 1000 && !st.reader_done; ++k) {
    wake_main.expires_after(std::chrono::milliseconds(100));
    boost::system::error_code ec;
    co_await wake_main.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (signal) signal->set_waker(nullptr);
  result.bytes_read = st.bytes_read;
  result.bytes_written = st.bytes_written;
  co_return result;
}

}  // namespace relaylab::net
