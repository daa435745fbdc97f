// AppendBatch on RocksDbStreamStore: tombstones, collapse keys, records written with entries,
// unless_record_exists, sync = false, and how batches of one group commit see each other.
#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/system/errc.hpp>

#include "storage/rocksdb/detail/key_codec.h"
#include "storage/rocksdb/rocksdb_error.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::storage {
namespace {

using ::testing::ElementsAre;
using testing::gated_env;
using testing::TempDir;
using testing::WalSyncGate;
using testing::write_and_wait;

constexpr std::int64_t kFarFuture = 4'000'000'000'000;
constexpr std::int64_t kNow = 10'000;

AppendRequest entry(std::string stream, std::string message_id, std::string data = "data",
                    std::int64_t expires_at_ms = kFarFuture, std::string collapse_key = {}) {
  AppendRequest request;
  request.stream = std::move(stream);
  request.entry.app = "app";
  request.entry.message_id = std::move(message_id);
  request.entry.data = std::move(data);
  request.entry.sent_at_ms = 1'000;
  request.entry.expires_at_ms = expires_at_ms;
  request.collapse_key = std::move(collapse_key);
  return request;
}

AppendRequest collapsing(std::string stream, std::string message_id, std::string collapse_key,
                         std::int64_t expires_at_ms = kFarFuture) {
  return entry(std::move(stream), std::move(message_id), "data", expires_at_ms,
               std::move(collapse_key));
}

AppendBatch batch_of(std::vector<AppendRequest> entries) {
  AppendBatch batch;
  batch.entries = std::move(entries);
  batch.now_ms = kNow;
  return batch;
}

AppendBatch tombstone_batch(std::string stream, std::uint64_t seq, std::string message_id) {
  AppendBatch batch;
  batch.tombstones.push_back({std::move(stream), seq, std::move(message_id)});
  batch.now_ms = kNow;
  return batch;
}

// A batch that appends one entry to `stream` and puts `key` = `value`, unless `key` exists.
AppendBatch once(std::string key, std::string value, std::string stream = "s") {
  AppendBatch batch = batch_of({entry(std::move(stream), value)});
  batch.put_records.push_back({key, std::move(value), 0});
  batch.unless_record_exists = std::move(key);
  return batch;
}

std::vector<std::uint64_t> seqs_of(const std::vector<Entry>& entries) {
  std::vector<std::uint64_t> seqs;
  for (const auto& e : entries) seqs.push_back(e.seq);
  return seqs;
}

std::vector<DataKind> kinds_of(const std::vector<Entry>& entries) {
  std::vector<DataKind> kinds;
  for (const auto& e : entries) kinds.push_back(e.kind);
  return kinds;
}

// How many keys a column family holds, expired or not: what compaction left.
std::size_t stored_keys(RocksDbDatabase& database, ::rocksdb::ColumnFamilyHandle* family) {
  std::unique_ptr<::rocksdb::Iterator> it(
      database.db().NewIterator(::rocksdb::ReadOptions(), family));
  std::size_t count = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++count;
  return count;
}

void compact(RocksDbDatabase& database, ::rocksdb::ColumnFamilyHandle* family) {
  ASSERT_TRUE(database.db().Flush(::rocksdb::FlushOptions(), family).ok());
  ::rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = ::rocksdb::BottommostLevelCompaction::kForce;
  ASSERT_TRUE(database.db().CompactRange(compact, family, nullptr, nullptr).ok());
}

class RocksDbAppendBatch : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  RocksDbOptions options() {
    RocksDbOptions options;
    options.path = dir_.db_path();
    options.boot_id = "boot";
    options.env = env_;
    return options;
  }

  void reopen() {
    storage_.reset();
    auto opened = RocksDbStorage::open(options());
    ASSERT_TRUE(opened) << opened.error().message;
    storage_ = std::move(*opened);
  }

  // Writes `batch` and expects success.
  AppendOutcome write(AppendBatch batch) {
    auto completed = write_and_wait(storage_->streams(), std::move(batch));
    EXPECT_TRUE(completed.completed);
    EXPECT_FALSE(completed.ec) << completed.ec.message();
    return std::move(completed.outcome);
  }

  ReadResult read(std::string_view stream, std::int64_t now_ms = kNow,
                  std::size_t max_entries = 100, std::size_t max_bytes = 1 << 20) {
    auto result = storage_->streams().read(
        {.stream = stream, .max_entries = max_entries, .max_bytes = max_bytes, .now_ms = now_ms});
    EXPECT_TRUE(result) << result.error().message();
    return result ? *result : ReadResult{};
  }

  std::optional<Record> record(std::string_view key, std::int64_t now_ms = kNow) {
    auto result = storage_->records().get(key, now_ms);
    EXPECT_TRUE(result) << result.error().message();
    return result ? *result : std::nullopt;
  }

