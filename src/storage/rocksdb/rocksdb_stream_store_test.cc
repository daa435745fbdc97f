#include "storage/rocksdb/rocksdb_stream_store.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/errc.hpp>

#include "storage/rocksdb/detail/key_codec.h"
#include "storage/rocksdb/rocksdb_error.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::storage {
namespace {

using testing::append_and_wait;
using ::testing::ElementsAre;
using testing::gated_env;
using ::testing::HasSubstr;
using testing::make_append;
using testing::TempDir;
using testing::WalSyncGate;

constexpr std::int64_t kFarFuture = 4'000'000'000'000;

std::unique_ptr<RocksDbStorage> open_or_die(const RocksDbOptions& options) {
  auto storage = RocksDbStorage::open(options);
  if (!storage) {
    ADD_FAILURE() << storage.error().message;
    return nullptr;
  }
  return std::move(*storage);
}

RocksDbOptions options_for(const TempDir& dir, Durability durability = Durability::kSync,
                           std::string boot_id = "boot-a") {
  RocksDbOptions options;
  options.path = dir.db_path();
  options.durability = durability;
  options.boot_id = std::move(boot_id);
  return options;
}

std::vector<std::uint64_t> seqs_of(const std::vector<Entry>& entries) {
  std::vector<std::uint64_t> seqs;
  for (const auto& e : entries) seqs.push_back(e.seq);
  return seqs;
}

std::vector<std::uint64_t> seqs_of(const std::vector<AppendResult>& results) {
  std::vector<std::uint64_t> seqs;
  for (const auto& r : results) seqs.push_back(r.seq);
  return seqs;
}

ReadResult read_or_die(StreamStore& store, ReadRequest request) {
  auto result = store.read(request);
  if (!result) {
    ADD_FAILURE() << result.error().message();
    return {};
  }
  return *result;
}

// How many entries of `stream` RocksDB still holds, expired or not: what compaction left.
std::size_t stored_entry_count(RocksDbDatabase& database, std::string_view stream) {
  const std::string prefix = detail::stream_prefix(stream);
  std::unique_ptr<::rocksdb::Iterator> it(
      database.db().NewIterator(::rocksdb::ReadOptions(), database.stream_entries()));
  std::size_t count = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++count;
  return count;
}

// Collects the completions of appends started on one io_context.
struct Completions {
  struct Completion {
    boost::system::error_code ec;
    std::vector<AppendResult> results;
  };
  std::map<int, Completion> by_id;

  auto handler(boost::asio::io_context& io, int id) {
    return boost::asio::bind_executor(
        io, [this, id](boost::system::error_code ec, std::vector<AppendResult> results) {
          by_id[id] = {ec, std::move(results)};
        });
  }
};

// ---------------------------------------------------------------------------------------------
// Sequence numbers

TEST(RocksDbStreamStore, AssignsGaplessIncreasingSequenceNumbersFromOne) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir));
  std::vector<std::uint64_t> seqs;
  std::set<std::uint64_t> epochs;
  for (int i = 0; i < 5; ++i) {
    auto outcome = append_and_wait(storage->streams(), {make_append("s", "d" + std::to_string(i))});
    ASSERT_TRUE(outcome.completed);
    ASSERT_FALSE(outcome.ec) << outcome.ec.message();
    seqs.push_back(outcome.results.at(0).seq);
    epochs.insert(outcome.results.at(0).epoch);
  }
  EXPECT_THAT(seqs, ElementsAre(1, 2, 3, 4, 5));
  ASSERT_EQ(epochs.size(), 1u);
  EXPECT_NE(*epochs.begin(), 0u);
}

TEST(RocksDbStreamStore, NumbersEachStreamOfABatchConsecutivelyWhenItIsNamedTwice) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir));
  auto outcome = append_and_wait(
      storage->streams(), {make_append("a", "a1"), make_append("b", "b1"), make_append("a", "a2"),
                           make_append("a", "a3"), make_append("b", "b2")});
  ASSERT_FALSE(outcome.ec);
  EXPECT_THAT(seqs_of(outcome.results), ElementsAre(1, 1, 2, 3, 2));

  auto a = read_or_die(storage->streams(), {.stream = "a"});
  ASSERT_EQ(a.entries.size(), 3u);
  EXPECT_EQ(a.entries[0].data, "a1");
  EXPECT_EQ(a.entries[1].data, "a2");
  EXPECT_EQ(a.entries[2].data, "a3");
  EXPECT_EQ(a.head_seq, 3u);
}

