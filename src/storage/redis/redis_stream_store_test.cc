// RedisStreamStore against a real Redis Cluster: numbering, reads, expiry, epochs, refusals,
// the writer's queue, and sharing between two RedisStorage instances (two heraldd nodes).
#include "storage/redis/redis_stream_store.h"

#include <set>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/system/errc.hpp>

#include "storage/redis/redis_test_util.h"

namespace herald::storage {
namespace {

using ::testing::ElementsAre;
using testing::kinds_of;
using testing::options_for;
using testing::RedisStorageTest;
using testing::seqs_of;
using testing::write_and_wait;

using RedisStreamStoreTest = RedisStorageTest;

TEST_F(RedisStreamStoreTest, AssignsGaplessIncreasingSequenceNumbersFromOneAcrossBatches) {
  auto first = write(batch_of({entry("s", "m1"), entry("s", "m2")}));
  auto second = write(batch_of({entry("s", "m3")}));
  ASSERT_EQ(first.results.size(), 2U);
  ASSERT_EQ(second.results.size(), 1U);
  EXPECT_EQ(first.results[0].seq, 1U);
  EXPECT_EQ(first.results[1].seq, 2U);
  EXPECT_EQ(second.results[0].seq, 3U);
  EXPECT_NE(first.results[0].epoch, 0U);
  EXPECT_EQ(first.results[0].epoch, second.results[0].epoch);
  auto head = storage_->streams().head("s");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->epoch, first.results[0].epoch);
  EXPECT_EQ(head->head_seq, 3U);
  EXPECT_THAT(seqs_of(read("s").entries), ElementsAre(1, 2, 3));
}

TEST_F(RedisStreamStoreTest, NumbersSeveralStreamsOfOneBatchEachFromItsOwnHead) {
  write(batch_of({entry("a", "x")}));
  auto outcome = write(batch_of({entry("a", "a2"), entry("b", "b1"), entry("a", "a3")}));
  ASSERT_EQ(outcome.results.size(), 3U);
  EXPECT_EQ(outcome.results[0].seq, 2U);
  EXPECT_EQ(outcome.results[1].seq, 1U);
  EXPECT_EQ(outcome.results[2].seq, 3U);
  EXPECT_NE(outcome.results[0].epoch, outcome.results[1].epoch) << "each stream its own epoch";
}

TEST_F(RedisStreamStoreTest, KeepsSequenceNumbersGaplessUnderConcurrentAppenders) {
  constexpr int kThreads = 4;
  constexpr int kAppends = 50;
  std::vector<std::thread> threads;
  std::vector<std::vector<std::uint64_t>> seqs(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAppends; ++i) {
        auto done = write_and_wait(storage_->streams(), batch_of({entry("s", "m")}));
        if (!done.ec && done.outcome.results.size() == 1) {
          seqs[static_cast<std::size_t>(t)].push_back(done.outcome.results[0].seq);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<std::uint64_t> all;
  for (const auto& per_thread : seqs) {
    // Each appender's own appends are numbered in the order it made them.
    EXPECT_TRUE(std::is_sorted(per_thread.begin(), per_thread.end()));
    all.insert(per_thread.begin(), per_thread.end());
  }
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kThreads * kAppends));
  EXPECT_EQ(*all.begin(), 1U);
  EXPECT_EQ(*all.rbegin(), static_cast<std::uint64_t>(kThreads * kAppends));
}

TEST_F(RedisStreamStoreTest, RoundTripsEveryFieldOfAnEntry) {
  AppendRequest request = entry("s", "msg-1", std::string("\0bin\xff", 5));
  request.entry.app = "com.example";
  request.entry.kind = DataKind::kBinary;
  request.entry.sent_at_ms = 1234;
  request.entry.audience = "topic/news";
  write(batch_of({request}));
  auto r = read("s");
  ASSERT_EQ(r.entries.size(), 1U);
  const Entry& e = r.entries[0];
  EXPECT_EQ(e.seq, 1U);
  EXPECT_EQ(e.app, "com.example");
  EXPECT_EQ(e.message_id, "msg-1");
  EXPECT_EQ(e.kind, DataKind::kBinary);
  EXPECT_EQ(e.data, std::string("\0bin\xff", 5));
  EXPECT_EQ(e.sent_at_ms, 1234);
  EXPECT_EQ(e.expires_at_ms, request.entry.expires_at_ms);
  EXPECT_EQ(e.audience, "topic/news");
}

TEST_F(RedisStreamStoreTest, ReportsAStreamNeverWrittenAsEpochZeroHeadZero) {
  auto head = storage_->streams().head("nobody");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->epoch, 0U);
  EXPECT_EQ(head->head_seq, 0U);
  auto r = read("nobody");
  EXPECT_EQ(r.epoch, 0U);
  EXPECT_EQ(r.head_seq, 0U);
  EXPECT_TRUE(r.entries.empty());
  EXPECT_EQ(r.truncated_before, 0U);
}

