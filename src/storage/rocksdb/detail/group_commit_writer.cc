#include "storage/rocksdb/detail/group_commit_writer.h"

#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <limits>
#include <optional>
#include <unordered_map>

#include <rocksdb/write_batch.h>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/errc.hpp>

#include "common/crash_point.h"
#include "common/log.h"
#include "storage/rocksdb/detail/key_codec.h"
#include "storage/rocksdb/detail/meta_codec.h"
#include "storage/rocksdb/detail/record_codec.h"
#include "storage/rocksdb/detail/record_value_codec.h"
#include "storage/rocksdb/rocksdb_database.h"
#include "storage/rocksdb/rocksdb_error.h"

namespace herald::storage::detail {

void dispatch_completion(AppendHandler handler, boost::system::error_code ec,
                         AppendOutcome outcome) {
  boost::asio::dispatch(boost::asio::append(std::move(handler), ec, std::move(outcome)));
}

std::size_t EncodedBatch::weight() const {
  const std::size_t items =
      appends.size() + put_records.size() + delete_records.size() + tombstones.size() + acks.size();
  return items == 0 ? 1 : items;
}

// What one group has staged so far, over the database: every value the group has read or
// written, keyed as in the database. Reads fill it (each key is read at most once per group);
// writes replace the value and add the operation to `batch`.
//
// Invariant: every value here is the database's value with `batch` so far applied on top, so a
// batch later in the group sees the effects of the batches before it. A value only read is the
// database's own, so a batch whose reads fail half-way leaves nothing wrong behind.
class GroupCommitWriter::Group {
 public:
  struct StagedMeta {
    StreamMeta meta;
    bool dirty = false;  // advanced by this group: written with the batch
  };

  explicit Group(bool index) : index_entries(index) {}

  // Entries are only looked up (tombstones, collapse keys) when a batch of the group has
  // tombstones or collapse keys; otherwise the group does not index the entries it appends.
  const bool index_entries;
  ::rocksdb::WriteBatch batch;
  // Keys view the batches' own stream strings, which stay put while the group is written.
  std::unordered_map<std::string_view, StagedMeta> metas;
  // entry key -> the entry record; nullptr = no entry. Appended entries point into their
  // EncodedAppend, entries read or tombstoned into `arena`.
  std::unordered_map<std::string, const std::string*> entries;
  // lp(stream) collapse key -> the pointer; nullopt = none.
  std::unordered_map<std::string, std::optional<CollapsePointer>> pointers;
  // record key (viewing the batches' strings) -> the stored record value; nullptr = none.
  std::unordered_map<std::string_view, const std::string*> records;
  // acked cursor key (viewing the batches' strings) -> the stored cursor value; nullptr = none.
  std::unordered_map<std::string_view, const std::string*> acks;
  std::deque<std::string> arena;  // references stay valid as it grows
  std::size_t entries_written = 0;
  std::size_t tombstones_written = 0;

  // Replaces the entry under `key` (looked up before) by its tombstone when it is live at now_ms
  // and carries message_id. Returns whether it did.
  bool tombstone(RocksDbDatabase& database, const std::string& key, std::string_view message_id,
                 std::int64_t now_ms) {
    auto it = entries.find(key);
    assert(it != entries.end() && "prepare() looks up every entry apply() may tombstone");
    if (it->second == nullptr) return false;
    auto entry = decode_entry_record(*it->second);
    assert(entry && "checked when read, or encoded by this process");
    if (entry->kind == DataKind::kTombstone || entry->expires_at_ms <= now_ms ||
        entry->message_id != message_id) {
      return false;
    }
    const std::string& record = arena.emplace_back(encode_tombstone_record(*entry));
    it->second = &record;
    put(database.stream_entries(), key, record);
    ++tombstones_written;
    return true;
  }

  void put(::rocksdb::ColumnFamilyHandle* family, std::string_view key, std::string_view value) {
    [[maybe_unused]] auto status = batch.Put(family, key, value);
    // Only keys or values over 4 GiB fail, and the store refuses such requests up front.
    assert(status.ok());
  }
};

GroupCommitWriter::GroupCommitWriter(RocksDbDatabase& database, std::size_t queue_entries,
                                     std::size_t head_cache_streams)
    : database_(database),
      queue_entries_(queue_entries),
      heads_(head_cache_streams),
      random_(std::random_device{}()),
      thread_([this] { run(); }) {
  assert(queue_entries_ >= 1);
}

GroupCommitWriter::~GroupCommitWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  relay_.join();  // every refusal completes before the store goes away
}

void GroupCommitWriter::complete_now(AppendHandler handler, boost::system::error_code ec) {
  // The tracked executor keeps the handler's io_context busy while the relay holds it.
  auto work = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                  boost::asio::execution::outstanding_work.tracked);
  boost::asio::post(relay_, [handler = std::move(handler), work = std::move(work), ec]() mutable {
    dispatch_completion(std::move(handler), ec);
  });
}