TEST(RocksDbStreamStore, KeepsSequenceNumbersGaplessUnderConcurrentAppenders) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir, Durability::kFast));
  constexpr int kThreads = 4;
  constexpr int kAppendsPerThread = 150;
  constexpr int kInFlightPerThread = 8;
  std::vector<std::vector<std::uint64_t>> seqs_by_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      boost::asio::io_context io;
      int started = 0;
      // Each chain appends its next entry when the previous one completes.
      std::function<void()> next = [&] {
        if (started == kAppendsPerThread) return;
        ++started;
        storage->streams().async_append(
            {make_append("shared", std::to_string(t))},
            boost::asio::bind_executor(
                io, [&](boost::system::error_code ec, std::vector<AppendResult> results) {
                  ASSERT_FALSE(ec) << ec.message();
                  seqs_by_thread[t].push_back(results.at(0).seq);
                  next();
                }));
      };
      for (int i = 0; i < kInFlightPerThread; ++i) next();
      io.run();
    });
  }
  for (auto& thread : threads) thread.join();

  std::vector<std::uint64_t> all;
  for (const auto& seqs : seqs_by_thread) all.insert(all.end(), seqs.begin(), seqs.end());
  std::sort(all.begin(), all.end());
  std::vector<std::uint64_t> expected(kThreads * kAppendsPerThread);
  std::iota(expected.begin(), expected.end(), 1u);
  EXPECT_EQ(all, expected);

  auto read = read_or_die(storage->streams(),
                          {.stream = "shared", .max_entries = 10'000, .max_bytes = 1 << 20});
  EXPECT_EQ(seqs_of(read.entries), expected);
  EXPECT_FALSE(read.more);
}

TEST(RocksDbStreamStore, ContinuesStreamsWhoseHeadsWereEvictedFromTheCache) {
  TempDir dir;
  auto options = options_for(dir);
  options.head_cache_streams = 1;
  auto storage = open_or_die(options);
  std::vector<std::uint64_t> a_seqs;
  std::vector<std::uint64_t> b_seqs;
  for (int i = 0; i < 3; ++i) {
    a_seqs.push_back(
        append_and_wait(storage->streams(), {make_append("a", "x")}).results.at(0).seq);
    b_seqs.push_back(
        append_and_wait(storage->streams(), {make_append("b", "x")}).results.at(0).seq);
  }
  EXPECT_THAT(a_seqs, ElementsAre(1, 2, 3));
  EXPECT_THAT(b_seqs, ElementsAre(1, 2, 3));
}

TEST(RocksDbStreamStore, RoundTripsEveryFieldOfAnEntry) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir));
  AppendRequest request;
  request.stream = "i/device-1";
  request.entry.app = "com.example.chat";
  request.entry.message_id = "01HX-42";
  request.entry.kind = DataKind::kBinary;
  request.entry.data = std::string("\0\x01\xff binary", 10);
  request.entry.sent_at_ms = 1'700'000'000'123;
  request.entry.expires_at_ms = kFarFuture;
  ASSERT_FALSE(append_and_wait(storage->streams(), {request}).ec);

  auto read = read_or_die(storage->streams(), {.stream = "i/device-1"});
  ASSERT_EQ(read.entries.size(), 1u);
  const Entry& e = read.entries[0];
  EXPECT_EQ(e.seq, 1u);
  EXPECT_EQ(e.app, request.entry.app);
  EXPECT_EQ(e.message_id, request.entry.message_id);
  EXPECT_EQ(e.kind, DataKind::kBinary);
  EXPECT_EQ(e.data, request.entry.data);
  EXPECT_EQ(e.sent_at_ms, request.entry.sent_at_ms);
  EXPECT_EQ(e.expires_at_ms, request.entry.expires_at_ms);
}

TEST(RocksDbStreamStore, ReportsAStreamNeverWrittenAsEpochZeroHeadZero) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir));
  auto head = storage->streams().head("nobody");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->epoch, 0u);
  EXPECT_EQ(head->head_seq, 0u);
  auto read = read_or_die(storage->streams(), {.stream = "nobody"});
  EXPECT_TRUE(read.entries.empty());
  EXPECT_EQ(read.truncated_before, 0u);
  EXPECT_FALSE(read.epoch_changed);
}

TEST(RocksDbStreamStore, KeepsStreamsWhoseKeysArePrefixesOfEachOtherApart) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir));
  ASSERT_FALSE(append_and_wait(storage->streams(), {make_append("ab", "x"), make_append("a", "y"),
                                                    make_append("abc", "z")})
                   .ec);
  auto a = read_or_die(storage->streams(), {.stream = "a"});
  ASSERT_EQ(a.entries.size(), 1u);
  EXPECT_EQ(a.entries[0].data, "y");
}

// ---------------------------------------------------------------------------------------------
// Bad input changes nothing

TEST(RocksDbStreamStore, RefusesABatchWithAnEmptyStreamKeyAndAppendsNothing) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir));
  auto outcome =
      append_and_wait(storage->streams(), {make_append("good", "x"), make_append("", "y")});
  ASSERT_TRUE(outcome.completed);
  EXPECT_EQ(outcome.ec, RocksDbError::kBadStreamKey);
  EXPECT_EQ(outcome.ec, boost::system::errc::invalid_argument);
  EXPECT_EQ(storage->streams().head("good")->head_seq, 0u);
}

TEST(RocksDbStreamStore, RefusesAStreamKeyLongerThanTheMaximum) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir));
  const std::string key(RocksDbStreamStore::kMaxStreamKeyBytes + 1, 'k');
  EXPECT_EQ(append_and_wait(storage->streams(), {make_append(key, "x")}).ec,
            RocksDbError::kBadStreamKey);
  EXPECT_EQ(storage->streams().read({.stream = key}).error(), RocksDbError::kBadStreamKey);
}

