#include "harness/sweep/generator.hpp"

#include "harness/runner/report.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <vector>

namespace relaylab::sweep {

namespace {

using ms = std::chrono::milliseconds;
using namespace std::chrono_literals;

// splitmix64: tiny, fast, and the same numbers everywhere (std distributions are not).
class prng {
 public:
  explicit prng(std::uint64_t seed) : s_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n) (modulo bias is irrelevant at these sizes); 0 when n == 0.
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
  /// Uniform in [lo, hi].
  std::uint64_t between(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo + 1); }
  bool percent(unsigned p) { return below(100) < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  std::uint64_t s_;
};

std::string esc(std::string_view s) { return runner::xml_escape(s); }

std::string ms_attr(ms t) { return std::to_string(t.count()) + "ms"; }

std::string minutes_text(ms t) {
  std::ostringstream o;
  const auto s = t.count() / 1000;
  o << s / 60 << "m" << s % 60 << "s";
  return o.str();
}

enum class policy_kind { mynetworks, submission_fixed, latent_bug, main_cf_fix };

const char* policy_name(policy_kind p) {
  switch (p) {
    case policy_kind::mynetworks:
      return "mynetworks";
    case policy_kind::submission_fixed:
      return "submission-fixed";
    case policy_kind::latent_bug:
      return "latent-bug";
    case policy_kind::main_cf_fix:
      return "main-cf-fix";
  }
  return "?";
}

struct mx_model {
  std::string host;    // "mx.dest1.example"
  std::string domain;  // "dest1.example"
  std::string ipv4, ipv6;
  std::vector<std::string> script;  // script lines
  std::vector<std::string> traits;  // for the summary
  std::set<std::string> rejects;    // recipients answered with a 5xx
  std::string backup;               // a second MX host for the domain ("" = none)
  std::set<std::uint64_t> kinds;    // behaviours chosen so far
};

enum class auth_kind { none, good, bad };

struct client_model {
  std::string host;
  bool in_vpc = true;
  std::string ipv4;
  std::uint16_t port = 25;
  auth_kind auth = auth_kind::none;
  std::string mech;  // "plain" / "login"
};

struct send_model {
  std::size_t client = 0;
  ms at{0};
  std::string from;
  std::vector<std::string> to;
  std::string outcome;  // "sent", "rejected", "timeout"
  std::string reply;    // expect-reply glob, "" = any
};

enum class window_kind {
  mx_link,           // link-down/up of an MX host's link
  host_crash,        // crash/restart of a host (never the relay unless relay_crash)
  partition_mx,      // relay | some MX hosts
  partition_client,  // relay | one client
  relay_egress,      // sg-remove/add of the relay's IPv4 egress rule
  relay_ingress,     // sg-remove/add of one of the relay's ingress rules
  subnet_link,       // link-down/up of a subnet
  internet_link,     // link-down/up of "internet"
  client_link,       // link-down/up of an internet client's link
  dns_domain,        // a recipient domain's MX records changed, then restored
  dns_host,          // an MX host's address records changed, then restored
};

struct ingress_rule {
  std::uint16_t port = 25;
  bool anywhere = false;  // 0.0.0.0/0, else the VPC's CIDR
};

struct window {
  window_kind kind = window_kind::mx_link;
  std::string target;
  std::vector<std::string> b;  // partition side b (a is the relay)
  std::size_t rule = 0;        // relay_ingress: index into ingress rules
  std::string change;          // dns: records during the window
  std::string restore;         // dns: the original records
  std::string label;           // for the summary
  std::string key;             // windows with the same key never overlap
  ms begin{0};
  std::optional<ms> end;  // nullopt = never healed
};

struct planned_step {
  ms at{0};
  std::size_t seq = 0;
  enum class what { send, begin, end } kind = what::send;
  std::size_t index = 0;
};

class builder {
 public:
  builder(std::uint64_t seed, const generator_options& o) : seed_(seed), o_(o), rng_(seed) {}

  generated_case build() {
    choose_network();
    choose_policy();
    choose_mx();
    choose_dns();
    choose_clients();
    choose_sends();
    choose_faults();
    plan();
    judge();
    generated_case g;
    g.seed = seed_;
    g.file = "sweep-" + std::to_string(seed_) + ".xml";
    g.scenario = "sweep-" + std::to_string(seed_);
    g.xml = render(g.scenario);
    g.summary = summary();
    return g;
  }

 private:
  // ------------------------------------------------------------------------------------------
  // Choices.

  void choose_network() {
    vpc_octet_ = static_cast<unsigned>(rng_.between(0, 255));
    vpc_cidr_ = "10." + std::to_string(vpc_octet_) + ".0.0/16";
    public_cidr_ = "10." + std::to_string(vpc_octet_) + ".1.0/24";
    private_cidr_ = "10." + std::to_string(vpc_octet_) + ".2.0/24";
    relay_ipv4_ = "10." + std::to_string(vpc_octet_) + ".1.10";
    relay_public_ = "203.0.113.10";
    ipv6_ = rng_.percent(30);
    inet_protocols_all_ = ipv6_ || rng_.percent(70);
    open25_ = rng_.percent(30);
    subnet_latency_us_ = rng_.between(50, 500);
    internet_latency_ms_ = rng_.between(2, 40);
    internet_jitter_ms_ = rng_.between(0, 3);
    loss_ = rng_.percent(20);
    short_backoff_ = rng_.percent(40);
  }

