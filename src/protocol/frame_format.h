// The frame layout shared by the encoder and the decoder (see docs/protocol.md).
//
//   +--------+---------------------+------------------------+
//   | type   | body length         | body                   |
//   | 1 byte | LEB128, 1..4 bytes  | `length` bytes         |
//   +--------+---------------------+------------------------+
//
// The body is the protobuf encoding of the message named by the type (herald_device.proto). An
// empty body is legal: a ping with no change is the two bytes 0x03 0x00.
#pragma once

#include <cstddef>
#include <cstdint>

namespace herald::protocol {

inline constexpr std::uint32_t kProtocolVersion = 1;

enum class FrameType : std::uint8_t {
  kHello = 0x01,
  kHelloOk = 0x02,
  kPing = 0x03,
  kPong = 0x04,
  kNotify = 0x05,
  kPull = 0x06,
  kMessages = 0x07,
  kAck = 0x08,
  kReconnect = 0x09,
  kError = 0x0A,
  kUpstream = 0x0B,
  kUpstreamAck = 0x0C,
  kSubscribe = 0x0D,
  kStreams = 0x0E,
};

inline constexpr std::uint8_t kMinFrameType = 0x01;
inline constexpr std::uint8_t kMaxFrameType = 0x0E;

// The length is at most 4 LEB128 bytes, so no body can claim more than 2^28 - 1 bytes; decoders
// reject far less than that through their configured maximum.
inline constexpr std::size_t kMaxLengthBytes = 4;
inline constexpr std::size_t kMaxHeaderBytes = 1 + kMaxLengthBytes;
inline constexpr std::uint32_t kMaxEncodableBodyBytes = (1u << 28) - 1;

// Defaults for the configurable limits.
inline constexpr std::uint32_t kDefaultMaxBodyBytes = 64 * 1024;  // after authentication
inline constexpr std::uint32_t kDefaultMaxHelloBodyBytes = 512;   // before authentication
inline constexpr std::uint64_t kInboxStream = 0;  // stream id of a device's own inbox

// Bytes of the minimal LEB128 (protobuf varint) encoding of `v`: 1..10.
constexpr std::size_t varint_bytes(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Bytes on the wire of a frame whose body is `body_bytes` long (body_bytes <=
// kMaxEncodableBodyBytes). Lets a sender fit a Messages frame under the peer's max_frame_bytes.
constexpr std::size_t frame_bytes_for_body(std::size_t body_bytes) {
  return 1 + varint_bytes(body_bytes) + body_bytes;
}

// True when `t` is sent by devices; the server rejects any other type from a device.
constexpr bool is_client_frame(FrameType t) {
  return t == FrameType::kHello || t == FrameType::kPing || t == FrameType::kPull ||
         t == FrameType::kAck || t == FrameType::kError || t == FrameType::kUpstream ||
         t == FrameType::kSubscribe;
}

}  // namespace herald::protocol
