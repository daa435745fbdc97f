// All-IP access, client half: the client's EndpointDirectory fetches the signed endpoint list from
// a real heraldd, verifies and caches it, and falls back to the cached list, then to its embedded
// endpoints, when DNS or the list server fails (DESIGN.md "Connections: endpoints, racing,
// heartbeats"; docs/endpoints.md; client/README.md "Endpoint directory").
#include "endpoint_directory.h"

#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "captured_run.h"
#include "herald/client.h"
#include "herald_server.h"
#include "logic/clock.h"
#include "posix_file.h"
#include "protocol/endpoint_list_format.h"
#include "protocol/frame_codec.h"
#include "raw_peer.h"
#include "sender.h"
#include "test_device.h"

namespace herald::testing {
namespace {

namespace asio = boost::asio;
using detail::EndpointDirectory;
using detail::EndpointDirectorySettings;
using namespace std::chrono_literals;

const Endpoint kEmbedded{"192.0.2.99", 7700};

std::int64_t now_ms() { return logic::system_clock()(); }

void run_refresh(EndpointDirectory& directory, std::string network) {
  asio::io_context io;
  asio::co_spawn(asio::make_strand(io), directory.refresh(std::move(network)),
                 [](std::exception_ptr e) {
                   if (e) std::rethrow_exception(e);
                 });
  io.run();
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// One heraldd for the suite, signing with a key whose public half the test embeds, as an
// operator would publish it (`heraldd --print-endpoint-public-key`).
class EndpointDirectoryIntegration : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    key_dir_ = new std::filesystem::path(make_temp_dir("herald-endpoint-directory-key"));
    const auto key_file = *key_dir_ / "endpoint_signing_key.pem";
    const auto printed = run_captured({bin_path("heraldd").string(), "--print-endpoint-public-key",
                                       "--endpoints.signing_key_file=" + key_file.string()},
                                      {});
    ASSERT_EQ(printed.exit_code, 0) << printed.err;
    public_key_ = new std::string(printed.out.substr(0, printed.out.find('\n')));
    server_ = new HeraldServer({"--endpoints.signing_key_file=" + key_file.string()});
  }