  void choose_policy() {
    static const std::vector<policy_kind> all = {policy_kind::mynetworks,
                                                 policy_kind::submission_fixed,
                                                 policy_kind::latent_bug, policy_kind::main_cf_fix};
    policy_ = rng_.pick(all);
    relayhost_ = rng_.percent(30);
    relayhost_numeric_ = relayhost_ && rng_.percent(50);
    password_ = "pw-" + std::to_string(rng_.between(1000, 9999));
    ingress_.push_back({25, false});
    if (open25_) ingress_.push_back({25, true});
    if (policy_ != policy_kind::mynetworks) ingress_.push_back({587, true});
  }

  void choose_mx() {
    const std::size_t n = rng_.between(1, std::max<std::size_t>(1, o_.mx_hosts_max));
    for (std::size_t i = 1; i <= n; ++i) {
      mx_model m;
      m.domain = "dest" + std::to_string(i) + ".example";
      m.host = "mx." + m.domain;
      m.ipv4 = "192.0.2." + std::to_string(10 + i);
      if (rng_.percent(40)) m.ipv6 = "2001:db8:25:" + std::to_string(i) + "::25";
      m.script.push_back("hostname " + m.host);
      const std::size_t behaviours = rng_.between(0, 2);
      for (std::size_t b = 0; b < behaviours; ++b) add_behaviour(m);
      if (m.traits.empty()) m.traits.push_back("accept");
      mxs_.push_back(std::move(m));
    }
    if (mxs_.size() >= 2 && !relayhost_) {
      for (auto& m : mxs_) {
        if (rng_.percent(25)) {
          const auto& other = mxs_[rng_.below(mxs_.size())];
          if (other.host != m.host) m.backup = other.host;
        }
      }
    }
  }

  void add_behaviour(mx_model& m) {
    const std::string times = " times " + std::to_string(rng_.between(1, 3));
    const auto kind = rng_.below(7);
    if (!m.kinds.insert(kind).second) return;  // each behaviour once per MX
    switch (kind) {
      case 0:
        m.script.push_back(std::string("stage ") + (rng_.percent(50) ? "rcpt" : "mail") +
                           " reply \"451 4.3.0 Temporary failure, try again later\"" + times);
        m.traits.push_back("tempfail");
        break;
      case 1:
        m.script.push_back("greylist " + std::to_string(rng_.between(1, 2)));
        m.traits.push_back("greylist");
        break;
      case 2:
        m.script.push_back(std::string("stage ") + (rng_.percent(50) ? "rcpt" : "dot") + " delay " +
                           std::to_string(rng_.between(1, 20)) + "s");
        m.traits.push_back("delay");
        break;
      case 3: {
        const std::string r = "reject-me@" + m.domain;
        // First: rules are tried in file order, and a stage rule would answer first.
        m.script.insert(m.script.begin() + 1, "rcpt " + r + " reply \"550 5.1.1 <" + r +
                                                  ">: Recipient address rejected: User unknown\"");
        m.rejects.insert(r);
        m.traits.push_back("reject");
        break;
      }
      case 4:
        m.script.push_back(std::string("stage ") +
                           rng_.pick(std::vector<std::string>{"helo", "mail", "data", "dot"}) +
                           " disconnect" + times);
        m.traits.push_back("disconnect");
        break;
      case 5:
        m.script.push_back("stage connect reply \"421 4.3.2 Service shutting down\"" + times);
        m.traits.push_back("421");
        break;
      case 6:
        m.script.push_back("rate " + std::to_string(rng_.between(1, 3)) + "/60s " +
                           (rng_.percent(50) ? "421" : "451"));
        m.traits.push_back("rate");
        break;
    }
  }

  void choose_dns() {
    nx_domain_ = !relayhost_ && rng_.percent(15);
    servfail_domain_ = !relayhost_ && rng_.percent(8);
    ghost_domain_ = !relayhost_ && rng_.percent(5);
  }

  /// The zone lines of `name` (its MX, A and AAAA records).
  std::vector<std::string> records_of(const std::string& name) const {
    std::vector<std::string> out;
    if (name == "senders.example") out.push_back("senders.example MX 10 mx.senders.example");
    if (name == "mx.senders.example") out.push_back("mx.senders.example A 192.0.2.100");
    for (const auto& m : mxs_) {
      if (name == m.domain) {
        out.push_back(m.domain + " MX 10 " + m.host);
        if (!m.backup.empty()) out.push_back(m.domain + " MX 20 " + m.backup);
      }
      if (name == m.host) {
        if (!m.ipv6.empty()) out.push_back(m.host + " AAAA " + m.ipv6);
        out.push_back(m.host + " A " + m.ipv4);
      }
    }
    return out;
  }

