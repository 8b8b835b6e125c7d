// One dialogue per cell, through the relay's real smtpd service (relay/smtpd) and sans-IO server
// session (relay/smtp), in process: the code that serves TCP clients, fed bytes and virtual
// time. The client address is the connection's own (no XCLIENT needed in process). Mail that is
// accepted goes to an in-memory spool and is never delivered.
#include "harness/matrix/matrix.hpp"

#include "relay/log/log.hpp"
#include "relay/queue/spool.hpp"
#include "relay/queue/storage.hpp"
#include "relay/sasl/sasl.hpp"
#include "relay/smtp/base64.hpp"
#include "relay/smtpd/sasl_setup.hpp"
#include "relay/smtpd/smtpd.hpp"

#include <atomic>
#include <cctype>
#include <chrono>
#include <regex>
#include <thread>

namespace relaylab::matrix {
namespace {

constexpr int advance_rounds_max = 64;   // error-sleep delays released per command
constexpr int commit_waits_max = 20000;  // 1 ms polls for an end-of-data commit (20 s)
constexpr const char* client_helo = "client.matrix.example";
constexpr const char* message_body =
    "Subject: relaylab matrix\r\nFrom: <matrix@client.matrix.example>\r\n\r\nmatrix cell\r\n.\r\n";

std::chrono::system_clock::time_point fixed_time() {
  return std::chrono::system_clock::time_point(std::chrono::seconds(1795841628));
}

/// True once `out` ends in a complete (possibly multi-line) reply.
bool complete_reply(std::string_view out) {
  if (out.size() < 2 || out.substr(out.size() - 2) != "\r\n") return false;
  auto start = out.rfind("\r\n", out.size() - 3);
  std::string_view last = out.substr(start == std::string_view::npos ? 0 : start + 2);
  return last.size() >= 5 && last[3] == ' ';
}

std::string first_line(std::string_view reply) {
  auto end = reply.find("\r\n");
  return std::string(reply.substr(0, end));
}

class dialogue {
 public:
  dialogue(smtpd::connection& c, std::atomic<bool>& notified) : c_(c), notified_(notified) {}

