// Strict RFC 4648 base64 (standard alphabet, '=' padding), as SMTP AUTH (RFC 4954) uses it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace relaylab::smtp {

/// Encodes `in` with padding. Never fails.
std::string base64_encode(std::string_view in);

/// Decodes `in`. Errors (nullopt): a length that is not a multiple of 4, a character outside
/// the alphabet, misplaced or excess padding, or non-zero bits in the final padded quantum.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace relaylab::smtp
