// TestRedisCluster: a real Redis Cluster for tests and benchmarks, made of redis-server
// processes (Debian's redis-server) on loopback, each in its own directory under a temporary
// one, with the append-only file fsynced on every write (appendfsync always), as Herald's
// durability needs. The cluster is formed the way redis-cli --cluster create forms it (slots
// split evenly, distinct config epochs, CLUSTER MEET), without redis-cli's fixed one-second
// wait, and is ready when every node reports cluster_state:ok and knows every other node.
//
// Not thread-safe; the destructor kills the servers and removes their directories.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "storage/redis/redis_connection.h"

namespace herald::testing {
class Process;
}

namespace herald::storage::testing {

class TestRedisCluster {
 public:
  struct Options {
    std::size_t masters = 3;
    // 0: a cluster of masters only. 1: each master gets a replica (started after the masters,
    // attached with CLUSTER REPLICATE), for failover tests.
    std::size_t replicas_per_master = 0;
    // false: one plain redis-server, not a cluster (masters must be 1, no replicas).
    bool cluster = true;
  };

  // Starts and forms the cluster; throws std::runtime_error (with the servers' logs' tails)
  // when it cannot within a few seconds.
  TestRedisCluster();
  explicit TestRedisCluster(Options options);
  ~TestRedisCluster();
  TestRedisCluster(const TestRedisCluster&) = delete;
  TestRedisCluster& operator=(const TestRedisCluster&) = delete;

  // The masters, in slot order (the first owns slots 0..).
  [[nodiscard]] const std::vector<RedisEndpoint>& masters() const { return masters_; }
  // Every node, masters first.
  [[nodiscard]] std::vector<RedisEndpoint> nodes() const;
  // "127.0.0.1:p1,127.0.0.1:p2,...": the masters, as heraldd's storage.redis.nodes takes them.
  [[nodiscard]] std::string seeds_text() const;

  // SIGKILL the node (a master or a replica) at `index` of nodes().
  void kill_node(std::size_t index);

 private:
  struct Node;

  void start_node(std::size_t index);
  void form();

  Options options_;
  std::filesystem::path root_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<RedisEndpoint> masters_;
};

}  // namespace herald::storage::testing
