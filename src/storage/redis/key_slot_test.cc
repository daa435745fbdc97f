#include "storage/redis/key_slot.h"

#include <gtest/gtest.h>

namespace herald::storage {
namespace {

// Vectors from the cluster specification and from `CLUSTER KEYSLOT` of redis-server 7.0.
TEST(KeySlot, MatchesTheClusterSpecification) {
  EXPECT_EQ(key_slot("123456789"), 0x31C3 % kClusterSlots);  // the spec's CRC16 check value
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("bar"), 5061);
  EXPECT_EQ(key_slot(""), 0);
}

TEST(KeySlot, HashesOnlyTheTagWhenThereIsOne) {
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("{user1000}.followers"), key_slot("{user1000}.following"));
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));  // the first tag only
}

TEST(KeySlot, HashesTheWholeKeyWhenTheTagIsEmptyOrUnclosed) {
  EXPECT_EQ(key_slot("foo{}{bar}"), 8363);
  EXPECT_NE(key_slot("foo{}{bar}"), key_slot("bar"));
  EXPECT_EQ(key_slot("foo{bar"), 15278);
}

}  // namespace
}  // namespace herald::storage
