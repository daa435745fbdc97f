// EndpointDirectory::pick_peer: where a draining or overloaded node sends its devices.
#include <chrono>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "http/endpoint_api.h"

namespace herald::http {
namespace {

using namespace std::chrono_literals;
using SteadyClock = EndpointDirectory::SteadyClock;

NodeLoad node(const std::string& name, std::uint16_t port, std::int64_t connections,
              std::int64_t capacity, bool draining = false) {
  return NodeLoad{name, {{"10.0.0.1", port}}, connections, capacity, 0.0, draining, 0};
}

class PickPeer : public ::testing::Test {
 protected:
  EndpointDirectory directory_{[] { return node("self", 7000, 10, 100); }, 3s};
  const SteadyClock::time_point now_ = SteadyClock::now();

  // How many of `n` picks went to each port.
  std::map<std::uint16_t, int> picks(int n, bool need_room = false) {
    std::map<std::uint16_t, int> out;
    for (int i = 0; i < n; ++i) {
      const auto peer = directory_.pick_peer(now_, need_room);
      EXPECT_TRUE(peer.has_value());
      if (peer) ++out[peer->port];
    }
    return out;
  }
};

TEST_F(PickPeer, NoPeerHeardNamesNone) { EXPECT_FALSE(directory_.pick_peer(now_, false)); }

TEST_F(PickPeer, DevicesSpreadOverEquallyLoadedPeers) {
  directory_.peer_answered("b", node("node-b", 7001, 0, 100), now_);
  directory_.peer_answered("c", node("node-c", 7002, 0, 100), now_);
  EXPECT_EQ(picks(40), (std::map<std::uint16_t, int>{{7001, 20}, {7002, 20}}));
}

TEST_F(PickPeer, TheLessLoadedPeerGetsDevicesUntilTheLoadsMeet) {
  directory_.peer_answered("b", node("node-b", 7001, 30, 100), now_);
  directory_.peer_answered("c", node("node-c", 7002, 10, 100), now_);
  // 20 to C first (10 -> 30), then they alternate.
  EXPECT_EQ(picks(30), (std::map<std::uint16_t, int>{{7001, 5}, {7002, 25}}));
}

TEST_F(PickPeer, DrainingStaleAndSameNamedPeersAreNeverPicked) {
  directory_.peer_answered("b", node("node-b", 7001, 0, 100, true), now_);
  directory_.peer_answered("c", node("node-c", 7002, 0, 100), now_ - 4s);
  directory_.peer_answered("d", node("self", 7003, 0, 100), now_);
  EXPECT_FALSE(directory_.pick_peer(now_, false));
  directory_.peer_answered("e", node("node-e", 7004, 99, 100), now_);
  EXPECT_EQ(picks(3), (std::map<std::uint16_t, int>{{7004, 3}}));
}

TEST_F(PickPeer, AnOverloadRedirectNeedsAPeerWithRoom) {
  directory_.peer_answered("b", node("node-b", 7001, 98, 100), now_);
  EXPECT_EQ(picks(2, true), (std::map<std::uint16_t, int>{{7001, 2}}));
  EXPECT_FALSE(directory_.pick_peer(now_, true));  // B counts as full now
  EXPECT_TRUE(directory_.pick_peer(now_, false));  // a drain still sends there
  // A fresh report starts the count again.
  directory_.peer_answered("b", node("node-b", 7001, 50, 100), now_);
  EXPECT_TRUE(directory_.pick_peer(now_, true));
}

TEST_F(PickPeer, APeersEndpointsTakeTurns) {
  NodeLoad b = node("node-b", 7001, 0, 100);
  b.endpoints.push_back({"10.0.0.2", 7001});
  directory_.peer_answered("b", b, now_);
  EXPECT_EQ(directory_.pick_peer(now_, false)->host, "10.0.0.1");
  EXPECT_EQ(directory_.pick_peer(now_, false)->host, "10.0.0.2");
  EXPECT_EQ(directory_.pick_peer(now_, false)->host, "10.0.0.1");
}

}  // namespace
}  // namespace herald::http
