// Micro-benchmarks of RedisStreamStore on a real local Redis Cluster (TestRedisCluster: three
// masters, appendfsync always, on loopback): appends per second with N concurrent appenders (the
// writer sends every queued batch as one pipeline, which the master fsyncs once), the same as
// idempotent sends, and reads of 100 entries. Each runs against the embedded RocksDbStreamStore
// (Durability::kSync, group commit) too, in the same run and on the same disk: the peer the
// figures are compared with (docs/benchmarks.md, "Redis Cluster storage").
//
// usage: herald_redis_storage_bench [--benchmark_filter=Append] [--benchmark_min_time=2]
//
// The servers keep their append-only files, and RocksDB its database, under $TMPDIR (default
// /tmp): put it on the disk you mean to measure; an fsync on tmpfs costs nothing.
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <benchmark/benchmark.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "storage/redis/redis_storage.h"
#include "storage/redis/testing/test_redis_cluster.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::storage {
namespace {

constexpr int kAppendsPerAppender = 16;  // per benchmark iteration
constexpr std::size_t kPayloadBytes = 256;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

testing::TestRedisCluster& cluster() {
  static testing::TestRedisCluster instance;
  return instance;
}

enum class Backend { kRedis, kRocksDb };

// One store of either backend; streams() is null when it could not be opened.
struct BenchStorage {
  std::unique_ptr<testing::TempDir> dir;
  std::unique_ptr<RocksDbStorage> rocksdb;
  std::unique_ptr<RedisStorage> redis;

  StreamStore* streams() {
    if (rocksdb) return &rocksdb->streams();
    if (redis) return &redis->streams();
    return nullptr;
  }
};

BenchStorage open_bench_storage(Backend backend, const std::string& keyspace) {
  BenchStorage storage;
  if (backend == Backend::kRocksDb) {
    storage.dir = std::make_unique<testing::TempDir>();
    RocksDbOptions options;
    options.path = storage.dir->db_path();
    options.durability = Durability::kSync;
    if (auto opened = RocksDbStorage::open(options)) storage.rocksdb = std::move(*opened);
    return storage;
  }
  RedisStorageOptions options;
  options.nodes = {cluster().masters().front()};
  options.keyspace = keyspace;
  if (auto opened = RedisStorage::open(options)) storage.redis = std::move(*opened);
  return storage;
}

AppendRequest make_append(std::string stream, const std::string& payload) {
  AppendRequest request;
  request.stream = std::move(stream);
  request.entry.app = "app";
  request.entry.message_id = "m";
  request.entry.data = payload;
  request.entry.sent_at_ms = now_ms();
  request.entry.expires_at_ms = request.entry.sent_at_ms + 3'600'000;
  return request;
}

// `appenders` chains, each appending to its own stream one entry at a time: the next append
// starts when the previous one completes, as a sender awaiting its answer. `idempotent`: each
// append also puts "idem/<n>" unless it exists (it never does here, so every batch writes).
void BM_Append(benchmark::State& state, Backend backend, bool idempotent) {
  const int appenders = static_cast<int>(state.range(0));
  static int run = 0;
  auto opened = open_bench_storage(backend, "bench-append-" + std::to_string(++run));
  StreamStore* streams = opened.streams();
  if (streams == nullptr) {
    state.SkipWithError("cannot open the storage");
    return;
  }
  boost::asio::io_context io;
  const std::string payload(kPayloadBytes, 'p');
  bool failed = false;
  std::uint64_t sent = 0;

  std::function<void(int, int)> append = [&](int appender, int left) {
    if (left == 0) return;
    AppendBatch batch;
    batch.now_ms = now_ms();
    batch.entries.push_back(make_append("i/device-" + std::to_string(appender), payload));
    if (idempotent) {
      const std::string key = "idem/" + std::to_string(++sent);
      batch.put_records.push_back({key, "accepted", batch.now_ms + 3'600'000});
      batch.unless_record_exists = key;
    }
    streams->async_append(std::move(batch),
                          boost::asio::bind_executor(
                              io, [&, appender, left](boost::system::error_code ec, AppendOutcome) {
                                if (ec) failed = true;
                                append(appender, left - 1);
                              }));
  };

  for (auto _ : state) {
    for (int a = 0; a < appenders; ++a) append(a, kAppendsPerAppender);
    io.restart();
    io.run();
  }
  if (failed) state.SkipWithError("an append failed");
  state.SetItemsProcessed(state.iterations() * appenders * kAppendsPerAppender);
}

BENCHMARK_CAPTURE(BM_Append, redis_plain, Backend::kRedis, false)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Append, rocksdb_plain, Backend::kRocksDb, false)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Append, redis_idempotent, Backend::kRedis, true)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Append, rocksdb_idempotent, Backend::kRocksDb, true)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Reads of 100 entries of 256 bytes from the start of a stream (one script run).
void BM_Read(benchmark::State& state, Backend backend) {
  auto opened = open_bench_storage(backend, "bench-read");
  StreamStore* streams = opened.streams();
  if (streams == nullptr) {
    state.SkipWithError("cannot open the storage");
    return;
  }
  const std::string payload(kPayloadBytes, 'p');
  std::vector<AppendRequest> entries;
  for (int i = 0; i < 100; ++i) entries.push_back(make_append("s", payload));
  boost::asio::io_context io;
  streams->async_append(
      std::move(entries),
      boost::asio::bind_executor(io, [](boost::system::error_code, std::vector<AppendResult>) {}));
  io.run();
  const std::int64_t now = now_ms();
  for (auto _ : state) {
    auto result = streams->read({.stream = "s", .max_entries = 100, .now_ms = now});
    if (!result || result->entries.size() != 100) {
      state.SkipWithError("read failed");
      return;
    }
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations() * 100);
}

BENCHMARK_CAPTURE(BM_Read, redis, Backend::kRedis)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Read, rocksdb, Backend::kRocksDb)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace herald::storage

BENCHMARK_MAIN();
