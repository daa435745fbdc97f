// TopicService against the real RocksDB storage in a temporary directory and the local router,
// with an injected clock. A device's connection is a link on the router that counts the times it
// is told its streams changed.
#include "logic/topic_service.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "common/run_to_completion.h"
#include "distribution/local_router.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::logic {
namespace {

namespace asio = boost::asio;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr std::int64_t kT0 = 1'700'000'000'000;

struct RefreshCountingLink final : distribution::DeviceLink {
  int refreshes = 0;
  void notify(std::uint64_t, std::uint64_t, distribution::NotifyPriority) override {}
  void supersede() override {}
  void refresh_streams() override { ++refreshes; }
};

// `count` (at most 1000) topic names "<prefix>000", "<prefix>001", ...
std::vector<std::string> numbered(const std::string& prefix, std::size_t count) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < count; ++i)
    names.push_back(prefix + std::to_string(1000 + i).substr(1));
  return names;
}

// "app/topic" of each subscription, in order ("app/" for a broadcast stream).
std::vector<std::string> names(const std::vector<Subscription>& subs) {
  std::vector<std::string> out;
  for (const auto& s : subs) out.push_back(s.app + "/" + s.topic);
  return out;
}

class TopicServiceTest : public ::testing::Test {
 protected:
  // d1 is registered for shop and news, d2 and d3 for shop (in the device store only: the
  // broadcast starts come from register()); d1 is online.
  void SetUp() override {
    reopen();
    const std::vector<std::pair<std::string, std::string>> registrations = {
        {"shop", "d1"}, {"news", "d1"}, {"shop", "d2"}, {"shop", "d3"}};
    for (const auto& [app, device] : registrations) {
      ASSERT_TRUE(storage_->devices().register_device(app, device, now_ms_).value());
    }
    router_.attach("d1", link_);
  }

  // (Re)opens the storage and a fresh service over it, as a restarted heraldd would.
  void reopen() {
    service_.reset();
    storage_.reset();
    storage::RocksDbOptions options;
    options.path = dir_.db_path();
    options.env = env_;
    storage_ = storage::RocksDbStorage::open(options).value();
    service_ = std::make_unique<TopicService>(
        storage_->streams(), storage_->records(), storage_->devices(), apps_, router_,
        [this] { return now_ms_; }, max_topics_per_app_);
    ASSERT_TRUE(service_->open());
  }

  // Runs one coroutine of the service to completion.
  template <class T>
  T run(asio::awaitable<T> op) {
    return run_to_completion(io_, std::move(op));
  }

  boost::system::result<void> subscribe(const std::string& device, std::vector<std::string> topics,
                                        std::uint32_t history = 0, const std::string& app = "shop",
                                        bool from_device = false) {
    return run(service_->async_subscribe(device, app, std::move(topics), history, from_device));
  }
  boost::system::result<void> unsubscribe(const std::string& device,
                                          std::vector<std::string> topics,
                                          const std::string& app = "shop",
                                          bool from_device = false) {
    return run(service_->async_unsubscribe(device, app, std::move(topics), from_device));
  }
  // Joins in requests of at most kMaxTopicsPerRequest; expects each to succeed.
  void subscribe_all(const std::string& device, const std::vector<std::string>& topics,
                     const std::string& app) {
    for (std::size_t i = 0; i < topics.size(); i += TopicService::kMaxTopicsPerRequest) {
      const auto end = std::min(topics.size(), i + TopicService::kMaxTopicsPerRequest);
      auto joined = subscribe(device,
                              {topics.begin() + static_cast<std::ptrdiff_t>(i),
                               topics.begin() + static_cast<std::ptrdiff_t>(end)},
                              0, app);
      ASSERT_TRUE(joined) << joined.error().message();
    }
  }

