// AppendBatch on RedisStreamStore against a real Redis Cluster: tombstones, collapse keys,
// records written with entries, unless_record_exists, acked cursors, atomicity across streams,
// and refusals that write nothing.
#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/system/errc.hpp>

#include "storage/redis/redis_stream_store.h"
#include "storage/redis/redis_test_util.h"

namespace herald::storage {
namespace {

using ::testing::ElementsAre;
using testing::kinds_of;
using testing::RedisStorageTest;
using testing::seqs_of;
using testing::write_and_wait;

class RedisAppendBatch : public RedisStorageTest {
 protected:
  AppendBatch tombstone_batch(std::string stream, std::uint64_t seq, std::string message_id) {
    AppendBatch batch;
    batch.tombstones.push_back({std::move(stream), seq, std::move(message_id)});
    batch.now_ms = now();
    return batch;
  }

  AppendRequest collapsing(std::string stream, std::string message_id, std::string collapse_key,
                           std::optional<std::int64_t> expires_at_ms = std::nullopt) {
    return entry(std::move(stream), std::move(message_id), "data", expires_at_ms,
                 std::move(collapse_key));
  }

  // A batch that appends one entry to `stream` and puts `key` = `value`, unless `key` exists.
  AppendBatch once(std::string key, std::string value, std::string stream = "s") {
    AppendBatch batch = batch_of({entry(std::move(stream), value)});
    batch.put_records.push_back({key, std::move(value), 0});
    batch.unless_record_exists = std::move(key);
    return batch;
  }

  boost::system::error_code refused(AppendBatch batch) {
    auto done = write_and_wait(storage_->streams(), std::move(batch));
    EXPECT_TRUE(done.completed);
    return done.ec;
  }

