// Monitoring, end to end (docs/operations.md, "Monitoring"): a real heraldd serving a real device
// through the real client library is scraped by a real Prometheus (Debian's, started here on
// loopback with the admin token as its credentials file), and its exposition passes
// `promtool check metrics`; the counters Prometheus stores are the ones the traffic moved.
// /readyz answers 200 while the node serves and 503 naming "draining" once it drains.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <boost/beast/http/verb.hpp>
#include <boost/json.hpp>

#include "herald_server.h"
#include "http/http_client.h"
#include "metrics_scrape.h"
#include "node_probe.h"
#include "process.h"
#include "protocol/frame_codec.h"
#include "raw_peer.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr auto kWait = 30s;
const std::filesystem::path kPrometheus = "/usr/bin/prometheus";
const std::filesystem::path kPromtool = "/usr/bin/promtool";

// promtool's verdict on `exposition`: its exit status and what it printed.
std::pair<int, std::string> promtool_check(const std::string& exposition) {
  const auto dir = make_temp_dir("herald-promtool");
  { std::ofstream(dir / "metrics.txt") << exposition; }
  Process check(
      {"/bin/sh", "-c",
       kPromtool.string() + " check metrics < " + (dir / "metrics.txt").string() + " 2>&1"},
      dir / "verdict.txt");
  const auto status = check.wait(kWait);
  std::ifstream in(dir / "verdict.txt");
  std::string said((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(dir);
  return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, said};
}

// A real Prometheus scraping `server` every second with its admin token.
class TestPrometheus {
 public:
  explicit TestPrometheus(const HeraldServer& server)
      : dir_(make_temp_dir("herald-prometheus")), port_(free_port()) {
    std::ofstream(dir_ / "prometheus.yml") << "global:\n"
                                              "  scrape_interval: 1s\n"
                                              "  scrape_timeout: 1s\n"
                                              "scrape_configs:\n"
                                              "  - job_name: herald\n"
                                              "    authorization:\n"
                                              "      credentials_file: "
                                           << (server.data_dir() / "admin_token").string()
                                           << "\n"
                                              "    static_configs:\n"
                                              "      - targets: ['127.0.0.1:"
                                           << server.http_port() << "']\n";
    process_.emplace(
        std::vector<std::string>{
            kPrometheus.string(), "--config.file=" + (dir_ / "prometheus.yml").string(),
            "--storage.tsdb.path=" + (dir_ / "data").string(),
            "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=error"},
        dir_ / "prometheus.out");
  }
  ~TestPrometheus() {
    process_.reset();
    std::filesystem::remove_all(dir_);
  }
  TestPrometheus(const TestPrometheus&) = delete;
  TestPrometheus& operator=(const TestPrometheus&) = delete;

  // The value of the instant query's single sample, if it has exactly one.
  std::optional<double> query(const std::string& promql) {
    http::HttpClient client("127.0.0.1", port_, 5s);
    std::string encoded;
    for (const unsigned char c : promql) {
      if (std::isalnum(c) || c == '_') {
        encoded += static_cast<char>(c);
      } else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", c);
        encoded += hex;
      }
    }
    const auto response = client.request(bhttp::verb::get, "/api/v1/query?query=" + encoded);
    if (!response || response->result() != bhttp::status::ok) return std::nullopt;
    boost::system::error_code ec;
    const json::value answer = json::parse(response->body(), ec);
    if (ec) return std::nullopt;
    const auto& result = answer.at("data").at("result").as_array();
    if (result.size() != 1) return std::nullopt;
    return std::stod(std::string(result.at(0).at("value").as_array().at(1).as_string()));
  }

 private:
  std::filesystem::path dir_;
  std::uint16_t port_;
  std::optional<Process> process_;
};

