// Upstream messages end to end: a device (raw frames, as a client in any language would send
// them, or the real client library) sends Upstream frames to a real heraldd, which stores them,
// answers UpstreamAck, and POSTs them to the app's webhook: a real HTTP server in this test that
// checks every signature itself and starts down. Webhooks come from the configuration, or are
// set and changed through the admin API while heraldd runs.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "http/http_client.h"
#include "protocol/frame_codec.h"
#include "sender.h"
#include "test_device.h"
#include "webhook_receiver.h"

namespace herald::testing {
namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace wire = protocol::wire;
using namespace std::chrono_literals;
using protocol::ErrorCode;
using protocol::FrameType;

constexpr auto kWait = 20s;
// Upstream frames a test device sends before it waits for their acks: below heraldd's bound of
// unanswered Upstream frames per connection (32; more are answered server_busy).
constexpr std::size_t kWindow = 16;

std::uint32_t code(ErrorCode c) { return static_cast<std::uint32_t>(c); }

// A device speaking raw frames. Every read has a deadline.
class RawDevice {
 public:
  RawDevice(std::uint16_t port, const std::string& device, const std::string& token)
      : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
    wire::Hello hello;
    hello.set_protocol_version(protocol::kProtocolVersion);
    hello.set_device_id(device);
    hello.set_token(token);
    std::string frame;
    protocol::append_frame(FrameType::kHello, hello, frame);
    send(frame);
    const auto ok = read_frame(kWait);
    if (!ok || ok->first != FrameType::kHelloOk) throw std::runtime_error("no HelloOk");
  }

  void send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

  void send_upstream(std::uint64_t id, const std::string& app, const std::string& data,
                     wire::DataKind kind = wire::DATA_KIND_JSON) {
    wire::Upstream upstream;
    upstream.set_id(id);
    upstream.set_app(app);
    upstream.set_data(data);
    upstream.set_kind(kind);
    std::string frame;
    protocol::append_frame(FrameType::kUpstream, upstream, frame);
    send(frame);
  }

  // Reads UpstreamAcks until `n` have come (other frames are skipped); id -> error code. Fewer
  // when the deadline passed or the server closed.
  std::map<std::uint64_t, std::uint32_t> read_acks(std::size_t n) {
    std::map<std::uint64_t, std::uint32_t> acks;
    const auto deadline = std::chrono::steady_clock::now() + kWait;
    while (acks.size() < n) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      const auto frame = read_frame(std::max(left, 1ms));
      if (!frame) break;
      if (frame->first != FrameType::kUpstreamAck) continue;
      wire::UpstreamAck ack;
      if (!ack.ParseFromString(frame->second)) break;
      acks[ack.id()] = ack.error_code();
    }
    return acks;
  }

  // The next frame, or nothing once `timeout` passed or the connection closed.
  std::optional<std::pair<FrameType, std::string>> read_frame(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto r = protocol::parse_frame(
          {reinterpret_cast<const std::uint8_t*>(buf_.data()), buf_.size()}, 1 << 20);
      if (r.status == protocol::ParseStatus::kComplete) {
        std::pair<FrameType, std::string> frame{
            r.frame.type,
            std::string(reinterpret_cast<const char*>(r.frame.body.data()), r.frame.body.size())};
        buf_.erase(0, r.frame.frame_bytes);
        return frame;
      }
      if (r.status == protocol::ParseStatus::kBroken) return std::nullopt;
      char chunk[4096];
      bool done = false;
      boost::system::error_code ec;
      std::size_t n = 0;
      socket_.async_read_some(asio::buffer(chunk), [&](boost::system::error_code e, std::size_t k) {
        ec = e;
        n = k;
        done = true;
      });
      io_.restart();
      io_.run_until(deadline);
      if (!done) {
        socket_.cancel();
        io_.restart();
        io_.run();
        return std::nullopt;
      }
      if (ec) return std::nullopt;
      buf_.append(chunk, n);
    }
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  std::string buf_;
};

