// server_stream: a byte stream that starts plain and can switch to TLS in place (STARTTLS), or
// starts TLS at once (wrapper mode). relay/net's driver drives it like a socket:
//   - async_read_some / async_write_some go to the socket or to the TLS layer;
//   - async_start_tls(token) runs the server handshake (the driver calls it when the SMTP
//     session asks for TLS, between reads, with every plaintext reply flushed);
//   - non_blocking()/write_some() serve the driver's write-at-once path only while plain (the
//     TLS layer must see every byte), so non_blocking() reports false once TLS is on.
// Next: an Asio socket-like stream (tcp::socket) with lowest_layer().
#pragma once

#include "relay/tls/context.hpp"
#include "relay/tls/tls.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ssl/stream.hpp>

namespace relaylab::tls {

template <class Next>
class server_stream {
 public:
  using executor_type = typename Next::executor_type;
  using lowest_layer_type = typename Next::lowest_layer_type;

  server_stream(Next& next, std::shared_ptr<server_context> ctx)
      : next_(next), ctx_(std::move(ctx)) {}

  executor_type get_executor() { return next_.get_executor(); }
  lowest_layer_type& lowest_layer() { return next_.lowest_layer(); }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    if (ssl_) return ssl_->async_read_some(b, std::forward<Token>(token));
    return next_.async_read_some(b, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    if (ssl_) return ssl_->async_write_some(b, std::forward<Token>(token));
    return next_.async_write_some(b, std::forward<Token>(token));
  }

  /// Starts the server handshake; completes with (error_code).
  template <class Token>
  auto async_start_tls(Token&& token) {
    ssl_.emplace(next_, ctx_->asio());
    first_error_.clear();
    capture_first_error(ssl_->native_handle(), &first_error_);
    return ssl_->async_handshake(boost::asio::ssl::stream_base::server, std::forward<Token>(token));
  }

  bool tls_active() const { return ssl_.has_value(); }
  /// Sends close_notify and waits for the peer's (or its EOF); completes with (error_code).
  /// Call only with no read or write in flight.
  template <class Token>
  auto async_tls_shutdown(Token&& token) {
    return ssl_->async_shutdown(std::forward<Token>(token));
  }
  /// The client went away during the handshake (Postfix: "lost connection").
  static bool tls_peer_closed(const boost::system::error_code& ec) {
    return ec == boost::asio::error::eof || ec == boost::asio::ssl::error::stream_truncated ||
           ec == boost::asio::error::connection_reset || ec == boost::asio::error::broken_pipe;
  }
  std::chrono::milliseconds tls_handshake_timeout() const {
    return ctx_->settings().handshake_timeout;
  }
  /// OpenSSL's reasons for a failed handshake, in Postfix's words (the one asio took from the
  /// error queue for `ec` first).
  std::vector<std::string> tls_errors(const boost::system::error_code& ec) {
    std::vector<std::string> out;
    if (ec.category() == boost::asio::error::get_ssl_category()) {
      const std::string plain = openssl_error_text(static_cast<unsigned long>(ec.value()));
      out.push_back(first_error_.rfind(plain, 0) == 0 ? first_error_ : plain);
    }
    for (auto& e : take_openssl_errors()) out.push_back(std::move(e));
    return out;
  }
  /// The established session (call after async_start_tls succeeded).
  session_info tls_info() { return inspect(ssl_->native_handle()); }
  const server_settings& tls_settings() const { return ctx_->settings(); }

  // Write-at-once path, plain text only.
  bool non_blocking() const { return !ssl_ && next_.non_blocking(); }
  void non_blocking(bool on, boost::system::error_code& ec) { next_.non_blocking(on, ec); }
  template <class Buffers>
  std::size_t write_some(const Buffers& b, boost::system::error_code& ec) {
    if (ssl_) {
      ec = boost::asio::error::would_block;
      return 0;
    }
    return next_.write_some(b, ec);
  }

 private:
  Next& next_;
  std::shared_ptr<server_context> ctx_;
  std::optional<boost::asio::ssl::stream<Next&>> ssl_;
  std::string first_error_;  // see capture_first_error
};

}  // namespace relaylab::tls
