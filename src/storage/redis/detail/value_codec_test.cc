#include "storage/redis/detail/value_codec.h"

#include <gtest/gtest.h>

namespace herald::storage::redis_detail {
namespace {

Entry sample() {
  Entry entry;
  entry.app = "app";
  entry.message_id = "m1";
  entry.kind = DataKind::kBinary;
  entry.data = std::string("b\0y\xfft", 5);
  entry.sent_at_ms = -5;
  entry.expires_at_ms = 4'000'000'000'000;
  entry.audience = "topic/x";
  return entry;
}

TEST(RedisValueCodec, RoundTripsEveryFieldOfAnEntry) {
  const Entry entry = sample();
  const auto decoded = decode_entry(encode_entry(entry, "collapse"));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->app, entry.app);
  EXPECT_EQ(decoded->message_id, entry.message_id);
  EXPECT_EQ(decoded->kind, entry.kind);
  EXPECT_EQ(decoded->data, entry.data);
  EXPECT_EQ(decoded->sent_at_ms, entry.sent_at_ms);
  EXPECT_EQ(decoded->expires_at_ms, entry.expires_at_ms);
  EXPECT_EQ(decoded->audience, entry.audience);
  EXPECT_EQ(decoded->seq, 0U);
}

TEST(RedisValueCodec, RefusesEveryTruncationOfAnEntryAndATrailingByte) {
  const std::string value = encode_entry(sample(), "ck");
  for (std::size_t n = 0; n < value.size(); ++n) {
    EXPECT_FALSE(decode_entry(std::string_view(value).substr(0, n))) << n;
  }
  EXPECT_FALSE(decode_entry(value + "x"));
}

TEST(RedisValueCodec, RefusesAnUnknownVersionOrKindAndATombstoneWithData) {
  std::string value = encode_entry(sample(), "");
  value[0] = 2;
  EXPECT_FALSE(decode_entry(value));
  value = encode_entry(sample(), "");
  value[1] = 4;
  EXPECT_FALSE(decode_entry(value));
  Entry tombstone = sample();
  tombstone.kind = DataKind::kTombstone;
  EXPECT_FALSE(decode_entry(encode_entry(tombstone, "")));
  tombstone.data.clear();
  tombstone.audience.clear();
  EXPECT_TRUE(decode_entry(encode_entry(tombstone, "")));
}

TEST(RedisValueCodec, RefusesALengthRunningPastTheEnd) {
  std::string value = encode_entry(sample(), "");
  value[kEntryHeaderBytes] = '\x7f';  // app length far beyond the value
  EXPECT_FALSE(decode_entry(value));
}

TEST(RedisValueCodec, RoundTripsARecordAndRefusesAShortOne) {
  const auto record = decode_record("k", encode_record(-1, std::string("v\0", 2)));
  ASSERT_TRUE(record);
  EXPECT_EQ(*record, (Record{"k", std::string("v\0", 2), -1}));
  EXPECT_TRUE(decode_record("k", encode_record(0, "")));
  EXPECT_FALSE(decode_record("k", encode_record(0, "").substr(0, 8)));
  EXPECT_FALSE(decode_record("k", "\x02" + encode_record(0, "").substr(1)));
}

TEST(RedisValueCodec, RoundTripsACursorAndRefusesMalformedText) {
  const AckedCursor cursor{18'446'744'073'709'551'615ULL, 7, -3};
  const auto decoded = decode_cursor(encode_cursor(cursor));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->epoch, cursor.epoch);
  EXPECT_EQ(decoded->seq, cursor.seq);
  EXPECT_EQ(decoded->acked_at_ms, cursor.acked_at_ms);
  for (const char* bad :
       {"", "1 2", "1 2 3 4", "01 2 3", "1  2 3", "-1 2 3", "1 2 x", "18446744073709551616 1 1"}) {
    EXPECT_FALSE(decode_cursor(bad)) << bad;
  }
}

}  // namespace
}  // namespace herald::storage::redis_detail