  /// The reply to what was sent last (the greeting when nothing was sent).
  std::string reply() {
    auto& s = c_.session();
    for (int i = 0; i < commit_waits_max; ++i) {
      out_.append(s.output());
      s.consume_output(s.output().size());
      if (complete_reply(out_)) break;
      if (notified_.exchange(false)) {
        c_.run_pending(now_);
        continue;
      }
      if (s.closing()) break;
      if (auto d = s.deadline(); d && i<advance_rounds_max&& * d> now_) {
        now_ = *d;
        s.advance(now_);
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::string r = std::move(out_);
    out_.clear();
    return r;
  }

  std::string send(std::string_view line) {
    now_ += std::chrono::milliseconds(1);
    c_.session().receive(std::span<const char>(line.data(), line.size()), now_);
    return reply();
  }

  smtp::timestamp now() const { return now_; }

 private:
  smtpd::connection& c_;
  std::atomic<bool>& notified_;
  std::string out_;
  smtp::timestamp now_{0};
};

/// The in-process side: the relay's smtpd connection, fed bytes and virtual time.
class in_process final : public exchange {
 public:
  explicit in_process(smtpd::connection& c, std::atomic<bool>& notified) : c_(c), d_(c, notified) {}
  std::string greeting() override { return d_.reply(); }
  std::string send(std::string_view line) override { return d_.send(line); }
  std::string decider() override { return c_.take_policy_decider(); }

 private:
  smtpd::connection& c_;
  dialogue d_;
};

void drive_cell(smtpd::service& svc, const std::string& myhostname, const axes& a, cell& c,
                const sample& client, auth_mode auth) {
  std::atomic<bool> notified{false};
  smtpd::endpoint remote{client.value, "40000", client.name};
  smtpd::endpoint local{"127.0.0.1", std::to_string(svc.definition().listen_port), myhostname};
  auto conn = svc.open(remote, local, smtp::timestamp{0}, [&notified] { notified = true; });
  if (conn->session().tls_wanted()) {
    c.stages.push_back({"connect", std::string(tls_wrapper_not_driven), ""});
    return;
  }
  in_process x(*conn, notified);
  play(x, a, auth, c);
}

}  // namespace

void play(exchange& x, const axes& a, auth_mode auth, cell& c) {
  auto stage = [&](const char* name, const std::string& full) {
    c.stages.push_back({name, first_line(full), x.decider()});
    return reply_code(c.stages.back().reply);
  };
  if (stage("connect", x.greeting()) / 100 != 2) return;
  std::string ehlo = x.send(std::string("EHLO ") + client_helo + "\r\n");
  c.auth_offered =
      ehlo.find("250-AUTH ") != std::string::npos || ehlo.find("250 AUTH ") != std::string::npos;
  if (stage("helo", ehlo) / 100 != 2) return;
  if (auth != auth_mode::none) {
    std::string user = auth == auth_mode::success ? a.auth->user : "matrix-nobody";
    std::string password = auth == auth_mode::success ? a.auth->password : "wrong-password";
    std::string plain = std::string(1, '\0') + user + std::string(1, '\0') + password;
    c.authenticated =
        stage("auth", x.send("AUTH PLAIN " + smtp::base64_encode(plain) + "\r\n")) == 235;
  }
  if (stage("mail", x.send("MAIL FROM:<" + c.sender_addr + ">\r\n")) / 100 != 2) return;
  if (stage("rcpt", x.send("RCPT TO:<" + c.recipient_addr + ">\r\n")) / 100 != 2) return;
  if (stage("data", x.send("DATA\r\n")) != 354) return;
  stage("eod", x.send(message_body));
  x.send("QUIT\r\n");
}

const stage_result& cell::decisive() const {
  for (const auto& s : stages) {
    int code = reply_code(s.reply);
    if (code / 100 == 4 || code / 100 == 5 || code == 0) {
      if (s.stage != "auth") return s;  // a failed AUTH leaves the client unauthenticated
    }
  }
  return stages.back();
}

bool cell::accepted() const {
  return !stages.empty() && stages.back().stage == "eod" &&
         reply_code(stages.back().reply) / 100 == 2;
}

std::string cell::decided_by() const {
  if (stages.empty()) return {};
  if (!accepted()) return decisive().decider;
  for (auto it = stages.rbegin(); it != stages.rend(); ++it)
    if (!it->decider.empty()) return it->decider;
  return {};
}

int reply_code(const std::string& reply) {
  if (reply.size() < 3 || !std::isdigit(static_cast<unsigned char>(reply[0]))) return 0;
  return std::atoi(reply.substr(0, 3).c_str());
}

std::string cell::key() const {
  return listener + "|" + client + "|" + auth + "|" + sender + "|" + recipient;
}

std::string normalize_reply(const std::string& reply) {
  static const std::regex queue_id("queued as [0-9A-Za-z]+");
  return std::regex_replace(reply, queue_id, "queued as QUEUEID");
}

std::optional<table> run(const config::configuration& cfg, const axes& a,
                         std::vector<std::string>& errors, std::size_t cells_max) {
  table t;
  t.config_dir = cfg.config_dir.string();
  t.notes = a.notes;
  std::shared_ptr<sasl::server_library> sasl;
  if (smtpd::sasl_wanted(cfg)) {
    std::string error;
    sasl = smtpd::init_sasl(cfg, error);
    if (!sasl) {
      errors.push_back(error);
      return std::nullopt;
    }
  }
  log::logger logger({cfg.main.get("myhostname"), fixed_time});
  queue::mem_storage storage;
  queue::spool_options so;
  so.mode = queue::commit_mode::immediate;
  std::uint64_t n = 0;
  queue::spool spool(
      storage, fixed_time, [n]() mutable { return ++n; }, so);
  if (auto ec = spool.open()) {
    errors.push_back("in-memory spool: " + ec.message());
    return std::nullopt;
  }
  const std::string myhostname = cfg.main.get("myhostname");
  for (const auto& listener : a.listeners) {
    smtpd::dependencies deps;
    deps.log = &logger;
    deps.spool = &spool;
    deps.sasl = sasl;
    deps.wall_clock = fixed_time;
    deps.pid = 1;
    std::vector<config::diagnostic> diags;
    auto svc = smtpd::service::create(cfg, listener, deps, diags);
    for (const auto& d : diags)
      if (d.level == config::diagnostic::severity::fatal) errors.push_back(d.to_string());
    if (!svc || !errors.empty()) return std::nullopt;
    const auto params = cfg.main.with_overrides(listener.overrides);
    for (const char* p : {"smtpd_forbid_bare_newline", "smtpd_tls_security_level",
                          "smtpd_tls_auth_only", "smtpd_sasl_auth_enable", "inet_interfaces"})
      t.listener_params[listener.name + ":" + p] = params.get(p);
    for (const auto& client : a.clients) {
      for (auto auth : a.auths) {
        for (const auto& sender : a.senders) {
          for (const auto& rcpt : a.recipients) {
            if (t.cells.size() >= cells_max) {
              errors.push_back("more than " + std::to_string(cells_max) + " cells");
              return std::nullopt;
            }
            cell c;
            c.listener = listener.name;
            c.client = client.label;
            c.auth = to_string(auth);
            c.sender = sender.label;
            c.recipient = rcpt.label;
            c.client_addr = client.value;
            c.client_name = client.name;
            c.sender_addr = sender.value;
            c.recipient_addr = rcpt.value;
            drive_cell(*svc, myhostname, a, c, client, auth);
            t.cells.push_back(std::move(c));
          }
        }
      }
    }
  }
  return t;
}

}  // namespace relaylab::matrix
