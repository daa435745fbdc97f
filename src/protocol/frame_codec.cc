#include "protocol/frame_codec.h"

#include <cassert>
#include <cstring>

namespace herald::protocol {
namespace {

constexpr std::uint8_t kContinuationBit = 0x80;
constexpr std::uint8_t kPayloadBits = 0x7f;

// Protobuf wire types used by the hot-path encoders.
constexpr std::uint8_t kWireVarint = 0;
constexpr std::uint8_t kWireLengthDelimited = 2;

constexpr std::uint8_t tag(int field_number, std::uint8_t wire_type) {
  return static_cast<std::uint8_t>((field_number << 3) | wire_type);
}

// The schema's field numbers are all below 16, so every tag is one byte.
constexpr std::uint8_t kNotifyStreamTag = tag(wire::Notify::kStreamFieldNumber, kWireVarint);
constexpr std::uint8_t kNotifyHeadSeqTag = tag(wire::Notify::kHeadSeqFieldNumber, kWireVarint);
constexpr std::uint8_t kErrorCodeTag = tag(wire::Error::kCodeFieldNumber, kWireVarint);
constexpr std::uint8_t kErrorMessageTag =
    tag(wire::Error::kMessageFieldNumber, kWireLengthDelimited);

// Largest Notify body: two one-byte tags and two ten-byte varints.
constexpr std::size_t kMaxNotifyBodyBytes = 2 * (1 + 10);
static_assert(kMaxNotifyBodyBytes < 128, "a Notify length always fits one byte");

std::uint8_t* put_varint(std::uint64_t v, std::uint8_t* p) {
  while (v >= kContinuationBit) {
    *p++ = static_cast<std::uint8_t>(v | kContinuationBit);
    v >>= 7;
  }
  *p++ = static_cast<std::uint8_t>(v);
  return p;
}

ParseResult broken(ErrorCode error) {
  ParseResult r;
  r.status = ParseStatus::kBroken;
  r.error = error;
  return r;
}

ParseResult need_more(std::size_t needed_bytes) {
  ParseResult r;
  r.status = ParseStatus::kNeedMore;
  r.needed_bytes = needed_bytes;
  return r;
}

// Appends the frame header for a body of `body_bytes` and returns where the body goes, with room
// for it already reserved in `out`.
std::uint8_t* append_header(FrameType type, std::size_t body_bytes, std::string& out) {
  assert(body_bytes <= kMaxEncodableBodyBytes);
  const std::size_t at = out.size();
  out.resize(at + frame_bytes_for_body(body_bytes));
  auto* p = reinterpret_cast<std::uint8_t*>(out.data() + at);
  *p++ = static_cast<std::uint8_t>(type);
  return put_varint(body_bytes, p);
}

}  // namespace

ParseResult parse_frame(std::span<const std::uint8_t> input, std::uint32_t max_body_bytes) {
  if (input.empty()) return need_more(0);
  const std::uint8_t type = input[0];
  if (type < kMinFrameType || type > kMaxFrameType) return broken(ErrorCode::kUnknownFrameType);

  // Each check below fires at the first byte that proves the frame bad, so a verdict never changes
  // as more bytes arrive: a prefix is either kNeedMore or already the final kBroken.
  std::uint32_t body_bytes = 0;
  for (std::size_t i = 0; i < kMaxLengthBytes; ++i) {
    if (1 + i >= input.size()) return need_more(0);
    const std::uint8_t b = input[1 + i];
    body_bytes |= static_cast<std::uint32_t>(b & kPayloadBits) << (7 * i);
    if ((b & kContinuationBit) != 0) {
      if (i + 1 == kMaxLengthBytes) return broken(ErrorCode::kMalformedFrame);
      // Lengths are minimal, so a length that continues is at least its bits so far plus one in
      // the next group.
      const std::uint64_t at_least =
          std::uint64_t{body_bytes} + (std::uint64_t{1} << (7 * (i + 1)));
      if (at_least > max_body_bytes) return broken(ErrorCode::kFrameTooLarge);
      continue;
    }
    // A last group of zero after the first (0x80 0x00) is a non-minimal encoding.
    if (i > 0 && b == 0) return broken(ErrorCode::kMalformedFrame);
    if (body_bytes > max_body_bytes) return broken(ErrorCode::kFrameTooLarge);
    const std::size_t header_bytes = 2 + i;
    const std::size_t total_bytes = header_bytes + body_bytes;
    if (input.size() < total_bytes) return need_more(total_bytes);
    ParseResult r;
    r.status = ParseStatus::kComplete;
    r.frame.type = static_cast<FrameType>(type);
    r.frame.body = input.subspan(header_bytes, body_bytes);
    r.frame.frame_bytes = total_bytes;
    return r;
  }
  // Unreachable: the last length byte either ends the length or is rejected above.
  return broken(ErrorCode::kMalformedFrame);
}

void append_frame(FrameType type, const google::protobuf::MessageLite& body, std::string& out) {
  const std::size_t body_bytes = body.ByteSizeLong();
  std::uint8_t* p = append_header(type, body_bytes, out);
  body.SerializeWithCachedSizesToArray(p);
}

void append_empty_frame(FrameType type, std::string& out) {
  const char frame[2] = {static_cast<char>(type), 0};
  out.append(frame, sizeof frame);
}

void append_notify(std::uint64_t stream, std::uint64_t head_seq, std::string& out) {
  // Protobuf omits zero-valued proto3 scalars; so must we, to stay byte-identical.
  std::uint8_t frame[2 + kMaxNotifyBodyBytes];
  std::uint8_t* p = frame + 2;
  if (stream != 0) {
    *p++ = kNotifyStreamTag;
    p = put_varint(stream, p);
  }
  if (head_seq != 0) {
    *p++ = kNotifyHeadSeqTag;
    p = put_varint(head_seq, p);
  }
  const auto frame_bytes = static_cast<std::size_t>(p - frame);
  frame[0] = static_cast<std::uint8_t>(FrameType::kNotify);
  frame[1] = static_cast<std::uint8_t>(frame_bytes - 2);
  out.append(reinterpret_cast<const char*>(frame), frame_bytes);
}

void append_error(ErrorCode code, std::string_view message, std::string& out) {
  const auto code_value = static_cast<std::uint32_t>(code);
  std::size_t body_bytes = 0;
  if (code_value != 0) body_bytes += 1 + varint_bytes(code_value);
  if (!message.empty()) body_bytes += 1 + varint_bytes(message.size()) + message.size();
  std::uint8_t* p = append_header(FrameType::kError, body_bytes, out);
  if (code_value != 0) {
    *p++ = kErrorCodeTag;
    p = put_varint(code_value, p);
  }
  if (!message.empty()) {
    *p++ = kErrorMessageTag;
    p = put_varint(message.size(), p);
    std::memcpy(p, message.data(), message.size());
  }
}

}  // namespace herald::protocol
