// AdminApi over the real AppService and RocksDB in a temporary directory; no sockets.
#include "http/admin_api.h"

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>

#include "common/run_to_completion.h"
#include "distribution/local_router.h"
#include "logic/message_service.h"
#include "logic/presence_log.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::http {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

constexpr std::string_view kToken = "admin-token-0123456789abcdef";

class AdminApiTest : public ::testing::Test {
 protected:
  AdminApiTest() {
    storage::RocksDbOptions options;
    options.path = dir_.db_path();
    storage_ = std::move(storage::RocksDbStorage::open(options).value());
    apps_ = std::make_unique<logic::AppService>(io_.get_executor(), storage_->streams(),
                                                storage_->records(), registry_, limiter_,
                                                [this] { return now_ms_; });
    run(apps_->async_load({{"news", {"news-key-0123456789"}}}));
    presence_ = std::make_unique<logic::PresenceLog>(storage_->streams(), storage_->records(),
                                                     [this] { return now_ms_; });
    api_ = std::make_unique<AdminApi>(admin_deps(std::string(kToken)));
  }

  AdminApiDeps admin_deps(std::string token) {
    return {*apps_,     registry_, storage_->devices(), storage_->streams(),        router_,
            *presence_, "node-1",  std::move(token),    [this] { return now_ms_; }, &drain_};
  }

  // The server's drain as the admin API sees it: records what it was asked.
  class RecordingDrain final : public DrainControl {
   public:
    [[nodiscard]] DrainState drain_state() const override { return state; }
    bool start_drain(const DrainRequest& request) override {
      if (state.draining) return false;
      requests.push_back(request);
      state.draining = true;
      state.rate_per_s = request.rate_per_s.value_or(state.rate_per_s);
      state.deadline_s = request.deadline_s.value_or(state.deadline_s);
      state.started_at_ms = 1'800'000'000'000;
      state.deadline_at_ms = state.started_at_ms + std::int64_t{state.deadline_s} * 1000;
      return true;
    }
    DrainState state{.connections = 7, .rate_per_s = 1000, .deadline_s = 60};
    std::vector<DrainRequest> requests;
  };

  // Appends `n` entries to `device`'s inbox; returns the inbox's epoch.
  std::uint64_t fill_inbox(const std::string& device, std::size_t n) {
    std::vector<storage::AppendRequest> batch;
    for (std::size_t i = 0; i < n; ++i) {
      batch.push_back(storage::testing::make_append(logic::MessageService::inbox_key(device), "1",
                                                    now_ms_ + 3'600'000));
    }
    const auto done = storage::testing::append_and_wait(storage_->streams(), std::move(batch));
    EXPECT_FALSE(done.ec) << done.ec.message();
    return done.results.empty() ? 0 : done.results.front().epoch;
  }

  // Runs one coroutine of the service to completion.
  template <class T>
  T run(asio::awaitable<T> op) {
    return run_to_completion(io_, std::move(op));
  }

  Response call(bhttp::verb verb, std::string target, std::string body = "",
                std::optional<std::string_view> token = kToken) {
    Request request{verb, target, 11};
    if (token) request.set(bhttp::field::authorization, "Bearer " + std::string(*token));
    request.body() = std::move(body);
    request.prepare_payload();
    return run(api_->handle(std::move(request)));
  }

  static json::value body_of(const Response& res) { return json::parse(res.body()); }
  static std::string code_of(const Response& res) {
    return std::string(body_of(res).at("error").at("code").as_string());
  }
  std::string opens(std::string_view key) {
    const auto match = registry_.authenticate(key, now_ms_);
    return match ? match->app->id : "";
  }

  std::int64_t now_ms_ = 1'800'000'000'000;
  storage::testing::TempDir dir_;
  asio::io_context io_;
  std::unique_ptr<storage::RocksDbStorage> storage_;
  logic::AppRegistry registry_;
  logic::RateLimiter limiter_{[this] { return now_ms_; }};
  std::unique_ptr<logic::AppService> apps_;
  distribution::LocalRouter router_;
  std::unique_ptr<logic::PresenceLog> presence_;
  RecordingDrain drain_;
  std::unique_ptr<AdminApi> api_;
};

// A connection the router can hold; it does nothing.
class IdleLink final : public distribution::DeviceLink {
 public:
  void notify(std::uint64_t, std::uint64_t, distribution::NotifyPriority) override {}
  void supersede() override {}
  void refresh_streams() override {}
};

