#include "relay/tls/context.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string_view>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace relaylab::tls {
namespace {

struct bio_free {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct pkey_free {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

std::string reason() {
  auto lines = take_openssl_errors();
  if (lines.empty()) return "unknown OpenSSL error";
  std::string r;
  for (const auto& l : lines) {
    if (!r.empty()) r += "; ";
    r += l;
  }
  return r;
}

constexpr int proto_versions[protocol_set::count] = {
    0, SSL3_VERSION, TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
constexpr unsigned long proto_no_options[protocol_set::count] = {
    0, SSL_OP_NO_SSLv3, SSL_OP_NO_TLSv1, SSL_OP_NO_TLSv1_1, SSL_OP_NO_TLSv1_2, SSL_OP_NO_TLSv1_3};

// Loads every key and certificate of one PEM file in order: a key, then the certificates for
// it (leaf first). Used for smtpd_tls_chain_files, where one file may hold several pairs.
// The blocks are taken one at a time in file order (OpenSSL's X509_INFO reader would attach
// a key to the certificate before it, which is the wrong pair here).
bool load_chain_file(SSL_CTX* ctx, const std::string& file, std::string& error) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = "cannot open " + file + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  std::unique_ptr<EVP_PKEY, pkey_free> key;
  X509* leaf = nullptr;
  STACK_OF(X509)* chain = sk_X509_new_null();
  int pairs = 0;
  auto drop_certs = [&] {
    X509_free(leaf);
    leaf = nullptr;
    while (sk_X509_num(chain) > 0) X509_free(sk_X509_pop(chain));
  };
  auto flush = [&]() -> bool {
    if (!key && !leaf) return true;
    if (!key || !leaf) {
      error = file + ": a private key must be followed by its certificate";
      return false;
    }
    if (SSL_CTX_use_cert_and_key(ctx, leaf, key.get(), chain, 1) != 1) {
      error = file + ": certificate and key do not match or cannot be used: " + reason();
      return false;
    }
    ++pairs;
    key.reset();
    drop_certs();
    return true;
  };
  bool ok = true;
  std::size_t pos = 0;
  constexpr std::string_view begin = "-----BEGIN ";
  while (ok && (pos = all.find(begin, pos)) != std::string::npos) {
    const std::size_t label_end = all.find("-----", pos + begin.size());
    if (label_end == std::string::npos) break;
    const std::string label = all.substr(pos + begin.size(), label_end - pos - begin.size());
    const std::string end_marker = "-----END " + label + "-----";
    const std::size_t stop = all.find(end_marker, label_end);
    if (stop == std::string::npos) {
      error = file + ": unterminated PEM block \"" + label + "\"";
      ok = false;
      break;
    }
    const std::string block = all.substr(pos, stop + end_marker.size() - pos);
    pos = stop + end_marker.size();
    std::unique_ptr<BIO, bio_free> bio(
        BIO_new_mem_buf(block.data(), static_cast<int>(block.size())));
    if (label.find("PRIVATE KEY") != std::string::npos) {
      ok = flush();
      if (!ok) break;
      key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
      if (!key) {
        error = file + ": cannot decode private key: " + reason();
        ok = false;
      }
    } else if (label == "CERTIFICATE" || label == "TRUSTED CERTIFICATE") {
      X509* x = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
      if (!x) {
        error = file + ": cannot decode certificate: " + reason();
        ok = false;
      } else if (!key) {
        X509_free(x);
        error = file + ": a certificate comes before its private key (expected key first)";
        ok = false;
      } else if (!leaf) {
        leaf = x;
      } else {
        sk_X509_push(chain, x);
      }
    }
  }
  if (ok) ok = flush();
  drop_certs();
  sk_X509_free(chain);
  if (ok && pairs == 0) {
    error = file + ": no private key and certificate found";
    ok = false;
  }
  return ok;
}

bool load_pair_pem(SSL_CTX* ctx, const key_pair_pem& kp, std::string& error) {
  std::unique_ptr<BIO, bio_free> chain(
      BIO_new_mem_buf(kp.chain_pem.data(), static_cast<int>(kp.chain_pem.size())));
  X509* leaf = chain ? PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    if (leaf) X509_free(leaf);
    error = "cannot load the in-memory certificate: " + reason();
    return false;
  }
  X509_free(leaf);
  SSL_CTX_clear_chain_certs(ctx);
  while (X509* x = PEM_read_bio_X509(chain.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
      X509_free(x);
      error = "cannot add an in-memory chain certificate: " + reason();
      return false;
    }
  }
  ERR_clear_error();  // the end of the PEM text
  std::unique_ptr<BIO, bio_free> keyb(
      BIO_new_mem_buf(kp.key_pem.data(), static_cast<int>(kp.key_pem.size())));
  EVP_PKEY* key = keyb ? PEM_read_bio_PrivateKey(keyb.get(), nullptr, nullptr, nullptr) : nullptr;
  const bool ok = key && SSL_CTX_use_PrivateKey(ctx, key) == 1;
  if (key) EVP_PKEY_free(key);
  if (!ok) {
    error = "cannot load the in-memory private key: " + reason();
    return false;
  }
  return true;
}

bool load_pair(SSL_CTX* ctx, const key_pair_files& kp, std::string& error) {
  if (SSL_CTX_use_certificate_chain_file(ctx, kp.cert_file.c_str()) != 1) {
    error = "cannot load certificate chain from " + kp.cert_file + ": " + reason();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, kp.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load private key from " + kp.key_file + ": " + reason();
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = "private key in " + kp.key_file + " does not match the certificate in " + kp.cert_file +
            ": " + reason();
    return false;
  }
  return true;
}

unsigned long option_bits(const std::string& name) {
  if (name == "NO_TICKET") return SSL_OP_NO_TICKET;
  if (name == "NO_COMPRESSION") return SSL_OP_NO_COMPRESSION;
  if (name == "NO_RENEGOTIATION") return SSL_OP_NO_RENEGOTIATION;
  if (name == "PRIORITIZE_CHACHA") return SSL_OP_PRIORITIZE_CHACHA;
  if (name == "ENABLE_MIDDLEBOX_COMPAT") return SSL_OP_ENABLE_MIDDLEBOX_COMPAT;
  if (name == "LEGACY_SERVER_CONNECT") return SSL_OP_LEGACY_SERVER_CONNECT;
  if (name == "NO_ANTI_REPLAY") return SSL_OP_NO_ANTI_REPLAY;
  return 0;
}

std::string curve_name(int nid) {
  if (const char* n = EC_curve_nid2nist(nid)) return n;
  if (const char* n = OBJ_nid2sn(nid)) return n;
  return "unknown";
}

int error_slot_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::string format_error(unsigned long e, const char* file, int line, const char* data, int flags) {
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  // Postfix: "error:...:reason:FILE:LINE:" and the error's data, if any, then ":".
  std::string r = std::string(buf) + ":" + (file ? file : "") + ":" + std::to_string(line) + ":";
  if ((flags & ERR_TXT_STRING) && data && *data) r += std::string(data) + ":";
  return r;
}

// Runs inside SSL_do_handshake: a failed handshake still has its errors queued here.
void info_callback(const SSL* ssl, int where, int ret) {
  if (!(where & SSL_CB_EXIT) || ret > 0) return;
  auto* slot = static_cast<std::string*>(SSL_get_ex_data(ssl, error_slot_index()));
  if (!slot || !slot->empty()) return;
  const char* file = nullptr;
  int line = 0;
  const char* data = nullptr;
  int flags = 0;
  const unsigned long e = ERR_peek_error_all(&file, &line, nullptr, &data, &flags);
  if (e != 0) *slot = format_error(e, file, line, data, flags);
}

}  // namespace

void capture_first_error(SSL* ssl, std::string* slot) {
  SSL_set_ex_data(ssl, error_slot_index(), slot);
}

server_context::server_context(const server_settings& s)
    : ctx_(boost::asio::ssl::context::tls_server), settings_(s) {}

std::shared_ptr<server_context> server_context::create(const server_settings& s,
                                                       std::string& error) {
  ERR_clear_error();
  std::shared_ptr<server_context> c(new server_context(s));
  SSL_CTX* ctx = c->ctx_.native_handle();
  // Protocol range and holes.
  int lo = 0, hi = 0;
  unsigned long no = 0;
  for (int i = 2; i < protocol_set::count; ++i) {
    if (s.protocols.enabled[i]) {
      if (!lo) lo = proto_versions[i];
      hi = proto_versions[i];
    }
  }
  for (int i = 2; i < protocol_set::count; ++i)
    if (!s.protocols.enabled[i] && proto_versions[i] > lo && proto_versions[i] < hi)
      no |= proto_no_options[i];
  if (!lo || SSL_CTX_set_min_proto_version(ctx, lo) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, hi) != 1) {
    error = "cannot set the TLS protocol range: " + reason();
    return nullptr;
  }
  unsigned long opts = no | SSL_OP_NO_COMPRESSION;
  for (const auto& o : s.ssl_options) opts |= option_bits(o);
  if (s.server_preference) opts |= SSL_OP_CIPHER_SERVER_PREFERENCE;
  SSL_CTX_set_options(ctx, opts);
  if (!s.cipher_list.empty() && SSL_CTX_set_cipher_list(ctx, s.cipher_list.c_str()) != 1) {
    error = "cipher list \"" + s.cipher_list + "\" leaves no usable cipher: " + reason();
    return nullptr;
  }
  if (!s.groups.empty() && SSL_CTX_set1_groups_list(ctx, s.groups.c_str()) != 1) {
    // As Postfix: unknown curves in tls_eecdh_auto_curves are skipped, not fatal.
    ERR_clear_error();
    std::string usable;
    std::size_t pos = 0;
    while (pos <= s.groups.size()) {
      std::size_t colon = s.groups.find(':', pos);
      std::string g = s.groups.substr(pos, colon == std::string::npos ? colon : colon - pos);
      pos = colon == std::string::npos ? s.groups.size() + 1 : colon + 1;
      if (g.empty()) continue;
      if (SSL_CTX_set1_groups_list(ctx, g.c_str()) == 1) usable += (usable.empty() ? "" : ":") + g;
      ERR_clear_error();
    }
    if (usable.empty() || SSL_CTX_set1_groups_list(ctx, usable.c_str()) != 1) {
      error = "tls_eecdh_auto_curves: none of \"" + s.groups + "\" is supported by OpenSSL";
      return nullptr;
    }
  }
  SSL_CTX_set_dh_auto(ctx, 1);
  if (!s.dh_param_file.empty()) {
    std::unique_ptr<BIO, bio_free> bio(BIO_new_file(s.dh_param_file.c_str(), "r"));
    EVP_PKEY* dh = bio ? PEM_read_bio_Parameters(bio.get(), nullptr) : nullptr;
    if (!dh || SSL_CTX_set0_tmp_dh_pkey(ctx, dh) != 1) {
      if (dh) EVP_PKEY_free(dh);
      error = "cannot load DH parameters from " + s.dh_param_file + ": " + reason();
      return nullptr;
    }
  }
  if (!s.ca_file.empty() || !s.ca_path.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, s.ca_file.empty() ? nullptr : s.ca_file.c_str(),
                                      s.ca_path.empty() ? nullptr : s.ca_path.c_str()) != 1) {
      error = "cannot load CA certificates from " + (s.ca_file.empty() ? s.ca_path : s.ca_file) +
              ": " + reason();
      return nullptr;
    }
  }
  for (const auto& f : s.chain_files)
    if (!load_chain_file(ctx, f, error)) return nullptr;
  for (const auto& kp : s.key_pairs)
    if (!load_pair(ctx, kp, error)) return nullptr;
  for (const auto& kp : s.pem_pairs)
    if (!load_pair_pem(ctx, kp, error)) return nullptr;
  // No client certificates are asked for (smtpd_tls_ask_ccert is refused at start-up).
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_info_callback(ctx, info_callback);
  // Resumption: tickets (OpenSSL's default) and the server-side cache, both bounded by
  // smtpd_tls_session_cache_timeout.
  static const unsigned char sid_ctx[] = "relaylab-smtpd";
  SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_timeout(ctx, static_cast<long>(s.session_timeout.count()));
  return c;
}