  void choose_clients() {
    const std::size_t n = rng_.between(1, std::max<std::size_t>(1, o_.clients_max));
    std::size_t vpc = 0, internet = 0;
    for (std::size_t i = 0; i < n; ++i) {
      client_model c;
      c.in_vpc = rng_.percent(60);
      if (c.in_vpc) {
        ++vpc;
        c.host = "client-" + std::to_string(vpc);
        c.ipv4 = "10." + std::to_string(vpc_octet_) + ".2." + std::to_string(10 + vpc);
      } else {
        ++internet;
        c.host = "roamer-" + std::to_string(internet);
        c.ipv4 = "198.51.100." + std::to_string(10 + internet);
      }
      c.mech = rng_.percent(70) ? "plain" : "login";
      if (policy_ == policy_kind::mynetworks) {
        c.port = 25;
      } else {
        // Mostly authenticated submission; sometimes the mistakes people make.
        const auto r = rng_.below(10);
        if (r < 6) {
          c.port = 587;
          c.auth = auth_kind::good;
        } else if (r < 7) {
          c.port = 587;
          c.auth = auth_kind::none;
        } else if (r < 8) {
          c.port = 587;
          c.auth = auth_kind::bad;
        } else {
          c.port = 25;
        }
      }
      clients_.push_back(std::move(c));
    }
  }

  std::vector<std::string> recipient_pool() const {
    std::vector<std::string> pool;
    for (const auto& m : mxs_) {
      pool.push_back("u1@" + m.domain);
      pool.push_back("u2@" + m.domain);
      for (const auto& r : m.rejects) pool.push_back(r);
    }
    if (relayhost_) {
      // The smarthost takes everything; its own reject rule is the only 5xx.
      pool.push_back("far@elsewhere.example");
    }
    if (nx_domain_) pool.push_back("nobody@nx.example");
    if (servfail_domain_) pool.push_back("somebody@sf.example");
    if (ghost_domain_) pool.push_back("ghost@ghost.example");
    return pool;
  }

  void choose_sends() {
    const auto pool = recipient_pool();
    for (std::size_t c = 0; c < clients_.size(); ++c) {
      const std::size_t n = rng_.between(1, std::max<std::size_t>(1, o_.messages_per_client_max));
      for (std::size_t k = 0; k < n; ++k) {
        send_model s;
        s.client = c;
        s.at = ms(rng_.below(30 * 60 * 1000));
        s.from = "c" + std::to_string(c + 1) + "m" + std::to_string(k + 1) + "@senders.example";
        const std::size_t rcpts = rng_.between(1, 3);
        for (std::size_t r = 0; r < rcpts; ++r) {
          const auto& to = rng_.pick(pool);
          if (std::find(s.to.begin(), s.to.end(), to) == s.to.end()) s.to.push_back(to);
        }
        sends_.push_back(std::move(s));
      }
    }
  }

  void choose_faults() {
    if (o_.fault_windows_max == 0 || rng_.percent(30)) return;
    const std::size_t n = rng_.between(1, o_.fault_windows_max);
    for (std::size_t i = 0; i < n; ++i) {
      window w;
      w.begin = ms(rng_.below(30 * 60 * 1000));
      if (!rng_.percent(20)) w.end = w.begin + ms(rng_.between(10, 20 * 60) * 1000);
      const auto& mx = mxs_[rng_.below(mxs_.size())];
      switch (rng_.below(o_.relay_crash ? 12 : 11)) {
        case 0:
          w.kind = window_kind::mx_link;
          w.target = mx.host;
          w.key = "link:" + w.target;
          w.label = "link-down " + w.target;
          break;
        case 1:
          w.kind = window_kind::host_crash;
          w.target = rng_.percent(80) ? mx.host : std::string("mx.senders.example");
          w.key = "crash:" + w.target;
          w.label = "crash " + w.target;
          break;
        case 2: {
          w.kind = window_kind::partition_mx;
          for (const auto& m : mxs_) {
            if (m.host == mx.host || rng_.percent(30)) w.b.push_back(m.host);
          }
          w.key = "partition";
          w.label = "partition relay|" + std::to_string(w.b.size()) + "mx";
          break;
        }
        case 3:
          w.kind = window_kind::partition_client;
          w.b.push_back(clients_[rng_.below(clients_.size())].host);
          w.key = "partition";
          w.label = "partition relay|" + w.b.front();
          break;
        case 4:
          w.kind = window_kind::relay_egress;
          w.key = "sg:egress";
          w.label = "sg-remove egress";
          break;
        case 5:
          w.kind = window_kind::relay_ingress;
          w.rule = rng_.below(ingress_.size());
          w.key = "sg:ingress:" + std::to_string(w.rule);
          w.label = "sg-remove ingress " + std::to_string(ingress_[w.rule].port) +
                    (ingress_[w.rule].anywhere ? "/any" : "/vpc");
          break;
        case 6:
          w.kind = window_kind::subnet_link;
          w.target = rng_.percent(50) ? "public" : "private";
          w.key = "link:" + w.target;
          w.label = "link-down " + w.target;
          break;
        case 7:
          w.kind = window_kind::internet_link;
          w.target = "internet";
          w.key = "link:internet";
          w.label = "link-down internet";
          break;
        case 8: {
          std::vector<std::string> roamers;
          for (const auto& c : clients_) {
            if (!c.in_vpc) roamers.push_back(c.host);
          }
          if (roamers.empty()) continue;
          w.kind = window_kind::client_link;
          w.target = rng_.pick(roamers);
          w.key = "link:" + w.target;
          w.label = "link-down " + w.target;
          break;
        }
        case 9: {
          w.kind = window_kind::dns_domain;
          w.target = mx.domain;
          w.key = "dns:" + w.target;
          const auto r = rng_.below(4);
          if (r == 0) {
            w.change = mx.domain + " SERVFAIL";
            w.label = "dns-servfail " + mx.domain;
          } else if (r == 1) {
            w.change = mx.domain + " NXDOMAIN";
            w.label = "dns-nxdomain " + mx.domain;
          } else if (r == 2) {
            w.change = mx.domain + " TIMEOUT";
            w.label = "dns-timeout " + mx.domain;
          } else {
            const auto& other = mxs_[rng_.below(mxs_.size())];
            w.change = mx.domain + " MX 10 " + other.host;
            w.label = "dns-mx " + mx.domain + "->" + other.host;
          }
          break;
        }
        case 10:
          w.kind = window_kind::dns_host;
          w.target = mx.host;
          w.key = "dns:" + w.target;
          w.change = rng_.percent(50) ? mx.host + " A 192.0.2.250" : mx.host + " NXDOMAIN";
          w.label = "dns-host " + mx.host;
          break;
        case 11:
          w.kind = window_kind::host_crash;
          w.target = "relay";
          w.key = "crash:relay";
          w.label = "crash relay";
          break;
      }
      if (w.kind == window_kind::dns_domain || w.kind == window_kind::dns_host) {
        std::string text;
        for (const auto& l : records_of(w.target)) text += l + "\n";
        w.restore = text;
      }
      if (conflicts(w)) continue;
      windows_.push_back(std::move(w));
    }
  }

