// Two cluster routers ("node-a", "node-b") in one process, as two heraldd nodes, sharing a real
// Redis Cluster of three redis-server masters on loopback: routes in Redis, notifies forwarded
// over sharded pub/sub, shared-stream notifies broadcast, resubscription after a killed
// connection. Every wait polls with a deadline.
#include "distribution/redis/cluster_router.h"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "storage/redis/key_slot.h"
#include "storage/redis/redis_cluster_client.h"
#include "storage/redis/testing/test_redis_cluster.h"

namespace herald::distribution {
namespace {

using namespace std::chrono_literals;
using storage::RedisClusterClient;
using storage::RedisValue;
using storage::testing::TestRedisCluster;

// Polls `done` until it holds or 10 s pass.
bool eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// An access session, notified from the router's subscriber thread.
struct RecordingLink : DeviceLink {
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> notifies_;
  std::vector<NotifyPriority> priorities_;
  std::atomic<int> superseded{0};
  std::atomic<int> refreshes{0};
  void notify(std::uint64_t stream, std::uint64_t head_seq, NotifyPriority priority) override {
    std::lock_guard lock(mu);
    notifies_.emplace_back(stream, head_seq);
    priorities_.push_back(priority);
  }
  void supersede() override { ++superseded; }
  void refresh_streams() override { ++refreshes; }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> notifies() {
    std::lock_guard lock(mu);
    return notifies_;
  }
  std::vector<NotifyPriority> priorities() {
    std::lock_guard lock(mu);
    return priorities_;
  }
};

struct RecordingFanout : StreamFanout {
  std::mutex mu;
  std::vector<std::shared_ptr<const StreamNotify>> notifies_;
  void fan_out(std::shared_ptr<const StreamNotify> notify) override {
    std::lock_guard lock(mu);
    notifies_.push_back(std::move(notify));
  }
  std::vector<std::shared_ptr<const StreamNotify>> notifies() {
    std::lock_guard lock(mu);
    return notifies_;
  }
};

class ClusterRouterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { cluster_ = new TestRedisCluster(); }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  ClusterRouterTest() {
    storage::RedisClusterOptions admin_options;
    admin_options.seeds = cluster_->masters();
    admin_ = std::make_unique<RedisClusterClient>(admin_options);
  }

  void SetUp() override {
    a_ = make_router("node-a");
    b_ = make_router("node-b");
    a_->add_fanout(&fanout_a_);
    b_->add_fanout(&fanout_b_);
    a_->start();
    b_->start();
    ASSERT_TRUE(eventually([&] { return a_->stats().subscribed && b_->stats().subscribed; }));
  }

  // Each test has its own keyspace: nothing it writes or publishes reaches another test.
  ClusterRouterOptions options_for(std::string node) {
    ClusterRouterOptions options;
    options.nodes = {cluster_->masters().front()};
    options.keyspace = "t" + std::to_string(test_number_);
    options.node_name = std::move(node);
    options.poll_interval = 20ms;
    options.resubscribe_min = 20ms;
    options.resubscribe_max = 200ms;
    return options;
  }
  std::unique_ptr<ClusterRouter> make_router(std::string node) {
    return std::make_unique<ClusterRouter>(options_for(std::move(node)));
  }

  // The route of `device` as Redis holds it: "<token> <node>", or "" when there is none.
  std::string route_of(std::string_view device) {
    const auto key = a_->route_key(device);
    auto reply = admin_->call(key, {"GET", key});
    EXPECT_TRUE(reply) << reply.error().message();
    return reply && !reply->is_nil() ? reply->text : std::string();
  }
  std::string route_node(std::string_view device) {
    const auto route = route_of(device);
    const auto space = route.find(' ');
    return space == std::string::npos ? std::string() : route.substr(space + 1);
  }
  bool routed_to(std::string_view device, std::string_view node) {
    return eventually([&] { return route_node(device) == node; });
  }