  std::uint64_t head(std::string_view stream) {
    auto h = storage_->streams().head(stream);
    EXPECT_TRUE(h);
    return h ? h->head_seq : 0;
  }
};

// ---------------------------------------------------------------------------------------------
// Tombstones

TEST_F(RedisAppendBatch, ReplacesALiveEntryByATombstoneThatKeepsItsSeqAndIdentity) {
  write(batch_of({entry("s", "m1", "one"), entry("s", "m2", "two"), entry("s", "m3", "three")}));
  AppendRequest with_audience = entry("s", "m4", "four");
  with_audience.entry.audience = "topic";
  write(batch_of({with_audience}));
  EXPECT_THAT(write(tombstone_batch("s", 2, "m2")).tombstoned, ElementsAre(true));
  EXPECT_THAT(write(tombstone_batch("s", 4, "m4")).tombstoned, ElementsAre(true));

  auto r = read("s");
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(kinds_of(r.entries), ElementsAre(DataKind::kJson, DataKind::kTombstone,
                                               DataKind::kJson, DataKind::kTombstone));
  const Entry& tombstone = r.entries[1];
  EXPECT_EQ(tombstone.app, "app");
  EXPECT_EQ(tombstone.message_id, "m2");
  EXPECT_EQ(tombstone.sent_at_ms, now() - 1000);
  EXPECT_EQ(tombstone.expires_at_ms, far_future());
  EXPECT_TRUE(tombstone.data.empty());
  EXPECT_TRUE(r.entries[3].audience.empty()) << "a tombstone drops the audience";
  EXPECT_EQ(r.head_seq, 4U) << "a tombstone takes no new seq";
}

TEST_F(RedisAppendBatch, LeavesAnEntryWhoseMessageIdDiffersOrThatExpiredUntouched) {
  write(batch_of({entry("s", "m1"), entry("s", "m2", "d", now() + kHour)}));
  EXPECT_THAT(write(tombstone_batch("s", 1, "other")).tombstoned, ElementsAre(false));
  AppendBatch late = tombstone_batch("s", 2, "m2");
  late.now_ms = now() + 2 * kHour;
  EXPECT_THAT(write(std::move(late)).tombstoned, ElementsAre(false));
  EXPECT_THAT(kinds_of(read("s").entries), ElementsAre(DataKind::kJson, DataKind::kJson));
}

TEST_F(RedisAppendBatch, NeverCreatesAnEntryForASeqThatWasNotWritten) {
  write(batch_of({entry("s", "m1")}));
  EXPECT_THAT(write(tombstone_batch("s", 2, "m1")).tombstoned, ElementsAre(false));
  EXPECT_THAT(write(tombstone_batch("nobody", 1, "m1")).tombstoned, ElementsAre(false));
  EXPECT_EQ(raw().call(tag(), {"HLEN", tag() + "e:s"})->integer, 1);
  EXPECT_EQ(head("s"), 1U);
  EXPECT_EQ(storage_->streams().head("nobody")->epoch, 0U);
}

TEST_F(RedisAppendBatch, TombstonesAnEntryOnlyOnce) {
  write(batch_of({entry("s", "m1")}));
  EXPECT_THAT(write(tombstone_batch("s", 1, "m1")).tombstoned, ElementsAre(true));
  EXPECT_THAT(write(tombstone_batch("s", 1, "m1")).tombstoned, ElementsAre(false));
}

TEST_F(RedisAppendBatch, CountsTombstonesTowardMaxEntriesAndZeroBytesTowardMaxBytes) {
  write(batch_of({entry("s", "m1", std::string(100, 'x')), entry("s", "m2", std::string(100, 'x')),
                  entry("s", "m3", std::string(10, 'x'))}));
  write(tombstone_batch("s", 2, "m2"));
  EXPECT_THAT(seqs_of(read("s", {}, 2).entries), ElementsAre(1, 2));
  EXPECT_THAT(seqs_of(read("s", {}, 100, 110).entries), ElementsAre(1, 2, 3));
}

TEST_F(RedisAppendBatch, RefusesToAppendATombstoneOrAnUnknownKindAndWritesNothing) {
  for (const auto kind : {DataKind::kTombstone, static_cast<DataKind>(9)}) {
    AppendRequest bad = entry("s", "m2");
    bad.entry.kind = kind;
    auto ec = refused(batch_of({entry("s", "m1"), bad}));
    EXPECT_EQ(ec, make_error_code(RedisError::kBadEntryKind));
    EXPECT_EQ(ec, boost::system::errc::invalid_argument);
  }
  EXPECT_EQ(head("s"), 0U);
}

TEST_F(RedisAppendBatch, StoresARecallEntryLikeAnyOther) {
  AppendRequest recall = entry("s", "r1", "m0");
  recall.entry.kind = DataKind::kRecall;
  write(batch_of({recall}));
  auto r = read("s");
  ASSERT_EQ(r.entries.size(), 1U);
  EXPECT_EQ(r.entries[0].kind, DataKind::kRecall);
  EXPECT_EQ(r.entries[0].data, "m0");
}

// ---------------------------------------------------------------------------------------------
// Collapse keys

TEST_F(RedisAppendBatch, CollapseKeyTombstonesThePreviousLiveEntryWithTheSameKey) {
  write(batch_of({collapsing("s", "m1", "score")}));
  write(batch_of({entry("s", "other")}));
  auto outcome = write(batch_of({collapsing("s", "m3", "score")}));
  ASSERT_EQ(outcome.results.size(), 1U);
  EXPECT_EQ(outcome.results[0].seq, 3U);
  EXPECT_EQ(outcome.results[0].collapsed_seq, 1U);
  EXPECT_THAT(kinds_of(read("s").entries),
              ElementsAre(DataKind::kTombstone, DataKind::kJson, DataKind::kJson));
  // And the next one collapses the third, not the first again.
  EXPECT_EQ(write(batch_of({collapsing("s", "m4", "score")})).results[0].collapsed_seq, 3U);
}

TEST_F(RedisAppendBatch, KeepsCollapseKeysOfDifferentStreamsApart) {
  write(batch_of({collapsing("a", "m1", "k")}));
  EXPECT_EQ(write(batch_of({collapsing("ab", "m2", "k")})).results[0].collapsed_seq, 0U);
  EXPECT_THAT(kinds_of(read("a").entries), ElementsAre(DataKind::kJson));
}

TEST_F(RedisAppendBatch, CollapseLeavesAnExpiredOrRevokedPreviousEntryAlone) {
  write(batch_of({collapsing("s", "m1", "k", now() + kHour), collapsing("t", "m1", "k")}));
  AppendBatch later = batch_of({collapsing("s", "m2", "k")});
  later.now_ms = now() + 2 * kHour;
  EXPECT_EQ(write(std::move(later)).results[0].collapsed_seq, 0U);
  EXPECT_THAT(kinds_of(read("s").entries), ElementsAre(DataKind::kJson, DataKind::kJson));

  write(tombstone_batch("t", 1, "m1"));
  EXPECT_EQ(write(batch_of({collapsing("t", "m2", "k")})).results[0].collapsed_seq, 0U);
}

TEST_F(RedisAppendBatch, CollapsesTheEntriesOfOneBatchInOrder) {
  auto outcome = write(batch_of(
      {collapsing("s", "m1", "k"), collapsing("s", "m2", "k"), collapsing("s", "m3", "k")}));
  ASSERT_EQ(outcome.results.size(), 3U);
  EXPECT_EQ(outcome.results[0].collapsed_seq, 0U);
  EXPECT_EQ(outcome.results[1].collapsed_seq, 1U);
  EXPECT_EQ(outcome.results[2].collapsed_seq, 2U);
  EXPECT_THAT(kinds_of(read("s").entries),
              ElementsAre(DataKind::kTombstone, DataKind::kTombstone, DataKind::kJson));
}

TEST_F(RedisAppendBatch, CollapsesAcrossBatchesOfOnePipeline) {
  boost::asio::io_context io;
  std::vector<AppendResult> results;
  for (int i = 0; i < 5; ++i) {
    storage_->streams().async_append(
        batch_of({collapsing("s", "m" + std::to_string(i), "k")}),
        boost::asio::bind_executor(io, [&](boost::system::error_code ec, AppendOutcome outcome) {
          EXPECT_FALSE(ec);
          results.insert(results.end(), outcome.results.begin(), outcome.results.end());
        }));
  }
  io.run();
  ASSERT_EQ(results.size(), 5U);
  for (std::size_t i = 1; i < results.size(); ++i) {
    EXPECT_EQ(results[i].collapsed_seq, results[i - 1].seq);
  }
  EXPECT_EQ(kinds_of(read("s").entries).back(), DataKind::kJson);
}

TEST_F(RedisAppendBatch, RefusesACollapseKeyLongerThanTheMaximum) {
  EXPECT_EQ(refused(batch_of({collapsing("s", "m", std::string(1025, 'k'))})),
            make_error_code(RedisError::kBadCollapseKey));
  EXPECT_EQ(head("s"), 0U);
  write(batch_of({collapsing("s", "m", std::string(1024, 'k'))}));
}

TEST_F(RedisAppendBatch, DropsACollapsePointerWithTheExpiredEntryItTrims) {
  write(batch_of({collapsing("s", "m1", "k", now() - kHour), entry("s", "m2")}));
  auto client = raw();
  EXPECT_EQ(client.call(tag(), {"HLEN", tag() + "e:s"})->integer, 1);
  EXPECT_TRUE(client.call(tag(), {"HGET", tag() + "c:s", "k"})->is_nil());
}

// ---------------------------------------------------------------------------------------------
// Records with entries, preconditions

TEST_F(RedisAppendBatch, PutsAndDeletesRecordsInTheSameAtomicWriteAsEntries) {
  AppendBatch first = batch_of({entry("s", "m1")});
  first.put_records = {{"msg/1", "queued", 0}, {"tmp", "x", 0}};
  write(std::move(first));
  AppendBatch second = batch_of({entry("s", "m2")});
  second.put_records = {{"msg/1", "sent", 0}};
  second.delete_records = {"tmp", "never-existed"};
  write(std::move(second));
  EXPECT_EQ(record("msg/1")->value, "sent");
  EXPECT_FALSE(record("tmp"));
  EXPECT_EQ(head("s"), 2U);
}

TEST_F(RedisAppendBatch, KeepsTheLastPutOfAKeyAndPutsAfterDeletesInOneBatch) {
  AppendBatch batch;
  batch.now_ms = now();
  batch.put_records = {{"k", "first", 0}, {"k", "second", 0}, {"d", "put", 0}};
  batch.delete_records = {"d"};
  write(std::move(batch));
  EXPECT_EQ(record("k")->value, "second");
  EXPECT_EQ(record("d")->value, "put");
}

TEST_F(RedisAppendBatch, WritesNothingWhenTheUnlessRecordExistsAndReturnsIt) {
  auto first = write(once("idem/1", "v1"));
  EXPECT_FALSE(first.existing);
  ASSERT_EQ(first.results.size(), 1U);
  AppendBatch again = once("idem/1", "v2");
  again.tombstones.push_back({"s", 1, "v1"});
  again.acked_cursors.push_back({"dev", "s", {1, 1, 1}});
  auto second = write(std::move(again));
  ASSERT_TRUE(second.existing);
  EXPECT_EQ(second.existing->key, "idem/1");
  EXPECT_EQ(second.existing->value, "v1");
  EXPECT_TRUE(second.results.empty());
  EXPECT_TRUE(second.tombstoned.empty());
  EXPECT_EQ(head("s"), 1U);
  EXPECT_THAT(kinds_of(read("s").entries), ElementsAre(DataKind::kJson));
  EXPECT_EQ(record("idem/1")->value, "v1");
  EXPECT_FALSE(*storage_->devices().acked("dev", "s"));
}

TEST_F(RedisAppendBatch, WritesTheBatchWhenTheUnlessRecordHasExpiredOrWasDeleted) {
  AppendBatch put;
  put.now_ms = now();
  put.put_records = {{"idem/e", "old", now() + kHour}, {"idem/d", "old", 0}};
  write(std::move(put));
  AppendBatch late = once("idem/e", "new");
  late.now_ms = now() + 2 * kHour;
  EXPECT_FALSE(write(std::move(late)).existing);
  AppendBatch del;
  del.now_ms = now();
  del.delete_records = {"idem/d"};
  write(std::move(del));
  EXPECT_FALSE(write(once("idem/d", "new")).existing);
  EXPECT_EQ(head("s"), 2U);
}

TEST_F(RedisAppendBatch, ReportsTheExistingRecordForABatchWithOnlyAPrecondition) {
  AppendBatch probe;
  probe.now_ms = now();
  probe.unless_record_exists = "idem/p";
  EXPECT_FALSE(write(probe).existing);
  write(once("idem/p", "v"));
  auto hit = write(probe);
  ASSERT_TRUE(hit.existing);
  EXPECT_EQ(hit.existing->value, "v");
}

TEST_F(RedisAppendBatch, LetsExactlyOneOfManyConcurrentBatchesWithTheSameUnlessKeyWin) {
  auto other = open();  // and from two nodes
  ASSERT_TRUE(other);
  std::atomic<int> winners{0};
  std::atomic<int> losers{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto& store = (t % 2 == 0 ? storage_ : other)->streams();
      auto done = write_and_wait(store, once("idem/race", "v" + std::to_string(t)));
      if (done.ec) return;
      (done.outcome.existing ? losers : winners).fetch_add(1);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(losers.load(), 5);
  EXPECT_EQ(head("s"), 1U);
}

TEST_F(RedisAppendBatch, RefusesBadRecordKeysAndOversizedValuesAndWritesNothing) {
  auto with = [&](auto mutate) {
    AppendBatch batch = batch_of({entry("s", "m")});
    batch.put_records = {{"good", "v", 0}};
    mutate(batch);
    return refused(std::move(batch));
  };
  EXPECT_EQ(with([](AppendBatch& b) {
              b.put_records.push_back({"", "v", 0});
            }),
            make_error_code(RedisError::kBadRecordKey));
  EXPECT_EQ(with([](AppendBatch& b) {
              b.put_records.push_back({std::string(1025, 'k'), "", 0});
            }),
            make_error_code(RedisError::kBadRecordKey));
  EXPECT_EQ(with([](AppendBatch& b) { b.delete_records.push_back(""); }),
            make_error_code(RedisError::kBadRecordKey));
  EXPECT_EQ(with([](AppendBatch& b) { b.unless_record_exists = ""; }),
            make_error_code(RedisError::kBadRecordKey));
  EXPECT_EQ(with([](AppendBatch& b) {
              b.put_records.push_back({"big", std::string(1024 * 1024 + 1, 'v'), 0});
            }),
            make_error_code(RedisError::kRecordTooLarge));
  EXPECT_EQ(head("s"), 0U);
  EXPECT_FALSE(record("good"));
  // Exactly the maximum sizes pass.
  AppendBatch max;
  max.now_ms = now();
  max.put_records = {{std::string(1024, 'k'), std::string(1024 * 1024, 'v'), 0}};
  write(std::move(max));
  EXPECT_EQ(record(std::string(1024, 'k'))->value.size(), 1024U * 1024U);
}

TEST_F(RedisAppendBatch, RefusesSyncFalseForABatchWithEntriesOrTombstonesButTakesRecords) {
  AppendBatch entries = batch_of({entry("s", "m")});
  entries.sync = false;
  EXPECT_EQ(refused(std::move(entries)), make_error_code(RedisError::kUnsyncedEntries));
  AppendBatch tombstones = tombstone_batch("s", 1, "m");
  tombstones.sync = false;
  EXPECT_EQ(refused(std::move(tombstones)), make_error_code(RedisError::kUnsyncedEntries));
  AppendBatch records;
  records.now_ms = now();
  records.sync = false;
  records.put_records = {{"seen/dev", "1", 0}};
  write(std::move(records));
  EXPECT_TRUE(record("seen/dev"));
}

// ---------------------------------------------------------------------------------------------
// Acked cursors

TEST_F(RedisAppendBatch, MovesAnAckedCursorForwardOnlyWithinAnEpoch) {
  auto ack = [&](std::uint64_t epoch, std::uint64_t seq) {
    AppendBatch batch;
    batch.now_ms = now();
    batch.acked_cursors.push_back({"dev", "s", {epoch, seq, static_cast<std::int64_t>(seq)}});
    write(std::move(batch));
    return storage_->devices().acked("dev", "s")->value();
  };
  EXPECT_EQ(ack(7, 5).seq, 5U);
  EXPECT_EQ(ack(7, 3).seq, 5U) << "never back";
  EXPECT_EQ(ack(7, 5).acked_at_ms, 5);
  EXPECT_EQ(ack(7, 10).seq, 10U);
  // Beyond 2^53, compared exactly.
  EXPECT_EQ(ack(7, 18'446'744'073'709'551'614ULL).seq, 18'446'744'073'709'551'614ULL);
  EXPECT_EQ(ack(7, 18'446'744'073'709'551'613ULL).seq, 18'446'744'073'709'551'614ULL);
  auto other_epoch = ack(8, 2);
  EXPECT_EQ(other_epoch.epoch, 8U);
  EXPECT_EQ(other_epoch.seq, 2U);
}

TEST_F(RedisAppendBatch, RefusesAnAckWithABadDeviceOrStreamAndWritesNothing) {
  for (auto [device, stream] :
       {std::pair<std::string, std::string>{"", "s"}, {std::string(1025, 'd'), "s"}, {"dev", ""}}) {
    AppendBatch batch = batch_of({entry("s", "m")});
    batch.acked_cursors.push_back({device, stream, {1, 1, 1}});
    EXPECT_EQ(refused(std::move(batch)), make_error_code(RedisError::kBadKey));
  }
  EXPECT_EQ(head("s"), 0U);
}

// ---------------------------------------------------------------------------------------------
// Atomicity

TEST_F(RedisAppendBatch, WritesEveryStreamRecordAndCursorOfABatchTogether) {
  AppendBatch batch = batch_of({entry("a", "1"), entry("b", "1"), entry("c", "1")});
  batch.put_records = {{"msg/1", "stored", 0}};
  batch.acked_cursors = {{"dev", "a", {1, 1, 1}}};
  auto outcome = write(std::move(batch));
  ASSERT_EQ(outcome.results.size(), 3U);
  for (const char* stream : {"a", "b", "c"}) EXPECT_EQ(head(stream), 1U) << stream;
  EXPECT_TRUE(record("msg/1"));
  EXPECT_TRUE(*storage_->devices().acked("dev", "a"));
}

TEST_F(RedisAppendBatch, FailsOnlyTheBatchThatMeetsACorruptEntryAndWritesNothingOfIt) {
  write(batch_of({collapsing("s", "m1", "k"), entry("t", "m1")}));
  auto client = raw();
  ASSERT_FALSE(client.call(tag(), {"HSET", tag() + "e:s", "1", "garbage"})->is_error());

  boost::asio::io_context io;
  std::vector<boost::system::error_code> results(3);
  auto submit = [&](std::size_t i, AppendBatch batch) {
    storage_->streams().async_append(
        std::move(batch),
        boost::asio::bind_executor(
            io, [&results, i](boost::system::error_code ec, AppendOutcome) { results[i] = ec; }));
  };
  submit(0, batch_of({entry("t", "before")}));
  AppendBatch bad = tombstone_batch("t", 1, "m1");  // a tombstone it would write first...
  bad.entries = {entry("u", "x"), collapsing("s", "m2", "k")};  // ...then meets the corrupt one
  bad.put_records = {{"r", "v", 0}};
  submit(1, std::move(bad));
  submit(2, batch_of({entry("t", "after")}));
  io.run();
  EXPECT_FALSE(results[0]);
  EXPECT_EQ(results[1], make_error_code(RedisError::kCorruptRecord));
  EXPECT_FALSE(results[2]);
  EXPECT_EQ(head("t"), 3U);
  EXPECT_EQ(head("u"), 0U);
  EXPECT_EQ(head("s"), 1U);
  EXPECT_FALSE(record("r"));
  auto t = read("t");
  EXPECT_EQ(t.entries.at(0).kind, DataKind::kJson) << "the failed batch's tombstone is not there";
  const auto stats = storage_->streams().writer_stats();
  EXPECT_EQ(stats.appends_failed, 1U);
  EXPECT_EQ(stats.appends_written, 3U);
}

TEST_F(RedisAppendBatch, CountsWhatTheWriterWroteForTheMetrics) {
  write(batch_of({entry("s", "m1"), entry("s", "m2")}));
  write(batch_of({collapsing("s", "m3", "k"), collapsing("s", "m4", "k")}));  // m4 collapses m3
  write(tombstone_batch("s", 1, "m1"));
  write(tombstone_batch("s", 1, "m1"));  // already a tombstone: nothing replaced
  write(once("idem/a", "v"));
  write(once("idem/a", "v"));  // the record exists: nothing written
  EXPECT_EQ(refused(batch_of({entry("", "bad key")})), make_error_code(RedisError::kBadStreamKey));
  const auto stats = storage_->streams().writer_stats();
  EXPECT_EQ(stats.pipelines_written, 6U) << "one write waited for the other: a pipeline each";
  EXPECT_EQ(stats.appends_written, 6U);
  EXPECT_EQ(stats.appends_skipped, 1U);
  EXPECT_EQ(stats.entries_written, 5U);
  EXPECT_EQ(stats.tombstones_written, 2U);
  EXPECT_EQ(stats.appends_refused, 0U) << "refused before the queue: not the writer's refusal";
  EXPECT_EQ(stats.appends_failed, 0U);
}

TEST_F(RedisAppendBatch, FailsABatchWhoseUnlessRecordIsCorrupt) {
  ASSERT_FALSE(raw().call(tag(), {"SET", tag() + "r:idem/c", "x"})->is_error());
  EXPECT_EQ(refused(once("idem/c", "v")), make_error_code(RedisError::kCorruptMeta));
  EXPECT_EQ(head("s"), 0U);
}

TEST_F(RedisAppendBatch, RunsAgainAfterTheMasterForgotItsScripts) {
  write(batch_of({entry("s", "1")}));
  auto client = raw();
  const auto owner = client.owner(tag());
  ASSERT_TRUE(owner);
  ASSERT_FALSE(client.call_at(*owner, {"SCRIPT", "FLUSH"})->is_error());
  write(batch_of({entry("s", "2")}));  // NOSCRIPT, then EVAL
  EXPECT_THAT(seqs_of(read("s").entries), ElementsAre(1, 2));
  EXPECT_TRUE(storage_->devices().register_device("app", "dev", now()).value());
}

}  // namespace
}  // namespace herald::storage
