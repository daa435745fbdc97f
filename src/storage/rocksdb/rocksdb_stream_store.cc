#include "storage/rocksdb/rocksdb_stream_store.h"

#include <algorithm>
#include <limits>

#include "common/log.h"
#include "storage/rocksdb/detail/key_codec.h"
#include "storage/rocksdb/detail/meta_codec.h"
#include "storage/rocksdb/detail/record_codec.h"
#include "storage/rocksdb/detail/record_value_codec.h"
#include "storage/rocksdb/rocksdb_database.h"
#include "storage/rocksdb/rocksdb_device_store.h"
#include "storage/rocksdb/rocksdb_error.h"
#include "storage/rocksdb/rocksdb_record_store.h"

namespace herald::storage {
namespace {

bool valid_stream_key(std::string_view stream) {
  return !stream.empty() && stream.size() <= RocksDbStreamStore::kMaxStreamKeyBytes;
}

bool valid_record_key(std::string_view key) {
  return !key.empty() && key.size() <= RocksDbRecordStore::kMaxRecordKeyBytes;
}

bool appendable_kind(DataKind kind) {
  return kind == DataKind::kJson || kind == DataKind::kBinary || kind == DataKind::kRecall;
}

bool fits_record(const Entry& entry) {
  constexpr std::size_t kMax = detail::kMaxEntryFieldBytes;
  // RocksDB refuses values of 4 GiB and more; the record adds at most 33 bytes of framing.
  constexpr std::size_t kMaxTotal = std::numeric_limits<std::uint32_t>::max() - 64;
  return entry.app.size() <= kMax && entry.message_id.size() <= kMax && entry.data.size() <= kMax &&
         entry.app.size() + entry.message_id.size() + entry.data.size() <= kMaxTotal;
}

// The stream's meta as of `options` (a snapshot, possibly); a never-written stream reads as {}.
boost::system::result<detail::StreamMeta> read_meta(const RocksDbDatabase& database,
                                                    const ::rocksdb::ReadOptions& options,
                                                    std::string_view stream) {
  ::rocksdb::PinnableSlice value;
  auto status = database.db().Get(options, database.stream_meta(), stream, &value);
  if (status.IsNotFound()) return detail::StreamMeta{};
  if (!status.ok()) return make_error_code(status);
  auto meta = detail::decode_stream_meta(value.ToStringView());
  if (!meta) {
    log::error("storage_corrupt_meta", {{"stream", stream}});
    return make_error_code(RocksDbError::kCorruptMeta);
  }
  return *meta;
}

boost::system::error_code corrupt_entry(std::string_view stream, std::string_view key) {
  log::error("storage_corrupt_record", {{"stream", stream}, {"key_bytes", key.size()}});
  return make_error_code(RocksDbError::kCorruptRecord);
}

}  // namespace

RocksDbStreamStore::RocksDbStreamStore(RocksDbDatabase& database, const RocksDbOptions& options)
    : database_(database),
      max_batch_entries_(std::max<std::size_t>(1, options.writer_queue_entries)),
      writer_(database, max_batch_entries_, options.head_cache_streams) {}

RocksDbStreamStore::~RocksDbStreamStore() = default;

void RocksDbStreamStore::do_append(
    AppendBatch batch, boost::asio::any_completion_handler<AppendBatchSignature> handler) {
  auto refuse = [&](RocksDbError error) { writer_.complete_now(std::move(handler), error); };
  const std::size_t items = batch.entries.size() + batch.put_records.size() +
                            batch.delete_records.size() + batch.tombstones.size() +
                            batch.acked_cursors.size();
  if (items > max_batch_entries_) return refuse(RocksDbError::kBatchTooLarge);
  if (!batch.sync && (!batch.entries.empty() || !batch.tombstones.empty())) {
    return refuse(RocksDbError::kUnsyncedEntries);
  }
  // The free-space reserve stops what grows the database without bound, new messages. What
  // passes uses the reserve: a scheduled send firing (accepted before), acks, status records,
  // cancellations, revocations and deletions, which finish or free what is stored.
  if (!batch.entries.empty() && !batch.may_use_reserve && database_.free_space().below_reserve()) {
    return refuse(RocksDbError::kStorageFull);
  }

  detail::EncodedBatch encoded;
  encoded.appends.reserve(batch.entries.size());
  for (auto& request : batch.entries) {
    if (!valid_stream_key(request.stream)) return refuse(RocksDbError::kBadStreamKey);
    if (!appendable_kind(request.entry.kind)) return refuse(RocksDbError::kBadEntryKind);
    if (!fits_record(request.entry)) return refuse(RocksDbError::kEntryTooLarge);
    if (request.collapse_key.size() > kMaxCollapseKeyBytes) {
      return refuse(RocksDbError::kBadCollapseKey);
    }
    detail::EncodedAppend append;
    append.stream = std::move(request.stream);
    append.record = detail::encode_entry_record(request.entry);
    if (!request.collapse_key.empty()) {
      append.collapse_key = std::move(request.collapse_key);
      append.message_id = std::move(request.entry.message_id);
      append.expires_at_ms = request.entry.expires_at_ms;
    }
    encoded.appends.push_back(std::move(append));
  }
  for (const auto& tombstone : batch.tombstones) {
    if (!valid_stream_key(tombstone.stream)) return refuse(RocksDbError::kBadStreamKey);
  }
  encoded.put_records.reserve(batch.put_records.size());
  for (auto& record : batch.put_records) {
    if (!valid_record_key(record.key)) return refuse(RocksDbError::kBadRecordKey);
    if (record.value.size() > RocksDbRecordStore::kMaxRecordValueBytes) {
      return refuse(RocksDbError::kRecordTooLarge);
    }
    encoded.put_records.push_back(
        {std::move(record.key), detail::encode_record_value(record.expires_at_ms, record.value)});
  }
  for (const auto& key : batch.delete_records) {
    if (!valid_record_key(key)) return refuse(RocksDbError::kBadRecordKey);
  }
  if (batch.unless_record_exists && !valid_record_key(*batch.unless_record_exists)) {
    return refuse(RocksDbError::kBadRecordKey);
  }
  encoded.acks.reserve(batch.acked_cursors.size());
  for (const auto& ack : batch.acked_cursors) {
    if (ack.device.empty() || ack.device.size() > RocksDbDeviceStore::kMaxNameBytes ||
        !valid_stream_key(ack.stream)) {
      return refuse(RocksDbError::kBadKey);
    }
    encoded.acks.push_back({detail::pair_key(ack.device, ack.stream), ack.cursor});
  }
  encoded.delete_records = std::move(batch.delete_records);
  encoded.tombstones = std::move(batch.tombstones);
  encoded.unless_record_exists = std::move(batch.unless_record_exists);
  encoded.now_ms = batch.now_ms;
  encoded.sync = batch.sync;
  writer_.submit(std::move(encoded), std::move(handler));
}

boost::system::result<ReadResult> RocksDbStreamStore::read(const ReadRequest& request) {
  if (!valid_stream_key(request.stream)) return RocksDbError::kBadStreamKey;
  auto& db = database_.db();
  // One snapshot for the meta and the entries: the writer updates both in one batch.
  ::rocksdb::ManagedSnapshot snapshot(&db);
  ::rocksdb::ReadOptions options;
  options.snapshot = snapshot.snapshot();

  auto meta = read_meta(database_, options, request.stream);
  if (!meta) return meta.error();

  ReadResult result;
  if (meta->stream_epoch32 != 0) {
    result.epoch = detail::effective_epoch(database_.generation(), meta->stream_epoch32);
    result.head_seq = meta->head_seq;
  }
  result.epoch_changed = request.epoch != 0 && request.epoch != result.epoch;
  const std::uint64_t after = result.epoch_changed ? 0 : request.after_seq;
  if (after >= result.head_seq) return result;

  const std::string prefix = detail::stream_prefix(request.stream);
  const std::string lower = detail::entry_key_from_prefix(prefix, after + 1);
  const std::string upper = result.head_seq == std::numeric_limits<std::uint64_t>::max()
                                ? detail::prefix_successor(prefix)
                                : detail::entry_key_from_prefix(prefix, result.head_seq + 1);
  const ::rocksdb::Slice upper_slice(upper);
  if (!upper.empty()) options.iterate_upper_bound = &upper_slice;

  const std::size_t max_entries = std::max<std::size_t>(1, request.max_entries);
  std::size_t bytes = 0;
  std::unique_ptr<::rocksdb::Iterator> it(db.NewIterator(options, database_.stream_entries()));
  for (it->Seek(lower); it->Valid(); it->Next()) {
    const auto key = it->key().ToStringView();
    const auto value = it->value().ToStringView();
    const auto seq = detail::entry_key_seq(key, prefix);
    const auto expires_at_ms = detail::entry_record_expires_at_ms(value);
    if (!seq || !expires_at_ms) return corrupt_entry(request.stream, key);
    if (*expires_at_ms <= request.now_ms) continue;
    // Invariant: result.entries holds consecutive seqs. A live entry after a hole ends the
    // answer; the next read starts at the hole and reports it as truncated_before.
    if (!result.entries.empty() && *seq != result.entries.back().seq + 1) {
      result.more = true;
      break;
    }
    if (result.entries.size() >= max_entries) {
      result.more = true;
      break;
    }
    auto entry = detail::decode_entry_record(value);
    if (!entry) return corrupt_entry(request.stream, key);
    // The first entry goes out whatever its size, so a reader always makes progress.
    if (!result.entries.empty() && bytes + entry->data.size() > request.max_bytes) {
      result.more = true;
      break;
    }
    bytes += entry->data.size();
    entry->seq = *seq;
    result.entries.push_back(std::move(*entry));
  }
  if (!it->status().ok()) return make_error_code(it->status());

  if (result.entries.empty()) {
    // Everything after the cursor has expired (or been dropped by compaction).
    result.truncated_before = result.head_seq + 1;
  } else if (result.entries.front().seq > after + 1) {
    result.truncated_before = result.entries.front().seq;
  }
  return result;
}

boost::system::result<StreamHead> RocksDbStreamStore::head(std::string_view stream) {
  if (!valid_stream_key(stream)) return RocksDbError::kBadStreamKey;
  auto meta = read_meta(database_, ::rocksdb::ReadOptions(), stream);
  if (!meta) return meta.error();
  if (meta->stream_epoch32 == 0) return StreamHead{};
  return StreamHead{detail::effective_epoch(database_.generation(), meta->stream_epoch32),
                    meta->head_seq};
}

}  // namespace herald::storage