  bool conflicts(const window& w) const {
    for (const auto& x : windows_) {
      if (x.key != w.key) continue;
      const ms x_end = x.end.value_or(ms::max());
      const ms w_end = w.end.value_or(ms::max());
      if (w.begin <= x_end && x.begin <= w_end) return true;
    }
    return false;
  }

  // ------------------------------------------------------------------------------------------
  // The plan in virtual-time order, and what the client's path looks like at each send.

  void plan() {
    std::size_t seq = 0;
    for (std::size_t i = 0; i < sends_.size(); ++i) {
      steps_.push_back({sends_[i].at, seq++, planned_step::what::send, i});
    }
    for (std::size_t i = 0; i < windows_.size(); ++i) {
      steps_.push_back({windows_[i].begin, seq++, planned_step::what::begin, i});
      if (windows_[i].end) steps_.push_back({*windows_[i].end, seq++, planned_step::what::end, i});
    }
    std::sort(steps_.begin(), steps_.end(), [](const planned_step& a, const planned_step& b) {
      return a.at != b.at ? a.at < b.at : a.seq < b.seq;
    });

    // Steps run one after another, so the network a send meets is the one the steps before it
    // in file order left, whatever their actual times.
    std::set<std::string> links_down;
    std::set<std::string> crashed;
    std::vector<std::string> partitioned;  // hosts cut off from the relay
    std::vector<bool> rule_present(ingress_.size(), true);
    for (const auto& st : steps_) {
      if (st.kind == planned_step::what::send) {
        predict(sends_[st.index], links_down, crashed, partitioned, rule_present);
        continue;
      }
      const auto& w = windows_[st.index];
      const bool on = st.kind == planned_step::what::begin;
      switch (w.kind) {
        case window_kind::mx_link:
        case window_kind::subnet_link:
        case window_kind::internet_link:
        case window_kind::client_link:
          if (on) {
            links_down.insert(w.target);
          } else {
            links_down.erase(w.target);
          }
          break;
        case window_kind::host_crash:
          if (on) {
            crashed.insert(w.target);
          } else {
            crashed.erase(w.target);
          }
          break;
        case window_kind::partition_mx:
        case window_kind::partition_client:
          partitioned = on ? w.b : std::vector<std::string>{};
          break;
        case window_kind::relay_ingress:
          rule_present[w.rule] = !on;
          break;
        case window_kind::relay_egress:
        case window_kind::dns_domain:
        case window_kind::dns_host:
          break;
      }
    }
  }