  // The sender API's registration and unregistration: the device store, then the service.
  void register_device(const std::string& app, const std::string& device) {
    ASSERT_TRUE(storage_->devices().register_device(app, device, now_ms_));
    ASSERT_TRUE(run(service_->async_registered(app, device)));
  }
  void unregister_device(const std::string& app, const std::string& device) {
    ASSERT_TRUE(storage_->devices().unregister_device(app, device).value());
    ASSERT_TRUE(run(service_->async_unregistered(app, device)));
  }

  // Appends `count` entries to the topic's stream (an empty topic: the app's broadcast stream).
  void push(const std::string& app, const std::string& topic, int count) {
    for (int i = 0; i < count; ++i) {
      auto done = storage::testing::append_and_wait(
          storage_->streams(), {storage::testing::make_append(TopicService::stream_key(app, topic),
                                                              "m" + std::to_string(i))});
      ASSERT_FALSE(done.ec) << done.ec.message();
    }
  }
  storage::StreamHead stream_head(const std::string& app, const std::string& topic) {
    return storage_->streams().head(TopicService::stream_key(app, topic)).value();
  }

  TopicInfo topic(const std::string& app, const std::string& name) {
    return run(service_->async_topic(app, name)).value();
  }
  // The device's subscription to the topic, if the topic exists and the device reads it.
  std::optional<Subscription> subscription(const std::string& device, const std::string& app,
                                           const std::string& name) {
    const auto info = service_->find_topic(app, name).value();
    if (!info) return std::nullopt;
    return service_->subscription(device, info->stream).value();
  }
  // "app/topic" of each topic the device joined, in joined()'s order.
  std::vector<std::string> joined(const std::string& device) {
    return names(service_->joined(device).value());
  }
  std::uint64_t count(const std::string& app, const std::string& name, std::uint64_t limit) {
    return run(service_->async_count_subscribers(app, name, limit)).value();
  }
  std::vector<std::string> subscribers(const std::string& app, const std::string& name,
                                       const std::string& after = "", std::size_t limit = 100) {
    return service_->subscribers(app, name, after, limit).value();
  }

  std::int64_t now_ms_ = kT0;
  std::size_t max_topics_per_app_ = TopicService::kMaxTopicsPerApp;
  storage::testing::TempDir dir_;
  storage::testing::WalSyncGate gate_;  // outlives the storage that syncs through it
  std::shared_ptr<::rocksdb::Env> env_ = storage::testing::gated_env(gate_);
  asio::io_context io_;
  AppRegistry apps_{{{"shop", {"shop-key"}}, {"news", {"news-key"}}}};
  distribution::LocalRouter router_;
  std::shared_ptr<RefreshCountingLink> link_ = std::make_shared<RefreshCountingLink>();
  std::unique_ptr<storage::RocksDbStorage> storage_;
  std::unique_ptr<TopicService> service_;
};

TEST(TopicServiceNames, TopicNamesFollowTheFcmRule) {
  EXPECT_TRUE(TopicService::valid_topic("AZaz09_.~%-"));
  EXPECT_TRUE(TopicService::valid_topic(std::string(TopicService::kMaxTopicBytes, 'x')));
  EXPECT_FALSE(TopicService::valid_topic(""));
  EXPECT_FALSE(TopicService::valid_topic(std::string(TopicService::kMaxTopicBytes + 1, 'x')));
  for (const char* bad : {"a/b", "a b", "news*", "a#", "caf\xc3\xa9", "a'b", "a\"b", "a+b"}) {
    EXPECT_FALSE(TopicService::valid_topic(bad)) << bad;
  }
  EXPECT_FALSE(TopicService::valid_topic(std::string("a\0b", 3)));
}

TEST(TopicServiceNames, StreamKeysSeparateTopicsFromTheBroadcastStream) {
  EXPECT_EQ(TopicService::stream_key("shop", "news"), "t/shop/news");
  EXPECT_EQ(TopicService::stream_key("shop", ""), "b/shop");
}

