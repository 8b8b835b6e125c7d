#include "relay/policy/address_class.hpp"

#include "relay/policy/policy.hpp"
#include "relay/policy/text.hpp"
#include "relay/smtp/syntax.hpp"

#include <optional>

namespace relaylab::policy::detail {
namespace {

constexpr int resolve_loops_extra = 100;  // resolve_addr(): addr_len + 100 iterations

// quote_822_local(): a local-part with RFC 822 specials (other than '.') is one quoted
// string token, so the routing operators inside it are not operators.
bool needs_quoting(std::string_view local) {
  return local.find_first_of("@ \"()<>,;:\\[]\t") != std::string_view::npos;
}

void strip_trailing_dot(std::string& a) {
  std::size_t at = a.rfind('@');
  if (at == std::string::npos || a.size() < 2 || a.back() != '.') return;
  char prev = a[a.size() - 2];
  if (prev != '.' && prev != '@') a.pop_back();
}

}  // namespace

bool resolver::is_local(std::string_view domain_in) const {
  std::string d = lower(truncate_dot(domain_in));
  if (d.empty()) return false;
  if (list_match(c_.mydestination, d, "")) return true;
  if (d.front() == '[' && valid_mailhost_literal(d)) {
    std::string_view inner = std::string_view(d).substr(1, d.size() - 2);
    if (inner.size() > 5 && iequals(inner.substr(0, 5), "ipv6:")) inner.remove_prefix(5);
    return is_own_address(c_.own_addresses, inner);
  }
  return false;
}

resolved resolver::resolve(std::string_view addr) const {
  resolved r;
  std::string a = rewrite(std::string(addr));
  std::string remote_domain;
  std::optional<std::string> saved_domain;  // "user@" saves an empty domain: an error
  bool have_remote = false;
  std::size_t loops_max = addr.size() + resolve_loops_extra;
  for (std::size_t loop = 0; loop < loops_max; ++loop) {
    strip_trailing_dot(a);
    std::size_t at = a.rfind('@');
    if (at != std::string::npos) {
      std::string domain = a.substr(at + 1);
      if (!domain.empty() && !is_local(domain)) {
        remote_domain = domain;
        have_remote = true;
        a.resize(at);
        break;
      }
      saved_domain = domain;
      a.resize(at);
    }
    // What is left is the local part. Any '@' in it came from a quoted string.
    bool quoted = needs_quoting(a);
    if (!quoted && ((c_.swap_bangpath && a.find('!') != std::string::npos) ||
                    (c_.percent_hack && a.find('%') != std::string::npos))) {
      a = rewrite(a);
      continue;
    }
    if (quoted && c_.resolve_dequoted) {
      std::size_t oper = a.rfind('@');
      if (oper == std::string::npos && c_.percent_hack) {
        oper = a.rfind('%');
        if (oper != std::string::npos) a[oper] = '@';
      }
      if (oper == std::string::npos && c_.swap_bangpath) oper = a.rfind('!');
      if (oper != std::string::npos) {
        a = rewrite(a);
        continue;
      }
    }
    if (a.empty()) a = c_.empty_address;
    break;
  }
  std::string domain = have_remote ? remote_domain : saved_domain ? *saved_domain : c_.myhostname;
  r.recipient = lower(a + "@" + domain);
  std::string_view rcpt_domain = std::string_view(r.recipient).substr(a.size() + 1);
  if (!rcpt_domain.empty() && rcpt_domain.front() == '[') {
    r.error = !valid_mailhost_literal(rcpt_domain);
  } else if (!smtp::syntax::valid_hostname(rcpt_domain)) {
    if (c_.resolve_numeric_domain && valid_hostaddr(rcpt_domain)) {
      r.recipient = r.recipient.substr(0, a.size() + 1) + "[" + std::string(rcpt_domain) + "]";
      rcpt_domain = std::string_view(r.recipient).substr(a.size() + 1);
      if (is_local(rcpt_domain)) have_remote = false;
    } else {
      r.error = true;
    }
  }
  if (r.error) {
    r.address_class = resolved::other;
    return r;
  }
  std::size_t first_oper = r.recipient.find_first_of("@!%");
  r.routed = first_oper != a.size();
  std::string d(rcpt_domain);
  if (!have_remote) {
    r.address_class = resolved::local;
  } else if (list_match(c_.virtual_alias_domains, d, "")) {
    r.address_class = resolved::alias;
  } else if (list_match(c_.virtual_mailbox_domains, d, "")) {
    r.address_class = resolved::virtual_mailbox;
  } else if (list_match(c_.relay_domains, d, "")) {
    r.address_class = resolved::relay;
  }
  return r;
}

// rewrite_tree() in the "local" context: source route, bang path, percent hack, @myorigin.
std::string resolver::rewrite(std::string a) const {
  if (!a.empty() && a.front() == '@') {
    std::size_t colon = a.find(':');
    if (colon != std::string::npos && colon + 1 < a.size()) a = a.substr(colon + 1);
  }
  // An '@' anywhere (also one from a dequoted local-part) leaves the address alone.
  if (a.find('@') == std::string::npos) {
    std::size_t bang = a.find('!');
    std::size_t pct = a.rfind('%');
    if (c_.swap_bangpath && bang != std::string::npos) {
      a = a.substr(bang + 1) + "@" + a.substr(0, bang);
    } else if (c_.percent_hack && pct != std::string::npos) {
      a[pct] = '@';
    }
  }
  if (a.find('@') == std::string::npos && !a.empty() && c_.append_at_myorigin) {
    a += "@" + c_.myorigin;
  }
  if (c_.append_dot_mydomain) {
    std::size_t at = a.rfind('@');
    if (at != std::string::npos) {
      std::string_view d = std::string_view(a).substr(at + 1);
      if (!d.empty() && d.front() != '[' && d.find('.') == std::string_view::npos &&
          !c_.mydomain.empty()) {
        a += "." + c_.mydomain;
      }
    }
  }
  strip_trailing_dot(a);
  return a;
}

}  // namespace relaylab::policy::detail
