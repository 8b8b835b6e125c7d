// TLS handshakes as the relay's server side does them (relay/tls server_context, the smtpd
// settings of Postfix 3.7.11's defaults), against an OpenSSL client, in memory (a BIO pair, no
// sockets): a full handshake per iteration with ECDSA P-256 and RSA-2048 certificates, and a
// resumed one (TLS 1.3 session ticket). What it costs the relay per STARTTLS.
#include "bench/bench_support.hpp"
#include "relay/tls/context.hpp"
#include "relay/tls/pki.hpp"
#include "relay/tls/settings.hpp"

#include <benchmark/benchmark.h>

#include <fstream>
#include <memory>

#include <openssl/bio.h>
#include <openssl/ssl.h>

namespace relaylab::bench {
namespace {

struct server_fixture {
  scratch_dir dir{"tls"};
  tls::authority ca;
  std::shared_ptr<tls::server_context> server;
  SSL_CTX* client = nullptr;

  explicit server_fixture(tls::key_kind kind) : ca("Relaylab Bench CA", kind) {
    auto cert = ca.issue({"relay.example.com"}, kind);
    const auto cert_file = (dir.path() / "srv.crt").string();
    const auto key_file = (dir.path() / "srv.key").string();
    std::ofstream(cert_file) << cert.chain_pem;
    std::ofstream(key_file) << cert.key_pem;
    config::parameters p;
    p.set("smtpd_tls_security_level", "may");
    p.set("smtpd_tls_cert_file", cert_file);
    p.set("smtpd_tls_key_file", key_file);
    std::vector<config::diagnostic> d;
    auto s = tls::server_settings_from(p, d);
    std::string error;
    if (s) server = tls::server_context::create(*s, error);
    if (!server) throw std::runtime_error("bench server context: " + error);
    client = SSL_CTX_new(TLS_client_method());
    BIO* bio = BIO_new_mem_buf(ca.ca_pem().data(), static_cast<int>(ca.ca_pem().size()));
    X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(client), x);
    X509_free(x);
    BIO_free(bio);
    SSL_CTX_set_verify(client, SSL_VERIFY_PEER, nullptr);
  }
  ~server_fixture() { SSL_CTX_free(client); }
};

// One handshake over a BIO pair; the client may offer `resume`. Returns the client's session
// (with its ticket, read after the handshake) or nullptr on failure.
SSL_SESSION* handshake(server_fixture& f, SSL_SESSION* resume, bool& reused) {
  SSL* s = SSL_new(f.server->asio().native_handle());
  SSL* c = SSL_new(f.client);
  BIO *cb = nullptr, *sb = nullptr;
  BIO_new_bio_pair(&cb, 0, &sb, 0);
  SSL_set_bio(c, cb, cb);
  SSL_set_bio(s, sb, sb);
  SSL_set_connect_state(c);
  SSL_set_accept_state(s);
  SSL_set_tlsext_host_name(c, "relay.example.com");
  SSL_set1_host(c, "relay.example.com");
  if (resume) SSL_set_session(c, resume);
  bool c_done = false, s_done = false;
  for (int i = 0; i < 100 && !(c_done && s_done); ++i) {
    if (!c_done) c_done = SSL_do_handshake(c) == 1;
    if (!s_done) s_done = SSL_do_handshake(s) == 1;
  }
  SSL_SESSION* out = nullptr;
  if (c_done && s_done && SSL_get_verify_result(c) == X509_V_OK) {
    char byte;
    SSL_write(s, "x", 1);  // pushes the server's tickets out before the data
    SSL_read(c, &byte, 1);
    reused = SSL_session_reused(c) == 1;
    out = SSL_get1_session(c);
    // A session freed without close_notify is taken out of the cache and made unresumable.
    SSL_shutdown(c);
    SSL_shutdown(s);
  }
  SSL_free(c);
  SSL_free(s);
  return out;
}

void full(benchmark::State& state, tls::key_kind kind) {
  server_fixture f(kind);
  for (auto _ : state) {
    bool reused = false;
    SSL_SESSION* sess = handshake(f, nullptr, reused);
    if (!sess) return fail(state, "handshake failed");
    SSL_SESSION_free(sess);
  }
  state.SetItemsProcessed(state.iterations());
}

void resumed(benchmark::State& state, tls::key_kind kind) {
  server_fixture f(kind);
  bool reused = false;
  SSL_SESSION* ticket = handshake(f, nullptr, reused);
  if (!ticket) return fail(state, "first handshake failed");
  for (auto _ : state) {
    SSL_SESSION* next = handshake(f, ticket, reused);
    if (!next || !reused) {
      SSL_SESSION_free(ticket);
      if (next) SSL_SESSION_free(next);
      return fail(state, "the session was not resumed");
    }
    SSL_SESSION_free(ticket);
    ticket = next;
  }
  SSL_SESSION_free(ticket);
  state.SetItemsProcessed(state.iterations());
}

void BM_TlsHandshakeEcdsaP256(benchmark::State& s) { full(s, tls::key_kind::ecdsa_p256); }
void BM_TlsHandshakeRsa2048(benchmark::State& s) { full(s, tls::key_kind::rsa_2048); }
void BM_TlsResumeEcdsaP256(benchmark::State& s) { resumed(s, tls::key_kind::ecdsa_p256); }
void BM_TlsResumeRsa2048(benchmark::State& s) { resumed(s, tls::key_kind::rsa_2048); }
BENCHMARK(BM_TlsHandshakeEcdsaP256);
BENCHMARK(BM_TlsHandshakeRsa2048);
BENCHMARK(BM_TlsResumeEcdsaP256);
BENCHMARK(BM_TlsResumeRsa2048);

}  // namespace
}  // namespace relaylab::bench
