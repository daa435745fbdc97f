// All-IP access, server half: two real heraldd processes on loopback, each the other's peer,
// serve the same signed endpoint list (docs/endpoints.md), least loaded node first, verified with
// the public key `heraldd --print-endpoint-public-key` publishes; a peer that stops answering
// leaves the list.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>

#include "captured_run.h"
#include "herald_server.h"
#include "http/endpoint_list.h"
#include "http/http_client.h"
#include "logic/clock.h"
#include "raw_peer.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

constexpr auto kWait = 15s;

// The list node `http_port` serves, if it answers and the signature verifies with `public_key`.
std::optional<http::EndpointList> fetch_verified(std::uint16_t http_port,
                                                 const std::string& public_key,
                                                 const std::string& target = "/v1/endpoints") {
  http::HttpClient client("127.0.0.1", http_port, 2s);
  const auto response = client.request(bhttp::verb::get, target);
  if (!response || response->result() != bhttp::status::ok) return std::nullopt;
  boost::system::error_code ec;
  const auto body = boost::json::parse(response->body(), ec);
  if (ec) return std::nullopt;
  return http::verify_signed_list(body, public_key, logic::system_clock()());
}

// Polls until `done` holds or kWait passes; true when it held.
bool eventually(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return done();
}

// The list names exactly `ports` (device ports), in this order.
bool lists(const std::optional<http::EndpointList>& list, const std::vector<std::uint16_t>& ports) {
  if (!list || list->endpoints.size() != ports.size()) return false;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    if (list->endpoints[i].host != "127.0.0.1" || list->endpoints[i].port != ports[i]) {
      return false;
    }
  }
  return true;
}

TEST(Endpoints, BothNodesServeASignedListLeastLoadedFirstAndDropAPeerThatStopped) {
  const auto dir = make_temp_dir("herald-endpoints-test");
  const auto key_file = dir / "endpoint_signing_key.pem";
  // The operator's step: create the deployment's key once and publish its public half.
  const auto printed = run_captured({bin_path("heraldd").string(), "--print-endpoint-public-key",
                                     "--endpoints.signing_key_file=" + key_file.string()},
                                    {});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  const std::string public_key = printed.out.substr(0, printed.out.find('\n'));
  ASSERT_EQ(public_key.size(), 44u) << printed.out;

  const std::vector<std::string> common = {
      "--endpoints.signing_key_file=" + key_file.string(), "--access.max_connections=4",
      "--deployment.poll_interval_ms=100", "--deployment.peer_timeout_ms=1000"};
  // Each node must name the other, but a node's HTTP port is known only once it started: node A
  // reads its peer from a file written once B runs, and restarts on the same ports.
  const auto a_config = dir / "a.toml";
  std::ofstream(a_config) << "";
  auto args = common;
  args.insert(args.end(), {"--config=" + a_config.string(), "--node_name=node-a"});
  HeraldServer a(args);
  args = common;
  args.insert(args.end(), {"--node_name=node-b",
                           "--deployment.peer=127.0.0.1:" + std::to_string(a.http_port())});
  HeraldServer b(args);
  std::ofstream(a_config) << "[deployment]\npeer = [\"127.0.0.1:" << b.http_port() << "\"]\n";
  ASSERT_EQ(a.terminate(), 0);
  a.restart();

  // Three of A's four connections in use: A is 75 % loaded, B idle.
  Sender sender(a.http_port());
  std::vector<std::unique_ptr<TestDevice>> devices;
  for (int i = 0; i < 3; ++i) {
    const std::string device = "phone-" + std::to_string(i);
    devices.push_back(
        std::make_unique<TestDevice>(a, device, sender.register_device(kNewsApp, device)));
    ASSERT_TRUE(devices.back()->wait_connected(kWait));
  }

  const std::vector<std::uint16_t> b_then_a = {b.device_port(), a.device_port()};
  EXPECT_TRUE(
      eventually([&] { return lists(fetch_verified(a.http_port(), public_key), b_then_a); }));
  EXPECT_TRUE(
      eventually([&] { return lists(fetch_verified(b.http_port(), public_key), b_then_a); }));
  const auto list = fetch_verified(a.http_port(), public_key);
  ASSERT_TRUE(lists(list, b_then_a));
  EXPECT_EQ(list->endpoints[0].node, "node-b");
  EXPECT_EQ(list->endpoints[1].node, "node-a");
  EXPECT_GE(list->endpoints[1].load, 750u);
  EXPECT_LT(list->endpoints[0].load, list->endpoints[1].load);
  EXPECT_GT(list->expires_at_ms, list->issued_at_ms);

  // B dies without a word: A stops hearing it and lists itself alone.
  b.kill9();
  EXPECT_TRUE(eventually(
      [&] { return lists(fetch_verified(a.http_port(), public_key), {a.device_port()}); }));
  std::filesystem::remove_all(dir);
}

