// relaylab matrix: the relay's policy as a truth table. Every combination of listener (master.cf
// inet service), client, AUTH, sender class and recipient class is driven through the relay's
// real smtpd service and sans-IO server session in process (the code that runs on TCP), and each
// stage's reply line and deciding restriction is recorded.
//
// One concept per file: samples.cpp (axes and sample values from the configuration), drive.cpp
// (one dialogue per cell), format.cpp (text, Markdown, CSV, JSON, HTML, folding), compare.cpp
// (--against), highlight.cpp (--highlight).
#pragma once

#include "relay/config/config.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace relaylab::matrix {

/// One value of an axis: `label` names it in tables and in --sample ("outside", "foreign"),
/// `value` is what the dialogue uses, `why` says where the value came from.
struct sample {
  std::string label;
  std::string value;             // client: IP address; sender/recipient: the SMTP path without <>
  std::string name = "unknown";  // clients only: the verified client host name
  std::string why;
};

struct credentials {
  std::string user;
  std::string password;
};

/// What the user asked for beyond the configuration.
struct options {
  /// --sample AXIS.LABEL=VALUE (client.outside=203.0.113.9, rcpt.foreign=x@example.org,
  /// sender.local=a@b, auth=user:password).
  std::map<std::string, std::string> overrides;
  std::optional<credentials> auth;  // --auth-user/--auth-password
};

enum class auth_mode { none, success, failure };
const char* to_string(auth_mode m);

struct axes {
  std::vector<config::master_service> listeners;
  std::vector<sample> clients, senders, recipients;
  std::vector<auth_mode> auths;
  std::optional<credentials> auth;
  std::vector<std::string> notes;  // "AUTH success not sampled: ...", skipped values
};

/// Builds the axes from `cfg`. Errors (an override for a label that no axis has, a bad value):
/// messages in `errors`, returns nullopt.
std::optional<axes> make_axes(const config::configuration& cfg, const options& opt,
                              std::vector<std::string>& errors);

/// Every label --sample accepts for `a`, "client.outside", ..., "auth".
std::vector<std::string> sample_keys(const axes& a);

struct stage_result {
  std::string stage;    // "connect", "helo", "auth", "mail", "rcpt", "data", "eod"
  std::string reply;    // the reply's first line as sent (for EHLO: its greeting line)
  std::string decider;  // "smtpd_recipient_restrictions: reject_unauth_destination", or ""
};

struct cell {
  std::string listener;                         // master.cf service name
  std::string client, auth, sender, recipient;  // axis labels
  std::string client_addr, sender_addr, recipient_addr;
  std::string client_name = "unknown";  // the verified client host name the cell claims
  std::vector<stage_result> stages;     // in dialogue order, up to the first refusal
  bool auth_offered = false;            // EHLO offered AUTH (plaintext session)
  bool authenticated = false;           // AUTH answered 235
  /// The stage that decided the cell: the first refused one, else "eod" (accepted).
  const stage_result& decisive() const;
  bool accepted() const;  // end of data answered 2xx
  /// The restriction that decided: the decisive stage's, or for an accepted cell the last
  /// restriction that answered at all (usually the RCPT stage's permit); "" when none did.
  std::string decided_by() const;
  /// "listener|client|auth|sender|recipient": what --against matches cells by.
  std::string key() const;
};

struct table {
  std::string config_dir;
  std::vector<cell> cells;
  std::vector<std::string> notes;
  std::map<std::string, std::string> listener_params;  // "service:param" -> value (highlight)
};

/// Drives every cell. Errors (the configuration does not start: bad restriction, SASL init):
/// messages in `errors`, returns nullopt. `cells_max` bounds the table.
std::optional<table> run(const config::configuration& cfg, const axes& a,
                         std::vector<std::string>& errors, std::size_t cells_max = 100000);

/// One side of a cell's dialogue: the in-process smtpd (drive.cpp) or a real server over TCP
/// (oracle.cpp). Each call returns the complete reply, possibly multi-line.
class exchange {
 public:
  virtual ~exchange() = default;
  virtual std::string greeting() = 0;                    // the connect stage
  virtual std::string send(std::string_view bytes) = 0;  // one command line or message
  virtual std::string decider() { return {}; }           // the restriction behind the last reply
};

/// The connect stage's text for a cell of a TLS wrapper-mode listener (not driven).
inline constexpr std::string_view tls_wrapper_not_driven = "(TLS wrapper mode: not driven)";

/// Plays cell `c`'s dialogue through `x`: greeting, EHLO, AUTH PLAIN (`auth`, credentials from
/// `a`), MAIL, RCPT, DATA, a short message, QUIT, recording each stage up to the first refusal.
void play(exchange& x, const axes& a, auth_mode auth, cell& c);

/// The three-digit code of a reply line, 0 when it has none.
int reply_code(const std::string& reply);

/// Replaces what differs between runs of the same config (queue IDs) so replies compare.
std::string normalize_reply(const std::string& reply);

// --- format.cpp ---
enum class format { text, markdown, csv, json, html };
struct format_options {
  format what = format::text;
  bool colour = false;
  bool fold = false;
  bool highlight = false;
  /// Differences show the first stage whose reply differs (the oracle), not the decisive one.
  bool first_difference = false;
  const char* old_label = "old";
  const char* new_label = "new";
};
std::string render(const table& t, const format_options& o);

// --- compare.cpp ---
struct difference {
  std::string key;
  const cell* before = nullptr;  // null: only in the new table
  const cell* after = nullptr;   // null: only in the old table
};
/// Cells whose stage replies differ (queue IDs normalised), in the old table's order.
std::vector<difference> compare(const table& before, const table& after);
std::string render_differences(const table& before, const table& after,
                               const std::vector<difference>& diffs, const format_options& o);

// --- highlight.cpp ---
struct finding {
  std::string kind;  // "open-relay", "auth-refused-relay", "auth-without-tls",
                     // "bare-lf-accepted", "defer-unauth-destination", "permanent-auth-reject"
  std::string key;   // the cell, or "listener" for listener-wide findings
  std::string text;  // one line naming the deciding restriction
};
std::vector<finding> highlight(const table& t);

// --- oracle.cpp ---
class postfix_instance;
struct oracle_result {
  table postfix;  // the same cells as Postfix answered them
  // per cell, nonzero: connect stage compared with the client masked. Not vector<bool>: the
  // workers set cells concurrently, and vector<bool> packs neighbours into one word.
  std::vector<unsigned char> masked;
  std::vector<difference> differences;  // before = relaylab, after = Postfix
  double seconds = 0;                   // wall time of the Postfix dialogues
};
/// What XCLIENT cannot show Postfix in `cfg`, one line each: permit_inet_interfaces looks at
/// the real (loopback) peer, so every XCLIENT client matches it in Postfix.
std::vector<std::string> oracle_caveats(const config::configuration& cfg);
/// Plays every cell of `relaylab` against `pf`, `jobs` connections at once, and compares the
/// replies stage by stage (queue IDs normalised). Errors (a listener Postfix does not have):
/// messages in `errors`, nullopt. A cell Postfix does not answer is a difference, not an error.
std::optional<oracle_result> run_oracle(const postfix_instance& pf, const table& relaylab,
                                        const axes& a, unsigned jobs,
                                        std::vector<std::string>& errors);

}  // namespace relaylab::matrix
