#include "server/node_number.h"

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "common/run_to_completion.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::server {
namespace {

namespace asio = boost::asio;

class NodeNumberTest : public ::testing::Test {
 protected:
  template <class T>
  T run(asio::awaitable<T> work) {
    return run_to_completion(io_, std::move(work));
  }

  std::uint32_t claim(const std::string& name, std::int64_t now_ms) {
    auto claimed = run(async_claim_node_number(store_->streams(), store_->records(), name, now_ms));
    EXPECT_TRUE(claimed) << claimed.error().message();
    return claimed ? *claimed : 9999;
  }

  asio::io_context io_;
  storage::testing::TempDir dir_;
  std::unique_ptr<storage::RocksDbStorage> store_ = [this] {
    storage::RocksDbOptions options;
    options.path = dir_.db_path();
    return storage::RocksDbStorage::open(options).value();
  }();
};

TEST_F(NodeNumberTest, LiveNodesHoldDistinctNumbers) {
  EXPECT_EQ(claim("node-a", 1000), 0U);
  EXPECT_EQ(claim("node-b", 1000), 1U);
  EXPECT_EQ(claim("node-c", 2000), 2U);
}

TEST_F(NodeNumberTest, ARestartedNodeTakesBackItsNumber) {
  EXPECT_EQ(claim("node-a", 1000), 0U);
  EXPECT_EQ(claim("node-b", 1000), 1U);
  EXPECT_EQ(claim("node-b", 5000), 1U);
  EXPECT_EQ(claim("node-a", 5000), 0U);
}

TEST_F(NodeNumberTest, ALapsedLeaseFreesTheNumberAndItsOldHolderLearnsIt) {
  EXPECT_EQ(claim("node-a", 1000), 0U);
  const auto lapsed = 1000 + kNodeNumberLeaseMs;
  EXPECT_EQ(claim("node-b", lapsed), 0U);
  auto renewed =
      run(async_renew_node_number(store_->streams(), store_->records(), "node-a", 0, lapsed + 1));
  ASSERT_TRUE(renewed);
  EXPECT_FALSE(*renewed);
  renewed =
      run(async_renew_node_number(store_->streams(), store_->records(), "node-b", 0, lapsed + 1));
  ASSERT_TRUE(renewed);
  EXPECT_TRUE(*renewed);
}

}  // namespace
}  // namespace herald::server
