// GroupCommitWriter: the one thread that assigns sequence numbers and writes every append batch
// (entries, tombstones, records).
//
//   async_append ──▶ [ bounded queue ] ──▶ writer thread: take everything queued (a group),
//   (any thread)      (batches, FIFO,        for each batch in order: check its precondition,
//                      bounded in items)     read what it needs, assign seqs from the head
//                                            cache, stage its operations over the group's
//                                            view of the database;
//                                            one WriteBatch for the whole group, one Write
//                                            (sync=true in kSync if any batch wants it,
//                                            in kFast when a sync is due), then hand
//                                            every handler to its executor
//
// Owning sequence assignment on one thread makes it race-free without locks around the
// database, and draining the whole queue into one write is the group commit: N appends that
// wait together share one fsync. Within a group, every batch sees the effects of the batches
// before it (a record put, an entry appended or tombstoned, a collapse pointer moved): the
// writer keeps the group's staged state over the database, so a precondition or a collapse key
// gives the same answer whether the earlier batch is in the same group or in an earlier one.
//
// In kFast, the writer also keeps the WAL's sync promise (RocksDbOptions::fast_sync_interval_ms):
// the first group written after an unsynced write's interval ran out is written with sync=true,
// or, when none comes, a marker is (RocksDbDatabase::sync_wal). The WAL thus has one writing
// thread.
//
// The queue is bounded in items (entries + records + tombstones, at least one per batch); a full
// queue refuses at once (errc::resource_unavailable_try_again) so that memory stays bounded and
// the caller can push back. A batch that fails on its own (a corrupt stored value, a read error)
// completes with that error and leaves no trace in the group. A failed write completes every
// batch of its group with the error and drops the metas of the streams it touched from the
// cache, so that the next group reloads them from the database. (RocksDB itself refuses every
// later write after a failed WAL write or sync until it is reopened; a group whose fsync failed
// may still be in the WAL file and come back on reopen, complete and with its own numbers: an
// I/O error means "not acknowledged", not "absent".)
//
// submit() is thread-safe. Destruction drains: every batch accepted before it is written and
// completed; later ones complete with RocksDbError::kShuttingDown.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/system/result.hpp>

#include "storage/rocksdb/detail/head_cache.h"
#include "storage/stream_store.h"

namespace herald::storage {
class RocksDbDatabase;
}

namespace herald::storage::detail {

using AppendHandler = boost::asio::any_completion_handler<AppendBatchSignature>;

// An entry after validation and encoding, which happen on the caller's thread.
struct EncodedAppend {
  std::string stream;
  std::string record;        // encode_entry_record(entry)
  std::string collapse_key;  // empty: none
  // For the collapse pointer (only read when collapse_key is set): the entry's own.
  std::string message_id{};
  std::int64_t expires_at_ms = 0;
};

// A record to put, encoded (encode_record_value).
struct EncodedRecord {
  std::string key;
  std::string stored;
};

// An acked cursor to move forward, encoded.
struct EncodedAck {
  std::string key;  // pair_key(device, stream) in acked_cursors
  AckedCursor cursor;
};

// An AppendBatch after validation and encoding.
struct EncodedBatch {
  std::vector<EncodedAppend> appends;
  std::vector<EncodedRecord> put_records;
  std::vector<std::string> delete_records;
  std::vector<Tombstone> tombstones;
  std::vector<EncodedAck> acks;
  std::optional<std::string> unless_record_exists;
  std::int64_t now_ms = 0;
  bool sync = true;

