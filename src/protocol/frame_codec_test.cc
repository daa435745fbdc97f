#include "protocol/frame_codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace herald::protocol {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes from_hex(std::string_view hex) {
  Bytes out;
  int nibbles = 0;
  std::uint8_t byte = 0;
  for (const char c : hex) {
    if (c == ' ') continue;
    const int v = (c >= '0' && c <= '9') ? c - '0' : c - 'a' + 10;
    byte = static_cast<std::uint8_t>((byte << 4) | v);
    if (++nibbles % 2 == 0) out.push_back(byte);
  }
  return out;
}

Bytes to_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

std::span<const std::uint8_t> first(const Bytes& b, std::size_t n) {
  return std::span<const std::uint8_t>(b).first(n);
}

std::string encode(FrameType type, const google::protobuf::MessageLite& msg) {
  std::string out;
  append_frame(type, msg, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Golden vectors: the exact bytes of one representative frame of each type. These are the
// vectors of docs/protocol.md; a change here is a wire-protocol change.

struct GoldenVector {
  std::string name;
  FrameType type;
  std::function<std::unique_ptr<google::protobuf::MessageLite>()> make;
  std::string hex;
};

template <class T>
std::function<std::unique_ptr<google::protobuf::MessageLite>()> message(
    std::function<void(T&)> fill) {
  return [fill] {
    auto msg = std::make_unique<T>();
    fill(*msg);
    return msg;
  };
}

std::vector<GoldenVector> golden_vectors() {
  return {
      {"Hello", FrameType::kHello, message<wire::Hello>([](wire::Hello& m) {
         m.set_protocol_version(1);
         m.set_device_id("d1");
         m.set_token("t");
         m.set_heartbeat_s(300);
         m.set_client("c");
       }),
       "01 0f 08 01 12 02 64 31 1a 01 74 20 ac 02 2a 01 63"},
      {"HelloWithHeartbeatReport", FrameType::kHello, message<wire::Hello>([](wire::Hello& m) {
         m.set_protocol_version(1);
         m.set_device_id("d1");
         m.set_token("t");
         m.set_heartbeat_s(240);
         m.set_network("c:1");
         m.set_settled_heartbeat_s(240);
       }),
       "01 14 08 01 12 02 64 31 1a 01 74 20 f0 01 32 03 63 3a 31 38 f0 01"},
      {"HelloOk", FrameType::kHelloOk, message<wire::HelloOk>([](wire::HelloOk& m) {
         m.set_server_time_ms(1'700'000'000'000);
         m.set_heartbeat_s(300);
         m.set_heartbeat_min_s(60);
         m.set_heartbeat_max_s(1800);
         m.set_max_frame_bytes(65536);
       }),
       "02 13 08 80 d0 95 ff bc 31 10 ac 02 18 3c 20 88 0e 28 80 80 04"},
      {"PlainPing", FrameType::kPing, message<wire::Ping>([](wire::Ping&) {}), "03 00"},
      {"PingWithNewInterval", FrameType::kPing,
       message<wire::Ping>([](wire::Ping& m) { m.set_heartbeat_s(270); }), "03 03 08 8e 02"},
      {"PlainPong", FrameType::kPong, message<wire::Pong>([](wire::Pong&) {}), "04 00"},
      {"PongAskingResync", FrameType::kPong,
       message<wire::Pong>([](wire::Pong& m) { m.set_resync(true); }), "04 02 08 01"},
      {"NotifyForInbox", FrameType::kNotify, message<wire::Notify>([](wire::Notify& m) {
         m.set_stream(kInboxStream);
         m.set_head_seq(42);
       }),
       "05 02 10 2a"},
      {"NotifyForTopic", FrameType::kNotify, message<wire::Notify>([](wire::Notify& m) {
         m.set_stream(7);
         m.set_head_seq(300);
       }),
       "05 05 08 07 10 ac 02"},
      {"Pull", FrameType::kPull, message<wire::Pull>([](wire::Pull& m) {
         m.set_stream(7);
         m.set_epoch(1);
         m.set_after_seq(41);
         m.set_limit(100);
       }),
       "06 08 08 07 10 01 18 29 20 64"},
      {"Messages", FrameType::kMessages, message<wire::Messages>([](wire::Messages& m) {
         m.set_stream(kInboxStream);
         m.set_epoch(1);
         m.set_head_seq(42);
         wire::Entry* e = m.add_entries();
         e->set_seq(42);
         e->set_app("a");
         e->set_message_id("m");
         e->set_data("{}");
         e->set_kind(wire::DATA_KIND_JSON);
         e->set_sent_at_ms(1);
         e->set_expires_at_ms(2);
       }),
       "07 16 10 01 18 2a 22 10 08 2a 12 01 61 1a 01 6d 22 02 7b 7d 30 01 38 02"},
      {"MessagesAfterResync", FrameType::kMessages, message<wire::Messages>([](wire::Messages& m) {
         m.set_stream(7);
         m.set_epoch(2);
         m.set_head_seq(9);
         m.set_epoch_changed(true);
         m.set_truncated_before(5);
         m.set_more(true);
         wire::Entry* e = m.add_entries();
         e->set_seq(5);
         e->set_app("b");
         e->set_data(std::string("\x00\xff", 2));
         e->set_kind(wire::DATA_KIND_BINARY);
       }),
       "07 19 08 07 10 02 18 09 22 0b 08 05 12 01 62 22 02 00 ff 28 01 28 01 30 05 38 01"},
      {"Ack", FrameType::kAck, message<wire::Ack>([](wire::Ack& m) {
         m.set_stream(kInboxStream);
         m.set_epoch(1);
         m.set_seq(42);
       }),
       "08 04 10 01 18 2a"},
      {"Reconnect", FrameType::kReconnect, message<wire::Reconnect>([](wire::Reconnect& m) {
         m.set_reason(wire::RECONNECT_REASON_DRAIN);
         m.set_endpoint("10.0.0.2:7000");
         m.set_delay_ms(500);
       }),
       "09 14 08 02 12 0d 31 30 2e 30 2e 30 2e 32 3a 37 30 30 30 18 f4 03"},
      {"Error", FrameType::kError, message<wire::Error>([](wire::Error& m) {
         m.set_code(static_cast<std::uint32_t>(ErrorCode::kHeartbeatTimeout));
         m.set_message("heartbeat timeout");
       }),
       "0a 15 08 14 12 11 68 65 61 72 74 62 65 61 74 20 74 69 6d 65 6f 75 74"},
      {"MessagesWithATombstone", FrameType::kMessages,
       message<wire::Messages>([](wire::Messages& m) {
         m.set_stream(kInboxStream);
         m.set_epoch(1);
         m.set_head_seq(3);
         wire::Entry* e = m.add_entries();
         e->set_seq(3);
         e->set_app("a");
         e->set_kind(wire::DATA_KIND_TOMBSTONE);
       }),
       "07 0d 10 01 18 03 22 07 08 03 12 01 61 28 02"},
      {"MessagesWithARecall", FrameType::kMessages, message<wire::Messages>([](wire::Messages& m) {
         m.set_stream(kInboxStream);
         m.set_epoch(1);
         m.set_head_seq(4);
         wire::Entry* e = m.add_entries();
         e->set_seq(4);
         e->set_app("a");
         e->set_message_id("r");
         e->set_data("m");  // the id of the message recalled
         e->set_kind(wire::DATA_KIND_RECALL);
         e->set_sent_at_ms(1);
       }),
       "07 15 10 01 18 04 22 0f 08 04 12 01 61 1a 01 72 22 01 6d 28 03 30 01"},
      {"Upstream", FrameType::kUpstream, message<wire::Upstream>([](wire::Upstream& m) {
         m.set_id(7);
         m.set_app("a");
         m.set_data("{}");
         m.set_kind(wire::DATA_KIND_JSON);
       }),
       "0b 09 08 07 12 01 61 1a 02 7b 7d"},
      {"UpstreamBinaryWithA64BitId", FrameType::kUpstream,
       message<wire::Upstream>([](wire::Upstream& m) {
         m.set_id(0x8000'0000'0000'0001);
         m.set_app("b");
         m.set_data(std::string("\x00\xff", 2));
         m.set_kind(wire::DATA_KIND_BINARY);
       }),
       "0b 14 08 81 80 80 80 80 80 80 80 80 01 12 01 62 1a 02 00 ff 20 01"},
      {"UpstreamAckStored", FrameType::kUpstreamAck,
       message<wire::UpstreamAck>([](wire::UpstreamAck& m) { m.set_id(7); }), "0c 02 08 07"},
      {"UpstreamAckBusy", FrameType::kUpstreamAck,
       message<wire::UpstreamAck>([](wire::UpstreamAck& m) {
         m.set_id(7);
         m.set_error_code(static_cast<std::uint32_t>(ErrorCode::kServerBusy));
       }),
       "0c 04 08 07 10 20"},
      {"Subscribe", FrameType::kSubscribe, message<wire::Subscribe>([](wire::Subscribe& m) {
         m.set_id(1);
         m.set_app("a");
         m.add_topics("news");
         m.set_history(5);
       }),
       "0d 0d 08 01 12 01 61 1a 04 6e 65 77 73 28 05"},
      {"Unsubscribe", FrameType::kSubscribe, message<wire::Subscribe>([](wire::Subscribe& m) {
         m.set_id(2);
         m.set_app("a");
         m.add_topics("news");
         m.set_unsubscribe(true);
       }),
       "0d 0d 08 02 12 01 61 1a 04 6e 65 77 73 20 01"},
      {"Streams", FrameType::kStreams, message<wire::Streams>([](wire::Streams& m) {
         m.set_request_id(1);
         wire::StreamInfo* s = m.add_streams();
         s->set_stream(3);
         s->set_app("a");
         s->set_topic("news");
         s->set_epoch(1);
         s->set_head_seq(9);
         s->set_start_seq(9);
       }),
       "0e 15 08 01 1a 11 08 03 12 01 61 1a 04 6e 65 77 73 20 01 28 09 30 09"},
      {"StreamsRefusal", FrameType::kStreams, message<wire::Streams>([](wire::Streams& m) {
         m.set_request_id(2);
         m.set_error_code(static_cast<std::uint32_t>(ErrorCode::kUnknownApp));
       }),
       "0e 04 08 02 10 22"},
  };
}

void PrintTo(const GoldenVector& v, std::ostream* os) { *os << v.name << ": " << v.hex; }

class GoldenVectors : public testing::TestWithParam<GoldenVector> {};

INSTANTIATE_TEST_SUITE_P(FrameCodec, GoldenVectors, testing::ValuesIn(golden_vectors()),
                         [](const testing::TestParamInfo<GoldenVector>& vector) {
                           return vector.param.name;
                         });

TEST_P(GoldenVectors, EncodeToThePinnedBytes) {
  const GoldenVector& v = GetParam();
  EXPECT_EQ(to_bytes(encode(v.type, *v.make())), from_hex(v.hex));
}

TEST_P(GoldenVectors, DecodeFromThePinnedBytesToTheSameMessage) {
  const GoldenVector& v = GetParam();
  const Bytes bytes = from_hex(v.hex);
  const ParseResult r = parse_frame(bytes, kDefaultMaxBodyBytes);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.frame.type, v.type);
  EXPECT_EQ(r.frame.frame_bytes, bytes.size());
  const auto expected = v.make();
  const std::unique_ptr<google::protobuf::MessageLite> decoded(expected->New());
  ASSERT_TRUE(decoded->ParseFromArray(r.frame.body.data(), static_cast<int>(r.frame.body.size())));
  EXPECT_EQ(decoded->SerializeAsString(), expected->SerializeAsString());
}

TEST_P(GoldenVectors, EveryStrictPrefixNeedsMoreAndConsumesNothing) {
  const Bytes bytes = from_hex(GetParam().hex);
  const std::size_t header_bytes =
      bytes.size() - parse_frame(bytes, kDefaultMaxBodyBytes).frame.body.size();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const ParseResult r = parse_frame(first(bytes, n), kDefaultMaxBodyBytes);
    ASSERT_EQ(r.status, ParseStatus::kNeedMore) << "prefix of " << n << " bytes";
    EXPECT_EQ(r.frame.frame_bytes, 0u) << "prefix of " << n << " bytes";
    EXPECT_EQ(r.needed_bytes, n < header_bytes ? 0 : bytes.size()) << "prefix of " << n << " bytes";
  }
}

// ---------------------------------------------------------------------------------------------
// Framing.

TEST(FrameCodec, ParsesAnEmptyBufferAsNeedMore) {
  const ParseResult r = parse_frame({}, kDefaultMaxBodyBytes);
  EXPECT_EQ(r.status, ParseStatus::kNeedMore);
  EXPECT_EQ(r.needed_bytes, 0u);
}

TEST(FrameCodec, ReportsZeroNeededBytesWhileTheLengthIsIncomplete) {
  const Bytes header = from_hex("07 80");  // the length continues
  const ParseResult r = parse_frame(header, kDefaultMaxBodyBytes);
  EXPECT_EQ(r.status, ParseStatus::kNeedMore);
  EXPECT_EQ(r.needed_bytes, 0u);
}

TEST(FrameCodec, ReportsTheWholeFrameSizeOnceTheHeaderIsComplete) {
  const Bytes header = from_hex("07 c8 01");  // a 200-byte body
  const ParseResult r = parse_frame(header, kDefaultMaxBodyBytes);
  EXPECT_EQ(r.status, ParseStatus::kNeedMore);
  EXPECT_EQ(r.needed_bytes, 3u + 200u);
}

TEST(FrameCodec, ParsesOnlyTheFirstOfTwoFrames) {
  const Bytes bytes = from_hex("05 02 10 2a 03 00");
  const ParseResult r = parse_frame(bytes, kDefaultMaxBodyBytes);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.frame.type, FrameType::kNotify);
  EXPECT_EQ(r.frame.frame_bytes, 4u);
  EXPECT_EQ(Bytes(r.frame.body.begin(), r.frame.body.end()), from_hex("10 2a"));
}