// Server-assisted heartbeat (docs/protocol.md section 4): devices report in their Hello the
// interval they settled on for their network; once three have, the list asked for with ?network=
// carries the low quantile of their reports, signed with the rest. Unusable reports are ignored,
// and never cost the device its connection.
TEST(Endpoints, HellosTeachTheHeartbeatHintTheSignedListCarries) {
  const auto dir = make_temp_dir("herald-heartbeat-hint-test");
  const auto key_file = dir / "endpoint_signing_key.pem";
  const auto printed = run_captured({bin_path("heraldd").string(), "--print-endpoint-public-key",
                                     "--endpoints.signing_key_file=" + key_file.string()},
                                    {});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  const std::string public_key = printed.out.substr(0, printed.out.find('\n'));
  HeraldServer server({"--endpoints.signing_key_file=" + key_file.string()});
  Sender sender(server.http_port());

  // Each Hello is answered (HelloOk) only after its report was taken in.
  const auto hello = [&](const std::string& device, const std::string& network,
                         std::uint32_t settled_s) {
    protocol::wire::Hello h;
    h.set_protocol_version(protocol::kProtocolVersion);
    h.set_device_id(device);
    h.set_token(sender.register_device(kNewsApp, device));
    h.set_network(network);
    h.set_settled_heartbeat_s(settled_s);
    RawPeer peer(server.device_port());
    peer.send(frame_of(protocol::FrameType::kHello, h));
    const auto answer = peer.read_frame(kWait);
    return answer && answer->first == protocol::FrameType::kHelloOk;
  };
  const std::string network = "carrier:310-260";
  const std::string target = "/v1/endpoints?network=carrier%3A310-260";
  ASSERT_TRUE(hello("phone-0", network, 360));
  ASSERT_TRUE(hello("phone-1", network, 240));
  // Ignored: a network id with a control character, an interval below the server's minimum, no
  // network. Each device still connects.
  ASSERT_TRUE(hello("phone-2", "carrier:\n310-260", 60));
  ASSERT_TRUE(hello("phone-3", network, 1));
  ASSERT_TRUE(hello("phone-4", "", 60));
  auto list = fetch_verified(server.http_port(), public_key, target);
  ASSERT_TRUE(list);
  EXPECT_FALSE(list->heartbeat);  // two devices reported: no evidence yet

  ASSERT_TRUE(hello("phone-5", network, 300));
  ASSERT_TRUE(hello("phone-0", network, 420));  // phone-0 again: its newest report replaces 360
  list = fetch_verified(server.http_port(), public_key, target);
  ASSERT_TRUE(list);
  ASSERT_TRUE(list->heartbeat);
  EXPECT_EQ(list->heartbeat->network, network);
  EXPECT_EQ(list->heartbeat->start_s, 240u);  // the 25th percentile of 240, 300, 420
  EXPECT_EQ(list->heartbeat->reports, 3u);

  list = fetch_verified(server.http_port(), public_key);
  ASSERT_TRUE(list);
  EXPECT_FALSE(list->heartbeat);  // not asked
  http::HttpClient client("127.0.0.1", server.http_port(), 2s);
  const auto refused = client.request(bhttp::verb::get, "/v1/endpoints?network=a%0Ab");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->result(), bhttp::status::bad_request);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace herald::testing
