// End-to-end delivery through a real heraldd process: the sender API over HTTP, devices through
// the real client library over TCP, RocksDB underneath.
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/json.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "raw_peer.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 20s;

boost::json::value json(const std::string& text) { return boost::json::parse(text); }

// True when the kernel's socket table of heraldd's network namespace (/proc/PID/net/tcp) holds
// an established connection to its device port from the IPv4 address `source`: the server's
// view of where a device connected from. The table prints each address as the 32-bit word in
// memory, in hex: 127.0.0.6 is 0600007F on this little-endian host.
bool server_has_connection_from(const HeraldServer& server, const std::string& source) {
  const auto bytes = boost::asio::ip::make_address_v4(source).to_bytes();
  std::array<char, 16> remote{};
  std::snprintf(remote.data(), remote.size(), "%02X%02X%02X%02X:", bytes[3], bytes[2], bytes[1],
                bytes[0]);
  std::array<char, 8> local_port{};
  std::snprintf(local_port.data(), local_port.size(), ":%04X", server.device_port());
  std::ifstream table("/proc/" + std::to_string(server.pid()) + "/net/tcp");
  std::string line;
  std::getline(table, line);  // the header
  while (std::getline(table, line)) {
    // "  sl  local_address rem_address   st ...": 01 is ESTABLISHED.
    std::istringstream fields(line);
    std::string slot, local, rem, state;
    fields >> slot >> local >> rem >> state;
    if (local.ends_with(local_port.data()) && rem.starts_with(remote.data()) && state == "01") {
      return true;
    }
  }
  return false;
}

TEST(Delivery, OnlinePushReachesTheConnectedDevice) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-1");

  EventLoop loop;
  Inbox inbox;
  StateLog states;
  Client client(loop, device_options(server, "phone-1", token), make_memory_cursor_store());
  client.on_message(kNewsApp.id, inbox.handler());
  client.on_state(states.handler());
  client.start();
  ASSERT_TRUE(states.wait_connected(kWait));

  const auto pushed = sender.push(kNewsApp, {"phone-1"}, R"({"title":"hello"})");
  ASSERT_TRUE(pushed.accepted());
  ASSERT_EQ(inbox.wait_for(1, kWait), 1u);
  const auto m = inbox.messages().front();
  EXPECT_EQ(m.app, kNewsApp.id);
  EXPECT_EQ(m.id, pushed.id());
  EXPECT_EQ(m.seq, pushed.seq());
  EXPECT_EQ(json(m.data), json(R"({"title":"hello"})"));
  client.stop();
}

TEST(Delivery, PushReachesADeviceConnectedFromItsLocalAddress) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-src");

  EventLoop loop;
  Inbox inbox;
  StateLog states;
  ClientOptions o = device_options(server, "phone-src", token);
  o.local_address = "127.0.0.6";
  Client client(loop, std::move(o), make_memory_cursor_store());
  client.on_message(kNewsApp.id, inbox.handler());
  client.on_state(states.handler());
  client.start();
  ASSERT_TRUE(states.wait_connected(kWait));
  // HelloOk came: the server holds the connection, from 127.0.0.6 and not the default 127.0.0.1.
  EXPECT_TRUE(server_has_connection_from(server, "127.0.0.6"));
  EXPECT_FALSE(server_has_connection_from(server, "127.0.0.1"));

  const auto pushed = sender.push(kNewsApp, {"phone-src"}, R"({"title":"from .6"})");
  ASSERT_TRUE(pushed.accepted());
  ASSERT_EQ(inbox.wait_for(1, kWait), 1u);
  EXPECT_EQ(inbox.messages().front().id, pushed.id());
  client.stop();
}

