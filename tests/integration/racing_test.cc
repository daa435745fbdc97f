// Connection racing (client/README.md "Racing", docs/protocol.md section 3 "Racing"): a real
// heraldd, herald-natsim proxies standing for dead and slow endpoints, and the real client library.
//
//   endpoints: [blackhole proxy] [delay proxy, 2 s] [heraldd directly]
//              t=0 attempt 0     t=250 ms attempt 1  t=500 ms attempt 2 ── HelloOk: wins
//                                 └─ its Hello reaches heraldd at about 2.25 s: race_lost, and
//                                    the winner stays connected
//
// And the server's rule alone, with raw frames: a second Hello of the same race is refused, one of
// another race supersedes as before.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/ip/address_v4.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "natsim/nat_proxy.h"
#include "protocol/frame_codec.h"
#include "raw_peer.h"
#include "sender.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;
using natsim::NatMode;
using natsim::NatProxyOptions;
using natsim::NatProxyThread;
using protocol::ErrorCode;
using protocol::FrameType;

constexpr auto kWait = 20s;  // generous: only a failing test waits this long

// What a proxy in front of heraldd's device port needs for `mode`.
NatProxyOptions proxy_options(NatMode mode, std::uint16_t target_port,
                              std::chrono::milliseconds delay = 0ms) {
  NatProxyOptions o;
  o.mode = mode;
  o.target = {boost::asio::ip::address_v4::loopback(), target_port};
  o.delay = delay;
  return o;
}

Endpoint endpoint_of(const NatProxyThread& proxy) { return {"127.0.0.1", proxy.port()}; }

// Polls `done` until it holds or `timeout` passed; returns whether it holds. For the proxies'
// counters, which have no notification.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);  // the polling period, not a synchronisation
  }
  return true;
}

std::string text(const Endpoint& ep) { return ep.host + ":" + std::to_string(ep.port); }

// A port on which nothing listens: connecting to it is refused at once.
Endpoint closed_endpoint() { return {"127.0.0.1", free_port()}; }

ClientOptions racing_options(std::vector<Endpoint> endpoints, const std::string& device,
                             const std::string& token) {
  ClientOptions o;
  o.endpoints = std::move(endpoints);
  o.device_id = device;
  o.token = token;
  o.race_width = 3;
  o.race_stagger = 250ms;
  o.backoff_initial = 20ms;
  o.backoff_max = 500ms;
  return o;
}

TEST(Racing, PicksTheFastEndpointWhenOneIsBlackholedAndOneDelayed) {
  HeraldServer server;
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "racer-1");
  NatProxyThread blackhole(proxy_options(NatMode::kBlackhole, server.device_port()));
  NatProxyThread slow(proxy_options(NatMode::kDelay, server.device_port(), 2000ms));
  const Endpoint direct{"127.0.0.1", server.device_port()};

  EventLoop loop;
  Inbox inbox;
  StateLog states;
  Client client(
      loop, racing_options({endpoint_of(blackhole), endpoint_of(slow), direct}, "racer-1", token),
      make_memory_cursor_store());
  client.on_message(kNewsApp.id, inbox.handler());
  client.on_state(states.handler());
  client.start();

  // The direct endpoint won: the client says so, and both proxies got their attempt.
  const auto connected = states.wait_for(ConnectionState::kConnected, 1, kWait);
  ASSERT_TRUE(connected.has_value());
  EXPECT_EQ(connected->reason, "connected to " + text(direct));
  const auto connecting = states.changes().front();
  EXPECT_EQ(connecting.state, ConnectionState::kConnecting);
  EXPECT_NE(connecting.reason.find(text(endpoint_of(blackhole))), std::string::npos);
  EXPECT_TRUE(eventually([&] { return blackhole.counters().accepted == 1; }));
  EXPECT_TRUE(eventually([&] { return slow.counters().accepted == 1; }));

  const auto first = sender.push(kNewsApp, {"racer-1"}, R"({"n":1})");
  ASSERT_TRUE(first.accepted());
  ASSERT_EQ(inbox.wait_for(1, kWait), 1u);

  // The losing attempts were closed at once: the blackhole sees its client go.
  EXPECT_TRUE(eventually([&] { return blackhole.counters().open_mappings == 0; }));
  // The delayed attempt's Hello still reaches heraldd, about 2 s after it was sent; heraldd
  // answers (race_lost) and closes, and the proxy's mapping ends once both sides closed.
  EXPECT_TRUE(eventually([&] {
    const auto c = slow.counters();
    return c.bytes_forwarded > 0 && c.open_mappings == 0;
  }));

  // It did not take the device's route: the winner is still the one connection, and gets this.
  const auto second = sender.push(kNewsApp, {"racer-1"}, R"({"n":2})");
  ASSERT_TRUE(second.accepted());
  ASSERT_EQ(inbox.wait_for(2, kWait), 2u);
  EXPECT_EQ(inbox.messages().at(1).id, second.id());
  EXPECT_EQ(states.count(ConnectionState::kConnecting), 1u);
  EXPECT_EQ(states.count(ConnectionState::kConnected), 1u);
  EXPECT_EQ(states.count(ConnectionState::kDisconnected), 0u);
  client.stop();
}