TEST(Monitoring, PrometheusScrapesTheCountersTheTrafficMoved) {
  ASSERT_TRUE(std::filesystem::exists(kPrometheus)) << "scripts/setup.sh installs prometheus";
  HeraldServer server;
  Sender sender(server.http_port());
  const std::string token = sender.register_device(kNewsApp, "watched-1");
  TestDevice device(server, "watched-1", token);
  ASSERT_TRUE(device.wait_connected(kWait));
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        sender.push(kNewsApp, {"watched-1"}, R"({"n": )" + std::to_string(i) + "}").accepted());
  }
  ASSERT_EQ(device.inbox().wait_for(3, kWait), 3u);
  EXPECT_EQ(sender.post("/v1/apps/news/messages", "wrong-key", "{}").status, 401);

  // The exposition itself, read the way Prometheus reads it.
  const auto scraped = scrape(server.http_port(), server.admin_token());
  ASSERT_EQ(scraped.status, 200) << scraped.body;
  EXPECT_EQ(scraped.content_type, "text/plain; version=0.0.4; charset=utf-8");
  const auto [verdict, said] = promtool_check(scraped.body);
  EXPECT_EQ(verdict, 0) << "promtool check metrics:\n" << said;
  const auto samples = samples_of(scraped.body);
  EXPECT_EQ(value_of(samples, "herald_access_connections"), 1);
  EXPECT_EQ(value_of(samples, "herald_access_authenticated_connections"), 1);
  EXPECT_GE(value_of(samples, "herald_access_notifies_sent_total"), 1);
  EXPECT_GE(value_of(samples, "herald_access_entries_sent_total"), 3);
  // The registration (201 Created), the three sends, and the refused send, each with its status.
  EXPECT_EQ(value_of(samples, R"(herald_http_requests_total{api="sender",code="201"})"), 1);
  EXPECT_EQ(value_of(samples, R"(herald_http_requests_total{api="sender",code="200"})"), 3);
  EXPECT_EQ(value_of(samples, R"(herald_http_requests_total{api="sender",code="401"})"), 1);
  EXPECT_EQ(value_of(samples, R"(herald_http_request_duration_seconds_count{api="sender"})"), 5);
  // The device was online: its three messages left within seconds of their acceptance.
  EXPECT_GE(value_of(samples, "herald_delivery_delay_seconds_count"), 3);
  EXPECT_GE(value_of(samples, R"(herald_delivery_delay_seconds_bucket{le="10"})"), 3);
  EXPECT_GE(value_of(samples, "herald_storage_entries_written_total"), 3);
  EXPECT_EQ(value_of(samples, "herald_storage_healthy"), 1);
  EXPECT_EQ(value_of(samples, "herald_draining"), 0);
  EXPECT_GT(value_of(samples, "process_resident_memory_bytes"), 0);
  EXPECT_GT(value_of(samples, "process_open_fds"), 0);

  // A real Prometheus scrapes it with the admin token and stores what it read.
  TestPrometheus prometheus(server);
  EXPECT_TRUE(eventually([&] { return prometheus.query(R"(up{job="herald"})") == 1.0; }, kWait))
      << "Prometheus never scraped heraldd successfully";
  EXPECT_TRUE(
      eventually([&] { return prometheus.query("herald_access_connections") == 1.0; }, kWait));
  EXPECT_TRUE(eventually(
      [&] {
        return prometheus.query(R"(herald_http_requests_total{api="sender",code="200"})") == 3.0;
      },
      kWait));
  // A message sent now shows in the next scrapes.
  ASSERT_TRUE(sender.push(kNewsApp, {"watched-1"}, R"({"n": 3})").accepted());
  EXPECT_TRUE(eventually(
      [&] {
        return prometheus.query(R"(herald_http_requests_total{api="sender",code="200"})") == 4.0;
      },
      kWait));
}

TEST(Monitoring, MetricsTakeTheAdminToken) {
  HeraldServer server;
  for (const std::string credential : {"", "not-the-token"}) {
    const auto refused = scrape(server.http_port(), credential);
    EXPECT_EQ(refused.status, 401) << "credential '" << credential << "'";
    boost::system::error_code ec;
    const auto body = json::parse(refused.body, ec);
    ASSERT_FALSE(ec) << refused.body;
    EXPECT_EQ(body.at("error").at("code"), "unauthorized");
  }
  http::HttpClient client("127.0.0.1", server.http_port(), 5s);
  const auto post = client.request(bhttp::verb::post, "/metrics", "",
                                   {{"Authorization", "Bearer " + server.admin_token()}});
  ASSERT_TRUE(post);
  EXPECT_EQ(post->result_int(), 405u);
  // The refusals are counted like every answer.
  const auto samples = samples_of(scrape(server.http_port(), server.admin_token()).body);
  EXPECT_EQ(value_of(samples, R"(herald_http_requests_total{api="operations",code="401"})"), 2);
  EXPECT_EQ(value_of(samples, R"(herald_http_requests_total{api="operations",code="405"})"), 1);
}

TEST(Monitoring, ReadinessTurnsToNotReadyWhenTheNodeDrains) {
  HeraldServer server;
  http::HttpClient client("127.0.0.1", server.http_port(), 5s);
  const auto ready = client.request(bhttp::verb::get, "/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->result_int(), 200u);
  EXPECT_EQ(json::parse(ready->body()), json::parse(R"({"status": "ready"})"));

  // A device that ignores its Reconnect keeps the draining node up until the deadline.
  Sender sender(server.http_port());
  RawPeer peer(server.device_port());
  peer.send(hello_frame("stubborn", sender.register_device(kNewsApp, "stubborn")));
  const auto ok = peer.read_frame(kWait);
  ASSERT_TRUE(ok && ok->first == protocol::FrameType::kHelloOk);
  const auto drain = sender.call(bhttp::verb::post, "/v1/admin/drain", server.admin_token(),
                                 R"({"deadline_s": 60})");
  ASSERT_EQ(drain.status, 202) << json::serialize(drain.body);

  const auto not_ready = client.request(bhttp::verb::get, "/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->result_int(), 503u);
  EXPECT_EQ(json::parse(not_ready->body()),
            json::parse(R"({"status": "not_ready", "reasons": ["draining"]})"));
  const auto samples = samples_of(scrape(server.http_port(), server.admin_token()).body);
  EXPECT_EQ(value_of(samples, "herald_draining"), 1);
}

}  // namespace
}  // namespace herald::testing
