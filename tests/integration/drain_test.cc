// Load balancing without a balancer, server half (docs/operations.md, "Draining a node"): two real
// heraldd processes, A polling B's load. A drained (admin call or SIGTERM) closes its device
// listener, sends its devices to B at a bounded rate, and exits by itself once they left or its
// deadline passed; a node over access.capacity answers a new handshake with Reconnect{OVERLOAD}
// naming B, which the real client library follows.
//
// The nodes share the device-token secret but not their storage (the embedded default keeps each
// node's messages in its own RocksDB), so these tests check where devices go and that they are
// served there. That no message stays behind on A is cluster mode's: cluster_test.cc drains a
// node of a deployment sharing Redis Cluster under load and checks every delivery.
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "node_probe.h"
#include "protocol/frame_codec.h"
#include "raw_peer.h"
#include "sender.h"

namespace herald::testing {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
namespace wire = protocol::wire;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kWait = 20s;
const std::string kTokenSecret = "drain-test-token-secret-0123456789abcdef";

std::vector<std::string> node_args(const std::string& name, std::vector<std::string> extra) {
  std::vector<std::string> args = {"--node_name=" + name, "--auth.token_secret=" + kTokenSecret,
                                   "--deployment.poll_interval_ms=100",
                                   "--deployment.peer_timeout_ms=5000"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// B, and A, which polls B's load (and so knows where to send its devices). B does not poll A.
struct Nodes {
  explicit Nodes(std::vector<std::string> a_extra = {})
      : b(node_args("node-b", {})), a(node_args("node-a", [&] {
          a_extra.push_back("--deployment.peer=127.0.0.1:" + std::to_string(b.http_port()));
          return a_extra;
        }())) {}

  HeraldServer b;
  HeraldServer a;
};

PushOutcome drain_call(const HeraldServer& node, bhttp::verb method, const std::string& body = "") {
  Sender sender(node.http_port());
  return sender.call(method, "/v1/admin/drain", node.admin_token(), body);
}

// Whether a TCP connection to the port is accepted (a listener is open).
bool accepts(std::uint16_t port) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
  return !ec;
}

std::string endpoint_text(const HeraldServer& node) {
  return "127.0.0.1:" + std::to_string(node.device_port());
}

// A device on the real client library, knowing the endpoints of `ports` in that order, counting
// its connections.
class Device {
 public:
  Device(EventLoop& loop, const std::vector<std::uint16_t>& ports, const std::string& id,
         const std::string& token)
      : client_(loop, options(ports, id, token), make_memory_cursor_store()) {
    client_.on_message(kNewsApp.id, inbox_.handler());
    client_.on_state([this](const StateChange& s) {
      if (s.state != ConnectionState::kConnected) return;
      const std::lock_guard lock(mu_);
      ++connects_;
      cv_.notify_all();
    });
    client_.start();
  }
  ~Device() { client_.stop(); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Waits until the device connected `n` times in all; returns how often it did.
  int wait_connects(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return connects_ >= n; });
    return connects_;
  }
  Inbox& inbox() { return inbox_; }

 private:
  static ClientOptions options(const std::vector<std::uint16_t>& ports, const std::string& id,
                               const std::string& token) {
    ClientOptions o;
    for (const auto port : ports) o.endpoints.push_back({"127.0.0.1", port});
    o.device_id = id;
    o.token = token;
    o.backoff_initial = 20ms;
    o.backoff_max = 500ms;
    return o;
  }

  Inbox inbox_;
  std::mutex mu_;
  std::condition_variable cv_;
  int connects_ = 0;
  Client client_;
};

// `n` devices registered on both nodes (each node keeps its own registrations), each connected
// once to A, with both endpoints in its list, A first.
std::vector<std::unique_ptr<Device>> devices_on_a(Nodes& nodes, EventLoop& loop, int n,
                                                  const std::string& prefix) {
  Sender a_sender(nodes.a.http_port());
  Sender b_sender(nodes.b.http_port());
  std::vector<std::unique_ptr<Device>> devices;
  for (int i = 0; i < n; ++i) {
    const std::string id = prefix + std::to_string(i);
    const std::string token = a_sender.register_device(kNewsApp, id);
    b_sender.register_device(kNewsApp, id);
    devices.push_back(std::make_unique<Device>(
        loop, std::vector{nodes.a.device_port(), nodes.b.device_port()}, id, token));
    // One at a time: A, first in the list, answers long before the client would try B.
    EXPECT_EQ(devices.back()->wait_connects(1, kWait), 1) << id;
  }
  return devices;
}

// Every device connected exactly twice (A, then B: none came back to A) and B holds them all.
void expect_all_moved_to_b(Nodes& nodes, std::vector<std::unique_ptr<Device>>& devices) {
  for (auto& d : devices) EXPECT_GE(d->wait_connects(2, kWait), 2);
  EXPECT_TRUE(eventually([&] {
    return connections_of(nodes.b) == static_cast<std::int64_t>(devices.size());
  })) << "B holds "
      << connections_of(nodes.b);
  for (auto& d : devices) EXPECT_EQ(d->wait_connects(3, 0ms), 2);
}

// A message sent through B's API reaches every device: each is served there.
void expect_served_by_b(Nodes& nodes, std::vector<std::unique_ptr<Device>>& devices,
                        const std::string& prefix) {
  Sender b_sender(nodes.b.http_port());
  std::vector<std::size_t> before;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    before.push_back(devices[i]->inbox().items().size());
    const auto pushed =
        b_sender.push(kNewsApp, {prefix + std::to_string(i)}, R"({"on": "node-b"})");
    ASSERT_TRUE(pushed.accepted()) << pushed.status;
  }
  for (std::size_t i = 0; i < devices.size(); ++i) {
    EXPECT_EQ(devices[i]->inbox().wait_for(before[i] + 1, kWait), before[i] + 1) << i;
  }
}

