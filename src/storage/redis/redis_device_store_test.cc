// RedisDeviceStore against a real Redis Cluster: registrations both ways, paging, first
// registration time, cursors that never move back, refusals, and sharing between instances.
#include "storage/redis/redis_device_store.h"

#include <atomic>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/redis/redis_test_util.h"

namespace herald::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::RedisStorageTest;

using RedisDeviceStoreTest = RedisStorageTest;

TEST_F(RedisDeviceStoreTest, RegistersOnceAndKeepsTheFirstRegistrationTime) {
  auto& devices = storage_->devices();
  EXPECT_TRUE(devices.register_device("app", "dev", 100).value());
  EXPECT_FALSE(devices.register_device("app", "dev", 200).value());
  EXPECT_TRUE(devices.is_registered("app", "dev").value());
  EXPECT_EQ(devices.registered_at("app", "dev").value(), 100);
  EXPECT_FALSE(devices.is_registered("app", "other").value());
  EXPECT_FALSE(devices.registered_at("other", "dev").value());
}

TEST_F(RedisDeviceStoreTest, KeepsRegistrationsBothWaysAndRemovesBoth) {
  auto& devices = storage_->devices();
  ASSERT_TRUE(devices.register_device("b.app", "dev", 1));
  ASSERT_TRUE(devices.register_device("a.app", "dev", 1));
  ASSERT_TRUE(devices.register_device("a.app", "dev2", 1));
  EXPECT_THAT(devices.apps_of("dev").value(), ElementsAre("a.app", "b.app"));
  EXPECT_THAT(devices.devices_of("a.app", "", 10).value(), ElementsAre("dev", "dev2"));

  EXPECT_TRUE(devices.unregister_device("a.app", "dev").value());
  EXPECT_FALSE(devices.unregister_device("a.app", "dev").value());
  EXPECT_THAT(devices.apps_of("dev").value(), ElementsAre("b.app"));
  EXPECT_THAT(devices.devices_of("a.app", "", 10).value(), ElementsAre("dev2"));
  EXPECT_FALSE(devices.registered_at("a.app", "dev").value());
  // Registered again: a new first time.
  EXPECT_TRUE(devices.register_device("a.app", "dev", 5).value());
  EXPECT_EQ(devices.registered_at("a.app", "dev").value(), 5);
}

TEST_F(RedisDeviceStoreTest, PagesThroughAnAppsDevicesInIdOrder) {
  auto& devices = storage_->devices();
  for (const char* d : {"d3", "d1", "d5", "d2", "d4"})
    ASSERT_TRUE(devices.register_device("app", d, 1));
  ASSERT_TRUE(devices.register_device("app2", "d0", 1));
  EXPECT_THAT(devices.devices_of("app", "", 2).value(), ElementsAre("d1", "d2"));
  EXPECT_THAT(devices.devices_of("app", "d2", 2).value(), ElementsAre("d3", "d4"));
  EXPECT_THAT(devices.devices_of("app", "d4", 2).value(), ElementsAre("d5"));
  EXPECT_THAT(devices.devices_of("app", "d5", 2).value(), IsEmpty());
  EXPECT_THAT(devices.devices_of("app", "", 0).value(), IsEmpty());
  EXPECT_THAT(devices.devices_of("nobody", "", 10).value(), IsEmpty());
  EXPECT_THAT(devices.apps_of("nobody").value(), IsEmpty());
}

