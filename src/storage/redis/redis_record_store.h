// RedisRecordStore: the cluster mode's RecordStore, the read side of the records RedisStreamStore
// writes (AppendBatch::put_records, delete_records): one string key per record, holding its
// expiry and value, plus an index (a sorted set, every score 0, so ordered bytewise) of the
// record keys for prefix scans (detail/key_layout.h).
//
// Expiry: a record is live while now_ms (the caller's clock) < expires_at_ms; Redis drops it
// itself expiry_grace_ms later. A scan removes the index members of records that are gone.
//
// Reads run on the caller's thread with a pooled client. Thread-safe; the scripts and the pool
// must outlive the store.
#pragma once

#include "storage/record_store.h"
#include "storage/redis/detail/client_pool.h"
#include "storage/redis/detail/key_layout.h"
#include "storage/redis/detail/scripts.h"

namespace herald::storage {

class RedisRecordStore final : public RecordStore {
 public:
  RedisRecordStore(std::string_view keyspace, const redis_detail::Scripts& scripts,
                   redis_detail::ClientPool& pool);

  RedisRecordStore(const RedisRecordStore&) = delete;
  RedisRecordStore& operator=(const RedisRecordStore&) = delete;

  // Errors: kBadRecordKey (empty or longer than RedisStreamStore::kMaxRecordKeyBytes),
  // kCorruptMeta (a stored record failed to decode; logged), the client's errors.
  [[nodiscard]] boost::system::result<std::optional<Record>> get(std::string_view key,
                                                                 std::int64_t now_ms) override;

  // Any prefix and after_key are accepted (an empty prefix scans every record). Each script run
  // looks at no more than 1024 index members; a page that needs more takes several runs, each
  // atomic on its own (the contract's "one consistent snapshot per call" holds per run).
  // Errors: kCorruptMeta, the client's errors.
  [[nodiscard]] boost::system::result<std::vector<Record>> scan(std::string_view prefix,
                                                                std::string_view after_key,
                                                                std::size_t limit,
                                                                std::int64_t now_ms) override;

 private:
  const redis_detail::KeyLayout keys_;
  const redis_detail::Scripts& scripts_;
  redis_detail::ClientPool& pool_;
};

}  // namespace herald::storage
