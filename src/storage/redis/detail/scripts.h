// The Lua scripts of the Redis stores and how they are run. Each script gets the keyspace's
// hash tag ("{ks}", detail/key_layout.h) as its only declared key, KEYS[1], and builds every key
// it touches from it: all of them hash to that one slot, so the cluster runs the script on the
// master owning it, atomically. (Redis Cluster accepts undeclared keys of the script's own slot;
// declaring each would mean passing every stream and record name twice.)
//
// A script's writes are not rolled back when it fails half-way, so the writing scripts read and
// check everything stored they build on first and return an error before writing anything; after
// the checks nothing can fail (Redis tests maxmemory once, before a writing script starts).
//
// Error replies the scripts return: "HERALD_CORRUPT_RECORD ..." (a stored entry does not
// decode), "HERALD_CORRUPT_META ..." (a meta, record or cursor does not).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include "storage/redis/redis_cluster_client.h"

namespace herald::storage::redis_detail {

// A script's source and its SHA1 (as SCRIPT LOAD answers it).
struct Script {
  std::string_view name;
  std::string source;
  std::string sha1;  // filled at open by load_scripts()
};

// Every script of the stores.
struct Scripts {
  // One AppendBatch. ARGV: now_ms, unless key ('' = none), expiry_grace_ms, then the counts of
  // tombstones, entries, deletes, puts, acks, then each group in that order:
  //   tombstone: stream, seq, message_id    entry: stream, collapse_key, encoded entry
  //   delete: key                            put: key, pexpireat (0 = none), encoded record
  //   ack: device, stream, epoch, seq, acked_at_ms
  // Answers {1, stored record} when unless_record_exists hit (nothing written), else
  // {0, epoch, seq, collapsed_seq (per entry) ..., tombstoned 0/1 (per tombstone) ...}.
  Script append;
  // A read. ARGV: stream, epoch (0 = none), after_seq, max_entries, max_bytes, now_ms.
  // Answers {epoch, head, epoch_changed, truncated_before, more, first_seq, entry...}; the
  // entries have consecutive seqs from first_seq.
  Script read;
  // A page of a record prefix scan. ARGV: lower bound, upper bound (ZRANGEBYLEX syntax), limit,
  // now_ms, budget (index members examined at most). Drops index members whose record is gone.
  // Answers {next lower bound ('' = the range is exhausted), key, stored, key, stored, ...}.
  Script scan;
  // ARGV: app, device, now_ms. Answers 1 when the registration is new, 0 when it existed.
  Script register_device;
  // ARGV: app, device. Answers 1 when it was registered, 0 when not.
  Script unregister_device;
  // ARGV: device, stream, epoch, seq, acked_at_ms. Moves the cursor forward only within an
  // epoch. Answers 1 when written, 0 when the stored cursor stays.
  Script save_ack;

  Scripts();
  [[nodiscard]] std::vector<Script*> all() {
    return {&append, &read, &scan, &register_device, &unregister_device, &save_ack};
  }
};

// SCRIPT LOAD of every script on `master`, filling each sha1 (the same on every server).
[[nodiscard]] boost::system::error_code load_scripts(RedisClusterClient& client,
                                                     const RedisEndpoint& master, Scripts& scripts);

// EVALSHA command for `script` with KEYS[1] = `key`.
[[nodiscard]] RedisCommand evalsha(const Script& script, std::string_view key,
                                   std::vector<std::string> args);
// The same as EVAL, sending the source: for a server that answered NOSCRIPT.
[[nodiscard]] RedisCommand eval(const Script& script, RedisCommand evalsha_command);

[[nodiscard]] bool is_noscript(const RedisValue& reply);

// Runs `script` routed by `key`: EVALSHA, and EVAL when the server does not have it (a new or
// restarted master, a failover, SCRIPT FLUSH). An error reply comes back as an error code
// (reply_error); transport errors as the client's.
[[nodiscard]] boost::system::result<RedisValue> run_script(RedisClusterClient& client,
                                                           const Script& script,
                                                           std::string_view key,
                                                           std::vector<std::string> args);

// The error code for an error reply (logged with its text): kCorruptRecord, kCorruptMeta,
// kOutOfMemory (OOM), kErrorReply (anything else).
[[nodiscard]] boost::system::error_code reply_error(const RedisValue& reply);

}  // namespace herald::storage::redis_detail