TEST_F(TopicServiceTest, ATopicIsCreatedOnceWithAStreamIdOfItsOwn) {
  const TopicInfo a = topic("shop", "a");
  EXPECT_NE(a.stream, 0u);
  EXPECT_EQ(a.app, "shop");
  EXPECT_EQ(a.topic, "a");
  EXPECT_EQ(a.created_at_ms, kT0);
  now_ms_ += 1000;
  const TopicInfo again = topic("shop", "a");
  EXPECT_EQ(again.stream, a.stream);
  EXPECT_EQ(again.created_at_ms, kT0);

  std::vector<std::uint64_t> ids = {a.stream, topic("shop", "b").stream, topic("news", "a").stream,
                                    topic("shop", "").stream};
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "two topics share a stream";
  EXPECT_EQ(service_->find_topic("shop", "a").value()->stream, a.stream);
}

// The second first use looks while the first one's write waits for its fsync, so it finds no
// topic, draws another id and must take the first's from the write's outcome.
TEST_F(TopicServiceTest, TwoFirstUsesRacingAgreeOnOneStreamId) {
  std::vector<std::uint64_t> ids;
  const auto use = [this, &ids] {
    asio::co_spawn(io_, service_->async_topic("shop", "race"),
                   [&ids](std::exception_ptr e, boost::system::result<TopicInfo> info) {
                     ASSERT_FALSE(e);
                     ASSERT_TRUE(info) << info.error().message();
                     ids.push_back(info->stream);
                   });
    io_.restart();
    io_.poll();  // runs the coroutine up to its write
  };
  gate_.hold();
  use();
  ASSERT_TRUE(gate_.wait_until_blocked());
  use();
  EXPECT_TRUE(ids.empty()) << "a use completed while the first write was held";
  gate_.release();
  io_.restart();
  io_.run();
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], ids[1]);
  reopen();
  EXPECT_EQ(service_->find_topic("shop", "race").value()->stream, ids[0]);
}

TEST_F(TopicServiceTest, AnUnusedTopicIsNotFoundAndLookingDoesNotCreateIt) {
  EXPECT_FALSE(service_->find_topic("shop", "never").value());
  reopen();
  EXPECT_FALSE(service_->find_topic("shop", "never").value());
}

TEST_F(TopicServiceTest, TopicIdsSurviveAReopenAndLaterTopicsGetFreshOnes) {
  const TopicInfo a = topic("shop", "a");
  const TopicInfo b = topic("news", "b");
  const TopicInfo broadcast = topic("shop", "");
  ASSERT_TRUE(subscribe("d1", {"a"}));
  now_ms_ += 1000;

  reopen();  // open() finds the highest id in use
  const auto found = service_->find_topic("shop", "a").value();
  ASSERT_TRUE(found);
  EXPECT_EQ(found->stream, a.stream);
  EXPECT_EQ(found->created_at_ms, kT0);
  EXPECT_EQ(topic("news", "b").stream, b.stream);
  EXPECT_EQ(topic("shop", "").stream, broadcast.stream);
  EXPECT_EQ(subscription("d1", "shop", "a")->stream, a.stream);

  const TopicInfo later = topic("shop", "later");
  EXPECT_GT(later.stream, std::max({a.stream, b.stream, broadcast.stream}));
  EXPECT_EQ(later.created_at_ms, kT0 + 1000);
}

TEST_F(TopicServiceTest, AnAppCreatesAtMostItsMaximumOfTopicsAlsoAfterAReopen) {
  max_topics_per_app_ = 3;
  reopen();
  for (const char* name : {"a", "b", "c"}) topic("shop", name);
  EXPECT_EQ(run(service_->async_topic("shop", "d")).error(), LogicError::kTooManyTopics);
  EXPECT_FALSE(service_->find_topic("shop", "d").value()) << "a refused topic was created";
  EXPECT_EQ(topic("shop", "a").stream, service_->find_topic("shop", "a").value()->stream);
  topic("news", "d");  // another app has its own count

  reopen();  // open() counts each app's topics again
  EXPECT_EQ(run(service_->async_topic("shop", "e")).error(), LogicError::kTooManyTopics);
  EXPECT_EQ(subscribe("d2", {"e"}).error(), LogicError::kTooManyTopics);
  EXPECT_TRUE(subscribe("d2", {"b"}));
}

