// Topics, conditions and broadcasts against a real heraldd, with devices on the real client
// library: joins and leaves from the device and from the sender API, a message stored once and
// read by every subscriber from its own cursor, exactly once, online or offline.
#include <chrono>
#include <future>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "herald_server.h"
#include "raw_peer.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;
namespace bhttp = boost::beast::http;
namespace json = boost::json;

constexpr auto kWait = 20s;

// Sends {"n": n} to `to`, with the `options` (ttl_s, collapse_key, spread_s...) as given.
PushOutcome push_to(Sender& sender, json::object to, int n, json::object options = {}) {
  json::object body = std::move(options);
  body["to"] = std::move(to);
  body["data"] = json::object{{"n", n}};
  return sender.post("/v1/apps/" + kNewsApp.id + "/messages", kNewsApp.key, json::serialize(body));
}

PushOutcome message_call(Sender& sender, bhttp::verb method, const std::string& id) {
  return sender.call(method, "/v1/apps/" + kNewsApp.id + "/messages/" + id, kNewsApp.key);
}

// Joins `devices` to `topic` through the sender API.
void join_by_api(Sender& sender, const std::string& topic, json::array devices) {
  const auto joined =
      sender.post("/v1/apps/" + kNewsApp.id + "/topics/" + topic + "/subscribers", kNewsApp.key,
                  json::serialize(json::object{{"devices", std::move(devices)}}));
  ASSERT_EQ(joined.status, 200) << json::serialize(joined.body);
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

TEST(Topics, SubscriptionsSurviveAServerRestartAndTheDevicesReconnect) {
  HeraldServer server;
  Fleet fleet(server);
  TestDevice& phone = fleet.add("restart-phone");
  ASSERT_EQ(change_topics(phone, {"weather"}, true), SubscribeStatus::kDone);
  ASSERT_EQ(server.terminate(), 0);
  server.restart();

  // The client reconnects by itself; its topic is still joined, from the server's own records.
  ASSERT_TRUE(push_to(fleet.sender, json::object{{"topic", "weather"}}, 1).accepted());
  ASSERT_GE(phone.inbox().wait_for(1, kWait), 1u);
  sync_with(fleet.sender, phone, "restart-phone", 100);
  EXPECT_EQ(numbers_from(phone, "weather"), (std::vector<std::int64_t>{1}));
  const auto topics = fleet.sender.call(
      bhttp::verb::get, "/v1/apps/" + kNewsApp.id + "/devices/restart-phone/topics", kNewsApp.key);
  ASSERT_EQ(topics.status, 200);
  EXPECT_EQ(topics.body.at("topics").as_array().size(), 1u);
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
  join_by_api(fleet.sender, "a", {"cond-both", "cond-a"});
  join_by_api(fleet.sender, "b", {"cond-both", "cond-b"});
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
  const auto status = message_call(fleet.sender, bhttp::verb::get, sent.id());
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(status.body.at("audience").at("broadcast"), true);
  EXPECT_EQ(status.body.at("stats").at("targeted"), 3);
  EXPECT_EQ(status.body.at("stats").at("delivered"), 3);
}

TEST(Topics, ARevokedTopicMessageIsRecalledFromWhoHadItAndHiddenFromTheRest) {
  HeraldServer server;
  Fleet fleet(server);
  TestDevice& reader = fleet.add("revoke-reader");
  const std::string late_token = fleet.sender.register_device(kNewsApp, "revoke-late");
  join_by_api(fleet.sender, "alerts", {"revoke-reader", "revoke-late"});

  const auto sent = push_to(fleet.sender, json::object{{"topic", "alerts"}}, 1);
  ASSERT_TRUE(sent.accepted()) << sent.status;
  ASSERT_GE(reader.inbox().wait_for(1, kWait), 1u);
  const auto revoked = message_call(fleet.sender, bhttp::verb::delete_, sent.id());
  ASSERT_EQ(revoked.status, 200) << json::serialize(revoked.body);
  EXPECT_EQ(revoked.body.at("state"), "revoked");

  // The reader had it: the recall reaches its app, from the topic's stream.
  ASSERT_GE(reader.recalls().wait_for(1, kWait), 1u);
  const Recall recall = reader.recalls().items().front();
  EXPECT_EQ(recall.recalled_id, sent.id());
  EXPECT_EQ(recall.topic, "alerts");

  // The device offline meanwhile sees neither: the next message is the first it gets.
  ASSERT_TRUE(push_to(fleet.sender, json::object{{"topic", "alerts"}}, 2).accepted());
  TestDevice late(server, "revoke-late", late_token);
  ASSERT_GE(late.inbox().wait_for(1, kWait), 1u);
  sync_with(fleet.sender, late, "revoke-late", 100);
  sync_with(fleet.sender, reader, "revoke-reader", 100);
  EXPECT_EQ(numbers_from(late, "alerts"), (std::vector<std::int64_t>{2}));
  EXPECT_TRUE(late.recalls().items().empty());
  EXPECT_EQ(numbers_from(reader, "alerts"), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(reader.recalls().items().size(), 1u);
}

TEST(Topics, TopicMessagesExpireAndCollapseAsInboxMessagesDo) {
  HeraldServer server;
  Fleet fleet(server);
  const std::string token = fleet.sender.register_device(kNewsApp, "ttl-phone");
  join_by_api(fleet.sender, "scores", {"ttl-phone"});

  const auto before = std::chrono::system_clock::now();
  const auto short_lived =
      push_to(fleet.sender, json::object{{"topic", "scores"}}, 1, json::object{{"ttl_s", 1}});
  const auto first = push_to(fleet.sender, json::object{{"topic", "scores"}}, 2,
                             json::object{{"collapse_key", "match-7"}});
  const auto second = push_to(fleet.sender, json::object{{"topic", "scores"}}, 3,
                              json::object{{"collapse_key", "match-7"}});
  for (const auto* p : {&short_lived, &first, &second}) ASSERT_TRUE(p->accepted()) << p->status;
  // A TTL is a span of wall-clock time: let it pass (this waits for time, not for an event).
  std::this_thread::sleep_until(before + 1100ms);

  TestDevice phone(server, "ttl-phone", token);
  ASSERT_GE(phone.inbox().wait_for(1, kWait), 1u);
  sync_with(fleet.sender, phone, "ttl-phone", 100);
  EXPECT_EQ(numbers_from(phone, "scores"), (std::vector<std::int64_t>{3}));

  const auto replaced = message_call(fleet.sender, bhttp::verb::get, first.id());
  EXPECT_EQ(replaced.body.at("state"), "replaced") << json::serialize(replaced.body);
  const auto expired = message_call(fleet.sender, bhttp::verb::get, short_lived.id());
  EXPECT_EQ(expired.body.at("stats").at("targeted"), 1) << json::serialize(expired.body);
  EXPECT_EQ(expired.body.at("stats").at("expired"), 1);
  EXPECT_EQ(expired.body.at("stats").at("delivered"), 0);
}

TEST(Topics, APacedBroadcastSpreadsItsNotifiesOverTheDuration) {
  constexpr int kDevices = 8;
  constexpr std::int64_t kSpreadMs = 2000;
  HeraldServer server;
  Fleet fleet(server);
  for (int i = 0; i < kDevices; ++i) {
    const std::string id = "paced-" + std::to_string(i);
    // Synced: each device's first pulls are answered, so only the notify makes it pull again.
    sync_with(fleet.sender, fleet.add(id), id, 100);
  }
  const auto sent_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  const auto sent = push_to(fleet.sender, json::object{{"broadcast", true}}, 1,
                            json::object{{"spread_s", kSpreadMs / 1000}});
  ASSERT_TRUE(sent.accepted()) << sent.status;
  std::int64_t last_ms = 0;
  for (auto& d : fleet.devices) {
    ASSERT_GE(d->inbox().wait_for(2, kWait), 2u) << "the broadcast did not arrive";
    const auto got = d->inbox().messages();
    const auto at = d->inbox().received_at_ms();
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (got[i].broadcast) last_ms = std::max(last_ms, at[i]);
    }
    EXPECT_EQ(numbers_from(*d, "*"), (std::vector<std::int64_t>{1}));
  }
  // Each access loop notifies the k-th of its m readers no earlier than k/m of the spread after
  // the message was stored; heraldd runs 2 loops here, so one has at least 4 of the 8 devices
  // and its last one cannot hear of the message before 3/4 of the spread. Unpaced, every device
  // would have it within milliseconds.
  EXPECT_GE(last_ms - sent_at_ms, kSpreadMs * 3 / 4);
}

TEST(Topics, ADeviceThatStopsReadingNeitherStopsNorSlowsTheOthersAndLosesNothing) {
  // Heartbeats every second, so a device that stopped reading learns of what it missed (a
  // resync on its next Pong) as soon as it reads again; a long grace, so that the server keeps
  // its connection while it is stuck.
  HeraldServer server({"--access.heartbeat_min_s=1", "--access.heartbeat_grace_s=300"});
  Fleet fleet(server);
  TestDevice& brisk = fleet.add("brisk");
  // The stuck device: the real client library, whose event loop blocks in the handler of the
  // first broadcast until the test lets it go, so it reads nothing from its socket meanwhile.
  const std::string stuck_token = fleet.sender.register_device(kNewsApp, "stuck");
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  Inbox stuck_inbox;
  EventLoop stuck_loop;
  ClientOptions options = device_options(server, "stuck", stuck_token);
  options.heartbeat_s = 1;
  options.adaptive_heartbeat = false;  // a Ping every second, so it hears of a resync at once
  options.response_timeout = std::chrono::minutes(5);  // its own stall is not the server's
  Client stuck(stuck_loop, options, make_memory_cursor_store());
  stuck.on_message(kNewsApp.id, [&, record = stuck_inbox.handler()](const Message& m) {
    record(m);
    released.wait();
  });
  StateLog stuck_states;
  stuck.on_state(stuck_states.handler());
  stuck.start();
  ASSERT_TRUE(stuck_states.wait_connected(kWait));

  // The access node keeps writing the others while this connection's buffers fill (what happens
  // past its output bound is the next test's).
  constexpr int kBurst = 1000;
  for (int n = 1; n <= kBurst; ++n) {
    const auto sent = push_to(fleet.sender, json::object{{"broadcast", true}}, n);
    ASSERT_TRUE(sent.accepted()) << sent.status;
  }
  // Every other device has everything while the stuck one is still stuck.
  ASSERT_GE(brisk.inbox().wait_for(kBurst, kWait), static_cast<std::size_t>(kBurst));
  EXPECT_EQ(stuck_inbox.messages().size(), 1u);

  release.set_value();
  ASSERT_GE(stuck_inbox.wait_for(kBurst, kWait), static_cast<std::size_t>(kBurst));
  std::vector<std::int64_t> expected(kBurst);
  std::iota(expected.begin(), expected.end(), 1);
  std::vector<std::int64_t> got;
  for (const auto& m : stuck_inbox.messages())
    got.push_back(json::parse(m.data).at("n").as_int64());
  EXPECT_EQ(got, expected);
  EXPECT_EQ(numbers_from(brisk, "*"), expected);
  stuck.stop();
}

TEST(Topics, AConnectionOverItsOutputBoundIsSkippedAndPullsEverythingWhenItReadsAgain) {
  // Small kernel buffers on both ends and the smallest output bound, so that a few thousand
  // notifies overflow them (on loopback the kernel would otherwise buffer megabytes).
  HeraldServer server({"--access.socket_send_buffer_bytes=4096",
                       "--access.output_high_watermark_bytes=1024", "--storage.durability=fast"});
  Fleet fleet(server);
  TestDevice& brisk = fleet.add("brisk");
  const std::string token = fleet.sender.register_device(kNewsApp, "raw-stuck");
  RawPeer stuck(server.device_port(), 4096);
  stuck.send(hello_frame("raw-stuck", token));
  auto frame = stuck.read_frame(kWait);
  ASSERT_TRUE(frame && frame->first == protocol::FrameType::kHelloOk);
  frame = stuck.read_frame(kWait);
  ASSERT_TRUE(frame && frame->first == protocol::FrameType::kStreams);
  protocol::wire::Streams streams;
  ASSERT_TRUE(streams.ParseFromString(frame->second));
  ASSERT_EQ(streams.streams_size(), 1);  // the app's broadcast stream
  const std::uint64_t broadcast = streams.streams(0).stream();

  // The raw device reads nothing while the burst goes out; the others get all of it.
  constexpr int kBurst = 3000;
  for (int n = 1; n <= kBurst; ++n) {
    ASSERT_TRUE(push_to(fleet.sender, json::object{{"broadcast", true}}, n).accepted());
  }
  ASSERT_GE(brisk.inbox().wait_for(kBurst, kWait), static_cast<std::size_t>(kBurst));

  // It reads again: the notifies that fitted, then a Pong that tells it to pull everything.
  stuck.send(frame_of(protocol::FrameType::kPing, protocol::wire::Ping{}));
  int notifies = 0;
  std::optional<protocol::wire::Pong> pong;
  while (!pong) {
    frame = stuck.read_frame(kWait);
    ASSERT_TRUE(frame) << "no Pong after " << notifies << " notifies";
    if (frame->first == protocol::FrameType::kNotify) ++notifies;
    if (frame->first == protocol::FrameType::kPong) {
      ASSERT_TRUE(pong.emplace().ParseFromString(frame->second));
    }
  }
  EXPECT_TRUE(pong->resync());
  EXPECT_LT(notifies, kBurst);

  // Its cursor still holds everything, once and in order.
  std::vector<std::int64_t> got;
  std::uint64_t epoch = 0;
  std::uint64_t after = 0;
  while (got.size() < static_cast<std::size_t>(kBurst)) {
    protocol::wire::Pull pull;
    pull.set_stream(broadcast);
    pull.set_epoch(epoch);
    pull.set_after_seq(after);
    stuck.send(frame_of(protocol::FrameType::kPull, pull));
    do {
      frame = stuck.read_frame(kWait);
      ASSERT_TRUE(frame) << "no answer to a pull after " << after;
    } while (frame->first != protocol::FrameType::kMessages);
    protocol::wire::Messages answer;
    ASSERT_TRUE(answer.ParseFromString(frame->second));
    ASSERT_GT(answer.entries_size(), 0);
    epoch = answer.epoch();
    for (const auto& e : answer.entries()) {
      got.push_back(json::parse(e.data()).at("n").as_int64());
      after = e.seq();
    }
  }
  std::vector<std::int64_t> expected(kBurst);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(got, expected);
  EXPECT_EQ(numbers_from(brisk, "*"), expected);
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
