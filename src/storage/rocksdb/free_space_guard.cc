#include "storage/rocksdb/free_space_guard.h"

#include <sys/statvfs.h>

#include <utility>

#include "common/log.h"

namespace herald::storage {

FreeSpaceGuard::FreeSpaceGuard(std::string path, std::uint64_t min_free_bytes, Probe probe)
    : path_(std::move(path)),
      min_free_bytes_(min_free_bytes),
      probe_(probe ? std::move(probe) : Probe(&FreeSpaceGuard::statvfs_free_bytes)) {}

std::optional<std::uint64_t> FreeSpaceGuard::statvfs_free_bytes(const std::string& path) {
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(fs.f_bavail) * static_cast<std::uint64_t>(fs.f_frsize);
}

std::uint64_t FreeSpaceGuard::checks() const {
  std::lock_guard lock(checks_mutex_);
  return checks_;
}

std::uint64_t FreeSpaceGuard::wait_for_check_after(std::uint64_t seen,
                                                   std::chrono::milliseconds timeout) const {
  std::unique_lock lock(checks_mutex_);
  checked_.wait_for(lock, timeout, [&] { return checks_ > seen; });
  return checks_;
}

void FreeSpaceGuard::check() {
  if (min_free_bytes_ == 0) return;
  read_and_update();
  {
    std::lock_guard lock(checks_mutex_);
    ++checks_;
  }
  checked_.notify_all();
}

void FreeSpaceGuard::read_and_update() {
  const auto free = probe_(path_);
  if (!free) {
    log::warn("storage_free_space_unknown", {{"path", path_}});
    return;
  }
  free_bytes_.store(*free, std::memory_order_relaxed);
  const bool below = *free < min_free_bytes_;
  if (below_.exchange(below, std::memory_order_relaxed) == below) return;
  if (below) {
    log::error("storage_space_low", {{"path", path_},
                                     {"free_bytes", *free},
                                     {"min_free_bytes", min_free_bytes_},
                                     {"action", "refusing new messages until space is freed"}});
  } else {
    log::info("storage_space_recovered",
              {{"path", path_}, {"free_bytes", *free}, {"min_free_bytes", min_free_bytes_}});
  }
}

}  // namespace herald::storage
