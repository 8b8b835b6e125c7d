// Server side of the libsasl2 adapter. Postfix's xsasl_cyrus_server.c is the behavioural
// reference (what is passed to libsasl2 and how results become reply text); the code is ours.
#include "relay/sasl/sasl.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sasl/sasl.h>
#include <sasl/saslutil.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstring>
#include <mutex>

#include "relay/config/config.hpp"
#include "relay/sasl/sasl_internal.hpp"

namespace relaylab::sasl {

namespace detail {

std::mutex& library_mutex() {
  static std::mutex m;
  return m;
}

unsigned security_flags(const security_options& o) {
  unsigned flags = 0;
  if (o.noplaintext) flags |= SASL_SEC_NOPLAINTEXT;
  if (o.noactive) flags |= SASL_SEC_NOACTIVE;
  if (o.nodictionary) flags |= SASL_SEC_NODICTIONARY;
  if (o.forward_secrecy) flags |= SASL_SEC_FORWARD_SECRECY;
  if (o.noanonymous) flags |= SASL_SEC_NOANONYMOUS;
  if (o.mutual_auth) flags |= SASL_SEC_MUTUAL_AUTH;
  return flags;
}

std::string errstring(int code) {
  const char* text = sasl_errstring(code, nullptr, nullptr);
  return text != nullptr ? text : "unknown SASL error";
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

void printable(std::string& s) {
  for (char& c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
}

}  // namespace detail

using detail::errstring;
using detail::has_nul;

namespace {

// Postfix's name_mask for smtpd_sasl_security_options (xsasl_cyrus_security.c).
struct option_word {
  std::string_view name;
  bool security_options::*field;
};
constexpr option_word option_words[] = {
    {"noplaintext", &security_options::noplaintext},
    {"noactive", &security_options::noactive},
    {"nodictionary", &security_options::nodictionary},
    {"forward_secrecy", &security_options::forward_secrecy},
    {"noanonymous", &security_options::noanonymous},
    {"mutual_auth", &security_options::mutual_auth},
};

step_result failure(int code) {
  step_result r;
  r.state = step_result::status::failure;
  r.sasl_code = code;
  // Privacy: Postfix never tells the client that the user does not exist.
  r.reason = errstring(code == SASL_NOUSER ? SASL_BADAUTH : code);
  r.temporary =
      code == SASL_FAIL || code == SASL_NOMEM || code == SASL_TRYAGAIN || code == SASL_UNAVAIL;
  return r;
}

// Collects libsasl2's log messages for one session; Postfix logs ERR/WARN as "problem" and
// FAIL as "failure" and drops the rest unless verbose.
int session_log(void* context, int level, const char* message) {
  auto* lines = static_cast<std::vector<std::string>*>(context);
  const char* prefix = nullptr;
  switch (level) {
    case SASL_LOG_ERR:
    case SASL_LOG_WARN:
      prefix = "SASL authentication problem: ";
      break;
    case SASL_LOG_FAIL:
      prefix = "SASL authentication failure: ";
      break;
    default:
      return SASL_OK;
  }
  if (lines == nullptr || lines->size() >= log_lines_max) return SASL_OK;
  std::string line = prefix;
  line += message != nullptr ? message : "";
  if (line.size() > log_line_bytes_max) line.resize(log_line_bytes_max);
  detail::printable(line);
  lines->push_back(std::move(line));
  return SASL_OK;
}

using sasl_cb_proc = int (*)();

template <typename F>
sasl_cb_proc as_proc(F* f) {
  // libsasl2's callback table stores every callback as int(*)(void); it casts back by id.
  return reinterpret_cast<sasl_cb_proc>(reinterpret_cast<void (*)()>(f));
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// libsasl2's canon_user test for "All-whitespace username." (isspace in the C locale).
bool all_space(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
  });
}

// "addr" or "addr;port" with a numeric IPv4/IPv6 address, as libsasl2 wants. Checked here
// because sasl_server_new leaks ~232 bytes when it rejects an address itself.
bool valid_ip_port(std::string_view s) {
  if (s.empty()) return true;
  const auto semi = s.rfind(';');
  const std::string host(s.substr(0, semi));
  if (semi != std::string_view::npos) {
    const auto port = s.substr(semi + 1);
    if (port.empty() || port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoul(std::string(port)) > 65535) {
      return false;
    }
  }
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool readable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), R_OK) == 0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Process-wide server initialisation.

struct detail::server_core {
  std::string config_path;
  std::string app_name;
  bool keep_sasldb_open = true;
  std::vector<std::string> init_log;
  ~server_core();
};

namespace {

// The one live initialisation (guarded by library_mutex). The config path and init log are
// reached from global callbacks, which get this pointer as their context.
std::weak_ptr<detail::server_core>& live_core() {
  static std::weak_ptr<detail::server_core> w;
  return w;
}
// Set while set_sasldb_password runs its own short initialisation.
bool temporary_init_active = false;
std::string global_conf_path;
// sasl_server_init keeps the application name pointer (it does not copy it) and uses it for
// every sasl_server_new: it must outlive the initialisation.
std::string global_app_name;

int global_getconfpath(void* context, const char** path) {
  if (path == nullptr) return SASL_BADPARAM;
  *path = static_cast<const std::string*>(context)->c_str();
  return SASL_OK;
}

int global_log(void* context, int level, const char* message) {
  return session_log(context, level, message);
}

std::vector<std::string> global_log_lines;

// The config file's auxprop_plugin with "sasldb" mapped to relaylab's reader; empty when the
// file's own value stands (reader off, or no sasldb named).
std::string global_auxprop_plugin;

// Asked before the config file for every option libsasl2 reads; answers only auxprop_plugin,
// and only while relaylab's reader replaces Cyrus's sasldb plugin.
int global_getopt(void* context, const char* /*plugin_name*/, const char* option,
                  const char** result, unsigned* len) {
  const auto* mapped = static_cast<const std::string*>(context);
  if (option == nullptr || result == nullptr || mapped->empty() ||
      std::strcmp(option, "auxprop_plugin") != 0) {
    return SASL_FAIL;
  }
  *result = mapped->c_str();
  if (len != nullptr) *len = static_cast<unsigned>(mapped->size());
  return SASL_OK;
}

sasl_callback_t global_callbacks[] = {
    {SASL_CB_GETCONFPATH, as_proc(&global_getconfpath), &global_conf_path},
    {SASL_CB_LOG, as_proc(&global_log), &global_log_lines},
    {SASL_CB_GETOPT, as_proc(&global_getopt), &global_auxprop_plugin},
    {SASL_CB_LIST_END, nullptr, nullptr},
};

}  // namespace

detail::server_core::~server_core() {
  std::lock_guard lock(detail::library_mutex());
  sasl_server_done();
}

server_library::server_library(server_config config) : config_(std::move(config)) {}
server_library::~server_library() = default;
const server_config& server_library::config() const noexcept { return config_; }

std::shared_ptr<server_library> server_library::init(const server_config& config,
                                                     std::string& error) {
  if (config.config_path.empty()) {
    error = "SASL config path is empty (cyrus_sasl_config_path)";
    return nullptr;
  }
  if (config.app_name.empty() || config.app_name.find('/') != std::string::npos ||
      has_nul(config.app_name) || has_nul(config.config_path)) {
    error = "bad SASL application name \"" + config.app_name + "\"";
    return nullptr;
  }
  if (config.service.empty() || has_nul(config.service) || has_nul(config.server_fqdn) ||
      has_nul(config.user_realm)) {
    error = "bad SASL service, server name or realm";
    return nullptr;
  }
  // libsasl2 silently falls back to built-in defaults (all mechanisms, /etc/sasldb2) when the
  // file is missing; a lab must not authenticate against something it was not told about.
  const std::string conf_file = config.config_path + "/" + config.app_name + ".conf";
  if (!readable_file(conf_file)) {
    error = "SASL config file " + conf_file + " is missing or unreadable";
    return nullptr;
  }

  std::lock_guard lock(detail::library_mutex());
  std::shared_ptr<detail::server_core> c = live_core().lock();
  if (c) {
    if (c->config_path != config.config_path || c->app_name != config.app_name) {
      error = "SASL server already initialised in this process with " + c->config_path + "/" +
              c->app_name + ".conf; cannot also use " + conf_file +
              " (libsasl2 reads one config per process)";
      return nullptr;
    }
    if (c->keep_sasldb_open != config.keep_sasldb_open) {
      error = std::string("SASL server already initialised in this process with ") +
              (c->keep_sasldb_open ? "relaylab's" : "Cyrus's") +
              " sasldb reader; cannot switch readers while it is in use";
      return nullptr;
    }
  } else {
    if (temporary_init_active) {
      error = "SASL server initialisation in progress";
      return nullptr;
    }
    global_conf_path = config.config_path;
    global_app_name = config.app_name;
    global_log_lines.clear();
    global_auxprop_plugin.clear();
    bool auxprop_unnamed = false;
    if (config.keep_sasldb_open) {
      // A file libsasl2 cannot read either fails sasl_server_init below, with its own reason.
      std::vector<config::diagnostic> ignored;
      const auto conf = config::load_sasl_app_config(conf_file, ignored);
      if (conf) {
        const auto it = conf->values.find("auxprop_plugin");
        if (it != conf->values.end())
          global_auxprop_plugin = detail::with_sasldb_reader(it->second).value_or("");
        else
          auxprop_unnamed = true;
      }
    }
    int rc = sasl_server_init(global_callbacks, global_app_name.c_str());
    if (rc == SASL_OK && auxprop_unnamed) {
      // Without an auxprop_plugin line libsasl2 asks every auxprop plugin it loaded: naming
      // them all, with the reader in sasldb's place, keeps that and the database open.
      global_auxprop_plugin = detail::loaded_auxprop_with_sasldb_reader().value_or("");
    }
    if (rc == SASL_OK && !global_auxprop_plugin.empty()) rc = detail::add_sasldb_reader();
    if (rc != SASL_OK) {
      error = "SASL per-process initialization failed for " + conf_file + ": " + errstring(rc);
      for (const auto& l : global_log_lines) error += "; " + l;
      global_log_lines.clear();
      sasl_server_done();
      return nullptr;
    }
    c = std::make_shared<detail::server_core>();
    c->config_path = config.config_path;
    c->app_name = config.app_name;
    c->keep_sasldb_open = config.keep_sasldb_open;
    c->init_log = std::move(global_log_lines);
    global_log_lines.clear();
    live_core() = c;
  }
  std::shared_ptr<server_library> lib(new server_library(config));
  lib->core_ = std::move(c);
  return lib;
}

// ---------------------------------------------------------------------------------------------
// Sessions.

struct server_session::impl {
  std::shared_ptr<server_library> lib;
  std::string local;
  std::string remote;
  sasl_conn_t* conn = nullptr;
  std::vector<std::string> log;  // filled by session_log during one libsasl2 call
  sasl_callback_t callbacks[2] = {};
  std::string mechanism;
  bool used = false;         // start() ran on conn: Postfix makes a new handle for a new AUTH
  bool in_progress = false;  // a challenge is outstanding
  // libsasl2 2.1.28's LOGIN plugin leaks the password copy (17 bytes + password) when the
  // username is all white space: canon_user fails after the copy. A long-lived relay must not
  // let clients grow its memory, so that one outcome is produced here, with libsasl2's text.
  bool login = false;
  bool login_blank_user = false;
  bool login_expect_password = false;
  bool login_user_empty = false;  // "" leaves SASL_USERNAME unset; "  " sets it to ""
  bool login_short_circuit = false;
  std::optional<security_options> security;  // use_security(): replaces the library's