TEST_F(AdminApiTest, EveryPathNeedsTheAdminToken) {
  for (const char* target : {"/v1/admin/apps", "/v1/admin/apps/news", "/v1/admin/nothing",
                             "/v1/admin/devices/phone-1"}) {
    EXPECT_EQ(call(bhttp::verb::get, target, "", std::nullopt).result(),
              bhttp::status::unauthorized);
    const auto wrong = call(bhttp::verb::get, target, "", "news-key-0123456789");
    EXPECT_EQ(wrong.result(), bhttp::status::unauthorized) << target;
    EXPECT_EQ(code_of(wrong), "unauthorized");
  }
}

TEST_F(AdminApiTest, WithoutAConfiguredTokenTheAdminApiIsOff) {
  AdminApi off(admin_deps(""));
  Request request{bhttp::verb::get, "/v1/admin/apps", 11};
  request.set(bhttp::field::authorization, "Bearer ");
  EXPECT_EQ(run(off.handle(std::move(request))).result(), bhttp::status::unauthorized);
}

TEST_F(AdminApiTest, CreateListGetAnApp) {
  const auto created = call(bhttp::verb::post, "/v1/admin/apps",
                            R"({"id":"shop","rate_limits":{"requests_per_s":50}})");
  ASSERT_EQ(created.result(), bhttp::status::created) << created.body();
  const auto body = body_of(created);
  const std::string key(body.at("key").at("key").as_string());
  EXPECT_EQ(opens(key), "shop");
  EXPECT_EQ(body.at("app").at("rate_limits").at("requests_per_s").as_int64(), 50);

  const auto list = body_of(call(bhttp::verb::get, "/v1/admin/apps"));
  ASSERT_EQ(list.at("apps").as_array().size(), 2u);
  EXPECT_EQ(list.at("apps").at(0).at("id").as_string(), "news");
  EXPECT_EQ(list.at("apps").at(1).at("id").as_string(), "shop");
  EXPECT_EQ(body_of(call(bhttp::verb::get, "/v1/admin/apps/shop")).at("keys").as_int64(), 1);
  EXPECT_EQ(call(bhttp::verb::get, "/v1/admin/apps/ghost").result(), bhttp::status::not_found);
}