  static void TearDownTestSuite() {
    delete server_;
    delete public_key_;
    std::filesystem::remove_all(*key_dir_);
    delete key_dir_;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    dir_ = make_temp_dir("herald-endpoint-directory");
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string list_url() const {
    return "http://127.0.0.1:" + std::to_string(server_->http_port());
  }

  Endpoint node() const { return {"127.0.0.1", server_->device_port()}; }

  EndpointDirectorySettings settings(std::vector<std::string> urls) const {
    EndpointDirectorySettings s;
    s.list_urls = std::move(urls);
    s.public_key_base64 = *public_key_;
    s.cache_file = dir_ / "endpoints.json";
    s.embedded = {kEmbedded};
    s.fetch_timeout = 5s;
    s.seed = 7;
    return s;
  }

  // Fills the cache file from the live server.
  void fetch_into_cache() const {
    EndpointDirectory directory(settings({list_url()}));
    run_refresh(directory, "");
    ASSERT_EQ(directory.last_error(), "");
    ASSERT_TRUE(std::filesystem::exists(dir_ / "endpoints.json"));
  }

  static std::filesystem::path* key_dir_;
  static std::string* public_key_;
  static HeraldServer* server_;
  std::filesystem::path dir_;
};

std::filesystem::path* EndpointDirectoryIntegration::key_dir_ = nullptr;
std::string* EndpointDirectoryIntegration::public_key_ = nullptr;
HeraldServer* EndpointDirectoryIntegration::server_ = nullptr;

TEST_F(EndpointDirectoryIntegration, AVerifiedListIsFetchedCachedAndLoadedAgainAfterARestart) {
  {
    EndpointDirectory directory(settings({list_url()}));
    EXPECT_TRUE(directory.due(now_ms()));
    run_refresh(directory, "wifi home");  // sent percent-encoded; this server ignores it
    EXPECT_EQ(directory.last_error(), "");
    const std::vector<Endpoint> expected = {node(), kEmbedded};
    EXPECT_EQ(directory.candidates(now_ms()), expected);
    EXPECT_FALSE(directory.due(now_ms()));
  }
  // The cache holds the served body itself: it verifies with the public key as it stands.
  std::string body;
  ASSERT_TRUE(detail::read_whole_file(dir_ / "endpoints.json", body));
  const auto cached = protocol::check_signed_list(std::string_view(body), *public_key_, now_ms());
  ASSERT_TRUE(cached) << cached.error().message();
  ASSERT_EQ(cached->endpoints.size(), 1u);
  EXPECT_EQ(cached->endpoints[0].port, server_->device_port());

  // A restarted client whose list server is down connects from its cache, without any fetch.
  const auto down = "http://127.0.0.1:" + std::to_string(free_port());
  auto s = settings({down});
  const std::int64_t now = now_ms();
  s.clock_ms = [now] { return now; };
  EndpointDirectory restarted(std::move(s));
  EXPECT_EQ(restarted.last_error(), "");
  const std::vector<Endpoint> expected = {node(), kEmbedded};
  EXPECT_EQ(restarted.candidates(now), expected);
  run_refresh(restarted, "");
  EXPECT_TRUE(contains(restarted.last_error(), "connect")) << restarted.last_error();
  EXPECT_EQ(restarted.candidates(now), expected);
  EXPECT_FALSE(restarted.due(now));  // a failed fetch backs off before the next
  EXPECT_TRUE(restarted.due(cached->expires_at_ms));
}

TEST_F(EndpointDirectoryIntegration, ARefreshIsDueAgainHalfwayThroughTheListsValidity) {
  EndpointDirectory directory(settings({list_url()}));
  run_refresh(directory, "");
  ASSERT_EQ(directory.last_error(), "");
  std::string body;
  ASSERT_TRUE(detail::read_whole_file(dir_ / "endpoints.json", body));
  const auto list = protocol::check_signed_list(std::string_view(body), *public_key_, now_ms());
  ASSERT_TRUE(list);
  const std::int64_t middle = list->issued_at_ms + (list->expires_at_ms - list->issued_at_ms) / 2;
  EXPECT_FALSE(directory.due(middle - 1));
  EXPECT_TRUE(directory.due(middle));
}

TEST_F(EndpointDirectoryIntegration, ANetworkNoHintCouldNameIsLeftOutOfTheRequest) {
  EndpointDirectory directory(settings({list_url()}));
  run_refresh(directory, std::string(65, 'n'));  // the server would answer 400 to it
  EXPECT_EQ(directory.last_error(), "");
  EXPECT_EQ(directory.candidates(now_ms()).front(), node());
}

TEST_F(EndpointDirectoryIntegration, ADnsFailureFallsBackToTheCachedListThenToTheEmbedded) {
  const std::string unresolvable =
      "http://herald-test.invalid:" + std::to_string(server_->http_port());
  fetch_into_cache();
  EndpointDirectory with_cache(settings({unresolvable}));
  run_refresh(with_cache, "");
  EXPECT_TRUE(contains(with_cache.last_error(), "resolve herald-test.invalid"))
      << with_cache.last_error();
  const std::vector<Endpoint> cached = {node(), kEmbedded};
  EXPECT_EQ(with_cache.candidates(now_ms()), cached);

  auto s = settings({unresolvable});
  s.cache_file = dir_ / "other-cache.json";
  EndpointDirectory without_cache(std::move(s));
  run_refresh(without_cache, "");
  EXPECT_TRUE(contains(without_cache.last_error(), "resolve")) << without_cache.last_error();
  const std::vector<Endpoint> embedded = {kEmbedded};
  EXPECT_EQ(without_cache.candidates(now_ms()), embedded);
}

TEST_F(EndpointDirectoryIntegration, AListServerDownFallsBackToTheEmbeddedWithoutACache) {
  EndpointDirectory directory(settings({"http://127.0.0.1:" + std::to_string(free_port())}));
  run_refresh(directory, "");
  EXPECT_TRUE(contains(directory.last_error(), "connect")) << directory.last_error();
  const std::vector<Endpoint> embedded = {kEmbedded};
  EXPECT_EQ(directory.candidates(now_ms()), embedded);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "endpoints.json"));
}

