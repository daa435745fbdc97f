// FrameCodec: turns bytes into frames and frames into bytes, for the server and the client alike.
//
// Decoding never throws, never asserts on input and never allocates: `parse_frame` looks at the
// front of a buffer the caller owns and answers complete, need more, or broken (muduo's kContinue,
// brpc's PARSE_ERROR_NOT_ENOUGH_DATA / TOO_BIG_DATA). The length is checked against the caller's
// maximum before anything is reserved, so a peer claiming a huge frame costs nothing.
//
// Encoding appends to a std::string the caller owns (and may reuse), so one serialised frame can be
// shared by many connections.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <boost/system/result.hpp>

#include "protocol/error_code.h"
#include "protocol/frame_format.h"
#include "protocol/herald_device.pb.h"

namespace herald::protocol {

namespace wire = ::herald::wire::v1;

enum class ParseStatus {
  kComplete,  // `frame` is valid; consume `frame.frame_bytes` bytes
  kNeedMore,  // nothing consumed; read more (`needed_bytes` says how many in total, when known)
  kBroken,    // `error` says why; answer with an Error frame and close
};

struct FrameView {
  FrameType type{};
  std::span<const std::uint8_t> body;  // points into the caller's buffer
  std::size_t frame_bytes = 0;         // header + body
};

struct ParseResult {
  ParseStatus status = ParseStatus::kNeedMore;
  FrameView frame;                   // valid when kComplete
  std::size_t needed_bytes = 0;      // when kNeedMore: total bytes of the frame once its header is
                                     // complete (<= kMaxHeaderBytes + max_body_bytes), else 0
  ErrorCode error = ErrorCode::kOk;  // when kBroken
};

// Looks at the front of `input`. `max_body_bytes` is the largest body accepted in the current
// state (smaller before authentication). Unknown types and over-long lengths are kBroken as soon
// as the header shows them, before the body arrives.
//
// Verdicts, checked in byte order, so a verdict never changes as more bytes arrive (a prefix of a
// broken frame is kNeedMore or already the same kBroken):
//   kUnknownFrameType  the first byte is not a FrameType;
//   kFrameTooLarge     the length exceeds `max_body_bytes`; lengths are minimal, so a length that
//                      continues past k bytes is at least 2^(7k) and is rejected right there;
//   kMalformedFrame    a 4th length byte with the continuation bit, or a non-minimal length
//                      (a last length byte of 0x00 after the first: "80 00");
//   kNeedMore          the header is incomplete (needed_bytes 0) or the body is (needed_bytes =
//                      header + body);
//   kComplete          `frame.body` points into `input`, valid while `input` is.
// The body itself is not looked at: decode_body does that.
[[nodiscard]] ParseResult parse_frame(std::span<const std::uint8_t> input,
                                      std::uint32_t max_body_bytes);

// Parses a frame body into the message for its type. kMalformedFrame when the bytes are not a
// valid encoding of T, including invalid UTF-8 in a string field (libprotobuf then logs an ERROR
// line; a server may install google::protobuf::SetLogHandler to keep peers out of its logs).
// Unknown fields are skipped.
template <class T>
[[nodiscard]] boost::system::result<T> decode_body(std::span<const std::uint8_t> body) {
  T msg;
  // An empty body is every field at its default: a plain Ping or Pong, the most frequent frames,
  // need not go through the parser.
  if (body.empty()) return msg;
  if (!msg.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return make_error_code(ErrorCode::kMalformedFrame);
  }
  return msg;
}

// Appends one frame (header + body) to `out`. Precondition: the body is at most
// kMaxEncodableBodyBytes (and, to be accepted, at most the peer's limit: see frame_bytes_for_body).
// String fields must hold UTF-8, or the peer rejects the frame as malformed.
void append_frame(FrameType type, const google::protobuf::MessageLite& body, std::string& out);
// Appends a frame with an empty body: a plain ping or pong.
void append_empty_frame(FrameType type, std::string& out);
// Hot-path encoders that skip protobuf's generic machinery; byte-identical to append_frame with
// a wire::Notify / wire::Error holding the same values. `message` must be UTF-8.
void append_notify(std::uint64_t stream, std::uint64_t head_seq, std::string& out);
void append_error(ErrorCode code, std::string_view message, std::string& out);

}  // namespace herald::protocol