  // Reopens the database on a file system whose WAL fsyncs the returned gate controls.
  WalSyncGate& use_gate() {
    env_ = gated_env(gate_);
    reopen();
    return gate_;
  }

  TempDir dir_;
  WalSyncGate gate_;                     // outlives the storage that syncs through it
  std::shared_ptr<::rocksdb::Env> env_;  // null: the default one
  std::unique_ptr<RocksDbStorage> storage_;
};

// ---------------------------------------------------------------------------------------------
// Entry kinds and tombstones

TEST_F(RocksDbAppendBatch, ReplacesALiveEntryByATombstoneThatKeepsItsSeqAndIdentity) {
  write(batch_of({entry("s", "m1", "one"), entry("s", "m2", "two"), entry("s", "m3", "three")}));
  auto outcome = write(tombstone_batch("s", 2, "m2"));
  EXPECT_THAT(outcome.tombstoned, ElementsAre(true));

  auto r = read("s");
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(1, 2, 3));
  EXPECT_THAT(kinds_of(r.entries),
              ElementsAre(DataKind::kJson, DataKind::kTombstone, DataKind::kJson));
  const Entry& tombstone = r.entries[1];
  EXPECT_EQ(tombstone.app, "app");
  EXPECT_EQ(tombstone.message_id, "m2");
  EXPECT_EQ(tombstone.sent_at_ms, 1'000);
  EXPECT_EQ(tombstone.expires_at_ms, kFarFuture);
  EXPECT_TRUE(tombstone.data.empty());
  EXPECT_EQ(r.head_seq, 3u) << "a tombstone takes no new seq";
  EXPECT_EQ(r.truncated_before, 0u);
}

TEST_F(RocksDbAppendBatch, LeavesAnEntryWhoseMessageIdDiffersUntouched) {
  write(batch_of({entry("s", "m1", "one")}));
  EXPECT_THAT(write(tombstone_batch("s", 1, "other")).tombstoned, ElementsAre(false));
  EXPECT_THAT(kinds_of(read("s").entries), ElementsAre(DataKind::kJson));
}

