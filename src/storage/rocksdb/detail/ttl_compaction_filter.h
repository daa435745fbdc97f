// TtlCompactionFilter: drops stored values whose expiry has passed while RocksDB compacts a column
// family: entries of stream_entries, records of records, pointers of collapse_keys. Each family
// says how to find a value's expiry (an ExpiryOf). Never installed on stream_meta, so stream
// metas (epoch, head) are never dropped and a sequence number is never reused after expiry.
//
// The factory reads the clock once per compaction; RocksDB may run several compactions at once,
// each with its own filter. A value whose expiry cannot be read is kept (reads report it as
// corrupt; a filter that guessed could hide the damage).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

#include <rocksdb/compaction_filter.h>

#include "storage/rocksdb/detail/record_codec.h"

namespace herald::storage::detail {

// Milliseconds since the Unix epoch.
using WallClock = std::function<std::int64_t()>;

// The time at and after which a stored value may be dropped; nullopt: keep it (it never expires,
// or it cannot be read).
using ExpiryOf = std::optional<std::int64_t> (*)(std::string_view value);

[[nodiscard]] std::int64_t system_now_ms();

class TtlCompactionFilter final : public ::rocksdb::CompactionFilter {
 public:
  explicit TtlCompactionFilter(std::int64_t now_ms, ExpiryOf expiry_of = entry_record_expires_at_ms)
      : now_ms_(now_ms), expiry_of_(expiry_of) {}

  bool Filter(int level, const ::rocksdb::Slice& key, const ::rocksdb::Slice& existing_value,
              std::string* new_value, bool* value_changed) const override;
  const char* Name() const override { return "herald.TtlCompactionFilter"; }

 private:
  std::int64_t now_ms_;
  ExpiryOf expiry_of_;
};

class TtlCompactionFilterFactory final : public ::rocksdb::CompactionFilterFactory {
 public:
  explicit TtlCompactionFilterFactory(WallClock clock = system_now_ms,
                                      ExpiryOf expiry_of = entry_record_expires_at_ms);

  std::unique_ptr<::rocksdb::CompactionFilter> CreateCompactionFilter(
      const ::rocksdb::CompactionFilter::Context& context) override;
  const char* Name() const override { return "herald.TtlCompactionFilterFactory"; }

 private:
  WallClock clock_;
  ExpiryOf expiry_of_;
};

}  // namespace herald::storage::detail