TEST_F(RedisDeviceStoreTest, LetsExactlyOneOfConcurrentRegistrationsOfAPairBeNew) {
  auto other = open();
  ASSERT_TRUE(other);
  std::atomic<int> fresh{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto& devices = (t % 2 == 0 ? storage_ : other)->devices();
      auto registered = devices.register_device("app", "dev", t);
      if (registered && *registered) fresh.fetch_add(1);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(fresh.load(), 1);
  EXPECT_THAT(other->devices().apps_of("dev").value(), ElementsAre("app"));
}

TEST_F(RedisDeviceStoreTest, RefusesBadNamesAndWritesNothing) {
  auto& devices = storage_->devices();
  const std::string long_name(1025, 'n');
  EXPECT_EQ(devices.register_device("", "dev", 1).error(), make_error_code(RedisError::kBadKey));
  EXPECT_EQ(devices.register_device("app", long_name, 1).error(),
            boost::system::errc::invalid_argument);
  EXPECT_FALSE(devices.unregister_device("app", ""));
  EXPECT_FALSE(devices.is_registered("", "dev"));
  EXPECT_FALSE(devices.apps_of(""));
  EXPECT_FALSE(devices.devices_of(long_name, "", 1));
  EXPECT_FALSE(devices.save_ack("dev", "", {1, 1, 1}));
  EXPECT_FALSE(devices.save_ack(long_name, "s", {1, 1, 1}));
  EXPECT_FALSE(devices.acked("dev", std::string(1025, 's')));
  EXPECT_THAT(devices.apps_of("dev").value(), IsEmpty());
  EXPECT_TRUE(devices.register_device(std::string(1024, 'a'), std::string(1024, 'd'), 1).value());
}

TEST_F(RedisDeviceStoreTest, NeverMovesACursorBackWithinAnEpoch) {
  auto& devices = storage_->devices();
  EXPECT_FALSE(devices.acked("dev", "i/dev").value());
  ASSERT_TRUE(devices.save_ack("dev", "i/dev", {7, 5, 50}));
  ASSERT_TRUE(devices.save_ack("dev", "i/dev", {7, 4, 60}));
  auto cursor = devices.acked("dev", "i/dev").value();
  ASSERT_TRUE(cursor);
  EXPECT_EQ(cursor->seq, 5U);
  EXPECT_EQ(cursor->acked_at_ms, 50);
  ASSERT_TRUE(devices.save_ack("dev", "i/dev", {7, 9, 70}));
  EXPECT_EQ(devices.acked("dev", "i/dev").value()->seq, 9U);
  // Another epoch replaces it, even lower.
  ASSERT_TRUE(devices.save_ack("dev", "i/dev", {8, 1, 80}));
  cursor = devices.acked("dev", "i/dev").value();
  EXPECT_EQ(cursor->epoch, 8U);
  EXPECT_EQ(cursor->seq, 1U);
  EXPECT_FALSE(devices.acked("dev", "other").value());
}

TEST_F(RedisDeviceStoreTest, KeepsCursorsWhenTheDeviceIsUnregistered) {
  auto& devices = storage_->devices();
  ASSERT_TRUE(devices.register_device("app", "dev", 1));
  ASSERT_TRUE(devices.save_ack("dev", "i/dev", {1, 3, 1}));
  ASSERT_TRUE(devices.unregister_device("app", "dev"));
  EXPECT_EQ(devices.acked("dev", "i/dev").value()->seq, 3U);
}

TEST_F(RedisDeviceStoreTest, ReportsACorruptCursorOrRegistration) {
  ASSERT_FALSE(raw().call(tag(), {"HSET", tag() + "k:dev", "s", "nonsense"})->is_error());
  ASSERT_FALSE(raw().call(tag(), {"HSET", tag() + "rt:app", "dev", "x"})->is_error());
  EXPECT_EQ(storage_->devices().acked("dev", "s").error(),
            make_error_code(RedisError::kCorruptMeta));
  EXPECT_EQ(storage_->devices().save_ack("dev", "s", {1, 1, 1}).error(),
            make_error_code(RedisError::kCorruptMeta));
  EXPECT_EQ(storage_->devices().registered_at("app", "dev").error(),
            make_error_code(RedisError::kCorruptMeta));
}

TEST_F(RedisDeviceStoreTest, SharesRegistrationsAndCursorsBetweenTwoStorageInstances) {
  ASSERT_TRUE(storage_->devices().register_device("app", "dev", 1));
  ASSERT_TRUE(storage_->devices().save_ack("dev", "i/dev", {1, 2, 3}));
  auto other = open();
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->devices().is_registered("app", "dev").value());
  EXPECT_EQ(other->devices().acked("dev", "i/dev").value()->seq, 2U);
}

TEST_F(RedisDeviceStoreTest, FailsARegistrationWhenTooFewReplicasAcknowledge) {
  // The test cluster has no replicas: WAIT 1 sees none.
  auto options = testing::options_for(keyspace_);
  options.replicas_to_wait = 1;
  options.replica_wait_timeout = std::chrono::milliseconds(10);
  auto waiting = open(options);
  ASSERT_TRUE(waiting);
  EXPECT_EQ(waiting->devices().register_device("app", "dev", 1).error(),
            make_error_code(RedisError::kTooFewReplicas));
  auto done = testing::write_and_wait(waiting->streams(), batch_of({entry("s", "m")}));
  EXPECT_EQ(done.ec, make_error_code(RedisError::kTooFewReplicas));
}

}  // namespace
}  // namespace herald::storage
