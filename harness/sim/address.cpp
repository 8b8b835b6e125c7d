#include "harness/sim/address.hpp"

#include <boost/asio/ip/address.hpp>

#include <charconv>

namespace relaylab::sim {

std::string ip_address::to_string() const {
  if (v6) return boost::asio::ip::make_address_v6(bytes).to_string();
  return boost::asio::ip::make_address_v4(
             boost::asio::ip::address_v4::bytes_type{bytes[0], bytes[1], bytes[2], bytes[3]})
      .to_string();
}

std::optional<ip_address> parse_address(std::string_view text) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  ip_address out;
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    for (std::size_t i = 0; i < 4; ++i) out.bytes[i] = b[i];
  } else {
    if (a.to_v6().scope_id() != 0) return std::nullopt;
    out.v6 = true;
    out.bytes = a.to_v6().to_bytes();
  }
  return out;
}

bool cidr::contains(const ip_address& a) const noexcept {
  if (a.v6 != base.v6) return false;
  int bits = prefix;
  for (std::size_t i = 0; bits > 0; ++i, bits -= 8) {
    const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
    if ((a.bytes[i] & mask) != (base.bytes[i] & mask)) return false;
  }
  return true;
}

std::string cidr::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

std::optional<cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  const auto addr = parse_address(text.substr(0, slash));
  if (!addr) return std::nullopt;
  cidr out{*addr, addr->v6 ? 128 : 32};
  if (slash != std::string_view::npos) {
    const auto digits = text.substr(slash + 1);
    int p = -1;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
    if (ec != std::errc() || ptr != digits.data() + digits.size() || digits.empty()) {
      return std::nullopt;
    }
    if (p < 0 || p > (addr->v6 ? 128 : 32)) return std::nullopt;
    out.prefix = p;
  }
  return out;
}

}  // namespace relaylab::sim
