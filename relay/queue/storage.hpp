// Where queue files live: a small file-system interface with two implementations.
//
// - fs_storage: a real directory tree (queue_directory/<dir>/<name>).
// - mem_storage: in memory, with an explicit model of durability so a simulated host crash
//   loses exactly what was never synced (see mem_storage::crash()).
//
// Durability rules every caller relies on (POSIX semantics, stricter than ext4's journal):
// - file data is durable only after write_file/append_file with `sync = true` returned;
// - a directory entry (create, rename, unlink) is durable only after sync_dir() of that
//   directory returned; a rename between two directories needs both synced.
//
// Both implementations carry a fault_injector so tests can fail the Nth operation. Errors are
// system error codes (std::errc::io_error, no_space_on_device, no_such_file_or_directory ...).
// Thread safety: every operation may be called from any thread concurrently.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace relaylab::queue {

/// Operation kinds, as bits, for fault injection and counters.
enum class storage_op : unsigned {
  write = 1u << 0,  // data written by write_file / append_file
  fsync = 1u << 1,  // the fsync/fdatasync of write_file / append_file with sync = true
  rename = 1u << 2,
  unlink = 1u << 3,
  sync_dir = 1u << 4,
  read = 1u << 5,
  list = 1u << 6,
  space = 1u << 7,
};
inline constexpr unsigned storage_op_all = 0xffu;
inline constexpr unsigned operator|(storage_op a, storage_op b) noexcept {
  return static_cast<unsigned>(a) | static_cast<unsigned>(b);
}

/// Fails storage operations on request, Beast fail_count style: the operations selected by
/// `ops_mask` are counted from 0, and operation number `n` fails with `error` (and every later
/// one too when `sticky`). Tests loop n = 0, 1, 2 ... until the operation under test succeeds.
class fault_injector {
 public:
  /// Arms the injector; replaces any earlier plan and resets the counter.
  void fail_at(std::uint64_t n, std::error_code error, unsigned ops_mask = storage_op_all,
               bool sticky = true);
  void disarm();
  /// Called by storages before each operation; returns the injected error or {}.
  std::error_code check(storage_op op);
  /// Operations counted per kind since construction (for fsync accounting in tests).
  std::uint64_t count(storage_op op) const;
  void reset_counts();

 private:
  mutable std::mutex mutex_;
  bool armed_ = false;
  bool sticky_ = true;
  bool fired_ = false;
  std::uint64_t n_ = 0;
  std::uint64_t seen_ = 0;
  unsigned mask_ = 0;
  std::error_code error_;
  std::uint64_t counts_[8] = {};
};

/// Free space as statvfs reports it to an unprivileged process (f_bavail, f_frsize).
struct space_info {
  std::uint64_t block_bytes = 4096;
  std::uint64_t blocks_free = 0;
};

class storage {
 public:
  virtual ~storage() = default;

  /// Creates or truncates dir/name and writes the concatenation of `pieces` (one gather write,
  /// no copy). With `sync`, fsyncs the file before returning. The directory entry is not
  /// durable until sync_dir(dir). Errors: injected faults, any open/write/fsync errno; on error
  /// the file may exist with partial content.
  virtual std::error_code write_file(std::string_view dir, std::string_view name,
                                     std::span<const std::string_view> pieces, bool sync) = 0;
  /// Appends `data` to an existing file; with `sync`, fdatasyncs it. Errors: as write_file,
  /// no_such_file_or_directory when the file does not exist.
  virtual std::error_code append_file(std::string_view dir, std::string_view name,
                                      std::string_view data, bool sync) = 0;
  /// Writes the concatenation of `pieces` at `offset` of an existing file (offset at most its
  /// size), overwriting and, past the end, extending it; with `sync`, fdatasyncs it. Over
  /// blocks that were already written and synced, that fdatasync needs no metadata write
  /// (the journal's preallocated segments rely on it). Errors: as append_file;
  /// invalid_argument when `offset` is past the end.
  virtual std::error_code write_at(std::string_view dir, std::string_view name,
                                   std::uint64_t offset, std::span<const std::string_view> pieces,
                                   bool sync) = 0;
  /// Renames within the storage; replaces an existing target. Errors: no_such_file_or_directory.
  virtual std::error_code rename(std::string_view from_dir, std::string_view from_name,
                                 std::string_view to_dir, std::string_view to_name) = 0;
  virtual std::error_code unlink(std::string_view dir, std::string_view name) = 0;
  /// Makes every entry change in `dir` so far durable.
  virtual std::error_code sync_dir(std::string_view dir) = 0;
  /// Names in `dir` (unsorted), at most `names_max`; more is an error (value_too_large).
  virtual std::error_code list(std::string_view dir, std::vector<std::string>& names,
                               std::size_t names_max) = 0;
  /// Reads up to `bytes_max` bytes from `offset` into `out` (replacing it); fewer at EOF.
  virtual std::error_code read(std::string_view dir, std::string_view name, std::uint64_t offset,
                               std::size_t bytes_max, std::string& out) = 0;
  /// Reads a whole file; files larger than `bytes_max` fail with file_too_large.
  virtual std::error_code read_file(std::string_view dir, std::string_view name,
                                    std::size_t bytes_max, std::string& out) = 0;
  virtual std::error_code free_space(space_info& out) = 0;
  /// Creates the directory if missing (durably: the parent is synced).
  virtual std::error_code make_dir(std::string_view dir) = 0;

