// Topics, conditions and broadcasts against a real heraldd, with devices on the real client
// library: joins and leaves from the device and from the sender API, a message stored once and
// read by every subscriber from its own cursor, exactly once, online or offline.
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "herald_server.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

constexpr auto kWait = 20s;

PushOutcome push_to(Sender& sender, json::object to, int n) {
  json::object body{{"to", std::move(to)}, {"data", json::object{{"n", n}}}};
  return sender.post("/v1/apps/" + kNewsApp.id + "/messages", kNewsApp.key, json::serialize(body));
}

// The "n" of each message the device got from `topic` ("" = its inbox; "*" = broadcasts).
std::vector<std::int64_t> numbers_from(TestDevice& device, const std::string& topic) {
  std::vector<std::int64_t> out;
  for (const auto& m : device.inbox().messages()) {
    const bool from = topic == "*" ? m.broadcast : (!m.broadcast && m.topic == topic);
    if (from) out.push_back(json::parse(m.data).at("n").as_int64());
  }
  return out;
}

// Joins (or leaves) through the device's own connection and waits for the server's answer.
SubscribeStatus change_topics(TestDevice& device, const std::vector<std::string>& topics, bool join,
                              std::uint32_t history = 0) {
  std::promise<SubscribeResult> answered;
  auto done = [&answered](const SubscribeResult& r) { answered.set_value(r); };
  if (join) {
    device.client().subscribe(kNewsApp.id, topics, done, history);
  } else {
    device.client().unsubscribe(kNewsApp.id, topics, done);
  }
  auto future = answered.get_future();
  if (future.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "no answer to the subscribe";
    return SubscribeStatus::kStopped;
  }
  return future.get().status;
}

// A message to the device's inbox, to know that everything sent before it has been read: once
// it arrived, the client has applied every Streams and Notify frame that came before.
void sync_with(Sender& sender, TestDevice& device, const std::string& id, int marker) {
  const auto pushed = push_to(sender, json::object{{"device", id}}, marker);
  ASSERT_TRUE(pushed.accepted()) << pushed.status;
  ASSERT_TRUE(device.inbox().wait_until(
      [&](const std::vector<Message>& got) {
        for (const auto& m : got) {
          if (m.topic.empty() && !m.broadcast && json::parse(m.data).at("n") == marker) {
            return true;
          }
        }
        return false;
      },
      kWait));
}

struct Fleet {
  explicit Fleet(HeraldServer& s) : server(s), sender(s.http_port()) {}
  TestDevice& add(const std::string& id) {
    devices.push_back(
        std::make_unique<TestDevice>(server, id, sender.register_device(kNewsApp, id)));
    EXPECT_TRUE(devices.back()->wait_connected(kWait)) << id;
    return *devices.back();
  }
  HeraldServer& server;
  Sender sender;
  std::vector<std::unique_ptr<TestDevice>> devices;
};

TEST(Topics, ADeviceJoinsLeavesAndJoinsAgainStartingAtTheHeadEachTime) {
  HeraldServer server;
  Fleet fleet(server);
  TestDevice& phone = fleet.add("topic-phone-1");
  ASSERT_EQ(change_topics(phone, {"sports"}, true), SubscribeStatus::kDone);

  ASSERT_TRUE(push_to(fleet.sender, json::object{{"topic", "sports"}}, 1).accepted());
  ASSERT_TRUE(phone.inbox().wait_until([](const std::vector<Message>& got) { return !got.empty(); },
                                       kWait));
  EXPECT_EQ(phone.inbox().messages().front().topic, "sports");

  ASSERT_EQ(change_topics(phone, {"sports"}, false), SubscribeStatus::kDone);
  ASSERT_TRUE(push_to(fleet.sender, json::object{{"topic", "sports"}}, 2).accepted());
  sync_with(fleet.sender, phone, "topic-phone-1", 100);

  // Joined again: what was pushed while it was out stays out.
  ASSERT_EQ(change_topics(phone, {"sports"}, true), SubscribeStatus::kDone);
  ASSERT_TRUE(push_to(fleet.sender, json::object{{"topic", "sports"}}, 3).accepted());
  ASSERT_TRUE(phone.inbox().wait_until(
      [](const std::vector<Message>& got) { return got.size() >= 3; }, kWait));
  sync_with(fleet.sender, phone, "topic-phone-1", 101);
  EXPECT_EQ(numbers_from(phone, "sports"), (std::vector<std::int64_t>{1, 3}));
}

TEST(Topics, AJoinWithHistoryReadsTheLatestEntriesAndNoOlder) {
  HeraldServer server;
  Fleet fleet(server);
  TestDevice& phone = fleet.add("topic-history-1");
  for (int n = 1; n <= 5; ++n) {
    ASSERT_TRUE(push_to(fleet.sender, json::object{{"topic", "news"}}, n).accepted());
  }
  ASSERT_EQ(change_topics(phone, {"news"}, true, 2), SubscribeStatus::kDone);
  ASSERT_TRUE(phone.inbox().wait_until(
      [](const std::vector<Message>& got) { return got.size() >= 2; }, kWait));
  sync_with(fleet.sender, phone, "topic-history-1", 100);
  EXPECT_EQ(numbers_from(phone, "news"), (std::vector<std::int64_t>{4, 5}));
}