TEST(FrameCodec, PointsTheBodyIntoTheCallersBuffer) {
  const Bytes bytes = from_hex("05 02 10 2a");
  const ParseResult r = parse_frame(bytes, kDefaultMaxBodyBytes);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.frame.body.data(), bytes.data() + 2);
}

TEST(FrameCodec, AcceptsEveryDefinedTypeByte) {
  for (int t = kMinFrameType; t <= kMaxFrameType; ++t) {
    const Bytes bytes{static_cast<std::uint8_t>(t), 0x00};
    EXPECT_EQ(parse_frame(bytes, kDefaultMaxBodyBytes).status, ParseStatus::kComplete) << t;
  }
}

TEST(FrameCodec, RejectsUnknownTypesOnTheFirstByte) {
  for (const int t : {0x00, 0x0F, 0xFF}) {
    const Bytes bytes{static_cast<std::uint8_t>(t)};  // the type byte alone
    const ParseResult r = parse_frame(bytes, kDefaultMaxBodyBytes);
    EXPECT_EQ(r.status, ParseStatus::kBroken) << t;
    EXPECT_EQ(r.error, ErrorCode::kUnknownFrameType) << t;
  }
}

TEST(FrameCodec, RejectsEveryTypeByteOutsideTheDefinedRange) {
  for (int t = 0; t <= 0xFF; ++t) {
    if (t >= kMinFrameType && t <= kMaxFrameType) continue;
    const Bytes bytes{static_cast<std::uint8_t>(t), 0x00};
    EXPECT_EQ(parse_frame(bytes, kDefaultMaxBodyBytes).error, ErrorCode::kUnknownFrameType) << t;
  }
}

