// Shared by the server and client halves of the libsasl2 adapter; not for other modules.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "relay/sasl/sasl.hpp"

namespace relaylab::sasl::detail {

/// Serialises libsasl2's process-wide init/done calls.
std::mutex& library_mutex();
/// smtpd_sasl_security_options / smtp_sasl_security_options as SASL_SEC_* flags.
unsigned security_flags(const security_options& o);
/// sasl_errstring(code) in English, as Postfix logs it.
std::string errstring(int code);
bool has_nul(std::string_view s);
/// Postfix's log sanitising (msg_text/printable): control characters become '?'. 8-bit bytes
/// are kept (Postfix keeps valid UTF-8 when smtputf8 is on).
void printable(std::string& s);

}  // namespace relaylab::sasl::detail
