// The adaptive heartbeat behind a carrier NAT, in real time: a real heraldd, herald-natsim's
// NatProxy in front of it forgetting any connection idle for 4.5 s, and the real client library
// connecting through the proxy, its heartbeat starting at 1 s and lengthening by 1 s.
//
//   Client ──TCP──▶ NatProxy (idle timeout 4.5 s) ──TCP──▶ heraldd
//
//   pings after  1  2  3  4 s  ─▶  5 s: the NAT forgot the mapping, no Pong within 1 s
//                                   ─▶ reconnect, 4 s from then on (settled)
//
// herald-hbsim predicts the same run in simulated time (tools/hbsim/nat_heartbeat_sim_test.cc,
// IntegrationTestScenarioSettlesAtFourSeconds). The whole test takes about 40 s.
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/ip/address_v4.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "natsim/nat_proxy.h"
#include "sender.h"

namespace herald::testing {
namespace {

using namespace std::chrono_literals;
using natsim::NatCounters;
using natsim::NatProxy;
using natsim::NatProxyOptions;
using natsim::NatProxyThread;

constexpr auto kNatIdleTimeout = 4500ms;
// Generous: the slowest expected event, the climb to the lost 5 s heartbeat, takes about 16 s.
constexpr auto kWait = 60s;

// Waits until `n` bursts of traffic crossed the proxy, or `timeout` passed; returns how many did.
// A burst is forwarded bytes after at least `quiet` without any: on a connection that carries no
// messages, a heartbeat (a Ping and its Pong, 2 bytes each, a round trip apart) is one burst, and
// heartbeats `quiet` or more apart are separate bursts. Polls the proxy's counters.
std::size_t wait_for_bursts(NatProxy& proxy, std::size_t n, std::chrono::milliseconds quiet,
                            std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + timeout;
  std::uint64_t bytes = proxy.counters().bytes_forwarded;
  auto last_change = Clock::now();
  std::size_t bursts = 0;
  while (bursts < n && Clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);  // the polling period, not a synchronisation
    const std::uint64_t now_bytes = proxy.counters().bytes_forwarded;
    if (now_bytes == bytes) continue;
    const auto now = Clock::now();
    if (now - last_change >= quiet) ++bursts;
    bytes = now_bytes;
    last_change = now;
  }
  return bursts;
}

TEST(HeartbeatNat, ConvergesOneStepBelowTheNatTimeoutAndNeverLosesTheConnectionOnceSettled) {
  // heraldd lets a client announce intervals down to 1 s; its own idle deadline (1.5 x interval +
  // 10 s of grace) is never what ends a connection here.
  HeraldServer server({"--access.heartbeat_min_s=1"});
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "phone-nat");
  NatProxyOptions nat_options;
  nat_options.target = {boost::asio::ip::address_v4::loopback(), server.device_port()};
  nat_options.idle_timeout = kNatIdleTimeout;
  NatProxyThread nat(nat_options);
  NatProxy& proxy = nat.proxy();

  ClientOptions o;
  o.endpoints = {{"127.0.0.1", proxy.port()}};
  o.device_id = "phone-nat";
  o.token = token;
  o.adaptive_heartbeat = true;
  o.heartbeat_s = 1;
  o.heartbeat_min_s = 1;
  o.heartbeat_max_s = 20;
  o.heartbeat_step_s = 1;
  o.heartbeat_probe_after = 1h;  // no probe during the test
  o.response_timeout = 1000ms;   // a lost Ping is noticed 1 s after it was sent
  o.backoff_initial = 20ms;
  o.backoff_max = 500ms;

  EventLoop loop;
  Inbox inbox;
  StateLog states;
  Client client(loop, o, make_memory_cursor_store());
  client.on_message(kNewsApp.id, inbox.handler());
  client.on_state(states.handler(client));
  client.start();

  const auto first = states.wait_for(ConnectionState::kConnected, 1, kWait);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->heartbeat_s, 1u);

  // The climb: 1, 2, 3 and 4 s work; after 4 s the client announces 5, and 5 s of silence is
  // more than the NAT keeps a mapping. The Ping is swallowed: no Pong, the connection is lost.
  const auto lost = states.wait_for(ConnectionState::kDisconnected, 1, kWait);
  ASSERT_TRUE(lost.has_value());
  EXPECT_NE(lost->reason.find("no Pong"), std::string::npos) << lost->reason;
  EXPECT_EQ(proxy.counters().dropped_idle, 1u);

  // Reconnected at the last interval that worked, one step below the NAT's timeout.
  const auto settled = states.wait_for(ConnectionState::kConnected, 2, kWait);
  ASSERT_TRUE(settled.has_value());
  EXPECT_GT(settled->heartbeat_s * 1000, 3500u);
  EXPECT_LE(std::chrono::milliseconds(settled->heartbeat_s * 1000), kNatIdleTimeout);
  EXPECT_EQ(settled->heartbeat_s, 4u);

  // Settled: at least four heartbeats cross the NAT (five bursts: the first may be the
  // connection's start-up exchange), and none finds the mapping gone.
  EXPECT_GE(wait_for_bursts(proxy, 5, 1500ms, kWait), 5u);
  NatCounters c = proxy.counters();
  EXPECT_EQ(c.dropped_idle, 1u);
  EXPECT_EQ(c.accepted, 2u);
  EXPECT_EQ(states.count(ConnectionState::kDisconnected), 1u);
  EXPECT_EQ(client.heartbeat_interval_s(), 4u);

  // The settled connection carries messages through the NAT.
  const auto pushed = sender.push(kNewsApp, {"phone-nat"}, R"({"title":"through the NAT"})");
  ASSERT_TRUE(pushed.accepted());
  ASSERT_EQ(inbox.wait_for(1, kWait), 1u);
  EXPECT_EQ(inbox.messages().front().id, pushed.id());

  c = proxy.counters();
  EXPECT_EQ(c.dropped_idle, 1u);
  EXPECT_EQ(c.accepted, 2u);
  EXPECT_EQ(states.count(ConnectionState::kDisconnected), 1u);
  EXPECT_EQ(states.count(ConnectionState::kConnected), 2u);
  client.stop();
}

}  // namespace
}  // namespace herald::testing