TEST(FrameCodec, AcceptsALengthEqualToTheMax) {
  const Bytes header = from_hex("01 80 04");  // 512
  const ParseResult r = parse_frame(header, kDefaultMaxHelloBodyBytes);
  EXPECT_EQ(r.status, ParseStatus::kNeedMore);
  EXPECT_EQ(r.needed_bytes, 3u + 512u);
}

TEST(FrameCodec, RejectsLengthAboveMax) {
  const Bytes header = from_hex("01 81 04");  // 513, before any body byte
  const ParseResult r = parse_frame(header, kDefaultMaxHelloBodyBytes);
  EXPECT_EQ(r.status, ParseStatus::kBroken);
  EXPECT_EQ(r.error, ErrorCode::kFrameTooLarge);
}

TEST(FrameCodec, RejectsLengthAboveTheDefaultMaxAfterAuthentication) {
  const Bytes header = from_hex("07 81 80 04");  // 65537
  EXPECT_EQ(parse_frame(header, kDefaultMaxBodyBytes).error, ErrorCode::kFrameTooLarge);
}

TEST(FrameCodec, RejectsATooLargeLengthBeforeTheLengthIsComplete) {
  // Whatever follows, a minimal length continuing past two groups is at least 2^14 > 512.
  const Bytes header = from_hex("01 80 80");
  const ParseResult r = parse_frame(header, kDefaultMaxHelloBodyBytes);
  EXPECT_EQ(r.status, ParseStatus::kBroken);
  EXPECT_EQ(r.error, ErrorCode::kFrameTooLarge);
}

