// Shared by the server and client halves of the libsasl2 adapter; not for other modules.
#pragma once

#include <mutex>
#include <optional>
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

// relaylab's sasldb reader (sasldb_reader.cpp): an auxprop plugin over Cyrus's sasldb file
// that keeps the database open while the file is unchanged.
/// The plugin's name, as it appears in a mapped auxprop_plugin list.
std::string_view sasldb_reader_name();
/// Registers the plugin with libsasl2; call after sasl_server_init. Returns a SASL_* code.
int add_sasldb_reader();
/// `auxprop_plugin` with each "sasldb" replaced by the reader's name; nullopt when it names no
/// sasldb (then libsasl2's own value stands).
std::optional<std::string> with_sasldb_reader(std::string_view auxprop_plugins);
/// For a config without auxprop_plugin, where libsasl2 asks every auxprop plugin it loaded: the
/// names of those plugins (call after sasl_server_init, before add_sasldb_reader) with
/// "sasldb" replaced by the reader's name; nullopt when no sasldb plugin was loaded.
std::optional<std::string> loaded_auxprop_with_sasldb_reader();

}  // namespace relaylab::sasl::detail
