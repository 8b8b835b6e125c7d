// relaylab's sasldb reader: a libsasl2 auxprop plugin over the same sasldb file as Cyrus's own
// "sasldb" plugin, that keeps the Berkeley DB handle open between lookups (and the answers it
// gave, for as long as the handle).
//
// Why: libsasl2 2.1.28 as Debian builds it opens, reads and closes the database for every
// property of every lookup (PLAIN asks for two properties, twice: ~35 system calls and about a
// sixth of the relay's CPU per AUTH on the submission path). Cyrus has a KEEP_DB_OPEN build
// option for the same reason; Debian does not enable it, and a kept handle would also miss users
// added with saslpasswd2. Here the handle is reopened whenever the file changes (device, inode,
// size, mtime or ctime), checked with one stat() per lookup, so saslpasswd2 edits take effect at
// the next AUTH exactly as with Cyrus's plugin.
//
// Semantics follow Cyrus's plugin (plugins/sasldb.c and sasldb/db_berkeley.c, read, not
// copied): the user is split at the first '@' (else the realm is the session's user realm or
// the server name), keys are "user\0realm\0property", a missing file means "no such user",
// an unopenable one logs "unable to open Berkeley db PATH: REASON" and fails temporarily, and
// the result codes per property combine the same way. One difference: a value of 8 KiB or more
// is refused with SASL_BUFOVER (Cyrus overruns its 8 KiB buffer for two of those sizes), and
// the "not found in sasldb" error detail is set only when the lookup fails (Cyrus sets it for
// every missing property; it is SASL_NOLOG, so only sasl_errdetail could tell).
//
// The only code in relaylab that includes <db.h>: the sasldb format is Cyrus SASL's, so its
// reader lives in the SASL adapter.
#include <db.h>
#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <strings.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "relay/sasl/sasl_internal.hpp"

