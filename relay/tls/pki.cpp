#include "relay/tls/pki.hpp"

#include <atomic>
#include <stdexcept>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace relaylab::tls {
namespace {

[[noreturn]] void fail(const char* what) {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  throw std::runtime_error(std::string("pki: ") + what + ": " + buf);
}

EVP_PKEY* make_key(key_kind kind) {
  EVP_PKEY* k = nullptr;
  switch (kind) {
    case key_kind::ecdsa_p256:
      k = EVP_EC_gen("P-256");
      break;
    case key_kind::rsa_2048:
      k = EVP_RSA_gen(static_cast<unsigned int>(2048));
      break;
    case key_kind::ed25519:
      k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  if (!k) fail("key generation");
  return k;
}

std::string pem_cert(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return s;
}

std::string pem_key(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  std::string s(data, static_cast<std::size_t>(n));
  BIO_free(b);
  return s;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) fail("extension");
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

bool numeric(const std::string& n) {
  return !n.empty() && (n.find(':') != std::string::npos ||
                        n.find_first_not_of("0123456789.") == std::string::npos);
}

struct validity {
  std::chrono::system_clock::time_point now;
  std::chrono::seconds not_before;
  std::chrono::seconds not_after;
};

X509* make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                const validity& v, long serial, bool ca, const std::vector<std::string>& names) {
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  time_t base = std::chrono::system_clock::to_time_t(v.now);
  X509_time_adj_ex(X509_getm_notBefore(x), 0, static_cast<long>(v.not_before.count()), &base);
  X509_time_adj_ex(X509_getm_notAfter(x), 0, static_cast<long>(v.not_after.count()), &base);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer ? issuer : x;
  if (ca) {
    add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, iss, NID_ext_key_usage, "serverAuth,clientAuth");
    std::string san;
    for (const auto& n : names) {
      if (!san.empty()) san += ",";
      san += (numeric(n) ? "IP:" : "DNS:") + n;
    }
    if (!san.empty()) add_ext(x, iss, NID_subject_alt_name, san);
  }
  add_ext(x, iss, NID_subject_key_identifier, "hash");
  EVP_PKEY* signer = issuer_key ? issuer_key : key;
  // Ed25519 signs without a separate digest.
  const EVP_MD* md = EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(x, signer, md) == 0) fail("sign");
  return x;
}

}  // namespace

struct authority::impl {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  std::string pem;
  std::chrono::system_clock::time_point now;
  mutable std::atomic<long> serial{1};
  ~impl() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

authority::authority(const std::string& common_name, key_kind kind,
                     std::chrono::system_clock::time_point now)
    : impl_(std::make_unique<impl>()) {
  impl_->now = now;
  impl_->key = make_key(kind);
  impl_->cert = make_cert(common_name, impl_->key, nullptr, nullptr,
                          {now, std::chrono::hours(-24), std::chrono::hours(24 * 365)},
                          impl_->serial++, true, {});
  impl_->pem = pem_cert(impl_->cert);
}

authority::~authority() = default;

const std::string& authority::ca_pem() const { return impl_->pem; }

issued authority::issue(const std::vector<std::string>& names, key_kind kind,
                        std::chrono::seconds not_before, std::chrono::seconds not_after) const {
  if (names.empty()) throw std::invalid_argument("pki: issue needs at least one name");
  EVP_PKEY* k = make_key(kind);
  X509* x = make_cert(names.front(), k, impl_->cert, impl_->key,
                      {impl_->now, not_before, not_after}, impl_->serial++, false, names);
  issued out{pem_cert(x), pem_key(k), {}};
  out.chain_pem = out.cert_pem + impl_->pem;
  X509_free(x);
  EVP_PKEY_free(k);
  return out;
}

issued authority::self_signed(const std::string& name, key_kind kind,
                              std::chrono::system_clock::time_point now) {
  EVP_PKEY* k = make_key(kind);
  X509* x = make_cert(name, k, nullptr, nullptr,
                      {now, std::chrono::hours(-1), std::chrono::hours(24 * 30)}, 1, false, {name});
  issued out{pem_cert(x), pem_key(k), {}};
  out.chain_pem = out.cert_pem;
  X509_free(x);
  EVP_PKEY_free(k);
  return out;
}

}  // namespace relaylab::tls
