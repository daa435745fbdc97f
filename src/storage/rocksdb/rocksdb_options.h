// Options of the embedded RocksDB storage (docs/storage.md explains each trade-off).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace rocksdb {
class Env;
}

namespace herald::storage {

// What "an append completed" guarantees.
enum class Durability {
  // The write-ahead log is fsynced before any append of the batch completes (group commit
  // shares one fsync among every append waiting at the time). Survives process and machine
  // crashes. The default.
  kSync,
  // The write-ahead log is written to the OS (write(2)) before an append completes and fsynced
  // within fast_sync_interval_ms. Survives a process crash; a machine crash
  // may lose about the last interval, and the next start after one announces it by changing
  // the epoch of every stream.
  kFast,
};

struct RocksDbOptions {
  // The database directory; created if missing (its parent must exist).
  std::string path;
  Durability durability = Durability::kSync;
  // Bound of the group-commit writer's queue, in items (not batches): entries, records put or
  // deleted, and tombstones; a batch counts at least one. An append that does not fit completes
  // at once with errc::resource_unavailable_try_again; one batch larger than the whole bound
  // fails with RocksDbError::kBatchTooLarge.
  std::size_t writer_queue_entries = 64 * 1024;
  // Durability::kFast only: the longest a write stays unsynced; the writer fsyncs the WAL
  // with the first write after that, or on its own when nothing else is written, which bounds
  // what a machine crash can lose. 0: leave it to the OS (Linux writes dirty pages back within
  // about 30 s by default).
  std::uint32_t fast_sync_interval_ms = 100;
  // The LRU block cache shared by every column family.
  std::size_t block_cache_bytes = 64 * 1024 * 1024;
  // How many stream heads the writer keeps in memory (least recently used are dropped and
  // reloaded from stream_meta when needed). 0 disables the cache.
  std::size_t head_cache_streams = 1024 * 1024;
  // This machine's boot id, to tell a machine restart from a process restart. nullopt: read
  // /proc/sys/kernel/random/boot_id. Tests inject one to simulate a reboot.
  std::optional<std::string> boot_id;
  // The RocksDB environment. null: the default one. Tests inject fault-injecting ones.
  std::shared_ptr<::rocksdb::Env> env;
  // Free-space reserve of the file system holding `path`, in bytes: while less is free, a batch
  // that adds entries (a new message) is refused with RocksDbError::kStorageFull before it is
  // queued, so that the disk never fills under RocksDB (docs/storage.md, "Disk full"). 0: off.
  std::uint64_t min_free_bytes = 0;
  // How often the free space is read (one statvfs); the reserve covers what is accepted between
  // two readings.
  std::uint32_t free_space_check_interval_ms = 1'000;
  // Tests inject the free space they want (bytes; nullopt = unknown). null: statvfs.
  std::function<std::optional<std::uint64_t>(const std::string& path)> free_space_probe;
};

}  // namespace herald::storage