TEST_F(RedisStreamStoreTest, KeepsStreamsWhoseKeysArePrefixesOfEachOtherApart) {
  write(batch_of({entry("a", "1"), entry("ab", "2"), entry("ab", "3")}));
  EXPECT_EQ(read("a").entries.size(), 1U);
  EXPECT_EQ(read("ab").entries.size(), 2U);
}

TEST_F(RedisStreamStoreTest, RefusesBadStreamKeysAndAppendsNothingOfTheBatch) {
  for (const std::string& bad : {std::string(), std::string(1025, 's')}) {
    auto done =
        write_and_wait(storage_->streams(), batch_of({entry("good", "m"), entry(bad, "m")}));
    EXPECT_TRUE(done.completed);
    EXPECT_EQ(done.ec, boost::system::errc::invalid_argument);
    EXPECT_EQ(done.ec, make_error_code(RedisError::kBadStreamKey));
  }
  EXPECT_EQ(storage_->streams().head("good")->epoch, 0U);
  EXPECT_EQ(storage_->streams().read({.stream = ""}).error(),
            make_error_code(RedisError::kBadStreamKey));
  EXPECT_FALSE(storage_->streams().head(std::string(1025, 's')));
  // The longest key is fine.
  write(batch_of({entry(std::string(1024, 's'), "m")}));
}

TEST_F(RedisStreamStoreTest, RefusesABatchLargerThanTheWholeWriterQueue) {
  auto options = options_for(keyspace_);
  options.writer_queue_entries = 2;
  auto small = open(options);
  auto done = write_and_wait(small->streams(),
                             batch_of({entry("s", "1"), entry("s", "2"), entry("s", "3")}));
  EXPECT_EQ(done.ec, make_error_code(RedisError::kBatchTooLarge));
  EXPECT_EQ(done.ec, boost::system::errc::invalid_argument);
  EXPECT_EQ(small->streams().head("s")->head_seq, 0U);
}

TEST_F(RedisStreamStoreTest, RefusesAtOnceWithTryAgainWhenTheQueueIsFullAndAppendsNothing) {
  auto options = options_for(keyspace_);
  options.writer_queue_entries = 2;
  auto small = open(options);
  auto client = raw();
  const auto owner = client.owner(tag());
  ASSERT_TRUE(owner);
  // Holds every write on the master (reads pass): while it lasts, the writer cannot finish a
  // pipeline, so at most one batch is in flight and one queued (each batch is the whole queue).
  ASSERT_FALSE(client.call_at(*owner, {"CLIENT", "PAUSE", "20000", "WRITE"})->is_error());
  constexpr std::size_t kBatches = 5;
  boost::asio::io_context io;
  std::vector<boost::system::error_code> results(kBatches);
  std::vector<bool> completed(kBatches, false);
  for (std::size_t i = 0; i < kBatches; ++i) {
    small->streams().async_append(
        batch_of({entry("s", "a"), entry("s", "b")}),
        boost::asio::bind_executor(io, [&, i](boost::system::error_code ec, AppendOutcome) {
          results[i] = ec;
          completed[i] = true;
        }));
  }
  ASSERT_FALSE(client.call_at(*owner, {"CLIENT", "UNPAUSE"})->is_error());
  io.run();
  std::size_t accepted = 0;
  for (std::size_t i = 0; i < kBatches; ++i) {
    EXPECT_TRUE(completed[i]);
    if (!results[i]) {
      ++accepted;
    } else {
      EXPECT_EQ(results[i], boost::system::errc::resource_unavailable_try_again);
    }
  }
  EXPECT_GE(accepted, 1U);
  EXPECT_LE(accepted, 2U);
  EXPECT_EQ(small->streams().head("s")->head_seq, 2 * accepted) << "refused batches add nothing";
  EXPECT_EQ(small->streams().writer_stats().appends_refused, kBatches - accepted);
}

