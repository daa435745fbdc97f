// ClientPool: RedisClusterClients for the stores' reads and synchronous writes, which run on the
// caller's thread. A client is not thread-safe, so a call leases one (created on demand), uses it
// alone and gives it back; at most `max_idle` are kept between calls.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <boost/system/result.hpp>

#include "storage/redis/redis_cluster_client.h"
#include "storage/redis/redis_error.h"

namespace herald::storage::redis_detail {

class ClientPool {
 public:
  explicit ClientPool(RedisClusterOptions options, std::size_t max_idle = 16)
      : options_(std::move(options)), max_idle_(max_idle) {}

  ClientPool(const ClientPool&) = delete;
  ClientPool& operator=(const ClientPool&) = delete;

  // Runs `f(client)` on a leased client. When it fails with kConnectionLost (a connection that
  // broke since its last use: a restarted or failed-over master), runs it once more; the client
  // reconnects. Only for idempotent work: the first try may have been applied.
  template <class F>
  auto run(F f) -> decltype(f(std::declval<RedisClusterClient&>())) {
    auto client = lease();
    auto result = f(*client);
    if (!result && result.error() == make_error_code(RedisError::kConnectionLost)) {
      result = f(*client);
    }
    give_back(std::move(client));
    return result;
  }

 private:
  std::unique_ptr<RedisClusterClient> lease() {
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        auto client = std::move(idle_.back());
        idle_.pop_back();
        return client;
      }
    }
    return std::make_unique<RedisClusterClient>(options_);
  }

  void give_back(std::unique_ptr<RedisClusterClient> client) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < max_idle_) idle_.push_back(std::move(client));
  }

  const RedisClusterOptions options_;
  const std::size_t max_idle_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<RedisClusterClient>> idle_;  // guarded by mutex_
};

}  // namespace herald::storage::redis_detail
