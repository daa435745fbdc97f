#include "storage/rocksdb/detail/ttl_compaction_filter.h"

#include <gtest/gtest.h>

#include "storage/rocksdb/detail/meta_codec.h"
#include "storage/rocksdb/detail/record_codec.h"
#include "storage/rocksdb/detail/record_value_codec.h"

namespace herald::storage::detail {
namespace {

bool drops(std::int64_t now_ms, const std::string& value) {
  TtlCompactionFilter filter(now_ms);
  std::string new_value;
  bool changed = false;
  return filter.Filter(0, "key", value, &new_value, &changed);
}

std::string record_expiring_at(std::int64_t expires_at_ms) {
  Entry entry;
  entry.expires_at_ms = expires_at_ms;
  return encode_entry_record(entry);
}

TEST(TtlCompactionFilter, DropsAnEntryExpiringAtOrBeforeNow) {
  EXPECT_TRUE(drops(1'000, record_expiring_at(1'000)));
  EXPECT_TRUE(drops(1'000, record_expiring_at(999)));
}

TEST(TtlCompactionFilter, KeepsAnEntryExpiringAfterNow) {
  EXPECT_FALSE(drops(1'000, record_expiring_at(1'001)));
}

TEST(TtlCompactionFilter, KeepsARecordItCannotRead) {
  EXPECT_FALSE(drops(1'000, "\x01short"));
  EXPECT_FALSE(drops(1'000, ""));
}

TEST(TtlCompactionFilter, DropsAnExpiredRecordButNeverOneWithoutExpiry) {
  auto drops_record = [](std::int64_t now_ms, const std::string& value) {
    TtlCompactionFilter filter(now_ms, record_value_drop_at_ms);
    std::string new_value;
    bool changed = false;
    return filter.Filter(0, "key", value, &new_value, &changed);
  };
  EXPECT_TRUE(drops_record(1'000, encode_record_value(1'000, "v")));
  EXPECT_FALSE(drops_record(1'000, encode_record_value(1'001, "v")));
  EXPECT_FALSE(drops_record(1'000, encode_record_value(0, "v")));
}

TEST(TtlCompactionFilter, DropsACollapsePointerWithItsEntry) {
  TtlCompactionFilter filter(1'000, collapse_pointer_expires_at_ms);
  std::string new_value;
  bool changed = false;
  EXPECT_TRUE(
      filter.Filter(0, "k", encode_collapse_pointer({1, "m", 1'000}), &new_value, &changed));
  EXPECT_FALSE(
      filter.Filter(0, "k", encode_collapse_pointer({1, "m", 1'001}), &new_value, &changed));
}

TEST(TtlCompactionFilterFactory, ReadsTheClockForEachCompaction) {
  std::int64_t now = 1'000;
  TtlCompactionFilterFactory factory([&now] { return now; });
  ::rocksdb::CompactionFilter::Context context{};
  const std::string value = record_expiring_at(1'500);
  std::string new_value;
  bool changed = false;
  EXPECT_FALSE(
      factory.CreateCompactionFilter(context)->Filter(0, "k", value, &new_value, &changed));
  now = 2'000;
  EXPECT_TRUE(factory.CreateCompactionFilter(context)->Filter(0, "k", value, &new_value, &changed));
}

}  // namespace
}  // namespace herald::storage::detail
