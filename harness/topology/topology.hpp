// Topology files (topologies/*.xml, schema topologies/relaylab-topology.xsd) read into plain
// structs. pugixml stays inside this folder (reader.hpp, the .cpp files): nothing here mentions it.
//
// A topology declares the network (VPCs, subnets, route tables, gateways, security groups,
// network ACLs, hosts), DNS zones, what runs on each host (the relay with its main.cf,
// master.cf, smtpd.conf and sasldb users; fake MX receivers with their scripts; clients) and
// scenarios (steps and expectations). Texts that other modules parse (main.cf, zone files, MX
// scripts, dialogues) are kept as text with the place they came from, so their parsers'
// line:column errors can be reported against the right file.
#pragma once

#include "harness/sim/network.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace relaylab::topology {

/// Where something is: file:line:column (1-based; columns count UTF-8 characters).
struct location {
  std::string file;
  std::size_t line = 0;
  std::size_t column = 0;
  std::string to_string() const;
};

struct diagnostic {
  location where;
  std::string message;            // what was found and what was expected
  std::string to_string() const;  // "file:line:column: error: message"
};

/// Text that is either inline in the XML or in a file beside it.
struct text_source {
  std::string text;
  location where;          // of the first character of `text` (line 1 column 1 for a file)
  std::string path;        // the file it was read from, "" when inline
  std::size_t indent = 0;  // columns of common indentation removed from inline text
  bool present = false;
};

struct sasl_user {
  std::string name;   // "smtp-auth"
  std::string realm;  // "example.com"
  std::string password;
  location where;
};

struct relay_spec {
  text_source main_cf;
  text_source master_cf;
  text_source smtpd_conf;
  std::vector<sasl_user> sasl_users;
  std::string myhostname;  // "" = the host's name
  /// tls="none|may|encrypt": smtpd_tls_security_level, as if appended to main.cf ("" = as
  /// main.cf says). The certificate is the run's own (see mx_spec::tls) unless main.cf names one.
  std::string tls;
  location where;
};

struct mx_spec {
  std::uint16_t port = 25;
  text_source script;  // fakes/mx script text; empty = accept everything
  /// tls="good|self-signed|expired": EHLO offers STARTTLS with a certificate from the run's
  /// own CA (which every relay's delivery agent trusts), a self-signed one, or one that expired
  /// a day before the scenario's epoch. "" = no TLS.
  std::string tls;
  bool tls_wrapper = false;            // tls-wrapper="yes": TLS from the first byte (smtps)
  std::vector<std::string> tls_names;  // tls-names: certificate names ("" = the host's name)
  location where;
};

struct host {
  sim::host_spec net;
  std::optional<relay_spec> relay;
  std::vector<mx_spec> mx;
  bool client = false;
  location where;
};

/// <hosts count="N" prefix="client-" subnet="..."|cidr="...">: N hosts named prefix1 ..
/// prefixN (no zero padding), each as a <host> with the group's attributes and roles, held
/// in document::hosts[first, first + count) in that order.
struct host_group {
  std::string name;  // "" = unnamed
  std::string prefix;
  std::size_t first = 0;
  std::size_t count = 0;
  location where;
};

/// The most hosts one <hosts> element declares.
inline constexpr std::uint64_t group_hosts_max = 65536;

// ---------------------------------------------------------------------------------------------
// Scenarios.

enum class step_kind { send, dialogue, load, fault, wait, matrix };

enum class fault_kind {
  link_down,
  link_up,
  crash,
  restart,
  partition,
  heal,
  sg_add,
  sg_remove,
  dns,
};

struct send_step {     // the mailx-like client
  std::string host;    // where the client runs
  std::string server;  // address
  std::uint16_t port = 25;
  std::string from, subject, body;
  std::vector<std::string> to;
  std::string auth;  // "" or "plain"/"login"
  std::string user, password;
  /// "sent" (250 after DATA), "rejected" (a 4xx/5xx), "timeout", "unreachable", "refused".
  std::string expect = "sent";
  std::string expect_reply;  // glob on the failing or final reply line, "" = any
  /// tls="starttls" (mailx's smtp-use-starttls) or "implicit" (an smtps:// URL); "" = none.
  std::string tls;
  /// tls-verify: mailx's ssl-verify (strict, warn, ignore); the client trusts the run's CA.
  std::string tls_verify = "strict";
  /// expect-tls: "yes", "no", or a protocol ("TLSv1.3") the session must have used.
  std::string expect_tls;
};

/// A load (fakes/load, smtp-source style) started in the background: later steps run while it
/// goes on; <wait until="loads-done"> waits for it, <expect-load> judges it.
struct load_step {
  std::string host, server;
  /// group="NAME" instead of host: every host of that <hosts> group runs its own load with
  /// these options (concurrency sessions each). `messages` is then the total, spread over the
  /// group (the first total % N hosts send one more), or, with per_host, each host's count.
  std::string group;
  bool per_host = false;
  std::uint16_t port = 25;
  std::uint64_t messages = 1;
  std::uint64_t concurrency = 1;  // sessions in parallel
  std::string from, to, user, password;
  std::string auth;  // "" (none), "plain" or "login"; needs user and password
  bool pipelining = false;
  std::uint64_t message_bytes = 0;  // body bytes beyond the headers
  std::string tls;                  // "starttls", "implicit" or "" (none), as for <send>
};

