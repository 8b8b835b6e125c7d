// The local delivery agent (Postfix local(8), transport "local") for mydestination recipients:
// per-user mbox files or Maildir directories under a base directory.
//
// relaylab has no system users and no home directories: a user is the recipient's local part
// (lower case) when local_recipient_maps knows it (by "user@domain" or "user"; an empty map
// list accepts everyone). Mailboxes live under mail_spool_directory, as Postfix puts mbox
// files there: home_mailbox = "" → <dir>/<user> (mbox); home_mailbox "Mailbox" → <dir>/<user>/
// Mailbox (mbox); home_mailbox ending in "/" ("Maildir/") → <dir>/<user>/Maildir/ (Maildir).
//
// An mbox delivery appends, under an exclusive fcntl lock, a From_ line
// ("From sender  Sat Nov 28 05:44:02 2026", MAILER-DAEMON for the null sender), Return-Path:,
// X-Original-To:, Delivered-To:, the message with LF line ends and ">From " quoting, and an
// empty line; then fsyncs. A Maildir delivery writes tmp/NAME, fsyncs it, renames it into
// new/ and fsyncs new/. Only then is "sent" reported. Failures to write report "deferred"
// (4.3.0) after the mbox is truncated back; an unknown user is "bounced" (5.1.1
// unknown user: "name"), as Postfix's local says.
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include "relay/delivery/agent.hpp"
#include "relay/log/log.hpp"
#include "relay/maps/maps.hpp"
#include "relay/net/stream.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace relaylab::qmgr {

struct local_options {
  std::filesystem::path mail_spool_directory = "/var/mail";
  std::string home_mailbox;  // "", "Mailbox", "Maildir/"
  /// local_recipient_maps tables; empty = every local part is a user.
  std::vector<std::shared_ptr<const maps::table>> local_recipient_maps;
  std::string myhostname = "localhost";
  std::size_t content_bytes_max = 64u << 20;  // larger messages are deferred, never truncated
};

class local_agent final : public delivery::agent {
 public:
  /// `rt` gives the time for From_ lines and delays; `log` may be null.
  local_agent(local_options options, net::runtime& rt, log::logger* log, log::origin origin);
  boost::asio::awaitable<std::vector<delivery::recipient_outcome>> deliver(
      const delivery::job& j) override;

 private:
  delivery::recipient_outcome deliver_one(const delivery::job& j, const delivery::job_recipient& r,
                                          const std::string& content);
  bool known_user(const std::string& address, const std::string& user) const;

  local_options options_;
  net::runtime& rt_;
  log::logger* log_;
  log::origin origin_;
  std::uint64_t sequence_ = 0;
};

/// The bytes an mbox delivery appends (From_ line through the final empty line).
std::string mbox_entry(std::string_view sender, std::string_view original_recipient,
                       std::string_view recipient, std::string_view content_crlf,
                       std::chrono::system_clock::time_point now);

}  // namespace relaylab::qmgr