wire::Reconnect reconnect_of(const std::optional<RawFrame>& frame) {
  wire::Reconnect reconnect;
  EXPECT_TRUE(frame.has_value());
  if (!frame) return reconnect;
  EXPECT_EQ(frame->first, protocol::FrameType::kReconnect);
  EXPECT_TRUE(reconnect.ParseFromString(frame->second));
  return reconnect;
}

// The next Reconnect the raw peer receives; the frames before it (its Streams list) are skipped.
wire::Reconnect next_reconnect(RawPeer& peer) {
  for (;;) {
    auto frame = peer.read_frame(kWait);
    if (!frame || frame->first == protocol::FrameType::kReconnect) return reconnect_of(frame);
  }
}

// A raw device connected to `node` and past its handshake.
std::unique_ptr<RawPeer> raw_device(const HeraldServer& node, const std::string& id) {
  const std::string token = Sender(node.http_port()).register_device(kNewsApp, id);
  auto peer = std::make_unique<RawPeer>(node.device_port());
  peer->send(hello_frame(id, token));
  const auto ok = peer->read_frame(kWait);
  EXPECT_TRUE(ok && ok->first == protocol::FrameType::kHelloOk);
  return peer;
}

TEST(Drain, AnAdminDrainMovesEveryDeviceToThePeerAtItsRateAndTheNodeExits) {
  constexpr int kDevices = 40;
  constexpr int kRatePerS = 20;
  Nodes nodes;
  ASSERT_TRUE(eventually([&] { return knows(nodes.a, nodes.b); }));
  EventLoop loop(2);
  auto devices = devices_on_a(nodes, loop, kDevices, "admin-");
  ASSERT_TRUE(eventually([&] { return connections_of(nodes.a) == kDevices; }));
  EXPECT_EQ(connections_of(nodes.b), 0);
  // Served on A until the drain: a message accepted by A reaches its device.
  ASSERT_TRUE(Sender(nodes.a.http_port()).push(kNewsApp, {"admin-0"}, R"({"on": "a"})").accepted());
  ASSERT_EQ(devices[0]->inbox().wait_for(1, kWait), 1u);

  const auto started = Clock::now();
  const auto answer =
      drain_call(nodes.a, bhttp::verb::post,
                 R"({"deadline_s": 60, "rate_per_s": )" + std::to_string(kRatePerS) + "}");
  ASSERT_EQ(answer.status, 202) << json::serialize(answer.body);
  EXPECT_EQ(answer.body.at("draining"), true);
  EXPECT_EQ(answer.body.at("rate_per_s"), kRatePerS);
  EXPECT_EQ(
      answer.body.at("deadline_at_ms").as_int64() - answer.body.at("started_at_ms").as_int64(),
      60'000);
  // A takes no new device connection (its HTTP API still answers meanwhile).
  EXPECT_TRUE(eventually([&] { return !accepts(nodes.a.device_port()); }));

  const auto status = nodes.a.wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << "A did not exit once its devices left";
  EXPECT_EQ(*status, 0);
  // The pace: the k-th Reconnect goes no earlier than k / rate after the drain began.
  EXPECT_GE(Clock::now() - started, std::chrono::milliseconds((kDevices - 1) * 1000 / kRatePerS));
  expect_all_moved_to_b(nodes, devices);
  expect_served_by_b(nodes, devices, "admin-");
}

TEST(Drain, SigtermDrainsWithTheConfiguredRateAndExitsCleanly) {
  constexpr int kDevices = 20;
  constexpr int kRatePerS = 40;
  Nodes nodes({"--access.drain_rate_per_s=" + std::to_string(kRatePerS)});
  ASSERT_TRUE(eventually([&] { return knows(nodes.a, nodes.b); }));
  EventLoop loop(2);
  auto devices = devices_on_a(nodes, loop, kDevices, "sigterm-");
  ASSERT_TRUE(eventually([&] { return connections_of(nodes.a) == kDevices; }));

  const auto started = Clock::now();
  EXPECT_EQ(nodes.a.terminate(), 0);
  EXPECT_GE(Clock::now() - started, std::chrono::milliseconds((kDevices - 1) * 1000 / kRatePerS));
  expect_all_moved_to_b(nodes, devices);
  expect_served_by_b(nodes, devices, "sigterm-");
}

TEST(Drain, ADeviceThatIgnoresTheReconnectKeepsTheNodeUpUntilTheDeadline) {
  Nodes nodes;
  ASSERT_TRUE(eventually([&] { return knows(nodes.a, nodes.b); }));
  const auto peer = raw_device(nodes.a, "stubborn");

  const auto started = Clock::now();
  ASSERT_EQ(drain_call(nodes.a, bhttp::verb::post, R"({"deadline_s": 2})").status, 202);
  const auto drain = next_reconnect(*peer);
  EXPECT_EQ(drain.reason(), wire::RECONNECT_REASON_DRAIN);
  EXPECT_EQ(drain.endpoint(), endpoint_text(nodes.b));
  EXPECT_EQ(drain.delay_ms(), 0u);

  // The connection stays open and the node waits for it; a second drain is refused.
  const auto state = drain_call(nodes.a, bhttp::verb::get);
  ASSERT_EQ(state.status, 200);
  EXPECT_EQ(state.body.at("draining"), true);
  EXPECT_EQ(state.body.at("connections"), 1);
  EXPECT_EQ(state.body.at("reconnects_sent"), 1);
  const auto again = drain_call(nodes.a, bhttp::verb::post);
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body.at("error").at("code"), "already_draining");

  const auto status = nodes.a.wait_exit(kWait);
  ASSERT_TRUE(status.has_value()) << "A did not exit at its deadline";
  EXPECT_EQ(*status, 0);
  EXPECT_GE(Clock::now() - started, 2s);
  // At the deadline the node stops as before a drain existed: the device is told and closed.
  const auto rest = peer->read_until_close();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(reconnect_of(rest.back()).reason(), wire::RECONNECT_REASON_SHUTDOWN);
}

