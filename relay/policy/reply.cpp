#include "relay/policy/reply.hpp"

#include "relay/policy/text.hpp"

namespace relaylab::policy::detail {

std::size_t dsn_length(std::string_view s) {
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
  std::size_t i = 2, n = 0;
  while (i < s.size() && is_digit(s[i]) && n < 3) ++i, ++n;
  if (n == 0 || i >= s.size() || s[i] != '.') return 0;
  ++i;
  n = 0;
  while (i < s.size() && is_digit(s[i]) && n < 3) ++i, ++n;
  if (n == 0 || (i < s.size() && is_digit(s[i]))) return 0;
  return i;
}

dsn_text dsn_split(std::string_view def, std::string_view text) {
  std::size_t n = dsn_length(text);
  if (n > 0 && (n == text.size() || is_space(text[n]))) {
    return {std::string(text.substr(0, n)), std::string(trim(text.substr(n)))};
  }
  return {std::string(def), std::string(text)};
}

std::string dsn_fix(std::string dsn, std::string_view reply_class) {
  if (dsn.size() < 5 || dsn.compare(1, 3, ".1.") != 0) return dsn;
  std::string_view detail = std::string_view(dsn).substr(4);
  if (reply_class == "Sender address") {
    if (detail == "1" || detail == "3") return dsn.substr(0, 4) + "7";
    if (detail == "2") return dsn.substr(0, 4) + "8";
  } else if (reply_class == "Recipient address") {
    if (detail == "7") return dsn.substr(0, 4) + "1";
    if (detail == "8") return dsn.substr(0, 4) + "2";
  }
  return dsn;
}

std::string format_reject(int code, std::string_view dsn, std::string_view text) {
  std::string reply = std::to_string(code) + " " + std::string(dsn) + " " + std::string(text);
  if (code < 400 || code > 599 || dsn_length(dsn) != dsn.size()) {
    reply = "450 4.7.1 Service unavailable";
  }
  for (char& ch : reply) {
    auto u = static_cast<unsigned char>(ch);
    if (u < 0x20 || u == 0x7f) ch = ' ';
  }
  return reply;
}

void finish_reject(std::string& reply, bool soft_bounce) {
  if (soft_bounce && reply[0] == '5') reply[0] = '4';
  reply[4] = reply[0];
}

}  // namespace relaylab::policy::detail
