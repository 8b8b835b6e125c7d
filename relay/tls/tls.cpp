#include "relay/tls/tls.hpp"

namespace relaylab::tls {

std::string describe(const session_info& s) {
  std::string r = s.protocol + " with cipher " + s.cipher + " (" + std::to_string(s.cipher_bits) +
                  "/" + std::to_string(s.cipher_alg_bits) + " bits)";
  if (!s.kex.empty()) r += " key-exchange " + s.kex;
  if (!s.signature.empty()) r += " server-signature " + s.signature;
  if (!s.digest.empty()) r += " server-digest " + s.digest;
  return r;
}

std::string server_established_line(const session_info& s, const std::string& namaddr) {
  return "Anonymous TLS connection established from " + namaddr + ": " + describe(s);
}

std::string received_note(const session_info& s) {
  std::string r = "(using " + s.protocol + " with cipher " + s.cipher + " (" +
                  std::to_string(s.cipher_bits) + "/" + std::to_string(s.cipher_alg_bits) +
                  " bits)";
  std::string rest;
  if (!s.kex.empty()) rest += " key-exchange " + s.kex;
  if (!s.signature.empty()) rest += " server-signature " + s.signature;
  if (!s.digest.empty()) rest += " server-digest " + s.digest;
  if (!rest.empty()) r += "\n\t" + rest;
  r += ")\n\t(No client certificate requested)";
  return r;
}

}  // namespace relaylab::tls
