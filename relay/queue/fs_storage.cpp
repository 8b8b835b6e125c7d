#include "relay/queue/storage.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace relaylab::queue {
namespace {

std::error_code last_error() { return {errno, std::system_category()}; }

// Owns a file descriptor; close errors on a written file are reported by the callers that care.
class fd_guard {
 public:
  explicit fd_guard(int fd) noexcept : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }
  std::error_code close() noexcept {
    const int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0 ? std::error_code{} : last_error();
  }

 private:
  int fd_;
};

int open_retry(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do fd = ::open(path, flags | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  return fd;
}

// Writes every byte of `pieces`, resuming after short writes and EINTR: at the file position,
// or from `*at` onwards (pwritev, advancing *at) when `at` is given.
std::error_code write_all(int fd, std::span<const std::string_view> pieces,
                          std::uint64_t* at = nullptr) {
  constexpr std::size_t iov_max = 64;
  std::size_t index = 0;
  std::size_t skip = 0;  // bytes of pieces[index] already written
  while (index < pieces.size()) {
    iovec iov[iov_max];
    int count = 0;
    for (std::size_t i = index; i < pieces.size() && count < static_cast<int>(iov_max); ++i) {
      const std::size_t off = i == index ? skip : 0;
      if (pieces[i].size() == off) continue;
      iov[count].iov_base = const_cast<char*>(pieces[i].data() + off);
      iov[count].iov_len = pieces[i].size() - off;
      ++count;
    }
    if (count == 0) return {};
    const ssize_t n = at != nullptr ? ::pwritev(fd, iov, count, static_cast<off_t>(*at))
                                    : ::writev(fd, iov, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      return last_error();
    }
    if (at != nullptr) *at += static_cast<std::uint64_t>(n);
    auto left = static_cast<std::size_t>(n);
    while (index < pieces.size() && left >= pieces[index].size() - skip) {
      left -= pieces[index].size() - skip;
      skip = 0;
      ++index;
    }
    skip += left;
  }
  return {};
}

}  // namespace

fs_storage::fs_storage(std::filesystem::path root) : root_(std::move(root)) {}

std::string fs_storage::path(std::string_view dir, std::string_view name) const {
  std::string p = root_.native();
  p += '/';
  p += dir;
  if (!name.empty()) {
    p += '/';
    p += name;
  }
  return p;
}

fs_storage::open_file::~open_file() {
  if (fd >= 0) ::close(fd);
}

void fs_storage::forget(const std::string& p) {
  std::lock_guard lock(open_mutex_);
  if (open_ && open_path_ == p) {
    open_.reset();
    open_path_.clear();
  }
}

