#include "peer_codecs.h"

#include <algorithm>
#include <charconv>

namespace herald::bench {

namespace {

class PeerCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "herald.bench.peer"; }
  std::string message(int value) const override {
    switch (static_cast<PeerError>(value)) {
      case PeerError::kBrokenFrame:
        return "the peer sent bytes that break its protocol";
      case PeerError::kFrameTooLarge:
        return "the peer sent a frame above the size limit";
      case PeerError::kConnectRefused:
        return "the peer refused the connection (MQTT CONNACK)";
      case PeerError::kSubscribeRefused:
        return "the peer refused a subscription (MQTT SUBACK)";
      case PeerError::kErrorReply:
        return "the peer answered with an error";
      case PeerError::kTimedOut:
        return "the peer did not confirm the subscriptions in time";
    }
    return "unknown peer error";
  }
};

void append_u16(std::string& out, std::uint16_t value) {
  out.push_back(static_cast<char>(value >> 8));
  out.push_back(static_cast<char>(value & 0xff));
}

// An MQTT UTF-8 string: two bytes of length, then the bytes.
void append_mqtt_string(std::string& out, std::string_view s) {
  append_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

void append_fixed_header(std::string& out, std::uint8_t type, std::uint8_t flags,
                         std::size_t remaining_length) {
  out.push_back(static_cast<char>((type << 4) | flags));
  mqtt::append_remaining_length(out, remaining_length);
}

}  // namespace

const boost::system::error_category& peer_category() {
  static const PeerCategory category;
  return category;
}

boost::system::error_code make_error_code(PeerError error) {
  return {static_cast<int>(error), peer_category()};
}