TEST(FrameCodec, RejectsAnyBodyWhenTheMaxIsZero) {
  const Bytes bytes = from_hex("03 01 08");
  EXPECT_EQ(parse_frame(bytes, 0).error, ErrorCode::kFrameTooLarge);
}

TEST(FrameCodec, AcceptsAFourByteLength) {
  const Bytes header = from_hex("07 ff ff ff 7f");  // 2^28 - 1
  const ParseResult r = parse_frame(header, kMaxEncodableBodyBytes);
  EXPECT_EQ(r.status, ParseStatus::kNeedMore);
  EXPECT_EQ(r.needed_bytes, kMaxHeaderBytes + kMaxEncodableBodyBytes);
}

TEST(FrameCodec, RejectsAFourthLengthByteWithTheContinuationBit) {
  const Bytes header = from_hex("07 ff ff ff ff");
  const ParseResult r = parse_frame(header, std::numeric_limits<std::uint32_t>::max());
  EXPECT_EQ(r.status, ParseStatus::kBroken);
  EXPECT_EQ(r.error, ErrorCode::kMalformedFrame);
}

TEST(FrameCodec, RejectsANonMinimalLength) {
  const Bytes bytes = from_hex("03 80 00");  // 0 written in two bytes
  const ParseResult r = parse_frame(bytes, kMaxEncodableBodyBytes);
  EXPECT_EQ(r.status, ParseStatus::kBroken);
  EXPECT_EQ(r.error, ErrorCode::kMalformedFrame);
}