TEST_F(TopicServiceTest, JoiningStartsAtTheTopicsHead) {
  push("shop", "news", 3);
  const storage::StreamHead head = stream_head("shop", "news");
  ASSERT_EQ(head.head_seq, 3u);

  ASSERT_TRUE(subscribe("d1", {"news"}));
  const auto s = subscription("d1", "shop", "news");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->stream, topic("shop", "news").stream);
  EXPECT_EQ(s->app, "shop");
  EXPECT_EQ(s->topic, "news");
  EXPECT_EQ(s->epoch, head.epoch);
  EXPECT_EQ(s->start_seq, 3u);
  EXPECT_EQ(s->since_ms, kT0);
  EXPECT_THAT(joined("d1"), ElementsAre("shop/news"));
  EXPECT_THAT(subscribers("shop", "news"), ElementsAre("d1"));
  EXPECT_EQ(link_->refreshes, 1);
}

TEST_F(TopicServiceTest, JoiningATopicNeverPushedToStartsAtZero) {
  ASSERT_TRUE(subscribe("d1", {"quiet"}, TopicService::kMaxHistory));
  const auto s = subscription("d1", "shop", "quiet");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->epoch, 0u);
  EXPECT_EQ(s->start_seq, 0u);
}

TEST_F(TopicServiceTest, HeadFollowsTheStreamAfterTheJoin) {
  push("shop", "news", 3);
  ASSERT_TRUE(subscribe("d1", {"news"}));
  push("shop", "news", 2);
  const auto s = subscription("d1", "shop", "news");
  ASSERT_TRUE(s);
  const auto head = service_->head(*s);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->head_seq, 5u);
  EXPECT_EQ(head->epoch, s->epoch);
  EXPECT_EQ(s->start_seq, 3u);
}

TEST_F(TopicServiceTest, HistoryStartsThatManyEntriesBeforeTheHeadAndNeverBelowZero) {
  push("shop", "a", 5);
  push("shop", "b", 2);
  ASSERT_TRUE(subscribe("d1", {"a", "b"}, 3));
  EXPECT_EQ(subscription("d1", "shop", "a")->start_seq, 2u);
  EXPECT_EQ(subscription("d1", "shop", "b")->start_seq, 0u);
}

TEST_F(TopicServiceTest, HistoryAboveTheMaximumIsRefused) {
  push("shop", "a", 3);
  auto refused = subscribe("d1", {"a"}, TopicService::kMaxHistory + 1);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), LogicError::kBadRequest);
  EXPECT_THAT(joined("d1"), IsEmpty());
  EXPECT_EQ(link_->refreshes, 0);

  ASSERT_TRUE(subscribe("d1", {"a"}, TopicService::kMaxHistory));
  EXPECT_EQ(subscription("d1", "shop", "a")->start_seq, 0u);
}

TEST_F(TopicServiceTest, JoiningAgainKeepsTheFirstStart) {
  push("shop", "a", 2);
  ASSERT_TRUE(subscribe("d1", {"a"}));
  push("shop", "a", 3);
  now_ms_ += 1000;
  ASSERT_TRUE(subscribe("d1", {"a"}, TopicService::kMaxHistory));
  const auto s = subscription("d1", "shop", "a");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->start_seq, 2u);
  EXPECT_EQ(s->since_ms, kT0);
  EXPECT_THAT(subscribers("shop", "a"), ElementsAre("d1"));
}