TEST_F(EndpointDirectoryIntegration, TheNextUrlIsTriedWhenOneFails) {
  const std::string down = "http://127.0.0.1:" + std::to_string(free_port());
  const std::string missing = list_url() + "/v1/no-such-list";
  EndpointDirectory directory(settings({down, missing, list_url()}));
  run_refresh(directory, "");
  EXPECT_TRUE(contains(directory.last_error(), "connect")) << directory.last_error();
  EXPECT_TRUE(contains(directory.last_error(), "HTTP 404")) << directory.last_error();
  EXPECT_EQ(directory.candidates(now_ms()).front(), node());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "endpoints.json"));
}

TEST_F(EndpointDirectoryIntegration, AListSignedWithAnotherKeyIsRejectedAndNotCached) {
  auto s = settings({list_url()});
  // Another deployment's key: the list this server signs is not for us.
  s.public_key_base64 = "6Pvyj7i6MpKNlsrB0x2tBu4tQpwf+tFSiXqgZr4AkVI=";
  EndpointDirectory directory(std::move(s));
  run_refresh(directory, "");
  EXPECT_TRUE(contains(directory.last_error(), "another key")) << directory.last_error();
  const std::vector<Endpoint> embedded = {kEmbedded};
  EXPECT_EQ(directory.candidates(now_ms()), embedded);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "endpoints.json"));
}

TEST_F(EndpointDirectoryIntegration, AnOversizedResponseIsRefused) {
  auto s = settings({list_url()});
  s.max_response_bytes = 64;
  s.cache_file = dir_ / "small-cache.json";
  EndpointDirectory directory(std::move(s));
  run_refresh(directory, "");
  EXPECT_TRUE(contains(directory.last_error(), "response body above 64 bytes"))
      << directory.last_error();
  const std::vector<Endpoint> embedded = {kEmbedded};
  EXPECT_EQ(directory.candidates(now_ms()), embedded);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "small-cache.json"));
}

TEST_F(EndpointDirectoryIntegration, AnExpiredListIsNotUsedOrCached) {
  auto s = settings({list_url()});
  // A device clock a day ahead: every list the server signs has expired by it.
  const std::int64_t day_ahead = now_ms() + 86'400'000;
  s.clock_ms = [day_ahead] { return day_ahead; };
  EndpointDirectory directory(std::move(s));
  run_refresh(directory, "");
  EXPECT_TRUE(contains(directory.last_error(), "expired")) << directory.last_error();
  const std::vector<Endpoint> embedded = {kEmbedded};
  EXPECT_EQ(directory.candidates(day_ahead), embedded);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "endpoints.json"));
}

// The same fallbacks seen from the client library itself: a Client configured with the list URL
// connects to the node the list names, and with DNS and the list server down it connects through
// its cached list, then through its embedded endpoints, never needing a name to be resolved.
class AllIpClient : public EndpointDirectoryIntegration {
 protected:
  // A client of a freshly registered device, with `urls`, the embedded `endpoints` and `cache`;
  // it starts at once. Messages go to `inbox`.
  std::unique_ptr<Client> client(const std::string& device, std::vector<std::string> urls,
                                 std::vector<Endpoint> endpoints,
                                 const std::filesystem::path& cache,
                                 const std::string& network = "") {
    const auto token = sender_.register_device(kNewsApp, device);
    auto o = device_options(*server_, device, token);
    o.endpoints = std::move(endpoints);
    o.endpoint_list_urls = std::move(urls);
    o.endpoint_list_public_key = *public_key_;
    o.endpoint_list_cache_file = cache;
    o.endpoint_list_timeout = 5s;
    auto c = std::make_unique<Client>(loop_, std::move(o), make_memory_cursor_store());
    c->on_message(kNewsApp.id, inbox_.handler());
    c->on_state(states_.handler());
    if (!network.empty()) c->set_network(network);
    c->start();
    return c;
  }

  // The client is connected and a message pushed to `device` now reaches it.
  void expect_delivery(const std::string& device) {
    ASSERT_TRUE(states_.wait_connected(10s));
    ASSERT_TRUE(sender_.push(kNewsApp, {device}, R"({"hello":"all-ip"})").accepted());
    ASSERT_EQ(inbox_.wait_for(1, 10s), 1u);
    EXPECT_EQ(inbox_.messages().front().data, R"({"hello":"all-ip"})");
  }

