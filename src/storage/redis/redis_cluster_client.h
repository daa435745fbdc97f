// RedisClusterClient: commands to a Redis Cluster, each sent to the master that owns its key's
// slot. It learns the slot map with CLUSTER SLOTS from any node it knows (the seeds first),
// follows MOVED (and relearns the map) and ASK redirects, and waits out TRYAGAIN, CLUSTERDOWN
// and LOADING with a short backoff, all within the command timeout, as the cluster specification
// asks of a client. A single Redis server that is not a cluster works too: every slot is then
// its own.
//
// No cluster client is packaged for Debian 12 (hiredis-cluster, redis-plus-plus are not), so the
// routing is here and hiredis does the protocol (docs/dependencies.md).
//
// Not thread-safe: one client per thread (a store keeps one per calling thread, a writer thread
// its own). Calls block the calling thread for at most about the command timeout.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

#include "storage/redis/key_slot.h"
#include "storage/redis/redis_connection.h"

namespace herald::storage {

struct RedisClusterOptions {
  std::vector<RedisEndpoint> seeds;  // any nodes of the cluster; at least one
  std::chrono::milliseconds connect_timeout{1000};
  // The longest a call waits for an answer, redirects and retries included.
  std::chrono::milliseconds command_timeout{2000};
  int max_redirects = 16;
};

class RedisClusterClient {
 public:
  explicit RedisClusterClient(RedisClusterOptions options);
  ~RedisClusterClient();
  RedisClusterClient(const RedisClusterClient&) = delete;
  RedisClusterClient& operator=(const RedisClusterClient&) = delete;

  // Runs `command` on the master owning the slot of `key` (the routing key: usually one of the
  // command's keys). Error replies other than redirects come back as values (is_error()).
  // Errors: kConnectFailed, kNoSlotOwner, kTooManyRedirects, kClusterDown (nothing was applied);
  // kConnectionLost, kTimedOut, kProtocolError (the outcome is unknown: a write may have been
  // applied; retry only what is idempotent).
  [[nodiscard]] boost::system::result<RedisValue> call(std::string_view key,
                                                       const RedisCommand& command);

  // Runs `commands`, all routed by `key`, as one pipeline: one round trip when the slot does not
  // move. Commands answered with a redirect or TRYAGAIN are sent again, in their order, where
  // the cluster says; the replies come back in the commands' order. Same errors as call().
  [[nodiscard]] boost::system::result<std::vector<RedisValue>> pipeline(
      std::string_view key, std::span<const RedisCommand> commands);

  // Runs `command` on one given node, without routing (CONFIG GET, INFO, CLUSTER ...).
  [[nodiscard]] boost::system::result<RedisValue> call_at(const RedisEndpoint& node,
                                                          const RedisCommand& command);

  // The master owning the slot of `key` in the map as last learned (learning it if needed).
  [[nodiscard]] boost::system::result<RedisEndpoint> owner(std::string_view key);
  // Every master of the map, relearned now.
  [[nodiscard]] boost::system::result<std::vector<RedisEndpoint>> masters();

 private:
  using Clock = std::chrono::steady_clock;

  [[nodiscard]] boost::system::result<void> refresh_slots();
  [[nodiscard]] boost::system::result<RedisConnection*> connection(const RedisEndpoint& node);
  // An owner of `slot`, relearning the map when it has none.
  [[nodiscard]] boost::system::result<RedisEndpoint> owner_of(std::uint16_t slot);
  // Runs commands on `node` (after ASKING when `asking`).
  [[nodiscard]] boost::system::result<std::vector<RedisValue>> run_on(
      const RedisEndpoint& node, std::span<const RedisCommand> commands, bool asking);

  RedisClusterOptions options_;
  std::vector<RedisEndpoint> masters_;                // index = slot map value - 1
  std::array<std::uint16_t, kClusterSlots> slots_{};  // 0 = unknown owner
  bool standalone_ = false;                           // the node is not a cluster
  std::map<std::string, std::unique_ptr<RedisConnection>> connections_;  // by "host:port"
};

}  // namespace herald::storage