TEST(FrameCodec, RejectsANonMinimalFourByteLength) {
  const Bytes bytes = from_hex("07 81 80 80 00");
  EXPECT_EQ(parse_frame(bytes, kMaxEncodableBodyBytes).error, ErrorCode::kMalformedFrame);
}

TEST(FrameCodec, KeepsABrokenVerdictAsMoreBytesArrive) {
  const Bytes bytes = from_hex("01 81 04 00 00 00");
  for (std::size_t n = 3; n <= bytes.size(); ++n) {
    EXPECT_EQ(parse_frame(first(bytes, n), kDefaultMaxHelloBodyBytes).error,
              ErrorCode::kFrameTooLarge)
        << n;
  }
}

// ---------------------------------------------------------------------------------------------
// Bodies.

TEST(FrameCodec, DecodeBodyRejectsATruncatedVarint) {
  const Bytes body = from_hex("08 ff");
  const auto r = decode_body<wire::Notify>(body);
  ASSERT_TRUE(r.has_error());
  EXPECT_EQ(r.error(), make_error_code(ErrorCode::kMalformedFrame));
}

TEST(FrameCodec, DecodeBodyRejectsAStringLongerThanTheBody) {
  const Bytes body = from_hex("12 05 64 31");  // device_id claims 5 bytes, 2 follow
  EXPECT_TRUE(decode_body<wire::Hello>(body).has_error());
}