TEST(Drain, ASecondSigtermEndsTheDrainAtOnce) {
  Nodes nodes;
  ASSERT_TRUE(eventually([&] { return knows(nodes.a, nodes.b); }));
  const auto peer = raw_device(nodes.a, "stubborn");
  ASSERT_EQ(::kill(nodes.a.pid(), SIGTERM), 0);
  EXPECT_EQ(next_reconnect(*peer).reason(), wire::RECONNECT_REASON_DRAIN);
  // The default deadline is a minute; terminate() allows five seconds for a clean exit.
  EXPECT_EQ(nodes.a.terminate(), 0);
  const auto rest = peer->read_until_close();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(reconnect_of(rest.back()).reason(), wire::RECONNECT_REASON_SHUTDOWN);
}

TEST(Overload, AHandshakeBeyondCapacityIsSentToThePeerAndTheClientFollows) {
  Nodes nodes({"--access.capacity=2"});
  ASSERT_TRUE(eventually([&] { return knows(nodes.a, nodes.b); }));
  const auto load = load_of(nodes.a);
  EXPECT_EQ(load.at("capacity"), 2);
  EventLoop loop(1);
  Sender a_sender(nodes.a.http_port());
  std::vector<std::unique_ptr<Device>> on_a;
  for (const std::string id : {"full-0", "full-1"}) {
    on_a.push_back(std::make_unique<Device>(loop, std::vector{nodes.a.device_port()}, id,
                                            a_sender.register_device(kNewsApp, id)));
    ASSERT_EQ(on_a.back()->wait_connects(1, kWait), 1);
  }

  // The third Hello: redirected before it is authenticated, and closed.
  RawPeer raw(nodes.a.device_port());
  raw.send(hello_frame("overflow-raw", a_sender.register_device(kNewsApp, "overflow-raw")));
  const auto frames = raw.read_until_close();
  ASSERT_EQ(frames.size(), 1u);
  const auto overload = reconnect_of(frames.front());
  EXPECT_EQ(overload.reason(), wire::RECONNECT_REASON_OVERLOAD);
  EXPECT_EQ(overload.endpoint(), endpoint_text(nodes.b));

  // A client that knows only A ends up on B, where the redirect sent it.
  Sender(nodes.b.http_port()).register_device(kNewsApp, "overflow");
  Device overflow(loop, {nodes.a.device_port()}, "overflow",
                  a_sender.register_device(kNewsApp, "overflow"));
  ASSERT_EQ(overflow.wait_connects(1, kWait), 1);
  EXPECT_TRUE(eventually([&] { return connections_of(nodes.b) == 1; }));
  EXPECT_TRUE(eventually([&] { return connections_of(nodes.a) == 2; }));
  ASSERT_TRUE(
      Sender(nodes.b.http_port()).push(kNewsApp, {"overflow"}, R"({"on": "b"})").accepted());
  EXPECT_EQ(overflow.inbox().wait_for(1, kWait), 1u);
}

}  // namespace
}  // namespace herald::testing
