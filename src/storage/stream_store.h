// StreamStore: append-only logs ("streams") with a sequence number per entry, an epoch per stream
// and an expiry per entry. This is the storage layer's contract; `rocksdb/` implements it for the
// embedded default, `redis/` on a Redis Cluster for the cluster mode (docs/cluster.md).
//
// Streams are named by opaque keys chosen by the logic layer (a device inbox is "i/<device>").
// Invariants every implementation keeps:
//   - Within one epoch the sequence numbers of a stream are 1, 2, 3, ... with no gap and no reuse.
//   - An append is durable (per the configured durability mode) before its completion runs:
//     commit before deliver.
//   - An entry whose expires_at_ms <= now is never returned; it is dropped at some later point.
//   - If entries that were acknowledged could have been lost (a crash in a non-syncing mode) or a
//     stream was reset, the stream's epoch changes, so no client mistakes new entries for old.
//   - An entry is never removed before it expires: one that must go (replaced through a collapse
//     key, revoked) becomes a tombstone at the same seq, which readers step over without a gap.
//
// The append path is also the write path of the RecordStore (record_store.h): one AppendBatch
// appends entries, tombstones entries, puts and deletes records, as one atomic write, optionally
// only if a record does not exist yet (idempotency keys, exactly-once firing of scheduled sends).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include "storage/device_store.h"
#include "storage/record_store.h"