void GroupCommitWriter::submit(EncodedBatch batch, AppendHandler handler) {
  const std::size_t weight = batch.weight();
  assert(weight <= queue_entries_);
  boost::system::error_code refused;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      refused = RocksDbError::kShuttingDown;
    } else if (weight > queue_entries_ - queued_entries_) {
      refused =
          boost::system::errc::make_error_code(boost::system::errc::resource_unavailable_try_again);
    } else {
      queued_entries_ += weight;
      auto work = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                      boost::asio::execution::outstanding_work.tracked);
      queue_.push_back(Pending{std::move(batch), std::move(handler), std::move(work), {}, {}});
    }
  }
  if (refused) {
    appends_refused_.fetch_add(1, std::memory_order_relaxed);
    complete_now(std::move(handler), refused);
    return;
  }
  wake_.notify_one();
}

GroupCommitStats GroupCommitWriter::stats() const {
  GroupCommitStats s;
  s.batches_written = batches_written_.load(std::memory_order_relaxed);
  s.appends_written = appends_written_.load(std::memory_order_relaxed);
  s.appends_skipped = appends_skipped_.load(std::memory_order_relaxed);
  s.entries_written = entries_written_.load(std::memory_order_relaxed);
  s.tombstones_written = tombstones_written_.load(std::memory_order_relaxed);
  s.appends_refused = appends_refused_.load(std::memory_order_relaxed);
  return s;
}

void GroupCommitWriter::run() {
  pthread_setname_np(pthread_self(), "herald-append");  // for top -H and gdb
  for (;;) {
    std::deque<Pending> group;
    {
      std::unique_lock lock(mutex_);
      const auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (sync_deadline_) {
        wake_.wait_until(lock, *sync_deadline_, ready);
      } else {
        wake_.wait(lock, ready);
      }
      // Stopping, and everything accepted has been written; closing the database syncs the WAL.
      if (queue_.empty() && stopping_) return;
      group.swap(queue_);
      queued_entries_ = 0;
    }
    if (group.empty()) {
      sync_unsynced_writes();  // the deadline passed with nothing to write
    } else {
      write_group(group);
    }
  }
}

void GroupCommitWriter::note_written(bool synced) {
  const auto interval = database_.wal_sync_interval();
  if (synced) {
    sync_deadline_.reset();
  } else if (interval.count() > 0 && !sync_deadline_) {
    sync_deadline_ = std::chrono::steady_clock::now() + interval;
  }
}

void GroupCommitWriter::sync_unsynced_writes() {
  if (database_.healthy()) {
    auto status = database_.sync_wal();
    if (status.ok()) {
      sync_deadline_.reset();
      return;
    }
    database_.note_write_failure();
    log::error("storage_wal_sync_failed",
               {{"path", database_.path()}, {"error", status.ToString()}});
  }
  // Once RocksDB has resumed (it flushes the memtables, which syncs them) or at the next try.
  sync_deadline_ = std::chrono::steady_clock::now() + database_.wal_sync_interval();
}

void GroupCommitWriter::write_group(std::deque<Pending>& group) {
  bool index_entries = false;
  for (const auto& pending : group) {
    index_entries = index_entries || !pending.batch.tombstones.empty() ||
                    std::any_of(pending.batch.appends.begin(), pending.batch.appends.end(),
                                [](const EncodedAppend& a) { return !a.collapse_key.empty(); });
  }
  Group staged(index_entries);
  // An fsync for the group when any batch that writes wants one: sync = false never weakens
  // another batch of the same group.
  bool sync_wanted = false;
  std::uint64_t written = 0;
  std::uint64_t skipped = 0;
  for (auto& pending : group) {
    pending.error = prepare(pending, staged);
    if (pending.error) continue;
    if (pending.outcome.existing) {
      ++skipped;
      continue;
    }
    apply(pending, staged);
    sync_wanted = sync_wanted || pending.batch.sync;
    ++written;
  }

  boost::system::error_code write_error;
  for (const auto& [stream, staged_meta] : staged.metas) {
    if (staged_meta.dirty) {
      staged.put(database_.stream_meta(), stream, encode_stream_meta(staged_meta.meta));
    }
  }
  if (staged.batch.Count() > 0) {
    auto options = database_.append_write_options(sync_wanted);
    // kFast: a write due to be synced syncs everything before it, so this group does it.
    options.sync =
        options.sync || (sync_deadline_ && std::chrono::steady_clock::now() >= *sync_deadline_);
    auto status = database_.db().Write(options, &staged.batch);
    if (status.ok()) {
      note_written(options.sync);
      // The whole group is durable and no caller knows yet.
      HERALD_CRASH_POINT("after_group_write");
      // Counted before any completion runs, so a caller that saw its completion sees them.
      batches_written_.fetch_add(1, std::memory_order_relaxed);
      entries_written_.fetch_add(staged.entries_written, std::memory_order_relaxed);
      tombstones_written_.fetch_add(staged.tombstones_written, std::memory_order_relaxed);
    } else {
      write_error = make_error_code(status);
      database_.note_write_failure();
      log::error("storage_append_failed",
                 {{"operations", staged.batch.Count()}, {"error", status.ToString()}});
    }
  }
  // Read metas equal the database's, written ones do now; after a failure the database holds
  // none of the group: forget every stream it touched and reload on next use.
  for (const auto& [stream, staged_meta] : staged.metas) {
    if (write_error) {
      heads_.erase(stream);
    } else {
      heads_.put(stream, staged_meta.meta);
    }
  }

  if (!write_error) {
    appends_written_.fetch_add(written + skipped, std::memory_order_relaxed);
    appends_skipped_.fetch_add(skipped, std::memory_order_relaxed);
  }
  for (auto& pending : group) {
    if (pending.error) {
      dispatch_completion(std::move(pending.handler), pending.error);
    } else if (write_error) {
      // Also a batch whose precondition hit: the record it found may be one this group put.
      dispatch_completion(std::move(pending.handler), write_error);
    } else {
      dispatch_completion(std::move(pending.handler), {}, std::move(pending.outcome));
    }
  }
}