TEST_F(TopicServiceTest, LeavingAndJoiningAgainStartsAtTheNewHead) {
  push("shop", "a", 2);
  ASSERT_TRUE(subscribe("d1", {"a"}));
  ASSERT_TRUE(unsubscribe("d1", {"a"}));
  EXPECT_FALSE(subscription("d1", "shop", "a"));
  EXPECT_THAT(joined("d1"), IsEmpty());
  EXPECT_THAT(subscribers("shop", "a"), IsEmpty());
  EXPECT_EQ(link_->refreshes, 2);

  push("shop", "a", 3);
  ASSERT_TRUE(subscribe("d1", {"a"}));
  EXPECT_EQ(subscription("d1", "shop", "a")->start_seq, 5u);
}

TEST_F(TopicServiceTest, LeavingATopicNotJoinedIsNoErrorAndLeavesOthersAlone) {
  ASSERT_TRUE(subscribe("d2", {"b"}));
  ASSERT_TRUE(unsubscribe("d1", {"never", "b"}));
  EXPECT_FALSE(service_->find_topic("shop", "never").value());
  EXPECT_TRUE(subscription("d2", "shop", "b"));
  EXPECT_THAT(subscribers("shop", "b"), ElementsAre("d2"));
}

TEST_F(TopicServiceTest, DuplicateNamesInARequestJoinOnce) {
  ASSERT_TRUE(subscribe("d1", {"b", "a", "b", "a"}));
  EXPECT_THAT(joined("d1"), ElementsAre("shop/a", "shop/b"));
  EXPECT_EQ(count("shop", "a", 100), 1u);
}

TEST_F(TopicServiceTest, ARequestNamesOneToThirtyTwoTopics) {
  for (std::size_t n : {std::size_t{0}, TopicService::kMaxTopicsPerRequest + 1}) {
    auto refused = subscribe("d1", numbered("t", n));
    ASSERT_FALSE(refused) << n;
    EXPECT_EQ(refused.error(), LogicError::kBadRequest);
    auto not_left = unsubscribe("d1", numbered("t", n));
    ASSERT_FALSE(not_left) << n;
    EXPECT_EQ(not_left.error(), LogicError::kBadRequest);
  }
  EXPECT_THAT(joined("d1"), IsEmpty());

  const auto most = numbered("t", TopicService::kMaxTopicsPerRequest);
  ASSERT_TRUE(subscribe("d1", most));
  EXPECT_EQ(joined("d1").size(), TopicService::kMaxTopicsPerRequest);
  ASSERT_TRUE(unsubscribe("d1", most));
  EXPECT_THAT(joined("d1"), IsEmpty());
}

TEST_F(TopicServiceTest, ABadNameRefusesTheWholeRequest) {
  for (const std::string& bad : {std::string("bad/name"), std::string(""),
                                 std::string(TopicService::kMaxTopicBytes + 1, 'x')}) {
    auto refused = subscribe("d1", {"good", bad});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), LogicError::kBadRequest);
  }
  EXPECT_THAT(joined("d1"), IsEmpty());
  EXPECT_FALSE(service_->find_topic("shop", "good").value());

  ASSERT_TRUE(subscribe("d1", {"good"}));
  auto refused = unsubscribe("d1", {"good", "bad name"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), LogicError::kBadRequest);
  EXPECT_THAT(joined("d1"), ElementsAre("shop/good"));
  EXPECT_EQ(link_->refreshes, 1);
}

TEST_F(TopicServiceTest, AnUnknownAppOrAnUnregisteredDeviceIsRefused) {
  auto unknown_app = subscribe("d1", {"a"}, 0, "nope");
  ASSERT_FALSE(unknown_app);
  EXPECT_EQ(unknown_app.error(), LogicError::kUnknownApp);
  auto unknown_device = subscribe("d3", {"a"}, 0, "news");  // d3 is registered for shop only
  ASSERT_FALSE(unknown_device);
  EXPECT_EQ(unknown_device.error(), LogicError::kUnknownDevice);
  EXPECT_THAT(joined("d3"), IsEmpty());

  auto not_left_app = unsubscribe("d1", {"a"}, "nope");
  ASSERT_FALSE(not_left_app);
  EXPECT_EQ(not_left_app.error(), LogicError::kUnknownApp);
  auto not_left_device = unsubscribe("d3", {"a"}, "news");
  ASSERT_FALSE(not_left_device);
  EXPECT_EQ(not_left_device.error(), LogicError::kUnknownDevice);
}