struct fault_step {
  fault_kind kind = fault_kind::link_down;
  std::string target;             // link, host, security group or DNS name
  std::vector<std::string> a, b;  // partition sides
  bool ingress = true;            // sg_add/sg_remove
  sim::sg_rule rule;              // sg_add/sg_remove
  text_source records;            // dns: zone text replacing the name's records
};

/// <matrix relay="HOST" expect-no="open-relay ...">: the relay's policy table (relaylab matrix)
/// computed from its configuration as the scenario runs it; each kind in expect-no is a
/// --highlight finding that must not appear.
struct matrix_step {
  std::string relay;
  std::vector<std::string> expect_no;
};

struct step {
  step_kind kind = step_kind::wait;
  std::string name;                  // for expectations that refer to a step
  std::chrono::milliseconds at{-1};  // start at this virtual time (-1 = after the previous)
  send_step send;
  std::string dialogue_host, dialogue_server;
  std::uint16_t dialogue_port = 25;
  text_source dialogue;
  load_step load;
  fault_step fault;
  std::chrono::milliseconds wait_for{0};
  std::string wait_until;  // "", "queue-empty" or "loads-done"
  matrix_step matrix;
  location where;
};

enum class expect_kind { maillog, maillog_sequence, mailbox, queue, duration, load, matrix_cell };

struct expectation {
  expect_kind kind = expect_kind::maillog;
  std::vector<std::string> patterns;   // globs ('*'); one for maillog, several for sequences
  std::optional<std::uint64_t> count;  // maillog: exact number of matching lines
  bool absent = false;                 // maillog: no line matches
  std::string host;                    // mailbox: the MX host
  std::string recipient;               // mailbox
  std::string contains;                // mailbox: glob on the content
  std::string tls;                     // mailbox: "yes", "no" or the protocol it came in with
  std::optional<std::uint64_t> incoming, active, deferred;  // queue
  std::string step;  // duration: the step measured; load: the load step
  /// load: messages the server accepted (250 after DATA) / that failed; exact, or bounds.
  std::optional<std::uint64_t> accepted, failed, accepted_min, accepted_max;
  std::optional<std::chrono::milliseconds> min, max;  // duration bounds (virtual time)
  /// matrix_cell (<expect-matrix-cell>), against the table of the <matrix> step named `step`:
  /// the cells whose labels match these globs (at least one must) all have this outcome
  /// ("accepted" or "refused"), decisive stage, reply and deciding restriction (globs; "" =
  /// anything).
  std::string listener, client, auth, sender, cell_recipient;
  std::string outcome, stage, reply, decided_by;
  /// Checked after this many steps of the scenario have run (expectations sit between steps).
  std::size_t after_step = 0;
  location where;
};

/// Per-scenario changes to what runs on a host.
struct override_spec {
  std::string host;
  text_source main_cf_append;  // lines appended to main.cf (later settings win)
  text_source master_cf;       // replaces master.cf
  text_source mx_script;       // replaces the script of the host's first MX
  location where;
};

struct scenario {
  std::string name;
  std::string description;
  std::vector<step> steps;
  std::vector<expectation> expectations;
  std::vector<override_spec> overrides;
  std::chrono::milliseconds time_max{std::chrono::hours(24 * 7)};
  /// The scenario's own network (its <import>); nullopt = the document's.
  std::optional<sim::network_spec> network;
  location where;
  const sim::network_spec& network_or(const sim::network_spec& doc) const {
    return network ? *network : doc;
  }
};

struct document {
  std::string file;
  std::string name;
  std::optional<std::uint64_t> seed;
  std::chrono::system_clock::time_point epoch{std::chrono::seconds(1603246874)};
  sim::network_spec network;
  std::vector<text_source> zones;
  std::vector<host> hosts;
  std::vector<host_group> groups;
  std::vector<scenario> scenarios;
  const host* find_host(const std::string& name) const;
  const host_group* find_group(const std::string& name) const;
};

/// Loads and validates a topology file. Every problem found is appended to `errors` (the
/// loader goes on after an error to report as many as it can, up to errors_max); returns the
/// document only when there is none. Errors: unreadable file, XML syntax, unknown or missing
/// elements and attributes, bad values (addresses, CIDRs, ports, durations), names that refer
/// to nothing, network model errors, unreadable referenced files.
std::optional<document> load(const std::string& path, std::vector<diagnostic>& errors);
/// As load(), from text; `file` names it in diagnostics and `base_dir` resolves file="..."
/// references.
std::optional<document> parse(std::string_view xml, const std::string& file,
                              const std::string& base_dir, std::vector<diagnostic>& errors);

inline constexpr std::size_t file_bytes_max = 16 << 20;
inline constexpr std::size_t errors_max = 100;

/// "100us", "250ms", "30s", "2m", "1.5h", "1d", "0" → nanoseconds; nullopt when malformed.
std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text);
/// parse_duration() truncated to milliseconds.
std::optional<std::chrono::milliseconds> parse_duration_ms(std::string_view text);

/// Maps a line/column inside an embedded text to the file:line:column of the XML.
location locate_in(const text_source& t, std::size_t line, std::size_t column);

}  // namespace relaylab::topology