  // The batch's share of the writer's queue: its entries, records, tombstones and acks, at
  // least 1.
  [[nodiscard]] std::size_t weight() const;
};

struct GroupCommitStats {
  std::uint64_t batches_written = 0;  // Writes to RocksDB (in kSync, one fsync each at most)
  std::uint64_t appends_written = 0;  // async_append calls completed by a successful write
  std::uint64_t appends_skipped = 0;  // of which unless_record_exists hit: nothing written
  std::uint64_t entries_written = 0;
  std::uint64_t tombstones_written = 0;  // by Tombstone requests and by collapse keys
  std::uint64_t appends_refused = 0;     // queue full
};

// Runs `handler` through its associated executor. Called from a thread that is not running
// that executor (the writer, the relay), so an io_context or strand executor queues it rather
// than running it inline. (Boost 1.81's any_completion_executor offers no blocking.never, so
// asio::post cannot be used on it; dispatch from a foreign thread amounts to a post.) A handler
// without an associated executor runs on the calling thread and must be quick.
void dispatch_completion(AppendHandler handler, boost::system::error_code ec,
                         AppendOutcome outcome = {});

class GroupCommitWriter {
 public:
  // `database` must outlive the writer. queue_entries >= 1.
  GroupCommitWriter(RocksDbDatabase& database, std::size_t queue_entries,
                    std::size_t head_cache_streams);
  ~GroupCommitWriter();

  GroupCommitWriter(const GroupCommitWriter&) = delete;
  GroupCommitWriter& operator=(const GroupCommitWriter&) = delete;

  // Queues `batch` (weight at most queue_entries) or completes `handler` at once with
  // resource_unavailable_try_again (queue full) or kShuttingDown.
  void submit(EncodedBatch batch, AppendHandler handler);

  // Completes `handler` with `ec` (and an empty outcome) at once, without waiting for the writer:
  // through a relay thread, so never inline in the caller's initiating function even when the
  // caller runs the handler's executor. For requests refused before they reach the queue.
  void complete_now(AppendHandler handler, boost::system::error_code ec);

  [[nodiscard]] GroupCommitStats stats() const;

 private:
  struct Pending {
    EncodedBatch batch;
    AppendHandler handler;
    // Keeps the handler's executor (an io_context, say) from running out of work while the
    // append waits for the writer.
    boost::asio::any_completion_executor work;
    boost::system::error_code error;  // set when this request alone failed
    AppendOutcome outcome;
  };
  class Group;  // the group's staged view of the database (group_commit_writer.cc)

  void run();
  void write_group(std::deque<Pending>& group);
  // kFast: after a write, arms the sync deadline (unsynced) or clears it (synced).
  void note_written(bool synced);
  // kFast: the synced marker write (RocksDbDatabase::sync_wal) when a sync is due and nothing
  // is queued to carry it.
  void sync_unsynced_writes();
  // Reads what `pending` needs into the group and tests its precondition (a hit sets
  // pending.outcome.existing). Only reads: on error, the group holds nothing of it.
  [[nodiscard]] boost::system::error_code prepare(Pending& pending, Group& group);
  // Stages `pending` (prepared, precondition passed) into the group. Cannot fail.
  void apply(Pending& pending, Group& group);
  [[nodiscard]] boost::system::result<StreamMeta> load_meta(std::string_view stream);
  [[nodiscard]] std::uint32_t new_stream_epoch32();

  RocksDbDatabase& database_;
  const std::size_t queue_entries_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;       // guarded by mutex_
  std::size_t queued_entries_ = 0;  // sum of the queued weights; guarded by mutex_
  bool stopping_ = false;           // guarded by mutex_

  // Writer thread only.
  HeadCache heads_;
  std::mt19937 random_;
  // kFast: when the oldest write not yet fsynced must be (wal_sync_interval() after it); the
  // next group written after it is synced, or a marker when none comes. Unset: all synced.
  std::optional<std::chrono::steady_clock::time_point> sync_deadline_;

  std::atomic<std::uint64_t> batches_written_{0};
  std::atomic<std::uint64_t> appends_written_{0};
  std::atomic<std::uint64_t> appends_skipped_{0};
  std::atomic<std::uint64_t> entries_written_{0};
  std::atomic<std::uint64_t> tombstones_written_{0};
  std::atomic<std::uint64_t> appends_refused_{0};

  // Completes refused requests, so that a refusal never waits behind a slow write.
  boost::asio::thread_pool relay_{1};
  std::thread thread_;  // last: starts once every member above exists
};

}  // namespace herald::storage::detail
