// RocksDbStreamStore: the embedded StreamStore, on the stream_entries, stream_meta and
// collapse_keys column families of a RocksDbDatabase, and the write side of RocksDbRecordStore
// (the records family). Layout and rules in docs/storage.md.
//
// Appends go through one writer thread with group commit (detail/group_commit_writer.h):
// validation and encoding run on the caller's thread, sequence numbers are assigned and every
// batch waiting at the time is written as one WriteBatch, synced in Durability::kSync (unless
// no batch of the group wants it). Reads and head() run on the caller's thread against a
// consistent snapshot.
//
// Thread-safe. The database must outlive the store. Destroying the store completes every append
// it accepted (written) before returning; appends submitted during destruction complete with
// RocksDbError::kShuttingDown.
#pragma once

#include <cstddef>

#include "storage/rocksdb/detail/group_commit_writer.h"
#include "storage/rocksdb/rocksdb_options.h"
#include "storage/stream_store.h"

namespace herald::storage {

class RocksDbDatabase;

class RocksDbStreamStore final : public StreamStore {
 public:
  // Stream keys are 1 to kMaxStreamKeyBytes bytes; others are refused with kBadStreamKey.
  static constexpr std::size_t kMaxStreamKeyBytes = 1024;
  // Collapse keys are at most kMaxCollapseKeyBytes bytes (empty = none); longer ones are refused
  // with kBadCollapseKey. Record keys and values: RocksDbRecordStore's bounds.
  static constexpr std::size_t kMaxCollapseKeyBytes = 1024;

  // Starts the writer thread. Uses options.writer_queue_entries and head_cache_streams.
  RocksDbStreamStore(RocksDbDatabase& database, const RocksDbOptions& options);
  ~RocksDbStreamStore() override;

  RocksDbStreamStore(const RocksDbStreamStore&) = delete;
  RocksDbStreamStore& operator=(const RocksDbStreamStore&) = delete;

  // StreamStore::read, with these precisions:
  //   - The answer is one run of consecutive sequence numbers: it stops before a hole left by an
  //     expired entry in the middle of the stream (with more = true), so that the next read,
  //     from the last returned seq, reports the hole through truncated_before. A gap is never
  //     hidden inside one answer.
  //   - Tombstones (DataKind::kTombstone) are returned like entries: they count toward
  //     max_entries and, having no data, 0 bytes toward max_bytes.
  //   - max_entries == 0 counts as 1.
  //   - An after_seq at or beyond the head returns no entries and no truncation.
  // Errors: kBadStreamKey, kCorruptRecord / kCorruptMeta (logged with the stream), engine errors.
  [[nodiscard]] boost::system::result<ReadResult> read(const ReadRequest& request) override;

  [[nodiscard]] boost::system::result<StreamHead> head(std::string_view stream) override;

  // Counters of the group-commit writer (batches, appends, entries, refusals).
  [[nodiscard]] detail::GroupCommitStats writer_stats() const { return writer_.stats(); }

 protected:
  // Validates and encodes on the caller's thread, then queues. Refusals complete through the
  // handler's executor without writing anything: kBadStreamKey, kBadRecordKey,
  // kBadCollapseKey, kEntryTooLarge, kRecordTooLarge, kBadEntryKind, kUnsyncedEntries,
  // kBatchTooLarge (more entries + records + tombstones than the writer queue holds), queue
  // full, kShuttingDown. A batch with nothing in it (and no precondition) completes at once with
  // an empty outcome. Cancellation is not supported: an accepted append always completes once
  // its group is written or has failed.
  void do_append(AppendBatch batch,
                 boost::asio::any_completion_handler<AppendBatchSignature> handler) override;

 private:
  RocksDbDatabase& database_;
  const std::size_t max_batch_entries_;
  detail::GroupCommitWriter writer_;
};

}  // namespace herald::storage