// A Notify can be lost on a live connection (docs/protocol.md section 4, "Resync"): one that the
// device answered with neither a Pull nor an Ack makes the next Pong ask for a resync, once; one
// it answered does not.
TEST(Delivery, AnUnansweredNotifyMakesTheNextPongAskForAResync) {
  HeraldServer server;
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "raw-resync");
  RawPeer peer(server.device_port());
  peer.send(hello_frame("raw-resync", token));
  for (auto type : {protocol::FrameType::kHelloOk, protocol::FrameType::kStreams}) {
    auto f = peer.read_frame(kWait);
    ASSERT_TRUE(f && f->first == type);
  }
  // Sends a Ping and returns whether its Pong asks for a resync.
  const auto pong_asks_resync = [&] {
    peer.send(frame_of(protocol::FrameType::kPing, protocol::wire::Ping{}));
    auto f = peer.read_frame(kWait);
    EXPECT_TRUE(f && f->first == protocol::FrameType::kPong);
    protocol::wire::Pong pong;
    EXPECT_TRUE(f && pong.ParseFromString(f->second));
    return pong.resync();
  };
  EXPECT_FALSE(pong_asks_resync());  // nothing was notified

  ASSERT_TRUE(sender.push(kNewsApp, {"raw-resync"}, R"({"n":1})").accepted());
  auto notify = peer.read_frame(kWait);
  ASSERT_TRUE(notify && notify->first == protocol::FrameType::kNotify);
  EXPECT_TRUE(pong_asks_resync());   // the Notify drew no Pull: it may have been lost
  EXPECT_FALSE(pong_asks_resync());  // asked once; nothing was notified since

  ASSERT_TRUE(sender.push(kNewsApp, {"raw-resync"}, R"({"n":2})").accepted());
  notify = peer.read_frame(kWait);
  ASSERT_TRUE(notify && notify->first == protocol::FrameType::kNotify);
  protocol::wire::Pull pull;
  pull.set_stream(protocol::kInboxStream);
  pull.set_limit(10);
  peer.send(frame_of(protocol::FrameType::kPull, pull));
  auto messages = peer.read_frame(kWait);
  ASSERT_TRUE(messages && messages->first == protocol::FrameType::kMessages);
  EXPECT_FALSE(pong_asks_resync());  // the device pulled
}

TEST(Delivery, OfflinePushIsDeliveredInOrderOnConnect) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-2");
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(sender.push(kNewsApp, {"phone-2"}, "{\"n\":" + std::to_string(i) + "}").accepted());
  }

  EventLoop loop;
  Inbox inbox;
  Client client(loop, device_options(server, "phone-2", token), make_memory_cursor_store());
  client.on_message(kNewsApp.id, inbox.handler());
  client.start();
  ASSERT_EQ(inbox.wait_for(3, kWait), 3u);
  const auto got = inbox.messages();
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].seq, i + 1);
    EXPECT_EQ(json(got[i].data).at("n").as_int64(), static_cast<std::int64_t>(i + 1));
  }
  client.stop();
}

TEST(Delivery, ExpiredMessageIsNeverDelivered) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-3");
  const auto before = std::chrono::system_clock::now();
  const auto short_lived = sender.push(kNewsApp, {"phone-3"}, R"({"n":1})", 1);
  ASSERT_TRUE(short_lived.accepted());
  const auto lasting = sender.push(kNewsApp, {"phone-3"}, R"({"n":2})");
  ASSERT_TRUE(lasting.accepted());
  // A TTL is a span of wall-clock time: let it pass (this waits for time, not for an event).
  std::this_thread::sleep_until(before + 1100ms);

  EventLoop loop;
  Inbox inbox;
  Client client(loop, device_options(server, "phone-3", token), make_memory_cursor_store());
  client.on_message(kNewsApp.id, inbox.handler());
  client.start();
  ASSERT_GE(inbox.wait_for(1, kWait), 1u);
  // Entries arrive in sequence order, so the first one delivered proves seq 1 was skipped.
  const auto first = inbox.messages().front();
  EXPECT_EQ(first.seq, lasting.seq());
  EXPECT_EQ(json(first.data).at("n").as_int64(), 2);
  client.stop();
  EXPECT_EQ(inbox.messages().size(), 1u);
}

TEST(Delivery, SeveralAppsShareOneConnection) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-4");
  sender.register_device(kChatApp, "phone-4");

  EventLoop loop;
  Inbox news;
  Inbox chat;
  Client client(loop, device_options(server, "phone-4", token), make_memory_cursor_store());
  client.on_message(kNewsApp.id, news.handler());
  client.on_message(kChatApp.id, chat.handler());
  client.start();

  ASSERT_TRUE(sender.push(kNewsApp, {"phone-4"}, R"({"from":"news"})").accepted());
  ASSERT_TRUE(sender.push(kChatApp, {"phone-4"}, R"({"from":"chat"})").accepted());
  ASSERT_TRUE(sender.push(kNewsApp, {"phone-4"}, R"({"from":"news"})").accepted());
  ASSERT_EQ(news.wait_for(2, kWait), 2u);
  ASSERT_EQ(chat.wait_for(1, kWait), 1u);
  for (const auto& m : news.messages()) EXPECT_EQ(m.app, kNewsApp.id);
  EXPECT_EQ(chat.messages().front().app, kChatApp.id);
  // One inbox stream for the device: the apps' messages share its sequence.
  EXPECT_EQ(chat.messages().front().seq, 2u);
  client.stop();
}

TEST(Delivery, PushToAnotherAppsDeviceIsUnknownAndStoresNothing) {
  HeraldServer server;
  Sender sender(server.http_port());
  sender.register_device(kChatApp, "phone-5");
  const auto refused = sender.push(kNewsApp, {"phone-5"}, R"({"x":1})");
  EXPECT_EQ(refused.status, 404);
  EXPECT_EQ(refused.body.at("error").at("code").as_string(), "unknown_device");
  // The chat app's own first message still gets seq 1: the refused push stored nothing.
  const auto ok = sender.push(kChatApp, {"phone-5"}, R"({"x":2})");
  ASSERT_TRUE(ok.accepted());
  EXPECT_EQ(ok.seq(), 1u);
}