TEST(RocksDbStreamStore, RefusesABatchLargerThanTheWholeWriterQueue) {
  TempDir dir;
  auto options = options_for(dir);
  options.writer_queue_entries = 2;
  auto storage = open_or_die(options);
  auto outcome = append_and_wait(
      storage->streams(), {make_append("s", "1"), make_append("s", "2"), make_append("s", "3")});
  EXPECT_EQ(outcome.ec, RocksDbError::kBatchTooLarge);
  EXPECT_EQ(storage->streams().head("s")->head_seq, 0u);
}

TEST(RocksDbStreamStore, CompletesAnEmptyBatchWithNoResults) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir));
  auto outcome = append_and_wait(storage->streams(), {});
  ASSERT_TRUE(outcome.completed);
  EXPECT_FALSE(outcome.ec);
  EXPECT_TRUE(outcome.results.empty());
}

// ---------------------------------------------------------------------------------------------
// Group commit, back-pressure and write failures

TEST(RocksDbStreamStore, WritesAppendsThatWaitedTogetherAsOneBatch) {
  TempDir dir;
  WalSyncGate gate;
  auto options = options_for(dir);
  options.env = gated_env(gate);
  auto storage = open_or_die(options);
  boost::asio::io_context io;
  Completions done;

  gate.hold();
  storage->streams().async_append({make_append("s", "first")}, done.handler(io, 0));
  ASSERT_TRUE(gate.wait_until_blocked());  // the writer is inside the first write's fsync
  for (int i = 1; i <= 10; ++i) {
    storage->streams().async_append({make_append("s", std::to_string(i))}, done.handler(io, i));
  }
  gate.release();
  io.run();

  ASSERT_EQ(done.by_id.size(), 11u);
  for (const auto& [id, completion] : done.by_id) {
    ASSERT_FALSE(completion.ec) << id;
    EXPECT_EQ(completion.results.at(0).seq, static_cast<std::uint64_t>(id) + 1);
  }
  const auto stats = storage->streams().writer_stats();
  EXPECT_EQ(stats.batches_written, 2u);  // the first alone, then all ten together
  EXPECT_EQ(stats.appends_written, 11u);
}

TEST(RocksDbStreamStore, RefusesAtOnceWithTryAgainWhenTheQueueIsFullAndAppendsNothing) {
  TempDir dir;
  WalSyncGate gate;
  auto options = options_for(dir);
  options.env = gated_env(gate);
  options.writer_queue_entries = 4;
  auto storage = open_or_die(options);
  boost::asio::io_context io;
  Completions done;

  gate.hold();
  storage->streams().async_append({make_append("s", "in-flight")}, done.handler(io, 0));
  ASSERT_TRUE(gate.wait_until_blocked());  // the writer holds the first append; the queue is empty
  storage->streams().async_append({make_append("s", "q1"), make_append("s", "q2"),
                                   make_append("s", "q3"), make_append("s", "q4")},
                                  done.handler(io, 1));  // fills the queue exactly
  storage->streams().async_append({make_append("s", "refused")}, done.handler(io, 2));

  // The refusal completes while the writer is still stuck: it does not wait for the disk.
  io.run_one();
  ASSERT_EQ(done.by_id.size(), 1u);
  ASSERT_TRUE(done.by_id.contains(2));
  EXPECT_EQ(done.by_id[2].ec, boost::system::errc::resource_unavailable_try_again);

  gate.release();
  io.run();
  EXPECT_FALSE(done.by_id[0].ec);
  EXPECT_THAT(seqs_of(done.by_id[1].results), ElementsAre(2, 3, 4, 5));
  auto read = read_or_die(storage->streams(), {.stream = "s"});
  EXPECT_EQ(read.head_seq, 5u);
  for (const auto& e : read.entries) EXPECT_NE(e.data, "refused");
  EXPECT_EQ(storage->streams().writer_stats().appends_refused, 1u);
}

TEST(RocksDbStreamStore, FailsEveryAppendOfAFailedWriteAndAssignsNoneOfItsNumbers) {
  TempDir dir;
  WalSyncGate gate;
  auto options = options_for(dir);
  options.env = gated_env(gate);
  auto storage = open_or_die(options);
  boost::asio::io_context io;
  Completions done;

  gate.hold();
  storage->streams().async_append({make_append("s", "ok")}, done.handler(io, 0));
  ASSERT_TRUE(gate.wait_until_blocked());
  storage->streams().async_append({make_append("s", "x1")}, done.handler(io, 1));
  storage->streams().async_append({make_append("t", "x2")}, done.handler(io, 2));
  gate.fail_next_syncs(1);  // the batch after the held one fails
  gate.release();
  io.run();

  ASSERT_FALSE(done.by_id[0].ec);
  EXPECT_EQ(done.by_id[1].ec, RocksDbError::kIoError);
  EXPECT_EQ(done.by_id[1].ec, boost::system::errc::io_error);
  EXPECT_EQ(done.by_id[2].ec, RocksDbError::kIoError);
  EXPECT_TRUE(done.by_id[1].results.empty());
  EXPECT_FALSE(storage->database().healthy());
  auto read = read_or_die(storage->streams(), {.stream = "s"});
  EXPECT_EQ(read.head_seq, 1u);
  ASSERT_EQ(read.entries.size(), 1u);
  EXPECT_EQ(read.entries[0].data, "ok");
  EXPECT_EQ(storage->streams().head("t")->head_seq, 0u);
}

