#include "storage/rocksdb/detail/head_cache.h"

#include <gtest/gtest.h>

namespace herald::storage::detail {
namespace {

TEST(HeadCache, ReturnsWhatWasPut) {
  HeadCache cache(4);
  cache.put("s", {.stream_epoch32 = 7, .head_seq = 3});
  ASSERT_NE(cache.find("s"), nullptr);
  EXPECT_EQ(cache.find("s")->head_seq, 3u);
  EXPECT_EQ(cache.find("t"), nullptr);
}

TEST(HeadCache, EvictsTheLeastRecentlyUsedBeyondCapacity) {
  HeadCache cache(2);
  cache.put("a", {.stream_epoch32 = 1, .head_seq = 1});
  cache.put("b", {.stream_epoch32 = 1, .head_seq = 2});
  ASSERT_NE(cache.find("a"), nullptr);  // "b" is now the least recently used
  cache.put("c", {.stream_epoch32 = 1, .head_seq = 3});
  EXPECT_NE(cache.find("a"), nullptr);
  EXPECT_EQ(cache.find("b"), nullptr);
  EXPECT_NE(cache.find("c"), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(HeadCache, ReplacesAnExistingValueInPlace) {
  HeadCache cache(2);
  cache.put("a", {.stream_epoch32 = 1, .head_seq = 1});
  cache.put("a", {.stream_epoch32 = 1, .head_seq = 9});
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.find("a")->head_seq, 9u);
}

TEST(HeadCache, ForgetsAnErasedStream) {
  HeadCache cache(2);
  cache.put("a", {.stream_epoch32 = 1, .head_seq = 1});
  cache.erase("a");
  EXPECT_EQ(cache.find("a"), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

TEST(HeadCache, CachesNothingWithCapacityZero) {
  HeadCache cache(0);
  cache.put("a", {.stream_epoch32 = 1, .head_seq = 1});
  EXPECT_EQ(cache.find("a"), nullptr);
}

}  // namespace
}  // namespace herald::storage::detail
