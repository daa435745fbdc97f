// The cluster client against a real Redis Cluster (three redis-server masters on loopback):
// routing by slot, MOVED and ASK while a slot migrates between masters, pipelines, and a
// single server that is not a cluster.
#include "storage/redis/redis_cluster_client.h"

#include <functional>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "process.h"
#include "storage/redis/redis_error.h"
#include "storage/redis/testing/test_redis_cluster.h"

namespace herald::storage {
namespace {

using testing::TestRedisCluster;

RedisClusterOptions options_for(const TestRedisCluster& cluster) {
  RedisClusterOptions options;
  options.seeds = {cluster.masters().front()};  // one seed is enough to learn the rest
  return options;
}

RedisValue must(boost::system::result<RedisValue> reply) {
  EXPECT_TRUE(reply) << reply.error().message();
  if (!reply) return {};
  EXPECT_FALSE(reply->is_error()) << reply->text;
  return std::move(*reply);
}

std::string id_of(RedisClusterClient& client, const RedisEndpoint& node) {
  return must(client.call_at(node, {"CLUSTER", "MYID"})).text;
}

// Moves `key`'s slot (holding `key`) from its owner to `target` as redis-cli --cluster reshard
// does; `between` runs while the slot is half moved (IMPORTING on the target, MIGRATING on the
// source, the key already on the target).
void migrate_slot(RedisClusterClient& admin, std::string_view key, const RedisEndpoint& target,
                  const std::function<void()>& between) {
  const auto slot = std::to_string(key_slot(key));
  const auto source = *admin.owner(key);
  const auto source_id = id_of(admin, source);
  const auto target_id = id_of(admin, target);
  must(admin.call_at(target, {"CLUSTER", "SETSLOT", slot, "IMPORTING", source_id}));
  must(admin.call_at(source, {"CLUSTER", "SETSLOT", slot, "MIGRATING", target_id}));
  must(admin.call_at(source, {"MIGRATE", target.host, std::to_string(target.port), std::string(key),
                              "0", "5000"}));
  between();
  must(admin.call_at(target, {"CLUSTER", "SETSLOT", slot, "NODE", target_id}));
  must(admin.call_at(source, {"CLUSTER", "SETSLOT", slot, "NODE", target_id}));
}

// One cluster for the binary (CMake's ONE_PROCESS): forming one takes Redis two seconds. The
// tests use keys of their own; the slots the migration tests move stay where they were moved.
class RedisClusterClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { shared_ = new TestRedisCluster(); }
  static void TearDownTestSuite() {
    delete shared_;
    shared_ = nullptr;
  }

  TestRedisCluster& cluster_ = *shared_;