boost::system::error_code GroupCommitWriter::prepare(Pending& pending, Group& group) {
  const EncodedBatch& batch = pending.batch;
  auto& db = database_.db();

  // The stored value under `key` of `family` into `map` (unless there already), checked with
  // `valid`. `corrupt` is the error for a value that fails the check.
  auto read_into = [&](auto& map, auto map_key, ::rocksdb::ColumnFamilyHandle* family,
                       std::string_view key, auto valid,
                       RocksDbError corrupt) -> boost::system::error_code {
    if (map.contains(map_key)) return {};
    ::rocksdb::PinnableSlice value;
    auto status = db.Get(::rocksdb::ReadOptions(), family, key, &value);
    if (status.IsNotFound()) {
      map.emplace(map_key, nullptr);
      return {};
    }
    if (!status.ok()) return make_error_code(status);
    if (!valid(value.ToStringView())) {
      log::error(corrupt == RocksDbError::kCorruptRecord ? "storage_corrupt_record"
                                                         : "storage_corrupt_meta",
                 {{"family", family->GetName()}, {"key_bytes", key.size()}});
      return make_error_code(corrupt);
    }
    map.emplace(map_key, &group.arena.emplace_back(value.ToStringView()));
    return {};
  };
  auto valid_entry = [](std::string_view v) { return decode_entry_record(v).has_value(); };
  auto valid_record = [](std::string_view v) { return decode_record_value({}, v).has_value(); };

  if (batch.unless_record_exists) {
    const std::string_view key = *batch.unless_record_exists;
    if (auto ec = read_into(group.records, key, database_.records(), key, valid_record,
                            RocksDbError::kCorruptMeta)) {
      return ec;
    }
    if (const std::string* stored = group.records.find(key)->second) {
      auto record = decode_record_value(key, *stored);
      assert(record && "checked when read, or encoded by this process");
      if (record->live_at(batch.now_ms)) {
        pending.outcome.existing = std::move(*record);
        return {};
      }
    }
  }

  auto valid_ack = [](std::string_view v) { return decode_acked_cursor(v).has_value(); };
  for (const auto& ack : batch.acks) {
    if (auto ec = read_into(group.acks, std::string_view(ack.key), database_.acked_cursors(),
                            ack.key, valid_ack, RocksDbError::kCorruptMeta)) {
      return ec;
    }
  }

  for (const auto& append : batch.appends) {
    if (group.metas.contains(append.stream)) continue;
    auto meta = load_meta(append.stream);
    if (!meta) return meta.error();
    group.metas.emplace(append.stream, Group::StagedMeta{*meta, false});
  }

  for (const auto& tombstone : batch.tombstones) {
    const std::string key = entry_key(tombstone.stream, tombstone.seq);
    if (auto ec = read_into(group.entries, key, database_.stream_entries(), key, valid_entry,
                            RocksDbError::kCorruptRecord)) {
      return ec;
    }
  }

  for (const auto& append : batch.appends) {
    if (append.collapse_key.empty()) continue;
    std::string key = pair_key(append.stream, append.collapse_key);
    auto pointer = group.pointers.find(key);
    if (pointer == group.pointers.end()) {
      ::rocksdb::PinnableSlice value;
      auto status = db.Get(::rocksdb::ReadOptions(), database_.collapse_keys(), key, &value);
      std::optional<CollapsePointer> stored;
      if (status.ok()) {
        stored = decode_collapse_pointer(value.ToStringView());
        if (!stored) {
          log::error("storage_corrupt_meta", {{"what", "collapse pointer"},
                                              {"stream", append.stream},
                                              {"collapse_key", append.collapse_key}});
          return make_error_code(RocksDbError::kCorruptMeta);
        }
      } else if (!status.IsNotFound()) {
        return make_error_code(status);
      }
      pointer = group.pointers.emplace(std::move(key), std::move(stored)).first;
    }
    // The entry it points to, which apply() may tombstone. (A pointer this group moved points
    // to an entry this group appended, which is indexed already.)
    if (pointer->second) {
      const std::string target = entry_key(append.stream, pointer->second->seq);
      if (auto ec = read_into(group.entries, target, database_.stream_entries(), target,
                              valid_entry, RocksDbError::kCorruptRecord)) {
        return ec;
      }
    }
  }
  return {};
}

