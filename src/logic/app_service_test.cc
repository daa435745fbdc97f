// AppService against the real RocksDB storage in a temporary directory.
#include "logic/app_service.h"

#include <memory>
#include <optional>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "common/run_to_completion.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::logic {
namespace {

namespace asio = boost::asio;

class AppServiceTest : public ::testing::Test {
 protected:
  AppServiceTest() { open(); }

  // (Re)opens the storage and a fresh service over it, as a restarted heraldd would.
  void open(std::vector<AppConfig> configured = {}) {
    service_.reset();
    storage_.reset();
    storage::RocksDbOptions options;
    options.path = dir_.db_path();
    storage_ = std::move(storage::RocksDbStorage::open(options).value());
    registry_ = std::make_unique<AppRegistry>();
    limiter_ = std::make_unique<RateLimiter>([this] { return now_ms_; });
    service_ =
        std::make_unique<AppService>(io_.get_executor(), storage_->streams(), storage_->records(),
                                     *registry_, *limiter_, [this] { return now_ms_; });
    ASSERT_TRUE(run(service_->async_load(std::move(configured))));
  }

  // Runs one coroutine of the service to completion.
  template <class T>
  T run(asio::awaitable<T> op) {
    return run_to_completion(io_, std::move(op));
  }

  std::string opens(const std::string& key) {
    const auto match = registry_->authenticate(key, now_ms_);
    return match ? match->app->id : "";
  }

  std::int64_t now_ms_ = 1'700'000'000'000;
  storage::testing::TempDir dir_;
  asio::io_context io_;
  std::unique_ptr<storage::RocksDbStorage> storage_;
  std::unique_ptr<AppRegistry> registry_;
  std::unique_ptr<RateLimiter> limiter_;
  std::unique_ptr<AppService> service_;
};

TEST_F(AppServiceTest, ACreatedAppHasAWorkingKeyThatSurvivesARestart) {
  auto created = run(service_->async_create("news", {}));
  ASSERT_TRUE(created) << created.error().message();
  const std::string secret = created->second.secret;
  EXPECT_TRUE(secret.starts_with("hk_"));
  EXPECT_EQ(opens(secret), "news");
  EXPECT_EQ(created->first.keys.size(), 1u);
  EXPECT_EQ(created->first.keys[0].sha256, AppRegistry::sha256_hex(secret));

  open();
  EXPECT_EQ(opens(secret), "news");
  EXPECT_EQ(registry_->find("news")->created_at_ms, now_ms_);
}

TEST_F(AppServiceTest, CreatingAnAppThatExistsIsAConflictAndChangesNothing) {
  auto first = run(service_->async_create("news", {}));
  ASSERT_TRUE(first);
  auto second = run(service_->async_create("news", {}));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error(), LogicError::kAppExists);
  EXPECT_EQ(opens(first->second.secret), "news");
  EXPECT_EQ(registry_->find("news")->keys.size(), 1u);
}

TEST_F(AppServiceTest, AnInvalidIdIsABadRequest) {
  auto created = run(service_->async_create("Not Valid", {}));
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error(), LogicError::kBadRequest);
  EXPECT_TRUE(registry_->apps().empty());
}

TEST_F(AppServiceTest, RotationKeepsBothKeysWorkingUntilTheOldOneIsRevoked) {
  auto created = run(service_->async_create("news", {}));
  ASSERT_TRUE(created);
  const auto old_key = created->second;
  auto added = run(service_->async_add_key("news", "rotation 2026-12"));
  ASSERT_TRUE(added);
  EXPECT_EQ(opens(old_key.secret), "news");
  EXPECT_EQ(opens(added->secret), "news");

  auto revoked = run(service_->async_revoke_key("news", old_key.info.id, 60));
  ASSERT_TRUE(revoked);
  EXPECT_EQ(revoked->revoked_at_ms, now_ms_ + 60'000);
  EXPECT_EQ(opens(old_key.secret), "news");  // the grace period
  now_ms_ += 60'000;
  EXPECT_EQ(opens(old_key.secret), "");
  EXPECT_EQ(opens(added->secret), "news");

  open();  // the revocation is stored
  EXPECT_EQ(opens(old_key.secret), "");
  EXPECT_EQ(opens(added->secret), "news");
}

TEST_F(AppServiceTest, RevokingTheLastWorkingKeyIsRefused) {
  auto created = run(service_->async_create("news", {}));
  ASSERT_TRUE(created);
  auto revoked = run(service_->async_revoke_key("news", created->second.info.id, 0));
  ASSERT_FALSE(revoked);
  EXPECT_EQ(revoked.error(), LogicError::kLastKey);
  EXPECT_EQ(opens(created->second.secret), "news");
}

TEST_F(AppServiceTest, AnAppHoldsAtMostSixteenWorkingKeysAndARevokedOneFreesItsSlot) {
  auto created = run(service_->async_create("news", {}));
  ASSERT_TRUE(created);
  std::vector<NewApiKey> keys = {created->second};
  while (keys.size() < AppService::kMaxKeysPerApp) {
    auto added = run(service_->async_add_key("news", ""));
    ASSERT_TRUE(added) << added.error().message();
    keys.push_back(*added);
  }
  auto refused = run(service_->async_add_key("news", ""));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), LogicError::kTooManyKeys);
  EXPECT_EQ(registry_->find("news")->keys.size(), AppService::kMaxKeysPerApp);

  // A key revoked with a grace period holds its slot until it stops working.
  ASSERT_TRUE(run(service_->async_revoke_key("news", keys[0].info.id, 60)));
  EXPECT_EQ(run(service_->async_add_key("news", "")).error(), LogicError::kTooManyKeys);
  now_ms_ += 60'000;
  EXPECT_TRUE(run(service_->async_add_key("news", "")));
}

