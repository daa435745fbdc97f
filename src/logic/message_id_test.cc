#include "logic/message_id.h"

#include <charconv>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace herald::logic {
namespace {

std::uint64_t value_of(const std::string& id) {
  std::uint64_t value = 0;
  std::from_chars(id.data(), id.data() + id.size(), value, 16);
  return value;
}

TEST(MessageIdGenerator, IdsAreSixteenHexDigitsAndIncreaseWithinAMillisecond) {
  MessageIdGenerator ids;
  std::string previous = ids.next(1'700'000'000'000);
  EXPECT_EQ(previous.size(), 16U);
  EXPECT_EQ(value_of(previous) >> 20, 1'700'000'000'000U);
  for (int i = 0; i < 5000; ++i) {  // past 1,023 in one ms: borrows the next milliseconds
    const auto id = ids.next(1'700'000'000'000);
    EXPECT_GT(id, previous);  // fixed width hex: text order is numeric order
    previous = id;
  }
  EXPECT_GT(ids.next(1'700'000'000'010), previous);
}

TEST(MessageIdGenerator, NodesSharingAStorageNeverDrawTheSameId) {
  MessageIdGenerator a(1);
  MessageIdGenerator b(2);
  std::set<std::string> seen;
  for (int i = 0; i < 3000; ++i) {
    EXPECT_TRUE(seen.insert(a.next(1'700'000'000'000)).second);
    EXPECT_TRUE(seen.insert(b.next(1'700'000'000'000)).second);
  }
  EXPECT_EQ(value_of(a.next(1'800'000'000'000)) & (MessageIdGenerator::kMaxNodes - 1), 1U);
  EXPECT_EQ(value_of(b.next(1'800'000'000'000)) & (MessageIdGenerator::kMaxNodes - 1), 2U);
}

}  // namespace
}  // namespace herald::logic