TEST_F(RedisStreamStoreTest, CompletesAnEmptyBatchAfterEveryBatchAcceptedBeforeIt) {
  boost::asio::io_context io;
  std::vector<std::string> order;
  std::uint64_t head_seen_by_barrier = 0;
  storage_->streams().async_append(
      batch_of({entry("s", "1"), entry("s", "2")}),
      boost::asio::bind_executor(io, [&](boost::system::error_code ec, AppendOutcome) {
        EXPECT_FALSE(ec);
        order.push_back("append");
      }));
  storage_->streams().async_append(
      AppendBatch{},
      boost::asio::bind_executor(io, [&](boost::system::error_code ec, AppendOutcome outcome) {
        EXPECT_FALSE(ec);
        EXPECT_TRUE(outcome.results.empty());
        EXPECT_FALSE(outcome.existing);
        order.push_back("barrier");
        head_seen_by_barrier = storage_->streams().head("s")->head_seq;
      }));
  io.run();
  EXPECT_THAT(order, ElementsAre("append", "barrier"));
  EXPECT_EQ(head_seen_by_barrier, 2U);
}

TEST_F(RedisStreamStoreTest, CompletesEveryQueuedAppendBeforeItIsDestroyed) {
  boost::asio::io_context io;
  int succeeded = 0;
  for (int i = 0; i < 20; ++i) {
    storage_->streams().async_append(
        batch_of({entry("s", std::to_string(i))}),
        boost::asio::bind_executor(io, [&](boost::system::error_code ec, AppendOutcome) {
          if (!ec) ++succeeded;
        }));
  }
  storage_.reset();  // drains the writer
  io.run();
  EXPECT_EQ(succeeded, 20);
  storage_ = open();
  EXPECT_EQ(storage_->streams().head("s")->head_seq, 20U);
}

TEST_F(RedisStreamStoreTest, CompletesTheEntriesOnlyFormWithItsResults) {
  boost::asio::io_context io;
  std::vector<AppendResult> results;
  storage_->streams().async_append(std::vector<AppendRequest>{entry("s", "1"), entry("s", "2")},
                                   boost::asio::bind_executor(io, [&](boost::system::error_code ec,
                                                                      std::vector<AppendResult> r) {
                                     EXPECT_FALSE(ec);
                                     results = std::move(r);
                                   }));
  io.run();
  ASSERT_EQ(results.size(), 2U);
  EXPECT_EQ(results[1].seq, 2U);
}

// ---------------------------------------------------------------------------------------------
// Reads

TEST_F(RedisStreamStoreTest, ReturnsTheEntriesAfterTheCursor) {
  write(batch_of({entry("s", "1"), entry("s", "2"), entry("s", "3")}));
  auto r = read("s", {}, 100, 1 << 20, /*after=*/1);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(2, 3));
  EXPECT_EQ(r.head_seq, 3U);
  EXPECT_FALSE(r.more);
  EXPECT_FALSE(r.epoch_changed);
  EXPECT_EQ(r.truncated_before, 0U);
}

TEST_F(RedisStreamStoreTest, ReportsEpochChangedAndReadsFromTheStartForAStaleEpoch) {
  auto outcome = write(batch_of({entry("s", "1"), entry("s", "2")}));
  const auto epoch = outcome.results[0].epoch;
  auto same = read("s", {}, 100, 1 << 20, /*after=*/1, epoch);
  EXPECT_FALSE(same.epoch_changed);
  EXPECT_THAT(seqs_of(same.entries), ElementsAre(2));
  auto stale = read("s", {}, 100, 1 << 20, /*after=*/1, epoch + 1);
  EXPECT_TRUE(stale.epoch_changed);
  EXPECT_EQ(stale.epoch, epoch);
  EXPECT_THAT(seqs_of(stale.entries), ElementsAre(1, 2));
}

TEST_F(RedisStreamStoreTest, NeverReturnsAnEntryAtOrPastItsExpiry) {
  write(batch_of({entry("s", "1", "d", now() + kHour)}));
  EXPECT_EQ(read("s", now() + kHour - 1).entries.size(), 1U);
  auto at = read("s", now() + kHour);
  EXPECT_TRUE(at.entries.empty());
  EXPECT_EQ(at.truncated_before, 2U) << "everything after the cursor is gone: head + 1";
}

