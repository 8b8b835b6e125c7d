// relay/queue errors: one enum, registered as a std::error_code category.
#pragma once

#include <string_view>
#include <system_error>

namespace relaylab::queue {

/// Every error the queue reports to its callers. Storage operations report plain system errors
/// (std::errc::io_error, std::errc::no_space_on_device ...); the spool maps them to these values
/// and keeps the system error as the `cause` for the log.
enum class errc {
  /// A queue file could not be written, synced, renamed or its directory synced (EIO, ENOSPC,
  /// EDQUOT ...). Nothing was acknowledged. SMTP: "451 4.3.0 Error: queue file write error".
  write_error = 1,
  /// Free space is below queue_minfree, or too small for the announced message size (checked
  /// at MAIL time and again before a commit writes). SMTP: "452 4.3.1 Insufficient system
  /// storage".
  insufficient_space,
  /// The announced or actual size exceeds message_size_limit.
  /// SMTP: "552 5.3.4 Message size exceeds fixed limit".
  message_too_large,
  /// More recipients than recipients_max. SMTP: "452 4.5.3 Error: too many recipients".
  too_many_recipients,
  /// No queued message with this queue ID (never existed, removed, or in another state).
  not_found,
  /// A queue file failed its checksum or is truncated or malformed.
  corrupt,
  /// A queue file exists but could not be read (EIO ...).
  read_error,
  /// The operation does not fit the object's state (commit twice, move to the same state,
  /// recipient index out of range, committer stopped).
  invalid_state,
  /// No unused queue ID could be generated within the attempt limit.
  id_exhausted,
};

const std::error_category& queue_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), queue_category()};
}

/// The Postfix reply an SMTP server sends for `ec` (a queue error), e.g.
/// "451 4.3.0 Error: queue file write error". Any other error, including unknown categories,
/// yields the write-error reply: the server must not claim success.
std::string_view smtp_reply(std::error_code ec) noexcept;

}  // namespace relaylab::queue

template <>
struct std::is_error_code_enum<relaylab::queue::errc> : std::true_type {};