  static TestRedisCluster* cluster_;
  static inline int next_test_number_ = 0;
  const int test_number_ = ++next_test_number_;
  std::unique_ptr<RedisClusterClient> admin_;
  RecordingFanout fanout_a_;
  RecordingFanout fanout_b_;
  std::unique_ptr<ClusterRouter> a_;
  std::unique_ptr<ClusterRouter> b_;
};

TestRedisCluster* ClusterRouterTest::cluster_ = nullptr;

StreamNotify stream_notify(std::uint64_t stream, std::uint64_t head_seq) {
  StreamNotify notify;
  notify.stream = stream;
  notify.head_seq = head_seq;
  return notify;
}

TEST_F(ClusterRouterTest, ANotifyOnOneNodeReachesADeviceAttachedToAnother) {
  auto link = std::make_shared<RecordingLink>();
  b_->attach("d1", link);
  ASSERT_TRUE(routed_to("d1", "node-b"));

  EXPECT_FALSE(a_->notify("d1", 0, 7, NotifyPriority::kNormal));  // forwarded, not local
  ASSERT_TRUE(eventually([&] { return link->notifies().size() == 1; }));
  EXPECT_EQ(link->notifies()[0], std::make_pair(std::uint64_t{0}, std::uint64_t{7}));
  EXPECT_EQ(link->priorities()[0], NotifyPriority::kNormal);
  // Each side counts after the notify is on its way: A when Redis answers the publish, B
  // when the link has it.
  EXPECT_TRUE(eventually([&] { return a_->stats().forwarded == 1u; }));
  EXPECT_TRUE(eventually([&] { return b_->stats().received == 1u; }));
  // On its own node the device is notified at once.
  EXPECT_TRUE(b_->notify("d1", 0, 8, NotifyPriority::kHigh));
  EXPECT_EQ(link->notifies().size(), 2u);
}

TEST_F(ClusterRouterTest, ManyNotifiesForManyDevicesAllArrive) {
  constexpr std::uint64_t kDevices = 50;
  std::vector<std::shared_ptr<RecordingLink>> links;
  for (std::uint64_t i = 0; i < kDevices; ++i) {
    links.push_back(std::make_shared<RecordingLink>());
    b_->attach("dev-" + std::to_string(i), links.back());
  }
  ASSERT_TRUE(eventually([&] { return b_->stats().route_writes == kDevices; }));
  for (std::uint64_t seq = 1; seq <= 4; ++seq) {
    for (std::uint64_t i = 0; i < kDevices; ++i) {
      (void)a_->notify("dev-" + std::to_string(i), 0, seq, NotifyPriority::kHigh);
    }
  }
  for (const auto& link : links) {
    ASSERT_TRUE(eventually([&] { return link->notifies().size() == 4; }));
    EXPECT_EQ(link->notifies().back().second, 4u);
  }
  EXPECT_TRUE(eventually([&] { return a_->stats().forwarded == 4u * kDevices; }));
}

TEST_F(ClusterRouterTest, ADeviceThatMovedIsNotifiedOnlyWhereItIsNowAndALateDetachKeepsItsRoute) {
  auto on_a = std::make_shared<RecordingLink>();
  a_->attach("d1", on_a);
  ASSERT_TRUE(routed_to("d1", "node-a"));
  auto on_b = std::make_shared<RecordingLink>();
  b_->attach("d1", on_b);
  ASSERT_TRUE(routed_to("d1", "node-b"));
  const auto route = route_of("d1");

  // The old connection on A ends late: its compare-and-delete must not touch B's route.
  const auto writes_before = a_->stats().route_writes;
  a_->detach("d1", on_a.get());
  ASSERT_TRUE(eventually([&] { return a_->stats().route_writes == writes_before + 1; }));
  EXPECT_EQ(route_of("d1"), route);

  EXPECT_FALSE(a_->notify("d1", 0, 5, NotifyPriority::kHigh));
  ASSERT_TRUE(eventually([&] { return on_b->notifies().size() == 1; }));
  EXPECT_TRUE(on_a->notifies().empty());
  EXPECT_TRUE(a_->is_online("d1"));
}

TEST_F(ClusterRouterTest, AReattachToTheSameNodeRightAfterADetachKeepsTheNewRoute) {
  auto first = std::make_shared<RecordingLink>();
  auto second = std::make_shared<RecordingLink>();
  a_->attach("d1", first);
  a_->detach("d1", first.get());
  a_->attach("d1", second);  // all three writes queued back to back
  ASSERT_TRUE(eventually([&] { return a_->stats().route_writes == 3; }));
  EXPECT_EQ(route_node("d1"), "node-a");

  // A supersede on the same node, and the superseded link's late detach.
  auto third = std::make_shared<RecordingLink>();
  a_->attach("d1", third);
  EXPECT_EQ(second->superseded, 1);
  a_->detach("d1", second.get());
  ASSERT_TRUE(eventually([&] { return a_->stats().route_writes == 4; }));
  EXPECT_EQ(route_node("d1"), "node-a");

  EXPECT_FALSE(b_->notify("d1", 0, 9, NotifyPriority::kHigh));
  ASSERT_TRUE(eventually([&] { return third->notifies().size() == 1; }));
  EXPECT_TRUE(second->notifies().empty());

  // The last link's detach removes the route.
  a_->detach("d1", third.get());
  ASSERT_TRUE(eventually([&] { return route_of("d1").empty(); }));
  EXPECT_FALSE(b_->is_online("d1"));
}

TEST_F(ClusterRouterTest, ADetachThatSupersedeTriggersInsideAttachLeavesTheNewRoute) {
  // A link that detaches itself from supersede(), on the attaching thread.
  struct SelfDetaching : RecordingLink {
    ClusterRouter* router = nullptr;
    void supersede() override {
      RecordingLink::supersede();
      router->detach("d1", this);
    }
  };
  auto first = std::make_shared<SelfDetaching>();
  first->router = a_.get();
  a_->attach("d1", first);
  auto second = std::make_shared<RecordingLink>();
  a_->attach("d1", second);
  EXPECT_EQ(first->superseded, 1);
  ASSERT_TRUE(eventually([&] { return a_->stats().route_writes == 3; }));
  EXPECT_EQ(route_node("d1"), "node-a");
  EXPECT_TRUE(a_->notify("d1", 0, 1, NotifyPriority::kHigh));
  EXPECT_EQ(second->notifies().size(), 1u);
}

TEST_F(ClusterRouterTest, ConcurrentAttachesAndDetachesOfOneDeviceLeaveNoStaleRoute) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 200;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this] {
      auto mine = std::make_shared<RecordingLink>();
      for (int i = 0; i < kRounds; ++i) {
        a_->attach("d1", mine);
        a_->detach("d1", mine.get());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(a_->size(), 0u);
  // Route writes are applied in order: once a later one is in Redis, every earlier one is.
  auto sentinel = std::make_shared<RecordingLink>();
  a_->attach("sentinel-1", sentinel);
  ASSERT_TRUE(routed_to("sentinel-1", "node-a"));
  EXPECT_EQ(route_of("d1"), "");

  auto last = std::make_shared<RecordingLink>();
  a_->attach("d1", last);
  a_->attach("sentinel-2", sentinel);
  ASSERT_TRUE(routed_to("sentinel-2", "node-a"));
  EXPECT_EQ(route_node("d1"), "node-a");
  EXPECT_EQ(a_->stats().route_writes_dropped, 0u);
}

TEST_F(ClusterRouterTest, StreamsChangedCrossesNodes) {
  auto link = std::make_shared<RecordingLink>();
  b_->attach("d1", link);
  ASSERT_TRUE(routed_to("d1", "node-b"));
  EXPECT_FALSE(a_->streams_changed("d1"));
  ASSERT_TRUE(eventually([&] { return link->refreshes == 1; }));
  EXPECT_TRUE(link->notifies().empty());
  EXPECT_TRUE(b_->streams_changed("d1"));
  EXPECT_EQ(link->refreshes, 2);
}

TEST_F(ClusterRouterTest, AStreamNotifyReachesEveryNodesFanOutsWithItsFilter) {
  StreamNotify notify = stream_notify(5, 9);
  notify.priority = NotifyPriority::kNormal;
  notify.spread_ms = 1500;
  notify.filter = std::make_shared<const StreamFilter>(
      std::vector<StreamFilter::Step>{{StreamFilter::Op::kHas, 5},
                                      {StreamFilter::Op::kHas, 6},
                                      {StreamFilter::Op::kNot, 0},
                                      {StreamFilter::Op::kAnd, 0}});
  const StreamFilter filter = *notify.filter;
  a_->notify_stream(std::move(notify));
  EXPECT_EQ(fanout_a_.notifies().size(), 1u);  // the local fan-out is immediate

  ASSERT_TRUE(eventually([&] { return fanout_b_.notifies().size() == 1; }));
  const StreamNotify& got = *fanout_b_.notifies()[0];
  EXPECT_EQ(got.stream, 5u);
  EXPECT_EQ(got.head_seq, 9u);
  EXPECT_EQ(got.priority, NotifyPriority::kNormal);
  EXPECT_EQ(got.spread_ms, 1500u);
  ASSERT_TRUE(got.filter);
  EXPECT_EQ(*got.filter, filter);

  // B answers with its own broadcast; A hears it after its own first one (one channel, carried
  // in order), which it ignored: A's fan-out holds exactly its local notify and B's.
  b_->notify_stream(stream_notify(6, 1));
  ASSERT_TRUE(eventually([&] { return fanout_a_.notifies().size() >= 2; }));
  ASSERT_EQ(fanout_a_.notifies().size(), 2u);
  EXPECT_EQ(fanout_a_.notifies()[1]->stream, 6u);
  EXPECT_FALSE(fanout_a_.notifies()[1]->filter);
  EXPECT_EQ(fanout_b_.notifies().size(), 2u);
}

TEST_F(ClusterRouterTest, IsOnlineSeesARouteOfAnotherNode) {
  auto link = std::make_shared<RecordingLink>();
  b_->attach("d1", link);
  ASSERT_TRUE(routed_to("d1", "node-b"));
  EXPECT_TRUE(a_->is_online("d1"));
  EXPECT_TRUE(b_->is_online("d1"));
  EXPECT_FALSE(a_->is_online("nobody"));
  EXPECT_EQ(a_->size(), 0u);
  EXPECT_EQ(b_->size(), 1u);

  b_->detach("d1", link.get());
  ASSERT_TRUE(eventually([&] { return route_of("d1").empty(); }));
  EXPECT_FALSE(a_->is_online("d1"));
  EXPECT_FALSE(b_->is_online("d1"));
}

TEST_F(ClusterRouterTest, AnUnknownDeviceIsNotForwarded) {
  EXPECT_FALSE(a_->notify("nobody", 0, 1, NotifyPriority::kHigh));
  EXPECT_FALSE(a_->streams_changed("nobody"));
  ASSERT_TRUE(eventually([&] { return a_->stats().no_route == 2; }));
  EXPECT_EQ(a_->stats().forwarded, 0u);
  EXPECT_EQ(a_->stats().forward_failures, 0u);
}

TEST_F(ClusterRouterTest, AMalformedMessageIsIgnoredAndCounted) {
  const auto channel = b_->node_channel("node-b");
  const std::vector<std::string> garbage_messages = {"", "\x01", "not a message",
                                                     std::string("\x01\x01x\x01", 4)};
  for (const auto& garbage : garbage_messages) {
    auto published = admin_->call(channel, {"SPUBLISH", channel, garbage});
    ASSERT_TRUE(published && !published->is_error());
  }
  ASSERT_TRUE(eventually([&] { return b_->stats().malformed == 4; }));
  EXPECT_EQ(b_->stats().received, 0u);
  EXPECT_TRUE(b_->stats().subscribed);

  // The subscriber goes on.
  auto link = std::make_shared<RecordingLink>();
  b_->attach("d1", link);
  ASSERT_TRUE(routed_to("d1", "node-b"));
  (void)a_->notify("d1", 0, 3, NotifyPriority::kHigh);
  EXPECT_TRUE(eventually([&] { return link->notifies().size() == 1; }));
}

TEST_F(ClusterRouterTest, TheRouterResubscribesAfterItsSubscriberConnectionIsKilled) {
  const auto before = b_->stats().subscriptions;
  for (const auto& master : cluster_->masters()) {
    auto killed = admin_->call_at(master, {"CLIENT", "KILL", "TYPE", "pubsub"});
    ASSERT_TRUE(killed && !killed->is_error());
  }
  ASSERT_TRUE(eventually([&] {
    const auto s = b_->stats();
    return s.subscriptions > before && s.subscribed;
  }));
  EXPECT_GE(b_->stats().subscriber_errors, 1u);

  auto link = std::make_shared<RecordingLink>();
  b_->attach("d1", link);
  ASSERT_TRUE(routed_to("d1", "node-b"));
  (void)a_->notify("d1", 0, 4, NotifyPriority::kHigh);
  EXPECT_TRUE(eventually([&] { return link->notifies().size() == 1; }));
}

TEST_F(ClusterRouterTest, TheRouterResubscribesWhenItsChannelsSlotMovesToAnotherMaster) {
  // Moves the slot of B's channel (it holds no keys) to another master, as a reshard does:
  // the old owner drops B's sharded subscription with an sunsubscribe.
  const auto channel = b_->node_channel("node-b");
  const auto source = admin_->owner(channel);
  ASSERT_TRUE(source);
  storage::RedisEndpoint target;
  for (const auto& master : cluster_->masters()) {
    if (!(master == *source)) target = master;
  }
  const auto id_of = [&](const storage::RedisEndpoint& node) {
    auto id = admin_->call_at(node, {"CLUSTER", "MYID"});
    EXPECT_TRUE(id && !id->is_error());
    return id ? id->text : std::string();
  };
  const auto slot = std::to_string(storage::key_slot(channel));
  const auto before = b_->stats().subscriptions;
  const auto must = [](const boost::system::result<RedisValue>& reply) {
    ASSERT_TRUE(reply) << reply.error().message();
    ASSERT_FALSE(reply->is_error()) << reply->text;
  };
  must(admin_->call_at(target, {"CLUSTER", "SETSLOT", slot, "IMPORTING", id_of(*source)}));
  must(admin_->call_at(*source, {"CLUSTER", "SETSLOT", slot, "MIGRATING", id_of(target)}));
  must(admin_->call_at(target, {"CLUSTER", "SETSLOT", slot, "NODE", id_of(target)}));
  must(admin_->call_at(*source, {"CLUSTER", "SETSLOT", slot, "NODE", id_of(target)}));

  ASSERT_TRUE(eventually([&] {
    const auto s = b_->stats();
    return s.subscriptions > before && s.subscribed;
  }));
  ASSERT_TRUE(admin_->masters());  // relearn the map
  EXPECT_EQ(*admin_->owner(channel), target);

  auto link = std::make_shared<RecordingLink>();
  b_->attach("d1", link);
  ASSERT_TRUE(routed_to("d1", "node-b"));
  (void)a_->notify("d1", 0, 6, NotifyPriority::kHigh);  // A's map is stale: MOVED, then there
  EXPECT_TRUE(eventually([&] { return link->notifies().size() == 1; }));
}

TEST_F(ClusterRouterTest, TheSweepRenewsARouteAndRestoresALostOne) {
  auto options = options_for("node-c");
  options.route_ttl = 3600s;
  options.route_refresh = 1s;
  options.poll_interval = 5ms;
  ClusterRouter c(options);
  c.start();
  auto link = std::make_shared<RecordingLink>();
  c.attach("d1", link);
  ASSERT_TRUE(routed_to("d1", "node-c"));
  const auto key = c.route_key("d1");
  auto ttl = admin_->call(key, {"TTL", key});
  ASSERT_TRUE(ttl);
  EXPECT_GT(ttl->integer, 3500);

  ASSERT_TRUE(admin_->call(key, {"EXPIRE", key, "100"}));
  ASSERT_TRUE(eventually([&] {
    auto left = admin_->call(key, {"TTL", key});
    return left && left->integer > 3000;
  }));
  ASSERT_TRUE(admin_->call(key, {"DEL", key}));
  EXPECT_TRUE(routed_to("d1", "node-c"));
  // The route shows in Redis before the sweep has read the reply that counts it.
  EXPECT_TRUE(eventually([&] { return c.stats().routes_refreshed >= 2u; }));

  // A route another node took is left alone.
  auto elsewhere = std::make_shared<RecordingLink>();
  b_->attach("d1", elsewhere);
  ASSERT_TRUE(routed_to("d1", "node-b"));
  const auto route = route_of("d1");
  const auto sweeps = c.stats().sweeps;
  ASSERT_TRUE(eventually([&] { return c.stats().sweeps >= sweeps + 2; }));
  EXPECT_EQ(route_of("d1"), route);
}

TEST_F(ClusterRouterTest, StopAppliesTheQueuedDetaches) {
  auto link = std::make_shared<RecordingLink>();
  a_->attach("d1", link);
  a_->detach("d1", link.get());
  a_->stop();
  EXPECT_TRUE(route_of("d1").empty());
  EXPECT_EQ(a_->stats().route_writes, 2u);
  // After stop, nothing is queued any more.
  a_->attach("d2", std::make_shared<RecordingLink>());
  EXPECT_EQ(a_->stats().route_writes_dropped, 1u);
}

TEST(ClusterRouterWithoutRedis, LocalDevicesAreServedAndEveryFailureIsCounted) {
  ClusterRouterOptions options;
  options.nodes = {{"127.0.0.1", 1}};  // nothing listens: every connect is refused
  options.node_name = "alone";
  options.poll_interval = 10ms;
  options.resubscribe_min = 10ms;
  options.resubscribe_max = 50ms;
  options.lookup_backoff = 60s;
  ClusterRouter router(options);
  router.start();
  auto link = std::make_shared<RecordingLink>();
  router.attach("here", link);
  EXPECT_TRUE(router.notify("here", 0, 1, NotifyPriority::kHigh));
  EXPECT_TRUE(router.is_online("here"));
  EXPECT_FALSE(router.notify("elsewhere", 0, 1, NotifyPriority::kHigh));
  EXPECT_FALSE(router.is_online("elsewhere"));
  EXPECT_FALSE(router.is_online("elsewhere"));  // answered at once: within lookup_backoff
  ASSERT_TRUE(eventually([&] {
    const auto s = router.stats();
    return s.route_writes_failed >= 1 && s.forward_failures >= 1 && s.subscriber_errors >= 2;
  }));
  EXPECT_EQ(router.stats().lookups_failed, 2u);
  EXPECT_FALSE(router.stats().subscribed);
  EXPECT_EQ(link->notifies().size(), 1u);
}

TEST(ClusterRouterQueues, AForwardBeyondTheQueueBoundIsDroppedAndCounted) {
  ClusterRouterOptions options;
  options.nodes = {{"127.0.0.1", 1}};  // never contacted: the router is not started
  options.node_name = "n";
  options.max_forwards = 2;
  ClusterRouter router(options);
  for (int i = 0; i < 5; ++i) (void)router.notify("d", 0, 1, NotifyPriority::kHigh);
  EXPECT_EQ(router.stats().dropped, 3u);
}

TEST(ClusterRouterOptionsCheck, OptionsThatCannotWorkAreRefused) {
  ClusterRouterOptions good;
  good.nodes = {{"127.0.0.1", 6379}};
  good.node_name = "node-a";
  EXPECT_NO_THROW(ClusterRouter{good});
  auto refused = [&](const std::function<void(ClusterRouterOptions&)>& change) {
    auto options = good;
    change(options);
    EXPECT_THROW(ClusterRouter{options}, std::invalid_argument);
  };
  refused([](auto& o) { o.nodes.clear(); });
  refused([](auto& o) { o.node_name.clear(); });
  refused([](auto& o) { o.node_name = "node a"; });
  refused([](auto& o) { o.node_name = "node{a}"; });
  refused([](auto& o) { o.keyspace = "{herald}"; });
  refused([](auto& o) { o.node_name = std::string(256, 'n'); });
  refused([](auto& o) { o.max_forwards = 0; });
  refused([](auto& o) { o.route_refresh = o.route_ttl; });
}

}  // namespace
}  // namespace herald::distribution
