// Postfix lookup tables ("type:name"): inline:{k=v, ...}, texthash:/path, cidr:/path,
// static:value, and hash:/path read as its source text (relaylab has no Berkeley DB).
//
// CONTRACT (used by relay/policy, relay/delivery, relay/sasl client, relay/smtpd):
// - open() parses the table once; lookups are pure and thread-compatible.
// - Errors name the file:line (or the parameter for inline) and what was expected.
#pragma once

#include <cstddef>
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
  /// True for fixed-string tables (hash, texthash, inline, static, unix), false for pattern
  /// tables (cidr). Postfix's access checks try partial keys (parent domains, user@, network
  /// prefixes) only against fixed-string tables (DICT_FLAG_FIXED).
  virtual bool fixed_string() const noexcept { return true; }
  /// The keys of a fixed-string table that holds its entries (inline, texthash, hash ...), in
  /// order, at most `count_max`; empty for tables that cannot list keys (static, unix, cidr).
  /// For tools that pick example inputs from a table (relaylab matrix).
  virtual std::vector<std::string> keys(std::size_t count_max) const {
    (void)count_max;
    return {};
  }
};

/// How to read a table's source text.
struct open_options {
  /// Read hash:/lmdb:/btree:/dbm:/sdbm: sources in aliases(5) format ("name: value"), as
  /// postalias does. When false, open() still uses it for sources whose file name is
  /// "aliases" (or ends in "/aliases"); everything else is read in postmap(1) format.
  bool aliases = false;
  /// Largest source file read, and most entries kept; larger tables are an error.
  std::size_t file_bytes_max = 64u << 20;
  std::size_t entries_max = 1u << 20;
  /// Postfix-style warnings for lines it would skip ("FILE, line N: expected format: key
  /// whitespace value"); may be null.
  std::vector<std::string>* warnings = nullptr;
};

/// Opens "type:name". `error` is set (and nullptr returned) on failure.
std::unique_ptr<table> open(std::string_view spec, std::string& error);

/// Same, with explicit options. Supported: inline:{k=v, { k = v with spaces }}, texthash:/path,
/// cidr:/path, cidr:{ {rule}, ... }, static:value, static:{value with spaces}, unix:passwd.byname,
/// proxy:<any of these> (the prefix is stripped), and hash:/lmdb:/btree:/dbm:/sdbm:/path read
/// from the SOURCE file /path (there is no Berkeley DB in relaylab).
///
/// Errors (the message names FILE:LINE or the spec, and what was expected): unknown or
/// unsupported table type; a source file that cannot be read (never an empty table: Postfix
/// cannot answer from a missing hash:/etc/aliases.db either, its smtpd then defers every
/// lookup with "451 4.3.0 ... Temporary lookup failure"; relaylab reports it at open); a file
/// larger than file_bytes_max or with more than entries_max entries; inline/static brace
/// syntax; a cidr pattern that is not an address, has a bad prefix length, has host bits set
/// beyond the prefix, or unbalanced if/endif.
std::unique_ptr<table> open(std::string_view spec, std::string& error, const open_options& options);

/// Lower-cases ASCII as Postfix's lowercase() does (keys of fixed-string tables).
std::string fold_case(std::string_view s);

}  // namespace relaylab::maps
