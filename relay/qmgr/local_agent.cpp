#include "relay/qmgr/local_agent.hpp"

#include "relay/qmgr/delivery_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

namespace relaylab::qmgr {

namespace {

std::string errno_text(int e) { return std::generic_category().message(e); }

/// Writes all of `data`; returns 0 or the errno.
int write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const auto n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

int fsync_dir(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  const int rc = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  return rc;
}

std::string address_of_orcpt(std::string_view orcpt, std::string_view fallback) {
  const auto semi = orcpt.find(';');
  if (semi == std::string_view::npos) return std::string(fallback);
  return std::string(orcpt.substr(semi + 1));
}

/// Header lines local adds, then the content with LF line ends.
std::string delivered_text(std::string_view sender, std::string_view original_recipient,
                           std::string_view recipient, std::string_view content, bool mbox) {
  std::string out;
  out.reserve(content.size() + 256);
  out += "Return-Path: <" + std::string(sender) + ">\n";
  out += "X-Original-To: " + std::string(original_recipient) + "\n";
  out += "Delivered-To: " + std::string(recipient) + "\n";
  std::size_t pos = 0;
  while (pos < content.size()) {
    auto end = content.find("\r\n", pos);
    const bool crlf = end != std::string_view::npos;
    if (!crlf) end = content.size();
    const auto line = content.substr(pos, end - pos);
    if (mbox && line.starts_with("From ")) out += '>';
    out += line;
    out += '\n';
    pos = crlf ? end + 2 : end;
  }
  return out;
}

}  // namespace

std::string mbox_entry(std::string_view sender, std::string_view original_recipient,
                       std::string_view recipient, std::string_view content_crlf,
                       std::chrono::system_clock::time_point now) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
  std::string out = "From " +
                    (sender.empty() ? std::string("MAILER-DAEMON") : std::string(sender)) + "  " +
                    date + "\n";
  out += delivered_text(sender, original_recipient, recipient, content_crlf, true);
  out += '\n';
  return out;
}

local_agent::local_agent(local_options options, net::runtime& rt, log::logger* log,
                         log::origin origin)
    : options_(std::move(options)), rt_(rt), log_(log), origin_(std::move(origin)) {}

bool local_agent::known_user(const std::string& address, const std::string& user) const {
  if (options_.local_recipient_maps.empty()) return true;
  for (const auto& t : options_.local_recipient_maps) {
    if (t->find(maps::fold_case(address)) || t->find(user)) return true;
  }
  return false;
}

delivery::recipient_outcome local_agent::deliver_one(const delivery::job& j,
                                                     const delivery::job_recipient& r,
                                                     const std::string& content) {
  delivery::recipient_outcome o;
  o.index = r.index;
  o.relay = "local";
  const auto at = r.address.rfind('@');
  std::string user =
      maps::fold_case(r.address.substr(0, at == std::string::npos ? r.address.size() : at));
  const bool sane =
      !user.empty() && user.front() != '.' && user.find_first_of("/\0", 0, 2) == std::string::npos;
  if (!sane || !known_user(r.address, user)) {
    o.status = delivery::outcome_status::bounced;
    o.dsn = "5.1.1";
    o.reason = "unknown user: \"" + user + "\"";
    return o;
  }
  const auto deferred = [&](const std::string& what, int e) {
    o.status = delivery::outcome_status::deferred;
    o.dsn = "4.3.0";
    o.reason = what + ": " + errno_text(e);
    return o;
  };
  const std::string original = address_of_orcpt(r.orcpt, r.address);
  const auto now = rt_.now();
  const auto& base = options_.mail_spool_directory;
  std::error_code ec;
  if (!options_.home_mailbox.empty() && options_.home_mailbox.back() == '/') {
    // Maildir.
    const auto dir = base / user / options_.home_mailbox;
    for (const char* sub : {"tmp", "new", "cur"})
      std::filesystem::create_directories(dir / sub, ec);
    if (ec) return deferred("cannot create maildir " + dir.string(), ec.value());
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
    const std::string name = std::to_string(secs.count()) + ".R" + j.queue_id + "_" +
                             std::to_string(r.index) + "_" + std::to_string(sequence_++) + "." +
                             options_.myhostname;
    const auto tmp = dir / "tmp" / name;
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return deferred("create maildir file " + tmp.string(), errno);
    int e = write_all(fd, delivered_text(j.sender, original, r.address, content, false));
    if (e == 0 && ::fsync(fd) != 0) e = errno;
    ::close(fd);
    if (e == 0 && ::rename(tmp.c_str(), (dir / "new" / name).c_str()) != 0) e = errno;
    if (e == 0) e = fsync_dir(dir / "new");
    if (e != 0) {
      ::unlink(tmp.c_str());
      return deferred("maildir delivery failed", e);
    }
    o.status = delivery::outcome_status::sent;
    o.dsn = "2.0.0";
    o.reason = "delivered to maildir";
    return o;
  }
  // mbox.
  std::filesystem::path file = base / user;
  if (!options_.home_mailbox.empty()) {
    std::filesystem::create_directories(base / user, ec);
    file = base / user / options_.home_mailbox;
  } else {
    std::filesystem::create_directories(base, ec);
  }
  const int fd = ::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return deferred("cannot open mailbox " + file.string(), errno);
  struct flock lk {};
  lk.l_type = F_WRLCK;
  lk.l_whence = SEEK_SET;
  int e = ::fcntl(fd, F_SETLKW, &lk) == 0 ? 0 : errno;
  struct stat st {};
  if (e == 0 && ::fstat(fd, &st) != 0) e = errno;
  if (e == 0) e = write_all(fd, mbox_entry(j.sender, original, r.address, content, now));
  if (e == 0 && ::fsync(fd) != 0) e = errno;
  if (e != 0) {
    // Never leave half a message behind: the next one would start inside it.
    if (::ftruncate(fd, st.st_size) == 0) (void)::fsync(fd);
    ::close(fd);
    return deferred("cannot update mailbox " + file.string() + " for user " + user, e);
  }
  ::close(fd);
  o.status = delivery::outcome_status::sent;
  o.dsn = "2.0.0";
  o.reason = "delivered to mailbox";
  return o;
}

boost::asio::awaitable<std::vector<delivery::recipient_outcome>> local_agent::deliver(
    const delivery::job& j) {
  std::vector<delivery::recipient_outcome> out;
  out.reserve(j.recipients.size());
  std::string content, chunk;
  std::error_code ec;
  if (j.size > options_.content_bytes_max) {
    ec = std::make_error_code(std::errc::file_too_large);
  } else {
    content.reserve(static_cast<std::size_t>(j.size));
    for (std::uint64_t off = 0; off < j.size && !ec;) {
      ec = j.read_content(off, 1 << 16, chunk);
      if (!ec && chunk.empty()) ec = std::make_error_code(std::errc::io_error);
      off += chunk.size();
      content += chunk;
    }
  }
  for (const auto& r : j.recipients) {
    delivery::recipient_outcome o;
    if (ec) {
      o.index = r.index;
      o.status = delivery::outcome_status::deferred;
      o.dsn = "4.3.0";
      o.relay = "local";
      o.reason = "error reading queue file: " + ec.message();
    } else {
      o = deliver_one(j, r, content);
    }
    if (log_ != nullptr) {
      const auto now = rt_.now();
      log_->info(origin_, delivery_line(j, r, o, j.handed_over, now));
    }
    out.push_back(std::move(o));
  }
  co_return out;
}

}  // namespace relaylab::qmgr