TEST_F(RocksDbAppendBatch, LeavesAnEntryThatExpiredUntouched) {
  write(batch_of({entry("s", "m1", "one", /*expires_at_ms=*/5'000)}));
  EXPECT_THAT(write(tombstone_batch("s", 1, "m1")).tombstoned, ElementsAre(false));  // now 10'000
  EXPECT_THAT(kinds_of(read("s", /*now_ms=*/1'000).entries), ElementsAre(DataKind::kJson));
}

TEST_F(RocksDbAppendBatch, NeverCreatesAnEntryForASeqThatWasNotWritten) {
  write(batch_of({entry("s", "m1")}));
  auto outcome = write(tombstone_batch("s", 2, "m1"));
  EXPECT_THAT(outcome.tombstoned, ElementsAre(false));
  EXPECT_THAT(write(tombstone_batch("nobody", 1, "m1")).tombstoned, ElementsAre(false));
  EXPECT_EQ(stored_keys(storage_->database(), storage_->database().stream_entries()), 1u);
  EXPECT_EQ(storage_->streams().head("s")->head_seq, 1u);
  EXPECT_EQ(storage_->streams().head("nobody")->epoch, 0u);
}

TEST_F(RocksDbAppendBatch, TombstonesAnEntryOnlyOnce) {
  write(batch_of({entry("s", "m1")}));
  AppendBatch twice = tombstone_batch("s", 1, "m1");
  twice.tombstones.push_back({"s", 1, "m1"});
  EXPECT_THAT(write(std::move(twice)).tombstoned, ElementsAre(true, false));
  EXPECT_THAT(write(tombstone_batch("s", 1, "m1")).tombstoned, ElementsAre(false));
  EXPECT_EQ(storage_->streams().writer_stats().tombstones_written, 1u);
}

TEST_F(RocksDbAppendBatch, CountsTombstonesTowardMaxEntriesAndZeroBytesTowardMaxBytes) {
  write(batch_of({entry("s", "m1", "data-1"), entry("s", "m2", "data-2"),
                  entry("s", "m3", "data-3"), entry("s", "m4", "data-4")}));
  AppendBatch revoke = tombstone_batch("s", 1, "m1");
  revoke.tombstones.push_back({"s", 2, "m2"});
  write(std::move(revoke));

  auto by_count = read("s", kNow, /*max_entries=*/2);
  EXPECT_THAT(seqs_of(by_count.entries), ElementsAre(1, 2));
  EXPECT_TRUE(by_count.more);
  // 0 + 0 + 6 bytes fit in 6; the fourth entry's 6 more do not.
  auto by_bytes = read("s", kNow, 100, /*max_bytes=*/6);
  EXPECT_THAT(seqs_of(by_bytes.entries), ElementsAre(1, 2, 3));
  EXPECT_TRUE(by_bytes.more);
}

TEST_F(RocksDbAppendBatch, NeverReturnsAnExpiredTombstone) {
  write(batch_of({entry("s", "m1", "x", /*expires_at_ms=*/20'000), entry("s", "m2")}));
  write(tombstone_batch("s", 1, "m1"));
  auto r = read("s", /*now_ms=*/20'000);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(2));
  EXPECT_EQ(r.truncated_before, 2u);
}

TEST_F(RocksDbAppendBatch, RefusesToAppendATombstoneOrAnUnknownKindAndWritesNothing) {
  auto tombstone = entry("s", "m1", "");
  tombstone.entry.kind = DataKind::kTombstone;
  auto completed = write_and_wait(storage_->streams(), batch_of({entry("s", "ok"), tombstone}));
  EXPECT_EQ(completed.ec, RocksDbError::kBadEntryKind);
  EXPECT_EQ(completed.ec, boost::system::errc::invalid_argument);

  auto unknown = entry("s", "m1");
  unknown.entry.kind = static_cast<DataKind>(9);
  EXPECT_EQ(write_and_wait(storage_->streams(), batch_of({unknown})).ec,
            RocksDbError::kBadEntryKind);
  EXPECT_EQ(storage_->streams().head("s")->head_seq, 0u);
}

TEST_F(RocksDbAppendBatch, StoresARecallEntryLikeAnyOther) {
  auto recall = entry("s", "m2", "m1");
  recall.entry.kind = DataKind::kRecall;
  write(batch_of({recall}));
  auto r = read("s");
  ASSERT_EQ(r.entries.size(), 1u);
  EXPECT_EQ(r.entries[0].kind, DataKind::kRecall);
  EXPECT_EQ(r.entries[0].data, "m1");
}

TEST_F(RocksDbAppendBatch, RevokesAndRecallsInOneAtomicBatch) {
  write(batch_of({entry("i/dev", "m1", "hello")}));
  auto recall = entry("i/dev", "m2", "m1");
  recall.entry.kind = DataKind::kRecall;
  AppendBatch revoke = batch_of({recall});
  revoke.tombstones.push_back({"i/dev", 1, "m1"});
  revoke.put_records.push_back({"status/m1", "revoked", 0});
  auto outcome = write(std::move(revoke));
  EXPECT_THAT(outcome.tombstoned, ElementsAre(true));
  ASSERT_EQ(outcome.results.size(), 1u);
  EXPECT_EQ(outcome.results[0].seq, 2u);
  EXPECT_THAT(kinds_of(read("i/dev").entries),
              ElementsAre(DataKind::kTombstone, DataKind::kRecall));
  EXPECT_EQ(record("status/m1")->value, "revoked");
}

// ---------------------------------------------------------------------------------------------
// Collapse keys

TEST_F(RocksDbAppendBatch, CollapseKeyTombstonesThePreviousLiveEntryWithTheSameKey) {
  auto first = write(batch_of({collapsing("s", "m1", "score")}));
  EXPECT_EQ(first.results.at(0).collapsed_seq, 0u);
  write(batch_of({entry("s", "other")}));
  auto second = write(batch_of({collapsing("s", "m3", "score")}));
  EXPECT_EQ(second.results.at(0).seq, 3u);
  EXPECT_EQ(second.results.at(0).collapsed_seq, 1u);

  auto r = read("s");
  EXPECT_THAT(kinds_of(r.entries),
              ElementsAre(DataKind::kTombstone, DataKind::kJson, DataKind::kJson));
  EXPECT_EQ(r.entries[0].message_id, "m1");
}

TEST_F(RocksDbAppendBatch, KeepsCollapseKeysOfDifferentStreamsApart) {
  write(batch_of({collapsing("a", "m1", "k")}));
  auto other = write(batch_of({collapsing("b", "m2", "k"), collapsing("ab", "m3", "k")}));
  EXPECT_EQ(other.results.at(0).collapsed_seq, 0u);
  EXPECT_EQ(other.results.at(1).collapsed_seq, 0u);
  EXPECT_THAT(kinds_of(read("a").entries), ElementsAre(DataKind::kJson));
}

TEST_F(RocksDbAppendBatch, CollapseLeavesAnExpiredPreviousEntryAlone) {
  write(batch_of({collapsing("s", "m1", "k", /*expires_at_ms=*/5'000)}));
  auto second = write(batch_of({collapsing("s", "m2", "k")}));  // now 10'000
  EXPECT_EQ(second.results.at(0).collapsed_seq, 0u);
  EXPECT_THAT(kinds_of(read("s", /*now_ms=*/1'000).entries),
              ElementsAre(DataKind::kJson, DataKind::kJson));
}

TEST_F(RocksDbAppendBatch, CollapseLeavesAPreviousEntryThatWasRevokedAlone) {
  write(batch_of({collapsing("s", "m1", "k")}));
  write(tombstone_batch("s", 1, "m1"));
  auto second = write(batch_of({collapsing("s", "m2", "k")}));
  EXPECT_EQ(second.results.at(0).collapsed_seq, 0u);
  EXPECT_EQ(storage_->streams().writer_stats().tombstones_written, 1u);
}

TEST_F(RocksDbAppendBatch, CollapsesTheEntriesOfOneBatchInOrder) {
  auto outcome = write(batch_of({collapsing("s", "m1", "k"), collapsing("s", "m2", "k"),
                                 entry("s", "plain"), collapsing("s", "m4", "k")}));
  ASSERT_EQ(outcome.results.size(), 4u);
  EXPECT_EQ(outcome.results[0].collapsed_seq, 0u);
  EXPECT_EQ(outcome.results[1].collapsed_seq, 1u);
  EXPECT_EQ(outcome.results[2].collapsed_seq, 0u);
  EXPECT_EQ(outcome.results[3].collapsed_seq, 2u);
  EXPECT_THAT(kinds_of(read("s").entries), ElementsAre(DataKind::kTombstone, DataKind::kTombstone,
                                                       DataKind::kJson, DataKind::kJson));
}

TEST_F(RocksDbAppendBatch, CollapsesAnEntryAppendedEarlierInTheSameGroupCommit) {
  WalSyncGate& gate = use_gate();
  boost::asio::io_context io;
  std::map<int, std::pair<boost::system::error_code, AppendOutcome>> done;
  auto handler = [&](int id) {
    return boost::asio::bind_executor(io, [&, id](boost::system::error_code ec, AppendOutcome o) {
      done[id] = {ec, std::move(o)};
    });
  };

  gate.hold();
  storage_->streams().async_append(batch_of({entry("other", "x")}), handler(0));
  ASSERT_TRUE(gate.wait_until_blocked());  // the writer is inside the first group's fsync
  storage_->streams().async_append(batch_of({collapsing("s", "m1", "k")}), handler(1));
  storage_->streams().async_append(batch_of({collapsing("s", "m2", "k")}), handler(2));
  gate.release();
  io.run();

  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(storage_->streams().writer_stats().batches_written, 2u) << "1 and 2 wrote together";
  EXPECT_EQ(done[2].second.results.at(0).collapsed_seq, done[1].second.results.at(0).seq);
  EXPECT_THAT(kinds_of(read("s").entries), ElementsAre(DataKind::kTombstone, DataKind::kJson));
}

TEST_F(RocksDbAppendBatch, KeepsTheCollapseIndexAcrossAReopen) {
  write(batch_of({collapsing("s", "m1", "k")}));
  reopen();
  auto second = write(batch_of({collapsing("s", "m2", "k")}));
  EXPECT_EQ(second.results.at(0).collapsed_seq, 1u);
  EXPECT_THAT(kinds_of(read("s").entries), ElementsAre(DataKind::kTombstone, DataKind::kJson));
}

TEST_F(RocksDbAppendBatch, CompactionDropsACollapsePointerWithItsExpiredEntry) {
  auto& database = storage_->database();
  write(batch_of(
      {collapsing("s", "gone", "k1", /*expires_at_ms=*/1'000), collapsing("s", "kept", "k2")}));
  ASSERT_EQ(stored_keys(database, database.collapse_keys()), 2u);
  compact(database, database.collapse_keys());
  EXPECT_EQ(stored_keys(database, database.collapse_keys()), 1u);
  EXPECT_EQ(write(batch_of({collapsing("s", "next", "k2")})).results.at(0).collapsed_seq, 2u);
}

TEST_F(RocksDbAppendBatch, CollapsesThroughTheEntriesOnlyFormToo) {
  auto first = testing::append_and_wait(storage_->streams(), {collapsing("s", "m1", "k")});
  auto second = testing::append_and_wait(storage_->streams(), {collapsing("s", "m2", "k")});
  ASSERT_FALSE(second.ec);
  EXPECT_EQ(second.results.at(0).collapsed_seq, first.results.at(0).seq);
}

TEST_F(RocksDbAppendBatch, RefusesACollapseKeyLongerThanTheMaximum) {
  const std::string key(RocksDbStreamStore::kMaxCollapseKeyBytes + 1, 'k');
  auto completed = write_and_wait(storage_->streams(), batch_of({collapsing("s", "m1", key)}));
  EXPECT_EQ(completed.ec, RocksDbError::kBadCollapseKey);
  EXPECT_EQ(storage_->streams().head("s")->head_seq, 0u);
}

// ---------------------------------------------------------------------------------------------
// Records written with entries, and unless_record_exists

TEST_F(RocksDbAppendBatch, PutsAndDeletesRecordsInTheSameAtomicWriteAsEntries) {
  AppendBatch put = batch_of({entry("s", "m1")});
  put.put_records.push_back({"app/a", "alpha", 0});
  put.put_records.push_back({"app/b", "beta", kFarFuture});
  write(std::move(put));
  EXPECT_EQ(record("app/a")->value, "alpha");
  EXPECT_EQ(record("app/b")->expires_at_ms, kFarFuture);

  AppendBatch del;
  del.delete_records = {"app/a", "app/never-written"};
  EXPECT_TRUE(write(std::move(del)).results.empty());
  EXPECT_FALSE(record("app/a"));
  EXPECT_TRUE(record("app/b"));
}

TEST_F(RocksDbAppendBatch, KeepsTheLastPutOfAKeyAndPutsAfterDeletesInOneBatch) {
  AppendBatch batch;
  batch.put_records.push_back({"k", "first", 0});
  batch.put_records.push_back({"k", "second", 0});
  batch.put_records.push_back({"j", "put", 0});
  batch.delete_records.push_back("j");
  write(std::move(batch));
  EXPECT_EQ(record("k")->value, "second");
  EXPECT_EQ(record("j")->value, "put");
}

TEST_F(RocksDbAppendBatch, WritesNothingWhenTheUnlessRecordExistsAndReturnsIt) {
  auto first = write(once("idem/app/42", "first"));
  EXPECT_FALSE(first.existing);
  ASSERT_EQ(first.results.size(), 1u);

  AppendBatch again = once("idem/app/42", "second");
  again.put_records.push_back({"other", "x", 0});
  again.tombstones.push_back({"s", 1, "first"});
  auto second = write(std::move(again));
  ASSERT_TRUE(second.existing);
  EXPECT_EQ(*second.existing, (Record{"idem/app/42", "first", 0}));
  EXPECT_TRUE(second.results.empty());
  EXPECT_TRUE(second.tombstoned.empty());

  EXPECT_EQ(storage_->streams().head("s")->head_seq, 1u);
  EXPECT_FALSE(record("other"));
  EXPECT_THAT(kinds_of(read("s").entries), ElementsAre(DataKind::kJson));
  EXPECT_EQ(storage_->streams().writer_stats().appends_skipped, 1u);
}

TEST_F(RocksDbAppendBatch, WritesTheBatchWhenTheUnlessRecordHasExpiredOrWasDeleted) {
  AppendBatch expiring = once("idem/x", "first");
  expiring.put_records[0].expires_at_ms = 5'000;
  write(std::move(expiring));
  EXPECT_FALSE(write(once("idem/x", "second")).existing) << "expired at 5'000, now is 10'000";
  EXPECT_EQ(record("idem/x")->value, "second");

  AppendBatch del;
  del.delete_records.push_back("idem/x");
  write(std::move(del));
  EXPECT_FALSE(write(once("idem/x", "third")).existing);
  EXPECT_EQ(storage_->streams().head("s")->head_seq, 3u);
}

TEST_F(RocksDbAppendBatch, ReportsTheExistingRecordForABatchWithOnlyAPrecondition) {
  AppendBatch check;
  check.unless_record_exists = "job/1";
  check.now_ms = kNow;
  auto absent = write(check);
  EXPECT_FALSE(absent.existing);
  EXPECT_EQ(storage_->streams().writer_stats().batches_written, 0u) << "nothing to write";

  write(once("job/1", "fired"));
  auto present = write(check);
  ASSERT_TRUE(present.existing);
  EXPECT_EQ(present.existing->value, "fired");
}

TEST_F(RocksDbAppendBatch, LetsExactlyOneOfManyConcurrentBatchesWithTheSameUnlessKeyWin) {
  constexpr int kThreads = 4;
  constexpr int kBatchesPerThread = 25;
  std::mutex mutex;
  std::vector<std::pair<std::string, AppendOutcome>> outcomes;  // (value put, outcome)
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      boost::asio::io_context io;
      for (int i = 0; i < kBatchesPerThread; ++i) {
        std::string value = std::to_string(t) + "/" + std::to_string(i);
        storage_->streams().async_append(
            once("idem/shared", value),
            boost::asio::bind_executor(
                io, [&, value](boost::system::error_code ec, AppendOutcome outcome) {
                  ASSERT_FALSE(ec) << ec.message();
                  std::lock_guard lock(mutex);
                  outcomes.emplace_back(value, std::move(outcome));
                }));
      }
      io.run();
    });
  }
  for (auto& thread : threads) thread.join();

  ASSERT_EQ(outcomes.size(), std::size_t{kThreads * kBatchesPerThread});
  std::vector<std::string> winners;
  for (const auto& [value, outcome] : outcomes) {
    if (!outcome.existing) winners.push_back(value);
  }
  ASSERT_EQ(winners.size(), 1u);
  for (const auto& [value, outcome] : outcomes) {
    if (outcome.existing) {
      EXPECT_EQ(outcome.existing->value, winners[0]);
    }
  }
  auto r = read("s");
  ASSERT_EQ(r.entries.size(), 1u);
  EXPECT_EQ(r.entries[0].message_id, winners[0]);
  EXPECT_EQ(record("idem/shared")->value, winners[0]);
}

TEST_F(RocksDbAppendBatch, LetsOnlyTheFirstBatchOfAGroupCommitWinAnUnlessKey) {
  WalSyncGate& gate = use_gate();
  boost::asio::io_context io;
  std::map<int, std::pair<boost::system::error_code, AppendOutcome>> done;

  gate.hold();
  storage_->streams().async_append(
      batch_of({entry("other", "x")}),
      boost::asio::bind_executor(io, [](boost::system::error_code, AppendOutcome) {}));
  ASSERT_TRUE(gate.wait_until_blocked());
  for (int i = 1; i <= 10; ++i) {
    storage_->streams().async_append(
        once("idem/k", "v" + std::to_string(i)),
        boost::asio::bind_executor(io, [&, i](boost::system::error_code ec, AppendOutcome o) {
          done[i] = {ec, std::move(o)};
        }));
  }
  gate.release();
  io.run();

  ASSERT_EQ(done.size(), 10u);
  const auto stats = storage_->streams().writer_stats();
  EXPECT_EQ(stats.batches_written, 2u) << "all ten waited together";
  EXPECT_EQ(stats.appends_skipped, 9u);
  EXPECT_FALSE(done[1].second.existing) << "the queue is FIFO: the first one wins";
  for (int i = 2; i <= 10; ++i) {
    EXPECT_FALSE(done[i].first);
    ASSERT_TRUE(done[i].second.existing) << i;
    EXPECT_EQ(done[i].second.existing->value, "v1");
    EXPECT_TRUE(done[i].second.results.empty());
  }
  EXPECT_EQ(read("s").entries.size(), 1u);
}

TEST_F(RocksDbAppendBatch, SeesARecordDeletedEarlierInTheSameGroupCommitAsAbsent) {
  write(once("job/1", "scheduled"));
  WalSyncGate& gate = use_gate();
  boost::asio::io_context io;
  std::map<int, AppendOutcome> done;
  auto handler = [&](int id) {
    return boost::asio::bind_executor(
        io, [&, id](boost::system::error_code, AppendOutcome o) { done[id] = std::move(o); });
  };

  gate.hold();
  storage_->streams().async_append(batch_of({entry("other", "x")}), handler(0));
  ASSERT_TRUE(gate.wait_until_blocked());
  AppendBatch cancel;
  cancel.delete_records.push_back("job/1");
  storage_->streams().async_append(std::move(cancel), handler(1));
  storage_->streams().async_append(once("job/1", "again"), handler(2));
  gate.release();
  io.run();

  EXPECT_FALSE(done[2].existing);
  EXPECT_EQ(record("job/1")->value, "again");
}

TEST_F(RocksDbAppendBatch, RefusesBadRecordKeysAndOversizedValuesAndWritesNothing) {
  auto refused = [&](AppendBatch batch) {
    return write_and_wait(storage_->streams(), std::move(batch)).ec;
  };
  const std::string long_key(RocksDbRecordStore::kMaxRecordKeyBytes + 1, 'k');
  AppendBatch empty_key = batch_of({entry("s", "m")});
  empty_key.put_records.push_back({"", "v", 0});
  EXPECT_EQ(refused(empty_key), RocksDbError::kBadRecordKey);
  AppendBatch too_long = batch_of({entry("s", "m")});
  too_long.delete_records.push_back(long_key);
  EXPECT_EQ(refused(too_long), RocksDbError::kBadRecordKey);
  AppendBatch bad_unless = batch_of({entry("s", "m")});
  bad_unless.unless_record_exists = "";
  EXPECT_EQ(refused(bad_unless), RocksDbError::kBadRecordKey);
  AppendBatch too_big = batch_of({entry("s", "m")});
  too_big.put_records.push_back(
      {"k", std::string(RocksDbRecordStore::kMaxRecordValueBytes + 1, 'v'), 0});
  EXPECT_EQ(refused(too_big), RocksDbError::kRecordTooLarge);
  EXPECT_EQ(refused(too_big), boost::system::errc::invalid_argument);

  EXPECT_EQ(storage_->streams().head("s")->head_seq, 0u);
  EXPECT_EQ(stored_keys(storage_->database(), storage_->database().records()), 0u);
}

TEST_F(RocksDbAppendBatch, AcceptsARecordOfExactlyTheMaximumSizes) {
  const std::string key(RocksDbRecordStore::kMaxRecordKeyBytes, 'k');
  AppendBatch batch;
  batch.put_records.push_back({key, std::string(RocksDbRecordStore::kMaxRecordValueBytes, 'v'), 0});
  write(std::move(batch));
  EXPECT_EQ(record(key)->value.size(), RocksDbRecordStore::kMaxRecordValueBytes);
}

TEST_F(RocksDbAppendBatch, CountsRecordsAndTombstonesTowardTheWriterQueueBound) {
  RocksDbOptions small = options();
  small.writer_queue_entries = 2;
  storage_.reset();
  auto opened = RocksDbStorage::open(small);
  ASSERT_TRUE(opened);
  storage_ = std::move(*opened);
  AppendBatch batch = batch_of({entry("s", "m")});
  batch.put_records.push_back({"a", "1", 0});
  batch.tombstones.push_back({"s", 1, "m"});
  EXPECT_EQ(write_and_wait(storage_->streams(), std::move(batch)).ec, RocksDbError::kBatchTooLarge);
}

TEST_F(RocksDbAppendBatch, CompletesAnEmptyBatchWithAnEmptyOutcome) {
  auto completed = write_and_wait(storage_->streams(), AppendBatch{});
  ASSERT_TRUE(completed.completed);
  EXPECT_FALSE(completed.ec);
  EXPECT_TRUE(completed.outcome.results.empty());
  EXPECT_FALSE(completed.outcome.existing);
}

TEST_F(RocksDbAppendBatch, AnEmptyBatchCompletesAfterEveryBatchAcceptedBeforeIt) {
  // Unsynced writes queued without waiting, then an empty batch: once it completes, all of
  // them are readable (the writer applies batches in order).
  constexpr int kWrites = 200;
  for (int i = 0; i < kWrites; ++i) {
    AppendBatch write;
    write.sync = false;
    write.put_records.push_back({"barrier/" + std::to_string(i), "v", 0});
    storage_->streams().async_append(std::move(write), [](boost::system::error_code ec, auto) {
      EXPECT_FALSE(ec) << ec.message();
    });
  }
  std::promise<int> found_when_complete;
  storage_->streams().async_append(AppendBatch{}, [&](boost::system::error_code ec, auto) {
    EXPECT_FALSE(ec);
    int found = 0;
    for (int i = 0; i < kWrites; ++i) {
      if (record("barrier/" + std::to_string(i))) ++found;
    }
    found_when_complete.set_value(found);
  });
  auto found = found_when_complete.get_future();
  ASSERT_EQ(found.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(found.get(), kWrites);
}

// ---------------------------------------------------------------------------------------------
// acked cursors

TEST_F(RocksDbAppendBatch, MovesAnAckedCursorForwardOnlyWithinAnEpoch) {
  auto ack = [&](std::uint64_t epoch, std::uint64_t seq, std::int64_t at_ms) {
    AppendBatch batch;
    batch.sync = false;  // bookkeeping: allowed unsynced
    batch.acked_cursors.push_back({"dev", "i/dev", {epoch, seq, at_ms}});
    return write_and_wait(storage_->streams(), std::move(batch)).ec;
  };
  auto cursor = [&] { return storage_->devices().acked("dev", "i/dev").value(); };
  ASSERT_FALSE(ack(7, 5, 100));
  EXPECT_EQ(cursor()->seq, 5u);
  ASSERT_FALSE(ack(7, 3, 200));  // late: stays at 5
  EXPECT_EQ(cursor()->seq, 5u);
  EXPECT_EQ(cursor()->acked_at_ms, 100);
  ASSERT_FALSE(ack(7, 9, 300));
  EXPECT_EQ(cursor()->seq, 9u);
  ASSERT_FALSE(ack(8, 1, 400));  // a new epoch starts over
  EXPECT_EQ(cursor()->epoch, 8u);
  EXPECT_EQ(cursor()->seq, 1u);
}

TEST_F(RocksDbAppendBatch, RefusesAnAckWithABadDeviceOrStreamAndWritesNothing) {
  AppendBatch batch;
  batch.sync = false;
  batch.put_records.push_back({"kept/not", "v", 0});
  batch.acked_cursors.push_back({"", "i/dev", {1, 1, 1}});
  EXPECT_EQ(write_and_wait(storage_->streams(), std::move(batch)).ec, RocksDbError::kBadKey);
  EXPECT_FALSE(record("kept/not"));
  AppendBatch no_stream;
  no_stream.sync = false;
  no_stream.acked_cursors.push_back({"dev", "", {1, 1, 1}});
  EXPECT_EQ(write_and_wait(storage_->streams(), std::move(no_stream)).ec, RocksDbError::kBadKey);
  EXPECT_FALSE(storage_->devices().acked("dev", "i/dev").value());
}

// ---------------------------------------------------------------------------------------------
// sync = false

TEST_F(RocksDbAppendBatch, CompletesAnUnsyncedRecordBatchWithoutAnFsyncInSyncMode) {
  WalSyncGate& gate = use_gate();
  gate.fail_next_syncs(1'000'000);  // an fsync would now fail, and the batch with it
  AppendBatch seen;
  seen.put_records.push_back({"seen/dev", "12345", 0});
  seen.sync = false;
  auto completed = write_and_wait(storage_->streams(), std::move(seen));
  gate.fail_next_syncs(0);
  EXPECT_FALSE(completed.ec) << completed.ec.message();
  EXPECT_TRUE(storage_->database().healthy());
  EXPECT_EQ(record("seen/dev")->value, "12345");
}

TEST_F(RocksDbAppendBatch, FsyncsAGroupCommitWhenAnyOfItsBatchesWantsIt) {
  WalSyncGate& gate = use_gate();
  boost::asio::io_context io;
  std::map<int, boost::system::error_code> done;
  auto handler = [&](int id) {
    return boost::asio::bind_executor(
        io, [&, id](boost::system::error_code ec, AppendOutcome) { done[id] = ec; });
  };

  gate.hold();
  storage_->streams().async_append(batch_of({entry("other", "x")}), handler(0));
  ASSERT_TRUE(gate.wait_until_blocked());
  AppendBatch unsynced;
  unsynced.put_records.push_back({"seen/dev", "1", 0});
  unsynced.sync = false;
  storage_->streams().async_append(std::move(unsynced), handler(1));
  storage_->streams().async_append(batch_of({entry("s", "m")}), handler(2));
  gate.fail_next_syncs(1);  // the group of 1 and 2 fails if, and only if, it is fsynced
  gate.release();
  io.run();

  EXPECT_FALSE(done[0]);
  EXPECT_EQ(done[1], RocksDbError::kIoError);
  EXPECT_EQ(done[2], RocksDbError::kIoError);
}

TEST_F(RocksDbAppendBatch, RefusesSyncFalseForABatchWithEntriesOrTombstones) {
  AppendBatch with_entry = batch_of({entry("s", "m")});
  with_entry.sync = false;
  EXPECT_EQ(write_and_wait(storage_->streams(), std::move(with_entry)).ec,
            RocksDbError::kUnsyncedEntries);
  AppendBatch with_tombstone = tombstone_batch("s", 1, "m");
  with_tombstone.sync = false;
  EXPECT_EQ(write_and_wait(storage_->streams(), std::move(with_tombstone)).ec,
            boost::system::errc::invalid_argument);
  EXPECT_EQ(storage_->streams().head("s")->head_seq, 0u);
}

TEST_F(RocksDbAppendBatch, KeepsAnUnsyncedRecordAcrossACleanReopen) {
  AppendBatch seen;
  seen.put_records.push_back({"seen/dev", "1", 0});
  seen.sync = false;
  write(std::move(seen));
  reopen();
  EXPECT_EQ(record("seen/dev")->value, "1");
}

// ---------------------------------------------------------------------------------------------
// Failures

TEST_F(RocksDbAppendBatch, FailsOnlyTheBatchThatMeetsACorruptCollapsePointer) {
  auto& database = storage_->database();
  ASSERT_TRUE(database.db()
                  .Put(::rocksdb::WriteOptions(), database.collapse_keys(),
                       detail::pair_key("s", "broken"), "?")
                  .ok());
  boost::asio::io_context io;
  std::map<int, boost::system::error_code> done;
  storage_->streams().async_append(
      batch_of({collapsing("s", "m1", "broken")}),
      boost::asio::bind_executor(
          io, [&](boost::system::error_code ec, AppendOutcome) { done[1] = ec; }));
  EXPECT_FALSE(write_and_wait(storage_->streams(), batch_of({collapsing("s", "m2", "fine")})).ec);
  io.run();
  EXPECT_EQ(done[1], RocksDbError::kCorruptMeta);
  auto r = read("s");
  ASSERT_EQ(r.entries.size(), 1u);
  EXPECT_EQ(r.entries[0].message_id, "m2");
}

TEST_F(RocksDbAppendBatch, FailsABatchWhoseUnlessRecordIsCorrupt) {
  auto& database = storage_->database();
  ASSERT_TRUE(
      database.db().Put(::rocksdb::WriteOptions(), database.records(), "idem/bad", "?").ok());
  EXPECT_EQ(write_and_wait(storage_->streams(), once("idem/bad", "v")).ec,
            RocksDbError::kCorruptMeta);
  EXPECT_EQ(storage_->streams().head("s")->head_seq, 0u);
}

}  // namespace
}  // namespace herald::storage
