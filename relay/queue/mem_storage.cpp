#include "relay/queue/storage.hpp"

#include <algorithm>
#include <bit>

namespace relaylab::queue {

void fault_injector::fail_at(std::uint64_t n, std::error_code error, unsigned ops_mask,
                             bool sticky) {
  std::lock_guard lock(mutex_);
  armed_ = true;
  sticky_ = sticky;
  fired_ = false;
  n_ = n;
  seen_ = 0;
  mask_ = ops_mask;
  error_ = error;
}

void fault_injector::disarm() {
  std::lock_guard lock(mutex_);
  armed_ = false;
}

std::error_code fault_injector::check(storage_op op) {
  std::lock_guard lock(mutex_);
  const auto bits = static_cast<unsigned>(op);
  ++counts_[std::countr_zero(bits)];
  if (!armed_ || (bits & mask_) == 0) return {};
  if (fired_) return sticky_ ? error_ : std::error_code{};
  if (seen_++ < n_) return {};
  fired_ = true;
  return error_;
}

std::uint64_t fault_injector::count(storage_op op) const {
  std::lock_guard lock(mutex_);
  return counts_[std::countr_zero(static_cast<unsigned>(op))];
}

void fault_injector::reset_counts() {
  std::lock_guard lock(mutex_);
  std::fill(std::begin(counts_), std::end(counts_), 0);
}

namespace {
std::error_code no_entry() { return std::make_error_code(std::errc::no_such_file_or_directory); }
}  // namespace

mem_storage::mem_storage() = default;
mem_storage::~mem_storage() = default;

mem_storage::directory* mem_storage::find_dir(std::string_view dir) {
  auto it = dirs_.find(dir);
  return it == dirs_.end() ? nullptr : &it->second;
}

std::shared_ptr<mem_storage::inode> mem_storage::find_file(std::string_view dir,
                                                           std::string_view name) {
  auto* d = find_dir(dir);
  if (d == nullptr) return nullptr;
  auto it = d->current.find(name);
  return it == d->current.end() ? nullptr : it->second;
}

std::error_code mem_storage::write_file(std::string_view dir, std::string_view name,
                                        std::span<const std::string_view> pieces, bool sync) {
  std::lock_guard lock(mutex_);
  auto* d = find_dir(dir);
  if (d == nullptr) return no_entry();
  // open(O_CREAT|O_TRUNC) happens before the write can fail, as on a real file system.
  auto& slot = d->current[std::string(name)];
  if (!slot) slot = std::make_shared<inode>();
  slot->current.clear();
  if (auto ec = faults_.check(storage_op::write)) return ec;
  std::size_t total = 0;
  for (auto p : pieces) total += p.size();
  slot->current.reserve(total);
  for (auto p : pieces) slot->current.append(p);
  if (!sync) return {};
  if (auto ec = faults_.check(storage_op::fsync)) return ec;
  slot->durable = slot->current;
  return {};
}

std::error_code mem_storage::append_file(std::string_view dir, std::string_view name,
                                         std::string_view data, bool sync) {
  std::lock_guard lock(mutex_);
  auto file = find_file(dir, name);
  if (!file) return no_entry();
  if (auto ec = faults_.check(storage_op::write)) return ec;
  file->current.append(data);
  if (!sync) return {};
  if (auto ec = faults_.check(storage_op::fsync)) return ec;
  file->durable = file->current;
  return {};
}

std::error_code mem_storage::write_at(std::string_view dir, std::string_view name,
                                      std::uint64_t offset,
                                      std::span<const std::string_view> pieces, bool sync) {
  std::lock_guard lock(mutex_);
  auto file = find_file(dir, name);
  if (!file) return no_entry();
  if (offset > file->current.size()) return std::make_error_code(std::errc::invalid_argument);
  if (auto ec = faults_.check(storage_op::write)) return ec;
  auto at = static_cast<std::size_t>(offset);
  for (auto p : pieces) {
    const std::size_t over = std::min(p.size(), file->current.size() - at);
    file->current.replace(at, over, p);
    at += p.size();
  }
  if (!sync) return {};
  if (auto ec = faults_.check(storage_op::fsync)) return ec;
  file->durable = file->current;
  return {};
}

std::error_code mem_storage::rename(std::string_view from_dir, std::string_view from_name,
                                    std::string_view to_dir, std::string_view to_name) {
  std::lock_guard lock(mutex_);
  if (auto ec = faults_.check(storage_op::rename)) return ec;
  auto* from = find_dir(from_dir);
  auto* to = find_dir(to_dir);
  if (from == nullptr || to == nullptr) return no_entry();
  auto it = from->current.find(from_name);
  if (it == from->current.end()) return no_entry();
  auto file = it->second;
  from->current.erase(it);
  to->current[std::string(to_name)] = std::move(file);
  return {};
}

std::error_code mem_storage::unlink(std::string_view dir, std::string_view name) {
  std::lock_guard lock(mutex_);
  if (auto ec = faults_.check(storage_op::unlink)) return ec;
  auto* d = find_dir(dir);
  if (d == nullptr) return no_entry();
  auto it = d->current.find(name);
  if (it == d->current.end()) return no_entry();
  d->current.erase(it);
  return {};
}

std::error_code mem_storage::sync_dir(std::string_view dir) {
  std::lock_guard lock(mutex_);
  if (auto ec = faults_.check(storage_op::sync_dir)) return ec;
  auto* d = find_dir(dir);
  if (d == nullptr) return no_entry();
  d->durable = d->current;
  return {};
}

std::error_code mem_storage::list(std::string_view dir, std::vector<std::string>& names,
                                  std::size_t names_max) {
  std::lock_guard lock(mutex_);
  names.clear();
  if (auto ec = faults_.check(storage_op::list)) return ec;
  auto* d = find_dir(dir);
  if (d == nullptr) return no_entry();
  if (d->current.size() > names_max) return std::make_error_code(std::errc::value_too_large);
  for (const auto& [name, file] : d->current) names.push_back(name);
  return {};
}

std::error_code mem_storage::read(std::string_view dir, std::string_view name, std::uint64_t offset,
                                  std::size_t bytes_max, std::string& out) {
  std::lock_guard lock(mutex_);
  out.clear();
  if (auto ec = faults_.check(storage_op::read)) return ec;
  auto file = find_file(dir, name);
  if (!file) return no_entry();
  if (offset < file->current.size()) out.assign(file->current, offset, bytes_max);
  return {};
}

std::error_code mem_storage::read_file(std::string_view dir, std::string_view name,
                                       std::size_t bytes_max, std::string& out) {
  std::lock_guard lock(mutex_);
  out.clear();
  if (auto ec = faults_.check(storage_op::read)) return ec;
  auto file = find_file(dir, name);
  if (!file) return no_entry();
  if (file->current.size() > bytes_max) return std::make_error_code(std::errc::file_too_large);
  out = file->current;
  return {};
}

std::error_code mem_storage::free_space(space_info& out) {
  std::lock_guard lock(mutex_);
  if (auto ec = faults_.check(storage_op::space)) return ec;
  out = space_;
  return {};
}

std::error_code mem_storage::make_dir(std::string_view dir) {
  std::lock_guard lock(mutex_);
  auto& d = dirs_[std::string(dir)];
  d.durable_exists = true;
  return {};
}

void mem_storage::crash() {
  std::lock_guard lock(mutex_);
  faults_.disarm();
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if (!it->second.durable_exists) {
      it = dirs_.erase(it);
      continue;
    }
    it->second.current = it->second.durable;
    ++it;
  }
  // Contents revert after the entries, so a file reachable from two durable names (a rename
  // whose source directory was never synced) keeps one inode, as on disk.
  for (auto& [name, d] : dirs_)
    for (auto& [file_name, file] : d.current) file->current = file->durable;
}