namespace relaylab::sasl::detail {

namespace {

// Cyrus's default when smtpd.conf names no sasldb_path (SASL_DB_PATH in Debian's build).
constexpr const char* default_sasldb_path = "/etc/sasldb2";
// The largest value handed back, as Cyrus's plugin's buffer.
constexpr std::size_t value_bytes_max = 8192;

struct file_identity {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
  timespec ctime{};
  bool operator==(const file_identity& o) const {
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
           ctime.tv_nsec == o.ctime.tv_nsec;
  }
};

file_identity identity_of(const struct stat& st) {
  return {st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
}

// The open database. libsasl2 may call lookups from any thread that owns a session, so one
// mutex guards the handle.
class open_db {
 public:
  ~open_db() { close(); }

  // Holds the database for the lookups of one auxprop call: locked, and checked against the
  // file (one stat) at its first get, however many properties are fetched.
  class use {
   public:
    use(open_db& db, const sasl_utils_t* utils, sasl_conn_t* conn, const std::string& path)
        : db_(db), utils_(utils), conn_(conn), path_(path), lock_(db.mutex_) {}
    // Returns SASL_OK with `value` set, SASL_NOUSER, SASL_BUFOVER or SASL_FAIL (logged).
    int get(std::string_view key, char* value, std::size_t& value_len) {
      // A read error closes the handle: the next get opens the file again.
      if (!checked_ || (opened_ == SASL_OK && db_.db_ == nullptr)) {
        opened_ = db_.refresh(utils_, conn_, path_);
        checked_ = true;
      }
      if (opened_ != SASL_OK) return opened_;
      return db_.get(utils_, conn_, key, value, value_len);
    }

   private:
    open_db& db_;
    const sasl_utils_t* utils_;
    sasl_conn_t* conn_;
    const std::string& path_;
    std::lock_guard<std::mutex> lock_;
    bool checked_ = false;
    int opened_ = SASL_OK;
  };

 private:
  // Answers already read through this handle (values, and "not there"): they live exactly as
  // long as the handle, which is reopened when the file's identity (device, inode, size,
  // mtime, ctime) changes, so an edit through saslpasswd2 is seen at the next lookup.
  static constexpr std::size_t cache_entries_max = 4096;

  int get(const sasl_utils_t* utils, sasl_conn_t* conn, std::string_view key, char* value,
          std::size_t& value_len) {
    if (auto it = cache_.find(key); it != cache_.end()) {
      if (!it->second) return SASL_NOUSER;
      value_len = it->second->size();
      std::memcpy(value, it->second->data(), value_len);
      value[value_len] = '\0';
      return SASL_OK;
    }
    const int rc = read(utils, conn, key, value, value_len);
    if (rc == SASL_OK || rc == SASL_NOUSER) {
      if (cache_.size() >= cache_entries_max) cache_.clear();
      std::optional<std::string> answer;
      if (rc == SASL_OK) answer.emplace(value, value_len);
      cache_.emplace(std::string(key), std::move(answer));
    }
    return rc;
  }

  int read(const sasl_utils_t* utils, sasl_conn_t* conn, std::string_view key, char* value,
           std::size_t& value_len) {
    DBT k{};
    k.data = const_cast<char*>(key.data());
    k.size = static_cast<u_int32_t>(key.size());
    k.flags = DB_DBT_USERMEM;
    DBT d{};
    d.data = value;
    d.ulen = static_cast<u_int32_t>(value_bytes_max - 1);
    d.flags = DB_DBT_USERMEM;
    const int rc = db_->get(db_, nullptr, &k, &d, 0);
    if (rc == DB_NOTFOUND) return SASL_NOUSER;
    if (rc == DB_BUFFER_SMALL) return SASL_BUFOVER;
    if (rc != 0) {
      utils->seterror(conn, 0, "error fetching from sasldb: %s", db_strerror(rc));
      // A damaged handle is not reused.
      close();
      return SASL_FAIL;
    }
    value_len = d.size;
    value[d.size] = '\0';
    return SASL_OK;
  }

  int refresh(const sasl_utils_t* utils, sasl_conn_t* conn, const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      const int err = errno;
      close();
      // Cyrus: a file that is not there while reading means no user has a secret.
      if (err == ENOENT) return SASL_NOUSER;
      return open_failed(utils, conn, path, err);
    }
    const file_identity id = identity_of(st);
    if (db_ != nullptr && path == path_ && id == identity_) return SASL_OK;
    close();
    DB* db = nullptr;
    int rc = db_create(&db, nullptr, 0);
    if (rc == 0) {
      rc = db->open(db, nullptr, path.c_str(), nullptr, DB_HASH, DB_RDONLY, 0660);
      if (rc != 0) {
        db->close(db, 0);
        db = nullptr;
      }
    }
    if (rc != 0) {
      if (rc == ENOENT) return SASL_NOUSER;
      return open_failed(utils, conn, path, rc);
    }
    db_ = db;
    path_ = path;
    identity_ = id;
    return SASL_OK;
  }

  static int open_failed(const sasl_utils_t* utils, sasl_conn_t* conn, const std::string& path,
                         int err) {
    utils->log(conn, SASL_LOG_ERR, "unable to open Berkeley db %s: %s", path.c_str(),
               db_strerror(err));
    utils->seterror(conn, SASL_NOLOG, "Unable to open DB");
    return SASL_FAIL;
  }

  void close() {
    if (db_ != nullptr) db_->close(db_, 0);
    db_ = nullptr;
    path_.clear();
    cache_.clear();
  }

  std::mutex mutex_;
  std::map<std::string, std::optional<std::string>, std::less<>> cache_;
  DB* db_ = nullptr;
  std::string path_;
  file_identity identity_;
};

open_db& database() {
  static open_db d;
  return d;
}

std::string sasldb_path(const sasl_utils_t* utils, sasl_conn_t* conn) {
  sasl_getopt_t* getopt = nullptr;
  void* context = nullptr;
  if (utils->getcallback(conn, SASL_CB_GETOPT, reinterpret_cast<sasl_callback_ft*>(&getopt),
                         &context) == SASL_OK &&
      getopt != nullptr) {
    const char* p = nullptr;
    if (getopt(context, nullptr, "sasldb_path", &p, nullptr) == SASL_OK && p != nullptr &&
        *p != '\0') {
      return p;
    }
  }
  return default_sasldb_path;
}

// Cyrus sets "not found in sasldb" (SASL_NOLOG) for every missing property, formatting it each
// time, although after a successful lookup nobody reads it. It is kept here and set once, only
// when the lookup fails: the error detail a failure leaves is the same as Cyrus's.
struct not_found {
  bool pending = false;
  std::string user, realm, property;
};

int fetch(open_db::use& db, std::string_view user, std::string_view realm,
          std::string_view property, char* value, std::size_t& value_len, not_found& missing) {
  std::string key;
  key.reserve(user.size() + realm.size() + property.size() + 2);
  key.append(user).push_back('\0');
  key.append(realm).push_back('\0');
  key.append(property);
  const int rc = db.get(key, value, value_len);
  if (rc == SASL_NOUSER) {
    missing.pending = true;
    missing.user = user;
    missing.realm = realm;
    missing.property = property;
  } else if (rc == SASL_FAIL) {
    missing.pending = false;  // get() set a later error detail
  }
  return rc;
}

int lookup(void* /*glob_context*/, sasl_server_params_t* sparams, unsigned flags,
           const char* user_in, unsigned ulen) {
  if (sparams == nullptr || user_in == nullptr) return SASL_BADPARAM;
  const sasl_utils_t* utils = sparams->utils;
  sasl_conn_t* conn = utils->conn;
  // Cyrus copies the name into a C string: anything after a NUL is not part of it.
  std::string input(user_in, ulen);
  input.resize(std::strlen(input.c_str()));
  // Cyrus's parseuser: split at the first '@'; without one, the session's realm.
  std::string user, realm;
  const auto at = input.find('@');
  if (at == std::string::npos) {
    const char* r = sparams->user_realm != nullptr && sparams->user_realm[0] != '\0'
                        ? sparams->user_realm
                        : sparams->serverFQDN;
    if (r == nullptr) return SASL_BADPARAM;
    realm = r;
    user = input;
  } else {
    user = input.substr(0, at);
    realm = input.substr(at + 1);
  }
  const propval* to_fetch = utils->prop_get(sparams->propctx);
  if (to_fetch == nullptr) return SASL_NOMEM;
  const std::string path = sasldb_path(utils, conn);
  open_db::use db(database(), utils, conn, path);
  not_found missing;
  const bool authzid = (flags & SASL_AUXPROP_AUTHZID) != 0;
  const bool against_hash = (flags & SASL_AUXPROP_VERIFY_AGAINST_HASH) != 0;
  char value[value_bytes_max];
  std::size_t value_len = 0;
  int ret = SASL_CONTINUE;  // nothing looked up yet
  bool saw_password = false;
  for (const propval* cur = to_fetch; cur->name != nullptr; ++cur) {
    const char* name = cur->name;
    // Authid properties carry a '*' prefix; authzid lookups take only the others.
    if (name[0] == '*' && authzid) continue;
    if (!authzid) {
      if (name[0] != '*') continue;
      ++name;
    }
    const bool password = std::strcmp(name, SASL_AUX_PASSWORD_PROP) == 0;
    if (cur->values != nullptr && (flags & SASL_AUXPROP_OVERRIDE) == 0 &&
        (!against_hash || !password)) {
      continue;
    }
    if (cur->values != nullptr) utils->prop_erase(sparams->propctx, cur->name);
    if (password) saw_password = true;
    const int rc = fetch(db, user, realm, name, value, value_len, missing);
    // The first answer sets the result; after that only a real error overrides it.
    if (ret == SASL_CONTINUE || ret == SASL_NOUSER) {
      ret = rc;
    } else if (ret == SASL_OK && rc != SASL_NOUSER) {
      ret = rc;
    }
    if (rc != SASL_OK) {
      if (rc != SASL_NOUSER) break;
      continue;
    }
    utils->prop_set(sparams->propctx, cur->name, value, static_cast<unsigned>(value_len));
  }
  if (ret == SASL_CONTINUE) ret = SASL_OK;
  if (authzid) {
    // libsasl2 cannot handle "no user" for the authorization identity (as Cyrus notes).
    if (ret == SASL_NOUSER) ret = SASL_OK;
  } else if (ret == SASL_NOUSER && !saw_password) {
    // No requested property exists: the user exists if it has a password.
    ret = fetch(db, user, realm, SASL_AUX_PASSWORD_PROP, value, value_len, missing);
  }
  if (ret != SASL_OK && missing.pending) {
    utils->seterror(conn, SASL_NOLOG, "user: %s@%s property: %s not found in sasldb",
                    missing.user.c_str(), missing.realm.c_str(), missing.property.c_str());
  }
  return ret;
}

char plugin_name[] = "relaylab_sasldb";

sasl_auxprop_plug_t plugin = {
    0,            // features
    0,            // spare
    nullptr,      // glob_context
    nullptr,      // auxprop_free: the handle lives as long as the process
    &lookup,      // auxprop_lookup
    plugin_name,  // name
    nullptr,      // auxprop_store: writes go through Cyrus's plugin (set_sasldb_password)
};

int plugin_init(const sasl_utils_t* /*utils*/, int max_version, int* out_version,
                sasl_auxprop_plug_t** plug, const char* /*plugname*/) {
  if (out_version == nullptr || plug == nullptr) return SASL_BADPARAM;
  if (max_version < SASL_AUXPROP_PLUG_VERSION) return SASL_BADVERS;
  *out_version = SASL_AUXPROP_PLUG_VERSION;
  *plug = &plugin;
  return SASL_OK;
}

}  // namespace

std::string_view sasldb_reader_name() { return plugin_name; }

int add_sasldb_reader() { return sasl_auxprop_add_plugin(plugin_name, &plugin_init); }

std::optional<std::string> loaded_auxprop_with_sasldb_reader() {
  std::string names;
  auto collect = [](sasl_auxprop_plug_t* m, sasl_info_callback_stage_t stage, void* rock) {
    if (stage != SASL_INFO_LIST_MECH || m == nullptr || m->name == nullptr) return;
    auto& out = *static_cast<std::string*>(rock);
    if (!out.empty()) out.push_back(' ');
    out += m->name;
  };
  if (auxprop_plugin_info(nullptr, collect, &names) != SASL_OK) return std::nullopt;
  return with_sasldb_reader(names);
}

std::optional<std::string> with_sasldb_reader(std::string_view auxprop_plugins) {
  std::string out;
  bool replaced = false;
  std::size_t i = 0;
  while (i < auxprop_plugins.size()) {
    while (i < auxprop_plugins.size() &&
           std::isspace(static_cast<unsigned char>(auxprop_plugins[i]))) {
      ++i;
    }
    std::size_t j = i;
    while (j < auxprop_plugins.size() &&
           !std::isspace(static_cast<unsigned char>(auxprop_plugins[j]))) {
      ++j;
    }
    if (j == i) break;
    std::string_view word = auxprop_plugins.substr(i, j - i);
    if (!out.empty()) out.push_back(' ');
    if (word.size() == 6 && strncasecmp(word.data(), "sasldb", 6) == 0) {
      out.append(plugin_name);
      replaced = true;
    } else {
      out.append(word);
    }
    i = j;
  }
  if (!replaced) return std::nullopt;
  return out;
}

}  // namespace relaylab::sasl::detail
