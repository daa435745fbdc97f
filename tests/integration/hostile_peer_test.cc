// Raw-socket peers against a real heraldd: frames the client library would never send.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "herald_server.h"
#include "protocol/frame_codec.h"
#include "raw_peer.h"
#include "sender.h"

namespace herald::testing {
namespace {

using protocol::ErrorCode;
using protocol::FrameType;

// A frame header claiming `body_bytes` of body, with the body never sent.
std::string header_claiming(FrameType type, std::uint32_t body_bytes) {
  std::string out(1, static_cast<char>(type));
  while (body_bytes >= 0x80) {
    out.push_back(static_cast<char>((body_bytes & 0x7f) | 0x80));
    body_bytes >>= 7;
  }
  out.push_back(static_cast<char>(body_bytes));
  return out;
}

std::uint32_t error_code_of(const std::vector<std::pair<FrameType, std::string>>& frames) {
  for (const auto& [type, body] : frames) {
    if (type != FrameType::kError) continue;
    protocol::wire::Error e;
    if (e.ParseFromString(body)) return e.code();
  }
  return 0;
}

TEST(HostilePeer, FrameOverTheMaximumIsRefusedWithoutAllocatingIt) {
  HeraldServer server;
  const auto rss_before = server.rss_kib();
  // Before authentication: a Hello claiming 200 MiB (the cap there is 512 bytes).
  RawPeer peer(server.device_port());
  peer.send(header_claiming(FrameType::kHello, 200u << 20));
  EXPECT_EQ(error_code_of(peer.read_until_close()),
            static_cast<std::uint32_t>(ErrorCode::kFrameTooLarge));
  // After authentication the bound is max_frame_bytes (64 KiB): a ping claiming 100 MiB.
  Sender sender(server.http_port());
  const auto token = sender.register_device(kNewsApp, "raw-1");
  RawPeer authed(server.device_port());
  authed.send(hello_frame("raw-1", token));
  authed.send(header_claiming(FrameType::kPing, 100u << 20));
  EXPECT_EQ(error_code_of(authed.read_until_close()),
            static_cast<std::uint32_t>(ErrorCode::kFrameTooLarge));
  // Neither claim was allocated: the process grew by far less than either.
  EXPECT_LT(server.rss_kib() - rss_before, 16 * 1024);
}

TEST(HostilePeer, DataBeforeHelloIsAnUnexpectedFrame) {
  HeraldServer server;
  RawPeer peer(server.device_port());
  std::string pull;
  protocol::append_frame(FrameType::kPull, protocol::wire::Pull{}, pull);
  peer.send(pull);
  EXPECT_EQ(error_code_of(peer.read_until_close()),
            static_cast<std::uint32_t>(ErrorCode::kUnexpectedFrame));
}

TEST(HostilePeer, UnknownFrameTypeIsRefused) {
  HeraldServer server;
  RawPeer peer(server.device_port());
  peer.send(std::string("\x7f\x00", 2));
  EXPECT_EQ(error_code_of(peer.read_until_close()),
            static_cast<std::uint32_t>(ErrorCode::kUnknownFrameType));
}

TEST(HostilePeer, ForgedTokenGetsBadCredentialsOnTheWire) {
  HeraldServer server;
  RawPeer peer(server.device_port());
  peer.send(hello_frame("raw-2", "v1.1.forged"));
  EXPECT_EQ(error_code_of(peer.read_until_close()),
            static_cast<std::uint32_t>(ErrorCode::kBadCredentials));
}

}  // namespace
}  // namespace herald::testing