  ~impl() { dispose(); }

  void dispose() {
    if (conn != nullptr) sasl_dispose(&conn);
    conn = nullptr;
    used = false;
    in_progress = false;
  }

  // Returns a SASL_* code; on failure conn is null.
  int open() {
    dispose();
    login = login_blank_user = login_expect_password = login_user_empty = false;
    login_short_circuit = false;
    callbacks[0] = {SASL_CB_LOG, as_proc(&session_log), &log};
    callbacks[1] = {SASL_CB_LIST_END, nullptr, nullptr};
    const server_config& c = lib->config();
    int rc =
        sasl_server_new(c.service.c_str(), c.server_fqdn.empty() ? nullptr : c.server_fqdn.c_str(),
                        c.user_realm.empty() ? nullptr : c.user_realm.c_str(),
                        local.empty() ? nullptr : local.c_str(),
                        remote.empty() ? nullptr : remote.c_str(), callbacks, 0, &conn);
    if (rc != SASL_OK) {
      // libsasl2 may leave a half-made connection behind (Postfix disposes it too).
      if (conn != nullptr) sasl_dispose(&conn);
      conn = nullptr;
      return rc;
    }
    sasl_security_properties_t props{};
    props.min_ssf = 0;
    props.max_ssf = 0;  // no SASL security layer, as in Postfix
    props.maxbufsize = 0;
    props.security_flags = detail::security_flags(security ? *security : c.security);
    rc = sasl_setprop(conn, SASL_SEC_PROPS, &props);
    if (rc != SASL_OK) dispose();
    return rc;
  }

