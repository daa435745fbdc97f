// RocksDbRecordStore: the embedded RecordStore, the read side of the records column family of a
// RocksDbDatabase (layout in docs/storage.md). Records are written by RocksDbStreamStore's
// writer (AppendBatch::put_records, delete_records), so that record writes are ordered and
// atomic with appends; this class only reads.
//
// Reads run on the caller's thread. An expired record (expires_at_ms != 0 and <= now_ms) is
// skipped at once and dropped from disk by the TTL compaction filter later.
//
// Thread-safe. The database must outlive the store.
#pragma once

#include <cstddef>

#include "storage/record_store.h"

namespace herald::storage {

class RocksDbDatabase;

class RocksDbRecordStore final : public RecordStore {
 public:
  // Record keys are 1 to kMaxRecordKeyBytes bytes (others are refused with kBadRecordKey),
  // values at most kMaxRecordValueBytes (kRecordTooLarge): records are control-plane state,
  // small and many; payloads belong in stream entries.
  static constexpr std::size_t kMaxRecordKeyBytes = 1024;
  static constexpr std::size_t kMaxRecordValueBytes = 1024 * 1024;

  explicit RocksDbRecordStore(RocksDbDatabase& database);

  RocksDbRecordStore(const RocksDbRecordStore&) = delete;
  RocksDbRecordStore& operator=(const RocksDbRecordStore&) = delete;

  // Errors: kBadRecordKey, kCorruptMeta (a stored record failed to decode; logged), engine
  // errors.
  [[nodiscard]] boost::system::result<std::optional<Record>> get(std::string_view key,
                                                                 std::int64_t now_ms) override;

  // Any prefix and after_key are accepted (an empty prefix scans every record). Expired records
  // are stepped over, so a scan over many expired, not yet compacted records costs their reads.
  // Errors: kCorruptMeta, engine errors.
  [[nodiscard]] boost::system::result<std::vector<Record>> scan(std::string_view prefix,
                                                                std::string_view after_key,
                                                                std::size_t limit,
                                                                std::int64_t now_ms) override;

 private:
  RocksDbDatabase& database_;
};

}  // namespace herald::storage
