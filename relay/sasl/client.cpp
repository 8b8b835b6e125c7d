// Client side of the libsasl2 adapter (Postfix's xsasl_cyrus_client.c is the reference for what
// is handed to libsasl2: user and authname callbacks, password secret, no security layer).
#include <sasl/sasl.h>

#include <climits>
#include <cstring>
#include <mutex>

#include "relay/sasl/sasl.hpp"
#include "relay/sasl/sasl_internal.hpp"

namespace relaylab::sasl {

using detail::errstring;
using detail::has_nul;

namespace {

using sasl_cb_proc = int (*)();

template <typename F>
sasl_cb_proc as_proc(F* f) {
  // libsasl2's callback table stores every callback as int(*)(void); it casts back by id.
  return reinterpret_cast<sasl_cb_proc>(reinterpret_cast<void (*)()>(f));
}

// Kept once made: sasl_client_init scans the plugin directory and loads every plugin (about
// 100 system calls and 8 dlopen), which a client that authenticates per connection (the fake
// mailx sends one message each) paid again whenever its last handle went.
std::shared_ptr<client_library>& live_client() {
  static std::shared_ptr<client_library> kept;
  return kept;
}

client_step_result client_failure(int code) {
  client_step_result r;
  r.state = client_step_result::status::failure;
  r.sasl_code = code;
  r.reason = errstring(code);
  return r;
}

}  // namespace

std::shared_ptr<client_library> client_library::init(std::string& error) {
  std::lock_guard lock(detail::library_mutex());
  if (auto lib = live_client()) return lib;
  const int rc = sasl_client_init(nullptr);
  if (rc != SASL_OK) {
    error = "SASL client per-process initialization failed: " + errstring(rc);
    sasl_client_done();
    return nullptr;
  }
  std::shared_ptr<client_library> lib(new client_library());
  live_client() = lib;
  return lib;
}

client_library::~client_library() {
  std::lock_guard lock(detail::library_mutex());
  sasl_client_done();
}

struct client_session::impl {
  std::shared_ptr<client_library> lib;
  client_config config;
  sasl_conn_t* conn = nullptr;
  sasl_callback_t callbacks[4] = {};
  std::vector<unsigned char> secret;  // a sasl_secret_t followed by the password bytes
  std::string mechanism;
  bool in_progress = false;

  ~impl() { dispose(); }

  void dispose() {
    if (conn != nullptr) sasl_dispose(&conn);
    conn = nullptr;
    in_progress = false;
  }

  static int get_simple(void* context, int id, const char** result, unsigned* len) {
    const auto* self = static_cast<const impl*>(context);
    if (result == nullptr) return SASL_BADPARAM;
    const std::string* value = nullptr;
    switch (id) {
      case SASL_CB_USER:
        value = &self->config.authzid;
        break;
      case SASL_CB_AUTHNAME:
        value = &self->config.username;
        break;
      default:
        return SASL_BADPARAM;
    }
    *result = value->c_str();
    if (len != nullptr) *len = static_cast<unsigned>(value->size());
    return SASL_OK;
  }

  static int get_secret(sasl_conn_t* /*conn*/, void* context, int id, sasl_secret_t** psecret) {
    auto* self = static_cast<impl*>(context);
    if (psecret == nullptr || id != SASL_CB_PASS) return SASL_BADPARAM;
    *psecret = reinterpret_cast<sasl_secret_t*>(self->secret.data());
    return SASL_OK;
  }