TEST_F(RedisStreamStoreTest, SetsTruncatedBeforeToTheFirstLiveSeqWhenEarlierOnesExpired) {
  write(batch_of(
      {entry("s", "1", "d", now() + kHour), entry("s", "2", "d", now() + kHour), entry("s", "3")}));
  auto r = read("s", now() + 2 * kHour);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(3));
  EXPECT_EQ(r.truncated_before, 3U);
  // A cursor past the expired ones sees no truncation.
  EXPECT_EQ(read("s", now() + 2 * kHour, 100, 1 << 20, /*after=*/2).truncated_before, 0U);
}

TEST_F(RedisStreamStoreTest, StopsBeforeAHoleSoThatTheNextReadReportsIt) {
  write(batch_of({entry("s", "1"), entry("s", "2", "d", now() + kHour), entry("s", "3")}));
  auto first = read("s", now() + 2 * kHour);
  EXPECT_THAT(seqs_of(first.entries), ElementsAre(1));
  EXPECT_TRUE(first.more);
  auto next = read("s", now() + 2 * kHour, 100, 1 << 20, /*after=*/1);
  EXPECT_THAT(seqs_of(next.entries), ElementsAre(3));
  EXPECT_EQ(next.truncated_before, 3U);
}

TEST_F(RedisStreamStoreTest, ReturnsNothingAndNoTruncationForACursorAtOrPastTheHead) {
  write(batch_of({entry("s", "1")}));
  for (std::uint64_t after : {1U, 7U}) {
    auto r = read("s", {}, 100, 1 << 20, after);
    EXPECT_TRUE(r.entries.empty());
    EXPECT_EQ(r.truncated_before, 0U);
    EXPECT_FALSE(r.more);
  }
}

TEST_F(RedisStreamStoreTest, HonoursMaxEntriesAndSetsMoreOnlyWhenSomethingIsLeft) {
  write(batch_of({entry("s", "1"), entry("s", "2"), entry("s", "3")}));
  auto two = read("s", {}, 2);
  EXPECT_THAT(seqs_of(two.entries), ElementsAre(1, 2));
  EXPECT_TRUE(two.more);
  auto three = read("s", {}, 3);
  EXPECT_EQ(three.entries.size(), 3U);
  EXPECT_FALSE(three.more);
  EXPECT_EQ(read("s", {}, 0).entries.size(), 1U) << "max_entries 0 counts as 1";
}

TEST_F(RedisStreamStoreTest, HonoursMaxBytesButAlwaysReturnsOneEntry) {
  write(batch_of({entry("s", "1", std::string(10, 'x')), entry("s", "2", std::string(10, 'x')),
                  entry("s", "3", std::string(10, 'x'))}));
  auto r = read("s", {}, 100, 25);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(1, 2));
  EXPECT_TRUE(r.more);
  auto one = read("s", {}, 100, 5);
  EXPECT_THAT(seqs_of(one.entries), ElementsAre(1));
  EXPECT_TRUE(one.more);
}

TEST_F(RedisStreamStoreTest, AnswersALongExpiredRunAsTruncatedInBoundedSteps) {
  std::vector<AppendRequest> many;
  for (int i = 0; i < 1500; ++i) many.push_back(entry("s", "old", "d", now() + kHour));
  write(batch_of(std::move(many)));
  write(batch_of({entry("s", "live")}));
  const auto later = now() + 2 * kHour;
  auto first = read("s", later);
  EXPECT_TRUE(first.entries.empty());
  EXPECT_TRUE(first.more);
  EXPECT_EQ(first.truncated_before, 1025U) << "1024 seqs looked at";
  auto second = read("s", later, 100, 1 << 20, first.truncated_before - 1);
  EXPECT_THAT(seqs_of(second.entries), ElementsAre(1501));
  EXPECT_EQ(second.truncated_before, 1501U);
}

TEST_F(RedisStreamStoreTest, ReportsACorruptStoredEntryAsAnError) {
  write(batch_of({entry("s", "1")}));
  auto client = raw();
  ASSERT_FALSE(client.call(tag(), {"HSET", tag() + "e:s", "1", "garbage"})->is_error());
  auto r = storage_->streams().read({.stream = "s", .now_ms = now()});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), make_error_code(RedisError::kCorruptRecord));
}

// ---------------------------------------------------------------------------------------------
// Expiry on the Redis side