// The broadcast streams d1 reads (one per app) do not count.
TEST_F(TopicServiceTest, ADeviceJoinsAtMost256TopicsOverAllItsApps) {
  register_device("shop", "d1");
  register_device("news", "d1");
  const std::size_t half = TopicService::kMaxTopicsPerDevice / 2;
  subscribe_all("d1", numbered("s", half), "shop");
  subscribe_all("d1", numbered("n", half - 1), "news");

  // One slot left: a request for two is refused whole.
  auto refused = subscribe("d1", {"x", "y"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), LogicError::kTooManyTopics);
  EXPECT_EQ(joined("d1").size(), TopicService::kMaxTopicsPerDevice - 1);
  EXPECT_FALSE(subscription("d1", "shop", "x"));

  ASSERT_TRUE(subscribe("d1", {"x", "s000"}));  // s000 is joined already: it takes no slot
  EXPECT_EQ(joined("d1").size(), TopicService::kMaxTopicsPerDevice);
  auto full = subscribe("d1", {"y"}, 0, "news");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error(), LogicError::kTooManyTopics);

  ASSERT_TRUE(unsubscribe("d1", {"n000"}, "news"));
  ASSERT_TRUE(subscribe("d1", {"y"}, 0, "news"));
  EXPECT_TRUE(subscription("d1", "news", "y"));
}

TEST_F(TopicServiceTest, AJoinOfManyDevicesIsOneAllOrNothingWrite) {
  auto join = [this](std::vector<std::string> devices, const std::string& topic = "deals") {
    return run(service_->async_join("shop", topic, std::move(devices), 0));
  };
  // One unregistered device: nobody joins.
  EXPECT_EQ(join({"d1", "d2", "stranger"}).error(), LogicError::kUnknownDevice);
  EXPECT_FALSE(subscription("d1", "shop", "deals"));
  EXPECT_FALSE(subscription("d2", "shop", "deals"));

  // One device at its topic limit: nobody joins either.
  subscribe_all("d3", numbered("s", TopicService::kMaxTopicsPerDevice), "shop");
  EXPECT_EQ(join({"d1", "d3"}).error(), LogicError::kTooManyTopics);
  EXPECT_FALSE(subscription("d1", "shop", "deals"));

  // Named twice, or already in: joined once, and only the connections of those that joined
  // hear of it.
  ASSERT_TRUE(join({"d2", "d1", "d2"}));
  EXPECT_TRUE(subscription("d1", "shop", "deals"));
  EXPECT_TRUE(subscription("d2", "shop", "deals"));
  EXPECT_EQ(link_->refreshes, 1);
  ASSERT_TRUE(join({"d1"}));
  EXPECT_EQ(link_->refreshes, 1);
  EXPECT_THAT(subscribers("shop", "deals"), ElementsAre("d1", "d2"));

  EXPECT_EQ(join({}).error(), LogicError::kBadRequest);
  EXPECT_EQ(join({"d1"}, "bad name").error(), LogicError::kBadRequest);
}

TEST_F(TopicServiceTest, OnlyChangesNotMadeByTheDeviceAreToldToItsConnection) {
  ASSERT_TRUE(subscribe("d1", {"a"}, 0, "shop", /*from_device=*/true));
  ASSERT_TRUE(unsubscribe("d1", {"a"}, "shop", /*from_device=*/true));
  EXPECT_EQ(link_->refreshes, 0);
  ASSERT_TRUE(subscribe("d1", {"a"}, 0, "shop", /*from_device=*/false));
  EXPECT_EQ(link_->refreshes, 1);
  ASSERT_TRUE(unsubscribe("d1", {"a"}, "shop", /*from_device=*/false));
  EXPECT_EQ(link_->refreshes, 2);
  // An offline device is no error.
  ASSERT_TRUE(subscribe("d2", {"a"}));
}

