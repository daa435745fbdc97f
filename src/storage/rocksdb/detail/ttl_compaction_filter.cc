#include "storage/rocksdb/detail/ttl_compaction_filter.h"

#include <chrono>
#include <string_view>

namespace herald::storage::detail {

std::int64_t system_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool TtlCompactionFilter::Filter(int /*level*/, const ::rocksdb::Slice& /*key*/,
                                 const ::rocksdb::Slice& existing_value, std::string* /*new_value*/,
                                 bool* /*value_changed*/) const {
  const auto expires_at_ms =
      expiry_of_(std::string_view(existing_value.data(), existing_value.size()));
  return expires_at_ms && *expires_at_ms <= now_ms_;
}

TtlCompactionFilterFactory::TtlCompactionFilterFactory(WallClock clock, ExpiryOf expiry_of)
    : clock_(std::move(clock)), expiry_of_(expiry_of) {}

std::unique_ptr<::rocksdb::CompactionFilter> TtlCompactionFilterFactory::CreateCompactionFilter(
    const ::rocksdb::CompactionFilter::Context& /*context*/) {
  return std::make_unique<TtlCompactionFilter>(clock_(), expiry_of_);
}

}  // namespace herald::storage::detail