  fault_injector& faults() noexcept { return faults_; }

 protected:
  fault_injector faults_;
};

/// Queue files under a real directory. Uses O_CLOEXEC, 0600 files, fsync for new files and
/// fdatasync for appends, statvfs for free_space. The file last given to write_at stays open
/// (the journal segment being filled: no open/fstat/close per group commit); every other
/// operation on that name through this storage closes it first. A file removed or replaced
/// behind the storage's back is written through the old descriptor until then.
class fs_storage final : public storage {
 public:
  explicit fs_storage(std::filesystem::path root);
  const std::filesystem::path& root() const noexcept { return root_; }

  std::error_code write_file(std::string_view dir, std::string_view name,
                             std::span<const std::string_view> pieces, bool sync) override;
  std::error_code append_file(std::string_view dir, std::string_view name, std::string_view data,
                              bool sync) override;
  std::error_code write_at(std::string_view dir, std::string_view name, std::uint64_t offset,
                           std::span<const std::string_view> pieces, bool sync) override;
  std::error_code rename(std::string_view from_dir, std::string_view from_name,
                         std::string_view to_dir, std::string_view to_name) override;
  std::error_code unlink(std::string_view dir, std::string_view name) override;
  std::error_code sync_dir(std::string_view dir) override;
  std::error_code list(std::string_view dir, std::vector<std::string>& names,
                       std::size_t names_max) override;
  std::error_code read(std::string_view dir, std::string_view name, std::uint64_t offset,
                       std::size_t bytes_max, std::string& out) override;
  std::error_code read_file(std::string_view dir, std::string_view name, std::size_t bytes_max,
                            std::string& out) override;
  std::error_code free_space(space_info& out) override;
  std::error_code make_dir(std::string_view dir) override;

 private:
  struct open_file {
    int fd = -1;
    std::atomic<std::uint64_t> size{0};  // the file's size as our writes left it
    ~open_file();
  };
  std::string path(std::string_view dir, std::string_view name) const;
  void forget(const std::string& path);
  std::filesystem::path root_;
  std::mutex open_mutex_;
  std::string open_path_;
  std::shared_ptr<open_file> open_;  // an in-flight write_at keeps its own reference
};

/// In-memory storage with a durability model. Each file is an inode with `current` and
/// `durable` contents; each directory has `current` and `durable` name→inode maps. A synced
/// write/append copies current to durable content; sync_dir copies the directory's current
/// entries to durable ones. crash() throws away everything not durable: contents revert to the
/// durable ones, directories to their durable entries, unreachable inodes disappear.
class mem_storage final : public storage {
 public:
  mem_storage();
  ~mem_storage() override;

  std::error_code write_file(std::string_view dir, std::string_view name,
                             std::span<const std::string_view> pieces, bool sync) override;
  std::error_code append_file(std::string_view dir, std::string_view name, std::string_view data,
                              bool sync) override;
  std::error_code write_at(std::string_view dir, std::string_view name, std::uint64_t offset,
                           std::span<const std::string_view> pieces, bool sync) override;
  std::error_code rename(std::string_view from_dir, std::string_view from_name,
                         std::string_view to_dir, std::string_view to_name) override;
  std::error_code unlink(std::string_view dir, std::string_view name) override;
  std::error_code sync_dir(std::string_view dir) override;
  std::error_code list(std::string_view dir, std::vector<std::string>& names,
                       std::size_t names_max) override;
  std::error_code read(std::string_view dir, std::string_view name, std::uint64_t offset,
                       std::size_t bytes_max, std::string& out) override;
  std::error_code read_file(std::string_view dir, std::string_view name, std::size_t bytes_max,
                            std::string& out) override;
  std::error_code free_space(space_info& out) override;
  std::error_code make_dir(std::string_view dir) override;

  /// Simulated host crash: drops every write, append, create, rename and unlink that was not
  /// made durable. Also disarms the fault injector (a rebooted host has a healthy disk).
  void crash();
  /// Free space reported by free_space(); writes do not consume it (tests set it directly).
  void set_space(space_info s);
  /// Test helpers acting on current state (not fault-injected, not counted): put a file and
  /// make it and its entry durable; flip bits of one byte; truncate.
  void put_durable(std::string_view dir, std::string_view name, std::string data);
  bool corrupt_byte(std::string_view dir, std::string_view name, std::size_t offset);
  bool truncate(std::string_view dir, std::string_view name, std::size_t size);
  bool exists(std::string_view dir, std::string_view name) const;

 private:
  struct inode {
    std::string current;
    std::string durable;
  };
  struct directory {
    std::map<std::string, std::shared_ptr<inode>, std::less<>> current;
    std::map<std::string, std::shared_ptr<inode>, std::less<>> durable;
    bool durable_exists = false;
  };
  directory* find_dir(std::string_view dir);
  std::shared_ptr<inode> find_file(std::string_view dir, std::string_view name);

  mutable std::mutex mutex_;
  std::map<std::string, directory, std::less<>> dirs_;
  space_info space_{4096, 1u << 20};
};

}  // namespace relaylab::queue