TEST_F(AppServiceTest, UnknownAppsAndKeysAreNamedAsSuch) {
  EXPECT_EQ(run(service_->async_add_key("ghost", "")).error(), LogicError::kUnknownApp);
  EXPECT_EQ(run(service_->async_update("ghost", {})).error(), LogicError::kUnknownApp);
  ASSERT_TRUE(run(service_->async_create("news", {})));
  EXPECT_EQ(run(service_->async_revoke_key("news", "0123456789abcdef", 0)).error(),
            LogicError::kUnknownKey);
}

TEST_F(AppServiceTest, SettingsArePublishedAndStored) {
  ASSERT_TRUE(run(service_->async_create("news", {})));
  AppSettings settings;
  settings.disabled = true;
  settings.limits = AppRateLimits{{5, 5}, {100, 0}};
  settings.webhook_url = std::optional<std::string>("http://127.0.0.1:9/hook");
  auto updated = run(service_->async_update("news", settings));
  ASSERT_TRUE(updated);
  ASSERT_TRUE(updated->webhook);
  EXPECT_EQ(updated->webhook->secret.size(), 64u);              // generated with the webhook
  EXPECT_TRUE(limiter_->try_acquire("news", 101).has_value());  // the limiter follows

  open();
  const auto app = registry_->find("news");
  ASSERT_TRUE(app);
  EXPECT_TRUE(app->disabled);
  EXPECT_EQ(app->limits, (AppRateLimits{{5, 5}, {100, 0}}));
  EXPECT_EQ(app->webhook, updated->webhook);
  EXPECT_TRUE(limiter_->try_acquire("news", 101).has_value());
}

TEST_F(AppServiceTest, AWebhookMustBePlainHttp) {
  ASSERT_TRUE(run(service_->async_create("news", {})));
  AppSettings settings;
  settings.webhook_url = std::optional<std::string>("ftp://example/hook");
  EXPECT_EQ(run(service_->async_update("news", settings)).error(), LogicError::kBadRequest);
  EXPECT_FALSE(registry_->find("news")->webhook);
}

TEST_F(AppServiceTest, ConfiguredAppsAreCreatedOnceAndARevokedConfiguredKeyStaysRevoked) {
  const std::vector<AppConfig> config{{"news", {"news-key-0123456789"}}};
  open(config);
  EXPECT_EQ(opens("news-key-0123456789"), "news");
  auto added = run(service_->async_add_key("news", ""));
  ASSERT_TRUE(added);
  const auto configured_id = AppRegistry::describe_key("news-key-0123456789", "", 0).id;
  ASSERT_TRUE(run(service_->async_revoke_key("news", configured_id, 0)));

  open(config);  // the configuration still lists the key: the store's revocation wins
  EXPECT_EQ(opens("news-key-0123456789"), "");
  EXPECT_EQ(opens(added->secret), "news");
  EXPECT_EQ(registry_->find("news")->keys.size(), 2u);
}

