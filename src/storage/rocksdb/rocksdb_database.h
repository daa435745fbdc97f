// RocksDbDatabase: the one RocksDB database behind the embedded stores, opened with its column
// families, plus the database-wide state that gives epochs their meaning.
//
//   default         "state": generation, clean-shutdown flag, durability and boot id of the
//                   last run (detail/meta_codec.h)
//   stream_entries  lp(stream) seq -> entry record; TTL compaction filter
//   stream_meta     stream -> stream_epoch32, head_seq; never filtered
//   app_devices     lp(app) device -> registered_at_ms
//   device_apps     lp(device) app -> registered_at_ms
//   acked_cursors   lp(device) stream -> epoch, seq, acked_at_ms
//   records         record key -> expires_at_ms, value (RecordStore); TTL compaction filter
//   collapse_keys   lp(stream) collapse key -> seq, message_id, expires_at_ms of the latest
//                   entry appended with that key; TTL compaction filter (dies with its entry)
//
// Opening decides the generation: when the last run used Durability::kFast, did not record a
// clean shutdown and ran under another boot id (the machine restarted, so the OS may have lost
// WAL writes that were never fsynced), the generation goes up by one; every stream's effective
// epoch, (generation << 32) | stream_epoch32, changes with it. In kFast the stores' writer
// fsyncs the WAL within fast_sync_interval_ms of an unsynced write (wal_sync_interval(),
// sync_wal()), bounding what a machine crash loses. Closing records a clean shutdown after
// syncing the WAL.
//
// A maintenance thread ("herald-dbmaint") reads the free disk space every
// free_space_check_interval_ms (FreeSpaceGuard: below min_free_bytes, new messages are refused)
// and, after a failed write, asks RocksDB to resume (DB::Resume) with a backoff from 100 ms to
// 10 s. RocksDB resumes from what it classes as recoverable (a full disk: ENOSPC on the WAL, a
// flush or a compaction) by flushing every memtable into a new WAL, so a log with a torn record
// is never appended to; it refuses to resume from a fatal error (any other I/O error on the WAL)
// and the database then needs reopening: needs_restart() says so, healthy() stays false.
//
// Thread-safe: the accessors may be used from any thread. The stores built on it keep a
// reference and must be destroyed first (RocksDbStorage orders this).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rocksdb/db.h>
#include <boost/system/result.hpp>

#include "storage/rocksdb/free_space_guard.h"
#include "storage/rocksdb/rocksdb_error.h"
#include "storage/rocksdb/rocksdb_options.h"

namespace herald::storage {

class RocksDbDatabase {
 public:
  // Opens or creates the database at options.path and records this run as started (a synced
  // write). Errors name the path and carry the engine's explanation: the directory cannot be
  // created or locked (another process has it open), the files are corrupt, or the stored state
  // has an unknown format.
  [[nodiscard]] static boost::system::result<std::unique_ptr<RocksDbDatabase>, OpenError> open(
      const RocksDbOptions& options);

  // Syncs the WAL, records a clean shutdown and closes. Failures are logged: the next open then
  // treats this run as a crash, which is the safe side.
  ~RocksDbDatabase();

  RocksDbDatabase(const RocksDbDatabase&) = delete;
  RocksDbDatabase& operator=(const RocksDbDatabase&) = delete;

  [[nodiscard]] ::rocksdb::DB& db() const { return *db_; }
  [[nodiscard]] ::rocksdb::ColumnFamilyHandle* stream_entries() const { return handles_[1]; }
  [[nodiscard]] ::rocksdb::ColumnFamilyHandle* stream_meta() const { return handles_[2]; }
  [[nodiscard]] ::rocksdb::ColumnFamilyHandle* app_devices() const { return handles_[3]; }
  [[nodiscard]] ::rocksdb::ColumnFamilyHandle* device_apps() const { return handles_[4]; }
  [[nodiscard]] ::rocksdb::ColumnFamilyHandle* acked_cursors() const { return handles_[5]; }
  [[nodiscard]] ::rocksdb::ColumnFamilyHandle* records() const { return handles_[6]; }
  [[nodiscard]] ::rocksdb::ColumnFamilyHandle* collapse_keys() const { return handles_[7]; }