TEST(Delivery, WrongTokenIsRefusedWithAnErrorFrame) {
  HeraldServer server;
  Sender sender(server.http_port());
  const auto token_of_other = sender.register_device(kNewsApp, "phone-6");
  sender.register_device(kNewsApp, "phone-7");

  EventLoop loop;
  StateLog forged_states;
  Client forged(loop, device_options(server, "phone-7", "v1.1700000000.AAAAforged"),
                make_memory_cursor_store());
  forged.on_state(forged_states.handler());
  forged.start();
  EXPECT_EQ(forged_states.wait_for_error(kWait), 11u);  // kBadCredentials
  forged.stop();

  StateLog stolen_states;
  Client stolen(loop, device_options(server, "phone-7", token_of_other),
                make_memory_cursor_store());
  stolen.on_state(stolen_states.handler());
  stolen.start();
  EXPECT_EQ(stolen_states.wait_for_error(kWait), 11u);
  stolen.stop();
}

// kill -9 of heraldd in the middle of 10,000 pushes: afterwards the device has every message the
// API accepted, exactly once, in order; nothing it never sent; sequence numbers without a gap.
TEST(Delivery, KillNineMidPushLosesNoAcceptedMessage) {
  constexpr int kAccepted = 10'000;
  constexpr int kKillAt = 5'000;
  constexpr int kPushers = 4;
  HeraldServer server;
  const auto token = Sender(server.http_port()).register_device(kNewsApp, "phone-kill");

  EventLoop loop;
  Inbox inbox;
  Client client(loop, device_options(server, "phone-kill", token), make_memory_cursor_store());
  client.on_message(kNewsApp.id, inbox.handler());
  client.start();

  std::mutex mu;
  std::condition_variable cv;
  int generation = 0;  // bumped when the restarted server is up again
  std::set<std::int64_t> accepted;
  std::set<std::int64_t> unknown;  // no answer: maybe stored, maybe not
  std::set<std::int64_t> refused;  // an error answer: nothing stored
  std::atomic<std::int64_t> next_n{0};

  auto pusher = [&] {
    Sender sender(server.http_port());
    for (;;) {
      int seen_generation = 0;
      {
        std::lock_guard lock(mu);
        if (accepted.size() >= kAccepted) return;
        seen_generation = generation;
      }
      const std::int64_t n = next_n++;
      const auto r = sender.push(kNewsApp, {"phone-kill"}, "{\"n\":" + std::to_string(n) + "}");
      std::unique_lock lock(mu);
      if (r.accepted()) {
        accepted.insert(n);
        cv.notify_all();
      } else if (r.status != 0) {
        refused.insert(n);
      } else {
        // The server went down under this request: wait for it to come back.
        unknown.insert(n);
        cv.wait(lock, [&] { return generation != seen_generation; });
      }
    }
  };
  std::vector<std::thread> pushers;
  for (int i = 0; i < kPushers; ++i) pushers.emplace_back(pusher);

  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return accepted.size() >= kKillAt; });
  }
  server.kill9();
  server.restart();
  {
    std::lock_guard lock(mu);
    ++generation;
  }
  cv.notify_all();
  for (auto& t : pushers) t.join();

  // Unknown requests may have been stored too, so counting messages is not enough: wait until every
  // accepted one is there (or the deadline, then the checks below name what is missing).
  std::set<std::int64_t> missing = accepted;
  std::size_t looked_at = 0;
  inbox.wait_until(
      [&](const std::vector<Message>& got) {
        for (; looked_at < got.size(); ++looked_at) {
          missing.erase(json(got[looked_at].data).at("n").as_int64());
        }
        return missing.empty();
      },
      120s);
  client.stop();

  const auto delivered = inbox.messages();
  std::set<std::int64_t> seen;
  std::uint64_t expected_seq = 1;
  for (const auto& m : delivered) {
    const auto n = json(m.data).at("n").as_int64();
    EXPECT_TRUE(seen.insert(n).second) << "duplicate " << n;
    EXPECT_TRUE(accepted.count(n) || unknown.count(n)) << "never sent " << n;
    EXPECT_EQ(m.seq, expected_seq++) << "gap or reorder";
  }
  std::size_t lost = 0;
  for (auto n : accepted) lost += seen.count(n) ? 0 : 1;
  EXPECT_EQ(lost, 0u);
  EXPECT_GE(accepted.size(), static_cast<std::size_t>(kAccepted));
}

}  // namespace
}  // namespace herald::testing