TEST_F(AppServiceTest, TheConfigurationFileOwnsTheWebhookItNames) {
  std::vector<AppConfig> config{{"news", {"news-key-0123456789"}}};
  config[0].webhook = Webhook{"http://10.0.0.5:8080/in", std::string(32, 's')};
  open(config);
  auto app = registry_->find("news");
  ASSERT_TRUE(app && app->webhook);
  EXPECT_EQ(app->webhook->url, "http://10.0.0.5:8080/in");
  EXPECT_TRUE(app->webhook->configured);

  // The admin API changes anything but the webhook.
  AppSettings hook;
  hook.webhook_url = std::optional<std::string>("http://10.0.0.6/in");
  EXPECT_EQ(run(service_->async_update("news", hook)).error(), LogicError::kWebhookConfigured);
  hook.webhook_url = std::optional<std::string>();
  EXPECT_EQ(run(service_->async_update("news", hook)).error(), LogicError::kWebhookConfigured);
  AppSettings off;
  off.disabled = true;
  ASSERT_TRUE(run(service_->async_update("news", off)));
  EXPECT_EQ(registry_->find("news")->webhook, app->webhook);

  // A new URL in the file replaces the stored one; once the file names none, it is gone and the
  // admin API may set one.
  config[0].webhook->url = "http://10.0.0.7/in";
  open(config);
  EXPECT_EQ(registry_->find("news")->webhook->url, "http://10.0.0.7/in");
  EXPECT_TRUE(registry_->find("news")->disabled);
  config[0].webhook.reset();
  open(config);
  EXPECT_FALSE(registry_->find("news")->webhook);
  hook.webhook_url = std::optional<std::string>("http://10.0.0.6/in");
  auto set = run(service_->async_update("news", hook));
  ASSERT_TRUE(set);
  EXPECT_FALSE(set->webhook->configured);
  open(config);
  EXPECT_EQ(registry_->find("news")->webhook, set->webhook);  // stored settings after a restart
}

TEST_F(AppServiceTest, AConfiguredWebhookReplacesOneSetThroughTheAdminApi) {
  ASSERT_TRUE(run(service_->async_create("news", {})));
  AppSettings hook;
  hook.webhook_url = std::optional<std::string>("http://10.0.0.6/in");
  ASSERT_TRUE(run(service_->async_update("news", hook)));
  std::vector<AppConfig> config{{"news", {"news-key-0123456789"}}};
  config[0].webhook = Webhook{"http://10.0.0.5/in", std::string(32, 's')};
  open(config);
  const auto app = registry_->find("news");
  EXPECT_EQ(app->webhook, (Webhook{"http://10.0.0.5/in", std::string(32, 's'), true}));
}

TEST_F(AppServiceTest, ListenersHearEveryChange) {
  std::vector<std::string> heard;
  service_->on_change(
      [&](const App& app) { heard.push_back(app.id + (app.disabled ? "-" : "+")); });
  ASSERT_TRUE(run(service_->async_create("news", {})));
  AppSettings off;
  off.disabled = true;
  ASSERT_TRUE(run(service_->async_update("news", off)));
  EXPECT_EQ(heard, (std::vector<std::string>{"news+", "news-"}));
}

// Cluster mode: a second process over the same storage (another node) learns what the first
// changed when it refreshes, and only then.
TEST_F(AppServiceTest, ARefreshPublishesWhatAnotherNodeChangedInTheSharedStorage) {
  AppRegistry other_registry;
  RateLimiter other_limiter([this] { return now_ms_; });
  AppService other(io_.get_executor(), storage_->streams(), storage_->records(), other_registry,
                   other_limiter, [this] { return now_ms_; });
  std::vector<std::string> told;
  other.on_change([&told](const App& app) { told.push_back(app.id); });
  ASSERT_TRUE(run(other.async_load({})));

  auto created = run(service_->async_create("news", {}));
  ASSERT_TRUE(created);
  const std::string secret = created->second.secret;
  EXPECT_EQ(other_registry.find("news"), nullptr);
  auto refreshed = run(other.async_refresh());
  ASSERT_TRUE(refreshed);
  EXPECT_EQ(*refreshed, 1U);
  ASSERT_NE(other_registry.find("news"), nullptr);
  EXPECT_TRUE(other_registry.authenticate(secret, now_ms_).has_value());
  EXPECT_EQ(told, std::vector<std::string>{"news"});

  // Nothing changed: nothing is published again.
  refreshed = run(other.async_refresh());
  ASSERT_TRUE(refreshed);
  EXPECT_EQ(*refreshed, 0U);

  // A key revoked on the first node stops working on the other at its next refresh.
  ASSERT_TRUE(run(service_->async_add_key("news", "second")));
  ASSERT_TRUE(run(service_->async_revoke_key("news", created->first.keys[0].id, 0)));
  EXPECT_TRUE(other_registry.authenticate(secret, now_ms_).has_value());
  refreshed = run(other.async_refresh());
  ASSERT_TRUE(refreshed);
  EXPECT_EQ(*refreshed, 1U);
  EXPECT_FALSE(other_registry.authenticate(secret, now_ms_ + 1).has_value());
}

}  // namespace
}  // namespace herald::logic