TEST(FrameCodec, DecodeBodyRejectsInvalidUtf8InAStringField) {
  const Bytes body = from_hex("12 02 ff fe");  // device_id
  EXPECT_TRUE(decode_body<wire::Hello>(body).has_error());
}

TEST(FrameCodec, DecodeBodyAcceptsAnEmptyBodyAsAllDefaults) {
  const auto r = decode_body<wire::Ping>({});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->heartbeat_s(), 0u);
}

TEST(FrameCodec, DecodeBodySkipsFieldsThisVersionDoesNotKnow) {
  const Bytes body = from_hex("10 2a 78 05");  // head_seq 42, then field 15 = 5
  const auto r = decode_body<wire::Notify>(body);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->head_seq(), 42u);
}

// ---------------------------------------------------------------------------------------------
// Encoders.

std::vector<std::uint64_t> interesting_u64() {
  std::vector<std::uint64_t> values{0, std::numeric_limits<std::uint64_t>::max()};
  for (int bits = 1; bits < 64; ++bits) {
    const std::uint64_t p = std::uint64_t{1} << bits;
    values.insert(values.end(), {p - 1, p, p + 1});
  }
  return values;
}

TEST(FrameCodec, AppendNotifyMatchesTheGenericEncoder) {
  const std::vector<std::uint64_t> values = interesting_u64();
  for (const std::uint64_t stream : values) {
    for (const std::uint64_t seq : values) {
      wire::Notify n;
      n.set_stream(stream);
      n.set_head_seq(seq);
      std::string fast;
      append_notify(stream, seq, fast);
      ASSERT_EQ(fast, encode(FrameType::kNotify, n)) << stream << " " << seq;
    }
  }
}

TEST(FrameCodec, AppendErrorMatchesTheGenericEncoder) {
  std::vector<std::uint32_t> codes;
  for (std::uint32_t c = 0; c <= 40; ++c) codes.push_back(c);
  codes.insert(codes.end(), {127, 128, 16384, std::numeric_limits<std::uint32_t>::max()});
  const std::vector<std::string> texts{"",
                                       "x",
                                       std::string(127, 'a'),
                                       std::string(128, 'b'),
                                       std::string(300, 'c'),
                                       std::string(20000, 'd')};
  for (const std::uint32_t code : codes) {
    for (const std::string& text : texts) {
      wire::Error e;
      e.set_code(code);
      e.set_message(text);
      std::string fast;
      append_error(static_cast<ErrorCode>(code), text, fast);
      ASSERT_EQ(fast, encode(FrameType::kError, e)) << code << " " << text.size();
    }
  }
}

TEST(FrameCodec, AppendEmptyFrameMatchesTheGenericEncoder) {
  std::string fast;
  append_empty_frame(FrameType::kPong, fast);
  EXPECT_EQ(fast, encode(FrameType::kPong, wire::Pong{}));
}

TEST(FrameCodec, EncodersAppendAfterWhatTheBufferHolds) {
  std::string out = "xy";
  append_notify(0, 1, out);
  append_error(ErrorCode::kServerBusy, "", out);
  append_empty_frame(FrameType::kPing, out);
  append_frame(FrameType::kAck, wire::Ack{}, out);
  Bytes expected{'x', 'y'};
  const Bytes frames = from_hex("05 02 10 01  0a 02 08 20  03 00  08 00");
  expected.insert(expected.end(), frames.begin(), frames.end());
  EXPECT_EQ(to_bytes(out), expected);
}

TEST(FrameCodec, FrameBytesForBodyMatchesTheEncoder) {
  for (const std::size_t body_bytes : {0u, 1u, 127u, 128u, 16383u, 16384u, 70000u}) {
    wire::Error e;
    e.set_message(std::string(body_bytes, 'z'));
    const std::string frame = encode(FrameType::kError, e);
    EXPECT_EQ(frame_bytes_for_body(e.ByteSizeLong()), frame.size()) << body_bytes;
  }
}

