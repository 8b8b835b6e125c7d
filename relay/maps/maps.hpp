// Postfix lookup tables ("type:name"): inline:{k=v, ...}, texthash:/path, cidr:/path,
// static:value, and hash:/path read as its source text (relaylab has no Berkeley DB).
//
// CONTRACT (used by relay/policy, relay/delivery, relay/sasl client, relay/smtpd):
// - open() parses the table once; lookups are pure and thread-compatible.
// - Errors name the file:line (or the parameter for inline) and what was expected.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::maps {

class table {
 public:
  virtual ~table() = default;
  /// Exact-key lookup (keys are case-folded as Postfix does for that table type).
  virtual std::optional<std::string> find(std::string_view key) const = 0;
  /// The "type:name" the table was opened from.
  virtual const std::string& name() const noexcept = 0;
};

/// Opens "type:name". `error` is set (and nullptr returned) on failure.
std::unique_ptr<table> open(std::string_view spec, std::string& error);

}  // namespace relaylab::maps