TEST(Racing, ARefusedEndpointStartsTheNextAttemptAtOnce) {
  HeraldServer server;
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "racer-2");
  const Endpoint direct{"127.0.0.1", server.device_port()};
  // A stagger far beyond the test's patience: only the refusal can start the second attempt.
  auto o = racing_options({closed_endpoint(), direct}, "racer-2", token);
  o.race_stagger = 1h;

  EventLoop loop;
  StateLog states;
  Client client(loop, o, make_memory_cursor_store());
  client.on_state(states.handler());
  client.start();
  const auto connected = states.wait_for(ConnectionState::kConnected, 1, kWait);
  ASSERT_TRUE(connected.has_value());
  EXPECT_EQ(connected->reason, "connected to " + text(direct));
  // The refused attempt is a failed attempt of the round, not a lost connection.
  EXPECT_EQ(states.count(ConnectionState::kDisconnected), 0u);
  client.stop();
}

TEST(Racing, EveryEndpointFailingIsOneFailedRoundThenBackoff) {
  HeraldServer server;
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "racer-3");
  const Endpoint dead1 = closed_endpoint();
  const Endpoint dead2 = closed_endpoint();

  EventLoop loop;
  StateLog states;
  Client client(loop, racing_options({dead1, dead2}, "racer-3", token), make_memory_cursor_store());
  client.on_state(states.handler());
  client.start();
  const auto failed = states.wait_for(ConnectionState::kDisconnected, 1, kWait);
  ASSERT_TRUE(failed.has_value());
  EXPECT_NE(failed->reason.find(text(dead1)), std::string::npos) << failed->reason;
  EXPECT_NE(failed->reason.find(text(dead2)), std::string::npos) << failed->reason;
  // The next round comes after the backoff, with both again.
  ASSERT_TRUE(states.wait_for(ConnectionState::kConnecting, 2, kWait).has_value());
  const auto changes = states.changes();
  EXPECT_EQ(changes.at(0).state, ConnectionState::kConnecting);
  EXPECT_EQ(changes.at(1).state, ConnectionState::kDisconnected);
  EXPECT_EQ(changes.at(2).state, ConnectionState::kConnecting);
  client.stop();
}

TEST(Racing, WidthOneTriesOneEndpointAtATimeAsBefore) {
  HeraldServer server;
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "racer-4");
  NatProxyThread blackhole(proxy_options(NatMode::kBlackhole, server.device_port()));
  const Endpoint direct{"127.0.0.1", server.device_port()};
  auto o = racing_options({endpoint_of(blackhole), direct}, "racer-4", token);
  o.race_width = 1;
  o.response_timeout = 500ms;  // how long the blackholed handshake takes to fail

  EventLoop loop;
  StateLog states;
  Client client(loop, o, make_memory_cursor_store());
  client.on_state(states.handler());
  client.start();
  const auto connected = states.wait_for(ConnectionState::kConnected, 1, kWait);
  ASSERT_TRUE(connected.has_value());
  EXPECT_EQ(connected->reason, "connected to " + text(direct));
  // The blackholed endpoint alone first, until its deadline; then the next one.
  const auto changes = states.changes();
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(changes[0].state, ConnectionState::kConnecting);
  EXPECT_EQ(changes[0].reason, "connecting to " + text(endpoint_of(blackhole)));
  EXPECT_EQ(changes[1].state, ConnectionState::kDisconnected);
  EXPECT_NE(changes[1].reason.find("no HelloOk"), std::string::npos) << changes[1].reason;
  EXPECT_EQ(changes[2].state, ConnectionState::kConnecting);
  EXPECT_EQ(changes[2].reason, "connecting to " + text(direct));
  EXPECT_EQ(changes[3].state, ConnectionState::kConnected);
  EXPECT_EQ(blackhole.counters().accepted, 1u);
  client.stop();
}