  std::string unresolvable() const {
    return "http://herald-test.invalid:" + std::to_string(server_->http_port());
  }
  std::string down() const { return "http://127.0.0.1:" + std::to_string(free_port()); }

  Sender sender_{server_->http_port()};
  EventLoop loop_;
  Inbox inbox_;
  StateLog states_;
};

TEST_F(AllIpClient, ConnectsToTheNodeItsListNamesAndCachesTheList) {
  // No embedded endpoint at all: only the list can say where to go.
  auto c = client("all-ip-1", {list_url()}, {}, dir_ / "endpoints.json");
  expect_delivery("all-ip-1");
  c->stop();
  EXPECT_TRUE(std::filesystem::exists(dir_ / "endpoints.json"));
}

TEST_F(AllIpClient, WithDnsAndTheListServerDownConnectsThroughItsCachedList) {
  fetch_into_cache();
  // No embedded endpoint: the cached list is all the client has.
  auto c = client("all-ip-2", {unresolvable(), down()}, {}, dir_ / "endpoints.json");
  expect_delivery("all-ip-2");
}

TEST_F(AllIpClient, WithDnsAndTheListServerDownAndNoCacheConnectsThroughItsEmbeddedEndpoints) {
  auto c = client("all-ip-3", {unresolvable(), down()}, {node()}, dir_ / "none-yet.json");
  expect_delivery("all-ip-3");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "none-yet.json"));
}

// Server-assisted heartbeat, end to end: three devices on a network told the server (in their
// Hello) what they settled on; a new client on that network fetches the list naming its network,
// and starts its heartbeat from the list's hint instead of heartbeat_s.
TEST_F(AllIpClient, StartsItsHeartbeatFromTheHintTheListGivesForItsNetwork) {
  const std::string network = "carrier:hint-test";
  for (const std::uint32_t settled_s : {240u, 300u, 420u}) {
    const std::string device = "hint-teacher-" + std::to_string(settled_s);
    protocol::wire::Hello h;
    h.set_protocol_version(protocol::kProtocolVersion);
    h.set_device_id(device);
    h.set_token(sender_.register_device(kNewsApp, device));
    h.set_network(network);
    h.set_settled_heartbeat_s(settled_s);
    RawPeer peer(server_->device_port());
    peer.send(frame_of(protocol::FrameType::kHello, h));
    const auto answer = peer.read_frame(10s);  // HelloOk comes after the report was taken in
    ASSERT_TRUE(answer && answer->first == protocol::FrameType::kHelloOk);
  }
  auto c = client("hint-learner", {list_url()}, {}, dir_ / "endpoints.json", network);
  ASSERT_TRUE(states_.wait_connected(10s));
  EXPECT_EQ(c->heartbeat_interval_s(), 240u);  // the 25th percentile of 240, 300, 420
}

// herald-device, the command-line device, connects where the list says too.
TEST_F(AllIpClient, HeraldDeviceConnectsThroughTheEndpointList) {
  const std::string device = "all-ip-cli";
  const auto token = sender_.register_device(kNewsApp, device);
  // Stored before the device starts: it pulls it on connecting, wherever the list sent it.
  ASSERT_TRUE(sender_.push(kNewsApp, {device}, R"({"via":"list"})").accepted());
  const auto run = run_captured(
      {bin_path("herald-device").string(), "--endpoint-list", list_url() + "/v1/endpoints",
       "--endpoint-key", *public_key_, "--endpoint-cache", (dir_ / "cli-cache.json").string(),
       "--network", "carrier:cli", "--device", device, "--token", token, "--print", "--exit-after",
       "1", "--duration", "30"},
      {});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find(R"({"via":"list"})"), std::string::npos) << run.out;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "cli-cache.json"));

  const auto bad = run_captured({bin_path("herald-device").string(), "--endpoint-list", list_url(),
                                 "--device", device, "--token", token},
                                {});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--endpoint-list needs --endpoint-key"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace herald::testing
