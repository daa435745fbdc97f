// RedisStreamStore: the cluster mode's StreamStore, on Redis Cluster, and the write side of
// RedisRecordStore. Several heraldd nodes open the same keyspace and share every stream: a device
// drained from one node to another finds its messages there. Layout and rules in
// docs/storage.md ("Redis Cluster") and detail/key_layout.h.
//
// Placement: every key of one keyspace carries its hash tag, so one keyspace lives in ONE slot
// of ONE master, and every AppendBatch is one Lua script run atomically there (entries of
// several streams, tombstones, records, cursors: all or nothing, in the contract's order). The
// limit: one master carries one deployment's storage (its memory, its AOF fsyncs); deployments
// with their own keyspaces spread over the masters.
//
// Appends: validation and encoding on the caller's thread, then one writer thread
// (detail/append_writer.h) sends every queued batch as one pipeline. Durable when the master
// answers: it runs appendfsync always (checked at open), and with replicas_to_wait > 0 WAIT
// also saw that many replicas take it.
//
// Epochs: a stream's epoch is the master's clock (microseconds) when its first entry was
// written. A stream's keys expire expiry_grace_ms after its latest entry, so an idle stream
// vanishes; written again, it gets a new epoch (readers see epoch_changed), never an old one.
// After a failover (the promoted replica may lack acknowledged entries) or a master restart, a
// stream's next append gives it a new epoch and continues after the head found there, so a
// lost seq is never reused silently.
//
// Reads and head() run on the caller's thread with a pooled client (one script or command each,
// atomic on the master). Thread-safe. The scripts and the pool must outlive the store; destroying
// it completes every append it accepted first.
#pragma once

#include <cstddef>

#include "storage/redis/detail/append_writer.h"
#include "storage/redis/detail/client_pool.h"
#include "storage/redis/detail/key_layout.h"
#include "storage/redis/detail/scripts.h"
#include "storage/redis/redis_storage_options.h"
#include "storage/stream_store.h"

namespace herald::storage {

class RedisStreamStore final : public StreamStore {
 public:
  // The same bounds as the embedded store (RocksDbStreamStore, RocksDbRecordStore,
  // RocksDbDeviceStore), so that a request valid for one is valid for the other.
  static constexpr std::size_t kMaxStreamKeyBytes = 1024;
  static constexpr std::size_t kMaxCollapseKeyBytes = 1024;
  static constexpr std::size_t kMaxRecordKeyBytes = 1024;
  static constexpr std::size_t kMaxRecordValueBytes = 1024 * 1024;
  static constexpr std::size_t kMaxNameBytes = 1024;

  // Starts the writer thread (its own cluster client from `client_options`).
  RedisStreamStore(const RedisStorageOptions& options, RedisClusterOptions client_options,
                   const redis_detail::Scripts& scripts, redis_detail::ClientPool& pool);
  ~RedisStreamStore() override;

  RedisStreamStore(const RedisStreamStore&) = delete;
  RedisStreamStore& operator=(const RedisStreamStore&) = delete;

  // StreamStore::read, with the embedded store's precisions: one run of consecutive seqs (a
  // hole ends it, with more); tombstones count toward max_entries and 0 bytes; max_entries 0
  // counts as 1; a cursor at or past the head gets nothing and no truncation. Also: at most 1024
  // seqs are looked at per call, so a long run of expired entries after the cursor is answered
  // as truncated_before (the seq after the run looked at) with more and no entries.
  // Errors: kBadStreamKey, kCorruptRecord / kCorruptMeta, the client's errors.
  [[nodiscard]] boost::system::result<ReadResult> read(const ReadRequest& request) override;

  [[nodiscard]] boost::system::result<StreamHead> head(std::string_view stream) override;

  // What the writer did (heraldd's herald_storage_* metrics). Any thread.
  [[nodiscard]] redis_detail::AppendWriterStats writer_stats() const { return writer_.stats(); }

 protected:
  // Validates and encodes on the caller's thread, then queues. Refusals complete through the
  // handler's executor without writing anything: kBadStreamKey, kBadRecordKey, kBadKey,
  // kBadCollapseKey, kEntryTooLarge, kRecordTooLarge, kBadEntryKind, kUnsyncedEntries,
  // kBatchTooLarge, queue full, kShuttingDown. may_use_reserve has no meaning here: Redis at its
  // maxmemory refuses every write with kOutOfMemory (no_space_on_device), nothing written.
  void do_append(AppendBatch batch,
                 boost::asio::any_completion_handler<AppendBatchSignature> handler) override;

 private:
  const redis_detail::KeyLayout keys_;
  const std::int64_t expiry_grace_ms_;
  const std::size_t max_batch_entries_;
  const redis_detail::Scripts& scripts_;
  redis_detail::ClientPool& pool_;
  redis_detail::AppendWriter writer_;
};

}  // namespace herald::storage