  step_result finish(int rc, const char* out, unsigned out_len) {
    step_result r;
    if (rc == SASL_OK) {
      r.state = step_result::status::success;
      in_progress = false;
    } else if (rc == SASL_CONTINUE) {
      r.state = step_result::status::challenge;
      if (out != nullptr) r.challenge.assign(out, out_len);
      in_progress = true;
      if (login && !login_expect_password) login_expect_password = r.challenge == "Password:";
    } else {
      r = failure(rc);
      in_progress = false;
    }
    r.log = std::move(log);
    log.clear();
    return r;
  }
};

std::unique_ptr<server_session> server_session::create(std::shared_ptr<server_library> lib,
                                                       std::string_view local_ip_port,
                                                       std::string_view remote_ip_port,
                                                       std::string& error) {
  if (!lib) {
    error = "no SASL server library";
    return nullptr;
  }
  if (has_nul(local_ip_port) || has_nul(remote_ip_port) || !valid_ip_port(local_ip_port) ||
      !valid_ip_port(remote_ip_port)) {
    error = "SASL per-connection server initialization: " + errstring(SASL_BADPARAM);
    return nullptr;
  }
  std::unique_ptr<server_session> s(new server_session());
  s->impl_ = std::make_unique<impl>();
  s->impl_->lib = std::move(lib);
  s->impl_->local = std::string(local_ip_port);
  s->impl_->remote = std::string(remote_ip_port);
  const int rc = s->impl_->open();
  if (rc != SASL_OK) {
    error = "SASL per-connection server initialization: " + errstring(rc);
    for (const auto& l : s->impl_->log) error += "; " + l;
    return nullptr;
  }
  s->impl_->log.clear();
  return s;
}

server_session::~server_session() = default;

bool server_session::use_security(const security_options& options, std::string& error) {
  impl_->security = options;
  const int rc = impl_->open();
  impl_->log.clear();
  if (rc != SASL_OK) {
    error = "SASL per-connection server initialization: " + errstring(rc);
    return false;
  }
  return true;
}

std::vector<std::string> server_session::mechanisms() const {
  std::vector<std::string> out;
  if (impl_->conn == nullptr) return out;
  const char* list = nullptr;
  unsigned len = 0;
  int count = 0;
  const int rc = sasl_listmech(impl_->conn, nullptr, "", " ", "", &list, &len, &count);
  impl_->log.clear();
  if (rc != SASL_OK || list == nullptr) return out;
  std::string_view all(list, len);
  while (!all.empty()) {
    const auto sp = all.find(' ');
    if (sp != 0) out.emplace_back(all.substr(0, sp));
    if (sp == std::string_view::npos) break;
    all.remove_prefix(sp + 1);
  }
  return out;
}

step_result server_session::start(std::string_view mechanism,
                                  std::optional<std::string_view> initial_response) {
  impl& m = *impl_;
  m.mechanism = std::string(mechanism);
  if (m.used || m.conn == nullptr) {
    const int rc = m.open();
    if (rc != SASL_OK) return m.finish(rc, nullptr, 0);
  }
  m.used = true;
  m.in_progress = false;
  m.log.clear();
  // libsasl2 takes C strings for mechanism names: an embedded NUL cannot name a mechanism.
  if (mechanism.empty() || has_nul(mechanism)) return m.finish(SASL_NOMECH, nullptr, 0);
  if (initial_response && (initial_response->size() > m.lib->config().response_bytes_max ||
                           initial_response->size() > UINT_MAX)) {
    return m.finish(SASL_BUFOVER, nullptr, 0);
  }
  const char* out = nullptr;
  unsigned out_len = 0;
  // Non-null pointer for an empty initial response: libsasl2 tells "none" from "empty" by it.
  const char* in =
      initial_response ? (initial_response->empty() ? "" : initial_response->data()) : nullptr;
  const unsigned in_len = initial_response ? static_cast<unsigned>(initial_response->size()) : 0;
  m.login = equals_ignore_case(mechanism, "LOGIN");
  if (m.login && initial_response) {
    m.login_blank_user = all_space(*initial_response);
    m.login_user_empty = initial_response->empty();
  }
  const int rc = sasl_server_start(m.conn, m.mechanism.c_str(), in, in_len, &out, &out_len);
  return m.finish(rc, out, out_len);
}

step_result server_session::step(std::string_view response) {
  impl& m = *impl_;
  m.log.clear();
  if (!m.in_progress || m.conn == nullptr) return m.finish(SASL_NOTDONE, nullptr, 0);
  if (response.size() > m.lib->config().response_bytes_max || response.size() > UINT_MAX) {
    return m.finish(SASL_BUFOVER, nullptr, 0);
  }
  if (m.login && m.login_expect_password && m.login_blank_user) {
    session_log(&m.log, SASL_LOG_FAIL, "All-whitespace username.");
    m.login_short_circuit = true;
    return m.finish(SASL_FAIL, nullptr, 0);
  }
  if (m.login && !m.login_expect_password) {
    m.login_blank_user = all_space(response);
    m.login_user_empty = response.empty();
  }
  const char* out = nullptr;
  unsigned out_len = 0;
  const int rc = sasl_server_step(m.conn, response.empty() ? "" : response.data(),
                                  static_cast<unsigned>(response.size()), &out, &out_len);
  return m.finish(rc, out, out_len);
}

std::string server_session::username() const { return sasl_username().value_or(""); }

std::optional<std::string> server_session::sasl_username() const {
  const impl& m = *impl_;
  if (m.login_short_circuit) {
    return m.login_user_empty ? std::nullopt : std::optional<std::string>("");
  }
  if (m.conn == nullptr || !m.used) return std::nullopt;
  const void* value = nullptr;
  if (sasl_getprop(m.conn, SASL_USERNAME, &value) != SASL_OK || value == nullptr) {
    return std::nullopt;
  }
  return std::string(static_cast<const char*>(value));
}

const std::string& server_session::mechanism() const noexcept { return impl_->mechanism; }

step_result server_session::check_password(std::string_view user, std::string_view password) {
  impl& m = *impl_;
  // A fresh handle per check, as for start(): libsasl2 keeps per-handle state from every
  // sasl_checkpass, and a reused handle gets slower with each call (measured in bench/).
  if (m.used || m.conn == nullptr) {
    const int rc = m.open();
    if (rc != SASL_OK) return m.finish(rc, nullptr, 0);
  }
  m.used = true;
  m.in_progress = false;
  m.log.clear();
  if (has_nul(user) || has_nul(password) || user.size() > UINT_MAX || password.size() > UINT_MAX) {
    return m.finish(SASL_BADPARAM, nullptr, 0);
  }
  // libsasl2 wants C strings here, whatever the lengths say.
  const std::string u(user), p(password);
  const int rc = sasl_checkpass(m.conn, u.c_str(), static_cast<unsigned>(u.size()), p.c_str(),
                                static_cast<unsigned>(p.size()));
  return m.finish(rc, nullptr, 0);
}

void server_session::reset() {
  // A handle no exchange has used is already fresh: no second sasl_server_new per connection.
  if (impl_->conn != nullptr && !impl_->used && !impl_->in_progress) {
    impl_->log.clear();
    return;
  }
  impl_->dispose();
  impl_->log.clear();
  impl_->open();  // a failure here shows up as a failed start() (it retries open)
  impl_->log.clear();
}

// ---------------------------------------------------------------------------------------------
// Options and Postfix text.

std::optional<security_options> security_options::parse(std::string_view text, std::string& error) {
  security_options o;
  o.noanonymous = false;
  std::string_view rest = text;
  constexpr std::string_view separators = ", \t\r\n";
  while (true) {
    const auto begin = rest.find_first_not_of(separators);
    if (begin == std::string_view::npos) break;
    rest.remove_prefix(begin);
    const auto end = std::min(rest.find_first_of(separators), rest.size());
    const std::string_view word = rest.substr(0, end);
    rest.remove_prefix(end);
    const auto* hit = std::find_if(std::begin(option_words), std::end(option_words),
                                   [&](const option_word& w) { return w.name == word; });
    if (hit == std::end(option_words)) {
      error = "unknown SASL security options value \"" + std::string(word) + "\" in \"" +
              std::string(text) + "\"";
      return std::nullopt;
    }
    o.*(hit->field) = true;
  }
  return o;
}

std::string postfix_failure_reply(const step_result& r) {
  return (r.temporary ? "454 4.7.0 Temporary authentication failure: "
                      : "535 5.7.8 Error: authentication failed: ") +
         r.reason;
}

std::string postfix_failure_detail(const step_result& r) {
  return r.reason.empty() ? "(reason unavailable)" : r.reason;
}

std::string postfix_failure_log(std::string_view client_namaddr, std::string_view mechanism,
                                const step_result& r,
                                std::optional<std::string_view> sasl_username) {
  std::string line(client_namaddr);
  line += ": SASL ";
  line += mechanism.substr(0, 100);
  line += " authentication failed: ";
  line += postfix_failure_detail(r);
  line += ", sasl_username=";
  line += sasl_username ? sasl_username->substr(0, 100) : std::string_view("(unavailable)");
  detail::printable(line);
  return line;
}

namespace {
constexpr std::size_t base64_text_max = 65536;
}

step_result decode_base64(std::string_view text, std::string& out) {
  out.clear();
  if (text.size() > base64_text_max) return failure(SASL_BUFOVER);
  std::string buf(text.size() / 4 * 3 + 4, '\0');
  unsigned out_len = 0;
  const int rc = sasl_decode64(text.data(), static_cast<unsigned>(text.size()), buf.data(),
                               static_cast<unsigned>(buf.size()), &out_len);
  if (rc != SASL_OK) return failure(rc);
  buf.resize(out_len);
  out = std::move(buf);
  step_result r;
  r.state = step_result::status::success;
  return r;
}

std::string encode_base64(std::string_view bytes) {
  if (bytes.size() > UINT_MAX / 2) return {};
  std::string buf((bytes.size() + 2) / 3 * 4 + 1, '\0');
  unsigned out_len = 0;
  if (sasl_encode64(bytes.data(), static_cast<unsigned>(bytes.size()), buf.data(),
                    static_cast<unsigned>(buf.size()), &out_len) != SASL_OK) {
    return {};
  }
  buf.resize(out_len);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// sasldb writer: what `saslpasswd2 -f FILE -c -u REALM USER` does, through libsasl2.

namespace {

struct store_options {
  std::string sasldb_path;
};

int store_getopt(void* context, const char* /*plugin*/, const char* option, const char** result,
                 unsigned* len) {
  const auto* o = static_cast<const store_options*>(context);
  if (option == nullptr || result == nullptr) return SASL_BADPARAM;
  if (std::strcmp(option, "sasldb_path") == 0) {
    *result = o->sasldb_path.c_str();
  } else if (std::strcmp(option, "auxprop_plugin") == 0) {
    *result = "sasldb";
  } else {
    return SASL_FAIL;  // fall through to the global config
  }
  if (len != nullptr) *len = static_cast<unsigned>(std::strlen(*result));
  return SASL_OK;
}

}  // namespace

bool set_sasldb_password(const std::string& sasldb_path, std::string_view user,
                         std::string_view realm, std::string_view password, std::string& error) {
  if (sasldb_path.empty() || has_nul(sasldb_path)) {
    error = "bad sasldb path";
    return false;
  }
  if (user.empty() || realm.empty() || password.empty() || has_nul(user) || has_nul(realm) ||
      password.size() > UINT_MAX) {
    error = "sasldb " + sasldb_path + ": user, realm and password must be non-empty, without NUL";
    return false;
  }
  struct stat before {};
  const bool existed = ::stat(sasldb_path.c_str(), &before) == 0;
  std::lock_guard lock(detail::library_mutex());
  bool temporary = false;
  if (live_core().expired()) {
    if (temporary_init_active) {
      error = "sasldb " + sasldb_path + ": SASL initialisation in progress";
      return false;
    }
    // No config file: only the per-connection options below matter.
    global_conf_path = "/nonexistent/relaylab-sasl";
    global_app_name = "relaylab-saslpasswd";
    global_log_lines.clear();
    global_auxprop_plugin.clear();
    const int rc = sasl_server_init(global_callbacks, global_app_name.c_str());
    if (rc != SASL_OK) {
      error = "sasldb " + sasldb_path + ": SASL initialization failed: " + errstring(rc);
      sasl_server_done();
      return false;
    }
    temporary = true;
    temporary_init_active = true;
  }
  store_options opts{sasldb_path};
  std::vector<std::string> log;
  sasl_callback_t callbacks[] = {
      {SASL_CB_GETOPT, as_proc(&store_getopt), &opts},
      {SASL_CB_LOG, as_proc(&session_log), &log},
      {SASL_CB_LIST_END, nullptr, nullptr},
  };
  const std::string user_s(user);
  const std::string realm_s(realm);
  sasl_conn_t* conn = nullptr;
  int rc = sasl_server_new("smtp", realm_s.c_str(), realm_s.c_str(), nullptr, nullptr, callbacks, 0,
                           &conn);
  if (rc == SASL_OK) {
    rc = sasl_setpass(conn, user_s.c_str(), password.data(), static_cast<unsigned>(password.size()),
                      nullptr, 0, SASL_SET_CREATE);
  }
  if (conn != nullptr) sasl_dispose(&conn);
  if (temporary) {
    sasl_server_done();
    temporary_init_active = false;
    global_log_lines.clear();
  }
  // It holds plaintext passwords: a new file gets saslpasswd2's mode, not the umask's.
  if (rc == SASL_OK && !existed && ::chmod(sasldb_path.c_str(), 0640) != 0) {
    error = "sasldb " + sasldb_path + ": cannot chmod 0640";
    return false;
  }
  if (rc != SASL_OK) {
    error = "sasldb " + sasldb_path + ": cannot set password for " + user_s + "@" + realm_s + ": " +
            errstring(rc);
    for (const auto& l : log) error += "; " + l;
    return false;
  }
  return true;
}

}  // namespace relaylab::sasl
