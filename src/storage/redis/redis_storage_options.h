// Options of the Redis Cluster storage (docs/storage.md, "Redis Cluster").
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "storage/redis/redis_connection.h"

namespace herald::storage {

struct RedisStorageOptions {
  // Any nodes of the cluster (heraldd: storage.redis.nodes); the rest is learned from them.
  std::vector<RedisEndpoint> nodes;
  // Every key of this deployment's storage starts with the hash tag "{<keyspace>}", so that all
  // of it lives in ONE slot and every append batch is one atomic script on one master. That
  // master carries the whole deployment's storage; separate deployments (keyspaces) spread over
  // the masters. Not empty, no '{' or '}' (heraldd: storage.redis.keyspace).
  std::string keyspace = "herald";
  std::chrono::milliseconds connect_timeout{1000};
  // The longest one command or pipeline waits for its answer (redirects included). The writer
  // sends every queued batch as one pipeline: keep it well above an fsync under load.
  std::chrono::milliseconds command_timeout{5000};
  // Bound of the writer's queue, in items (entries, records, tombstones, acks; at least 1 a
  // batch). An append that does not fit completes at once with
  // errc::resource_unavailable_try_again; one batch larger than the whole bound fails with
  // RedisError::kBatchTooLarge.
  std::size_t writer_queue_entries = 64 * 1024;
  // > 0: after each pipeline of appends (and each registration), WAIT for this many replicas
  // to acknowledge, at most replica_wait_timeout; fewer fail the writes with kTooFewReplicas
  // (outcome unknown). 0: the master's own AOF fsync is the durability.
  int replicas_to_wait = 0;
  // At most half the command timeout is used, so that the client does not give up on WAIT first.
  std::chrono::milliseconds replica_wait_timeout{1000};
  // Redis drops a stream's keys (and an expiring record) this long after its latest expiry by
  // Redis's clock, so that a heraldd clock slightly behind Redis's never sees a live entry or
  // record vanish. Readers test expiry with their own now_ms, so nothing expired is returned
  // meanwhile.
  std::int64_t expiry_grace_ms = 60'000;
  // false: open even when a master does not run with appendonly yes and appendfsync always
  // (acknowledged writes may then be lost on a Redis crash). For tests and throwaway setups.
  bool require_fsync_always = true;
};

}  // namespace herald::storage
