#include "storage/rocksdb/detail/record_value_codec.h"

#include <gtest/gtest.h>

#include "storage/rocksdb/detail/coding.h"

namespace herald::storage::detail {
namespace {

TEST(RecordValueCodec, RoundTripsTheValueAndExpiry) {
  const std::string value("bytes\0\xff", 7);
  auto decoded = decode_record_value("key", encode_record_value(1'700'000'000'000, value));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, (Record{"key", value, 1'700'000'000'000}));
}

TEST(RecordValueCodec, RoundTripsAnEmptyValue) {
  auto decoded = decode_record_value("k", encode_record_value(0, ""));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->value, "");
  EXPECT_EQ(decoded->expires_at_ms, 0);
}

TEST(RecordValueCodec, StoresExpiryBigEndianAtOffsetOne) {
  const std::string stored = encode_record_value(0x0102030405060708, "v");
  EXPECT_EQ(stored.size(), kRecordValueHeaderBytes + 1);
  EXPECT_EQ(decode_fixed64(stored.data() + 1), 0x0102030405060708u);
}

TEST(RecordValueCodec, RejectsAShortValueOrAnUnknownVersion) {
  const std::string stored = encode_record_value(5, "v");
  for (std::size_t size = 0; size < kRecordValueHeaderBytes; ++size) {
    EXPECT_FALSE(decode_record_value("k", std::string_view(stored).substr(0, size))) << size;
  }
  std::string unknown = stored;
  unknown[0] = 2;
  EXPECT_FALSE(decode_record_value("k", unknown));
  EXPECT_FALSE(record_value_drop_at_ms(unknown));
}

TEST(RecordValueCodec, NeverDropsARecordWithoutExpiry) {
  EXPECT_FALSE(record_value_drop_at_ms(encode_record_value(0, "v")));
  EXPECT_EQ(record_value_drop_at_ms(encode_record_value(1'000, "v")), 1'000);
  EXPECT_FALSE(record_value_drop_at_ms("\x01short"));
}

}  // namespace
}  // namespace herald::storage::detail
