// Message priority against a real heraldd: a high-priority notify goes out at once, normal ones
// wait up to access.normal_notify_delay_ms and are merged, so a burst wakes the device once.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "herald_server.h"
#include "protocol/frame_codec.h"
#include "raw_peer.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;
using protocol::FrameType;

constexpr auto kWait = 20s;

PushOutcome push_with_priority(Sender& sender, const std::string& device, int n,
                               const std::string& priority) {
  boost::json::object body{{"to", boost::json::object{{"device", device}}},
                           {"data", boost::json::object{{"n", n}}},
                           {"priority", priority}};
  return sender.post("/v1/apps/" + kNewsApp.id + "/messages", kNewsApp.key,
                     boost::json::serialize(body));
}

// Registers `device` and connects it by hand; nullptr (and the test failed) without a HelloOk.
std::unique_ptr<RawPeer> connect_raw(const HeraldServer& server, Sender& sender,
                                     const std::string& device) {
  auto peer = std::make_unique<RawPeer>(server.device_port());
  peer->send(hello_frame(device, sender.register_device(kNewsApp, device)));
  const auto ok = peer->read_frame(kWait);
  if (!ok || ok->first != FrameType::kHelloOk) {
    ADD_FAILURE() << "no HelloOk for " << device;
    return nullptr;
  }
  // Then the list of its shared streams (the app's broadcast stream), before any notify.
  const auto streams = peer->read_frame(kWait);
  if (!streams || streams->first != FrameType::kStreams) {
    ADD_FAILURE() << "no Streams for " << device;
    return nullptr;
  }
  return peer;
}

protocol::wire::Notify notify_of(const RawFrame& frame) {
  EXPECT_EQ(frame.first, FrameType::kNotify);
  protocol::wire::Notify notify;
  EXPECT_TRUE(notify.ParseFromString(frame.second));
  return notify;
}

TEST(Priority, NormalNotifiesWaitAndRideOnTheNextHighOne) {
  // Normal notifies wait a minute here: nothing but the high one can release them in this test.
  HeraldServer server({"--access.normal_notify_delay_ms=60000"});
  Sender sender(server.http_port());
  auto peer = connect_raw(server, sender, "raw-prio-1");
  ASSERT_TRUE(peer);

  for (int n = 1; n <= 3; ++n) {
    const auto pushed = push_with_priority(sender, "raw-prio-1", n, "normal");
    ASSERT_TRUE(pushed.accepted()) << pushed.status;
    EXPECT_TRUE(pushed.body.at("targets").at(0).at("online").as_bool());
  }
  const auto high = push_with_priority(sender, "raw-prio-1", 4, "high");
  ASSERT_TRUE(high.accepted()) << high.status;

  // One Notify frame covers all four messages...
  const auto frame = peer->read_frame(kWait);
  ASSERT_TRUE(frame);
  const auto notify = notify_of(*frame);
  EXPECT_EQ(notify.stream(), 0u);
  EXPECT_EQ(notify.head_seq(), high.seq());
  // ...and no other follows: frames arrive in order, so the Pong to this Ping comes next.
  std::string ping;
  protocol::append_frame(FrameType::kPing, protocol::wire::Ping{}, ping);
  peer->send(ping);
  const auto next = peer->read_frame(kWait);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->first, FrameType::kPong);
}

TEST(Priority, NormalNotifiesOfABurstAreMergedIntoOneAfterTheDelay) {
  HeraldServer server({"--access.normal_notify_delay_ms=400"});
  Sender sender(server.http_port());
  auto peer = connect_raw(server, sender, "raw-prio-2");
  ASSERT_TRUE(peer);

  const auto started = std::chrono::steady_clock::now();
  const auto first = push_with_priority(sender, "raw-prio-2", 1, "normal");
  ASSERT_TRUE(first.accepted()) << first.status;
  const auto second = push_with_priority(sender, "raw-prio-2", 2, "normal");
  ASSERT_TRUE(second.accepted()) << second.status;

  const auto frame = peer->read_frame(kWait);
  ASSERT_TRUE(frame);
  const auto waited = std::chrono::steady_clock::now() - started;
  // The notify was held for the delay (a lower bound: a timer never fires early). If the second
  // push came in time it rode along; otherwise a second Notify follows with its head.
  EXPECT_GE(waited, 400ms);
  auto head = notify_of(*frame).head_seq();
  if (head < second.seq()) {
    const auto later = peer->read_frame(kWait);
    ASSERT_TRUE(later);
    head = notify_of(*later).head_seq();
  }
  EXPECT_EQ(head, second.seq());
}

TEST(Priority, NormalMessagesReachTheClientLibrary) {
  HeraldServer server({"--access.normal_notify_delay_ms=200"});
  Sender sender(server.http_port());
  TestDevice device(server, "prio-phone", sender.register_device(kNewsApp, "prio-phone"));
  ASSERT_TRUE(device.wait_connected(kWait));

  for (int n = 1; n <= 5; ++n) {
    ASSERT_TRUE(push_with_priority(sender, "prio-phone", n, n == 3 ? "high" : "normal").accepted());
  }
  ASSERT_EQ(device.inbox().wait_for(5, kWait), 5u);
  const auto got = device.inbox().messages();
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(boost::json::parse(got[i].data).at("n").as_int64(), static_cast<int>(i + 1));
  }
}

}  // namespace
}  // namespace herald::testing
