#include "storage/redis/redis_stream_store.h"

#include <algorithm>
#include <limits>

#include "common/log.h"
#include "storage/redis/detail/value_codec.h"
#include "storage/redis/redis_error.h"

namespace herald::storage {
namespace {

bool valid_stream_key(std::string_view stream) {
  return !stream.empty() && stream.size() <= RedisStreamStore::kMaxStreamKeyBytes;
}

bool valid_record_key(std::string_view key) {
  return !key.empty() && key.size() <= RedisStreamStore::kMaxRecordKeyBytes;
}

bool appendable_kind(DataKind kind) {
  return kind == DataKind::kJson || kind == DataKind::kBinary || kind == DataKind::kRecall;
}

bool fits(const Entry& entry) {
  constexpr std::size_t kMax = redis_detail::kMaxEntryFieldBytes;
  return entry.app.size() <= kMax && entry.message_id.size() <= kMax && entry.data.size() <= kMax &&
         entry.audience.size() <= kMax;
}

// When Redis may drop a record that expires at `expires_at_ms` ("0": never), within the range
// PEXPIREAT takes.
std::string record_pexpireat(std::int64_t expires_at_ms, std::int64_t grace_ms) {
  if (expires_at_ms == 0) return "0";
  constexpr std::int64_t kLatest = 1'000'000'000'000'000;  // year 33658
  const std::int64_t at = expires_at_ms > kLatest - grace_ms
                              ? kLatest
                              : std::max<std::int64_t>(1, expires_at_ms + grace_ms);
  return std::to_string(at);
}

boost::system::error_code unexpected(std::string_view what) {
  log::error("redis_unexpected_reply", {{"what", what}});
  return make_error_code(RedisError::kUnexpectedReply);
}

bool is_integer(const RedisValue& v) { return v.type == RedisValue::Type::kInteger; }

}  // namespace

RedisStreamStore::RedisStreamStore(const RedisStorageOptions& options,
                                   RedisClusterOptions client_options,
                                   const redis_detail::Scripts& scripts,
                                   redis_detail::ClientPool& pool)
    : keys_(options.keyspace),
      expiry_grace_ms_(std::max<std::int64_t>(0, options.expiry_grace_ms)),
      max_batch_entries_(std::max<std::size_t>(1, options.writer_queue_entries)),
      scripts_(scripts),
      pool_(pool),
      writer_(std::move(client_options), keys_.prefix(), scripts, max_batch_entries_,
              options.replicas_to_wait,
              std::min(options.replica_wait_timeout, options.command_timeout / 2)) {}

RedisStreamStore::~RedisStreamStore() = default;

void RedisStreamStore::do_append(
    AppendBatch batch, boost::asio::any_completion_handler<AppendBatchSignature> handler) {
  auto refuse = [&](RedisError error) { writer_.complete_now(std::move(handler), error); };
  const std::size_t items = batch.entries.size() + batch.put_records.size() +
                            batch.delete_records.size() + batch.tombstones.size() +
                            batch.acked_cursors.size();
  if (items > max_batch_entries_) return refuse(RedisError::kBatchTooLarge);
  if (!batch.sync && (!batch.entries.empty() || !batch.tombstones.empty())) {
    return refuse(RedisError::kUnsyncedEntries);
  }
  for (const auto& request : batch.entries) {
    if (!valid_stream_key(request.stream)) return refuse(RedisError::kBadStreamKey);
    if (!appendable_kind(request.entry.kind)) return refuse(RedisError::kBadEntryKind);
    if (!fits(request.entry)) return refuse(RedisError::kEntryTooLarge);
    if (request.collapse_key.size() > kMaxCollapseKeyBytes) {
      return refuse(RedisError::kBadCollapseKey);
    }
  }
  for (const auto& tombstone : batch.tombstones) {
    if (!valid_stream_key(tombstone.stream)) return refuse(RedisError::kBadStreamKey);
  }
  for (const auto& record : batch.put_records) {
    if (!valid_record_key(record.key)) return refuse(RedisError::kBadRecordKey);
    if (record.value.size() > kMaxRecordValueBytes) return refuse(RedisError::kRecordTooLarge);
  }
  for (const auto& key : batch.delete_records) {
    if (!valid_record_key(key)) return refuse(RedisError::kBadRecordKey);
  }
  if (batch.unless_record_exists && !valid_record_key(*batch.unless_record_exists)) {
    return refuse(RedisError::kBadRecordKey);
  }
  for (const auto& ack : batch.acked_cursors) {
    if (ack.device.empty() || ack.device.size() > kMaxNameBytes || !valid_stream_key(ack.stream)) {
      return refuse(RedisError::kBadKey);
    }
  }

  redis_detail::EncodedBatch encoded;
  encoded.weight = std::max<std::size_t>(1, items);
  if (items == 0 && !batch.unless_record_exists) {
    // A barrier: nothing to send, completes after every batch queued before it.
    writer_.submit(std::move(encoded), std::move(handler));
    return;
  }
  encoded.entries = batch.entries.size();
  encoded.tombstones = batch.tombstones.size();
  auto& args = encoded.args;
  args.reserve(8 + 3 * batch.tombstones.size() + 3 * batch.entries.size() +
               batch.delete_records.size() + 3 * batch.put_records.size() +
               5 * batch.acked_cursors.size());
  args.push_back(std::to_string(batch.now_ms));
  args.push_back(batch.unless_record_exists.value_or(std::string()));
  args.push_back(std::to_string(expiry_grace_ms_));
  for (const std::size_t count :
       {batch.tombstones.size(), batch.entries.size(), batch.delete_records.size(),
        batch.put_records.size(), batch.acked_cursors.size()}) {
    args.push_back(std::to_string(count));
  }
  for (auto& tombstone : batch.tombstones) {
    args.push_back(std::move(tombstone.stream));
    args.push_back(std::to_string(tombstone.seq));
    args.push_back(std::move(tombstone.message_id));
  }
  for (auto& request : batch.entries) {
    args.push_back(redis_detail::encode_entry(request.entry, request.collapse_key));
    args.push_back(std::move(request.stream));
    args.push_back(std::move(request.collapse_key));
    // Stream, collapse key, entry: the entry was encoded first, before its fields moved.
    std::rotate(args.end() - 3, args.end() - 2, args.end());
  }
  for (auto& key : batch.delete_records) args.push_back(std::move(key));
  for (auto& record : batch.put_records) {
    args.push_back(std::move(record.key));
    args.push_back(record_pexpireat(record.expires_at_ms, expiry_grace_ms_));
    args.push_back(redis_detail::encode_record(record.expires_at_ms, record.value));
  }
  for (auto& ack : batch.acked_cursors) {
    args.push_back(std::move(ack.device));
    args.push_back(std::move(ack.stream));
    args.push_back(std::to_string(ack.cursor.epoch));
    args.push_back(std::to_string(ack.cursor.seq));
    args.push_back(std::to_string(ack.cursor.acked_at_ms));
  }
  encoded.unless_record_exists = std::move(batch.unless_record_exists);
  writer_.submit(std::move(encoded), std::move(handler));
}

boost::system::result<ReadResult> RedisStreamStore::read(const ReadRequest& request) {
  if (!valid_stream_key(request.stream)) return RedisError::kBadStreamKey;
  std::vector<std::string> args{std::string(request.stream),
                                std::to_string(request.epoch),
                                std::to_string(request.after_seq),
                                std::to_string(std::max<std::size_t>(1, request.max_entries)),
                                std::to_string(request.max_bytes),
                                std::to_string(request.now_ms)};
  auto reply = pool_.run([&](RedisClusterClient& client) {
    return redis_detail::run_script(client, scripts_.read, keys_.prefix(), args);
  });
  if (!reply) return reply.error();
  const auto& e = reply->elements;
  if (reply->type != RedisValue::Type::kArray || e.size() < 6 ||
      !std::all_of(e.begin() + 1, e.begin() + 6, is_integer)) {
    return unexpected("read");
  }
  auto epoch = redis_detail::parse_u64(e[0].text);
  if (!epoch || e[1].integer < 0 || e[3].integer < 0 || e[5].integer < 0) {
    return unexpected("read");
  }
  ReadResult result;
  result.epoch = *epoch;
  result.head_seq = static_cast<std::uint64_t>(e[1].integer);
  result.epoch_changed = e[2].integer != 0;
  result.truncated_before = static_cast<std::uint64_t>(e[3].integer);
  result.more = e[4].integer != 0;
  const auto first = static_cast<std::uint64_t>(e[5].integer);
  result.entries.reserve(e.size() - 6);
  for (std::size_t i = 6; i < e.size(); ++i) {
    auto entry = redis_detail::decode_entry(e[i].text);
    if (!entry) {
      log::error("storage_corrupt_record", {{"stream", request.stream}});
      return make_error_code(RedisError::kCorruptRecord);
    }
    entry->seq = first + (i - 6);
    result.entries.push_back(std::move(*entry));
  }
  return result;
}

boost::system::result<StreamHead> RedisStreamStore::head(std::string_view stream) {
  if (!valid_stream_key(stream)) return RedisError::kBadStreamKey;
  const RedisCommand command{"HMGET", keys_.meta(stream), "e", "h"};
  auto reply =
      pool_.run([&](RedisClusterClient& client) { return client.call(keys_.prefix(), command); });
  if (!reply) return reply.error();
  if (reply->is_error()) return redis_detail::reply_error(*reply);
  if (reply->type != RedisValue::Type::kArray || reply->elements.size() != 2) {
    return unexpected("head");
  }
  if (reply->elements[0].is_nil()) return StreamHead{};
  auto epoch = redis_detail::parse_u64(reply->elements[0].text);
  auto head = redis_detail::parse_u64(reply->elements[1].text);
  if (!epoch || !head) {
    log::error("storage_corrupt_meta", {{"stream", stream}});
    return make_error_code(RedisError::kCorruptMeta);
  }
  return StreamHead{*epoch, *head};
}

}  // namespace herald::storage