TEST(RocksDbStreamStore, RefusesLaterAppendsAfterAFailedWriteRatherThanReuseNumbers) {
  TempDir dir;
  WalSyncGate gate;
  auto options = options_for(dir);
  options.env = gated_env(gate);
  auto storage = open_or_die(options);
  ASSERT_FALSE(append_and_wait(storage->streams(), {make_append("s", "ok")}).ec);
  gate.fail_next_syncs(1);
  EXPECT_TRUE(append_and_wait(storage->streams(), {make_append("s", "lost")}).ec);
  // RocksDB stops writes after a failed WAL sync; the store reports it instead of going on.
  auto later = append_and_wait(storage->streams(), {make_append("s", "later")});
  EXPECT_TRUE(later.ec);
  EXPECT_EQ(storage->streams().head("s")->head_seq, 1u);
}

TEST(RocksDbStreamStore, NeitherReusesNorSkipsNumbersAfterARestartFollowingAFailedWrite) {
  TempDir dir;
  {
    WalSyncGate gate;
    auto options = options_for(dir);
    options.env = gated_env(gate);
    auto storage = open_or_die(options);
    ASSERT_FALSE(append_and_wait(storage->streams(), {make_append("s", "ok")}).ec);
    gate.fail_next_syncs(1);
    ASSERT_TRUE(append_and_wait(storage->streams(), {make_append("s", "unknown")}).ec);
  }
  // The failed batch reached the WAL file before its fsync failed, so it may come back: an I/O
  // error means "not acknowledged", not "absent". Either way the numbering stays whole.
  auto storage = open_or_die(options_for(dir));
  auto r = read_or_die(storage->streams(), {.stream = "s"});
  std::vector<std::uint64_t> expected(r.head_seq);
  std::iota(expected.begin(), expected.end(), 1u);
  EXPECT_EQ(seqs_of(r.entries), expected);
  auto next = append_and_wait(storage->streams(), {make_append("s", "next")});
  ASSERT_FALSE(next.ec);
  EXPECT_EQ(next.results.at(0).seq, r.head_seq + 1);
}

TEST(RocksDbStreamStore, CompletesFastAppendsWithoutWaitingForAnFsync) {
  TempDir dir;
  WalSyncGate gate;
  auto options = options_for(dir, Durability::kFast);
  options.env = gated_env(gate);
  options.fast_sync_interval_ms = 0;  // no background sync in this test
  auto storage = open_or_die(options);
  gate.fail_next_syncs(1'000'000);  // an fsync would now fail, and the append with it
  auto outcome = append_and_wait(storage->streams(), {make_append("s", "x")});
  gate.fail_next_syncs(0);
  ASSERT_TRUE(outcome.completed);
  EXPECT_FALSE(outcome.ec);
}

TEST(RocksDbStreamStore, FsyncsTheWalInTheBackgroundInFastMode) {
  TempDir dir;
  WalSyncGate gate;
  auto options = options_for(dir, Durability::kFast);
  options.env = gated_env(gate);
  options.fast_sync_interval_ms = 1;
  auto storage = open_or_die(options);
  gate.hold();
  ASSERT_FALSE(append_and_wait(storage->streams(), {make_append("s", "x")}).ec);
  EXPECT_TRUE(gate.wait_until_blocked()) << "no background WAL fsync after a fast append";
  gate.release();
}

TEST(RocksDbStreamStore, CompletesEveryQueuedAppendBeforeItIsDestroyed) {
  TempDir dir;
  boost::asio::io_context io;
  Completions done;
  {
    auto storage = open_or_die(options_for(dir));
    for (int i = 0; i < 20; ++i) {
      storage->streams().async_append({make_append("s", std::to_string(i))}, done.handler(io, i));
    }
  }
  io.run();
  ASSERT_EQ(done.by_id.size(), 20u);
  for (const auto& [id, completion] : done.by_id) EXPECT_FALSE(completion.ec) << id;
  auto storage = open_or_die(options_for(dir));
  EXPECT_EQ(storage->streams().head("s")->head_seq, 20u);
}

// ---------------------------------------------------------------------------------------------
// Reads: epochs, expiry, limits

class RocksDbStreamStoreRead : public ::testing::Test {
 protected:
  void SetUp() override {
    storage_ = open_or_die(options_for(dir_));
    ASSERT_NE(storage_, nullptr);
  }

