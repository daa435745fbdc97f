#include "storage/rocksdb/detail/key_codec.h"

#include <gtest/gtest.h>

#include "storage/rocksdb/detail/coding.h"

namespace herald::storage::detail {
namespace {

TEST(KeyCodec, OrdersEntryKeysOfAStreamBySeqNumerically) {
  EXPECT_LT(entry_key("s", 9), entry_key("s", 10));
  EXPECT_LT(entry_key("s", 255), entry_key("s", 256));
  EXPECT_LT(entry_key("s", 1), entry_key("s", std::uint64_t{1} << 40));
}

TEST(KeyCodec, KeepsAStreamsEntriesContiguousWhenAnotherKeyExtendsIt) {
  // "a" sorts entirely before or after "ab", never interleaved: the length comes first.
  const bool a_first = entry_key("a", ~std::uint64_t{0}) < entry_key("ab", 0);
  const bool ab_first = entry_key("ab", ~std::uint64_t{0}) < entry_key("a", 0);
  EXPECT_TRUE(a_first || ab_first);
}

TEST(KeyCodec, ReadsBackTheSeqOfAnEntryKey) {
  const std::string prefix = stream_prefix("i/dev");
  EXPECT_EQ(entry_key_seq(entry_key("i/dev", 77), prefix), 77u);
  EXPECT_FALSE(entry_key_seq(entry_key("i/dex", 77), prefix));
  EXPECT_FALSE(entry_key_seq(prefix + "123", prefix));
}

TEST(KeyCodec, SplitsAPairKeyAfterItsPrefix) {
  EXPECT_EQ(pair_key_second(pair_key("dev", "app"), pair_key_prefix("dev")), "app");
  EXPECT_FALSE(pair_key_second(pair_key("dev2", "app"), pair_key_prefix("dev")));
}

TEST(KeyCodec, ComputesThePrefixSuccessor) {
  EXPECT_EQ(prefix_successor("ab"), "ac");
  EXPECT_EQ(prefix_successor(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_successor(std::string("\xff\xff", 2)), "");
}

TEST(Coding, RoundTripsVarintsAtEveryWidth) {
  for (std::uint32_t value : {0u, 127u, 128u, 16'383u, 16'384u, 0xffffffffu}) {
    std::string buffer;
    put_varint32(buffer, value);
    std::string_view in = buffer;
    std::uint32_t decoded = 0;
    ASSERT_TRUE(get_varint32(in, decoded));
    EXPECT_EQ(decoded, value);
    EXPECT_TRUE(in.empty());
  }
}

TEST(Coding, RejectsAVarintLongerThanFiveBytesOrOverflowing) {
  std::string_view too_long("\x80\x80\x80\x80\x80\x01", 6);
  std::uint32_t value = 0;
  EXPECT_FALSE(get_varint32(too_long, value));
  std::string_view overflow("\xff\xff\xff\xff\x1f", 5);
  EXPECT_FALSE(get_varint32(overflow, value));
  std::string_view unfinished("\x80", 1);
  EXPECT_FALSE(get_varint32(unfinished, value));
}

}  // namespace
}  // namespace herald::storage::detail