std::error_code fs_storage::write_file(std::string_view dir, std::string_view name,
                                       std::span<const std::string_view> pieces, bool sync) {
  forget(path(dir, name));
  fd_guard fd(open_retry(path(dir, name).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
  if (fd.get() < 0) return last_error();
  if (auto ec = faults_.check(storage_op::write)) return ec;
  if (auto ec = write_all(fd.get(), pieces)) return ec;
  if (sync) {
    if (auto ec = faults_.check(storage_op::fsync)) return ec;
    if (::fsync(fd.get()) != 0) return last_error();
  }
  return fd.close();
}

std::error_code fs_storage::append_file(std::string_view dir, std::string_view name,
                                        std::string_view data, bool sync) {
  forget(path(dir, name));
  fd_guard fd(open_retry(path(dir, name).c_str(), O_WRONLY | O_APPEND));
  if (fd.get() < 0) return last_error();
  if (auto ec = faults_.check(storage_op::write)) return ec;
  const std::string_view piece[] = {data};
  if (auto ec = write_all(fd.get(), piece)) return ec;
  if (sync) {
    if (auto ec = faults_.check(storage_op::fsync)) return ec;
    if (::fdatasync(fd.get()) != 0) return last_error();
  }
  return fd.close();
}

std::error_code fs_storage::write_at(std::string_view dir, std::string_view name,
                                     std::uint64_t offset, std::span<const std::string_view> pieces,
                                     bool sync) {
  const std::string p = path(dir, name);
  std::shared_ptr<open_file> f;
  {
    std::lock_guard lock(open_mutex_);
    if (open_ && open_path_ == p) f = open_;
  }
  if (!f) {
    auto fresh = std::make_shared<open_file>();
    fresh->fd = open_retry(p.c_str(), O_WRONLY);
    if (fresh->fd < 0) return last_error();
    struct stat st {};
    if (::fstat(fresh->fd, &st) != 0) return last_error();
    fresh->size = static_cast<std::uint64_t>(st.st_size);
    f = fresh;
    std::lock_guard lock(open_mutex_);
    open_ = std::move(fresh);
    open_path_ = p;
  }
  if (offset > f->size.load()) return std::make_error_code(std::errc::invalid_argument);
  if (auto ec = faults_.check(storage_op::write)) return ec;
  std::uint64_t end = offset;
  if (auto ec = write_all(f->fd, pieces, &end)) {
    forget(p);  // the size is unknown after a partial write: the next call looks again
    return ec;
  }
  for (std::uint64_t seen = f->size.load();
       end > seen && !f->size.compare_exchange_weak(seen, end);) {
  }
  if (sync) {
    if (auto ec = faults_.check(storage_op::fsync)) return ec;
    if (::fdatasync(f->fd) != 0) {
      const auto ec = last_error();
      forget(p);
      return ec;
    }
  }
  return {};
}

std::error_code fs_storage::rename(std::string_view from_dir, std::string_view from_name,
                                   std::string_view to_dir, std::string_view to_name) {
  if (auto ec = faults_.check(storage_op::rename)) return ec;
  forget(path(from_dir, from_name));
  forget(path(to_dir, to_name));
  if (::rename(path(from_dir, from_name).c_str(), path(to_dir, to_name).c_str()) != 0)
    return last_error();
  return {};
}

std::error_code fs_storage::unlink(std::string_view dir, std::string_view name) {
  if (auto ec = faults_.check(storage_op::unlink)) return ec;
  forget(path(dir, name));
  if (::unlink(path(dir, name).c_str()) != 0) return last_error();
  return {};
}

std::error_code fs_storage::sync_dir(std::string_view dir) {
  if (auto ec = faults_.check(storage_op::sync_dir)) return ec;
  fd_guard fd(open_retry(path(dir, {}).c_str(), O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) return last_error();
  if (::fsync(fd.get()) != 0) return last_error();
  return {};
}

std::error_code fs_storage::list(std::string_view dir, std::vector<std::string>& names,
                                 std::size_t names_max) {
  names.clear();
  if (auto ec = faults_.check(storage_op::list)) return ec;
  DIR* d = ::opendir(path(dir, {}).c_str());
  if (d == nullptr) return last_error();
  std::error_code result;
  for (;;) {
    errno = 0;
    const dirent* e = ::readdir(d);
    if (e == nullptr) {
      if (errno != 0) result = last_error();
      break;
    }
    if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
    if (names.size() == names_max) {
      result = std::make_error_code(std::errc::value_too_large);
      break;
    }
    names.emplace_back(e->d_name);
  }
  ::closedir(d);
  return result;
}

std::error_code fs_storage::read(std::string_view dir, std::string_view name, std::uint64_t offset,
                                 std::size_t bytes_max, std::string& out) {
  out.clear();
  if (auto ec = faults_.check(storage_op::read)) return ec;
  fd_guard fd(open_retry(path(dir, name).c_str(), O_RDONLY));
  if (fd.get() < 0) return last_error();
  out.resize(bytes_max);
  std::size_t got = 0;
  while (got < bytes_max) {
    const ssize_t n =
        ::pread(fd.get(), out.data() + got, bytes_max - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      out.clear();
      return last_error();
    }
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return {};
}

std::error_code fs_storage::read_file(std::string_view dir, std::string_view name,
                                      std::size_t bytes_max, std::string& out) {
  out.clear();
  if (auto ec = faults_.check(storage_op::read)) return ec;
  fd_guard fd(open_retry(path(dir, name).c_str(), O_RDONLY));
  if (fd.get() < 0) return last_error();
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return last_error();
  if (static_cast<std::uint64_t>(st.st_size) > bytes_max)
    return std::make_error_code(std::errc::file_too_large);
  out.resize(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < out.size()) {
    const ssize_t n = ::read(fd.get(), out.data() + got, out.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      out.clear();
      return last_error();
    }
    if (n == 0) break;  // shrank under us: report what is there
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return {};
}

std::error_code fs_storage::free_space(space_info& out) {
  if (auto ec = faults_.check(storage_op::space)) return ec;
  struct statvfs s;
  if (::statvfs(root_.c_str(), &s) != 0) return last_error();
  out.block_bytes = s.f_frsize != 0 ? s.f_frsize : s.f_bsize;
  out.blocks_free = s.f_bavail;
  return {};
}

std::error_code fs_storage::make_dir(std::string_view dir) {
  std::error_code ec;
  const std::filesystem::path p = path(dir, {});
  std::filesystem::create_directories(p, ec);
  if (ec) return ec;
  fd_guard fd(open_retry(p.parent_path().c_str(), O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) return last_error();
  if (::fsync(fd.get()) != 0) return last_error();
  return {};
}

}  // namespace relaylab::queue
