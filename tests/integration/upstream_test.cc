// Upstream messages end to end: a device (raw frames, as a client in any language would send
// them) sends Upstream frames to a real heraldd, which stores them, answers UpstreamAck, and
// POSTs them to the app's webhook: a real HTTP server in this test that checks every signature
// itself and starts down.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
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

#include "herald_server.h"
#include "protocol/frame_codec.h"
#include "sender.h"
#include "webhook_receiver.h"

namespace herald::testing {
namespace {

namespace asio = boost::asio;
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

}  // namespace
}  // namespace herald::testing
