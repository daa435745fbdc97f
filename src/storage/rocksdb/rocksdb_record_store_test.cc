#include "storage/rocksdb/rocksdb_record_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/system/errc.hpp>

#include "storage/rocksdb/rocksdb_error.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::TempDir;

constexpr std::int64_t kNow = 10'000;

std::vector<std::string> keys_of(const std::vector<Record>& records) {
  std::vector<std::string> keys;
  for (const auto& r : records) keys.push_back(r.key);
  return keys;
}

class RocksDbRecordStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { reopen(); }

  void reopen() {
    storage_.reset();
    RocksDbOptions options;
    options.path = dir_.db_path();
    options.boot_id = "boot";
    auto opened = RocksDbStorage::open(options);
    ASSERT_TRUE(opened) << opened.error().message;
    storage_ = std::move(*opened);
  }

  // Puts records through the stream store's writer, the only way records are written.
  void put(std::vector<Record> records) {
    AppendBatch batch;
    batch.put_records = std::move(records);
    auto completed = testing::write_and_wait(storage_->streams(), std::move(batch));
    ASSERT_FALSE(completed.ec) << completed.ec.message();
  }

  std::vector<Record> scan(std::string_view prefix, std::string_view after = {},
                           std::size_t limit = 100, std::int64_t now_ms = kNow) {
    auto result = records().scan(prefix, after, limit, now_ms);
    EXPECT_TRUE(result) << result.error().message();
    return result ? *result : std::vector<Record>{};
  }

  RocksDbRecordStore& records() { return storage_->records(); }

  TempDir dir_;
  std::unique_ptr<RocksDbStorage> storage_;
};

TEST_F(RocksDbRecordStoreTest, ReturnsNothingForAKeyNeverWritten) {
  auto got = records().get("app/none", kNow);
  ASSERT_TRUE(got);
  EXPECT_FALSE(*got);
}

TEST_F(RocksDbRecordStoreTest, ReturnsAPutRecordWithItsValueAndExpiry) {
  put({{"app/a", std::string("v\0x", 3), 20'000}});
  auto got = records().get("app/a", kNow);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ(**got, (Record{"app/a", std::string("v\0x", 3), 20'000}));
}

TEST_F(RocksDbRecordStoreTest, NeverReturnsARecordAtOrPastItsExpiry) {
  put({{"k/expiring", "v", 20'000}, {"k/forever", "v", 0}});
  EXPECT_TRUE(*records().get("k/expiring", 19'999));
  EXPECT_FALSE(*records().get("k/expiring", 20'000));
  EXPECT_THAT(keys_of(scan("k/", {}, 100, 20'000)), ElementsAre("k/forever"));
}

TEST_F(RocksDbRecordStoreTest, KeepsARecordWithoutExpiryForever) {
  put({{"k", "v", 0}});
  EXPECT_TRUE(*records().get("k", std::numeric_limits<std::int64_t>::max()));
}

TEST_F(RocksDbRecordStoreTest, ScansTheLiveRecordsOfAPrefixInKeyOrder) {
  put({{"app/b", "2", 0},
       {"app/a", "1", 0},
       {"apq", "x", 0},
       {"ap", "x", 0},
       {"app/c", "3", 5'000},  // expired
       {"app/\xff", "4", 0}});
  EXPECT_THAT(keys_of(scan("app/")), ElementsAre("app/a", "app/b", "app/\xff"));
  EXPECT_THAT(keys_of(scan("")), ElementsAre("ap", "app/a", "app/b", "app/\xff", "apq"));
  EXPECT_THAT(scan("nothing/"), IsEmpty());
}

TEST_F(RocksDbRecordStoreTest, PagesThroughAPrefixAfterTheLastKeyReturned) {
  put({{"p/1", "", 0}, {"p/2", "", 0}, {"p/3", "", 0}, {"p/4", "", 0}, {"p/5", "", 0}});
  auto first = scan("p/", {}, 2);
  EXPECT_THAT(keys_of(first), ElementsAre("p/1", "p/2"));
  auto second = scan("p/", first.back().key, 2);
  EXPECT_THAT(keys_of(second), ElementsAre("p/3", "p/4"));
  auto last = scan("p/", second.back().key, 2);
  EXPECT_THAT(keys_of(last), ElementsAre("p/5"));
  EXPECT_THAT(scan("p/", "p/5", 2), IsEmpty());
}

TEST_F(RocksDbRecordStoreTest, StartsAtThePrefixWhenAfterKeySortsBeforeIt) {
  put({{"a", "", 0}, {"p/1", "", 0}});
  EXPECT_THAT(keys_of(scan("p/", "a")), ElementsAre("p/1"));
  EXPECT_THAT(scan("p/", "q"), IsEmpty());
}

TEST_F(RocksDbRecordStoreTest, FillsAPageWithLiveRecordsPastExpiredOnes) {
  put({{"p/1", "", 5'000}, {"p/2", "", 5'000}, {"p/3", "", 0}, {"p/4", "", 0}});
  EXPECT_THAT(keys_of(scan("p/", {}, 2)), ElementsAre("p/3", "p/4"));
}

TEST_F(RocksDbRecordStoreTest, ReturnsNoRecordsForALimitOfZero) {
  put({{"p/1", "", 0}});
  EXPECT_THAT(scan("p/", {}, 0), IsEmpty());
}

TEST_F(RocksDbRecordStoreTest, KeepsRecordsAcrossAReopen) {
  put({{"app/a", "alpha", 0}});
  reopen();
  EXPECT_EQ((*records().get("app/a", kNow))->value, "alpha");
}

TEST_F(RocksDbRecordStoreTest, CompactionDropsExpiredRecordsAndKeepsTheOthers) {
  put({{"gone", "v", 1'000}, {"later", "v", 4'000'000'000'000}, {"forever", "v", 0}});
  auto& database = storage_->database();
  ASSERT_TRUE(database.db().Flush(::rocksdb::FlushOptions(), database.records()).ok());
  ::rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = ::rocksdb::BottommostLevelCompaction::kForce;
  ASSERT_TRUE(database.db().CompactRange(compact, database.records(), nullptr, nullptr).ok());

  std::unique_ptr<::rocksdb::Iterator> it(
      database.db().NewIterator(::rocksdb::ReadOptions(), database.records()));
  std::vector<std::string> stored;
  for (it->SeekToFirst(); it->Valid(); it->Next()) stored.push_back(it->key().ToString());
  EXPECT_THAT(stored, ElementsAre("forever", "later"));
}

TEST_F(RocksDbRecordStoreTest, RefusesAnEmptyOrOversizedKey) {
  EXPECT_EQ(records().get("", kNow).error(), RocksDbError::kBadRecordKey);
  const std::string long_key(RocksDbRecordStore::kMaxRecordKeyBytes + 1, 'k');
  EXPECT_EQ(records().get(long_key, kNow).error(), boost::system::errc::invalid_argument);
}

TEST_F(RocksDbRecordStoreTest, ReportsACorruptStoredRecordAsAnError) {
  auto& database = storage_->database();
  ASSERT_TRUE(database.db().Put(::rocksdb::WriteOptions(), database.records(), "bad", "\x01").ok());
  EXPECT_EQ(records().get("bad", kNow).error(), RocksDbError::kCorruptMeta);
  EXPECT_EQ(records().scan("b", {}, 10, kNow).error(), RocksDbError::kCorruptMeta);
}

}  // namespace
}  // namespace herald::storage