  // Appends entries to "s" expiring at the given times, one batch.
  void append_expiring(std::vector<std::int64_t> expires_at_ms) {
    std::vector<AppendRequest> batch;
    for (auto expires : expires_at_ms) {
      batch.push_back(make_append("s", "data-" + std::to_string(batch.size() + 1), expires));
    }
    auto outcome = append_and_wait(storage_->streams(), std::move(batch));
    ASSERT_FALSE(outcome.ec);
    epoch_ = outcome.results.at(0).epoch;
  }

  ReadResult read(std::uint64_t after_seq, std::int64_t now_ms, std::size_t max_entries = 100,
                  std::size_t max_bytes = 1 << 20, std::uint64_t epoch = 0) {
    return read_or_die(storage_->streams(), {.stream = "s",
                                             .epoch = epoch == 0 ? epoch_ : epoch,
                                             .after_seq = after_seq,
                                             .max_entries = max_entries,
                                             .max_bytes = max_bytes,
                                             .now_ms = now_ms});
  }

  TempDir dir_;
  std::unique_ptr<RocksDbStorage> storage_;
  std::uint64_t epoch_ = 0;
};

TEST_F(RocksDbStreamStoreRead, ReturnsTheEntriesAfterTheCursor) {
  append_expiring({kFarFuture, kFarFuture, kFarFuture, kFarFuture});
  auto r = read(2, 0);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(3, 4));
  EXPECT_EQ(r.head_seq, 4u);
  EXPECT_EQ(r.epoch, epoch_);
  EXPECT_FALSE(r.epoch_changed);
  EXPECT_EQ(r.truncated_before, 0u);
  EXPECT_FALSE(r.more);
}

TEST_F(RocksDbStreamStoreRead, ReportsEpochChangedAndReadsFromTheStartForAnotherEpoch) {
  append_expiring({kFarFuture, kFarFuture, kFarFuture});
  auto r = read(2, 0, 100, 1 << 20, /*epoch=*/epoch_ ^ 1);
  EXPECT_TRUE(r.epoch_changed);
  EXPECT_EQ(r.epoch, epoch_);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(1, 2, 3));
}