  void predict(send_model& s, const std::set<std::string>& links_down,
               const std::set<std::string>& crashed, const std::vector<std::string>& partitioned,
               const std::vector<bool>& rule_present) {
    const auto& c = clients_[s.client];
    // The links a connection from the client to the relay crosses (harness/sim's path).
    std::vector<std::string> links;
    if (c.in_vpc) {
      links = {"private", "public"};
    } else {
      links = {c.host, "internet", "public"};
    }
    bool blocked = crashed.count("relay") > 0;
    for (const auto& l : links) blocked = blocked || links_down.count(l) > 0;
    blocked =
        blocked || std::find(partitioned.begin(), partitioned.end(), c.host) != partitioned.end();
    bool allowed = false;
    for (std::size_t i = 0; i < ingress_.size(); ++i) {
      if (rule_present[i] && ingress_[i].port == c.port && (ingress_[i].anywhere || c.in_vpc)) {
        allowed = true;
      }
    }
    if (blocked || !allowed) {
      s.outcome = "timeout";
      return;
    }
    if (c.port == 25) {
      if (c.in_vpc) {
        s.outcome = "sent";
      } else {
        s.outcome = "rejected";
        s.reply = "*Relay access denied*";
      }
      return;
    }
    switch (c.auth) {
      case auth_kind::none:
        s.outcome = "rejected";
        s.reply = "*Client host rejected: Access denied*";
        return;
      case auth_kind::bad:
        s.outcome = "rejected";
        s.reply = "*535 5.7.8 *authentication failed*";
        return;
      case auth_kind::good:
        if (policy_ == policy_kind::latent_bug && !c.in_vpc) {
          s.outcome = "rejected";
          s.reply = "*Relay access denied*";
        } else {
          s.outcome = "sent";
        }
        return;
    }
  }

  // ------------------------------------------------------------------------------------------
  // What must hold at the end.

  enum class fate { sent, bounced, final_unknown, stuck };

  const mx_model* mx_by_host(const std::string& host) const {
    for (const auto& m : mxs_) {
      if (m.host == host) return &m;
    }
    return nullptr;
  }

  std::string domain_of(const std::string& rcpt) const { return rcpt.substr(rcpt.find('@') + 1); }

  /// The host every copy for `rcpt` ends at, "" when more than one could take it.
  std::string delivery_host(const std::string& rcpt) const {
    if (relayhost_) return mxs_.front().host;
    for (const auto& m : mxs_) {
      if (m.domain == domain_of(rcpt)) return m.backup.empty() ? m.host : "";
    }
    return "";
  }

  fate fate_of(const std::string& rcpt) const {
    const std::string host = delivery_host(rcpt);
    if (const auto* m = mx_by_host(host))
      return m->rejects.count(rcpt) ? fate::bounced : fate::sent;
    const std::string d = domain_of(rcpt);
    if (d == "nx.example") return fate::bounced;
    if (d == "sf.example" || d == "ghost.example") return fate::stuck;
    return fate::final_unknown;  // a backup MX may take it
  }

  /// Recipients whose route a DNS fault may change (their counts are then not certain).
  bool dns_touched(const std::string& rcpt) const {
    for (const auto& w : windows_) {
      if (w.kind != window_kind::dns_domain && w.kind != window_kind::dns_host) continue;
      if (relayhost_) {
        if (!relayhost_numeric_ && w.target == mxs_.front().host) return true;
        continue;
      }
      if (w.target == domain_of(rcpt)) return true;
      for (const auto& m : mxs_) {
        if (m.domain == domain_of(rcpt) && (w.target == m.host || w.target == m.backup)) {
          return true;
        }
      }
    }
    return false;
  }

  void judge() {
    for (const auto& w : windows_) {
      if (!w.end) healed_ = false;
    }
    for (const auto& s : sends_) {
      if (s.outcome != "sent") continue;
      for (const auto& r : s.to) {
        ++sent_to_[r];
        if (fate_of(r) == fate::stuck) final_ = false;
      }
    }
    // Bounces go to senders.example's MX, which accepts everything.
    queue_empty_ = healed_ && final_;
  }

  // ------------------------------------------------------------------------------------------
  // Rendering.

  std::string main_cf() const {
    std::ostringstream o;
    o << "compatibility_level = 3.6\n"
      << "myhostname = relay.sweep.example\n"
      << "mydomain = sweep.example\n"
      << "myorigin = $mydomain\n"
      << "inet_interfaces = all\n"
      << "inet_protocols = " << (inet_protocols_all_ ? "all" : "ipv4") << "\n"
      << "mydestination = $myhostname, localhost.$mydomain, localhost\n"
      << "mynetworks = 127.0.0.0/8, " << vpc_cidr_ << "\n";
    if (relayhost_) {
      o << "relayhost = [" << (relayhost_numeric_ ? mxs_.front().ipv4 : mxs_.front().host) << "]\n";
    }
    if (short_backoff_) {
      o << "queue_run_delay = 60s\nminimal_backoff_time = 60s\nmaximal_backoff_time = 600s\n";
    }
    if (policy_ == policy_kind::main_cf_fix) {
      o << "smtpd_recipient_restrictions = permit_mynetworks, permit_sasl_authenticated, "
           "reject_unauth_destination\n";
    } else {
      o << "smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination\n";
    }
    if (policy_ != policy_kind::mynetworks) o << "smtpd_sasl_auth_enable = yes\n";
    return o.str();
  }

