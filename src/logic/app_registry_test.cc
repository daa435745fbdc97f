#include "logic/app_registry.h"

#include <gtest/gtest.h>

#include "logic/message_id.h"

namespace herald::logic {
namespace {

TEST(AppRegistry, AnyOfAnAppsKeysAuthenticatesIt) {
  AppRegistry apps({{"news", {"key-one-0123456789", "key-two-0123456789"}}});
  EXPECT_TRUE(apps.authenticate("news", "key-one-0123456789"));
  EXPECT_TRUE(apps.authenticate("news", "key-two-0123456789"));
  EXPECT_FALSE(apps.authenticate("news", "key-three-01234567"));
  EXPECT_FALSE(apps.authenticate("news", ""));
}

TEST(AppRegistry, AKeyOfAnotherAppDoesNotAuthenticate) {
  AppRegistry apps({{"news", {"news-key-0123456789"}}, {"chat", {"chat-key-0123456789"}}});
  EXPECT_FALSE(apps.authenticate("chat", "news-key-0123456789"));
  EXPECT_FALSE(apps.authenticate("ghost", "news-key-0123456789"));
}

TEST(AppRegistry, DuplicateOrInvalidIdsAreRejected) {
  EXPECT_THROW(AppRegistry(std::vector<AppConfig>{{"a", {"k"}}, {"a", {"k"}}}),
               std::invalid_argument);
  EXPECT_THROW(AppRegistry(std::vector<AppConfig>{{"Upper", {"k"}}}), std::invalid_argument);
}

TEST(MessageId, IdsAreUniqueAndIncreasingEvenWithinOneMillisecond) {
  MessageIdGenerator ids;
  std::string last = ids.next(1000);
  for (int i = 0; i < 10000; ++i) {
    const std::string id = ids.next(1000);
    ASSERT_GT(id, last);  // fixed-width hex: string order is numeric order
    last = id;
  }
  EXPECT_GT(ids.next(999), last);  // a clock step back does not repeat an id
}

}  // namespace
}  // namespace herald::logic