TEST_F(TopicServiceTest, RegisteringStartsTheBroadcastStreamAtItsHead) {
  push("shop", "", 4);
  register_device("shop", "d1");
  EXPECT_EQ(link_->refreshes, 1);
  const auto s = subscription("d1", "shop", "");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->topic, "");
  EXPECT_EQ(s->app, "shop");
  EXPECT_EQ(s->start_seq, 4u);
  EXPECT_EQ(s->epoch, stream_head("shop", "").epoch);
  EXPECT_EQ(s->since_ms, kT0);
  EXPECT_THAT(joined("d1"), IsEmpty());  // the broadcast stream is no topic

  push("shop", "", 2);
  now_ms_ += 1000;
  register_device("shop", "d1");  // a repeated registration keeps the first start
  EXPECT_EQ(subscription("d1", "shop", "")->start_seq, 4u);
  EXPECT_EQ(subscription("d1", "shop", "")->since_ms, kT0);
}

TEST_F(TopicServiceTest, UnregisteringForgetsTheAppsTopicsAndBroadcastStreamOnly) {
  register_device("shop", "d1");
  register_device("news", "d1");
  ASSERT_TRUE(subscribe("d1", {"a", "b"}));
  ASSERT_TRUE(subscribe("d1", {"a"}, 0, "news"));
  const int refreshes = link_->refreshes;

  unregister_device("shop", "d1");
  EXPECT_EQ(link_->refreshes, refreshes + 1);
  EXPECT_THAT(joined("d1"), ElementsAre("news/a"));
  EXPECT_FALSE(subscription("d1", "shop", ""));
  EXPECT_TRUE(subscription("d1", "news", ""));
  EXPECT_THAT(subscribers("shop", "a"), IsEmpty());
  EXPECT_EQ(count("shop", "b", 100), 0u);
  EXPECT_THAT(subscribers("news", "a"), ElementsAre("d1"));

  EXPECT_THAT(names(run(service_->async_subscriptions("d1")).value()),
              UnorderedElementsAre("news/", "news/a"));
}

TEST_F(TopicServiceTest, RegisteringAgainAfterLeavingStartsAtTheNewHead) {
  push("shop", "", 2);
  register_device("shop", "d1");
  ASSERT_TRUE(subscribe("d1", {"a"}));
  unregister_device("shop", "d1");
  push("shop", "", 3);
  now_ms_ += 1000;

  register_device("shop", "d1");
  const auto s = subscription("d1", "shop", "");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->start_seq, 5u);
  EXPECT_EQ(s->since_ms, kT0 + 1000);
  EXPECT_THAT(joined("d1"), IsEmpty());  // its topics did not come back with it
}

TEST_F(TopicServiceTest, SubscriptionsListEveryStreamSortedAndStartOlderRegistrationsBroadcasts) {
  // d1's registrations predate topics: no broadcast subscription yet.
  ASSERT_TRUE(subscribe("d1", {"x"}, 0, "news"));
  ASSERT_TRUE(subscribe("d1", {"y"}));
  push("news", "", 3);
  EXPECT_FALSE(service_->find_topic("shop", "").value());

  const auto subs = run(service_->async_subscriptions("d1"));
  ASSERT_TRUE(subs) << subs.error().message();
  ASSERT_EQ(subs->size(), 4u);
  EXPECT_TRUE(std::is_sorted(subs->begin(), subs->end(),
                             [](const auto& a, const auto& b) { return a.stream < b.stream; }));
  EXPECT_THAT(names(*subs), UnorderedElementsAre("news/", "news/x", "shop/", "shop/y"));
  const auto news_broadcast = subscription("d1", "news", "");
  ASSERT_TRUE(news_broadcast);
  EXPECT_EQ(news_broadcast->start_seq, 3u);
  EXPECT_EQ(news_broadcast->stream, topic("news", "").stream);
  EXPECT_EQ(link_->refreshes, 2);  // the caller is loading the list: no refresh for it

  push("news", "", 2);
  const auto again = run(service_->async_subscriptions("d1"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), 4u);
  EXPECT_EQ(subscription("d1", "news", "")->start_seq, 3u);
}

