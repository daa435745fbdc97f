#include "storage/rocksdb/detail/group_commit_writer.h"

#include <pthread.h>

#include <cassert>
#include <limits>
#include <unordered_map>

#include <rocksdb/write_batch.h>
#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/system/errc.hpp>

#include "common/log.h"
#include "storage/rocksdb/detail/key_codec.h"
#include "storage/rocksdb/rocksdb_database.h"
#include "storage/rocksdb/rocksdb_error.h"

namespace herald::storage::detail {

void dispatch_completion(AppendHandler handler, boost::system::error_code ec,
                         std::vector<AppendResult> results) {
  boost::asio::dispatch(boost::asio::append(std::move(handler), ec, std::move(results)));
}

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

void GroupCommitWriter::submit(std::vector<EncodedAppend> appends, AppendHandler handler) {
  assert(!appends.empty() && appends.size() <= queue_entries_);
  boost::system::error_code refused;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      refused = RocksDbError::kShuttingDown;
    } else if (appends.size() > queue_entries_ - queued_entries_) {
      refused =
          boost::system::errc::make_error_code(boost::system::errc::resource_unavailable_try_again);
    } else {
      queued_entries_ += appends.size();
      auto work = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                      boost::asio::execution::outstanding_work.tracked);
      queue_.push_back(Pending{std::move(appends), std::move(handler), std::move(work), {}, {}});
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
  s.entries_written = entries_written_.load(std::memory_order_relaxed);
  s.appends_refused = appends_refused_.load(std::memory_order_relaxed);
  return s;
}

void GroupCommitWriter::run() {
  pthread_setname_np(pthread_self(), "herald-append");  // for top -H and gdb
  for (;;) {
    std::deque<Pending> group;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything accepted has been written
      group.swap(queue_);
      queued_entries_ = 0;
    }
    write_group(group);
  }
}

void GroupCommitWriter::write_group(std::deque<Pending>& group) {
  const std::uint32_t generation = database_.generation();
  ::rocksdb::WriteBatch batch;
  // The metas of the streams this batch writes, keyed by views into the group's own strings.
  std::unordered_map<std::string_view, StreamMeta> staged;
  std::size_t entries = 0;

  for (auto& pending : group) {
    // Load every stream the request names before assigning anything, so that a request which
    // cannot be served leaves no trace in the batch.
    std::vector<std::string_view> loaded;
    for (const auto& append : pending.appends) {
      if (staged.contains(append.stream)) continue;
      auto meta = load_meta(append.stream);
      if (!meta) {
        pending.error = meta.error();
        break;
      }
      staged.emplace(append.stream, *meta);
      loaded.push_back(append.stream);
    }
    if (pending.error) {
      for (auto stream : loaded) staged.erase(stream);
      continue;
    }
    pending.results.reserve(pending.appends.size());
    for (const auto& append : pending.appends) {
      auto& meta = staged.find(append.stream)->second;
      if (meta.stream_epoch32 == 0) meta.stream_epoch32 = new_stream_epoch32();
      ++meta.head_seq;
      [[maybe_unused]] auto put = batch.Put(database_.stream_entries(),
                                            entry_key(append.stream, meta.head_seq), append.record);
      // Only keys or values over 4 GiB fail, and the store refuses such records up front.
      assert(put.ok());
      pending.results.push_back({effective_epoch(generation, meta.stream_epoch32), meta.head_seq});
    }
    entries += pending.appends.size();
  }

  boost::system::error_code write_error;
  if (entries > 0) {
    for (const auto& [stream, meta] : staged) {
      [[maybe_unused]] auto put =
          batch.Put(database_.stream_meta(), stream, encode_stream_meta(meta));
      assert(put.ok());
    }
    auto options = database_.append_write_options();
    auto status = database_.db().Write(options, &batch);
    if (status.ok()) {
      for (const auto& [stream, meta] : staged) heads_.put(stream, meta);
      // Counted before any completion runs, so a caller that saw its completion sees them.
      batches_written_.fetch_add(1, std::memory_order_relaxed);
      entries_written_.fetch_add(entries, std::memory_order_relaxed);
    } else {
      write_error = make_error_code(status);
      database_.note_write_failure();
      // The database holds none of this batch: forget what was staged, reload on next use.
      for (const auto& [stream, meta] : staged) heads_.erase(stream);
      log::error("storage_append_failed", {{"entries", entries}, {"error", status.ToString()}});
    }
  }

  if (entries > 0 && !write_error) {
    std::uint64_t written = 0;
    for (const auto& pending : group) written += pending.error ? 0 : 1;
    appends_written_.fetch_add(written, std::memory_order_relaxed);
  }
  for (auto& pending : group) {
    if (pending.error) {
      dispatch_completion(std::move(pending.handler), pending.error);
    } else if (write_error) {
      dispatch_completion(std::move(pending.handler), write_error);
    } else {
      dispatch_completion(std::move(pending.handler), {}, std::move(pending.results));
    }
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
