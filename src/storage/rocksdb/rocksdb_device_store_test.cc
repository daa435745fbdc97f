#include "storage/rocksdb/rocksdb_device_store.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/system/errc.hpp>

#include "storage/rocksdb/detail/key_codec.h"
#include "storage/rocksdb/rocksdb_error.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::TempDir;

class RocksDbDeviceStoreTest : public ::testing::Test {
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

  RocksDbDeviceStore& devices() { return storage_->devices(); }

  TempDir dir_;
  std::unique_ptr<RocksDbStorage> storage_;
};

TEST_F(RocksDbDeviceStoreTest, ReportsAFirstRegistrationAsNew) {
  auto registered = devices().register_device("app", "dev", 1'000);
  ASSERT_TRUE(registered);
  EXPECT_TRUE(*registered);
  EXPECT_TRUE(*devices().is_registered("app", "dev"));
}

TEST_F(RocksDbDeviceStoreTest, PagesAndCountsTheDevicesOfAnApp) {
  for (const char* d : {"d3", "d1", "d2", "d4"})
    ASSERT_TRUE(devices().register_device("app", d, 1));
  ASSERT_TRUE(devices().register_device("app2", "d9", 1));  // another app, sorting right after
  ASSERT_TRUE(devices().register_device("ap", "d8", 1));    // a prefix of the app's id
  EXPECT_EQ(*devices().devices_of("app", "", 3), (std::vector<std::string>{"d1", "d2", "d3"}));
  EXPECT_EQ(*devices().devices_of("app", "d3", 3), (std::vector<std::string>{"d4"}));
  EXPECT_THAT(*devices().devices_of("app", "d4", 3), IsEmpty());
  ASSERT_TRUE(devices().unregister_device("app", "d2"));
  EXPECT_EQ(*devices().devices_of("app", "", 100), (std::vector<std::string>{"d1", "d3", "d4"}));
  EXPECT_THAT(*devices().devices_of("nobody", "", 100), IsEmpty());
}

TEST_F(RocksDbDeviceStoreTest, KeepsTheFirstRegistrationTimeWhenRegisteredAgain) {
  ASSERT_TRUE(devices().register_device("app", "dev", 1'000));
  auto again = devices().register_device("app", "dev", 2'000);
  ASSERT_TRUE(again);
  EXPECT_FALSE(*again);
  EXPECT_EQ(devices().registered_at("app", "dev")->value(), 1'000);
}

TEST_F(RocksDbDeviceStoreTest, RegistersADeviceOnlyForTheGivenApp) {
  ASSERT_TRUE(devices().register_device("app", "dev", 1));
  EXPECT_FALSE(*devices().is_registered("other", "dev"));
  EXPECT_FALSE(*devices().is_registered("app", "dev2"));
}

TEST_F(RocksDbDeviceStoreTest, ListsTheAppsOfADeviceSorted) {
  ASSERT_TRUE(devices().register_device("zeta", "dev", 1));
  ASSERT_TRUE(devices().register_device("alpha", "dev", 1));
  ASSERT_TRUE(devices().register_device("mid", "dev", 1));
  EXPECT_THAT(*devices().apps_of("dev"), ElementsAre("alpha", "mid", "zeta"));
}

TEST_F(RocksDbDeviceStoreTest, DoesNotMixDevicesWhoseIdsArePrefixesOfEachOther) {
  ASSERT_TRUE(devices().register_device("a1", "dev", 1));
  ASSERT_TRUE(devices().register_device("a2", "dev2", 1));
  ASSERT_TRUE(devices().register_device("a3", "de", 1));
  EXPECT_THAT(*devices().apps_of("dev"), ElementsAre("a1"));
  EXPECT_THAT(*devices().apps_of("nobody"), IsEmpty());
}

TEST_F(RocksDbDeviceStoreTest, KeepsRegistrationsAcrossAReopen) {
  ASSERT_TRUE(devices().register_device("app", "dev", 7));
  reopen();
  EXPECT_TRUE(*devices().is_registered("app", "dev"));
  EXPECT_THAT(*devices().apps_of("dev"), ElementsAre("app"));
}

TEST_F(RocksDbDeviceStoreTest, RefusesEmptyOrOversizedNamesAndStoresNothing) {
  EXPECT_EQ(devices().register_device("", "dev", 1).error(), RocksDbError::kBadKey);
  EXPECT_EQ(devices().register_device("app", "", 1).error(), boost::system::errc::invalid_argument);
  const std::string huge(RocksDbDeviceStore::kMaxNameBytes + 1, 'x');
  EXPECT_EQ(devices().register_device("app", huge, 1).error(), RocksDbError::kBadKey);
  EXPECT_EQ(devices().save_ack("", "s", {1, 1, 1}).error(), RocksDbError::kBadKey);
  EXPECT_THAT(*devices().apps_of("dev"), IsEmpty());
}

TEST_F(RocksDbDeviceStoreTest, AgreesOnASingleNewRegistrationUnderConcurrency) {
  constexpr int kThreads = 8;
  std::atomic<int> new_count{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto registered = devices().register_device("app", "dev", 100 + i);
      if (registered && *registered) new_count.fetch_add(1);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(new_count.load(), 1);
}

TEST_F(RocksDbDeviceStoreTest, UnregistersADeviceInBothDirections) {
  ASSERT_TRUE(devices().register_device("app", "dev", 1));
  ASSERT_TRUE(devices().register_device("other", "dev", 1));
  auto removed = devices().unregister_device("app", "dev");
  ASSERT_TRUE(removed);
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(*devices().is_registered("app", "dev"));
  EXPECT_FALSE(devices().registered_at("app", "dev")->has_value());
  EXPECT_THAT(*devices().apps_of("dev"), ElementsAre("other"));
}

TEST_F(RocksDbDeviceStoreTest, ReportsUnregisteringADeviceNeverRegisteredAsNotRegistered) {
  auto removed = devices().unregister_device("app", "dev");
  ASSERT_TRUE(removed);
  EXPECT_FALSE(*removed);
  ASSERT_TRUE(devices().register_device("app", "dev", 1));
  ASSERT_TRUE(*devices().unregister_device("app", "dev"));
  EXPECT_FALSE(*devices().unregister_device("app", "dev"));
}

TEST_F(RocksDbDeviceStoreTest, RegistersAgainAsNewWithTheNewTimeAfterUnregistering) {
  ASSERT_TRUE(devices().register_device("app", "dev", 1'000));
  ASSERT_TRUE(devices().unregister_device("app", "dev"));
  auto again = devices().register_device("app", "dev", 2'000);
  ASSERT_TRUE(again);
  EXPECT_TRUE(*again);
  EXPECT_EQ(devices().registered_at("app", "dev")->value(), 2'000);
}

TEST_F(RocksDbDeviceStoreTest, KeepsAnUnregistrationAcrossAReopen) {
  ASSERT_TRUE(devices().register_device("app", "dev", 1));
  ASSERT_TRUE(devices().unregister_device("app", "dev"));
  reopen();
  EXPECT_FALSE(*devices().is_registered("app", "dev"));
  EXPECT_THAT(*devices().apps_of("dev"), IsEmpty());
}

TEST_F(RocksDbDeviceStoreTest, KeepsTheDevicesCursorsWhenUnregistering) {
  ASSERT_TRUE(devices().register_device("app", "dev", 1));
  ASSERT_TRUE(devices().save_ack("dev", "i/dev", {.epoch = 1, .seq = 5, .acked_at_ms = 1}));
  ASSERT_TRUE(devices().unregister_device("app", "dev"));
  EXPECT_EQ((*devices().acked("dev", "i/dev"))->seq, 5u);
}

TEST_F(RocksDbDeviceStoreTest, RefusesToUnregisterWithAnEmptyOrOversizedName) {
  EXPECT_EQ(devices().unregister_device("", "dev").error(), RocksDbError::kBadKey);
  const std::string huge(RocksDbDeviceStore::kMaxNameBytes + 1, 'x');
  EXPECT_EQ(devices().unregister_device("app", huge).error(), RocksDbError::kBadKey);
  EXPECT_EQ(devices().registered_at("app", "").error(), RocksDbError::kBadKey);
}

TEST_F(RocksDbDeviceStoreTest, ReadsTheRegistrationTimeThroughTheInterface) {
  ASSERT_TRUE(devices().register_device("app", "dev", 1'234));
  DeviceStore& store = devices();
  EXPECT_EQ(store.registered_at("app", "dev")->value(), 1'234);
  EXPECT_FALSE(store.registered_at("app", "dev2")->has_value());
}

TEST_F(RocksDbDeviceStoreTest, ReportsACorruptRegistrationAsAnError) {
  auto& database = storage_->database();
  ASSERT_TRUE(database.db()
                  .Put(::rocksdb::WriteOptions(), database.app_devices(),
                       detail::pair_key("app", "dev"), "bad")
                  .ok());
  EXPECT_EQ(devices().is_registered("app", "dev").error(), RocksDbError::kCorruptMeta);
}

TEST_F(RocksDbDeviceStoreTest, HasNoCursorForAStreamNeverAcked) {
  auto cursor = devices().acked("dev", "i/dev");
  ASSERT_TRUE(cursor);
  EXPECT_FALSE(cursor->has_value());
}

TEST_F(RocksDbDeviceStoreTest, ReturnsTheSavedCursor) {
  ASSERT_TRUE(devices().save_ack("dev", "i/dev", {.epoch = 9, .seq = 4, .acked_at_ms = 123}));
  auto cursor = devices().acked("dev", "i/dev");
  ASSERT_TRUE(cursor && cursor->has_value());
  EXPECT_EQ((*cursor)->epoch, 9u);
  EXPECT_EQ((*cursor)->seq, 4u);
  EXPECT_EQ((*cursor)->acked_at_ms, 123);
}

TEST_F(RocksDbDeviceStoreTest, NeverMovesACursorBackWithinAnEpoch) {
  ASSERT_TRUE(devices().save_ack("dev", "i/dev", {.epoch = 9, .seq = 10, .acked_at_ms = 1}));
  ASSERT_TRUE(devices().save_ack("dev", "i/dev", {.epoch = 9, .seq = 7, .acked_at_ms = 2}));
  EXPECT_EQ((*devices().acked("dev", "i/dev"))->seq, 10u);
  ASSERT_TRUE(devices().save_ack("dev", "i/dev", {.epoch = 9, .seq = 11, .acked_at_ms = 3}));
  EXPECT_EQ((*devices().acked("dev", "i/dev"))->seq, 11u);
}

TEST_F(RocksDbDeviceStoreTest, ReplacesTheCursorWhenTheEpochChanges) {
  ASSERT_TRUE(devices().save_ack("dev", "i/dev", {.epoch = 9, .seq = 10, .acked_at_ms = 1}));
  ASSERT_TRUE(devices().save_ack("dev", "i/dev", {.epoch = 10, .seq = 2, .acked_at_ms = 2}));
  auto cursor = *devices().acked("dev", "i/dev");
  EXPECT_EQ(cursor->epoch, 10u);
  EXPECT_EQ(cursor->seq, 2u);
}

TEST_F(RocksDbDeviceStoreTest, KeepsCursorsOfDifferentStreamsApart) {
  ASSERT_TRUE(devices().save_ack("dev", "i/dev", {.epoch = 1, .seq = 5, .acked_at_ms = 1}));
  ASSERT_TRUE(devices().save_ack("dev", "t/news", {.epoch = 2, .seq = 8, .acked_at_ms = 1}));
  EXPECT_EQ((*devices().acked("dev", "i/dev"))->seq, 5u);
  EXPECT_EQ((*devices().acked("dev", "t/news"))->seq, 8u);
}

TEST_F(RocksDbDeviceStoreTest, KeepsCursorsAcrossACleanReopen) {
  ASSERT_TRUE(devices().save_ack("dev", "i/dev", {.epoch = 1, .seq = 5, .acked_at_ms = 1}));
  reopen();
  EXPECT_EQ((*devices().acked("dev", "i/dev"))->seq, 5u);
}

}  // namespace
}  // namespace herald::storage