TEST_F(RedisStreamStoreTest, TrimsExpiredEntriesFromTheLowEndWhenAppending) {
  // Expired by the caller's clock and by Redis's: the append trims them.
  write(batch_of(
      {entry("s", "1", "d", now() - kHour), entry("s", "2", "d", now() - kHour), entry("s", "3")}));
  auto client = raw();
  EXPECT_EQ(client.call(tag(), {"HLEN", tag() + "e:s"})->integer, 1);
  auto r = read("s");
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(3));
  EXPECT_EQ(r.truncated_before, 3U);
}

TEST_F(RedisStreamStoreTest, KeepsEntriesThatOnlyTheCallersClockCallsExpired) {
  AppendBatch batch = batch_of({entry("s", "1", "d", now() + kHour), entry("s", "2")});
  batch.now_ms = now() + 2 * kHour;  // a caller's clock running ahead never drops a live entry
  write(std::move(batch));
  EXPECT_EQ(raw().call(tag(), {"HLEN", tag() + "e:s"})->integer, 2);
  EXPECT_EQ(read("s").entries.size(), 2U);
}

TEST_F(RedisStreamStoreTest, LetsAStreamsKeysExpireWithItsLatestEntry) {
  write(batch_of({entry("s", "1", "d", now() + kHour)}));
  auto client = raw();
  for (const char* kind : {"m:", "e:"}) {
    const auto ttl = client.call(tag(), {"PTTL", tag() + kind + "s"})->integer;
    EXPECT_GT(ttl, kHour - 60'000) << kind;
    EXPECT_LE(ttl, kHour + 60'000 + 1000) << kind;  // the latest expiry plus the grace
  }
}

TEST_F(RedisStreamStoreTest, GivesAStreamRecreatedAfterItsKeysExpiredANewEpoch) {
  // Expired for longer than the grace by Redis's clock: the stream's keys go at once.
  auto old = write(batch_of({entry("s", "1", "d", now() - 2 * kHour)}));
  ASSERT_EQ(old.results.size(), 1U);
  EXPECT_EQ(storage_->streams().head("s")->epoch, 0U);
  auto reader = read("s", {}, 100, 1 << 20, /*after=*/1, old.results[0].epoch);
  EXPECT_TRUE(reader.epoch_changed);
  auto fresh = write(batch_of({entry("s", "2")}));
  EXPECT_EQ(fresh.results[0].seq, 1U);
  EXPECT_GT(fresh.results[0].epoch, old.results[0].epoch) << "never an epoch seen before";
}

TEST_F(RedisStreamStoreTest, ChangesTheEpochButKeepsTheSeqsOfAStreamLastWrittenByAnotherMaster) {
  auto before = write(batch_of({entry("s", "1"), entry("s", "2")}));
  // As after a failover: the meta was last written under another replication id.
  ASSERT_FALSE(raw().call(tag(), {"HSET", tag() + "m:s", "r", "other-master"})->is_error());
  auto after = write(batch_of({entry("s", "3")}));
  ASSERT_EQ(after.results.size(), 1U);
  EXPECT_EQ(after.results[0].seq, 3U);
  EXPECT_GT(after.results[0].epoch, before.results[0].epoch);
  auto r = read("s", {}, 100, 1 << 20, /*after=*/2, before.results[0].epoch);
  EXPECT_TRUE(r.epoch_changed);
  EXPECT_THAT(seqs_of(r.entries), ElementsAre(1, 2, 3));
  EXPECT_EQ(write(batch_of({entry("s", "4")})).results[0].epoch, after.results[0].epoch);
}

// ---------------------------------------------------------------------------------------------
// Shared between nodes, opening

TEST_F(RedisStreamStoreTest, SharesStreamsBetweenTwoStorageInstancesOfOneKeyspace) {
  auto other = open();  // a second heraldd node on the same cluster and keyspace
  ASSERT_TRUE(other);
  auto a = write(batch_of({entry("inbox", "from-a")}));
  auto b = write(batch_of({entry("inbox", "from-b")}), other.get());
  EXPECT_EQ(b.results[0].seq, 2U) << "numbering continues across nodes";
  EXPECT_EQ(b.results[0].epoch, a.results[0].epoch);
  auto seen = other->streams().read({.stream = "inbox", .now_ms = now()});
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->entries.size(), 2U);
  EXPECT_EQ(seen->entries[0].message_id, "from-a");
  EXPECT_EQ(seen->entries[1].message_id, "from-b");
}

TEST_F(RedisStreamStoreTest, KeepsNumbersGaplessWhenTwoInstancesAppendConcurrently) {
  auto other = open();
  ASSERT_TRUE(other);
  std::vector<std::uint64_t> seqs_a, seqs_b;
  auto run = [&](RedisStorage& storage, std::vector<std::uint64_t>& seqs) {
    for (int i = 0; i < 60; ++i) {
      auto done = write_and_wait(storage.streams(), batch_of({entry("s", "m")}));
      if (!done.ec) seqs.push_back(done.outcome.results.at(0).seq);
    }
  };
  std::thread ta([&] { run(*storage_, seqs_a); });
  std::thread tb([&] { run(*other, seqs_b); });
  ta.join();
  tb.join();
  std::set<std::uint64_t> all(seqs_a.begin(), seqs_a.end());
  all.insert(seqs_b.begin(), seqs_b.end());
  ASSERT_EQ(all.size(), 120U);
  EXPECT_EQ(*all.rbegin(), 120U);
}

TEST_F(RedisStreamStoreTest, KeepsKeyspacesApart) {
  write(batch_of({entry("s", "1")}));
  auto other = open(options_for(keyspace_ + "-other"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->streams().head("s")->epoch, 0U);
}

TEST(RedisStorageOpen, RefusesABadKeyspaceOrNoNodes) {
  auto options = options_for("bad{tag}");
  auto opened = RedisStorage::open(options);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, make_error_code(RedisError::kBadKeyspace));
  options = options_for("");
  EXPECT_FALSE(RedisStorage::open(options));
  options = options_for("ok");
  options.nodes.clear();
  EXPECT_FALSE(RedisStorage::open(options));
}

TEST(RedisStorageOpen, NamesTheNodesWhenNoneAnswers) {
  RedisStorageOptions options;
  options.nodes = {{"127.0.0.1", 1}};
  options.connect_timeout = std::chrono::milliseconds(200);
  auto opened = RedisStorage::open(options);
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("127.0.0.1:1"), std::string::npos)
      << opened.error().message;
}

