// The wire formats herald-bench speaks to its peers, as far as it needs them: MQTT 3.1.1 control
// packets, NATS protocol lines, RESP commands. Encoders append to a string; decoders look at the
// front of the bytes received so far and answer complete, need more or broken, consuming nothing
// until a whole frame is there. Private to peers.cc; no sockets here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/system/error_code.hpp>

namespace herald::bench {

// Why a peer connection ended on our side. None is worth retrying on the same connection: close
// it; a new one may succeed when the peer was only briefly unwell.
enum class PeerError {
  kBrokenFrame = 1,   // bytes that do not follow the protocol
  kFrameTooLarge,     // a frame above kMaxFrameBytes: refused before buffering it
  kConnectRefused,    // MQTT CONNACK with a non-zero return code
  kSubscribeRefused,  // MQTT SUBACK granting 0x80 (failure)
  kErrorReply,        // NATS -ERR, a Redis error reply
  kTimedOut,          // the peer did not confirm the subscriptions in time
};

const boost::system::error_category& peer_category();
boost::system::error_code make_error_code(PeerError error);

// The largest frame (MQTT packet, NATS message, Redis reply) a driver buffers; bigger ones end
// the connection, so that a broken length cannot make us allocate without bound.
inline constexpr std::size_t kMaxFrameBytes = 1 << 20;

enum class Parse { kComplete, kNeedMore, kTooLarge, kBroken };

namespace mqtt {

// Control packet types (MQTT 3.1.1 section 2.2.1), the high nibble of a packet's first byte.
enum PacketType : std::uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kSubscribe = 8,
  kSuback = 9,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

// The largest "remaining length" four bytes of 7 bits can say.
inline constexpr std::size_t kMaxRemainingLength = 268'435'455;

// Appends `n` (at most kMaxRemainingLength) as MQTT's remaining length: 7 bits a byte, least
// significant first, the high bit set on every byte but the last.
void append_remaining_length(std::string& out, std::size_t n);

// One control packet:
//   +--------------+---------------------------+------------------------+
//   | type | flags | remaining length (1-4 B)  | body (remaining length)|
//   +--------------+---------------------------+------------------------+
struct Packet {
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::string_view body;  // points into the decoder's input
  std::size_t size = 0;   // of the whole packet, header included
};

// The packet at the front of `in`: kComplete (fills `packet`), kNeedMore, kTooLarge when its
// remaining length exceeds `max_body_bytes`, kBroken when the length takes more than 4 bytes.
[[nodiscard]] Parse next_packet(std::string_view in, std::size_t max_body_bytes, Packet& packet);

// A PUBLISH packet's content. `topic` and `payload` point into the packet's body.
struct Publish {
  std::string_view topic;
  std::uint8_t qos = 0;
  std::uint16_t packet_id = 0;  // QoS 1 and 2 only
  std::string_view payload;
};

// Reads a PUBLISH packet; false when its body is too short for what its header says.
[[nodiscard]] bool parse_publish(const Packet& packet, Publish& publish);

void append_connect(std::string& out, std::string_view client_id, bool clean_session,
                    std::uint16_t keepalive_s);
// One SUBSCRIBE asking for `qos` on each of `topics`.
void append_subscribe(std::string& out, std::uint16_t packet_id,
                      std::initializer_list<std::string_view> topics, std::uint8_t qos);
// `packet_id` is written for QoS 1 only.
void append_publish(std::string& out, std::string_view topic, std::string_view payload,
                    std::uint8_t qos, std::uint16_t packet_id);
void append_puback(std::string& out, std::uint16_t packet_id);
void append_pingreq(std::string& out);
void append_disconnect(std::string& out);

// The packet id in the first two bytes of `body` (PUBACK, SUBACK); false when it is shorter.
[[nodiscard]] bool read_packet_id(std::string_view body, std::uint16_t& packet_id);

}  // namespace mqtt

namespace nats {

inline constexpr std::size_t kMaxLineBytes = 4096;

// The protocol line at the front of `in`, without its "\r\n": kNeedMore, kTooLarge when no line
// end comes within kMaxLineBytes.
[[nodiscard]] Parse next_line(std::string_view in, std::string_view& line);

// "MSG <subject> <sid> [reply-to] <#bytes>": the payload size, false when the line is not one.
[[nodiscard]] bool parse_msg_line(std::string_view line, std::size_t& payload_bytes);

}  // namespace nats

namespace resp {

// Appends a command as Redis takes it: an array of bulk strings, "*2\r\n$4\r\nPING\r\n...".
void append_command(std::string& out, std::initializer_list<std::string_view> args);

}  // namespace resp

}  // namespace herald::bench

template <>
struct boost::system::is_error_code_enum<herald::bench::PeerError> : std::true_type {};