  int open() {
    dispose();
    callbacks[0] = {SASL_CB_USER, as_proc(&get_simple), this};
    callbacks[1] = {SASL_CB_AUTHNAME, as_proc(&get_simple), this};
    callbacks[2] = {SASL_CB_PASS, as_proc(&get_secret), this};
    callbacks[3] = {SASL_CB_LIST_END, nullptr, nullptr};
    int rc = sasl_client_new(config.service.c_str(), config.server_fqdn.c_str(), nullptr, nullptr,
                             callbacks, 0, &conn);
    if (rc != SASL_OK) {
      // libsasl2 may leave a half-made connection behind (Postfix disposes it too).
      if (conn != nullptr) sasl_dispose(&conn);
      conn = nullptr;
      return rc;
    }
    sasl_security_properties_t props{};
    props.min_ssf = 0;
    props.max_ssf = 0;
    props.maxbufsize = 0;
    props.security_flags = detail::security_flags(config.security);
    rc = sasl_setprop(conn, SASL_SEC_PROPS, &props);
    if (rc != SASL_OK) dispose();
    return rc;
  }
};

std::unique_ptr<client_session> client_session::create(std::shared_ptr<client_library> lib,
                                                       client_config config, std::string& error) {
  if (!lib) {
    error = "no SASL client library";
    return nullptr;
  }
  if (config.server_fqdn.empty() || config.service.empty()) {
    error = "SASL client needs a service and the server's host name";
    return nullptr;
  }
  if (has_nul(config.server_fqdn) || has_nul(config.service) || has_nul(config.username) ||
      has_nul(config.authzid) || config.password.size() > UINT_MAX / 2) {
    error = "SASL client credentials must not contain NUL";
    return nullptr;
  }
  std::unique_ptr<client_session> s(new client_session());
  s->impl_ = std::make_unique<impl>();
  impl& m = *s->impl_;
  m.lib = std::move(lib);
  m.config = std::move(config);
  m.secret.assign(sizeof(sasl_secret_t) + m.config.password.size() + 1, 0);
  auto* secret = reinterpret_cast<sasl_secret_t*>(m.secret.data());
  secret->len = static_cast<unsigned long>(m.config.password.size());
  std::memcpy(secret->data, m.config.password.data(), m.config.password.size());
  const int rc = m.open();
  if (rc != SASL_OK) {
    error = "SASL per-connection client initialization: " + errstring(rc);
    return nullptr;
  }
  return s;
}

client_session::~client_session() = default;

client_step_result client_session::start(std::string_view server_mechanisms) {
  impl& m = *impl_;
  m.mechanism.clear();
  const int open_rc = m.open();
  if (open_rc != SASL_OK) return client_failure(open_rc);
  if (has_nul(server_mechanisms)) return client_failure(SASL_NOMECH);
  const std::string list(server_mechanisms);
  sasl_interact_t* prompts = nullptr;
  const char* out = nullptr;
  unsigned out_len = 0;
  const char* chosen = nullptr;
  const int rc = sasl_client_start(m.conn, list.c_str(), &prompts, &out, &out_len, &chosen);
  if (rc != SASL_OK && rc != SASL_CONTINUE) return client_failure(rc);
  client_step_result r;
  r.state = client_step_result::status::response;
  if (chosen != nullptr) m.mechanism = chosen;
  r.mechanism = m.mechanism;
  if (out != nullptr) r.response = std::string(out, out_len);
  m.in_progress = true;
  return r;
}

client_step_result client_session::step(std::string_view challenge) {
  impl& m = *impl_;
  if (!m.in_progress || m.conn == nullptr) return client_failure(SASL_NOTDONE);
  if (challenge.size() > UINT_MAX) return client_failure(SASL_BUFOVER);
  sasl_interact_t* prompts = nullptr;
  const char* out = nullptr;
  unsigned out_len = 0;
  const int rc =
      sasl_client_step(m.conn, challenge.empty() ? "" : challenge.data(),
                       static_cast<unsigned>(challenge.size()), &prompts, &out, &out_len);
  if (rc != SASL_OK && rc != SASL_CONTINUE) {
    m.in_progress = false;
    return client_failure(rc);
  }
  client_step_result r;
  r.state = client_step_result::status::response;
  r.mechanism = m.mechanism;
  r.response = out != nullptr ? std::string(out, out_len) : std::string();
  return r;
}

const std::string& client_session::mechanism() const noexcept { return impl_->mechanism; }

}  // namespace relaylab::sasl