TEST(RedisStorageOpen, RefusesAMasterWithoutAppendfsyncAlways) {
  auto& cluster = testing::shared_cluster();
  const auto master = cluster.masters().back();
  RedisClusterClient admin({.seeds = {master}});
  ASSERT_FALSE(admin.call_at(master, {"CONFIG", "SET", "appendfsync", "everysec"})->is_error());
  auto opened = RedisStorage::open(options_for("fsync-check"));
  auto relaxed = options_for("fsync-check");
  relaxed.require_fsync_always = false;
  auto allowed = RedisStorage::open(relaxed);
  ASSERT_FALSE(admin.call_at(master, {"CONFIG", "SET", "appendfsync", "always"})->is_error());
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code, make_error_code(RedisError::kNotDurable));
  EXPECT_NE(opened.error().message.find(master.text()), std::string::npos)
      << opened.error().message;
  EXPECT_NE(opened.error().message.find("everysec"), std::string::npos);
  EXPECT_TRUE(allowed);
}

}  // namespace
}  // namespace herald::storage

namespace herald::storage {
namespace {

// Its own cluster, with a replica per master (a few seconds to form).
TEST(RedisStorageReplicas, CompletesWritesOnceTheWantedReplicasTookThem) {
  testing::TestRedisCluster cluster({.masters = 3, .replicas_per_master = 1, .cluster = true});
  RedisStorageOptions options;
  options.nodes = {cluster.masters().front()};
  options.keyspace = "replicated";
  options.replicas_to_wait = 1;
  options.replica_wait_timeout = std::chrono::milliseconds(5000);
  auto storage = RedisStorage::open(options);
  ASSERT_TRUE(storage) << storage.error().message;
  AppendBatch batch;
  batch.now_ms = testing::test_now_ms();
  AppendRequest request;
  request.stream = "s";
  request.entry.message_id = "m";
  request.entry.expires_at_ms = batch.now_ms + 3'600'000;
  batch.entries.push_back(request);
  auto done = write_and_wait((*storage)->streams(), std::move(batch));
  EXPECT_FALSE(done.ec) << done.ec.message();
  EXPECT_TRUE((*storage)->devices().register_device("app", "dev", 1).value());
}

TEST(RedisStorageStandalone, WorksOnOneRedisServerThatIsNotACluster) {
  testing::TestRedisCluster server({.masters = 1, .replicas_per_master = 0, .cluster = false});
  RedisStorageOptions options;
  options.nodes = server.masters();
  auto storage = RedisStorage::open(options);
  ASSERT_TRUE(storage) << storage.error().message;
  AppendBatch batch;
  batch.now_ms = testing::test_now_ms();
  AppendRequest request;
  request.stream = "s";
  request.entry.message_id = "m";
  request.entry.expires_at_ms = batch.now_ms + 3'600'000;
  batch.entries = {request, request};
  batch.put_records = {{"k", "v", 0}};
  auto done = write_and_wait((*storage)->streams(), std::move(batch));
  ASSERT_FALSE(done.ec) << done.ec.message();
  auto read = (*storage)->streams().read({.stream = "s", .now_ms = testing::test_now_ms()});
  ASSERT_TRUE(read);
  EXPECT_EQ(read->entries.size(), 2U);
  EXPECT_TRUE((*storage)->records().get("k", testing::test_now_ms()).value());
}

// The keyspace's master dies; its replica (which WAIT showed had every write) takes over. The
// stream continues after its head under a new epoch, so readers resynchronise.
TEST(RedisStorageReplicas, ContinuesAStreamUnderANewEpochAfterAFailover) {
  testing::TestRedisCluster cluster({.masters = 3, .replicas_per_master = 1, .cluster = true});
  RedisStorageOptions options;
  options.nodes = cluster.nodes();
  options.keyspace = "failover";
  options.replicas_to_wait = 1;
  options.replica_wait_timeout = std::chrono::milliseconds(5000);
  options.command_timeout = std::chrono::milliseconds(1000);
  auto storage = RedisStorage::open(options);
  ASSERT_TRUE(storage) << storage.error().message;
  // After the failover the new master has no replica left: appends that WAIT for one cannot
  // succeed there, so the rest goes through a second node that does not wait.
  options.replicas_to_wait = 0;
  auto other = RedisStorage::open(options);
  ASSERT_TRUE(other) << other.error().message;
  const std::int64_t now = testing::test_now_ms();
  auto batch = [&](std::string id) {
    AppendBatch b;
    b.now_ms = now;
    AppendRequest request;
    request.stream = "s";
    request.entry.message_id = std::move(id);
    request.entry.expires_at_ms = now + 3'600'000;
    b.entries.push_back(std::move(request));
    return b;
  };
  auto first = write_and_wait((*storage)->streams(), batch("1"));
  ASSERT_FALSE(first.ec) << first.ec.message();
  ASSERT_FALSE(write_and_wait((*storage)->streams(), batch("2")).ec);

  RedisClusterClient admin({.seeds = cluster.masters()});
  const auto owner = admin.owner("{failover}");
  ASSERT_TRUE(owner);
  const auto nodes = cluster.nodes();
  const auto index =
      static_cast<std::size_t>(std::find(nodes.begin(), nodes.end(), *owner) - nodes.begin());
  ASSERT_LT(index, nodes.size());
  cluster.kill_node(index);

  // Appends fail (outcome unknown) until the replica is promoted: retry, as a sender would,
  // within a deadline. A retry may land twice; that is the contract's "outcome unknown".
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  testing::CompletedBatch third;
  do {
    third = write_and_wait((*other)->streams(), batch("3"));
  } while (third.ec && std::chrono::steady_clock::now() < deadline);
  ASSERT_FALSE(third.ec) << third.ec.message();
  ASSERT_EQ(third.outcome.results.size(), 1U);
  EXPECT_GE(third.outcome.results[0].seq, 3U) << "seqs 1 and 2 survived on the replica";
  EXPECT_NE(third.outcome.results[0].epoch, first.outcome.results[0].epoch);

  auto read = (*other)->streams().read(
      {.stream = "s", .epoch = first.outcome.results[0].epoch, .after_seq = 2, .now_ms = now});
  ASSERT_TRUE(read) << read.error().message();
  EXPECT_TRUE(read->epoch_changed);
  ASSERT_GE(read->entries.size(), 3U);
  EXPECT_EQ(read->entries[0].message_id, "1");
  EXPECT_EQ(read->entries[1].message_id, "2");
}

}  // namespace
}  // namespace herald::storage