TEST_F(TopicServiceTest, SubscriptionsOfAnAppTheDeviceLeftAreNotListed) {
  register_device("shop", "d1");
  ASSERT_TRUE(subscribe("d1", {"a"}));
  // Left in the device store only, as a crash before async_unregistered would leave it.
  ASSERT_TRUE(storage_->devices().unregister_device("shop", "d1").value());
  const auto subs = run(service_->async_subscriptions("d1"));
  ASSERT_TRUE(subs);
  EXPECT_THAT(names(*subs), ElementsAre("news/"));
}

TEST_F(TopicServiceTest, SubscriptionIsEmptyForAStreamTheDeviceDoesNotRead) {
  ASSERT_TRUE(subscribe("d2", {"a"}));
  EXPECT_FALSE(service_->subscription("d1", topic("shop", "a").stream).value());
  EXPECT_FALSE(service_->subscription("d1", 12345).value());
}

TEST_F(TopicServiceTest, JoinedListsTopicsByAppThenName) {
  ASSERT_TRUE(subscribe("d1", {"b"}));
  ASSERT_TRUE(subscribe("d1", {"z"}, 0, "news"));
  ASSERT_TRUE(subscribe("d1", {"a"}));
  register_device("shop", "d1");
  EXPECT_THAT(joined("d1"), ElementsAre("news/z", "shop/a", "shop/b"));
  EXPECT_THAT(joined("d2"), IsEmpty());
}

TEST_F(TopicServiceTest, SubscribersAreListedInIdOrderAfterACursor) {
  for (const char* device : {"d3", "d1", "d2"}) ASSERT_TRUE(subscribe(device, {"a"}));
  ASSERT_TRUE(subscribe("d2", {"ab"}));
  ASSERT_TRUE(subscribe("d1", {"a"}, 0, "news"));

  EXPECT_THAT(subscribers("shop", "a"), ElementsAre("d1", "d2", "d3"));
  EXPECT_THAT(subscribers("shop", "a", "", 2), ElementsAre("d1", "d2"));
  EXPECT_THAT(subscribers("shop", "a", "d1"), ElementsAre("d2", "d3"));
  EXPECT_THAT(subscribers("shop", "a", "d3"), IsEmpty());
  EXPECT_THAT(subscribers("shop", "ab"), ElementsAre("d2"));
  EXPECT_THAT(subscribers("news", "a"), ElementsAre("d1"));
  EXPECT_THAT(subscribers("shop", "never"), IsEmpty());
}

TEST_F(TopicServiceTest, CountsSubscribersUpToALimit) {
  for (const char* device : {"d1", "d2", "d3"}) ASSERT_TRUE(subscribe(device, {"a"}));
  ASSERT_TRUE(subscribe("d2", {"ab"}));
  EXPECT_EQ(count("shop", "a", 100), 3u);
  EXPECT_EQ(count("shop", "a", 2), 2u);
  EXPECT_EQ(count("shop", "ab", 100), 1u);
  EXPECT_EQ(count("shop", "never", 100), 0u);
  // The broadcast stream: every device registered for the app.
  EXPECT_EQ(count("shop", "", 100), 3u);
  EXPECT_EQ(count("news", "", 100), 1u);
  EXPECT_EQ(count("shop", "", 1), 1u);
}

}  // namespace
}  // namespace herald::logic
