// FreeSpaceGuard: watches the free space of the file system that holds the database, so that the
// store can refuse new messages while a reserve is left for everything that must still be
// written: a full disk makes RocksDB fail a write, and a failed write stops the database
// (docs/storage.md, "Disk full").
//
//   maintenance thread, every free_space_check_interval_ms:  check()  ── statvfs ──▶ free bytes
//   any thread, per append:                                  below_reserve()  (one atomic load)
//
// Cheap by construction: one statvfs per interval, never per append. The answer is up to one
// interval old; the reserve is what covers the appends accepted meanwhile.
//
// Thread-safe: check() from one thread at a time (the database's maintenance thread, or a test),
// the readers from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace herald::storage {

class FreeSpaceGuard {
 public:
  // Bytes available to the process on the file system holding `path`; nullopt when unknown.
  using Probe = std::function<std::optional<std::uint64_t>(const std::string& path)>;

  // min_free_bytes = 0 turns the guard off (below_reserve() is always false). probe = nullptr:
  // statvfs.
  FreeSpaceGuard(std::string path, std::uint64_t min_free_bytes, Probe probe = nullptr);

  // Reads the free space once and updates below_reserve(); logs when it crosses the reserve
  // (storage_space_low, storage_space_recovered). A failed reading keeps the last answer.
  void check();

  // True while the last reading was below the reserve.
  [[nodiscard]] bool below_reserve() const { return below_.load(std::memory_order_relaxed); }
  // The last reading, in bytes (0 before the first, or when the guard is off).
  [[nodiscard]] std::uint64_t free_bytes() const {
    return free_bytes_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t min_free_bytes() const { return min_free_bytes_; }

  // How many readings check() completed (failed ones included); waits until more than `seen`
  // were or `timeout` passed, and returns the count. For tests that wait for the next check.
  std::uint64_t wait_for_check_after(std::uint64_t seen, std::chrono::milliseconds timeout) const;
  [[nodiscard]] std::uint64_t checks() const;

  // statvfs(path): f_bavail * f_frsize, what an unprivileged writer may still use.
  static std::optional<std::uint64_t> statvfs_free_bytes(const std::string& path);

 private:
  void read_and_update();

  const std::string path_;
  const std::uint64_t min_free_bytes_;
  const Probe probe_;
  std::atomic<bool> below_{false};
  std::atomic<std::uint64_t> free_bytes_{0};
  mutable std::mutex checks_mutex_;
  mutable std::condition_variable checked_;
  std::uint64_t checks_ = 0;  // guarded by checks_mutex_
};

}  // namespace herald::storage
