#include "fakes/dns/dns.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>
#include <fstream>

namespace relaylab::fakes::dns {

std::string zone_error::to_string() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

fake_resolver::fake_resolver(net::runtime* rt, net::duration timeout)
    : rt_(rt), timeout_(timeout) {}

std::string fake_resolver::key(std::string_view name) {
  std::string k(name);
  while (!k.empty() && k.back() == '.') k.pop_back();
  for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return k;
}

void fake_resolver::add_mx(std::string_view name, int preference, std::string_view host) {
  names_[key(name)].mx.push_back({preference, key(host)});
}

void fake_resolver::set_null_mx(std::string_view name) {
  auto& r = names_[key(name)];
  r.mx.clear();
  r.mx.push_back({0, ""});
}

bool fake_resolver::add_a(std::string_view name, std::string_view address) {
  in_addr a{};
  if (::inet_pton(AF_INET, std::string(address).c_str(), &a) != 1) return false;
  names_[key(name)].a.emplace_back(address);
  return true;
}

bool fake_resolver::add_aaaa(std::string_view name, std::string_view address) {
  in6_addr a{};
  if (::inet_pton(AF_INET6, std::string(address).c_str(), &a) != 1) return false;
  names_[key(name)].aaaa.emplace_back(address);
  return true;
}

void fake_resolver::set_cname(std::string_view name, std::string_view target) {
  names_[key(name)].cname = key(target);
}

void fake_resolver::set_failure(std::string_view name, failure f) { names_[key(name)].fail = f; }

void fake_resolver::remove(std::string_view name) { names_.erase(key(name)); }

void fake_resolver::replace(std::string_view name, name_records records) {
  names_[key(name)] = std::move(records);
}

const name_records* fake_resolver::find(std::string_view name) const {
  auto it = names_.find(key(name));
  return it == names_.end() ? nullptr : &it->second;
}

fake_resolver::resolved fake_resolver::follow(std::string_view name) const {
  resolved r;
  std::string current = key(name);
  for (int depth = 0; depth <= cname_depth_max; ++depth) {
    auto it = names_.find(current);
    if (it == names_.end() || it->second.empty()) {
      r.status = delivery::dns_status::nxdomain;
      return r;
    }
    const auto& rec = it->second;
    switch (rec.fail) {
      case failure::nxdomain:
        r.status = delivery::dns_status::nxdomain;
        return r;
      case failure::servfail:
        r.status = delivery::dns_status::servfail;
        return r;
      case failure::timeout:
        r.status = delivery::dns_status::timeout;
        return r;
      case failure::none:
        break;
    }
    if (rec.cname.empty()) {
      r.records = &rec;
      if (depth > 0) r.canonical = current;
      return r;
    }
    current = rec.cname;
  }
  r.status = delivery::dns_status::servfail;  // a CNAME loop looks like a broken zone
  return r;
}

void fake_resolver::note(std::string entry) {
  ++queries_;
  if (log_.size() < 10000) log_.push_back(std::move(entry));
}

boost::asio::awaitable<delivery::mx_answer> fake_resolver::lookup_mx(std::string domain) {
  note("MX " + key(domain));
  delivery::mx_answer ans;
  const auto r = follow(domain);
  if (r.status == delivery::dns_status::timeout && rt_) co_await rt_->sleep_for(timeout_);
  ans.status = r.status;
  if (r.records) {
    ans.records = r.records->mx;
    if (ans.records.empty()) ans.status = delivery::dns_status::nodata;
  }
  co_return ans;
}

boost::asio::awaitable<delivery::address_answer> fake_resolver::lookup_addresses(std::string host,
                                                                                 bool ipv4,
                                                                                 bool ipv6) {
  note(std::string(ipv6 && ipv4 ? "AAAA+A " : ipv6 ? "AAAA " : "A ") + key(host));
  delivery::address_answer ans;
  const auto r = follow(host);
  if (r.status == delivery::dns_status::timeout && rt_) co_await rt_->sleep_for(timeout_);
  ans.status = r.status;
  if (r.records) {
    ans.canonical_name = r.canonical;
    if (ipv6) ans.addresses = r.records->aaaa;
    if (ipv4) ans.addresses.insert(ans.addresses.end(), r.records->a.begin(), r.records->a.end());
    if (ans.addresses.empty()) ans.status = delivery::dns_status::nodata;
  }
  co_return ans;
}

namespace {
struct word {
  std::string_view text;
  std::size_t column;
};
}  // namespace

bool fake_resolver::load(std::string_view text, std::string_view file, zone_error& error) {
  std::size_t lineno = 0;
  auto fail = [&](std::size_t column, std::string message) {
    error = {std::string(file), lineno, column, std::move(message)};
    return false;
  };
  constexpr std::size_t lines_max = 1000000;
  while (!text.empty() && lineno < lines_max) {
    ++lineno;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (const auto hash = line.find_first_of("#;"); hash != std::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::vector<word> w;
    for (std::size_t i = 0; i < line.size();) {
      if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
        ++i;
        continue;
      }
      const std::size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
      w.push_back({line.substr(start, i - start), start + 1});
    }
    if (w.empty()) continue;
    if (w.size() < 2) return fail(w[0].column + w[0].text.size() + 1, "expected a record type");
    std::string type(w[1].text);
    for (auto& c : type) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const std::string_view name = w[0].text;
    auto want = [&](std::size_t n, const char* usage) {
      if (w.size() < n) {
        fail(w.back().column + w.back().text.size() + 1, std::string("usage: ") + usage);
        return false;
      }
      if (w.size() > n) {
        fail(w[n].column, "unexpected \"" + std::string(w[n].text) + "\"");
        return false;
      }
      return true;
    };
    auto conflicts_with_cname = [&](bool adding_cname) {
      const auto* r = find(name);
      if (!r) return false;
      return adding_cname ? (!r->mx.empty() || !r->a.empty() || !r->aaaa.empty())
                          : !r->cname.empty();
    };
    if (type == "MX") {
      if (!want(4, "NAME MX PREFERENCE HOST")) return false;
      int pref = 0;
      const auto t = w[2].text;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), pref);
      if (ec != std::errc() || p != t.data() + t.size() || pref < 0 || pref > 65535) {
        return fail(w[2].column, "bad MX preference \"" + std::string(t) + "\" (0-65535)");
      }
      if (conflicts_with_cname(false)) return fail(w[0].column, "name already has a CNAME");
      if (w[3].text == ".") {
        set_null_mx(name);
      } else {
        add_mx(name, pref, w[3].text);
      }
    } else if (type == "A" || type == "AAAA") {
      if (!want(3, type == "A" ? "NAME A IPV4-ADDRESS" : "NAME AAAA IPV6-ADDRESS")) return false;
      if (conflicts_with_cname(false)) return fail(w[0].column, "name already has a CNAME");
      const bool ok = type == "A" ? add_a(name, w[2].text) : add_aaaa(name, w[2].text);
      if (!ok) {
        return fail(w[2].column, "bad " + std::string(type == "A" ? "IPv4" : "IPv6") +
                                     " address \"" + std::string(w[2].text) + "\"");
      }
    } else if (type == "CNAME") {
      if (!want(3, "NAME CNAME TARGET")) return false;
      if (conflicts_with_cname(true)) return fail(w[0].column, "CNAME next to other data");
      set_cname(name, w[2].text);
    } else if (type == "NXDOMAIN" || type == "SERVFAIL" || type == "TIMEOUT") {
      if (!want(2, "NAME NXDOMAIN|SERVFAIL|TIMEOUT")) return false;
      set_failure(name, type == "NXDOMAIN"   ? failure::nxdomain
                        : type == "SERVFAIL" ? failure::servfail
                                             : failure::timeout);
    } else {
      return fail(w[1].column, "unknown record type \"" + std::string(w[1].text) +
                                   "\" (MX, A, AAAA, CNAME, NXDOMAIN, SERVFAIL, TIMEOUT)");
    }
  }
  if (!text.empty()) return fail(1, "more than 1000000 lines");
  return true;
}

bool fake_resolver::load_file(const std::string& path, zone_error& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = {path, 0, 0, "cannot open file"};
    return false;
  }
  constexpr std::size_t bytes_max = 4 << 20;
  std::string text(bytes_max + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > bytes_max) {
    error = {path, 0, 0, "file larger than 4 MiB"};
    return false;
  }
  return load(text, path, error);
}

}  // namespace relaylab::fakes::dns
