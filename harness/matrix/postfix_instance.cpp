#include "harness/matrix/postfix_instance.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace relaylab::matrix {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

constexpr const char* postfix_bin = "/usr/sbin/postfix";
constexpr const char* postconf_bin = "/usr/sbin/postconf";
constexpr int command_timeout_s = 60;
constexpr int ready_timeout_ms = 20000;
constexpr int stop_timeout_ms = 10000;
constexpr std::size_t config_files_max = 1000;
constexpr std::uintmax_t config_bytes_max = 64u << 20;
constexpr std::size_t output_bytes_max = 1u << 20;
constexpr std::size_t maillog_tail_bytes = 4000;
constexpr int watchdog_round_ms = 500;
constexpr int watchdog_quiet_rounds = 8;  // 4 s without a live master: the start is over
constexpr int watchdog_rounds_max = 60;

/// fork() with a pipe between parent and child (both ends close-on-exec); -1 on failure.
pid_t fork_with_pipe(int (&fds)[2]) {
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  return pid;
}

/// Runs argv (no shell) with stdout and stderr captured; the exit status, or -1 when it could
/// not run or took longer than `timeout_s` (then it is killed).
int run_command(const std::vector<std::string>& argv, std::string& out,
                int timeout_s = command_timeout_s) {
  int fds[2];
  const pid_t pid = fork_with_pipe(fds);
  if (pid < 0) return -1;
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  const auto deadline = clock_type::now() + std::chrono::seconds(timeout_s);
  char buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    if (left.count() <= 0) break;
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    if (out.size() < output_bytes_max) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0) return -1;
    if (clock_type::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// postfix(1) reports errors only to a terminal or syslog: script(1) gives it a terminal.
int run_postfix(const std::string& config_dir, const std::string& what, std::string& out) {
  return run_command(
      {"script", "-qec", std::string(postfix_bin) + " -c " + config_dir + " " + what, "/dev/null"},
      out);
}

/// A loopback port nobody listens on, and the socket bound to it: the caller keeps the socket
/// until it has all its ports, so that two listeners never get the same one. 0 on failure.
int free_loopback_port(int& fd) {
  fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    return ntohs(a.sin_port);
  ::close(fd);
  fd = -1;
  return 0;
}

bool accepts(int port) {
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(s);
  return ok;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

/// Copies `from` into `to`, rewriting the source directory's path in every text file (main.cf,
/// master.cf, SASL and table files) so that Postfix reads the copy.
bool copy_config(const fs::path& from, const fs::path& to, std::string& error) {
  std::error_code ec;
  std::size_t files = 0;
  std::uintmax_t bytes = 0;
  const std::string src = fs::canonical(from, ec).string();
  if (ec) {
    error = from.string() + ": " + ec.message();
    return false;
  }
  for (auto it = fs::recursive_directory_iterator(src, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), src, ec);
    if (ec) break;
    if (it->is_directory()) {
      fs::create_directories(to / rel, ec);
      continue;
    }
    if (!it->is_regular_file()) continue;
    bytes += it->file_size();
    if (++files > config_files_max || bytes > config_bytes_max) {
      error = src + ": more than " + std::to_string(config_files_max) + " files or " +
              std::to_string(config_bytes_max >> 20) + " MiB";
      return false;
    }
    std::string text = read_file(it->path());
    if (text.find('\0') == std::string::npos) text = replace_all(text, src, to.string());
    if (!write_file(to / rel, text)) {
      error = (to / rel).string() + ": cannot write";
      return false;
    }
  }
  if (ec) {
    error = src + ": " + ec.message();
    return false;
  }
  return true;
}

/// Moves every inet service of master.cf to 127.0.0.1:PORT; `ports` maps the old name to it.
bool rewrite_master_cf(const fs::path& file, std::map<std::string, int>& ports,
                       std::string& error) {
  std::istringstream in(read_file(file));
  std::string out, line;
  int lineno = 0;
  std::vector<int> held;  // the chosen ports' sockets, closed once all are chosen
  struct closer {
    std::vector<int>& fds;
    ~closer() {
      for (int fd : fds) ::close(fd);
    }
  } close_held{held};
  while (std::getline(in, line)) {
    ++lineno;
    std::istringstream fields(line);
    std::string service, type;
    if (!line.empty() && line[0] != '#' && !std::isspace(static_cast<unsigned char>(line[0])) &&
        (fields >> service >> type) && type == "inet") {
      int fd = -1;
      const int port = free_loopback_port(fd);
      if (fd >= 0) held.push_back(fd);
      if (port == 0) {
        error = file.string() + ":" + std::to_string(lineno) + ": no free loopback port";
        return false;
      }
      ports[service] = port;
      line = "127.0.0.1:" + std::to_string(port) + line.substr(service.size());
    }
    out += line + "\n";
  }
  return write_file(file, out) || (error = file.string() + ": cannot write", false);
}

bool chown_to(const fs::path& p, const char* user, const char* group_name) {
  const passwd* pw = user ? ::getpwnam(user) : nullptr;
  const struct group* gr = group_name ? ::getgrnam(group_name) : nullptr;
  return ::chown(p.c_str(), pw ? pw->pw_uid : static_cast<uid_t>(-1),
                 gr ? gr->gr_gid : static_cast<gid_t>(-1)) == 0;
}

std::string tail(const std::string& s, std::size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

/// The watchdog: a process that waits on a pipe. A byte means "stopped already, exit"; end of
/// file without it means relaylab died, so it stops Postfix and removes the directory. It is
/// forked twice and in its own session, so that neither a Ctrl-C for relaylab nor a test
/// driver that kills relaylab's process tree (CTest on a timeout) takes it along.
pid_t start_watchdog(const std::string& dir, int& write_fd) {
  int fds[2];
  const pid_t pid = fork_with_pipe(fds);
  if (pid < 0) return -1;
  if (pid == 0) {
    ::close(fds[1]);
    ::setsid();
    if (::fork() != 0) ::_exit(0);  // the watchdog is the grandchild, adopted by init
    // Nothing of relaylab's stays open: a caller reading relaylab's output sees its end.
    const int devnull = ::open("/dev/null", O_RDWR);
    for (int fd : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO})
      if (devnull >= 0) ::dup2(devnull, fd);
    char c = 0;
    ssize_t n;
    do n = ::read(fds[0], &c, 1);
    while (n < 0 && errno == EINTR);
    if (n == 1) ::_exit(0);
    // relaylab may have died while `postfix start` was still bringing the master up: stop
    // until no master has been alive for a while, then remove the directory.
    const fs::path pidfile = fs::path(dir) / "spool/pid/master.pid";
    for (int round = 0, quiet = 0; round < watchdog_rounds_max && quiet < watchdog_quiet_rounds;
         ++round) {
      std::string out;
      run_postfix(dir + "/etc", "stop", out);
      const pid_t master = std::atoi(read_file(pidfile).c_str());
      if (master > 0 && ::kill(master, 0) == 0) {
        quiet = 0;
        if (round > watchdog_quiet_rounds) ::kill(master, SIGKILL);
      } else {
        ++quiet;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(watchdog_round_ms));
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    ::_exit(0);
  }
  ::close(fds[0]);
  write_fd = fds[1];
  ::waitpid(pid, nullptr, 0);  // the intermediate child exits at once
  return pid;
}

}  // namespace

std::unique_ptr<postfix_instance> postfix_instance::start(const config::configuration& cfg,
                                                          std::string& error) {
  if (::access(postfix_bin, X_OK) != 0) {
    error = std::string(postfix_bin) + " is not installed (Debian's postfix package)";
    return nullptr;
  }
  if (::geteuid() != 0) {
    error = "a private Postfix instance needs root (its master process starts as root)";
    return nullptr;
  }
  if (!::getpwnam("postfix") || !::getgrnam("postdrop")) {
    error = "no postfix user or postdrop group (Debian's postfix package sets them up)";
    return nullptr;
  }
  std::unique_ptr<postfix_instance> pf(new postfix_instance);
  std::string out;
  if (run_command({postconf_bin, "-dh", "mail_version"}, out) != 0) {
    error = std::string(postconf_bin) + " -dh mail_version failed: " + out;
    return nullptr;
  }
  pf->version_ = out.substr(0, out.find('\n'));

  char tmpl[] = "/tmp/relaylab-matrix-postfix.XXXXXX";
  if (!::mkdtemp(tmpl)) {
    error = std::string("mkdtemp: ") + std::strerror(errno);
    return nullptr;
  }
  pf->dir_ = tmpl;
  const fs::path dir = pf->dir_, etc = dir / "etc";
  if (start_watchdog(pf->dir_, pf->watchdog_fd_) < 0) {
    error = std::string("cannot start the instance's watchdog: ") + std::strerror(errno);
    return nullptr;
  }
  std::error_code ec;
  fs::permissions(dir,
                  fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                      fs::perms::others_read | fs::perms::others_exec,
                  ec);
  fs::create_directories(etc, ec);
  fs::create_directories(dir / "spool", ec);
  fs::create_directories(dir / "data", ec);
  if (ec || !chown_to(dir / "data", "postfix", nullptr)) {
    error = pf->dir_ + ": cannot create the instance's directories";
    return nullptr;
  }
  if (!copy_config(cfg.config_dir, etc, error) ||
      !rewrite_master_cf(etc / "master.cf", pf->ports_, error))
    return nullptr;
  // smtpd runs as postfix and reads the sasldb itself.
  for (auto it = fs::recursive_directory_iterator(etc, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->path().filename().string().rfind("sasldb", 0) == 0) {
      chown_to(it->path(), nullptr, "postfix");
      fs::permissions(it->path(),
                      fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read, ec);
    }
  }
  const std::string d = pf->dir_;
  out.clear();
  if (run_command({postconf_bin, "-c", etc.string(), "-e", "queue_directory=" + d + "/spool",
                   "data_directory=" + d + "/data", "maillog_file=" + d + "/maillog",
                   "maillog_file_prefixes=" + d, "mail_owner=postfix", "setgid_group=postdrop",
                   "command_directory=/usr/sbin", "daemon_directory=/usr/lib/postfix/sbin",
                   "meta_directory=/etc/postfix", "shlib_directory=/usr/lib/postfix",
                   "smtpd_authorized_xclient_hosts=127.0.0.0/8",
                   "defer_transports=smtp, relay, local, virtual, lmtp, error, retry, discard",
                   "import_environment=MAIL_CONFIG MAIL_DEBUG LANG=C TZ"},
                  out) != 0) {
    error = "postconf -e on the instance's main.cf failed: " + out;
    return nullptr;
  }
  out.clear();
  if (run_postfix(etc.string(), "set-permissions", out) != 0) {
    error = "postfix set-permissions failed: " + out;
    return nullptr;
  }
  out.clear();
  if (run_postfix(etc.string(), "start", out) != 0) {
    error = "postfix start failed: " + out + "\nmaillog:\n" +
            tail(read_file(dir / "maillog"), maillog_tail_bytes);
    return nullptr;
  }
  const auto deadline = clock_type::now() + std::chrono::milliseconds(ready_timeout_ms);
  for (const auto& [name, port] : pf->ports_) {
    while (!accepts(port)) {
      if (clock_type::now() >= deadline) {
        error = "Postfix listener " + name + " (127.0.0.1:" + std::to_string(port) +
                ") did not accept connections within " + std::to_string(ready_timeout_ms) +
                " ms\nmaillog:\n" + tail(read_file(dir / "maillog"), maillog_tail_bytes);
        return nullptr;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return pf;
}

int postfix_instance::port(const std::string& listener) const {
  auto it = ports_.find(listener);
  return it == ports_.end() ? 0 : it->second;
}

void postfix_instance::stop() {
  if (dir_.empty()) return;
  const fs::path etc = fs::path(dir_) / "etc", pidfile = fs::path(dir_) / "spool/pid/master.pid";
  pid_t master = std::atoi(read_file(pidfile).c_str());
  std::string out;
  if (fs::exists(etc / "main.cf")) run_postfix(etc.string(), "stop", out);
  const auto deadline = clock_type::now() + std::chrono::milliseconds(stop_timeout_ms);
  while (master > 0 && ::kill(master, 0) == 0 && clock_type::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (master > 0 && ::kill(master, 0) == 0) ::kill(master, SIGKILL);
  std::error_code ec;
  fs::remove_all(dir_, ec);
  dir_.clear();
}

postfix_instance::~postfix_instance() {
  stop();
  if (watchdog_fd_ >= 0) {
    const char done = 1;
    [[maybe_unused]] ssize_t n = ::write(watchdog_fd_, &done, 1);
    ::close(watchdog_fd_);
  }
}

}  // namespace relaylab::matrix