TEST(FrameCodec, RoundTripsALargeMessagesFrameWithAThreeByteLength) {
  wire::Messages m;
  m.set_stream(3);
  m.set_epoch(4);
  for (std::uint64_t seq = 1; seq <= 100; ++seq) {
    wire::Entry* e = m.add_entries();
    e->set_seq(seq);
    e->set_app("com.example.chat");
    e->set_data(std::string(200, static_cast<char>(seq)));
    e->set_kind(wire::DATA_KIND_BINARY);
  }
  m.set_head_seq(100);
  const Bytes bytes = to_bytes(encode(FrameType::kMessages, m));
  ASSERT_GT(bytes.size(), 16384u + 4u);
  const ParseResult r = parse_frame(bytes, kDefaultMaxBodyBytes);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.frame.frame_bytes - r.frame.body.size(), 4u);  // type + three length bytes
  const auto decoded = decode_body<wire::Messages>(r.frame.body);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->SerializeAsString(), m.SerializeAsString());
}

// ---------------------------------------------------------------------------------------------
// Size promises (docs/protocol.md, "Sizes").

TEST(FrameCodec, PlainPingIsAtMostTwoBytes) {
  std::string out;
  append_frame(FrameType::kPing, wire::Ping{}, out);
  EXPECT_LE(out.size(), 2u);
}

TEST(FrameCodec, InboxNotifyIsAtMostTwelveBytesForSeqBelow2To63) {
  for (const std::uint64_t seq : interesting_u64()) {
    if (seq >= (std::uint64_t{1} << 63)) continue;
    std::string out;
    append_notify(kInboxStream, seq, out);
    EXPECT_LE(out.size(), 12u) << seq;
  }
}

// A uint64 at or above 2^63 is a ten-byte varint: the one seq range where the inbox promise
// cannot hold. Pinned so that the documented bound stays honest.
TEST(FrameCodec, InboxNotifyAtTheLargestSeqIsThirteenBytes) {
  std::string out;
  append_notify(kInboxStream, std::numeric_limits<std::uint64_t>::max(), out);
  EXPECT_EQ(out.size(), 13u);
}

// Upstream ids are random 64-bit numbers, so most take the ten-byte varint.
TEST(FrameCodec, UpstreamAckIsAtMostFifteenBytes) {
  for (const std::uint64_t id : interesting_u64()) {
    for (const ErrorCode code : {ErrorCode::kOk, ErrorCode::kServerBusy, ErrorCode::kUnknownApp}) {
      wire::UpstreamAck ack;
      ack.set_id(id);
      ack.set_error_code(static_cast<std::uint32_t>(code));
      EXPECT_LE(encode(FrameType::kUpstreamAck, ack).size(), 15u) << id;
    }
  }
}

TEST(FrameCodec, UpstreamCostsAtMostTwentyFourBytesAboveItsAppAndData) {
  for (const std::size_t data_bytes : {0u, 100u, 20000u, 70000u}) {
    wire::Upstream up;
    up.set_id(std::numeric_limits<std::uint64_t>::max());
    up.set_app(std::string(64, 'a'));  // the longest app id
    up.set_data(std::string(data_bytes, 'x'));
    up.set_kind(wire::DATA_KIND_BINARY);
    EXPECT_LE(encode(FrameType::kUpstream, up).size(), 24u + 64u + data_bytes) << data_bytes;
  }
}

TEST(FrameCodec, NotifyIsAtMostTwelveBytesForStreamBelow16384AndSeqBelow2To42) {
  const std::uint64_t max_seq = (std::uint64_t{1} << 42) - 1;
  for (const std::uint64_t stream : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{16383}}) {
    for (const std::uint64_t seq : {std::uint64_t{0}, std::uint64_t{1}, max_seq}) {
      std::string out;
      append_notify(stream, seq, out);
      EXPECT_LE(out.size(), 12u) << stream << " " << seq;
    }
  }
}

}  // namespace
}  // namespace herald::protocol