void mem_storage::set_space(space_info s) {
  std::lock_guard lock(mutex_);
  space_ = s;
}

void mem_storage::put_durable(std::string_view dir, std::string_view name, std::string data) {
  std::lock_guard lock(mutex_);
  auto& d = dirs_[std::string(dir)];
  d.durable_exists = true;
  auto file = std::make_shared<inode>();
  file->current = std::move(data);
  file->durable = file->current;
  d.current[std::string(name)] = file;
  d.durable[std::string(name)] = file;
}

bool mem_storage::corrupt_byte(std::string_view dir, std::string_view name, std::size_t offset) {
  std::lock_guard lock(mutex_);
  auto file = find_file(dir, name);
  if (!file || offset >= file->current.size()) return false;
  file->current[offset] = static_cast<char>(file->current[offset] ^ 0x5a);
  file->durable = file->current;
  return true;
}

bool mem_storage::truncate(std::string_view dir, std::string_view name, std::size_t size) {
  std::lock_guard lock(mutex_);
  auto file = find_file(dir, name);
  if (!file || size > file->current.size()) return false;
  file->current.resize(size);
  file->durable = file->current;
  return true;
}

bool mem_storage::exists(std::string_view dir, std::string_view name) const {
  std::lock_guard lock(mutex_);
  auto it = dirs_.find(dir);
  return it != dirs_.end() && it->second.current.contains(name);
}

}  // namespace relaylab::queue