TEST(Topics, ConditionsReachExactlyTheDevicesWhoseTopicsSatisfyThem) {
  HeraldServer server;
  Fleet fleet(server);
  TestDevice& both = fleet.add("cond-both");
  TestDevice& only_a = fleet.add("cond-a");
  TestDevice& only_b = fleet.add("cond-b");
  // Joined through the sender API this time; the devices hear of it on their connections.
  for (const auto& [topic, devices] : std::vector<std::pair<std::string, json::array>>{
           {"a", {"cond-both", "cond-a"}}, {"b", {"cond-both", "cond-b"}}}) {
    const auto joined =
        fleet.sender.post("/v1/apps/" + kNewsApp.id + "/topics/" + topic + "/subscribers",
                          kNewsApp.key, json::serialize(json::object{{"devices", devices}}));
    ASSERT_EQ(joined.status, 200) << json::serialize(joined.body);
  }
  ASSERT_TRUE(
      push_to(fleet.sender, json::object{{"condition", "'a' in topics && !('b' in topics)"}}, 1)
          .accepted());
  ASSERT_TRUE(
      push_to(fleet.sender, json::object{{"condition", "'a' in topics || 'b' in topics"}}, 2)
          .accepted());
  ASSERT_TRUE(
      push_to(fleet.sender, json::object{{"condition", "'a' in topics && 'b' in topics"}}, 3)
          .accepted());
  const std::vector<std::pair<TestDevice*, std::vector<std::int64_t>>> expected = {
      {&both, {2, 3}}, {&only_a, {1, 2}}, {&only_b, {2}}};
  const char* ids[] = {"cond-both", "cond-a", "cond-b"};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    TestDevice& d = *expected[i].first;
    ASSERT_TRUE(d.inbox().wait_until(
        [&](const std::vector<Message>& got) { return got.size() >= expected[i].second.size(); },
        kWait));
    sync_with(fleet.sender, d, ids[i], 100);
    std::vector<std::int64_t> got;
    for (const auto& m : d.inbox().messages()) {
      if (m.topic.empty() && !m.broadcast) continue;  // the marker
      got.push_back(json::parse(m.data).at("n").as_int64());
    }
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, expected[i].second) << ids[i];
  }
}

TEST(Topics, ABroadcastReachesEveryDeviceOnceAlsoThoseOfflineWhenItWasSent) {
  HeraldServer server;
  Fleet fleet(server);
  TestDevice& online_1 = fleet.add("cast-1");
  TestDevice& online_2 = fleet.add("cast-2");
  // Registered, but not connected when the broadcast goes out.
  const std::string late_token = fleet.sender.register_device(kNewsApp, "cast-late");

  const auto sent = push_to(fleet.sender, json::object{{"broadcast", true}}, 7);
  ASSERT_TRUE(sent.accepted()) << sent.status;
  EXPECT_TRUE(sent.body.at("targets").as_array().empty());
  EXPECT_EQ(sent.body.at("stream").at("seq"), 1);

  TestDevice late(server, "cast-late", late_token);
  for (auto* d : {&online_1, &online_2, &late}) {
    ASSERT_TRUE(
        d->inbox().wait_until([](const std::vector<Message>& got) { return !got.empty(); }, kWait));
  }
  sync_with(fleet.sender, online_1, "cast-1", 100);
  sync_with(fleet.sender, online_2, "cast-2", 100);
  sync_with(fleet.sender, late, "cast-late", 100);
  for (auto* d : {&online_1, &online_2, &late}) {
    EXPECT_EQ(numbers_from(*d, "*"), (std::vector<std::int64_t>{7}));
  }

  // The message's status counts what happened: three targeted, three delivered and acked.
  ASSERT_TRUE(online_1.inbox().wait_for(2, kWait));
  const auto status = fleet.sender.call(
      bhttp::verb::get, "/v1/apps/" + kNewsApp.id + "/messages/" + sent.id(), kNewsApp.key);
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(status.body.at("audience").at("broadcast"), true);
  EXPECT_EQ(status.body.at("stats").at("targeted"), 3);
  EXPECT_EQ(status.body.at("stats").at("delivered"), 3);
}

TEST(Topics, BadTopicsAndConditionsAreRefusedAndStoreNothing) {
  HeraldServer server;
  Fleet fleet(server);
  for (const auto& to : {json::object{{"topic", "has space"}}, json::object{{"topic", ""}},
                         json::object{{"condition", "'a' in topics &&"}},
                         json::object{{"condition", "'a' in topics && !('a' in topics)"}},
                         json::object{{"broadcast", false}}}) {
    const auto refused = push_to(fleet.sender, to, 1);
    EXPECT_EQ(refused.status, 400) << json::serialize(to);
    EXPECT_EQ(refused.body.at("error").at("code"), "bad_request");
  }
  const auto unknown = fleet.sender.post(
      "/v1/apps/" + kNewsApp.id + "/topics/t/subscribers", kNewsApp.key,
      json::serialize(json::object{{"devices", json::array{"never-registered"}}}));
  EXPECT_EQ(unknown.status, 404);
  const auto none =
      fleet.sender.call(bhttp::verb::get, "/v1/apps/" + kNewsApp.id + "/topics/t", kNewsApp.key);
  EXPECT_EQ(none.status, 404);
}

}  // namespace
}  // namespace herald::testing
