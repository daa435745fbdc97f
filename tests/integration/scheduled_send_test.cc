// Scheduled sends end to end: a real heraldd (killed with -9 and restarted on its data), the
// sender API over HTTP, a device through the real client library. The waits are for events (a
// message arriving, a connection); the only times involved are the send times themselves.
#include <chrono>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr auto kWait = 20s;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const std::string kMessages = "/v1/apps/" + kNewsApp.id + "/messages";

// POSTs a message for `device` due at `send_at_ms`.
PushOutcome schedule(Sender& sender, const std::string& device, const std::string& data,
                     std::int64_t send_at_ms) {
  const json::object body{{"to", json::object{{"device", device}}},
                          {"data", json::parse(data)},
                          {"send_at_ms", send_at_ms}};
  return sender.post(kMessages, kNewsApp.key, json::serialize(body));
}

json::value message_status(Sender& sender, const std::string& id) {
  return sender.call(bhttp::verb::get, kMessages + "/" + id, kNewsApp.key).body;
}

std::int64_t inbox_head(Sender& sender, const std::string& device) {
  const auto r =
      sender.call(bhttp::verb::get, "/v1/apps/" + kNewsApp.id + "/devices/" + device, kNewsApp.key);
  return r.body.at("streams").at(0).at("head_seq").as_int64();
}

TEST(ScheduledSend, SurvivesAKillNineAndReachesTheDeviceOnceAfterItsSendTime) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-s1");
  TestDevice device(server, "phone-s1", token);
  ASSERT_TRUE(device.wait_connected(kWait));
  Inbox& inbox = device.inbox();

  const std::int64_t send_at = now_ms() + 2'000;
  const auto scheduled = schedule(sender, "phone-s1", R"({"n":"scheduled"})", send_at);
  ASSERT_EQ(scheduled.status, 202) << json::serialize(scheduled.body);
  EXPECT_EQ(scheduled.body.at("state"), "scheduled");
  const std::string id = scheduled.id();

  // Stored before the 202: a kill -9 before the send time loses nothing.
  ASSERT_LT(now_ms(), send_at) << "the machine is too slow for this test's margin";
  server.kill9();
  server.restart();

  ASSERT_EQ(inbox.wait_for(1, kWait), 1u);
  const Message got = inbox.messages().front();
  EXPECT_EQ(got.id, id);
  EXPECT_EQ(json::parse(got.data), json::parse(R"({"n":"scheduled"})"));
  EXPECT_GE(got.sent_at_ms, send_at);
  EXPECT_GE(inbox.received_at_ms().front(), send_at);

  // Exactly once: a message sent now is the very next one the device gets (a second copy of
  // the scheduled one would have been stored before it).
  const auto after = sender.push(kNewsApp, {"phone-s1"}, R"({"n":"after"})");
  ASSERT_TRUE(after.accepted());
  ASSERT_GE(inbox.wait_for(2, kWait), 2u);
  const auto all = inbox.messages();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].id, after.id());
  EXPECT_EQ(inbox_head(sender, "phone-s1"), 2);
  const auto status = message_status(sender, id);
  EXPECT_EQ(status.at("state"), "sent");
  EXPECT_EQ(status.at("send_at_ms"), send_at);
  EXPECT_EQ(status.at("targets").at(0).at("seq"), 1);
}

TEST(ScheduledSend, ACancelledMessageIsNeverDelivered) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-s2");
  TestDevice device(server, "phone-s2", token);
  Inbox& inbox = device.inbox();

  const std::int64_t send_at = now_ms() + 1'500;
  const auto cancelled = schedule(sender, "phone-s2", R"({"n":"cancelled"})", send_at);
  ASSERT_EQ(cancelled.status, 202) << json::serialize(cancelled.body);
  // Due after the cancelled one: the scheduler sends in due order, so once this one arrived the
  // cancelled one would have arrived before it.
  const auto kept = schedule(sender, "phone-s2", R"({"n":"kept"})", send_at + 300);
  ASSERT_EQ(kept.status, 202) << json::serialize(kept.body);

  const auto answer =
      sender.call(bhttp::verb::delete_, kMessages + "/" + cancelled.id(), kNewsApp.key);
  ASSERT_EQ(answer.status, 200) << json::serialize(answer.body);
  EXPECT_EQ(answer.body.at("state"), "cancelled");

  ASSERT_EQ(inbox.wait_for(1, kWait), 1u);
  EXPECT_EQ(inbox.messages().front().id, kept.id());
  EXPECT_GE(inbox.received_at_ms().front(), send_at + 300);
  EXPECT_EQ(inbox_head(sender, "phone-s2"), 1);  // the cancelled one was never stored
  EXPECT_EQ(message_status(sender, cancelled.id()).at("state"), "cancelled");
  EXPECT_EQ(message_status(sender, kept.id()).at("state"), "sent");
}

}  // namespace
}  // namespace herald::testing