namespace mqtt {

void append_remaining_length(std::string& out, std::size_t n) {
  do {
    auto byte = static_cast<std::uint8_t>(n & 0x7f);
    n >>= 7;
    if (n > 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (n > 0);
}

Parse next_packet(std::string_view in, std::size_t max_body_bytes, Packet& packet) {
  std::size_t length = 0;
  std::size_t pos = 1;
  for (int shift = 0;; shift += 7, ++pos) {
    if (pos >= in.size()) return Parse::kNeedMore;
    if (shift == 28) return Parse::kBroken;  // a fifth length byte
    const auto byte = static_cast<std::uint8_t>(in[pos]);
    length |= static_cast<std::size_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) break;
  }
  const std::size_t header_bytes = pos + 1;
  if (length > max_body_bytes) return Parse::kTooLarge;
  if (in.size() - header_bytes < length) return Parse::kNeedMore;
  const auto first = static_cast<std::uint8_t>(in[0]);
  packet.type = static_cast<std::uint8_t>(first >> 4);
  packet.flags = static_cast<std::uint8_t>(first & 0x0f);
  packet.body = in.substr(header_bytes, length);
  packet.size = header_bytes + length;
  return Parse::kComplete;
}

bool read_packet_id(std::string_view body, std::uint16_t& packet_id) {
  if (body.size() < 2) return false;
  packet_id = static_cast<std::uint16_t>((static_cast<std::uint8_t>(body[0]) << 8) |
                                         static_cast<std::uint8_t>(body[1]));
  return true;
}

bool parse_publish(const Packet& packet, Publish& publish) {
  std::uint16_t topic_bytes = 0;
  if (!read_packet_id(packet.body, topic_bytes)) return false;
  std::string_view rest = packet.body.substr(2);
  if (rest.size() < topic_bytes) return false;
  publish.topic = rest.substr(0, topic_bytes);
  rest.remove_prefix(topic_bytes);
  publish.qos = static_cast<std::uint8_t>((packet.flags >> 1) & 0x03);
  publish.packet_id = 0;
  if (publish.qos > 0) {
    if (!read_packet_id(rest, publish.packet_id)) return false;
    rest.remove_prefix(2);
  }
  publish.payload = rest;
  return true;
}

void append_connect(std::string& out, std::string_view client_id, bool clean_session,
                    std::uint16_t keepalive_s) {
  constexpr std::string_view kProtocolName = "MQTT";
  constexpr std::uint8_t kProtocolLevel = 4;  // 3.1.1
  constexpr std::uint8_t kCleanSession = 0x02;
  const std::size_t body = 2 + kProtocolName.size() + 1 + 1 + 2 + 2 + client_id.size();
  append_fixed_header(out, kConnect, 0, body);
  append_mqtt_string(out, kProtocolName);
  out.push_back(static_cast<char>(kProtocolLevel));
  out.push_back(static_cast<char>(clean_session ? kCleanSession : 0));
  append_u16(out, keepalive_s);
  append_mqtt_string(out, client_id);
}

void append_subscribe(std::string& out, std::uint16_t packet_id,
                      std::initializer_list<std::string_view> topics, std::uint8_t qos) {
  std::size_t body = 2;
  for (std::string_view topic : topics) body += 2 + topic.size() + 1;
  // SUBSCRIBE's flags are fixed at 0b0010 (section 3.8.1).
  append_fixed_header(out, kSubscribe, 0x02, body);
  append_u16(out, packet_id);
  for (std::string_view topic : topics) {
    append_mqtt_string(out, topic);
    out.push_back(static_cast<char>(qos));
  }
}

void append_publish(std::string& out, std::string_view topic, std::string_view payload,
                    std::uint8_t qos, std::uint16_t packet_id) {
  const std::size_t body = 2 + topic.size() + (qos > 0 ? 2 : 0) + payload.size();
  append_fixed_header(out, kPublish, static_cast<std::uint8_t>(qos << 1), body);
  append_mqtt_string(out, topic);
  if (qos > 0) append_u16(out, packet_id);
  out.append(payload);
}

void append_puback(std::string& out, std::uint16_t packet_id) {
  append_fixed_header(out, kPuback, 0, 2);
  append_u16(out, packet_id);
}

void append_pingreq(std::string& out) { append_fixed_header(out, kPingreq, 0, 0); }

void append_disconnect(std::string& out) { append_fixed_header(out, kDisconnect, 0, 0); }

}  // namespace mqtt

namespace nats {

Parse next_line(std::string_view in, std::string_view& line) {
  const std::size_t end = in.find("\r\n");
  if (end == std::string_view::npos) {
    return in.size() > kMaxLineBytes ? Parse::kTooLarge : Parse::kNeedMore;
  }
  if (end > kMaxLineBytes) return Parse::kTooLarge;
  line = in.substr(0, end);
  return Parse::kComplete;
}

bool parse_msg_line(std::string_view line, std::size_t& payload_bytes) {
  constexpr std::string_view kMsg = "MSG ";
  if (!line.starts_with(kMsg)) return false;
  // <subject> <sid> [reply-to] <#bytes>: the size is the last field either way.
  std::string_view rest = line.substr(kMsg.size());
  std::string_view last;
  int fields = 0;
  while (!rest.empty()) {
    const std::size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const std::size_t end = std::min(rest.find(' '), rest.size());
    last = rest.substr(0, end);
    rest.remove_prefix(end);
    ++fields;
  }
  if (fields != 3 && fields != 4) return false;
  const char* end = last.data() + last.size();
  const auto parsed = std::from_chars(last.data(), end, payload_bytes);
  return parsed.ec == std::errc() && parsed.ptr == end;
}

}  // namespace nats

namespace resp {

void append_command(std::string& out, std::initializer_list<std::string_view> args) {
  out.push_back('*');
  out.append(std::to_string(args.size()));
  out.append("\r\n");
  for (std::string_view arg : args) {
    out.push_back('$');
    out.append(std::to_string(arg.size()));
    out.append("\r\n");
    out.append(arg);
    out.append("\r\n");
  }
}

}  // namespace resp

}  // namespace herald::bench
