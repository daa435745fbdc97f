// RecordStore: a small durable key-value store for the control plane (apps, aliases, idempotency
// keys, scheduled sends, message status), next to the streams so that a record can be written in
// the same atomic write as the entries it describes. Part of the storage layer's contract;
// `rocksdb/` and `redis/` implement it.
//
// This interface only reads. Records are written through StreamStore::async_append(AppendBatch)
// (put_records, delete_records), so that their writes are ordered with appends, atomic with
// them, and can be made conditional (unless_record_exists).
//
// Keys are opaque bytes ordered bytewise; the logic layer namespaces them by prefix
// ("app/<id>", "idem/<app>/<key>", ...). Every record carries an expiry:
//   - expires_at_ms == 0: never expires.
//   - otherwise the record is live while now_ms < expires_at_ms; an expired record is never
//     returned, and is dropped from the disk at some later point.
// (Stream entries use no "never" value: their expires_at_ms == 0 means already expired.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/system/result.hpp>

namespace herald::storage {

struct Record {
  std::string key;
  std::string value;
  std::int64_t expires_at_ms = 0;  // 0 = never expires

  // Live at now_ms: never expires, or expires strictly after now_ms.
  [[nodiscard]] bool live_at(std::int64_t now_ms) const {
    return expires_at_ms == 0 || expires_at_ms > now_ms;
  }

  friend bool operator==(const Record&, const Record&) = default;
};

class RecordStore {
 public:
  virtual ~RecordStore() = default;

  // The live record under `key` at now_ms; nullopt when there is none (never written, deleted or
  // expired). Errors: a bad key (empty or too long for the implementation), a corrupt stored
  // record, engine errors. Thread-safe; runs on the caller's thread.
  [[nodiscard]] virtual boost::system::result<std::optional<Record>> get(std::string_view key,
                                                                         std::int64_t now_ms) = 0;

  // Live records whose key starts with `prefix`, in key order, with keys after `after_key`
  // (exclusive; empty = from the start of the prefix), at most `limit` of them (0 returns none).
  // Page through a prefix by passing the last key returned as the next after_key; a short page
  // (fewer than limit) is the end. One consistent snapshot per call, not across pages.
  // Thread-safe; runs on the caller's thread.
  [[nodiscard]] virtual boost::system::result<std::vector<Record>> scan(std::string_view prefix,
                                                                        std::string_view after_key,
                                                                        std::size_t limit,
                                                                        std::int64_t now_ms) = 0;
};

}  // namespace herald::storage
