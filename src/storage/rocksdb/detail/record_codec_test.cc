#include "storage/rocksdb/detail/record_codec.h"

#include <gtest/gtest.h>

#include "storage/rocksdb/detail/coding.h"

namespace herald::storage::detail {
namespace {

Entry sample_entry() {
  Entry entry;
  entry.app = "com.example";
  entry.message_id = "m-1";
  entry.kind = DataKind::kBinary;
  entry.data = std::string("\0payload\xff", 9);
  entry.sent_at_ms = 1'700'000'000'000;
  entry.expires_at_ms = 1'700'604'800'000;
  return entry;
}

TEST(RecordCodec, RoundTripsEveryFieldButTheSeq) {
  Entry entry = sample_entry();
  entry.seq = 42;
  auto decoded = decode_entry_record(encode_entry_record(entry));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->seq, 0u);
  EXPECT_EQ(decoded->app, entry.app);
  EXPECT_EQ(decoded->message_id, entry.message_id);
  EXPECT_EQ(decoded->kind, entry.kind);
  EXPECT_EQ(decoded->data, entry.data);
  EXPECT_EQ(decoded->sent_at_ms, entry.sent_at_ms);
  EXPECT_EQ(decoded->expires_at_ms, entry.expires_at_ms);
}

TEST(RecordCodec, RoundTripsAnAudienceAndReadsRecordsWithoutOne) {
  Entry entry = sample_entry();
  entry.audience = std::string("\x01\x07\x00", 3);
  auto decoded = decode_entry_record(encode_entry_record(entry));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->audience, entry.audience);
  EXPECT_EQ(decoded->data, entry.data);
  // Without one, the record is byte for byte what it was before the field existed.
  const std::string plain = encode_entry_record(sample_entry());
  EXPECT_EQ(encode_entry_record(entry).size(), plain.size() + 1 + entry.audience.size());
  ASSERT_TRUE(decode_entry_record(plain));
  EXPECT_TRUE(decode_entry_record(plain)->audience.empty());
}

TEST(RecordCodec, RejectsAnEmptyAudienceField) {
  std::string record = encode_entry_record(sample_entry());
  record.push_back('\0');  // a zero-length audience is never written
  EXPECT_FALSE(decode_entry_record(record));
}

TEST(RecordCodec, DropsTheAudienceFromATombstone) {
  Entry entry = sample_entry();
  entry.audience = "x";
  auto tombstone = decode_entry_record(encode_tombstone_record(entry));
  ASSERT_TRUE(tombstone);
  EXPECT_TRUE(tombstone->audience.empty());
}

TEST(RecordCodec, StoresExpiryBigEndianAtItsFixedOffset) {
  const std::string record = encode_entry_record(sample_entry());
  EXPECT_EQ(decode_fixed64(record.data() + kExpiresAtOffset),
            static_cast<std::uint64_t>(sample_entry().expires_at_ms));
  EXPECT_EQ(entry_record_expires_at_ms(record), sample_entry().expires_at_ms);
}

TEST(RecordCodec, RejectsEveryTruncation) {
  const std::string record = encode_entry_record(sample_entry());
  for (std::size_t size = 0; size < record.size(); ++size) {
    EXPECT_FALSE(decode_entry_record(std::string_view(record).substr(0, size))) << size;
  }
}

TEST(RecordCodec, RejectsTrailingBytes) {
  EXPECT_FALSE(decode_entry_record(encode_entry_record(sample_entry()) + "x"));
}

TEST(RecordCodec, RejectsAnUnknownVersion) {
  std::string record = encode_entry_record(sample_entry());
  record[0] = 2;
  EXPECT_FALSE(decode_entry_record(record));
  EXPECT_FALSE(entry_record_expires_at_ms(record));
}

TEST(RecordCodec, RejectsAnUnknownKind) {
  std::string record = encode_entry_record(sample_entry());
  record[17] = 7;
  EXPECT_FALSE(decode_entry_record(record));
}

TEST(RecordCodec, RoundTripsEveryKind) {
  for (auto kind : {DataKind::kJson, DataKind::kBinary, DataKind::kRecall}) {
    Entry entry = sample_entry();
    entry.kind = kind;
    EXPECT_EQ(decode_entry_record(encode_entry_record(entry))->kind, kind);
  }
}

TEST(RecordCodec, EncodesATombstoneThatKeepsIdentityAndExpiryButNoData) {
  const Entry replaced = sample_entry();
  auto tombstone = decode_entry_record(encode_tombstone_record(replaced));
  ASSERT_TRUE(tombstone);
  EXPECT_EQ(tombstone->kind, DataKind::kTombstone);
  EXPECT_EQ(tombstone->app, replaced.app);
  EXPECT_EQ(tombstone->message_id, replaced.message_id);
  EXPECT_EQ(tombstone->sent_at_ms, replaced.sent_at_ms);
  EXPECT_EQ(tombstone->expires_at_ms, replaced.expires_at_ms);
  EXPECT_TRUE(tombstone->data.empty());
}

TEST(RecordCodec, RejectsATombstoneThatCarriesData) {
  Entry entry = sample_entry();
  entry.kind = DataKind::kTombstone;
  EXPECT_FALSE(decode_entry_record(encode_entry_record(entry)));
}

TEST(RecordCodec, RejectsALengthPointingPastTheEnd) {
  std::string record = encode_entry_record(sample_entry());
  record[kEntryRecordFixedBytes] = 0x7f;  // app length 127
  EXPECT_FALSE(decode_entry_record(record));
}

TEST(RecordCodec, ReportsNoExpiryForARecordTooShortToHoldOne) {
  EXPECT_FALSE(entry_record_expires_at_ms(std::string("\x01\x00\x00", 3)));
}

}  // namespace
}  // namespace herald::storage::detail
