// Test helpers for the Redis stores; not part of the library. One real Redis Cluster
// (TestRedisCluster, three masters) is shared by every test of a binary, since forming one takes
// about two seconds; each test gets its own keyspace, so tests never see each other's data.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>

#include "storage/redis/redis_storage.h"
#include "storage/redis/testing/test_redis_cluster.h"
#include "storage/testing/append_and_wait.h"

namespace herald::storage::testing {

// The binary's cluster, started on first use and stopped at exit.
inline TestRedisCluster& shared_cluster() {
  static TestRedisCluster cluster;
  return cluster;
}

// A keyspace no other test of this process uses: "<suite>.<test>.<n>".
inline std::string fresh_keyspace() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info != nullptr ? std::string(info->test_suite_name()) + "." + info->name()
                                     : std::string("herald-test");
  return name + "." + std::to_string(counter.fetch_add(1));
}

inline RedisStorageOptions options_for(std::string keyspace) {
  RedisStorageOptions options;
  options.nodes = {shared_cluster().masters().front()};  // one seed; the rest is learned
  options.keyspace = std::move(keyspace);
  return options;
}

// The clock the tests pass as now_ms: the real time at start-up, so that the Redis-side expiry
// (keys dropped expiry_grace_ms after their expiry by Redis's clock) never fires during a test,
// while every liveness test moves with now_ms alone.
inline std::int64_t test_now_ms() {
  static const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::system_clock::now().time_since_epoch())
                                      .count();
  return now;
}

// A fixture with a fresh keyspace opened as `storage_`.
class RedisStorageTest : public ::testing::Test {
 protected:
  static constexpr std::int64_t kHour = 3'600'000;

  void SetUp() override {
    keyspace_ = fresh_keyspace();
    storage_ = open();
  }

  std::unique_ptr<RedisStorage> open(std::optional<RedisStorageOptions> options = std::nullopt) {
    auto opened = RedisStorage::open(options ? *options : options_for(keyspace_));
    EXPECT_TRUE(opened) << opened.error().message;
    return opened ? std::move(*opened) : nullptr;
  }

  static std::int64_t now() { return test_now_ms(); }
  static std::int64_t far_future() { return test_now_ms() + 1000 * kHour; }

  AppendRequest entry(std::string stream, std::string message_id, std::string data = "data",
                      std::optional<std::int64_t> expires_at_ms = std::nullopt,
                      std::string collapse_key = {}) {
    AppendRequest request;
    request.stream = std::move(stream);
    request.entry.app = "app";
    request.entry.message_id = std::move(message_id);
    request.entry.data = std::move(data);
    request.entry.sent_at_ms = now() - 1000;
    request.entry.expires_at_ms = expires_at_ms.value_or(far_future());
    request.collapse_key = std::move(collapse_key);
    return request;
  }

  AppendBatch batch_of(std::vector<AppendRequest> entries) {
    AppendBatch batch;
    batch.entries = std::move(entries);
    batch.now_ms = now();
    return batch;
  }

  // Writes `batch` and expects success.
  AppendOutcome write(AppendBatch batch, RedisStorage* storage = nullptr) {
    auto completed =
        write_and_wait((storage ? storage : storage_.get())->streams(), std::move(batch));
    EXPECT_TRUE(completed.completed);
    EXPECT_FALSE(completed.ec) << completed.ec.message();
    return std::move(completed.outcome);
  }

  ReadResult read(std::string_view stream, std::optional<std::int64_t> now_ms = std::nullopt,
                  std::size_t max_entries = 100, std::size_t max_bytes = 1 << 20,
                  std::uint64_t after = 0, std::uint64_t epoch = 0) {
    auto result = storage_->streams().read({.stream = stream,
                                            .epoch = epoch,
                                            .after_seq = after,
                                            .max_entries = max_entries,
                                            .max_bytes = max_bytes,
                                            .now_ms = now_ms.value_or(now())});
    EXPECT_TRUE(result) << result.error().message();
    return result ? *result : ReadResult{};
  }

  std::optional<Record> record(std::string_view key, std::optional<std::int64_t> now_ms = {}) {
    auto result = storage_->records().get(key, now_ms.value_or(now()));
    EXPECT_TRUE(result) << result.error().message();
    return result ? *result : std::nullopt;
  }

  // A raw client on the cluster, to look at what the stores left in Redis.
  RedisClusterClient raw() {
    RedisClusterOptions options;
    options.seeds = shared_cluster().masters();
    return RedisClusterClient(options);
  }
  std::string tag() const { return "{" + keyspace_ + "}"; }

  std::string keyspace_;
  std::unique_ptr<RedisStorage> storage_;
};

inline std::vector<std::uint64_t> seqs_of(const std::vector<Entry>& entries) {
  std::vector<std::uint64_t> seqs;
  for (const auto& e : entries) seqs.push_back(e.seq);
  return seqs;
}

inline std::vector<DataKind> kinds_of(const std::vector<Entry>& entries) {
  std::vector<DataKind> kinds;
  for (const auto& e : entries) kinds.push_back(e.kind);
  return kinds;
}

}  // namespace herald::storage::testing