 private:
  static inline TestRedisCluster* shared_ = nullptr;
};

TEST_F(RedisClusterClientTest, SendsEachKeyToTheMasterOwningItsSlot) {
  RedisClusterClient client(options_for(cluster_));
  std::set<std::string> owners;
  for (int i = 0; i < 60; ++i) {
    const auto key = "key-" + std::to_string(i);
    EXPECT_EQ(must(client.call(key, {"SET", key, std::to_string(i)})).text, "OK");
    owners.insert(client.owner(key)->text());
  }
  EXPECT_EQ(owners.size(), 3U);  // 60 keys land on every master
  auto masters = client.masters();
  ASSERT_TRUE(masters);
  EXPECT_EQ(masters->size(), 3U);
  for (int i = 0; i < 60; ++i) {
    const auto key = "key-" + std::to_string(i);
    EXPECT_EQ(must(client.call(key, {"GET", key})).text, std::to_string(i));
    // Each key is on its owner and on no other master.
    const auto owner = *client.owner(key);
    EXPECT_EQ(must(client.call_at(owner, {"EXISTS", key})).integer, 1);
  }
}

TEST_F(RedisClusterClientTest, KeysSharingAHashTagShareAMasterAndAScript) {
  RedisClusterClient client(options_for(cluster_));
  const auto reply = must(client.call("{tag}", {"EVAL",
                                                "redis.call('SET', KEYS[1], ARGV[1]);"
                                                "redis.call('SET', KEYS[2], ARGV[1]);"
                                                "return redis.call('MGET', KEYS[1], KEYS[2])",
                                                "2", "{tag}a", "{tag}b", "v"}));
  ASSERT_EQ(reply.elements.size(), 2U);
  EXPECT_EQ(reply.elements[1].text, "v");
}

TEST_F(RedisClusterClientTest, PipelineAnswersInCommandOrder) {
  RedisClusterClient client(options_for(cluster_));
  std::vector<RedisCommand> commands;
  for (int i = 0; i < 100; ++i) commands.push_back({"RPUSH", "{p}list", std::to_string(i)});
  commands.push_back({"LRANGE", "{p}list", "0", "-1"});
  auto replies = client.pipeline("{p}", commands);
  ASSERT_TRUE(replies) << replies.error().message();
  ASSERT_EQ(replies->size(), 101U);
  for (int i = 0; i < 100; ++i) EXPECT_EQ((*replies)[static_cast<std::size_t>(i)].integer, i + 1);
  ASSERT_EQ(replies->back().elements.size(), 100U);
  EXPECT_EQ(replies->back().elements[42].text, "42");
}

TEST_F(RedisClusterClientTest, ErrorRepliesAreValuesForTheCaller) {
  RedisClusterClient client(options_for(cluster_));
  must(client.call("s", {"SET", "s", "text"}));
  auto reply = client.call("s", {"INCR", "s"});
  ASSERT_TRUE(reply);
  EXPECT_TRUE(reply->is_error());
  EXPECT_NE(reply->text.find("not an integer"), std::string::npos);
}

TEST_F(RedisClusterClientTest, FollowsMovedAfterASlotMigrated) {
  RedisClusterClient client(options_for(cluster_));
  RedisClusterClient admin(options_for(cluster_));
  const std::string key = "moving";
  must(client.call(key, {"SET", key, "before"}));
  const auto source = *client.owner(key);
  const auto target = cluster_.masters()[source == cluster_.masters()[0] ? 1 : 0];
  migrate_slot(admin, key, target, [] {});
  // The client's map still names the source, which answers MOVED; the client follows it and
  // relearns the map.
  EXPECT_EQ(must(client.call(key, {"GET", key})).text, "before");
  EXPECT_EQ(client.owner(key)->text(), target.text());
  EXPECT_EQ(must(client.call(key, {"SET", key, "after"})).text, "OK");
  EXPECT_EQ(must(admin.call_at(target, {"GET", key})).text, "after");
}

TEST_F(RedisClusterClientTest, FollowsAskWhileASlotIsHalfMigrated) {
  RedisClusterClient client(options_for(cluster_));
  RedisClusterClient admin(options_for(cluster_));
  const std::string key = "half";
  must(client.call(key, {"SET", key, "moved-already"}));
  const auto source = *client.owner(key);
  const auto target = cluster_.masters()[source == cluster_.masters()[0] ? 1 : 0];
  migrate_slot(admin, key, target, [&] {
    // The key left the source, which answers ASK: the client asks the target for this one
    // command and keeps the source as the slot's owner.
    EXPECT_EQ(must(client.call(key, {"GET", key})).text, "moved-already");
    EXPECT_EQ(client.owner(key)->text(), source.text());
  });
}

TEST(RedisClusterClient, UnreachableSeedsAreAConnectError) {
  RedisClusterOptions options;
  options.seeds = {{"127.0.0.1", 1}};
  options.command_timeout = std::chrono::milliseconds(200);
  RedisClusterClient client(options);
  auto reply = client.call("k", {"GET", "k"});
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), make_error_code(RedisError::kConnectFailed));
}

TEST(RedisEndpoints, ParsesListsAndRefusesWhatIsNotHostPort) {
  auto parsed = parse_redis_endpoints("127.0.0.1:7000, redis-2:7001");
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->size(), 2U);
  EXPECT_EQ((*parsed)[1].host, "redis-2");
  EXPECT_EQ((*parsed)[1].port, 7001);
  for (const char* bad : {"", "host", "host:", ":7000", "host:70000", "host:7000x", "a:1,,b:2"}) {
    EXPECT_FALSE(parse_redis_endpoints(bad)) << bad;
  }
}

TEST(RedisStandalone, OneServerThatIsNotAClusterOwnsEverySlot) {
  TestRedisCluster server(TestRedisCluster::Options{.masters = 1, .cluster = false});
  RedisClusterOptions options;
  options.seeds = server.masters();
  RedisClusterClient client(options);
  for (const std::string key : {"a", "b", "{x}c"}) {
    EXPECT_EQ(must(client.call(key, {"SET", key, key})).text, "OK");
    EXPECT_EQ(client.owner(key)->text(), server.masters().front().text());
  }
  std::vector<RedisCommand> commands = {{"GET", "a"}, {"GET", "b"}};
  auto replies = client.pipeline("a", commands);
  ASSERT_TRUE(replies);
  EXPECT_EQ((*replies)[1].text, "b");
}

}  // namespace
}  // namespace herald::storage