namespace herald::storage {

// What an entry's data holds. The numbers are those of the wire enum DataKind
// (src/protocol/herald_device.proto) and of the stored record: never renumber.
enum class DataKind : std::uint8_t {
  kJson = 0,    // UTF-8 JSON text
  kBinary = 1,  // opaque bytes
  // The entry at this seq was replaced (collapse key) or revoked. Written by the store only,
  // never appended: it keeps the seq, app, message_id, sent_at_ms and expires_at_ms of the entry
  // it replaced and has no data. read() returns it (it counts toward max_entries and 0 bytes
  // toward max_bytes) so that the reader steps its cursor over it without seeing a gap.
  kTombstone = 2,
  // A control entry appended by the logic layer: data holds the message_id of an earlier message
  // of the same app that the sender revoked after it may have been delivered. Stored like kJson.
  kRecall = 3,
};

struct Entry {
  std::uint64_t seq = 0;  // assigned by the store on append
  std::string app;
  std::string message_id;
  DataKind kind = DataKind::kJson;
  std::string data;
  std::int64_t sent_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  // Which readers of the stream may see this entry, in the logic layer's encoding (a topic
  // condition); empty = every reader. Opaque to the store, which keeps and returns it (a
  // tombstone drops it).
  std::string audience;
};

struct AppendRequest {
  std::string stream;  // stream key
  Entry entry;         // entry.seq is ignored; entry.kind may not be kTombstone
  // Non-empty: this entry replaces the latest earlier entry of `stream` appended with the same
  // collapse key, if that one is still live (stored, not expired, not already a tombstone): the
  // earlier one becomes a tombstone in the same atomic write. "Only the latest score matters."
  std::string collapse_key;
};

struct AppendResult {
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::uint64_t collapsed_seq = 0;  // the seq this append's collapse key tombstoned; 0 if none
};

// Replace the entry at `seq` of `stream` by a tombstone (DataKind::kTombstone), if it is still
// live (stored, not expired, not already a tombstone) and its message_id is `message_id`.
// Otherwise nothing happens to it: revoking a message that is gone is not an error.
struct Tombstone {
  std::string stream;
  std::uint64_t seq = 0;
  std::string message_id;
};

// A device's acked cursor of one stream, for AppendBatch::acked_cursors.
struct AckUpdate {
  std::string device;
  std::string stream;
  AckedCursor cursor;
};

// One atomic write: everything in it is written, or (error, or unless_record_exists hit)
// nothing is. Applied in this order, each step seeing the ones before it (and every batch
// written before, including earlier batches of the same group commit):
//   1. unless_record_exists is tested;
//   2. tombstones, in order;
//   3. entries, in order (with their collapse keys);
//   4. delete_records, then put_records (a key both deleted and put ends up put; of two puts of
//      one key the last wins);
//   5. acked_cursors, in order.
struct AppendBatch {
  std::vector<AppendRequest> entries;  // may be empty
  std::vector<Record> put_records;
  std::vector<std::string> delete_records;  // deleting a key that does not exist is no error
  std::vector<Tombstone> tombstones;
  // Devices' acked positions (what DeviceStore::acked reads). Each moves its cursor forward
  // only: one stored for the same epoch at or past it stays, as with DeviceStore::save_ack. The
  // writer applies them, so an ack never waits on the caller's thread behind a group's fsync.
  std::vector<AckUpdate> acked_cursors;
  // Idempotency and exactly-once firing: when a live record with this key exists, including one
  // put by a batch written before this one in the same group commit, NOTHING of this batch is
  // written and the completion succeeds with that record in AppendOutcome::existing. Otherwise
  // the batch is written (normally it also puts that key, so that the next one finds it).
  std::optional<std::string> unless_record_exists;
  // The caller's clock (Unix ms), for every liveness test of this batch: whether the
  // unless_record_exists record, the tombstoned entries and the collapsed entries are live.
  // Readers pass their own now_ms; the store has no clock of its own here.
  std::int64_t now_ms = 0;
  // false: the write reaches the WAL (the OS) before completion but is not fsynced for it,
  // whatever the durability mode; it survives a process crash, not a machine crash. For status
  // bookkeeping (last-seen times). Only for batches of records: a batch with entries or
  // tombstones and sync = false is refused, because losing an acknowledged entry on a machine
  // crash would reuse its seq without an epoch change. (Acked cursors may go unsynced: they are
  // bookkeeping, and a lost one only makes a device look less far.) A group commit is fsynced when
  // any batch in it wants it, so sync = false never weakens another batch.
  bool sync = true;
  // A store may keep a free-space reserve (RocksDbOptions::min_free_bytes): below it, a batch
  // that adds entries is refused (no_space_on_device) so that new messages stop before the disk
  // is full, while everything that finishes or frees what was already accepted goes on. true:
  // this batch delivers a message accepted earlier (a scheduled send firing), so it may use the
  // reserve; refusing it would turn an accepted message into a lost one. Batches without entries
  // always may.
  bool may_use_reserve = false;
};

struct AppendOutcome {
  std::vector<AppendResult> results;  // one per AppendBatch::entries, same order
  std::vector<bool> tombstoned;       // one per AppendBatch::tombstones: it replaced a live entry
  // Set when unless_record_exists hit: nothing was written (results and tombstoned are empty).
  std::optional<Record> existing;
};

struct ReadRequest {
  std::string_view stream;
  std::uint64_t epoch = 0;  // the reader's epoch; 0 = none yet
  std::uint64_t after_seq = 0;
  std::size_t max_entries = 100;
  std::size_t max_bytes = 256 * 1024;  // sum of data sizes; at least one entry is returned
  std::int64_t now_ms = 0;             // entries with expires_at_ms <= now_ms are skipped
};

struct ReadResult {
  std::uint64_t epoch = 0;     // the stream's current epoch (0 if the stream was never written)
  std::uint64_t head_seq = 0;  // last sequence number assigned in this epoch
  bool epoch_changed = false;  // request.epoch != 0 and != epoch: entries start at seq 1
  // Non-zero when entries after the effective after_seq and before this seq are gone (expired or
  // pruned): the reader's cursor may jump to truncated_before - 1.
  std::uint64_t truncated_before = 0;
  bool more = false;  // limits cut the answer short
  std::vector<Entry> entries;
};

struct StreamHead {
  std::uint64_t epoch = 0;
  std::uint64_t head_seq = 0;
};

using AppendSignature = void(boost::system::error_code, std::vector<AppendResult>);
using AppendBatchSignature = void(boost::system::error_code, AppendOutcome);

namespace detail {

// Adapts a handler of AppendSignature to AppendBatchSignature (it receives outcome.results),
// keeping its associated executor, allocator and cancellation slot (see the associator below).
template <class Handler>
class ResultsOnlyHandler {
 public:
  explicit ResultsOnlyHandler(Handler handler) : handler_(std::move(handler)) {}

  void operator()(boost::system::error_code ec, AppendOutcome outcome) {
    std::move(handler_)(ec, std::move(outcome.results));
  }

