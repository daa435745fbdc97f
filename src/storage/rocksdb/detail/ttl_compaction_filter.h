// TtlCompactionFilter: drops stream entries whose expires_at_ms <= the current time while
// RocksDB compacts the stream_entries column family. Installed on that family only, so stream
// metas (epoch, head) are never dropped and a sequence number is never reused after expiry.
//
// The factory reads the clock once per compaction; RocksDB may run several compactions at once,
// each with its own filter. A record too short to carry an expiry is kept (reads report it as
// corrupt; a filter that guessed could hide the damage).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <rocksdb/compaction_filter.h>

namespace herald::storage::detail {

// Milliseconds since the Unix epoch.
using WallClock = std::function<std::int64_t()>;

[[nodiscard]] std::int64_t system_now_ms();

class TtlCompactionFilter final : public ::rocksdb::CompactionFilter {
 public:
  explicit TtlCompactionFilter(std::int64_t now_ms) : now_ms_(now_ms) {}

  bool Filter(int level, const ::rocksdb::Slice& key, const ::rocksdb::Slice& existing_value,
              std::string* new_value, bool* value_changed) const override;
  const char* Name() const override { return "herald.TtlCompactionFilter"; }

 private:
  std::int64_t now_ms_;
};

class TtlCompactionFilterFactory final : public ::rocksdb::CompactionFilterFactory {
 public:
  explicit TtlCompactionFilterFactory(WallClock clock = system_now_ms);

  std::unique_ptr<::rocksdb::CompactionFilter> CreateCompactionFilter(
      const ::rocksdb::CompactionFilter::Context& context) override;
  const char* Name() const override { return "herald.TtlCompactionFilterFactory"; }

 private:
  WallClock clock_;
};

}  // namespace herald::storage::detail