std::vector<std::string> webhook_args(std::uint16_t port, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {
      "--apps.news.webhook_url=http://127.0.0.1:" + std::to_string(port) + "/hooks/herald",
      "--upstream.retry_initial_ms=20", "--upstream.retry_max_ms=200"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// The secret heraldd generated for the app (docs/configuration.md: none was configured).
std::string generated_secret(const HeraldServer& server, const std::string& app) {
  std::ifstream in(server.data_dir() / ("webhook_secret." + app));
  std::string secret;
  std::getline(in, secret);
  return secret;
}

std::string json_data(const std::string& device, std::uint64_t n) {
  return R"({"device":")" + device + R"(","n":)" + std::to_string(n) + "}";
}

// Each device's messages arrived in the order it sent them (ids grow), with the right data.
void expect_in_order(const std::vector<WebhookReceiver::Message>& messages) {
  std::map<std::string, std::uint64_t> last;
  std::set<std::string> seen;
  for (const auto& m : messages) {
    if (!seen.insert(m.id).second) continue;  // a repeat (at least once) is not an order error
    const std::uint64_t n = std::stoull(m.id.substr(m.device.size() + 1));
    EXPECT_GT(n, last[m.device]) << m.id;
    last[m.device] = n;
    if (!m.base64) {
      EXPECT_EQ(m.data, json_data(m.device, n)) << m.id;
    }
  }
}

TEST(Upstream, MessagesReachTheWebhookSignedOnceTheBackendComesUp) {
  const auto port = WebhookReceiver::pick_port();
  HeraldServer server(webhook_args(port));
  WebhookReceiver backend(generated_secret(server, "news"), port);
  ASSERT_EQ(generated_secret(server, "news").size(), 64u);

  Sender sender(server.http_port());
  std::vector<std::unique_ptr<RawDevice>> devices;
  for (const std::string device : {"phone-a", "phone-b"}) {
    devices.push_back(std::make_unique<RawDevice>(server.device_port(), device,
                                                  sender.register_device(kNewsApp, device)));
  }
  // Interleaved sends from two devices, the backend down: every one is stored and acked.
  for (std::uint64_t first = 1; first <= 40; first += kWindow) {
    const std::uint64_t last = std::min<std::uint64_t>(40, first + kWindow - 1);
    for (std::uint64_t n = first; n <= last; ++n) {
      for (std::size_t d = 0; d < devices.size(); ++d) {
        const std::string device = d == 0 ? "phone-a" : "phone-b";
        if (n % 10 == 0) {
          devices[d]->send_upstream(n, "news", std::string("\x00\x01\xff", 3),
                                    wire::DATA_KIND_BINARY);
        } else {
          devices[d]->send_upstream(n, "news", json_data(device, n));
        }
      }
    }
    for (auto& device : devices) {
      const auto acks = device->read_acks(last - first + 1);
      ASSERT_EQ(acks.size(), last - first + 1);
      for (const auto& [id, error] : acks) EXPECT_EQ(error, 0u) << id;
    }
  }
  // Resends of acked ids (a client that missed the acks) are acked again and stored once.
  for (std::uint64_t n = 1; n <= 5; ++n)
    devices[0]->send_upstream(n, "news", json_data("phone-a", n));
  for (const auto& [id, error] : devices[0]->read_acks(5)) EXPECT_EQ(error, 0u) << id;

  backend.up();
  ASSERT_EQ(backend.wait_for_distinct(80, kWait), 80u);
  EXPECT_TRUE(backend.rejected().empty()) << backend.rejected().front();
  const auto messages = backend.messages();
  expect_in_order(messages);
  // Nothing failed after the backend came up, so nothing had to be sent twice.
  EXPECT_EQ(messages.size(), 80u);
  for (const auto& m : messages) {
    if (m.id.ends_with(":10")) {
      EXPECT_TRUE(m.base64);
      EXPECT_EQ(m.data, "AAH/");
    }
  }
}

TEST(Upstream, RefusedMessagesAreAnsweredOneByOneAndTheConnectionStays) {
  const auto port = WebhookReceiver::pick_port();
  HeraldServer server(webhook_args(port));
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-r");
  sender.register_device(kChatApp, "phone-r");
  RawDevice device(server.device_port(), "phone-r", token);

  device.send_upstream(1, "chat", "{}");       // registered, but chat has no webhook
  device.send_upstream(2, "nosuch", "{}");     // no such app
  device.send_upstream(3, "news", "{\"a\":");  // not JSON
  device.send_upstream(4, "news", std::string(4097, 'x'), wire::DATA_KIND_BINARY);  // too large
  device.send_upstream(5, "news", "", wire::DATA_KIND_TOMBSTONE);                   // server-only
  device.send_upstream(0, "news", "{}");                                            // id 0
  device.send_upstream(7, "news", "{\"ok\":true}");
  const auto acks = device.read_acks(7);
  ASSERT_EQ(acks.size(), 7u);
  EXPECT_EQ(acks.at(1), code(ErrorCode::kUnknownApp));
  EXPECT_EQ(acks.at(2), code(ErrorCode::kUnknownApp));
  EXPECT_EQ(acks.at(3), code(ErrorCode::kBadRequest));
  EXPECT_EQ(acks.at(4), code(ErrorCode::kBadRequest));
  EXPECT_EQ(acks.at(5), code(ErrorCode::kBadRequest));
  EXPECT_EQ(acks.at(0), code(ErrorCode::kBadRequest));
  EXPECT_EQ(acks.at(7), 0u);

  // A device not registered for the app is refused the same way.
  const auto other = sender.register_device(kChatApp, "phone-s");
  RawDevice stranger(server.device_port(), "phone-s", other);
  stranger.send_upstream(1, "news", "{}");
  EXPECT_EQ(stranger.read_acks(1).at(1), code(ErrorCode::kUnknownApp));

  WebhookReceiver backend(generated_secret(server, "news"), port);
  backend.up();
  ASSERT_EQ(backend.wait_for_distinct(1, kWait), 1u);
  EXPECT_EQ(backend.messages().front().id, "phone-r:7");
}

TEST(Upstream, AtTheBoundDevicesAreAnsweredBusyUntilTheBackendDrainsIt) {
  const auto port = WebhookReceiver::pick_port();
  HeraldServer server(webhook_args(port, {"--apps.news.upstream_max_pending=5"}));
  Sender sender(server.http_port());
  RawDevice device(server.device_port(), "phone-b", sender.register_device(kNewsApp, "phone-b"));
  for (std::uint64_t n = 1; n <= 7; ++n) device.send_upstream(n, "news", json_data("phone-b", n));
  auto acks = device.read_acks(7);
  ASSERT_EQ(acks.size(), 7u);
  for (std::uint64_t n = 1; n <= 5; ++n) EXPECT_EQ(acks.at(n), 0u) << n;
  EXPECT_EQ(acks.at(6), code(ErrorCode::kServerBusy));
  EXPECT_EQ(acks.at(7), code(ErrorCode::kServerBusy));

  WebhookReceiver backend(generated_secret(server, "news"), port);
  backend.up();
  ASSERT_EQ(backend.wait_for_distinct(5, kWait), 5u);
  // Delivered means no longer pending, so the refused ones go through when the device sends
  // them again, as a client does after busy. The cursor moves right after the backend's answer,
  // so a resend may still meet the bound for that moment: busy again, and sent again.
  for (std::uint64_t n = 6; n <= 7; ++n) {
    std::uint32_t error = 0;
    int tries = 0;
    do {
      device.send_upstream(n, "news", json_data("phone-b", n));
      const auto ack = device.read_acks(1);
      ASSERT_EQ(ack.size(), 1u);
      error = ack.begin()->second;
    } while (error == code(ErrorCode::kServerBusy) && ++tries < 1000);
    ASSERT_EQ(error, 0u) << n;
  }
  ASSERT_EQ(backend.wait_for_distinct(7, kWait), 7u);
  expect_in_order(backend.messages());
}

TEST(Upstream, UnansweredUpstreamsBeyondTheConnectionsBoundAreAnsweredBusyNotDropped) {
  const auto port = WebhookReceiver::pick_port();
  HeraldServer server(webhook_args(port));
  Sender sender(server.http_port());
  RawDevice device(server.device_port(), "phone-w", sender.register_device(kNewsApp, "phone-w"));
  // 48 frames in one write, no waiting: beyond 32 unanswered ones, heraldd answers busy rather
  // than holding more of this connection's data.
  std::string frames;
  for (std::uint64_t n = 1; n <= 48; ++n) {
    wire::Upstream upstream;
    upstream.set_id(n);
    upstream.set_app("news");
    upstream.set_data(json_data("phone-w", n));
    protocol::append_frame(FrameType::kUpstream, upstream, frames);
  }
  device.send(frames);
  const auto acks = device.read_acks(48);
  ASSERT_EQ(acks.size(), 48u);
  std::vector<std::uint64_t> busy;
  for (const auto& [id, error] : acks) {
    if (error != 0) {
      ASSERT_EQ(error, code(ErrorCode::kServerBusy)) << id;
      busy.push_back(id);
    }
  }
  // The first 32 always fit. One write on loopback arrives in one read, so the rest find the
  // bound reached (a split read could let some early appends finish first: then fewer are busy).
  EXPECT_LE(busy.size(), 16u);
  EXPECT_GE(busy.size(), 1u);
  // The connection stays, and the refused ones are stored when sent again.
  for (const auto id : busy) device.send_upstream(id, "news", json_data("phone-w", id));
  for (const auto& [id, error] : device.read_acks(busy.size())) EXPECT_EQ(error, 0u) << id;

  WebhookReceiver backend(generated_secret(server, "news"), port);
  backend.up();
  ASSERT_EQ(backend.wait_for_distinct(48, kWait), 48u);
  EXPECT_TRUE(backend.rejected().empty()) << backend.rejected().front();
}

TEST(Upstream, KillNineOfHeralddBetweenStoreAndDeliveryLosesNothing) {
  const auto port = WebhookReceiver::pick_port();
  HeraldServer server(webhook_args(port));
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "phone-k");
  {
    RawDevice device(server.device_port(), "phone-k", token);
    for (std::uint64_t first = 1; first <= 50; first += kWindow) {
      const std::uint64_t last = std::min<std::uint64_t>(50, first + kWindow - 1);
      for (std::uint64_t n = first; n <= last; ++n) {
        device.send_upstream(n, "news", json_data("phone-k", n));
      }
      const auto acks = device.read_acks(last - first + 1);
      ASSERT_EQ(acks.size(), last - first + 1);
      for (const auto& [id, error] : acks) ASSERT_EQ(error, 0u) << id;
    }
  }
  // Acknowledged, not delivered (the backend is down): the process dies without any warning.
  server.kill9();
  server.restart();

  RawDevice device(server.device_port(), "phone-k", token);
  for (std::uint64_t n = 51; n <= 60; ++n) device.send_upstream(n, "news", json_data("phone-k", n));
  // A resend from before the crash is still recognised.
  device.send_upstream(50, "news", json_data("phone-k", 50));
  const auto acks = device.read_acks(11);
  ASSERT_EQ(acks.size(), 11u);
  for (const auto& [id, error] : acks) EXPECT_EQ(error, 0u) << id;

  WebhookReceiver backend(generated_secret(server, "news"), port);
  backend.up();
  ASSERT_EQ(backend.wait_for_distinct(60, kWait), 60u);
  EXPECT_TRUE(backend.rejected().empty()) << backend.rejected().front();
  expect_in_order(backend.messages());
  EXPECT_EQ(backend.messages().size(), 60u);
}

// ------------------------------------------------ webhooks set through the admin API at run time

// The operator's side: the admin API over HTTP, with the token heraldd generated.
class Admin {
 public:
  explicit Admin(const HeraldServer& server) : client_("127.0.0.1", server.http_port(), kWait) {
    std::ifstream in(server.data_dir() / "admin_token");
    std::getline(in, token_);
  }

  // The JSON answer of a call that must answer `status`.
  boost::json::value call(bhttp::verb verb, const std::string& target, const std::string& body,
                          unsigned status = 200) {
    auto answer = client_.request(verb, target, body, {{"Authorization", "Bearer " + token_}});
    if (!answer) {
      ADD_FAILURE() << target << ": no answer: " << answer.error().message();
      return nullptr;
    }
    EXPECT_EQ(answer->result_int(), status) << target << " " << body << " -> " << answer->body();
    return boost::json::parse(answer->body());
  }
  // Sets (or with an empty url, removes) the app's webhook; returns its secret.
  std::string set_webhook(const std::string& app, const std::string& url) {
    const std::string body =
        url.empty() ? R"({"webhook": null})" : R"({"webhook": {"url": ")" + url + R"("}})";
    const auto answer = call(bhttp::verb::patch, "/v1/admin/apps/" + app, body);
    const auto* hook = answer.is_object() ? answer.as_object().if_contains("webhook") : nullptr;
    return hook != nullptr ? std::string(hook->at("secret").as_string()) : "";
  }
  void set_disabled(const std::string& app, bool disabled) {
    call(bhttp::verb::patch, "/v1/admin/apps/" + app,
         disabled ? R"({"disabled": true})" : R"({"disabled": false})");
  }

 private:
  http::HttpClient client_;
  std::string token_;
};

// A device on the real client library, sending upstream messages and waiting for their outcome.
class LibraryDevice {
 public:
  LibraryDevice(const HeraldServer& server, const std::string& device, const std::string& token)
      : client_(loop_, device_options(server, device, token), make_memory_cursor_store()) {
    client_.start();
  }
  ~LibraryDevice() { client_.stop(); }

  // Sends `data` (JSON) to `app` and waits for its outcome: kStored, or the refusal.
  UpstreamResult send(const std::string& app, const std::string& data) {
    std::uint64_t id = 0;
    {
      std::lock_guard lock(mu_);
      id = client_.send_upstream(app, data, false, [this](const UpstreamResult& r) {
        std::lock_guard inner(mu_);
        results_[r.id] = r;
        cv_.notify_all();
      });
    }
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kWait, [&] { return results_.contains(id); })) {
      ADD_FAILURE() << "no outcome for upstream message " << id;
      return UpstreamResult{id, UpstreamStatus::kStopped, 0, "timed out"};
    }
    return results_.at(id);
  }

 private:
  EventLoop loop_;
  Client client_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint64_t, UpstreamResult> results_;
};