TEST_F(RocksDbStreamStoreRead, NeverReturnsAnEntryAtOrPastItsExpiry) {
  append_expiring({5'000, 1'000, kFarFuture});
  auto r = read(0, /*now_ms=*/5'000);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(3));
}

TEST_F(RocksDbStreamStoreRead, SetsTruncatedBeforeToTheFirstLiveSeqWhenEarlierOnesExpired) {
  append_expiring({1'000, 2'000, kFarFuture, kFarFuture});
  auto r = read(0, /*now_ms=*/3'000);
  EXPECT_EQ(r.truncated_before, 3u);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(3, 4));
}

TEST_F(RocksDbStreamStoreRead, LeavesTruncatedBeforeUnsetWhenTheCursorIsPastTheExpiredOnes) {
  append_expiring({1'000, 2'000, kFarFuture});
  auto r = read(2, /*now_ms=*/3'000);
  EXPECT_EQ(r.truncated_before, 0u);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(3));
}

TEST_F(RocksDbStreamStoreRead, SetsTruncatedBeforePastTheHeadWhenEverythingAfterTheCursorExpired) {
  append_expiring({1'000, 1'000, 1'000});
  auto r = read(1, /*now_ms=*/2'000);
  EXPECT_TRUE(r.entries.empty());
  EXPECT_EQ(r.truncated_before, 4u);
  EXPECT_EQ(r.head_seq, 3u);
  EXPECT_FALSE(r.more);
}

TEST_F(RocksDbStreamStoreRead, StopsBeforeAHoleSoThatTheNextReadReportsIt) {
  append_expiring({kFarFuture, 1'000, kFarFuture});
  auto first = read(0, /*now_ms=*/2'000);
  EXPECT_THAT(seqs_of(first.entries), ElementsAre(1));
  EXPECT_TRUE(first.more);
  auto second = read(1, /*now_ms=*/2'000);
  EXPECT_EQ(second.truncated_before, 3u);
  EXPECT_THAT(seqs_of(second.entries), ElementsAre(3));
  EXPECT_FALSE(second.more);
}

TEST_F(RocksDbStreamStoreRead, ReturnsNothingAndNoTruncationForACursorAtTheHead) {
  append_expiring({kFarFuture, kFarFuture});
  auto r = read(2, 0);
  EXPECT_TRUE(r.entries.empty());
  EXPECT_EQ(r.truncated_before, 0u);
  EXPECT_FALSE(r.more);
}

TEST_F(RocksDbStreamStoreRead, HonoursMaxEntriesAndSetsMore) {
  append_expiring({kFarFuture, kFarFuture, kFarFuture, kFarFuture, kFarFuture});
  auto r = read(0, 0, /*max_entries=*/2);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(1, 2));
  EXPECT_TRUE(r.more);
}

TEST_F(RocksDbStreamStoreRead, LeavesMoreUnsetWhenTheLimitIsReachedExactly) {
  append_expiring({kFarFuture, kFarFuture});
  auto r = read(0, 0, /*max_entries=*/2);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(1, 2));
  EXPECT_FALSE(r.more);
}

TEST_F(RocksDbStreamStoreRead, HonoursMaxBytesOverTheDataSizes) {
  append_expiring({kFarFuture, kFarFuture, kFarFuture});  // data "data-N": 6 bytes each
  auto r = read(0, 0, 100, /*max_bytes=*/12);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(1, 2));
  EXPECT_TRUE(r.more);
}

TEST_F(RocksDbStreamStoreRead, ReturnsOneEntryEvenWhenItAloneExceedsMaxBytes) {
  append_expiring({kFarFuture, kFarFuture});
  auto r = read(0, 0, 100, /*max_bytes=*/1);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(1));
  EXPECT_TRUE(r.more);
}

TEST_F(RocksDbStreamStoreRead, ReportsACorruptStoredEntryAsAnError) {
  append_expiring({kFarFuture, kFarFuture});
  auto& database = storage_->database();
  ASSERT_TRUE(database.db()
                  .Put(::rocksdb::WriteOptions(), database.stream_entries(),
                       detail::entry_key("s", 2), "\x01garbage")
                  .ok());
  auto r = storage_->streams().read({.stream = "s"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), RocksDbError::kCorruptRecord);
}

TEST_F(RocksDbStreamStoreRead, ReportsACorruptStreamMetaAsAnErrorToReadsAndAppends) {
  append_expiring({kFarFuture});
  auto& database = storage_->database();
  ASSERT_TRUE(
      database.db().Put(::rocksdb::WriteOptions(), database.stream_meta(), "broken", "?").ok());
  EXPECT_EQ(storage_->streams().read({.stream = "broken"}).error(), RocksDbError::kCorruptMeta);
  EXPECT_EQ(storage_->streams().head("broken").error(), RocksDbError::kCorruptMeta);
  auto outcome = append_and_wait(storage_->streams(), {make_append("broken", "x")});
  EXPECT_EQ(outcome.ec, RocksDbError::kCorruptMeta);
  // Other appends of the same moment are not affected.
  EXPECT_FALSE(append_and_wait(storage_->streams(), {make_append("s", "fine")}).ec);
}

// ---------------------------------------------------------------------------------------------
// TTL compaction

TEST(RocksDbStreamStore, CompactionRemovesExpiredEntriesButKeepsTheHead) {
  TempDir dir;
  auto storage = open_or_die(options_for(dir));
  std::vector<AppendRequest> batch;
  for (int i = 0; i < 6; ++i) batch.push_back(make_append("s", "x", i < 4 ? 1'000 : kFarFuture));
  ASSERT_FALSE(append_and_wait(storage->streams(), std::move(batch)).ec);
  auto& database = storage->database();
  ASSERT_EQ(stored_entry_count(database, "s"), 6u);

  ASSERT_TRUE(database.db().Flush(::rocksdb::FlushOptions(), database.stream_entries()).ok());
  ::rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = ::rocksdb::BottommostLevelCompaction::kForce;
  ASSERT_TRUE(
      database.db().CompactRange(compact, database.stream_entries(), nullptr, nullptr).ok());

  EXPECT_EQ(stored_entry_count(database, "s"), 2u);
  EXPECT_EQ(storage->streams().head("s")->head_seq, 6u);
  auto next = append_and_wait(storage->streams(), {make_append("s", "y")});
  EXPECT_EQ(next.results.at(0).seq, 7u);
  auto r = read_or_die(storage->streams(), {.stream = "s", .after_seq = 0});
  EXPECT_EQ(r.truncated_before, 5u);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(5, 6, 7));
}

// ---------------------------------------------------------------------------------------------
// Open, epochs across restarts, crashes

TEST(RocksDbStreamStore, OpenNamesThePathWhenTheDatabaseCannotBeOpened) {
  TempDir dir;
  const auto file = dir.path() / "not-a-directory";
  std::ofstream(file) << "x";
  RocksDbOptions options;
  options.path = (file / "db").string();
  auto storage = RocksDbStorage::open(options);
  ASSERT_FALSE(storage);
  EXPECT_THAT(storage.error().message, HasSubstr(options.path));
  EXPECT_TRUE(storage.error().code);
  EXPECT_THROW((void)storage.value(), boost::system::system_error);
}

TEST(RocksDbStreamStore, OpenFailsWhileAnotherInstanceHoldsTheDatabase) {
  TempDir dir;
  auto first = open_or_die(options_for(dir));
  auto second = RocksDbStorage::open(options_for(dir));
  ASSERT_FALSE(second);
  EXPECT_THAT(second.error().message, HasSubstr(dir.db_path()));
}

TEST(RocksDbStreamStore, KeepsEpochAndHeadAcrossAReopenInSyncMode) {
  TempDir dir;
  AppendResult before;
  {
    auto storage = open_or_die(options_for(dir, Durability::kSync, "boot-a"));
    before = append_and_wait(storage->streams(), {make_append("s", "x")}).results.at(0);
  }
  auto storage = open_or_die(options_for(dir, Durability::kSync, "boot-b"));
  auto head = storage->streams().head("s");
  EXPECT_EQ(head->epoch, before.epoch);
  EXPECT_EQ(head->head_seq, 1u);
  EXPECT_EQ(append_and_wait(storage->streams(), {make_append("s", "y")}).results.at(0).seq, 2u);
}

TEST(RocksDbStreamStore, KeepsTheEpochAfterACleanFastShutdownEvenOnAnotherBoot) {
  TempDir dir;
  AppendResult before;
  {
    auto storage = open_or_die(options_for(dir, Durability::kFast, "boot-a"));
    before = append_and_wait(storage->streams(), {make_append("s", "x")}).results.at(0);
  }
  auto storage = open_or_die(options_for(dir, Durability::kFast, "boot-b"));
  EXPECT_EQ(storage->streams().head("s")->epoch, before.epoch);
}

// Runs herald_storage_crash_writer in a child process and collects its acknowledgements.
struct Ack {
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
};

struct ChildRun {
  std::vector<Ack> acks;
  int wait_status = 0;
};

// appends > 0: the child exits by itself (no shutdown) after that many acks.
// kill_after_acks > 0: SIGKILL the child once that many acks arrived.
// kind: "plain" (one entry per append) or "batch" (see rocksdb_crash_writer.cc).
ChildRun run_crash_writer(const std::string& db_path, const char* mode, const char* boot_id,
                          std::uint64_t appends, std::size_t kill_after_acks,
                          const char* kind = "plain") {
  ChildRun run;
  int fds[2];
  if (pipe(fds) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return run;
  }
  std::string fd_arg = std::to_string(fds[1]);
  std::string appends_arg = std::to_string(appends);
  std::string program = HERALD_CRASH_WRITER;
  std::string path_arg = db_path;
  std::string mode_arg = mode;
  std::string boot_arg = boot_id;
  std::string kind_arg = kind;
  std::array<char*, 8> argv = {program.data(), path_arg.data(),    mode_arg.data(), boot_arg.data(),
                               fd_arg.data(),  appends_arg.data(), kind_arg.data(), nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    close(fds[0]);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    close(fds[0]);
    return run;
  }

  std::string buffer;
  bool killed = false;
  constexpr int kSafetyTimeoutMs = 60'000;  // a hung child fails the test instead of hanging it
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    const int ready = poll(&p, 1, kSafetyTimeoutMs);
    if (ready <= 0) {
      ADD_FAILURE() << "crash writer produced nothing for " << kSafetyTimeoutMs << " ms";
      kill(pid, SIGKILL);
      break;
    }
    char chunk[4096];
    const ssize_t n = read(fds[0], chunk, sizeof(chunk));
    if (n <= 0) break;  // EOF: the child is gone
    buffer.append(chunk, static_cast<std::size_t>(n));
    if (!killed && kill_after_acks > 0 && buffer.size() / sizeof(Ack) >= kill_after_acks) {
      kill(pid, SIGKILL);
      killed = true;  // keep reading: acks written before the kill still count
    }
  }
  close(fds[0]);
  waitpid(pid, &run.wait_status, 0);
  EXPECT_EQ(buffer.size() % sizeof(Ack), 0u);
  run.acks.resize(buffer.size() / sizeof(Ack));
  std::memcpy(run.acks.data(), buffer.data(), run.acks.size() * sizeof(Ack));
  return run;
}

TEST(RocksDbStreamStoreCrash, KeepsEveryAcknowledgedAppendAcrossKillNineAndReusesNoSeq) {
  TempDir dir;
  auto run = run_crash_writer(dir.db_path(), "sync", "boot-a", 0, /*kill_after_acks=*/300);
  ASSERT_TRUE(WIFSIGNALED(run.wait_status)) << "the writer should have been killed";
  ASSERT_GE(run.acks.size(), 300u);

  auto storage = open_or_die(options_for(dir, Durability::kSync, "boot-a"));
  const std::array<const char*, 2> streams = {"crash/a", "crash/b"};
  std::array<std::uint64_t, 2> max_acked = {0, 0};
  std::array<std::set<std::uint64_t>, 2> acked;
  for (const auto& ack : run.acks) {
    ASSERT_LT(ack.stream, 2u);
    acked[ack.stream].insert(ack.seq);
    max_acked[ack.stream] = std::max(max_acked[ack.stream], ack.seq);
  }
  for (std::size_t s = 0; s < 2; ++s) {
    auto head = storage->streams().head(streams[s]);
    ASSERT_TRUE(head);
    EXPECT_GE(head->head_seq, max_acked[s]);
    auto r = read_or_die(storage->streams(),
                         {.stream = streams[s], .max_entries = 1'000'000, .max_bytes = 1 << 30});
    // Every entry up to the head is there, with no gap: every acked one among them.
    std::vector<std::uint64_t> expected(head->head_seq);
    std::iota(expected.begin(), expected.end(), 1u);
    EXPECT_EQ(seqs_of(r.entries), expected);
    for (const auto& ack : run.acks) {
      if (ack.stream == s) {
        EXPECT_EQ(ack.epoch, head->epoch);
      }
    }
    // The next append continues after everything acknowledged.
    auto next = append_and_wait(storage->streams(), {make_append(streams[s], "after")});
    ASSERT_FALSE(next.ec);
    EXPECT_EQ(next.results.at(0).seq, head->head_seq + 1);
    EXPECT_FALSE(acked[s].contains(next.results.at(0).seq));
    EXPECT_EQ(next.results.at(0).epoch, head->epoch);
  }
}

TEST(RocksDbStreamStoreCrash, KeepsEveryAcknowledgedBatchWholeAcrossKillNine) {
  TempDir dir;
  auto run = run_crash_writer(dir.db_path(), "sync", "boot-a", 0, /*kill_after_acks=*/400, "batch");
  ASSERT_TRUE(WIFSIGNALED(run.wait_status)) << "the writer should have been killed";

  auto storage = open_or_die(options_for(dir, Durability::kSync, "boot-a"));
  auto& records = storage->records();
  std::size_t entries = 0;
  for (std::size_t s = 0; s < 2; ++s) {
    const std::string stream = s == 0 ? "crash/a" : "crash/b";
    auto r = read_or_die(storage->streams(),
                         {.stream = stream, .max_entries = 1'000'000, .max_bytes = 1 << 30});
    std::vector<std::uint64_t> expected(r.head_seq);
    std::iota(expected.begin(), expected.end(), 1u);
    ASSERT_EQ(seqs_of(r.entries), expected) << stream;
    for (const auto& ack : run.acks) {
      if (ack.stream == s) {
        EXPECT_LE(ack.seq, r.head_seq);
      }
    }
    for (std::size_t i = 0; i < r.entries.size(); ++i) {
      const Entry& e = r.entries[i];
      // Each entry came with its record, in the same write.
      auto record = records.get("crash/" + e.message_id, 0);
      ASSERT_TRUE(record && *record) << stream << " seq " << e.seq;
      EXPECT_EQ((*record)->value, std::to_string(s));
      // On crash/b each entry collapsed the one before it, in the same write.
      const bool last = i + 1 == r.entries.size();
      const DataKind expected_kind = s == 1 && !last ? DataKind::kTombstone : DataKind::kJson;
      EXPECT_EQ(e.kind, expected_kind) << stream << " seq " << e.seq;
    }
    entries += r.entries.size();
  }
  // And no record came without its entry.
  auto written = records.scan("crash/", "", 1'000'000, 0);
  ASSERT_TRUE(written);
  EXPECT_EQ(written->size(), entries);
  // Unsynced records survive a process crash: the WAL write reached the OS.
  for (const auto& ack : run.acks) {
    if (ack.stream != 2) continue;
    auto seen = records.get("seen/" + std::to_string(ack.seq), 0);
    ASSERT_TRUE(seen);
    EXPECT_TRUE(seen->has_value()) << "seen/" << ack.seq;
  }
}

TEST(RocksDbStreamStoreCrash, ChangesTheEpochAfterAnUncleanFastShutdownOnAnotherBoot) {
  TempDir dir;
  auto run = run_crash_writer(dir.db_path(), "fast", "boot-a", /*appends=*/20, 0);
  ASSERT_TRUE(WIFEXITED(run.wait_status));
  ASSERT_EQ(run.acks.size(), 20u);

  auto storage = open_or_die(options_for(dir, Durability::kFast, "boot-b"));
  auto head = storage->streams().head("crash/a");
  ASSERT_TRUE(head);
  EXPECT_NE(head->epoch, run.acks[0].epoch);
  EXPECT_EQ(head->epoch & 0xffffffffu, run.acks[0].epoch & 0xffffffffu)
      << "only the generation half changes";
  auto r = read_or_die(storage->streams(),
                       {.stream = "crash/a", .epoch = run.acks[0].epoch, .after_seq = 5});
  EXPECT_TRUE(r.epoch_changed);
  EXPECT_EQ(r.entries.front().seq, 1u);
}

TEST(RocksDbStreamStoreCrash, KeepsTheEpochAfterAnUncleanFastShutdownOnTheSameBoot) {
  TempDir dir;
  auto run = run_crash_writer(dir.db_path(), "fast", "boot-a", /*appends=*/20, 0);
  ASSERT_EQ(run.acks.size(), 20u);
  auto storage = open_or_die(options_for(dir, Durability::kFast, "boot-a"));
  auto head = storage->streams().head("crash/a");
  EXPECT_EQ(head->epoch, run.acks[0].epoch);
  // A process crash loses nothing in fast mode: the WAL writes reached the OS.
  std::uint64_t max_a = 0;
  for (const auto& ack : run.acks) {
    if (ack.stream == 0) max_a = std::max(max_a, ack.seq);
  }
  EXPECT_EQ(head->head_seq, max_a);
}

TEST(RocksDbStreamStoreCrash, NeverChangesTheEpochInSyncModeEvenAfterACrashAndAReboot) {
  TempDir dir;
  auto run = run_crash_writer(dir.db_path(), "sync", "boot-a", /*appends=*/20, 0);
  ASSERT_EQ(run.acks.size(), 20u);
  auto storage = open_or_die(options_for(dir, Durability::kSync, "boot-b"));
  EXPECT_EQ(storage->streams().head("crash/a")->epoch, run.acks[0].epoch);
}

}  // namespace
}  // namespace herald::storage
