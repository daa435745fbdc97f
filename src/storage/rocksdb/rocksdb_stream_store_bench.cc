// Micro-benchmarks of RocksDbStreamStore: appends per second with N concurrent appenders (group
// commit shares one fsync among the appends waiting together), the same as idempotent sends
// (AppendBatch: the entry, its idempotency record and unless_record_exists, which costs the
// writer one point read per batch), and reads of 100 entries.
//
// Peer, measured in the same run: plain RocksDB, N threads each doing synchronous Put() calls
// (WriteOptions::sync) of the same size -- what a store without Herald's writer would do. RocksDB
// batches concurrent writers itself, so this is the fair "no extra machinery" baseline.
//
// usage: herald_storage_bench [--benchmark_filter=Append] [--benchmark_min_time=2]
//
// The database lives under $TMPDIR (default /tmp): put it on the disk you mean to measure; an
// fsync on tmpfs costs nothing and makes kSync look like kFast.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>
#include <rocksdb/db.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::storage {
namespace {

constexpr int kAppendsPerAppender = 16;  // per benchmark iteration
constexpr std::size_t kPayloadBytes = 256;

std::unique_ptr<RocksDbStorage> open_bench_storage(const testing::TempDir& dir,
                                                   Durability durability) {
  RocksDbOptions options;
  options.path = dir.db_path();
  options.durability = durability;
  auto storage = RocksDbStorage::open(options);
  return storage ? std::move(*storage) : nullptr;
}

// `appenders` chains, each appending to its own stream (a device inbox) one entry at a time:
// the next append starts when the previous one completes, as a sender awaiting its answer.
void BM_Append(benchmark::State& state, Durability durability) {
  const int appenders = static_cast<int>(state.range(0));
  testing::TempDir dir;
  auto storage = open_bench_storage(dir, durability);
  if (!storage) {
    state.SkipWithError("cannot open the database");
    return;
  }
  boost::asio::io_context io;
  const std::string payload(kPayloadBytes, 'p');
  bool failed = false;

  std::function<void(int, int)> append = [&](int appender, int left) {
    if (left == 0) return;
    storage->streams().async_append(
        {testing::make_append("i/device-" + std::to_string(appender), payload)},
        boost::asio::bind_executor(
            io, [&, appender, left](boost::system::error_code ec, std::vector<AppendResult>) {
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
  const auto stats = storage->streams().writer_stats();
  state.counters["entries_per_write"] =
      stats.batches_written == 0
          ? 0.0
          : static_cast<double>(stats.entries_written) / static_cast<double>(stats.batches_written);
}

BENCHMARK_CAPTURE(BM_Append, sync, Durability::kSync)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Append, fast, Durability::kFast)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// BM_Append, each append being an idempotent send: the entry plus the record "idem/<n>", unless
// that record exists (it never does here, so every batch writes).
void BM_AppendIdempotent(benchmark::State& state) {
  const int appenders = static_cast<int>(state.range(0));
  testing::TempDir dir;
  auto storage = open_bench_storage(dir, Durability::kSync);
  if (!storage) {
    state.SkipWithError("cannot open the database");
    return;
  }
  boost::asio::io_context io;
  const std::string payload(kPayloadBytes, 'p');
  bool failed = false;
  std::uint64_t sent = 0;

  std::function<void(int, int)> append = [&](int appender, int left) {
    if (left == 0) return;
    const std::string key = "idem/" + std::to_string(++sent);
    AppendBatch batch;
    batch.entries.push_back(testing::make_append("i/device-" + std::to_string(appender), payload));
    batch.put_records.push_back({key, "accepted", 0});
    batch.unless_record_exists = key;
    storage->streams().async_append(
        std::move(batch),
        boost::asio::bind_executor(
            io, [&, appender, left](boost::system::error_code ec, AppendOutcome outcome) {
              if (ec || outcome.existing) failed = true;
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

BENCHMARK(BM_AppendIdempotent)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// The peer: `writers` threads, each doing kAppendsPerAppender synchronous Puts one after another.
void BM_PeerRocksDbSyncPut(benchmark::State& state) {
  const int writers = static_cast<int>(state.range(0));
  testing::TempDir dir;
  ::rocksdb::Options options;
  options.create_if_missing = true;
  ::rocksdb::DB* raw = nullptr;
  if (!::rocksdb::DB::Open(options, dir.db_path(), &raw).ok()) {
    state.SkipWithError("cannot open the database");
    return;
  }
  std::unique_ptr<::rocksdb::DB> db(raw);
  const std::string payload(kPayloadBytes, 'p');
  ::rocksdb::WriteOptions sync;
  sync.sync = true;
  std::atomic<bool> failed{false};
  std::uint64_t seq = 0;
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
      threads.emplace_back([&, w, base = seq] {
        for (int i = 0; i < kAppendsPerAppender; ++i) {
          const std::string key = "i/device-" + std::to_string(w) + "/" +
                                  std::to_string(base + static_cast<unsigned>(i));
          if (!db->Put(sync, key, payload).ok()) failed = true;
        }
      });
    }
    for (auto& t : threads) t.join();
    seq += kAppendsPerAppender;
  }
  if (failed) state.SkipWithError("a put failed");
  state.SetItemsProcessed(state.iterations() * writers * kAppendsPerAppender);
}

BENCHMARK(BM_PeerRocksDbSyncPut)
    ->Arg(1)
    ->Arg(16)
    ->Arg(128)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Reads 100 entries at a time from a stream of 10,000, moving the cursor along.
void BM_Read100(benchmark::State& state) {
  constexpr std::uint64_t kEntries = 10'000;
  constexpr std::size_t kBatch = 1'000;
  testing::TempDir dir;
  auto storage = open_bench_storage(dir, Durability::kFast);
  if (!storage) {
    state.SkipWithError("cannot open the database");
    return;
  }
  const std::string payload(kPayloadBytes, 'p');
  for (std::uint64_t done = 0; done < kEntries; done += kBatch) {
    std::vector<AppendRequest> batch(kBatch, testing::make_append("i/device", payload));
    if (testing::append_and_wait(storage->streams(), std::move(batch)).ec) {
      state.SkipWithError("populating failed");
      return;
    }
  }
  if (state.range(0) != 0) {
    // From SST files rather than the memtable.
    auto& database = storage->database();
    (void)database.db().Flush(::rocksdb::FlushOptions(), database.stream_entries());
  }

  std::uint64_t after = 0;
  std::size_t entries = 0;
  for (auto _ : state) {
    auto result = storage->streams().read(
        {.stream = "i/device", .after_seq = after, .max_entries = 100, .max_bytes = 1 << 20});
    if (!result || result->entries.size() != 100) {
      state.SkipWithError("read failed");
      break;
    }
    entries += result->entries.size();
    benchmark::DoNotOptimize(result);
    after = (after + 100) % (kEntries - 100);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(entries));
}

BENCHMARK(BM_Read100)->ArgName("flushed")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace herald::storage

BENCHMARK_MAIN();
