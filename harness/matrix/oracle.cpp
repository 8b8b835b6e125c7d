// --oracle postfix: the same cells played against a private Postfix (postfix_instance.hpp) over
// loopback TCP, several at once. The client address and name come from XCLIENT, sent right
// after the greeting; Postfix answers it with its greeting, or with the client restrictions'
// reply when smtpd_delay_reject = no, so that reply is the connect stage. Postfix checks the
// real loopback peer before XCLIENT too: when that refuses the connection, the greeting is the
// connect stage and the client's identity in it is the loopback's, so it is compared masked.
#include "harness/matrix/matrix.hpp"
#include "harness/matrix/postfix_instance.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

namespace relaylab::matrix {
namespace {

constexpr int reply_timeout_ms = 10000;
constexpr std::size_t reply_bytes_max = 1u << 16;
constexpr unsigned jobs_max = 64;

/// A blocking loopback SMTP client with a deadline per reply.
class tcp_exchange final : public exchange {
 public:
  tcp_exchange(int port, const cell& c) : cell_(c) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (fd_ >= 0) {
      int one = 1;
      ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
  }
  ~tcp_exchange() override {
    if (fd_ >= 0) ::close(fd_);
  }

  /// true when the real loopback connection itself was refused before XCLIENT.
  bool refused_before_xclient() const { return refused_before_xclient_; }

  std::string greeting() override {
    if (fd_ < 0) return "[connect failed]";
    std::string g = read_reply();
    if (reply_code(g) / 100 != 2) {
      refused_before_xclient_ = true;
      return g;
    }
    std::string addr = cell_.client_addr;
    if (addr.find(':') != std::string::npos) addr = "IPV6:" + addr;
    // The matrix's "unknown" is a name that could not be found; XCLIENT says so with
    // [UNAVAILABLE] (NAME=unknown would be a verified host called "unknown").
    const std::string name =
        cell_.client_name == "unknown" ? std::string("[UNAVAILABLE]") : cell_.client_name;
    // NAME leaves the reverse name (what reject_unknown_reverse_client_hostname and
    // check_reverse_client_hostname_access look at) as the loopback peer's: REVERSE_NAME too.
    return send("XCLIENT ADDR=" + addr + " NAME=" + name + " REVERSE_NAME=" + name + "\r\n");
  }

  std::string send(std::string_view bytes) override {
    if (fd_ < 0) return "[not connected]";
    for (std::size_t off = 0; off < bytes.size();) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return "[connection closed]";
      off += static_cast<std::size_t>(n);
    }
    if (bytes.substr(0, 4) == "QUIT") return {};
    return read_reply();
  }

 private:
  /// One complete reply, "[no reply within N ms]" or "[connection closed]" when there is none.
  std::string read_reply() {
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(reply_timeout_ms);
    for (;;) {
      if (auto end = complete(); end != std::string::npos) {
        std::string r = buf_.substr(0, end);
        buf_.erase(0, end);
        return r;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        return "[no reply within " + std::to_string(reply_timeout_ms) + " ms]";
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0 || buf_.size() > reply_bytes_max) return "[connection closed]";
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// The end of the first complete reply in buf_ (after its last line's CRLF), or npos.
  std::size_t complete() const {
    for (std::size_t start = 0; start < buf_.size();) {
      const auto eol = buf_.find("\r\n", start);
      if (eol == std::string::npos) return std::string::npos;
      if (eol - start >= 4 && buf_[start + 3] == ' ') return eol + 2;
      if (eol - start == 3) return eol + 2;
      start = eol + 2;
    }
    return std::string::npos;
  }

  const cell& cell_;
  int fd_ = -1;
  std::string buf_;
  bool refused_before_xclient_ = false;
};

/// "<name[addr]>" and "for name[addr]" as one token, for replies about the loopback peer.
std::string mask_client(const std::string& reply) {
  static const std::regex client(R"([^\s<>\[\]]+\[[0-9A-Fa-f:.]+\])");
  return std::regex_replace(reply, client, "CLIENT");
}

std::vector<std::string> replies(const cell& c, bool masked) {
  std::vector<std::string> out;
  for (const auto& s : c.stages) {
    std::string r = normalize_reply(s.reply);
    if (masked && s.stage == "connect") r = mask_client(r);
    out.push_back(s.stage + " " + r);
  }
  return out;
}

}  // namespace

std::vector<std::string> oracle_caveats(const config::configuration& cfg) {
  std::vector<std::string> out;
  for (const auto& svc : cfg.services) {
    if (svc.type != "inet") continue;
    const auto p = cfg.main.with_overrides(svc.overrides);
    std::vector<std::string> lists{"smtpd_client_restrictions",     "smtpd_helo_restrictions",
                                   "smtpd_sender_restrictions",     "smtpd_relay_restrictions",
                                   "smtpd_recipient_restrictions",  "smtpd_data_restrictions",
                                   "smtpd_end_of_data_restrictions"};
    for (const auto& cls : p.get_list("smtpd_restriction_classes")) lists.push_back(cls);
    for (const auto& l : lists) {
      const auto tokens = p.get_list(l);
      if (std::find(tokens.begin(), tokens.end(), "permit_inet_interfaces") == tokens.end())
        continue;
      out.push_back(svc.name + ": " + l +
                    ": permit_inet_interfaces: Postfix matches the loopback peer, not the "
                    "XCLIENT address, so cells it decides for other clients differ");
    }
  }
  return out;
}

std::optional<oracle_result> run_oracle(const postfix_instance& pf, const table& relaylab,
                                        const axes& a, unsigned jobs,
                                        std::vector<std::string>& errors) {
  oracle_result r;
  r.postfix.config_dir = "Postfix " + pf.version() + ", a private instance on loopback";
  r.postfix.notes = relaylab.notes;
  r.postfix.listener_params = relaylab.listener_params;
  r.postfix.cells.resize(relaylab.cells.size());
  r.masked.assign(relaylab.cells.size(), 0);
  std::map<std::string, auth_mode> modes{{to_string(auth_mode::none), auth_mode::none},
                                         {to_string(auth_mode::success), auth_mode::success},
                                         {to_string(auth_mode::failure), auth_mode::failure}};
  for (const auto& c : relaylab.cells) {
    if (pf.port(c.listener) == 0) {
      errors.push_back("listener " + c.listener + " has no port in the Postfix instance");
      return std::nullopt;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i; (i = next.fetch_add(1)) < relaylab.cells.size();) {
      const cell& mine = relaylab.cells[i];
      cell theirs = mine;
      theirs.stages.clear();
      theirs.auth_offered = theirs.authenticated = false;
      if (!mine.stages.empty() && mine.stages.front().reply == tls_wrapper_not_driven) {
        theirs.stages = mine.stages;  // not driven on either side
      } else {
        tcp_exchange x(pf.port(mine.listener), mine);
        play(x, a, modes.at(mine.auth), theirs);
        r.masked[i] = x.refused_before_xclient();
      }
      r.postfix.cells[i] = std::move(theirs);
    }
  };
  jobs = std::clamp(jobs, 1u, jobs_max);
  std::vector<std::thread> pool;
  for (unsigned j = 0; j < jobs; ++j) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (std::size_t i = 0; i < relaylab.cells.size(); ++i) {
    if (replies(relaylab.cells[i], r.masked[i] != 0) !=
        replies(r.postfix.cells[i], r.masked[i] != 0))
      r.differences.push_back({relaylab.cells[i].key(), &relaylab.cells[i], &r.postfix.cells[i]});
  }
  return r;
}

}  // namespace relaylab::matrix