std::string hook_url(std::uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port) + "/hooks/herald";
}

// The ids a backend accepted, in order, once per id.
std::vector<std::string> ids_of(WebhookReceiver& backend) {
  std::vector<std::string> ids;
  for (const auto& m : backend.messages()) {
    if (std::find(ids.begin(), ids.end(), m.id) == ids.end()) ids.push_back(m.id);
  }
  return ids;
}

TEST(Upstream, AnAppCreatedAtRunTimeGetsItsWebhookAndFollowsAUrlChangeWithoutARestart) {
  HeraldServer server({"--upstream.retry_initial_ms=20", "--upstream.retry_max_ms=200"});
  Admin admin(server);
  const auto created = admin.call(bhttp::verb::post, "/v1/admin/apps", R"({"id": "shop"})", 201);
  const TestApp shop{"shop", std::string(created.at("key").at("key").as_string())};
  Sender sender(server.http_port());
  LibraryDevice device(server, "phone-u", sender.register_device(shop, "phone-u"));

  // No webhook yet: the app takes no upstream messages.
  const auto refused = device.send("shop", R"({"n":0})");
  EXPECT_EQ(refused.status, UpstreamStatus::kRejected);
  EXPECT_EQ(refused.error_code, code(ErrorCode::kUnknownApp));

  const auto first_port = WebhookReceiver::pick_port();
  const std::string secret = admin.set_webhook("shop", hook_url(first_port));
  ASSERT_EQ(secret.size(), 64u);
  WebhookReceiver first(secret, first_port);
  first.up();
  const auto stored = device.send("shop", R"({"n":1})");
  ASSERT_EQ(stored.status, UpstreamStatus::kStored) << stored.reason;
  ASSERT_EQ(first.wait_for_distinct(1, kWait), 1u);
  EXPECT_TRUE(first.rejected().empty()) << first.rejected().front();  // signed with the secret
  EXPECT_EQ(first.messages().front().id, "phone-u:" + std::to_string(stored.id));
  EXPECT_EQ(first.messages().front().data, R"({"n":1})");

  // A new URL: the secret stays, the next message goes there.
  const auto second_port = WebhookReceiver::pick_port();
  WebhookReceiver second(secret, second_port);
  second.up();
  EXPECT_EQ(admin.set_webhook("shop", hook_url(second_port)), secret);
  const auto next = device.send("shop", R"({"n":2})");
  ASSERT_EQ(next.status, UpstreamStatus::kStored) << next.reason;
  ASSERT_EQ(second.wait_for_distinct(1, kWait), 1u);
  EXPECT_TRUE(second.rejected().empty()) << second.rejected().front();
  EXPECT_EQ(second.messages().front().id, "phone-u:" + std::to_string(next.id));
  EXPECT_EQ(ids_of(first), std::vector<std::string>{"phone-u:" + std::to_string(stored.id)});
}