session_info inspect(const SSL* ssl, bool peer) {
  session_info s;
  s.protocol = SSL_get_version(ssl);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
    s.cipher = SSL_CIPHER_get_name(c);
    s.cipher_bits = SSL_CIPHER_get_bits(c, &s.cipher_alg_bits);
  }
  s.reused = SSL_session_reused(ssl) == 1;
  // Key exchange (the server's ephemeral key).
  EVP_PKEY* tmp = nullptr;
  SSL* mut = const_cast<SSL*>(ssl);
  const int got_tmp = peer ? SSL_get_peer_tmp_key(mut, &tmp) : SSL_get_tmp_key(mut, &tmp);
  if (got_tmp == 1 && tmp) {
    switch (EVP_PKEY_get_base_id(tmp)) {
      case EVP_PKEY_X25519:
        s.kex = "X25519";
        break;
      case EVP_PKEY_X448:
        s.kex = "X448";
        break;
      case EVP_PKEY_EC: {
        char name[80] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_group_name(tmp, name, sizeof name, &len) == 1)
          s.kex = "ECDHE (" + curve_name(OBJ_sn2nid(name)) + ")";
        else
          s.kex = "ECDHE";
        break;
      }
      case EVP_PKEY_DH:
        s.kex = "DHE (" + std::to_string(EVP_PKEY_get_bits(tmp)) + " bits)";
        break;
      default:
        break;
    }
    EVP_PKEY_free(tmp);
  }
  // The server's signature: type from the handshake, size or curve from our own key.
  int sig_nid = NID_undef;
  const int got_sig = peer ? SSL_get_peer_signature_type_nid(ssl, &sig_nid)
                           : SSL_get_signature_type_nid(ssl, &sig_nid);
  if (got_sig == 1) {
    const X509* peer_cert = peer ? SSL_get0_peer_certificate(ssl) : nullptr;
    EVP_PKEY* own =
        peer ? (peer_cert ? X509_get0_pubkey(peer_cert) : nullptr) : SSL_get_privatekey(ssl);
    switch (sig_nid) {
      case EVP_PKEY_RSA_PSS:
        s.signature = "RSA-PSS";
        break;
      case EVP_PKEY_RSA:
        s.signature = "RSA";
        break;
      case EVP_PKEY_EC:
        s.signature = "ECDSA";
        break;
      case EVP_PKEY_ED25519:
        s.signature = "ED25519";
        break;
      case EVP_PKEY_ED448:
        s.signature = "ED448";
        break;
      default:
        break;
    }
    if (own && !s.signature.empty()) {
      if (EVP_PKEY_get_base_id(own) == EVP_PKEY_EC) {
        char name[80] = {};
        std::size_t len = 0;
        if (EVP_PKEY_get_group_name(own, name, sizeof name, &len) == 1)
          s.signature += " (" + curve_name(OBJ_sn2nid(name)) + ")";
      } else if (EVP_PKEY_get_base_id(own) == EVP_PKEY_RSA ||
                 EVP_PKEY_get_base_id(own) == EVP_PKEY_RSA_PSS) {
        s.signature += " (" + std::to_string(EVP_PKEY_get_bits(own)) + " bits)";
      }
    }
    int md = NID_undef;
    const int got_md =
        peer ? SSL_get_peer_signature_nid(mut, &md) : SSL_get_signature_nid(mut, &md);
    if (got_md == 1 && md != NID_undef && sig_nid != EVP_PKEY_ED25519 && sig_nid != EVP_PKEY_ED448)
      s.digest = OBJ_nid2sn(md);
  }
  return s;
}

std::vector<std::string> take_openssl_errors() {
  std::vector<std::string> out;
  for (int i = 0; i < 64; ++i) {
    const char* file = nullptr;
    int line = 0;
    const char* data = nullptr;
    int flags = 0;
    const unsigned long e = ERR_get_error_all(&file, &line, nullptr, &data, &flags);
    if (e == 0) break;
    std::string l = format_error(e, file, line, data, flags);
    out.push_back(std::move(l));
  }
  return out;
}

std::string openssl_error_text(unsigned long code) {
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return buf;
}

failure_lines handshake_failure(const std::string& namaddr, bool peer_closed,
                                const std::vector<std::string>& openssl_errors) {
  failure_lines f;
  if (!openssl_errors.empty()) {
    f.info = "SSL_accept error from " + namaddr + ": -1";
    for (const auto& e : openssl_errors) f.warnings.push_back("TLS library problem: " + e);
  } else if (peer_closed) {
    f.info = "SSL_accept error from " + namaddr + ": lost connection";
  } else {
    f.info = "SSL_accept error from " + namaddr + ": Connection timed out";
  }
  return f;
}

}  // namespace relaylab::tls
