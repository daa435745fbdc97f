// Cluster mode (docs/cluster.md): two real heraldd nodes sharing a real Redis Cluster (three
// redis-server masters on loopback) for their storage, routes and notifies, driven by the real
// client library.
//
//   - A drain moves every device from A to B with no message lost or duplicated, while a careful
//     sender keeps sending through both nodes' APIs (and, when A stops answering, sends A's
//     message again through B with the same idempotency key: the key is shared, so it cannot
//     make a second copy).
//   - A message accepted by one node reaches a device connected to the other at once, not at
//     its next reconnect: the notify crosses nodes through Redis.
//   - A topic message accepted by one node reaches subscribers on the other.
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "checked_device.h"
#include "delivery_checker.h"
#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "metrics_scrape.h"
#include "node_probe.h"
#include "sender.h"
#include "storage/redis/testing/test_redis_cluster.h"
#include "test_device.h"

namespace herald::testing {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using storage::testing::TestRedisCluster;

constexpr auto kWait = 20s;
const std::string kTokenSecret = "cluster-test-token-secret-0123456789abcdef";

// One Redis Cluster for the whole binary: forming one takes Redis two seconds. Each test uses its
// own keyspace, so the deployments of two tests never see each other's data.
TestRedisCluster& redis() {
  static TestRedisCluster cluster;
  return cluster;
}

std::vector<std::string> node_args(const std::string& name, const std::string& keyspace,
                                   std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--node_name=" + name,
                                   "--auth.token_secret=" + kTokenSecret,
                                   "--storage.backend=redis",
                                   "--storage.redis.nodes=" + redis().seeds_text(),
                                   "--storage.redis.keyspace=" + keyspace,
                                   "--deployment.poll_interval_ms=100",
                                   "--deployment.peer_timeout_ms=5000"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// B, and A, which polls B's load (so it knows where to send its devices when it drains).
struct Nodes {
  explicit Nodes(const std::string& keyspace, std::vector<std::string> a_extra = {})
      : b(node_args("node-b", keyspace)), a(node_args("node-a", keyspace, [&] {
          a_extra.push_back("--deployment.peer=127.0.0.1:" + std::to_string(b.http_port()));
          return a_extra;
        }())) {}

  HeraldServer b;
  HeraldServer a;
};

// A device of the real client library that knows both nodes (A first), recording what it gets
// into the checker, with its cursors in memory.
class ClusterDevice {
 public:
  ClusterDevice(EventLoop& loop, const Nodes& nodes, const std::string& id,
                const std::string& token, DeliveryChecker& checker)
      : client_(loop, options(nodes, id, token), make_memory_cursor_store()) {
    client_.on_message(kNewsApp.id, checker.message_handler(id, payload_key));
    client_.on_gap(checker.gap_handler(id));
    client_.on_state(states_.handler());
    client_.start();
  }
  ~ClusterDevice() { client_.stop(); }
  ClusterDevice(const ClusterDevice&) = delete;
  ClusterDevice& operator=(const ClusterDevice&) = delete;

  bool wait_connected(std::chrono::milliseconds timeout) { return states_.wait_connected(timeout); }
  std::size_t connections() { return states_.count(ConnectionState::kConnected); }

 private:
  static ClientOptions options(const Nodes& nodes, const std::string& id,
                               const std::string& token) {
    ClientOptions o;
    o.endpoints = {{"127.0.0.1", nodes.a.device_port()}, {"127.0.0.1", nodes.b.device_port()}};
    o.device_id = id;
    o.token = token;
    o.backoff_initial = 20ms;
    o.backoff_max = 500ms;
    return o;
  }

  StateLog states_;
  Client client_;
};

TEST(Cluster, ADrainMovesEveryDeviceToThePeerWithNoMessageLostOrDuplicated) {
  constexpr int kDevices = 30;
  Nodes nodes("drain", {"--access.drain_rate_per_s=20"});
  ASSERT_TRUE(eventually([&] { return knows(nodes.a, nodes.b); }));
  DeliveryChecker checker;
  EventLoop loop(2);
  std::vector<std::string> ids;
  std::vector<std::unique_ptr<ClusterDevice>> devices;
  Sender a_sender(nodes.a.http_port());
  for (int i = 0; i < kDevices; ++i) {
    ids.push_back("drain-" + std::to_string(i));
    // Registered once, on A: the registration is in the shared storage, B knows it too.
    const std::string token = a_sender.register_device(kNewsApp, ids.back());
    devices.push_back(std::make_unique<ClusterDevice>(loop, nodes, ids.back(), token, checker));
    ASSERT_TRUE(devices.back()->wait_connected(kWait));
  }
  ASSERT_TRUE(eventually([&] { return connections_of(nodes.a) == kDevices; }));

  // The load alternates between the nodes' APIs; what A does not answer goes to B with the same
  // key. It runs before, during and after the drain: until kAfter messages went out after A
  // exited.
  constexpr int kAfter = 100;
  std::atomic<bool> a_gone{false};
  std::atomic<int> sent{0};
  std::atomic<int> sent_when_draining{-1};
  std::atomic<int> sent_when_gone{-1};
  std::jthread load([&](std::stop_token stop) {
    Sender via_a(nodes.a.http_port());
    Sender via_b(nodes.b.http_port());
    for (int i = 0; !stop.stop_requested(); ++i) {
      const std::string& device = ids[static_cast<std::size_t>(i) % ids.size()];
      const std::string key = "m-" + std::to_string(i);
      const std::string body = checked_message_body(device, key);
      PushOutcome answer;
      if (i % 2 == 0 && !a_gone.load()) {
        answer = via_a.post("/v1/apps/" + kNewsApp.id + "/messages", kNewsApp.key, body);
      }
      if (!answer.accepted()) {
        answer = via_b.post_message_until_answered(kNewsApp, body, key, 20ms, 10s);
      }
      checker.record_send(send_record(key, {device}, answer));
      sent = i + 1;
    }
  });
  // Let part of the load land while every device is on A.
  ASSERT_TRUE(eventually([&] { return checker.deliveries() >= 100; }));

  Sender admin_a(nodes.a.http_port());
  sent_when_draining = sent.load();
  ASSERT_EQ(admin_a
                .call(bhttp::verb::post, "/v1/admin/drain", nodes.a.admin_token(),
                      R"({"deadline_s": 60})")
                .status,
            202);
  const auto status = nodes.a.wait_exit(kWait);
  a_gone = true;
  sent_when_gone = sent.load();
  ASSERT_TRUE(status.has_value()) << "A did not exit once its devices left";
  EXPECT_EQ(*status, 0);
  EXPECT_TRUE(eventually([&] { return sent.load() >= sent_when_gone.load() + kAfter; }));
  load.request_stop();
  load.join();
  // The drain (30 devices at 20 per second) took over a second: messages went out all along.
  std::cout << "sent " << sent_when_draining << " before the drain, "
            << sent_when_gone - sent_when_draining << " during it, " << sent - sent_when_gone
            << " after A exited\n";
  EXPECT_GT(sent_when_gone - sent_when_draining, 50);

  // Every device moved once (A, then B) and B holds them all.
  EXPECT_TRUE(eventually([&] { return connections_of(nodes.b) == kDevices; }));
  for (auto& d : devices) EXPECT_EQ(d->connections(), 2U);

  // A fence per device, sent after everything else: per-device order means that once it
  // arrived, everything stored before it did.
  Sender via_b(nodes.b.http_port());
  for (const auto& device : ids) {
    const std::string fence = "fence-" + device;
    const auto answer = via_b.post_message_until_answered(
        kNewsApp, checked_message_body(device, fence), fence, 20ms, 10s);
    ASSERT_TRUE(answer.accepted()) << answer.status;
    checker.record_send(send_record(fence, {device}, answer));
  }
  for (const auto& device : ids) {
    ASSERT_TRUE(checker.wait_for(device, "fence-" + device, kWait)) << device;
  }
  const DeliveryReport report = checker.check();
  std::cout << report.summary();
  EXPECT_TRUE(report.ok()) << report.summary();
  EXPECT_EQ(report.acknowledged, static_cast<std::size_t>(sent.load() + kDevices));
  EXPECT_EQ(report.lost.count, 0U);
  EXPECT_EQ(report.duplicated.count, 0U);
}

TEST(Cluster, AMessageAcceptedByOneNodeReachesADeviceOnTheOtherAtOnce) {
  Nodes nodes("cross");
  Sender via_a(nodes.a.http_port());
  Sender via_b(nodes.b.http_port());
  // Connected to B only; the default heartbeat is a minute, far past the wait below, so only a
  // notify crossing from A can make it pull in time.
  ClientOptions options;
  options.endpoints = {{"127.0.0.1", nodes.b.device_port()}};
  options.device_id = "on-b";
  options.token = via_a.register_device(kNewsApp, "on-b");
  TestDevice device(options);
  ASSERT_TRUE(device.wait_connected(kWait));

  for (int i = 0; i < 5; ++i) {
    const auto pushed = via_a.push(kNewsApp, {"on-b"}, R"({"from": "a"})");
    ASSERT_TRUE(pushed.accepted()) << pushed.status;
    EXPECT_EQ(device.inbox().wait_for(static_cast<std::size_t>(i + 1), kWait),
              static_cast<std::size_t>(i + 1));
  }
  // Message ids from the two nodes never collide: each node holds its own number.
  const auto from_b = via_b.push(kNewsApp, {"on-b"}, R"({"from": "b"})");
  ASSERT_TRUE(from_b.accepted());
  EXPECT_EQ(device.inbox().wait_for(6, kWait), 6U);
  const auto items = device.inbox().items();
  std::set<std::string> message_ids;
  for (const auto& m : items) message_ids.insert(m.id);
  EXPECT_EQ(message_ids.size(), items.size());
  EXPECT_NE(items.front().id.substr(13), from_b.id().substr(13));  // the node number differs

  // Each node's metrics say what it did: A stored the messages in Redis and forwarded their
  // notifies, B sent the entries to its device.
  const auto a = samples_of(scrape(nodes.a.http_port(), nodes.a.admin_token()).body);
  EXPECT_GE(value_of(a, "herald_storage_entries_written_total"), 5);
  EXPECT_GE(value_of(a, "herald_storage_writes_total"), 1);
  EXPECT_EQ(value_of(a, "herald_storage_appends_failed_total"), 0);
  EXPECT_EQ(value_of(a, "herald_cluster_subscribed"), 1);
  EXPECT_EQ(value_of(a, "herald_storage_healthy"), -1) << "a RocksDB figure in cluster mode";
  const auto b = samples_of(scrape(nodes.b.http_port(), nodes.b.admin_token()).body);
  EXPECT_GE(value_of(b, "herald_delivery_delay_seconds_count"), 6);
  EXPECT_GE(value_of(b, "herald_storage_entries_written_total"), 1);
  // A counts a forward once Redis has answered the publish: maybe after the device pulled.
  EXPECT_TRUE(eventually([&] {
    return value_of(samples_of(scrape(nodes.a.http_port(), nodes.a.admin_token()).body),
                    "herald_cluster_forwarded_total") >= 5;
  }));
}

TEST(Cluster, ATopicMessageAcceptedByOneNodeReachesSubscribersOnBoth) {
  Nodes nodes("topics");
  Sender via_a(nodes.a.http_port());
  std::vector<std::unique_ptr<TestDevice>> devices;
  for (const auto& [id, port] : {std::pair{std::string("sub-a"), nodes.a.device_port()},
                                 std::pair{std::string("sub-b"), nodes.b.device_port()}}) {
    ClientOptions options;
    options.endpoints = {{"127.0.0.1", port}};
    options.device_id = id;
    options.token = via_a.register_device(kNewsApp, id);
    devices.push_back(std::make_unique<TestDevice>(options));
    ASSERT_TRUE(devices.back()->wait_connected(kWait));
    const auto joined =
        via_a.call(bhttp::verb::post, "/v1/apps/" + kNewsApp.id + "/topics/scores/subscribers",
                   kNewsApp.key, R"({"devices": [")" + id + R"("]})");
    ASSERT_EQ(joined.status, 200) << json::serialize(joined.body);
  }
  const auto sent = via_a.call(bhttp::verb::post, "/v1/apps/" + kNewsApp.id + "/messages",
                               kNewsApp.key, R"({"to": {"topic": "scores"}, "data": {"goal": 1}})");
  ASSERT_EQ(sent.status, 200) << json::serialize(sent.body);
  for (auto& device : devices) EXPECT_EQ(device->inbox().wait_for(1, kWait), 1U);
}

}  // namespace
}  // namespace herald::testing