TEST(Upstream, StoredMessagesWaitThroughARemovedWebhookADisabledAppAndARestart) {
  HeraldServer server({"--upstream.retry_initial_ms=20", "--upstream.retry_max_ms=200"});
  Admin admin(server);
  const auto created = admin.call(bhttp::verb::post, "/v1/admin/apps", R"({"id": "shop"})", 201);
  const TestApp shop{"shop", std::string(created.at("key").at("key").as_string())};
  Sender sender(server.http_port());
  const auto token = sender.register_device(shop, "phone-w");
  std::vector<std::string> expected;
  {
    LibraryDevice device(server, "phone-w", token);
    // The backend is down: three messages are stored and wait.
    admin.set_webhook("shop", hook_url(WebhookReceiver::pick_port()));
    for (int n = 1; n <= 3; ++n) {
      const auto r = device.send("shop", json_data("phone-w", static_cast<std::uint64_t>(n)));
      ASSERT_EQ(r.status, UpstreamStatus::kStored) << r.reason;
      expected.push_back("phone-w:" + std::to_string(r.id));
    }
    // Without a webhook new messages are refused; the stored ones stay.
    admin.set_webhook("shop", "");
    EXPECT_EQ(device.send("shop", "{}").error_code, code(ErrorCode::kUnknownApp));

    // A webhook again (a new one, with a new secret): the three arrive there.
    const auto port = WebhookReceiver::pick_port();
    WebhookReceiver backend(admin.set_webhook("shop", hook_url(port)), port);
    backend.up();
    ASSERT_EQ(backend.wait_for_distinct(3, kWait), 3u);
    EXPECT_TRUE(backend.rejected().empty()) << backend.rejected().front();
    EXPECT_EQ(ids_of(backend), expected);

    // A disabled app takes nothing and delivers nothing until it is enabled again.
    admin.set_disabled("shop", true);
    EXPECT_EQ(device.send("shop", "{}").error_code, code(ErrorCode::kUnknownApp));
    admin.set_disabled("shop", false);
    const auto r = device.send("shop", json_data("phone-w", 4));
    ASSERT_EQ(r.status, UpstreamStatus::kStored) << r.reason;
    expected.push_back("phone-w:" + std::to_string(r.id));
    ASSERT_EQ(backend.wait_for_distinct(4, kWait), 4u);
    EXPECT_EQ(ids_of(backend), expected);
    backend.down();

    // After a restart the stored settings are used: the webhook set through the admin API.
    ASSERT_EQ(server.terminate(), 0);
    server.restart();
    const auto after = device.send("shop", json_data("phone-w", 5));
    ASSERT_EQ(after.status, UpstreamStatus::kStored) << after.reason;
    expected.push_back("phone-w:" + std::to_string(after.id));
    backend.up();
    ASSERT_EQ(backend.wait_for_distinct(5, kWait), 5u);
    EXPECT_EQ(ids_of(backend), expected);
  }
}

}  // namespace
}  // namespace herald::testing
