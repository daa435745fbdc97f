#include "storage/rocksdb/rocksdb_database.h"

#include <pthread.h>

#include <array>
#include <chrono>
#include <fstream>
#include <limits>
#include <string_view>

#include <rocksdb/cache.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include "common/log.h"
#include "storage/rocksdb/detail/meta_codec.h"
#include "storage/rocksdb/detail/record_codec.h"
#include "storage/rocksdb/detail/record_value_codec.h"
#include "storage/rocksdb/detail/ttl_compaction_filter.h"

namespace herald::storage {
namespace {

// Order matters: RocksDbDatabase's accessors index handles_ by it. (RocksDB itself does not
// care: a family added here is created at the next open of an existing database.)
constexpr std::array<const char*, 8> kColumnFamilies = {
    "default",     "stream_entries", "stream_meta", "app_devices",
    "device_apps", "acked_cursors",  "records",     "collapse_keys",
};

constexpr std::string_view kStateKey = "state";
// Written (synced) by the kFast WAL syncer: its fsync is what makes earlier writes durable.
constexpr std::string_view kWalSyncKey = "wal_sync";
constexpr const char* kBootIdPath = "/proc/sys/kernel/random/boot_id";

// Expired entries sitting in files no ordinary compaction touches (the bottom level of a quiet
// database) are still dropped within a day.
constexpr std::uint64_t kPeriodicCompactionSeconds = 24 * 60 * 60;

// Resuming after a failed write: the first try soon (a full disk may be freed at once, and
// RocksDB's own SstFileManager may have recovered already), then backing off so that a disk
// that stays full is not hammered.
constexpr std::chrono::milliseconds kFirstResumeDelay{100};
constexpr std::chrono::milliseconds kMaxResumeDelay{10'000};

std::string read_boot_id() {
  std::ifstream in(kBootIdPath);
  std::string id;
  std::getline(in, id);
  return id;
}

OpenError open_error(const std::string& path, const ::rocksdb::Status& status) {
  return {make_error_code(status), "cannot open RocksDB at '" + path + "': " + status.ToString()};
}

OpenError open_error(const std::string& path, RocksDbError error, std::string_view what) {
  std::string message = "cannot open RocksDB at '" + path + "': ";
  message.append(what);
  return {make_error_code(error), std::move(message)};
}

::rocksdb::ColumnFamilyOptions family_options(const std::shared_ptr<::rocksdb::Cache>& cache,
                                              bool point_lookups) {
  ::rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (point_lookups) {
    // Metas, registrations, cursors, records and collapse pointers are read with Get: a bloom
    // filter skips files without the key. Entries are read by Seek within a stream, which a
    // whole-key filter cannot help. (Record scans Seek too; the filter does not slow them.)
    table.filter_policy.reset(::rocksdb::NewBloomFilterPolicy(10));
    table.optimize_filters_for_memory = true;
  }
  ::rocksdb::ColumnFamilyOptions family;
  family.table_factory.reset(::rocksdb::NewBlockBasedTableFactory(table));
  return family;
}

}  // namespace

boost::system::result<std::unique_ptr<RocksDbDatabase>, OpenError> RocksDbDatabase::open(
    const RocksDbOptions& options) {
  std::unique_ptr<RocksDbDatabase> database(new RocksDbDatabase());
  database->env_ = options.env;
  database->path_ = options.path;
  database->durability_ = options.durability;
  database->boot_id_ = options.boot_id ? *options.boot_id : read_boot_id();
  if (database->boot_id_.size() > std::numeric_limits<std::uint8_t>::max()) {
    return open_error(options.path, RocksDbError::kBadKey, "boot id longer than 255 bytes");
  }

  ::rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // Recover up to the last intact record of the WAL: a torn tail from a crash is expected;
  // stopping there keeps every write before it, and a write batch is all or nothing.
  db_options.wal_recovery_mode = ::rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  // Flush what the WAL replay recovered into synced table files at open: writes a fast-mode
  // run left only in the OS page cache become durable before this run records its start.
  db_options.avoid_flush_during_recovery = false;
  db_options.keep_log_file_num = 10;
  if (database->env_) db_options.env = database->env_.get();

  const auto cache = ::rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<::rocksdb::ColumnFamilyDescriptor> families;
  for (const char* name : kColumnFamilies) {
    const std::string_view n = name;
    const bool point_lookups = n != "stream_entries";
    auto family = family_options(cache, point_lookups);
    // The families whose values expire, each with the reader of its expiry.
    detail::ExpiryOf expiry_of = nullptr;
    if (n == "stream_entries") expiry_of = detail::entry_record_expires_at_ms;
    if (n == "records") expiry_of = detail::record_value_drop_at_ms;
    if (n == "collapse_keys") expiry_of = detail::collapse_pointer_expires_at_ms;
    if (expiry_of != nullptr) {
      family.compaction_filter_factory =
          std::make_shared<detail::TtlCompactionFilterFactory>(detail::system_now_ms, expiry_of);
      family.periodic_compaction_seconds = kPeriodicCompactionSeconds;
    }
    families.emplace_back(name, family);
  }

  ::rocksdb::DB* db = nullptr;
  auto status = ::rocksdb::DB::Open(db_options, options.path, families, &database->handles_, &db);
  if (!status.ok()) return open_error(options.path, status);
  database->db_.reset(db);

  // Decide this run's generation from the last run's state.
  detail::DatabaseState state;
  std::string value;
  status = db->Get(::rocksdb::ReadOptions(), db->DefaultColumnFamily(), kStateKey, &value);
  if (status.ok()) {
    auto stored = detail::decode_database_state(value);
    if (!stored) {
      return open_error(options.path, RocksDbError::kCorruptMeta,
                        "database state record is corrupt or of an unknown version");
    }
    state = std::move(*stored);
    const bool machine_restarted =
        database->boot_id_.empty() || state.boot_id != database->boot_id_;
    if (state.running && state.fast_run && machine_restarted) {
      const std::uint32_t previous = state.generation;
      state.generation = previous == std::numeric_limits<std::uint32_t>::max() ? 1 : previous + 1;
      log::warn("storage_generation_bumped",
                {{"path", options.path},
                 {"reason", "unclean shutdown in fast durability mode before a machine restart"},
                 {"previous_generation", previous},
                 {"generation", state.generation}});
    } else if (state.running) {
      log::warn("storage_unclean_shutdown",
                {{"path", options.path}, {"generation", state.generation}});
    }
  } else if (status.IsNotFound()) {
    state.generation = 1;
  } else {
    return open_error(options.path, status);
  }

  state.running = true;
  state.fast_run = options.durability == Durability::kFast;
  state.boot_id = database->boot_id_;
  ::rocksdb::WriteOptions synced;
  synced.sync = true;
  status =
      db->Put(synced, db->DefaultColumnFamily(), kStateKey, detail::encode_database_state(state));
  if (!status.ok()) return open_error(options.path, status);
  database->generation_ = state.generation;
  database->started_ = true;
  database->free_space_ = std::make_unique<FreeSpaceGuard>(options.path, options.min_free_bytes,
                                                           options.free_space_probe);
  database->free_space_->check();
  database->start_maintenance(std::max<std::uint32_t>(1, options.free_space_check_interval_ms));
  if (options.durability == Durability::kFast) {
    database->wal_sync_interval_ = std::chrono::milliseconds(options.fast_sync_interval_ms);
  }
  log::info("storage_opened",
            {{"path", options.path},
             {"durability", options.durability == Durability::kSync ? "sync" : "fast"},
             {"generation", state.generation}});
  return database;
}

RocksDbDatabase::~RocksDbDatabase() {
  if (!db_) return;
  stop_maintenance();
  // A database whose open failed half-way never recorded a start; leave its state alone.
  if (started_ && healthy()) {
    record_clean_shutdown();
  } else if (started_) {
    log::error("storage_closed_after_write_failure", {{"path", path_}});
  }
  for (auto* handle : handles_) {
    auto status = db_->DestroyColumnFamilyHandle(handle);
    if (!status.ok()) log::warn("storage_close_failed", {{"error", status.ToString()}});
  }
  handles_.clear();
  auto status = db_->Close();
  if (!status.ok()) log::warn("storage_close_failed", {{"error", status.ToString()}});
  db_.reset();
}

void RocksDbDatabase::record_clean_shutdown() {
  // Sync first: the clean flag claims that nothing written before it can be lost any more.
  auto status = db_->FlushWAL(/*sync=*/true);
  if (status.ok()) {
    detail::DatabaseState state;
    state.generation = generation_;
    state.running = false;
    state.fast_run = durability_ == Durability::kFast;
    state.boot_id = boot_id_;
    ::rocksdb::WriteOptions synced;
    synced.sync = true;
    status = db_->Put(synced, db_->DefaultColumnFamily(), kStateKey,
                      detail::encode_database_state(state));
  }
  if (!status.ok()) {
    log::error("storage_clean_shutdown_not_recorded",
               {{"path", path_}, {"error", status.ToString()}});
  }
}

::rocksdb::Status RocksDbDatabase::sync_wal() {
  // A synced write through RocksDB's write path rather than SyncWAL(): the write path refuses to
  // touch a WAL a failed write has just left broken (the background error it set), where
  // SyncWAL() hands that WAL to its file writer, and Debian's RocksDB, built with assertions,
  // aborts the process there (seen once in CI). Syncing the marker makes every earlier WAL
  // record durable.
  ::rocksdb::WriteOptions synced;
  synced.sync = true;
  return db_->Put(synced, db_->DefaultColumnFamily(), kWalSyncKey, "");
}

void RocksDbDatabase::note_write_failure() {
  {
    // Under the mutex, so that the maintenance thread cannot miss the wake-up between its
    // health test and its wait.
    std::lock_guard lock(maintenance_mutex_);
    write_failures_.fetch_add(1, std::memory_order_acq_rel);
  }
  maintenance_wake_.notify_one();
}

bool RocksDbDatabase::wait_until_recovered(std::chrono::milliseconds timeout) {
  std::unique_lock lock(maintenance_mutex_);
  health_changed_.wait_for(lock, timeout, [this] { return healthy() || needs_restart(); });
  return healthy();
}

bool RocksDbDatabase::try_resume() {
  const auto failures = write_failures_.load(std::memory_order_acquire);
  // Resume flushes every memtable (RocksDB cannot vouch for a WAL that failed) and starts a new
  // WAL, then accepts writes again. Busy means RocksDB's own recovery is under way: try later.
  const auto status = db_->Resume();
  if (status.ok()) {
    {
      std::lock_guard lock(maintenance_mutex_);
      resumed_through_.store(failures, std::memory_order_release);
    }
    health_changed_.notify_all();
    log::info("storage_resumed", {{"path", path_}, {"healthy", healthy()}});
    return healthy();
  }
  if (status.severity() >= ::rocksdb::Status::Severity::kFatalError) {
    {
      std::lock_guard lock(maintenance_mutex_);
      needs_restart_.store(true, std::memory_order_relaxed);
    }
    health_changed_.notify_all();
    log::error("storage_needs_restart",
               {{"path", path_},
                {"error", status.ToString()},
                {"action", "the engine cannot resume from this write failure: restart heraldd"}});
    return false;
  }
  log::warn("storage_resume_failed", {{"path", path_}, {"error", status.ToString()}});
  return false;
}

void RocksDbDatabase::start_maintenance(std::uint32_t free_space_check_interval_ms) {
  maintenance_ =
      std::thread([this, interval = std::chrono::milliseconds(free_space_check_interval_ms)] {
        pthread_setname_np(pthread_self(), "herald-dbmaint");
        using Clock = std::chrono::steady_clock;
        constexpr auto kNever = Clock::time_point::max();
        const bool watch_space = free_space_->min_free_bytes() > 0;
        auto next_check = watch_space ? Clock::now() + interval : kNever;
        auto resume_delay = kFirstResumeDelay;
        auto next_resume = kNever;  // kNever: no resume scheduled
        std::unique_lock lock(maintenance_mutex_);
        // Invariant: every decision to wait is taken under the lock, after the last unlocked
        // step, so a stop or a failure noted meanwhile (both under the lock) is never missed.
        while (!maintenance_stopping_) {
          const auto now = Clock::now();
          if (now >= next_check) {
            lock.unlock();
            free_space_->check();
            lock.lock();
            next_check = now + interval;
            continue;
          }
          if (healthy() || needs_restart()) {
            next_resume = kNever;
            resume_delay = kFirstResumeDelay;
          } else if (next_resume == kNever) {
            next_resume = now + resume_delay;
          } else if (now >= next_resume) {
            lock.unlock();
            const bool resumed = try_resume();
            lock.lock();
            // Not resumed: the next try waits twice as long (re-armed by the next iteration).
            if (!resumed) resume_delay = std::min(resume_delay * 2, kMaxResumeDelay);
            next_resume = kNever;
            continue;
          }
          const auto wake_at = std::min(next_check, next_resume);
          if (wake_at == kNever) {
            maintenance_wake_.wait(lock);
          } else {
            maintenance_wake_.wait_until(lock, wake_at);
          }
        }
      });
}

void RocksDbDatabase::stop_maintenance() {
  if (!maintenance_.joinable()) return;
  {
    std::lock_guard lock(maintenance_mutex_);
    maintenance_stopping_ = true;
  }
  maintenance_wake_.notify_one();
  maintenance_.join();
}

::rocksdb::WriteOptions RocksDbDatabase::append_write_options(bool wanted) const {
  ::rocksdb::WriteOptions options;
  options.sync = wanted && durability_ == Durability::kSync;
  return options;
}

}  // namespace herald::storage
