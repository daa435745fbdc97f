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
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

constexpr auto kWait = 15s;

// The list node `http_port` serves, if it answers and the signature verifies with `public_key`.
std::optional<http::EndpointList> fetch_verified(std::uint16_t http_port,
                                                 const std::string& public_key) {
  http::HttpClient client("127.0.0.1", http_port, 2s);
  const auto response = client.request(bhttp::verb::get, "/v1/endpoints");
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

}  // namespace
}  // namespace herald::testing
