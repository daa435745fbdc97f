// libFuzzer target for the frame codec: arbitrary bytes, read as a server reads a connection.
//
// Frames are parsed from the front of the input in a loop, the first with the pre-authentication
// cap (kDefaultMaxHelloBodyBytes), the rest with kDefaultMaxBodyBytes. Each complete frame's body
// is decoded with its type's message whatever the direction (the codec is shared by the client),
// then re-encoded, and the invariants below are checked; a violation aborts, which libFuzzer
// reports as a crash and the corpus replay test as a failure.
//
// Build with -DHERALD_BUILD_FUZZERS=ON and clang; run as
//   build/bin/herald_protocol_fuzz src/protocol/fuzz_corpus/frame_codec
// The checked-in corpus is replayed in every build by herald_protocol_fuzz_replay_test.

#include <google/protobuf/stubs/logging.h>

#include <cstdint>
#include <span>
#include <string>

#include "protocol/frame_codec.h"
#include "protocol/fuzz_check.h"

namespace herald::protocol {
namespace {

std::span<const std::uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Re-encodes `msg` and checks that the result is a single frame that decodes and re-encodes to
// the same bytes: encoding is canonical after one round.
template <class T>
void check_reencodes(FrameType type, const T& msg) {
  std::string frame;
  append_frame(type, msg, frame);
  const ParseResult r = parse_frame(as_bytes(frame), kMaxEncodableBodyBytes);
  HERALD_FUZZ_CHECK(r.status == ParseStatus::kComplete);
  HERALD_FUZZ_CHECK(r.frame.type == type);
  HERALD_FUZZ_CHECK(r.frame.frame_bytes == frame.size());
  HERALD_FUZZ_CHECK(frame_bytes_for_body(r.frame.body.size()) == frame.size());
  const auto again = decode_body<T>(r.frame.body);
  HERALD_FUZZ_CHECK(again.has_value());
  std::string frame2;
  append_frame(type, *again, frame2);
  HERALD_FUZZ_CHECK(frame2 == frame);
}

template <class T>
void decode_and_reencode(FrameType type, std::span<const std::uint8_t> body) {
  const auto msg = decode_body<T>(body);
  if (!msg) {
    HERALD_FUZZ_CHECK(msg.error() == make_error_code(ErrorCode::kMalformedFrame));
    return;
  }
  check_reencodes(type, *msg);
}

void check_body(FrameType type, std::span<const std::uint8_t> body) {
  switch (type) {
    case FrameType::kHello:
      return decode_and_reencode<wire::Hello>(type, body);
    case FrameType::kHelloOk:
      return decode_and_reencode<wire::HelloOk>(type, body);
    case FrameType::kPing:
      return decode_and_reencode<wire::Ping>(type, body);
    case FrameType::kPong:
      return decode_and_reencode<wire::Pong>(type, body);
    case FrameType::kPull:
      return decode_and_reencode<wire::Pull>(type, body);
    case FrameType::kMessages:
      return decode_and_reencode<wire::Messages>(type, body);
    case FrameType::kAck:
      return decode_and_reencode<wire::Ack>(type, body);
    case FrameType::kReconnect:
      return decode_and_reencode<wire::Reconnect>(type, body);
    case FrameType::kUpstream:
      return decode_and_reencode<wire::Upstream>(type, body);
    case FrameType::kUpstreamAck:
      return decode_and_reencode<wire::UpstreamAck>(type, body);
    case FrameType::kSubscribe:
      return decode_and_reencode<wire::Subscribe>(type, body);
    case FrameType::kStreams:
      return decode_and_reencode<wire::Streams>(type, body);
    case FrameType::kNotify: {
      const auto msg = decode_body<wire::Notify>(body);
      if (!msg) return;
      check_reencodes(type, *msg);
      // The hot-path encoder agrees with protobuf on every decodable value.
      wire::Notify plain;
      plain.set_stream(msg->stream());
      plain.set_head_seq(msg->head_seq());
      std::string fast, generic;
      append_notify(msg->stream(), msg->head_seq(), fast);
      append_frame(type, plain, generic);
      HERALD_FUZZ_CHECK(fast == generic);
      return;
    }
    case FrameType::kError: {
      const auto msg = decode_body<wire::Error>(body);
      if (!msg) return;
      check_reencodes(type, *msg);
      wire::Error plain;
      plain.set_code(msg->code());
      plain.set_message(msg->message());
      std::string fast, generic;
      append_error(static_cast<ErrorCode>(msg->code()), msg->message(), fast);
      append_frame(type, plain, generic);
      HERALD_FUZZ_CHECK(fast == generic);
      return;
    }
  }
  HERALD_FUZZ_CHECK(false && "parse_frame returned a type outside the enum");
}

void run(std::span<const std::uint8_t> input) {
  std::uint32_t max_body_bytes = kDefaultMaxHelloBodyBytes;
  while (true) {
    const ParseResult r = parse_frame(input, max_body_bytes);
    switch (r.status) {
      case ParseStatus::kBroken:
        HERALD_FUZZ_CHECK(r.error == ErrorCode::kMalformedFrame ||
                          r.error == ErrorCode::kFrameTooLarge ||
                          r.error == ErrorCode::kUnknownFrameType);
        return;
      case ParseStatus::kNeedMore:
        HERALD_FUZZ_CHECK(r.frame.frame_bytes == 0);
        HERALD_FUZZ_CHECK(r.needed_bytes == 0 || r.needed_bytes > input.size());
        HERALD_FUZZ_CHECK(r.needed_bytes <= kMaxHeaderBytes + max_body_bytes);
        return;
      case ParseStatus::kComplete: {
        HERALD_FUZZ_CHECK(r.frame.frame_bytes <= input.size());
        HERALD_FUZZ_CHECK(r.frame.body.size() <= max_body_bytes);
        HERALD_FUZZ_CHECK(r.frame.body.data() + r.frame.body.size() ==
                          input.data() + r.frame.frame_bytes);
        HERALD_FUZZ_CHECK(frame_bytes_for_body(r.frame.body.size()) == r.frame.frame_bytes);
        // One byte short of the frame is never complete, and never broken.
        const ParseResult shorter =
            parse_frame(input.first(r.frame.frame_bytes - 1), max_body_bytes);
        HERALD_FUZZ_CHECK(shorter.status == ParseStatus::kNeedMore);
        check_body(r.frame.type, r.frame.body);
        input = input.subspan(r.frame.frame_bytes);
        max_body_bytes = kDefaultMaxBodyBytes;
        break;
      }
    }
  }
}

}  // namespace
}  // namespace herald::protocol

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Bodies with invalid UTF-8 in string fields are expected here; keep protobuf from logging
  // each one.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  herald::protocol::run({data, size});
  return 0;
}
