#include "logic/app_registry.h"

#include <gtest/gtest.h>

#include "logic/message_id.h"

namespace herald::logic {
namespace {

// The app a key opens, or "" when it opens none.
std::string opens(const AppRegistry& apps, std::string_view key, std::int64_t now_ms = 0) {
  const auto match = apps.authenticate(key, now_ms);
  return match ? match->app->id : "";
}

TEST(AppRegistry, AnyOfAnAppsKeysAuthenticatesIt) {
  AppRegistry apps({{"news", {"key-one-0123456789", "key-two-0123456789"}}});
  EXPECT_EQ(opens(apps, "key-one-0123456789"), "news");
  EXPECT_EQ(opens(apps, "key-two-0123456789"), "news");
  EXPECT_EQ(opens(apps, "key-three-01234567"), "");
  EXPECT_EQ(opens(apps, ""), "");
}

TEST(AppRegistry, EachKeyOpensOnlyItsOwnApp) {
  AppRegistry apps({{"news", {"news-key-0123456789"}}, {"chat", {"chat-key-0123456789"}}});
  EXPECT_EQ(opens(apps, "news-key-0123456789"), "news");
  EXPECT_EQ(opens(apps, "chat-key-0123456789"), "chat");
}

TEST(AppRegistry, OnlyTheHashOfAKeyIsKept) {
  AppRegistry apps(std::vector<AppConfig>{{"news", {"news-key-0123456789"}}});
  const ApiKey& key = apps.find("news")->keys.at(0);
  EXPECT_EQ(key.sha256, AppRegistry::sha256_hex("news-key-0123456789"));
  EXPECT_EQ(key.sha256.size(), 64u);
  EXPECT_EQ(key.id, key.sha256.substr(0, 16));
  EXPECT_EQ(key.prefix, "news-k");
}

TEST(AppRegistry, ARevokedKeyWorksUntilItsRevocationTimeOnly) {
  App app;
  app.id = "news";
  app.keys.push_back(AppRegistry::describe_key("news-key-0123456789", "", 0));
  app.keys.back().revoked_at_ms = 5'000;
  AppRegistry apps;
  apps.publish({app});
  EXPECT_EQ(opens(apps, "news-key-0123456789", 4'999), "news");
  EXPECT_EQ(opens(apps, "news-key-0123456789", 5'000), "");
}

TEST(AppRegistry, APublishedSnapshotReplacesTheOldOneWhole) {
  AppRegistry apps(std::vector<AppConfig>{{"news", {"news-key-0123456789"}}});
  const auto before = apps.find("news");
  App chat;
  chat.id = "chat";
  chat.keys.push_back(AppRegistry::describe_key("chat-key-0123456789", "", 0));
  apps.publish({chat});
  EXPECT_FALSE(apps.exists("news"));
  EXPECT_EQ(opens(apps, "news-key-0123456789"), "");
  EXPECT_EQ(opens(apps, "chat-key-0123456789"), "chat");
  EXPECT_EQ(before->id, "news");  // a reader's App stays alive and unchanged
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