TEST(Racing, StopDuringARaceReturnsAndClosesEveryAttempt) {
  NatProxyThread first(proxy_options(NatMode::kBlackhole, 1));
  NatProxyThread second(proxy_options(NatMode::kBlackhole, 1));
  auto o = racing_options({endpoint_of(first), endpoint_of(second)}, "racer-5", "token");
  o.race_stagger = 10ms;

  EventLoop loop;
  StateLog states;
  Client client(loop, o, make_memory_cursor_store());
  client.on_state(states.handler());
  client.start();
  // Both attempts in flight, waiting for a HelloOk that never comes (response_timeout 10 s).
  ASSERT_TRUE(eventually(
      [&] { return first.counters().open_mappings == 1 && second.counters().open_mappings == 1; }));
  client.stop();
  const auto changes = states.changes();
  ASSERT_FALSE(changes.empty());
  EXPECT_EQ(changes.back().state, ConnectionState::kStopped);
  EXPECT_EQ(states.count(ConnectionState::kConnected), 0u);
  // Both sockets were closed by the client.
  EXPECT_TRUE(eventually(
      [&] { return first.counters().open_mappings == 0 && second.counters().open_mappings == 0; }));
}

// The server's rule, with raw frames.

std::string hello_of_race(const std::string& device, const std::string& token,
                          std::uint64_t race_id) {
  protocol::wire::Hello hello;
  hello.set_protocol_version(protocol::kProtocolVersion);
  hello.set_device_id(device);
  hello.set_token(token);
  hello.set_race_id(race_id);
  return frame_of(FrameType::kHello, hello);
}

// The next frame of `type`, passing over others; nothing when the connection closed first.
std::optional<RawFrame> read_until(RawPeer& peer, FrameType type) {
  for (;;) {
    auto frame = peer.read_frame(kWait);
    if (!frame || frame->first == type) return frame;
  }
}

std::uint32_t error_code_in(const std::vector<RawFrame>& frames) {
  for (const auto& frame : frames) {
    if (frame.first != FrameType::kError) continue;
    protocol::wire::Error e;
    if (e.ParseFromString(frame.second)) return e.code();
  }
  return 0;
}

std::string ping() {
  std::string out;
  protocol::append_empty_frame(FrameType::kPing, out);
  return out;
}

TEST(RaceId, ASecondHelloOfTheSameRaceIsRefusedAndTheFirstConnectionStays) {
  HeraldServer server;
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "raw-race-1");
  RawPeer winner(server.device_port());
  winner.send(hello_of_race("raw-race-1", token, 7));
  ASSERT_TRUE(read_until(winner, FrameType::kHelloOk).has_value());

  RawPeer late(server.device_port());
  late.send(hello_of_race("raw-race-1", token, 7));
  const auto frames = late.read_until_close();
  EXPECT_EQ(error_code_in(frames), static_cast<std::uint32_t>(ErrorCode::kRaceLost));
  for (const auto& frame : frames) EXPECT_NE(frame.first, FrameType::kHelloOk);

  // The first one still holds the route: it answers pings and gets the notify of a new message.
  winner.send(ping());
  EXPECT_TRUE(read_until(winner, FrameType::kPong).has_value());
  ASSERT_TRUE(sender.push(kNewsApp, {"raw-race-1"}, R"({"n":1})").accepted());
  const auto notify = read_until(winner, FrameType::kNotify);
  ASSERT_TRUE(notify.has_value());
}

TEST(RaceId, AHelloOfAnotherRaceSupersedesAsBefore) {
  HeraldServer server;
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "raw-race-2");
  RawPeer old_peer(server.device_port());
  old_peer.send(hello_of_race("raw-race-2", token, 7));
  ASSERT_TRUE(read_until(old_peer, FrameType::kHelloOk).has_value());

  RawPeer newer(server.device_port());
  newer.send(hello_of_race("raw-race-2", token, 8));
  ASSERT_TRUE(read_until(newer, FrameType::kHelloOk).has_value());
  const auto reconnect = read_until(old_peer, FrameType::kReconnect);
  ASSERT_TRUE(reconnect.has_value());
  protocol::wire::Reconnect r;
  ASSERT_TRUE(r.ParseFromString(reconnect->second));
  EXPECT_EQ(r.reason(), protocol::wire::RECONNECT_REASON_SUPERSEDED);
}

TEST(RaceId, RaceIdZeroSupersedesAsBefore) {
  HeraldServer server;
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "raw-race-3");
  RawPeer old_peer(server.device_port());
  old_peer.send(hello_of_race("raw-race-3", token, 0));
  ASSERT_TRUE(read_until(old_peer, FrameType::kHelloOk).has_value());
  RawPeer newer(server.device_port());
  newer.send(hello_of_race("raw-race-3", token, 0));
  ASSERT_TRUE(read_until(newer, FrameType::kHelloOk).has_value());
  EXPECT_TRUE(read_until(old_peer, FrameType::kReconnect).has_value());
}

}  // namespace
}  // namespace herald::testing