  [[nodiscard]] const Handler& handler() const noexcept { return handler_; }

 private:
  Handler handler_;
};

}  // namespace detail

class StreamStore {
 public:
  virtual ~StreamStore() = default;

  // Writes `batch` (see AppendBatch for what it holds and in which order it applies) as one
  // atomic write, assigning each entry the next sequence number of its stream (a batch may name
  // a stream several times). Completes on the handler's associated executor once the write is
  // durable (per the durability mode and batch.sync) with the outcome: one result per entry, one
  // flag per tombstone, or the existing record when unless_record_exists hit (success; nothing
  // written). Errors, after which nothing of the batch was written unless said otherwise:
  //   - errc::invalid_argument class: a bad stream or record key, an oversized entry or record,
  //     a tombstone kind appended, sync = false with entries or tombstones, a batch larger than
  //     the writer's whole queue. Fix the request; do not retry it as is.
  //   - errc::resource_unavailable_try_again: the writer's queue is full. Retry later.
  //   - errc::no_space_on_device: the batch adds entries while free disk space is below the
  //     store's reserve (see may_use_reserve). Nothing was written; retry once space returns.
  //   - a storage error from the engine. The outcome is then unknown: a write that reached the
  //     log before its fsync failed may reappear when the database is reopened (all of the
  //     batch or none of it, with its head records, so sequence numbers stay consistent).
  //     RocksDB refuses further writes until it recovers (the RocksDB store retries by itself
  //     when the engine says the error is recoverable, such as a full disk) or is reopened.
  // Batches apply in the order they are accepted. An empty batch writes nothing and completes
  // once every batch accepted before it has been applied: a barrier for a reader that must see
  // an unsynced write made earlier (a status read after the answer that queued it).
  // Cancellation is not supported: an accepted batch always completes. Thread-safe.
  template <class Token>
  auto async_append(AppendBatch batch, Token&& token) {
    return boost::asio::async_initiate<Token, AppendBatchSignature>(
        [this](auto handler, AppendBatch b) { do_append(std::move(b), std::move(handler)); }, token,
        std::move(batch));
  }

  // The entries-only form of the above: appends `entries` in order as one atomic and durable
  // write and completes with one result per entry. Liveness tests (collapse keys) use the
  // latest entry.sent_at_ms of the batch as now_ms. Same errors.
  template <class Token>
  auto async_append(std::vector<AppendRequest> entries, Token&& token) {
    return boost::asio::async_initiate<Token, AppendSignature>(
        [this](auto handler, std::vector<AppendRequest> e) {
          AppendBatch b;
          for (const auto& request : e) b.now_ms = std::max(b.now_ms, request.entry.sent_at_ms);
          b.entries = std::move(e);
          do_append(std::move(b),
                    detail::ResultsOnlyHandler<decltype(handler)>(std::move(handler)));
        },
        token, std::move(entries));
  }

  // Reads entries of a stream after a sequence number. Thread-safe; runs on the caller's thread.
  [[nodiscard]] virtual boost::system::result<ReadResult> read(const ReadRequest& request) = 0;

  // The current epoch and head of a stream ({0, 0} for a stream never written).
  [[nodiscard]] virtual boost::system::result<StreamHead> head(std::string_view stream) = 0;

 protected:
  virtual void do_append(AppendBatch batch,
                         boost::asio::any_completion_handler<AppendBatchSignature> handler) = 0;
};

}  // namespace herald::storage

// Completions of the entries-only async_append run where the caller's handler would have run.
template <template <typename, typename> class Associator, typename Handler,
          typename DefaultCandidate>
struct boost::asio::associator<Associator, herald::storage::detail::ResultsOnlyHandler<Handler>,
                               DefaultCandidate> : Associator<Handler, DefaultCandidate> {
  static typename Associator<Handler, DefaultCandidate>::type get(
      const herald::storage::detail::ResultsOnlyHandler<Handler>& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler());
  }
  static auto get(const herald::storage::detail::ResultsOnlyHandler<Handler>& h,
                  const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler(), c)) {
    return Associator<Handler, DefaultCandidate>::get(h.handler(), c);
  }
};