TEST_F(AdminApiTest, BadBodiesAre400AndCreateNothing) {
  for (const char* body : {"", "[]", R"({"id":"Bad Id"})", R"({"id":"x","extra":1})",
                           R"({"id":"x","rate_limits":{"requests_per_s":-1}})",
                           R"({"id":"x","rate_limits":{"rps":1}})",
                           R"({"id":"x","webhook":{"url":"https://a/b"}})", R"({"id":7})"}) {
    const auto res = call(bhttp::verb::post, "/v1/admin/apps", body);
    EXPECT_EQ(res.result(), bhttp::status::bad_request) << body << " -> " << res.body();
    EXPECT_EQ(code_of(res), "bad_request") << body;
  }
  EXPECT_EQ(registry_.apps().size(), 1u);
}

TEST_F(AdminApiTest, CreatingAnExistingAppIs409) {
  const auto res = call(bhttp::verb::post, "/v1/admin/apps", R"({"id":"news"})");
  EXPECT_EQ(res.result(), bhttp::status::conflict);
  EXPECT_EQ(code_of(res), "app_exists");
  EXPECT_EQ(opens("news-key-0123456789"), "news");
}

TEST_F(AdminApiTest, AKeyLabelIsCountedInCharactersAsTheSchemaCountsThem) {
  std::string sixty_four;
  for (int i = 0; i < 64; ++i) sixty_four += "\u00e9";  // é: 2 bytes of UTF-8, 128 in all
  const auto added =
      call(bhttp::verb::post, "/v1/admin/apps/news/keys", R"({"label":")" + sixty_four + R"("})");
  ASSERT_EQ(added.result(), bhttp::status::created) << added.body();
  EXPECT_EQ(body_of(added).at("label").as_string().size(), 128u);
  const auto longer =
      call(bhttp::verb::post, "/v1/admin/apps/news/keys", R"({"label":")" + sixty_four + R"(x"})");
  EXPECT_EQ(longer.result(), bhttp::status::bad_request);
  EXPECT_EQ(
      body_of(call(bhttp::verb::get, "/v1/admin/apps/news/keys")).at("keys").as_array().size(),
      2u);  // the refused one changed nothing
}

TEST_F(AdminApiTest, KeyRotationWithAGracePeriod) {
  const auto added = call(bhttp::verb::post, "/v1/admin/apps/news/keys", R"({"label":"2027"})");
  ASSERT_EQ(added.result(), bhttp::status::created) << added.body();
  const std::string new_key(body_of(added).at("key").as_string());
  EXPECT_EQ(opens(new_key), "news");

  const auto keys = body_of(call(bhttp::verb::get, "/v1/admin/apps/news/keys")).at("keys");
  ASSERT_EQ(keys.as_array().size(), 2u);
  for (const auto& k : keys.as_array()) EXPECT_FALSE(k.as_object().contains("key"));  // no secrets
  const std::string old_id(keys.at(0).at("id").as_string());

  const auto revoked =
      call(bhttp::verb::delete_, "/v1/admin/apps/news/keys/" + old_id + "?grace_s=30");
  ASSERT_EQ(revoked.result(), bhttp::status::ok) << revoked.body();
  EXPECT_EQ(body_of(revoked).at("revoked_at_ms").as_int64(), now_ms_ + 30'000);
  EXPECT_EQ(opens("news-key-0123456789"), "news");
  now_ms_ += 30'000;
  EXPECT_EQ(opens("news-key-0123456789"), "");
  EXPECT_EQ(opens(new_key), "news");
}

TEST_F(AdminApiTest, AKeyBeyondTheMaximumIs400SayingTheLimitAndHowToFreeASlot) {
  for (std::size_t n = 1; n < logic::AppService::kMaxKeysPerApp; ++n) {
    ASSERT_EQ(call(bhttp::verb::post, "/v1/admin/apps/news/keys").result(), bhttp::status::created);
  }
  const auto refused = call(bhttp::verb::post, "/v1/admin/apps/news/keys");
  EXPECT_EQ(refused.result(), bhttp::status::bad_request);
  EXPECT_EQ(code_of(refused), "too_many_keys");
  const std::string message(body_of(refused).at("error").at("message").as_string());
  EXPECT_NE(message.find("16"), std::string::npos) << message;
  EXPECT_NE(message.find("revoke"), std::string::npos) << message;
  EXPECT_NE(message.find("DELETE /v1/admin/apps/news/keys/{key_id}"), std::string::npos) << message;
  EXPECT_EQ(registry_.find("news")->keys.size(), logic::AppService::kMaxKeysPerApp);
}

TEST_F(AdminApiTest, RevokingTheLastKeyIs409AndUnknownKeysAre404) {
  const auto keys = body_of(call(bhttp::verb::get, "/v1/admin/apps/news/keys")).at("keys");
  const std::string id(keys.at(0).at("id").as_string());
  const auto last = call(bhttp::verb::delete_, "/v1/admin/apps/news/keys/" + id);
  EXPECT_EQ(last.result(), bhttp::status::conflict);
  EXPECT_EQ(code_of(last), "last_key");
  EXPECT_EQ(opens("news-key-0123456789"), "news");
  const auto unknown = call(bhttp::verb::delete_, "/v1/admin/apps/news/keys/00000000deadbeef");
  EXPECT_EQ(unknown.result(), bhttp::status::not_found);
  EXPECT_EQ(code_of(unknown), "unknown_key");
  EXPECT_EQ(call(bhttp::verb::delete_, "/v1/admin/apps/news/keys/" + id + "?grace_s=-1").result(),
            bhttp::status::bad_request);
}

TEST_F(AdminApiTest, PatchDisablesAndSetsAWebhook) {
  const auto res = call(bhttp::verb::patch, "/v1/admin/apps/news",
                        R"({"disabled":true,"webhook":{"url":"http://127.0.0.1:9/in"}})");
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  const auto body = body_of(res);
  EXPECT_TRUE(body.at("disabled").as_bool());
  EXPECT_EQ(body.at("webhook").at("url").as_string(), "http://127.0.0.1:9/in");
  EXPECT_EQ(body.at("webhook").at("secret").as_string().size(), 64u);
  EXPECT_TRUE(registry_.find("news")->disabled);

  const auto removed = call(bhttp::verb::patch, "/v1/admin/apps/news", R"({"webhook":null})");
  ASSERT_EQ(removed.result(), bhttp::status::ok);
  EXPECT_FALSE(body_of(removed).as_object().contains("webhook"));
  EXPECT_EQ(call(bhttp::verb::patch, "/v1/admin/apps/news", "{}").result(),
            bhttp::status::bad_request);
}

TEST_F(AdminApiTest, AWebhookUrlTheDispatcherCannotUseIs400) {
  for (const char* url : {"http://", "http://user@host/in", "http://host/in#part", "http://h:0/"}) {
    const auto res = call(bhttp::verb::patch, "/v1/admin/apps/news",
                          R"({"webhook":{"url":")" + std::string(url) + R"("}})");
    EXPECT_EQ(res.result(), bhttp::status::bad_request) << url << " -> " << res.body();
  }
  EXPECT_FALSE(registry_.find("news")->webhook);
}

TEST_F(AdminApiTest, AWebhookFromTheConfigurationFileIs409ToChangeHere) {
  std::vector<logic::AppConfig> config{{"news", {"news-key-0123456789"}}};
  config[0].webhook = logic::Webhook{"http://10.0.0.5/in", std::string(32, 's')};
  run(apps_->async_load(config));
  const auto got = body_of(call(bhttp::verb::get, "/v1/admin/apps/news"));
  EXPECT_TRUE(got.at("webhook").at("configured").as_bool());

  const auto res =
      call(bhttp::verb::patch, "/v1/admin/apps/news", R"({"webhook":{"url":"http://h/in"}})");
  EXPECT_EQ(res.result(), bhttp::status::conflict);
  EXPECT_EQ(code_of(res), "webhook_configured");
  const std::string message(body_of(res).at("error").at("message").as_string());
  EXPECT_NE(message.find("--apps.news.webhook_url"), std::string::npos) << message;
  EXPECT_EQ(registry_.find("news")->webhook->url, "http://10.0.0.5/in");
}

TEST_F(AdminApiTest, ADeviceLookupShowsEveryAppItsInboxAndThatItIsOnline) {
  ASSERT_TRUE(storage_->devices().register_device("news", "phone-1", now_ms_ - 2000).value());
  ASSERT_TRUE(storage_->devices().register_device("chat", "phone-1", now_ms_ - 1000).value());
  ASSERT_TRUE(storage_->devices().register_device("news", "phone-2", now_ms_).value());
  const std::uint64_t epoch = fill_inbox("phone-1", 3);
  const std::string inbox = logic::MessageService::inbox_key("phone-1");
  ASSERT_TRUE(storage_->devices().save_ack("phone-1", inbox, {epoch, 2, now_ms_ - 500}));
  const auto link = std::make_shared<IdleLink>();  // the router holds it weakly
  router_.attach("phone-1", link);

  const auto res = call(bhttp::verb::get, "/v1/admin/devices/phone-1");
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  EXPECT_EQ(body_of(res), json::parse(R"({
      "device": "phone-1", "online": true, "node": "node-1", "last_seen_ms": 1800000000000,
      "apps": [{"app": "chat", "registered_at_ms": 1799999999000},
               {"app": "news", "registered_at_ms": 1799999998000}],
      "streams": [{"stream": "inbox", "epoch": )" +
                                      std::to_string(epoch) +
                                      R"(, "head_seq": 3, "acked_seq": 2,
                   "acked_at_ms": 1799999999500}]})"));
}

TEST_F(AdminApiTest, AnOfflineDeviceShowsWhenItWasLastSeen) {
  ASSERT_TRUE(storage_->devices().register_device("news", "phone-1", now_ms_).value());
  storage::AppendBatch seen;
  seen.now_ms = now_ms_;
  seen.put_records.push_back({logic::PresenceLog::record_key("phone-1"), "1799999990000", 0});
  ASSERT_FALSE(storage::testing::write_and_wait(storage_->streams(), std::move(seen)).ec);

  const auto body = body_of(call(bhttp::verb::get, "/v1/admin/devices/phone-1"));
  EXPECT_FALSE(body.at("online").as_bool());
  EXPECT_FALSE(body.as_object().contains("node"));
  EXPECT_EQ(body.at("last_seen_ms").as_int64(), 1'799'999'990'000);
  EXPECT_EQ(body.at("streams").at(0).at("head_seq").to_number<std::int64_t>(), 0);
  EXPECT_FALSE(body.at("streams").at(0).as_object().contains("acked_seq"));
}

TEST_F(AdminApiTest, ADeviceUnregisteredEverywhereButWithAnInboxHasNoApps) {
  ASSERT_TRUE(storage_->devices().register_device("news", "phone-1", now_ms_).value());
  fill_inbox("phone-1", 1);
  ASSERT_TRUE(storage_->devices().unregister_device("news", "phone-1").value());
  const auto res = call(bhttp::verb::get, "/v1/admin/devices/phone-1");
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  EXPECT_TRUE(body_of(res).at("apps").as_array().empty());
}

TEST_F(AdminApiTest, AnUnknownDeviceIs404AndAMalformedIdIs400) {
  const auto unknown = call(bhttp::verb::get, "/v1/admin/devices/nobody");
  EXPECT_EQ(unknown.result(), bhttp::status::not_found);
  EXPECT_EQ(code_of(unknown), "unknown_device");
  EXPECT_EQ(unknown[bhttp::field::content_type], "application/json");

  for (const char* target :
       {"/v1/admin/devices/bad%20id", "/v1/admin/devices/a%2Fb", "/v1/admin/devices/"}) {
    const auto bad = call(bhttp::verb::get, target);
    EXPECT_EQ(bad.result(), bhttp::status::bad_request) << target << " -> " << bad.body();
    EXPECT_EQ(code_of(bad), "bad_request") << target;
  }
  const auto long_id = call(bhttp::verb::get, "/v1/admin/devices/" + std::string(129, 'x'));
  EXPECT_EQ(long_id.result(), bhttp::status::bad_request);
  const auto wrong = call(bhttp::verb::delete_, "/v1/admin/devices/nobody");
  EXPECT_EQ(wrong.result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(wrong[bhttp::field::allow], "GET");
}

TEST_F(AdminApiTest, WrongMethodsAre405WithAllow) {
  const auto res = call(bhttp::verb::delete_, "/v1/admin/apps");
  EXPECT_EQ(res.result(), bhttp::status::method_not_allowed);
  EXPECT_EQ(res[bhttp::field::allow], "GET, POST");
}

TEST_F(AdminApiTest, TheDrainStateShowsTheConfiguredValuesUntilADrainStarts) {
  const auto res = call(bhttp::verb::get, "/v1/admin/drain");
  ASSERT_EQ(res.result(), bhttp::status::ok) << res.body();
  EXPECT_EQ(body_of(res), json::parse(R"({"draining": false, "connections": 7,
      "reconnects_sent": 0, "rate_per_s": 1000, "deadline_s": 60})"));
}

TEST_F(AdminApiTest, ADrainStartsWithTheBodysOverridesAndAnswers202WithItsState) {
  const auto res =
      call(bhttp::verb::post, "/v1/admin/drain", R"({"deadline_s": 30, "rate_per_s": 20})");
  ASSERT_EQ(res.result(), bhttp::status::accepted) << res.body();
  ASSERT_EQ(drain_.requests.size(), 1u);
  EXPECT_EQ(drain_.requests[0].deadline_s, 30u);
  EXPECT_EQ(drain_.requests[0].rate_per_s, 20u);
  const auto body = body_of(res).as_object();
  EXPECT_EQ(body.at("draining"), true);
  EXPECT_EQ(body.at("rate_per_s"), 20);
  EXPECT_EQ(body.at("deadline_at_ms").as_int64() - body.at("started_at_ms").as_int64(), 30'000);
}

TEST_F(AdminApiTest, ADrainWithoutABodyUsesTheConfiguredValues) {
  const auto res = call(bhttp::verb::post, "/v1/admin/drain");
  ASSERT_EQ(res.result(), bhttp::status::accepted) << res.body();
  ASSERT_EQ(drain_.requests.size(), 1u);
  EXPECT_FALSE(drain_.requests[0].deadline_s);
  EXPECT_FALSE(drain_.requests[0].rate_per_s);
}

TEST_F(AdminApiTest, ASecondDrainIs409AndChangesNothing) {
  ASSERT_EQ(call(bhttp::verb::post, "/v1/admin/drain").result(), bhttp::status::accepted);
  const auto again = call(bhttp::verb::post, "/v1/admin/drain", R"({"rate_per_s": 5})");
  EXPECT_EQ(again.result(), bhttp::status::conflict);
  EXPECT_EQ(code_of(again), "already_draining");
  EXPECT_EQ(drain_.requests.size(), 1u);
  EXPECT_EQ(drain_.state.rate_per_s, 1000u);
}

TEST_F(AdminApiTest, ABadDrainBodyIs400AndStartsNothing) {
  for (const char* body :
       {R"({"deadline_s": 0})", R"({"deadline_s": 86401})", R"({"rate_per_s": 1.5})",
        R"({"rate_per_s": "10"})", R"({"rate_per_s": -1})", R"({"rate_per_s": 1000001})",
        R"({"grace_s": 1})", "[]", "not json"}) {
    const auto res = call(bhttp::verb::post, "/v1/admin/drain", body);
    EXPECT_EQ(res.result(), bhttp::status::bad_request) << body;
    EXPECT_EQ(code_of(res), "bad_request") << body;
  }
  EXPECT_TRUE(drain_.requests.empty());
  EXPECT_FALSE(drain_.state.draining);
  EXPECT_EQ(call(bhttp::verb::delete_, "/v1/admin/drain").result(),
            bhttp::status::method_not_allowed);
}

}  // namespace
}  // namespace herald::http