  // The high 32 bits of every stream's epoch in this run; fixed until the database is reopened.
  [[nodiscard]] std::uint32_t generation() const { return generation_; }
  [[nodiscard]] Durability durability() const { return durability_; }
  [[nodiscard]] const std::string& path() const { return path_; }

  // Write options of appends: sync per the durability mode, and only when `wanted` (a group
  // commit in which no batch wants an fsync is written without one).
  [[nodiscard]] ::rocksdb::WriteOptions append_write_options(bool wanted = true) const;

  // kFast: the longest an appended write may stay unsynced (fast_sync_interval_ms); zero in
  // kSync, or when kFast leaves syncing to the OS.
  [[nodiscard]] std::chrono::milliseconds wal_sync_interval() const { return wal_sync_interval_; }
  // Makes every write so far durable: a synced write of a marker. Called by the one thread that
  // writes appends (detail::GroupCommitWriter), so the WAL has one writer: RocksDB hands the WAL
  // from writer to writer through atomics that ThreadSanitizer cannot see in Debian's library,
  // built without it, and a second writing thread shows up as a race on the WAL's buffer.
  [[nodiscard]] ::rocksdb::Status sync_wal();

  // Called by the stores when a write failed. After a failed WAL write or sync RocksDB stops
  // every later write (a background error) until it resumes or the database is reopened; the
  // maintenance thread tries to resume. A run closed while unhealthy is not closed cleanly (no
  // WAL flush, no clean-shutdown record), the safe side.
  void note_write_failure();

  // False from a failed write until RocksDB resumed: appends fail meanwhile (never with reused
  // numbers: the writer reloads the heads it touched). For readiness checks.
  [[nodiscard]] bool healthy() const {
    return write_failures_.load(std::memory_order_acquire) ==
           resumed_through_.load(std::memory_order_acquire);
  }

  // True once RocksDB refused to resume (a fatal error such as EIO on the WAL): only reopening
  // the database, i.e. restarting the process, makes it writable again.
  [[nodiscard]] bool needs_restart() const {
    return needs_restart_.load(std::memory_order_relaxed);
  }

  // Blocks until the database is healthy() again or needs_restart(), or until `timeout` passed;
  // returns healthy().
  bool wait_until_recovered(std::chrono::milliseconds timeout);

  // The free-space reserve (RocksDbOptions::min_free_bytes).
  [[nodiscard]] const FreeSpaceGuard& free_space() const { return *free_space_; }
  // Reads the free space now instead of at the next interval (tests; start-up).
  void check_free_space_now() { free_space_->check(); }

 private:
  RocksDbDatabase() = default;

  void record_clean_shutdown();
  void start_maintenance(std::uint32_t free_space_check_interval_ms);
  void stop_maintenance();
  // One DB::Resume; true when the database is writable again.
  bool try_resume();

  // Declared first: the Env must outlive the DB that uses it.
  std::shared_ptr<::rocksdb::Env> env_;
  std::unique_ptr<::rocksdb::DB> db_;
  std::vector<::rocksdb::ColumnFamilyHandle*> handles_;  // in kColumnFamilies order
  std::string path_;
  std::string boot_id_;
  Durability durability_ = Durability::kSync;
  std::chrono::milliseconds wal_sync_interval_{0};
  std::uint32_t generation_ = 0;
  bool started_ = false;  // this run's state record was written
  // Failed writes so far, and how many of them the last successful resume covered: a failure
  // that lands while a resume runs is not cleared by it.
  std::atomic<std::uint64_t> write_failures_{0};
  std::atomic<std::uint64_t> resumed_through_{0};
  std::atomic<bool> needs_restart_{false};
  std::unique_ptr<FreeSpaceGuard> free_space_;

  // The maintenance thread: free-space checks and resumes.
  std::mutex maintenance_mutex_;
  std::condition_variable maintenance_wake_;  // a failure to resume from, or stop
  std::condition_variable health_changed_;    // for wait_until_recovered
  bool maintenance_stopping_ = false;         // guarded by maintenance_mutex_
  std::thread maintenance_;
};

}  // namespace herald::storage
