// Reading <scenario>: its steps (send, dialogue, load, fault, wait), overrides and
// expectations.
#include "harness/topology/reader.hpp"

namespace relaylab::topology::detail {
namespace {

step_kind step_of(const char* name, bool& ok) {
  ok = true;
  const std::string_view n = name;
  if (n == "send") return step_kind::send;
  if (n == "dialogue") return step_kind::dialogue;
  if (n == "load") return step_kind::load;
  if (n == "fault") return step_kind::fault;
  if (n == "wait") return step_kind::wait;
  if (n == "matrix") return step_kind::matrix;
  ok = false;
  return step_kind::wait;
}

}  // namespace

void read_scenario(reader& r, const pugi::xml_node& n, document& doc) {
  r.attrs(n, {"name", "description", "time-max"}, {"name"});
  r.children(n, {"import", "override", "send", "dialogue", "load", "fault", "wait", "matrix",
                 "expect-maillog", "expect-maillog-sequence", "expect-mailbox", "expect-queue",
                 "expect-duration", "expect-load", "expect-matrix-cell"});
  scenario sc;
  sc.name = r.name_attr(n);
  sc.description = r.str(n, "description");
  sc.where = r.at(n);
  if (auto d = r.dur(n, "time-max")) sc.time_max = *d;
  for (const auto& other : doc.scenarios) {
    if (other.name == sc.name) {
      r.error(r.at(n, "name"),
              "scenario '" + sc.name + "' is already defined at " + other.where.to_string());
    }
  }
  for (auto im : n.children("import")) {
    // This scenario's network: the root's imported VPCs replaced by these templates', the
    // imported hosts (and the roles on them) kept by name.
    if (r.imported_vpcs_.empty()) {
      r.error(r.at(im),
              "a <scenario>'s <import> replaces the topology's own <import>; the "
              "topology has none");
      continue;
    }
    auto net = read_import(r, im);
    if (!net) continue;
    sim::network_spec mine = doc.network;
    std::erase_if(mine.vpcs, [&](const auto& v) { return r.imported_vpcs_.count(v.name) > 0; });
    for (auto& v : net->vpcs) mine.vpcs.push_back(std::move(v));
    for (auto& h : mine.hosts) {
      if (!r.imported_hosts_.count(h.name)) continue;
      const auto it = std::find_if(net->hosts.begin(), net->hosts.end(),
                                   [&](const auto& x) { return x.name == h.name; });
      if (it == net->hosts.end()) {
        r.error(r.at(im, "cfn"), "these templates have no instance named '" + h.name +
                                     "' (the topology's <import> has)");
        continue;
      }
      const auto link = h.link;
      h = *it;
      h.link = link;
    }
    sim::world w;
    std::vector<sim::network_error> errors;
    sim::network check(w, mine, errors);
    for (const auto& e : errors) r.error(r.at(im), e.what);
    sc.network = std::move(mine);
  }
  std::set<std::string> step_names;
  std::string last_matrix;  // the name of the latest <matrix> step read
  for (auto o : n.children("override")) {
    r.attrs(o, {"host"}, {"host"});
    r.children(o, {"main-cf", "master-cf", "script"});
    override_spec ov;
    ov.where = r.at(o);
    ov.host = r.str(o, "host");
    const host* h = doc.find_host(ov.host);
    if (!ov.host.empty() && !h) {
      r.error(r.at(o, "host"), "attribute 'host': no <host name=\"" + ov.host + "\">");
    }
    for (auto [tag, dst] : {std::pair<const char*, text_source*>{"main-cf", &ov.main_cf_append},
                            {"master-cf", &ov.master_cf},
                            {"script", &ov.mx_script}}) {
      for (auto t : o.children(tag)) {
        r.attrs(t, {"file"});
        r.children(t, {}, true);
        *dst = r.text(t);
        const bool relay_part = std::strcmp(tag, "script") != 0;
        if (h && relay_part && !h->relay) {
          r.error(r.at(t), "<" + std::string(tag) + "> overrides a relay, but host '" + ov.host +
                               "' runs no <relay>");
        }
        if (h && !relay_part && h->mx.empty()) {
          r.error(r.at(t), "<script> overrides an MX, but host '" + ov.host + "' runs no <mx>");
        }
      }
    }
    sc.overrides.push_back(std::move(ov));
  }
  for (auto e : n.children()) {
    if (e.type() != pugi::node_element) continue;
    if (std::strcmp(e.name(), "override") == 0) continue;
    bool is_step = false;
    const step_kind kind = step_of(e.name(), is_step);
    if (is_step) {
      step s;
      s.kind = kind;
      s.where = r.at(e);
      s.name = r.name_attr(e);
      if (!s.name.empty() && !step_names.insert(s.name).second) {
        r.error(r.at(e, "name"), "step name '" + s.name + "' is used twice in this scenario");
      }
      if (auto d = r.dur(e, "at")) s.at = *d;
      auto need_host = [&](const std::string& h, const char* attr) {
        if (!h.empty() && !doc.find_host(h)) {
          r.error(r.at(e, attr), "attribute '" + std::string(attr) + "': no <host name=\"" + h +
                                     "\"> in this topology");
        }
      };
      switch (kind) {
        case step_kind::send: {
          r.attrs(e,
                  {"name", "at", "host", "server", "port", "from", "to", "subject", "body", "auth",
                   "user", "password", "expect", "expect-reply", "tls", "tls-verify", "expect-tls"},
                  {"host", "server", "from", "to"});
          r.children(e, {});
          auto& m = s.send;
          m.host = r.str(e, "host");
          need_host(m.host, "host");
          m.server = r.address(e, "server", 0);
          m.port = static_cast<std::uint16_t>(r.number(e, "port", 65535).value_or(25));
          m.from = r.str(e, "from");
          m.to = split_words(r.str(e, "to"));
          m.subject = r.str(e, "subject");
          m.body = r.str(e, "body");
          m.auth = r.str(e, "auth");
          if (!m.auth.empty() && m.auth != "plain" && m.auth != "login") {
            r.error(r.at(e, "auth"),
                    "attribute 'auth': expected 'plain' or 'login', got '" + m.auth + "'");
          }
          m.user = r.str(e, "user");
          m.password = r.str(e, "password");
          m.expect = r.str(e, "expect", "sent");
          static const std::set<std::string> outcomes = {"sent", "rejected", "timeout",
                                                         "unreachable", "refused"};
          if (!outcomes.count(m.expect)) {
            r.error(r.at(e, "expect"), "attribute 'expect': expected one of sent, rejected, " +
                                           std::string("timeout, unreachable, refused, got '") +
                                           m.expect + "'");
          }
          m.expect_reply = r.str(e, "expect-reply");
          m.tls = r.keyword(e, "tls", {"none", "starttls", "implicit"});
          if (m.tls == "none") m.tls.clear();
          m.tls_verify = r.keyword(e, "tls-verify", {"strict", "warn", "ignore"}, "strict");
          m.expect_tls = r.keyword(e, "expect-tls", {"yes", "no", "TLSv1.2", "TLSv1.3"});
          break;
        }
        case step_kind::dialogue:
          r.attrs(e, {"name", "at", "host", "server", "port", "file"}, {"host", "server"});
          r.children(e, {}, true);
          s.dialogue_host = r.str(e, "host");
          need_host(s.dialogue_host, "host");
          s.dialogue_server = r.address(e, "server", 0);
          s.dialogue_port = static_cast<std::uint16_t>(r.number(e, "port", 65535).value_or(25));
          s.dialogue = r.text(e);
          if (!s.dialogue.present) {
            r.error(r.at(e), "<dialogue> needs a transcript: inline text or file=\"...\"");
          }
          break;
        case step_kind::load: {
          r.attrs(e,
                  {"name", "at", "host", "group", "server", "port", "messages", "messages-per-host",
                   "concurrency", "from", "to", "user", "password", "auth", "pipelining",
                   "message-bytes", "tls"},
                  {"server"});
          r.children(e, {});
          auto& l = s.load;
          l.host = r.str(e, "host");
          need_host(l.host, "host");
          l.group = r.str(e, "group");
          if (static_cast<bool>(e.attribute("host")) == static_cast<bool>(e.attribute("group"))) {
            r.error(r.at(e),
                    "<load> needs exactly one of 'host' (a host's name) and 'group' (a "
                    "<hosts name> group's)");
          }
          const host_group* g = nullptr;
          if (e.attribute("group")) {
            g = doc.find_group(l.group);
            if (!g) {
              r.error(r.at(e, "group"),
                      "attribute 'group': no <hosts name=\"" + l.group + "\"> in this topology");
            }
          }
          l.server = r.address(e, "server", 0);
          l.port = static_cast<std::uint16_t>(r.number(e, "port", 65535).value_or(25));
          l.messages = r.number(e, "messages", 10000000).value_or(1);
          if (e.attribute("messages-per-host")) {
            if (!e.attribute("group") || e.attribute("messages")) {
              r.error(r.at(e, "messages-per-host"),
                      "attribute 'messages-per-host' needs attribute 'group' and no 'messages'");
            }
            l.per_host = true;
            l.messages = r.number(e, "messages-per-host", 10000000).value_or(1);
            if (g && l.messages * g->count > 10000000) {
              r.error(r.at(e, "messages-per-host"),
                      "attribute 'messages-per-host': " + std::to_string(l.messages) + " x " +
                          std::to_string(g->count) + " hosts is more than 10000000 messages");
            }
          }
          l.concurrency = r.number(e, "concurrency", 10000).value_or(1);
          l.from = r.str(e, "from", "load@example.com");
          l.to = r.str(e, "to", "sink@example.net");
          l.user = r.str(e, "user");
          l.password = r.str(e, "password");
          l.auth = r.str(e, "auth");
          if (!l.auth.empty() && l.auth != "plain" && l.auth != "login") {
            r.error(r.at(e, "auth"),
                    "attribute 'auth': expected 'plain' or 'login', got '" + l.auth + "'");
          }
          if (!l.auth.empty() && l.user.empty()) {
            r.error(r.at(e, "auth"), "attribute 'auth' needs attribute 'user'");
          }
          const std::string pipe = r.str(e, "pipelining", "false");
          if (pipe != "true" && pipe != "false") {
            r.error(r.at(e, "pipelining"),
                    "attribute 'pipelining': expected 'true' or 'false', got '" + pipe + "'");
          }
          l.pipelining = pipe == "true";
          l.message_bytes = r.number(e, "message-bytes", 64u << 20).value_or(0);
          l.tls = r.keyword(e, "tls", {"none", "starttls", "implicit"});
          if (l.tls == "none") l.tls.clear();
          break;
        }
        case step_kind::fault: {
          r.attrs(e,
                  {"name", "at", "kind", "target", "a", "b", "direction", "protocol", "ports",
                   "cidr", "group", "file"},
                  {"kind"});
          r.children(e, {}, true);
          auto& f = s.fault;
          const std::string k = r.str(e, "kind");
          static const std::map<std::string, fault_kind> kinds = {
              {"link-down", fault_kind::link_down},
              {"link-up", fault_kind::link_up},
              {"crash", fault_kind::crash},
              {"restart", fault_kind::restart},
              {"partition", fault_kind::partition},
              {"heal", fault_kind::heal},
              {"sg-add", fault_kind::sg_add},
              {"sg-remove", fault_kind::sg_remove},
              {"dns", fault_kind::dns}};
          if (auto it = kinds.find(k); it != kinds.end()) {
            f.kind = it->second;
          } else {
            r.error(r.at(e, "kind"), "attribute 'kind': expected one of link-down, link-up, " +
                                         std::string("crash, restart, partition, heal, sg-add, ") +
                                         "sg-remove, dns, got '" + k + "'");
          }
          f.target = r.str(e, "target");
          f.a = split_words(r.str(e, "a"));
          f.b = split_words(r.str(e, "b"));
          for (const auto* side : {&f.a, &f.b}) {
            for (const auto& h : *side) {
              if (!doc.find_host(h)) {
                r.error(r.at(e, side == &f.a ? "a" : "b"), "no <host name=\"" + h + "\">");
              }
            }
          }
          const bool needs_target = f.kind != fault_kind::partition && f.kind != fault_kind::heal;
          if (needs_target && f.target.empty()) {
            r.error(r.at(e), "<fault kind=\"" + k + "\"> needs attribute 'target'");
          }
          if (f.kind == fault_kind::partition && (f.a.empty() || f.b.empty())) {
            r.error(r.at(e), "<fault kind=\"partition\"> needs host lists 'a' and 'b'");
          }
          if ((f.kind == fault_kind::crash || f.kind == fault_kind::restart) && !f.target.empty()) {
            need_host(f.target, "target");
          }
          const std::string dir = r.str(e, "direction", "ingress");
          if (dir != "ingress" && dir != "egress") {
            r.error(r.at(e, "direction"), "attribute 'direction': expected 'ingress' or " +
                                              std::string("'egress', got '") + dir + "'");
          }
          f.ingress = dir == "ingress";
          f.rule.protocol = r.protocol(e, "tcp");
          r.ports(e, "ports", f.rule.port_from, f.rule.port_to);
          f.rule.cidr = r.cidr(e, "cidr");
          f.rule.group = r.str(e, "group");
          if ((f.kind == fault_kind::sg_add || f.kind == fault_kind::sg_remove) &&
              f.rule.cidr.empty() == f.rule.group.empty()) {
            r.error(r.at(e), "<fault kind=\"" + k + "\"> needs exactly one of 'cidr' and 'group'");
          }
          if (f.kind == fault_kind::dns) f.records = r.text(e);
          break;
        }
        case step_kind::matrix: {
          r.attrs(e, {"name", "at", "relay", "expect-no"}, {"relay"});
          r.children(e, {});
          s.matrix.relay = r.str(e, "relay");
          const host* h = doc.find_host(s.matrix.relay);
          if (!h) {
            need_host(s.matrix.relay, "relay");
          } else if (!h->relay) {
            r.error(r.at(e, "relay"),
                    "attribute 'relay': host '" + s.matrix.relay + "' runs no <relay>");
          }
          static const std::set<std::string> kinds = {
              "open-relay",       "auth-refused-relay",       "auth-without-tls",
              "bare-lf-accepted", "defer-unauth-destination", "permanent-auth-reject"};
          for (auto& k : split_words(r.str(e, "expect-no"))) {
            if (!kinds.count(k)) {
              r.error(r.at(e, "expect-no"),
                      "attribute 'expect-no': '" + k +
                          "' is not a finding (open-relay, auth-refused-relay, auth-without-tls, "
                          "bare-lf-accepted, defer-unauth-destination, permanent-auth-reject)");
            }
            s.matrix.expect_no.push_back(std::move(k));
          }
          if (s.name.empty()) s.name = "matrix-" + std::to_string(sc.steps.size() + 1);
          last_matrix = s.name;
          break;
        }
        case step_kind::wait: {
          r.attrs(e, {"name", "at", "for", "until"});
          r.children(e, {});
          if (auto d = r.dur(e, "for")) s.wait_for = *d;
          s.wait_until = r.str(e, "until");
          if (!s.wait_until.empty() && s.wait_until != "queue-empty" &&
              s.wait_until != "loads-done") {
            r.error(r.at(e, "until"), "attribute 'until': expected 'queue-empty' or " +
                                          std::string("'loads-done', got '") + s.wait_until + "'");
          }
          if (!e.attribute("for") && s.wait_until.empty()) {
            r.error(r.at(e), "<wait> needs 'for' (a duration) or until=\"queue-empty\" or " +
                                 std::string("until=\"loads-done\""));
          }
          break;
        }
      }
      sc.steps.push_back(std::move(s));
      continue;
    }
    expectation x;
    x.where = r.at(e);
    x.after_step = sc.steps.size();
    const std::string_view en = e.name();
    if (en == "expect-maillog") {
      r.attrs(e, {"pattern", "count", "absent"}, {"pattern"});
      r.children(e, {});
      x.kind = expect_kind::maillog;
      x.patterns.push_back(r.str(e, "pattern"));
      x.count = r.number(e, "count", 1000000);
      x.absent = r.str(e, "absent") == "true";
    } else if (en == "expect-maillog-sequence") {
      r.attrs(e, {});
      r.children(e, {"line"});
      x.kind = expect_kind::maillog_sequence;
      for (auto l : e.children("line")) {
        r.attrs(l, {});
        r.children(l, {}, true);
        x.patterns.push_back(l.text().get());
      }
      if (x.patterns.empty()) {
        r.error(r.at(e), "<expect-maillog-sequence> needs at least one <line>");
      }
    } else if (en == "expect-mailbox") {
      r.attrs(e, {"host", "recipient", "contains", "count", "tls"}, {"host"});
      r.children(e, {});
      x.kind = expect_kind::mailbox;
      x.host = r.str(e, "host");
      if (!x.host.empty() && !doc.find_host(x.host)) {
        r.error(r.at(e, "host"), "attribute 'host': no <host name=\"" + x.host + "\">");
      }
      x.recipient = r.str(e, "recipient");
      x.contains = r.str(e, "contains");
      x.tls = r.keyword(e, "tls", {"yes", "no", "TLSv1.2", "TLSv1.3"});
      x.count = r.number(e, "count", 1000000);
    } else if (en == "expect-queue") {
      r.attrs(e, {"incoming", "active", "deferred"});
      r.children(e, {});
      x.kind = expect_kind::queue;
      x.incoming = r.number(e, "incoming", 1000000);
      x.active = r.number(e, "active", 1000000);
      x.deferred = r.number(e, "deferred", 1000000);
    } else if (en == "expect-duration") {
      r.attrs(e, {"step", "min", "max"}, {"step"});
      r.children(e, {});
      x.kind = expect_kind::duration;
      x.step = r.str(e, "step");
      if (!step_names.count(x.step)) {
        r.error(r.at(e, "step"),
                "attribute 'step': no step named '" + x.step + "' before this expectation");
      }
      x.min = r.dur(e, "min");
      x.max = r.dur(e, "max");
    } else if (en == "expect-load") {
      r.attrs(e, {"step", "accepted", "failed", "accepted-min", "accepted-max"}, {"step"});
      r.children(e, {});
      x.kind = expect_kind::load;
      x.step = r.str(e, "step");
      bool is_load = false;
      for (const auto& st : sc.steps)
        is_load = is_load || (st.name == x.step && st.kind == step_kind::load);
      if (!is_load) {
        r.error(r.at(e, "step"),
                "attribute 'step': no <load> step named '" + x.step + "' before this expectation");
      }
      x.accepted = r.number(e, "accepted", 10000000);
      x.failed = r.number(e, "failed", 10000000);
      x.accepted_min = r.number(e, "accepted-min", 10000000);
      x.accepted_max = r.number(e, "accepted-max", 10000000);
    } else if (en == "expect-matrix-cell") {
      r.attrs(e, {"step", "listener", "client", "auth", "sender", "recipient", "outcome", "stage",
                  "reply", "decided-by"});
      r.children(e, {});
      x.kind = expect_kind::matrix_cell;
      x.step = r.str(e, "step", last_matrix.c_str());
      bool is_matrix = false;
      for (const auto& st : sc.steps)
        is_matrix = is_matrix || (st.name == x.step && st.kind == step_kind::matrix);
      if (!is_matrix) {
        r.error(r.at(e), x.step.empty() ? "<expect-matrix-cell> needs a <matrix> step before it"
                                        : "attribute 'step': no <matrix> step named '" + x.step +
                                              "' before this expectation");
      }
      x.listener = r.str(e, "listener", "*");
      x.client = r.str(e, "client", "*");
      x.auth = r.str(e, "auth", "*");
      x.sender = r.str(e, "sender", "*");
      x.cell_recipient = r.str(e, "recipient", "*");
      x.outcome = r.keyword(e, "outcome", {"accepted", "refused"});
      x.stage = r.keyword(e, "stage", {"connect", "helo", "auth", "mail", "rcpt", "data", "eod"});
      x.reply = r.str(e, "reply");
      x.decided_by = r.str(e, "decided-by");
    } else {
      continue;  // reported by children()
    }
    sc.expectations.push_back(std::move(x));
  }
  doc.scenarios.push_back(std::move(sc));
}

}  // namespace relaylab::topology::detail
