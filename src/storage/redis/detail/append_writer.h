// AppendWriter: the Redis stream store's one writer thread. It owns its own RedisClusterClient
// and sends every batch queued at the time as one pipeline of append scripts (one EVALSHA per
// batch, in queue order), so N waiting appends share one round trip and, with appendfsync
// always, one AOF fsync on the master.
//
//   async_append ──▶ [ bounded queue ] ──▶ writer thread: take everything queued,
//   (any thread)      (FIFO, bounded         one pipeline: EVALSHA append (batch 1) ...
//                      in items)             (EVAL for any the master did not know: NOSCRIPT),
//                                            WAIT replicas (when configured),
//                                            then each handler on its associated executor
//
// The queue is bounded in items (entries + records + tombstones + acks, at least one per batch);
// a full queue refuses at once with errc::resource_unavailable_try_again. An empty batch sends
// nothing and completes after the batches queued before it: a barrier.
//
// Errors: a batch whose script answered an error fails alone (a script checks before it writes,
// so nothing of it was written). A transport error or timeout fails every batch of the pipeline
// with it: each may or may not have been applied (each atomically, all or nothing). WAIT seeing
// too few replicas fails every batch of the pipeline with kTooFewReplicas: written on the master,
// possibly lost on a failover.
//
// submit() is thread-safe. Destruction drains: every batch accepted before it is sent and
// completed; later ones complete with RedisError::kShuttingDown.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/any_completion_executor.hpp>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/thread_pool.hpp>

#include "storage/redis/detail/scripts.h"
#include "storage/redis/redis_cluster_client.h"
#include "storage/stream_store.h"

namespace herald::storage::redis_detail {

using AppendHandler = boost::asio::any_completion_handler<AppendBatchSignature>;

// A validated AppendBatch as the append script's arguments (scripts.h).
struct EncodedBatch {
  std::vector<std::string> args;  // empty: an empty batch (a barrier)
  std::size_t entries = 0;
  std::size_t tombstones = 0;
  std::optional<std::string> unless_record_exists;
  std::size_t weight = 1;  // its share of the queue: items, at least 1
};

// What the writer did since it started, as GroupCommitStats says it for the embedded store
// (heraldd's herald_storage_* metrics). Each figure is read on its own.
struct AppendWriterStats {
  std::uint64_t pipelines_written = 0;  // pipelines the master answered (one AOF fsync at most)
  std::uint64_t appends_written = 0;    // batches whose script succeeded
  std::uint64_t appends_skipped = 0;    // of which unless_record_exists hit: nothing written
  std::uint64_t entries_written = 0;
  std::uint64_t tombstones_written = 0;  // live entries replaced: Tombstone requests, collapse keys
  std::uint64_t appends_refused = 0;     // queue full
  std::uint64_t appends_failed = 0;      // a Redis error, a timeout, too few replicas, a refusal
};

// Runs `handler` through its associated executor, from a thread that does not run it.
void dispatch_completion(AppendHandler handler, boost::system::error_code ec,
                         AppendOutcome outcome = {});

class AppendWriter {
 public:
  // `scripts` must outlive the writer. queue_entries >= 1.
  AppendWriter(RedisClusterOptions client_options, std::string routing_key, const Scripts& scripts,
               std::size_t queue_entries, int replicas_to_wait,
               std::chrono::milliseconds replica_wait_timeout);
  ~AppendWriter();

  AppendWriter(const AppendWriter&) = delete;
  AppendWriter& operator=(const AppendWriter&) = delete;

  // Queues `batch` (weight at most queue_entries) or completes `handler` at once with
  // resource_unavailable_try_again (queue full) or kShuttingDown.
  void submit(EncodedBatch batch, AppendHandler handler);

  // Completes `handler` with `ec` through a relay thread, never inline in the caller's
  // initiating function. For requests refused before they reach the queue.
  void complete_now(AppendHandler handler, boost::system::error_code ec);

  // Any thread.
  [[nodiscard]] AppendWriterStats stats() const;

 private:
  struct Pending {
    EncodedBatch batch;
    AppendHandler handler;
    // Keeps the handler's executor from running out of work while the append waits.
    boost::asio::any_completion_executor work;
  };

  void run();
  void write_group(std::deque<Pending>& group);
  void count_written(const AppendOutcome& outcome);

  RedisClusterClient client_;  // writer thread only
  const std::string routing_key_;
  const Scripts& scripts_;
  const std::size_t queue_entries_;
  const int replicas_to_wait_;
  const std::chrono::milliseconds replica_wait_timeout_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;       // guarded by mutex_
  std::size_t queued_entries_ = 0;  // guarded by mutex_
  bool stopping_ = false;           // guarded by mutex_

  std::atomic<std::uint64_t> pipelines_written_{0};
  std::atomic<std::uint64_t> appends_written_{0};
  std::atomic<std::uint64_t> appends_skipped_{0};
  std::atomic<std::uint64_t> entries_written_{0};
  std::atomic<std::uint64_t> tombstones_written_{0};
  std::atomic<std::uint64_t> appends_refused_{0};
  std::atomic<std::uint64_t> appends_failed_{0};

  boost::asio::thread_pool relay_{1};
  std::thread thread_;  // last: starts once every member above exists
};

}  // namespace herald::storage::redis_detail