void GroupCommitWriter::apply(Pending& pending, Group& group) {
  const EncodedBatch& batch = pending.batch;
  const std::uint32_t generation = database_.generation();
  AppendOutcome& outcome = pending.outcome;

  outcome.tombstoned.reserve(batch.tombstones.size());
  for (const auto& tombstone : batch.tombstones) {
    outcome.tombstoned.push_back(group.tombstone(
        database_, entry_key(tombstone.stream, tombstone.seq), tombstone.message_id, batch.now_ms));
  }

  outcome.results.reserve(batch.appends.size());
  for (const auto& append : batch.appends) {
    auto& staged = group.metas.find(append.stream)->second;
    if (staged.meta.stream_epoch32 == 0) staged.meta.stream_epoch32 = new_stream_epoch32();
    ++staged.meta.head_seq;
    staged.dirty = true;
    const std::uint64_t seq = staged.meta.head_seq;
    std::string key = entry_key(append.stream, seq);
    group.put(database_.stream_entries(), key, append.record);
    ++group.entries_written;
    AppendResult result{effective_epoch(generation, staged.meta.stream_epoch32), seq, 0};

    if (!append.collapse_key.empty()) {
      std::string pointer_key = pair_key(append.stream, append.collapse_key);
      auto& pointer = group.pointers.find(pointer_key)->second;
      if (pointer && group.tombstone(database_, entry_key(append.stream, pointer->seq),
                                     pointer->message_id, batch.now_ms)) {
        result.collapsed_seq = pointer->seq;
      }
      pointer = CollapsePointer{seq, append.message_id, append.expires_at_ms};
      group.put(database_.collapse_keys(), pointer_key, encode_collapse_pointer(*pointer));
    }
    // Indexed after its own collapse: an entry never collapses itself.
    if (group.index_entries) group.entries.insert_or_assign(std::move(key), &append.record);
    outcome.results.push_back(result);
  }

  for (const auto& key : batch.delete_records) {
    [[maybe_unused]] auto status = group.batch.Delete(database_.records(), key);
    assert(status.ok());
    group.records.insert_or_assign(key, nullptr);
  }
  for (const auto& record : batch.put_records) {
    group.put(database_.records(), record.key, record.stored);
    group.records.insert_or_assign(record.key, &record.stored);
  }
  for (const auto& ack : batch.acks) {
    const std::string*& stored = group.acks.find(ack.key)->second;
    if (stored != nullptr) {
      const auto current = decode_acked_cursor(*stored);
      assert(current && "checked when read, or encoded by this process");
      // Forward only: a late or repeated ack does not move the cursor back.
      if (current->epoch == ack.cursor.epoch && current->seq >= ack.cursor.seq) continue;
    }
    stored = &group.arena.emplace_back(encode_acked_cursor(ack.cursor));
    group.put(database_.acked_cursors(), ack.key, *stored);
  }
}

boost::system::result<StreamMeta> GroupCommitWriter::load_meta(std::string_view stream) {
  if (const auto* cached = heads_.find(stream)) return *cached;
  ::rocksdb::PinnableSlice value;
  auto status = database_.db().Get(::rocksdb::ReadOptions(), database_.stream_meta(),
                                   ::rocksdb::Slice(stream.data(), stream.size()), &value);
  if (status.IsNotFound()) return StreamMeta{};
  if (!status.ok()) return make_error_code(status);
  auto meta = decode_stream_meta(value.ToStringView());
  if (!meta) {
    log::error("storage_corrupt_meta", {{"stream", stream}});
    return make_error_code(RocksDbError::kCorruptMeta);
  }
  return *meta;
}

std::uint32_t GroupCommitWriter::new_stream_epoch32() {
  std::uniform_int_distribution<std::uint32_t> nonzero(1,
                                                       std::numeric_limits<std::uint32_t>::max());
  return nonzero(random_);
}

}  // namespace herald::storage::detail
