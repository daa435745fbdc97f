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
// epoch, (generation << 32) | stream_epoch32, changes with it. In kFast a background thread
// fsyncs the WAL every fast_sync_interval_ms, bounding what a machine crash loses. Closing
// records a clean shutdown after syncing the WAL.
//
// Thread-safe: the accessors may be used from any thread. The stores built on it keep a
// reference and must be destroyed first (RocksDbStorage orders this).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rocksdb/db.h>
#include <boost/system/result.hpp>

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

  // Called by the stores when a write failed. After a failed WAL write or sync RocksDB stops
  // every later write (a fatal background error) until the database is reopened; the run is
  // then not closed cleanly (no WAL flush, no clean-shutdown record), the safe side.
  void note_write_failure() { write_failed_.store(true, std::memory_order_relaxed); }

  // False once a write has failed: every append fails until the process reopens the database.
  // For readiness checks.
  [[nodiscard]] bool healthy() const { return !write_failed_.load(std::memory_order_relaxed); }

 private:
  RocksDbDatabase() = default;

  void record_clean_shutdown();
  void start_wal_syncer(std::uint32_t interval_ms);
  void stop_wal_syncer();

  // Declared first: the Env must outlive the DB that uses it.
  std::shared_ptr<::rocksdb::Env> env_;
  std::unique_ptr<::rocksdb::DB> db_;
  std::vector<::rocksdb::ColumnFamilyHandle*> handles_;  // in kColumnFamilies order
  std::string path_;
  std::string boot_id_;
  Durability durability_ = Durability::kSync;
  std::uint32_t generation_ = 0;
  bool started_ = false;  // this run's state record was written
  std::atomic<bool> write_failed_{false};

  // The kFast background WAL syncer.
  std::mutex syncer_mutex_;
  std::condition_variable syncer_wake_;
  bool syncer_stopping_ = false;  // guarded by syncer_mutex_
  std::thread wal_syncer_;
};

}  // namespace herald::storage