  std::string master_cf() const {
    std::ostringstream o;
    o << "smtp      inet  n       -       n       -       -       smtpd\n";
    if (policy_ != policy_kind::mynetworks) {
      o << "submission inet n       -       n       -       -       smtpd\n"
        << "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n";
      if (policy_ == policy_kind::submission_fixed) {
        o << "  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject\n";
      }
    }
    o << "pickup    unix  n       -       n       60      1       pickup\n"
      << "cleanup   unix  n       -       n       -       0       cleanup\n"
      << "qmgr      unix  n       -       n       300     1       qmgr\n"
      << "smtp      unix  -       -       n       -       -       smtp\n";
    return o.str();
  }

  static void text_block(std::ostringstream& o, const std::string& text, const char* indent) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) o << indent << esc(l) << "\n";
  }

  std::string render(const std::string& scenario) const {
    std::ostringstream o;
    const std::string v = std::to_string(vpc_octet_);
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<!-- Generated by relaylab sweep, seed " << seed_ << ": " << esc(summary()) << " -->\n"
      << "<topology xmlns=\"urn:relaylab:topology:1\" name=\"sweep-" << seed_ << "\" seed=\""
      << seed_ << "\">\n"
      << "  <internet latency=\"" << internet_latency_ms_ << "ms\" jitter=\"" << internet_jitter_ms_
      << "ms\"" << (loss_ ? " loss=\"0.01\"" : "") << "/>\n";
    o << "  <vpc name=\"vpc\" cidr=\"" << vpc_cidr_ << "\""
      << (ipv6_ ? " ipv6-cidr=\"2001:db8:" + v + "::/56\"" : "") << ">\n"
      << "    <internet-gateway name=\"igw\"/>\n"
      << "    <route-table name=\"rt-public\">\n"
      << "      <route destination=\"" << vpc_cidr_ << "\" target=\"local\"/>\n"
      << "      <route destination=\"0.0.0.0/0\" target=\"igw\"/>\n";
    if (ipv6_) {
      o << "      <route destination=\"2001:db8:" << v << "::/56\" target=\"local\"/>\n"
        << "      <route destination=\"::/0\" target=\"igw\"/>\n";
    }
    o << "    </route-table>\n"
      << "    <route-table name=\"rt-private\">\n"
      << "      <route destination=\"" << vpc_cidr_ << "\" target=\"local\"/>\n"
      << "    </route-table>\n"
      << "    <security-group name=\"sg-relay\">\n";
    for (const auto& r : ingress_) {
      o << "      <ingress protocol=\"tcp\" ports=\"" << r.port << "\" cidr=\""
        << (r.anywhere ? "0.0.0.0/0" : vpc_cidr_) << "\"/>\n";
    }
    o << "      <egress protocol=\"all\" cidr=\"0.0.0.0/0\"/>\n";
    if (ipv6_) o << "      <egress protocol=\"all\" cidr=\"::/0\"/>\n";
    o << "    </security-group>\n"
      << "    <security-group name=\"sg-client\">\n"
      << "      <egress protocol=\"all\" cidr=\"0.0.0.0/0\"/>\n"
      << "    </security-group>\n"
      << "    <subnet name=\"public\" cidr=\"" << public_cidr_ << "\""
      << (ipv6_ ? " ipv6-cidr=\"2001:db8:" + v + ":1::/64\"" : "")
      << " route-table=\"rt-public\" latency=\"" << subnet_latency_us_ << "us\"/>\n"
      << "    <subnet name=\"private\" cidr=\"" << private_cidr_
      << "\" route-table=\"rt-private\" latency=\"" << subnet_latency_us_ << "us\"/>\n"
      << "  </vpc>\n";

    o << "  <dns>\n    <zone>\n";
    std::vector<std::string> zone = records_of("senders.example");
    for (const auto& l : records_of("mx.senders.example")) zone.push_back(l);
    for (const auto& m : mxs_) {
      for (const auto& l : records_of(m.domain)) zone.push_back(l);
      for (const auto& l : records_of(m.host)) zone.push_back(l);
    }
    if (nx_domain_) zone.push_back("nx.example NXDOMAIN");
    if (servfail_domain_) zone.push_back("sf.example SERVFAIL");
    if (ghost_domain_) {
      zone.push_back("ghost.example MX 10 mx.ghost.example");
      zone.push_back("mx.ghost.example A 192.0.2.250");
    }
    for (const auto& l : zone) o << "      " << l << "\n";
    o << "    </zone>\n  </dns>\n";

    o << "  <host name=\"relay\" subnet=\"public\" ipv4=\"" << relay_ipv4_ << "\" public-ipv4=\""
      << relay_public_ << "\"" << (ipv6_ ? " ipv6=\"2001:db8:" + v + ":1::10\"" : "")
      << " security-groups=\"sg-relay\">\n"
      << "    <relay>\n      <main-cf>\n";
    text_block(o, main_cf(), "        ");
    o << "      </main-cf>\n      <master-cf>\n";
    text_block(o, master_cf(), "        ");
    o << "      </master-cf>\n";
    if (policy_ != policy_kind::mynetworks) {
      // One smtpd.conf for every case: libsasl2 reads it once per process.
      o << "      <smtpd-conf>\n        pwcheck_method: auxprop\n        mech_list: PLAIN LOGIN\n"
        << "      </smtpd-conf>\n"
        << "      <sasl-user name=\"sweeper\" realm=\"sweep.example\" password=\"" << password_
        << "\"/>\n";
    }
    o << "    </relay>\n  </host>\n";

    for (const auto& c : clients_) {
      if (c.in_vpc) {
        o << "  <host name=\"" << c.host << "\" subnet=\"private\" ipv4=\"" << c.ipv4
          << "\" security-groups=\"sg-client\">\n";
      } else {
        o << "  <host name=\"" << c.host << "\" ipv4=\"" << c.ipv4 << "\" latency=\""
          << rng_latency(c.host) << "ms\">\n";
      }
      o << "    <client/>\n  </host>\n";
    }
    auto mx_host = [&](const std::string& name, const std::string& ipv4, const std::string& ipv6,
                       const std::vector<std::string>& script) {
      o << "  <host name=\"" << name << "\" ipv4=\"" << ipv4 << "\""
        << (ipv6.empty() ? "" : " ipv6=\"" + ipv6 + "\"") << " latency=\"" << rng_latency(name)
        << "ms\">\n    <mx port=\"25\">\n";
      if (!script.empty()) {
        o << "      <script>\n";
        for (const auto& l : script) o << "        " << esc(l) << "\n";
        o << "      </script>\n";
      }
      o << "    </mx>\n  </host>\n";
    };
    for (const auto& m : mxs_) mx_host(m.host, m.ipv4, m.ipv6, m.script);
    mx_host("mx.senders.example", "192.0.2.100", "", {});

    o << "  <scenario name=\"" << scenario << "\" time-max=\"3d\" description=\"" << esc(summary())
      << "\">\n";
    for (const auto& st : steps_) {
      if (st.kind == planned_step::what::send) {
        render_send(o, sends_[st.index], st.index);
      } else {
        render_fault(o, windows_[st.index], st.kind == planned_step::what::begin);
      }
    }
    // Retries back off up to maximal_backoff_time (4000 s by default), and scripted tempfails,
    // greylisting and rate limits each cost a retry after the last healing: two days leave
    // room for dozens of rounds and stay far from maximal_queue_lifetime (5 days). Waiting
    // for an empty queue ends as soon as it is empty; a case left to the checkers waits
    // three hours, enough for several rounds of retries.
    if (queue_empty_) {
      o << "    <wait until=\"queue-empty\" for=\"2d\"/>\n";
    } else {
      o << "    <wait for=\"3h\"/>\n";
    }
    render_expectations(o);
    o << "  </scenario>\n</topology>\n";
    return o.str();
  }

  /// A host's link latency, fixed by its name so that rendering draws nothing from the PRNG.
  static unsigned rng_latency(const std::string& name) {
    std::uint64_t h = 1469598103934665603ULL;
    for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    return static_cast<unsigned>(1 + h % 30);
  }

  void render_send(std::ostringstream& o, const send_model& s, std::size_t index) const {
    const auto& c = clients_[s.client];
    std::string to;
    for (const auto& r : s.to) to += (to.empty() ? "" : " ") + r;
    o << "    <send name=\"send-" << index + 1 << "\" at=\"" << ms_attr(s.at) << "\" host=\""
      << c.host << "\" server=\"" << (c.in_vpc ? relay_ipv4_ : relay_public_) << "\" port=\""
      << c.port << "\" from=\"" << s.from << "\" to=\"" << to << "\" subject=\"sweep " << seed_
      << " message " << index + 1 << "\" body=\"generated by relaylab sweep\"";
    if (c.auth != auth_kind::none) {
      o << " auth=\"" << c.mech << "\" user=\"sweeper@sweep.example\" password=\""
        << (c.auth == auth_kind::good ? password_ : "not-" + password_) << "\"";
    }
    o << " expect=\"" << s.outcome << "\"";
    if (!s.reply.empty()) o << " expect-reply=\"" << esc(s.reply) << "\"";
    o << "/>\n";
  }

  void render_fault(std::ostringstream& o, const window& w, bool begin) const {
    const std::string at = ms_attr(begin ? w.begin : *w.end);
    switch (w.kind) {
      case window_kind::mx_link:
      case window_kind::subnet_link:
      case window_kind::internet_link:
      case window_kind::client_link:
        o << "    <fault at=\"" << at << "\" kind=\"" << (begin ? "link-down" : "link-up")
          << "\" target=\"" << w.target << "\"/>\n";
        return;
      case window_kind::host_crash:
        o << "    <fault at=\"" << at << "\" kind=\"" << (begin ? "crash" : "restart")
          << "\" target=\"" << w.target << "\"/>\n";
        return;
      case window_kind::partition_mx:
      case window_kind::partition_client:
        if (begin) {
          std::string b;
          for (const auto& h : w.b) b += (b.empty() ? "" : " ") + h;
          o << "    <fault at=\"" << at << "\" kind=\"partition\" a=\"relay\" b=\"" << b
            << "\"/>\n";
        } else {
          o << "    <fault at=\"" << at << "\" kind=\"heal\"/>\n";
        }
        return;
      case window_kind::relay_egress:
        o << "    <fault at=\"" << at << "\" kind=\"" << (begin ? "sg-remove" : "sg-add")
          << "\" target=\"sg-relay\" direction=\"egress\" protocol=\"all\" cidr=\"0.0.0.0/0\"/>\n";
        return;
      case window_kind::relay_ingress: {
        const auto& r = ingress_[w.rule];
        o << "    <fault at=\"" << at << "\" kind=\"" << (begin ? "sg-remove" : "sg-add")
          << "\" target=\"sg-relay\" direction=\"ingress\" protocol=\"tcp\" ports=\"" << r.port
          << "\" cidr=\"" << (r.anywhere ? "0.0.0.0/0" : vpc_cidr_) << "\"/>\n";
        return;
      }
      case window_kind::dns_domain:
      case window_kind::dns_host: {
        o << "    <fault at=\"" << at << "\" kind=\"dns\" target=\"" << w.target << "\">\n";
        text_block(o, begin ? w.change : w.restore, "      ");
        o << "    </fault>\n";
        return;
      }
    }
  }

  void render_expectations(std::ostringstream& o) const {
    // Never, whatever happened.
    o << "    <expect-maillog pattern=\"*: panic: *\" absent=\"true\"/>\n"
      << "    <expect-maillog pattern=\"*: fatal: *\" absent=\"true\"/>\n";
    if (!queue_empty_) return;
    o << "    <expect-queue incoming=\"0\" active=\"0\" deferred=\"0\"/>\n";
    const bool fault_free = windows_.empty();
    for (const auto& [rcpt, n] : sent_to_) {
      const fate f = fate_of(rcpt);
      if (dns_touched(rcpt)) continue;
      if (f == fate::sent) {
        o << "    <expect-maillog pattern=\""
          << esc("*: to=<" + rcpt + ">, relay=*, status=sent (*") << "\" count=\"" << n << "\"/>\n";
      } else if (f == fate::bounced) {
        o << "    <expect-maillog pattern=\"" << esc("*: to=<" + rcpt + ">, *status=bounced (*")
          << "\" count=\"" << n << "\"/>\n";
      }
      // Copies at the MX: exact only when no fault can lose a 250 on its way back (which makes
      // the relay send again, as any MTA would).
      const std::string host = delivery_host(rcpt);
      if (fault_free && mx_by_host(host) && (f == fate::sent || f == fate::bounced)) {
        o << "    <expect-mailbox host=\"" << host << "\" recipient=\"" << rcpt << "\" count=\""
          << (f == fate::sent ? n : 0) << "\"/>\n";
      }
    }
  }

  std::string summary() const {
    std::ostringstream o;
    o << "policy=" << policy_name(policy_)
      << " delivery=" << (relayhost_ ? (relayhost_numeric_ ? "relayhost-ip" : "relayhost") : "mx")
      << " ipv6=" << (ipv6_ ? "yes" : "no") << " mx=";
    for (std::size_t i = 0; i < mxs_.size(); ++i) {
      o << (i ? "," : "") << "[";
      for (std::size_t t = 0; t < mxs_[i].traits.size(); ++t) {
        o << (t ? "+" : "") << mxs_[i].traits[t];
      }
      o << (mxs_[i].backup.empty() ? "" : "+backup") << "]";
    }
    o << " clients=" << clients_.size() << " messages=" << sends_.size() << " faults=";
    if (windows_.empty()) o << "none";
    for (std::size_t i = 0; i < windows_.size(); ++i) {
      const auto& w = windows_[i];
      o << (i ? "," : "") << w.label << "@" << minutes_text(w.begin)
        << (w.end ? ".." + minutes_text(*w.end) : std::string("..never"));
    }
    o << " end=" << (queue_empty_ ? "queue-empty" : "checkers-only");
    return o.str();
  }

  std::uint64_t seed_;
  generator_options o_;
  prng rng_;

  unsigned vpc_octet_ = 0;
  std::string vpc_cidr_, public_cidr_, private_cidr_, relay_ipv4_, relay_public_;
  bool ipv6_ = false, inet_protocols_all_ = true, open25_ = false, loss_ = false;
  bool short_backoff_ = false;
  std::uint64_t subnet_latency_us_ = 100, internet_latency_ms_ = 10, internet_jitter_ms_ = 0;
  policy_kind policy_ = policy_kind::mynetworks;
  bool relayhost_ = false, relayhost_numeric_ = false;
  std::string password_;
  std::vector<ingress_rule> ingress_;
  std::vector<mx_model> mxs_;
  bool nx_domain_ = false, servfail_domain_ = false, ghost_domain_ = false;
  std::vector<client_model> clients_;
  std::vector<send_model> sends_;
  std::vector<window> windows_;
  std::vector<planned_step> steps_;
  std::map<std::string, std::uint64_t> sent_to_;  // recipient → accepted messages
  bool healed_ = true, final_ = true, queue_empty_ = false;
};

}  // namespace

generated_case generate(std::uint64_t seed, const generator_options& options) {
  return builder(seed, options).build();
}

}  // namespace relaylab::sweep
