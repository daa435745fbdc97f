#include "storage/rocksdb/detail/meta_codec.h"

#include <gtest/gtest.h>

namespace herald::storage::detail {
namespace {

TEST(MetaCodec, RoundTripsAStreamMeta) {
  const StreamMeta meta{.stream_epoch32 = 0xdeadbeef, .head_seq = 1'000'000'007};
  EXPECT_EQ(decode_stream_meta(encode_stream_meta(meta)), meta);
}

TEST(MetaCodec, RejectsAStreamMetaWithEpochZero) {
  EXPECT_FALSE(decode_stream_meta(encode_stream_meta({.stream_epoch32 = 0, .head_seq = 3})));
}

TEST(MetaCodec, RejectsAStreamMetaOfTheWrongLength) {
  const std::string value = encode_stream_meta({.stream_epoch32 = 1, .head_seq = 3});
  EXPECT_FALSE(decode_stream_meta(value.substr(0, value.size() - 1)));
  EXPECT_FALSE(decode_stream_meta(value + "x"));
}

TEST(MetaCodec, PutsTheGenerationInTheHighHalfOfTheEpoch) {
  EXPECT_EQ(effective_epoch(2, 5), (std::uint64_t{2} << 32) | 5u);
}

TEST(MetaCodec, RoundTripsTheDatabaseState) {
  const DatabaseState state{.generation = 7,
                            .running = true,
                            .fast_run = true,
                            .boot_id = "79427ddd-f7c6-40dd-aff8-28793d61439f"};
  auto decoded = decode_database_state(encode_database_state(state));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->generation, 7u);
  EXPECT_TRUE(decoded->running);
  EXPECT_TRUE(decoded->fast_run);
  EXPECT_EQ(decoded->boot_id, state.boot_id);
}

TEST(MetaCodec, RejectsADatabaseStateWithUnknownFlags) {
  std::string value = encode_database_state({.generation = 1});
  value[5] = 0x10;
  EXPECT_FALSE(decode_database_state(value));
}

TEST(MetaCodec, RoundTripsAnAckedCursor) {
  auto decoded = decode_acked_cursor(encode_acked_cursor({.epoch = 3, .seq = 4, .acked_at_ms = 5}));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->epoch, 3u);
  EXPECT_EQ(decoded->seq, 4u);
  EXPECT_EQ(decoded->acked_at_ms, 5);
}

TEST(MetaCodec, RoundTripsARegistrationTime) {
  EXPECT_EQ(decode_registration(encode_registration(1'234)), 1'234);
  EXPECT_FALSE(decode_registration("\x01"));
}

TEST(MetaCodec, RoundTripsACollapsePointer) {
  const CollapsePointer pointer{42, "01HX-7", 1'700'000'000'000};
  EXPECT_EQ(decode_collapse_pointer(encode_collapse_pointer(pointer)), pointer);
  EXPECT_EQ(collapse_pointer_expires_at_ms(encode_collapse_pointer(pointer)), 1'700'000'000'000);
}

TEST(MetaCodec, RejectsEveryTruncationOfACollapsePointerAndTrailingBytes) {
  const std::string value = encode_collapse_pointer({7, "m", 5});
  for (std::size_t size = 0; size < value.size(); ++size) {
    EXPECT_FALSE(decode_collapse_pointer(std::string_view(value).substr(0, size))) << size;
  }
  EXPECT_FALSE(decode_collapse_pointer(value + "x"));
  EXPECT_FALSE(collapse_pointer_expires_at_ms("\x01short"));
}

}  // namespace
}  // namespace herald::storage::detail
