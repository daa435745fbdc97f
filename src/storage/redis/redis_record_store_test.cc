// RedisRecordStore against a real Redis Cluster: get, prefix scans and their paging, expiry by
// the caller's clock and by Redis's, the index cleaning itself, refusals and corrupt records.
#include "storage/redis/redis_record_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/redis/redis_test_util.h"

namespace herald::storage {
namespace {

using testing::RedisStorageTest;

class RedisRecordStoreTest : public RedisStorageTest {
 protected:
  void put(std::vector<Record> records) {
    AppendBatch batch;
    batch.now_ms = now();
    batch.put_records = std::move(records);
    write(std::move(batch));
  }

  std::vector<std::string> scan_keys(std::string_view prefix, std::string_view after,
                                     std::size_t limit, std::optional<std::int64_t> at = {}) {
    auto records = storage_->records().scan(prefix, after, limit, at.value_or(now()));
    EXPECT_TRUE(records) << records.error().message();
    std::vector<std::string> keys;
    if (records) {
      for (const auto& r : *records) keys.push_back(r.key);
    }
    return keys;
  }
};

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST_F(RedisRecordStoreTest, GetsALiveRecordWithItsExpiryAndNothingElse) {
  put({{"app/1", std::string("v\0x", 3), 0}, {"app/2", "w", now() + kHour}});
  EXPECT_EQ(record("app/1"), (Record{"app/1", std::string("v\0x", 3), 0}));
  EXPECT_EQ(record("app/2"), (Record{"app/2", "w", now() + kHour}));
  EXPECT_FALSE(record("app/2", now() + kHour)) << "expired at its expiry, by the caller's clock";
  EXPECT_FALSE(record("app/3"));
}

TEST_F(RedisRecordStoreTest, RefusesABadKey) {
  EXPECT_EQ(storage_->records().get("", now()).error(), make_error_code(RedisError::kBadRecordKey));
  EXPECT_EQ(storage_->records().get(std::string(1025, 'k'), now()).error(),
            boost::system::errc::invalid_argument);
}

TEST_F(RedisRecordStoreTest, ScansAPrefixInKeyOrderAndPagesThroughIt) {
  put({{"idem/a/3", "", 0},
       {"idem/a/1", "", 0},
       {"idem/b/1", "", 0},
       {"idem/a/2", "", 0},
       {"idem/", "", 0},
       {"idem0", "", 0},
       {"app/x", "", 0}});
  EXPECT_THAT(scan_keys("idem/a/", "", 10), ElementsAre("idem/a/1", "idem/a/2", "idem/a/3"));
  EXPECT_THAT(scan_keys("idem/a/", "", 2), ElementsAre("idem/a/1", "idem/a/2"));
  EXPECT_THAT(scan_keys("idem/a/", "idem/a/2", 2), ElementsAre("idem/a/3"));
  EXPECT_THAT(scan_keys("idem/a/", "idem/a/3", 2), IsEmpty());
  EXPECT_THAT(scan_keys("idem/", "", 10),
              ElementsAre("idem/", "idem/a/1", "idem/a/2", "idem/a/3", "idem/b/1"));
  EXPECT_THAT(scan_keys("idem/", "", 0), IsEmpty());
  EXPECT_THAT(scan_keys("", "", 100).size(), 7U) << "an empty prefix scans every record";
  EXPECT_THAT(scan_keys("idem/", "a", 10).size(), 5U) << "an after_key before the prefix";
}

TEST_F(RedisRecordStoreTest, ScansPrefixesEndingInTheHighestByte) {
  put({{"p\xff", "", 0}, {"p\xff\xff", "", 0}, {"q", "", 0}});
  EXPECT_THAT(scan_keys("p\xff", "", 10), ElementsAre("p\xff", "p\xff\xff"));
  EXPECT_THAT(scan_keys("\xff", "", 10), IsEmpty());
}

TEST_F(RedisRecordStoreTest, SkipsExpiredRecordsAndStillFillsThePage) {
  std::vector<Record> records;
  for (int i = 0; i < 1500; ++i) {
    char key[32];
    std::snprintf(key, sizeof key, "sched/%05d", i);
    // Every record but the last three expires within the hour: a page needs 1500 looked at.
    records.push_back({key, "", i >= 1497 ? 0 : now() + kHour});
  }
  for (std::size_t i = 0; i < records.size(); i += 500) {
    put(std::vector<Record>(records.begin() + static_cast<std::ptrdiff_t>(i),
                            records.begin() + static_cast<std::ptrdiff_t>(i + 500)));
  }
  EXPECT_THAT(scan_keys("sched/", "", 2, now() + 2 * kHour),
              ElementsAre("sched/01497", "sched/01498"));
  EXPECT_THAT(scan_keys("sched/", "", 10, now() + 2 * kHour).size(), 3U);
  EXPECT_THAT(scan_keys("sched/", "", 10).size(), 10U);
}

TEST_F(RedisRecordStoreTest, DropsIndexMembersOfRecordsRedisExpiredOrThatWereDeleted) {
  put({{"k/gone", "", now() - 2 * kHour}, {"k/live", "", 0}, {"k/deleted", "", 0}});
  AppendBatch del;
  del.now_ms = now();
  del.delete_records = {"k/deleted"};
  write(std::move(del));
  auto client = raw();
  EXPECT_TRUE(client.call(tag(), {"GET", tag() + "r:k/gone"})->is_nil()) << "Redis dropped it";
  EXPECT_THAT(scan_keys("k/", "", 10), ElementsAre("k/live"));
  EXPECT_EQ(client.call(tag(), {"ZCARD", tag() + "ri"})->integer, 1);
}

TEST_F(RedisRecordStoreTest, CleansTheIndexOfDroppedRecordsNobodyScansWhenAppending) {
  // Idempotency keys are read with get, never scanned: their index members must go anyway.
  put({{"idem/1", "", now() - 2 * kHour},
       {"idem/2", "", now() - 2 * kHour},
       {"idem/3", "", now() + kHour},
       {"app/1", "", 0}});
  write(batch_of({entry("s", "m")}));
  auto client = raw();
  EXPECT_EQ(client.call(tag(), {"ZCARD", tag() + "ri"})->integer, 2);
  EXPECT_EQ(client.call(tag(), {"ZCARD", tag() + "rx"})->integer, 1) << "idem/3 expires later";
  put({{"idem/3", "", 0}});
  EXPECT_EQ(client.call(tag(), {"ZCARD", tag() + "rx"})->integer, 0) << "no longer expiring";
}

TEST_F(RedisRecordStoreTest, LetsRedisDropAnExpiringRecordAfterTheGrace) {
  put({{"k", "", now() + kHour}, {"forever", "", 0}});
  auto client = raw();
  const auto ttl = client.call(tag(), {"PTTL", tag() + "r:k"})->integer;
  EXPECT_GT(ttl, kHour);
  EXPECT_LE(ttl, kHour + 60'000 + 1000);
  EXPECT_EQ(client.call(tag(), {"PTTL", tag() + "r:forever"})->integer, -1);
  put({{"k", "", 0}});
  EXPECT_EQ(client.call(tag(), {"PTTL", tag() + "r:k"})->integer, -1) << "a put replaces it";
}

TEST_F(RedisRecordStoreTest, ReportsACorruptRecordAsAnError) {
  put({{"c/1", "", 0}});
  ASSERT_FALSE(raw().call(tag(), {"SET", tag() + "r:c/1", "short"})->is_error());
  EXPECT_EQ(storage_->records().get("c/1", now()).error(),
            make_error_code(RedisError::kCorruptMeta));
  EXPECT_EQ(storage_->records().scan("c/", "", 10, now()).error(),
            make_error_code(RedisError::kCorruptMeta));
}

TEST_F(RedisRecordStoreTest, SharesRecordsBetweenTwoStorageInstances) {
  put({{"app/shared", "v", 0}});
  auto other = open();
  ASSERT_TRUE(other);
  auto got = other->records().get("app/shared", now());
  ASSERT_TRUE(got);
  ASSERT_TRUE(*got);
  EXPECT_EQ((*got)->value, "v");
}

}  // namespace
}  // namespace herald::storage
