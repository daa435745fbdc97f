#include "distribution/redis/cluster_message.h"

#include <string>

#include <gtest/gtest.h>

namespace herald::distribution {
namespace {

std::shared_ptr<const StreamFilter> has_not(std::uint64_t a, std::uint64_t b) {
  using Op = StreamFilter::Op;
  return std::make_shared<const StreamFilter>(
      std::vector<StreamFilter::Step>{{Op::kHas, a}, {Op::kHas, b}, {Op::kNot, 0}, {Op::kAnd, 0}});
}

TEST(ClusterMessage, RecordsOfEveryKindRoundTrip) {
  ClusterMessageWriter writer("node-a");
  ASSERT_TRUE(writer.add_notify("dev-1", 0, 42, NotifyPriority::kNormal));
  ASSERT_TRUE(writer.add_streams_changed("dev-2"));
  StreamNotify shared;
  shared.stream = 7;
  shared.head_seq = 9;
  shared.priority = NotifyPriority::kHigh;
  shared.spread_ms = 1500;
  shared.filter = has_not(7, 8);
  ASSERT_TRUE(writer.add_stream_notify(shared));
  shared.filter = nullptr;
  ASSERT_TRUE(writer.add_stream_notify(shared));
  EXPECT_EQ(writer.records(), 4u);

  const auto decoded = decode_cluster_message(writer.take());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->sender, "node-a");
  ASSERT_EQ(decoded->records.size(), 4u);
  const auto& n = decoded->records[0];
  EXPECT_EQ(n.kind, ClusterRecordKind::kNotify);
  EXPECT_EQ(n.device, "dev-1");
  EXPECT_EQ(n.stream, 0u);
  EXPECT_EQ(n.head_seq, 42u);
  EXPECT_EQ(n.priority, NotifyPriority::kNormal);
  EXPECT_EQ(decoded->records[1].kind, ClusterRecordKind::kStreamsChanged);
  EXPECT_EQ(decoded->records[1].device, "dev-2");
  const auto& s = decoded->records[2];
  EXPECT_EQ(s.kind, ClusterRecordKind::kStreamNotify);
  EXPECT_EQ(s.stream, 7u);
  EXPECT_EQ(s.head_seq, 9u);
  EXPECT_EQ(s.spread_ms, 1500u);
  ASSERT_TRUE(s.filter);
  EXPECT_EQ(*s.filter, *has_not(7, 8));
  EXPECT_FALSE(decoded->records[3].filter);
}

TEST(ClusterMessage, TakeLeavesAnEmptyWriterWithTheSameSender) {
  ClusterMessageWriter writer("n");
  ASSERT_TRUE(writer.add_streams_changed("d"));
  (void)writer.take();
  EXPECT_EQ(writer.records(), 0u);
  ASSERT_TRUE(writer.add_streams_changed("e"));
  const auto decoded = decode_cluster_message(writer.take());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->sender, "n");
  ASSERT_EQ(decoded->records.size(), 1u);
  EXPECT_EQ(decoded->records[0].device, "e");
}

TEST(ClusterMessage, WriterRefusesWhatTheDecoderWouldRefuse) {
  ClusterMessageWriter writer("n");
  EXPECT_FALSE(writer.add_notify("", 0, 1, NotifyPriority::kHigh));
  EXPECT_FALSE(writer.add_streams_changed(std::string(kMaxClusterDeviceBytes + 1, 'd')));
  StreamNotify bad;
  bad.filter = std::make_shared<const StreamFilter>(
      std::vector<StreamFilter::Step>{{StreamFilter::Op::kAnd, 0}});
  EXPECT_FALSE(writer.add_stream_notify(bad));
  EXPECT_EQ(writer.records(), 0u);
  EXPECT_TRUE(writer.add_streams_changed(std::string(kMaxClusterDeviceBytes, 'd')));
}

TEST(ClusterMessage, EveryTruncationIsRefused) {
  ClusterMessageWriter writer("node-a");
  ASSERT_TRUE(writer.add_notify("dev-1", 3, 4, NotifyPriority::kHigh));
  StreamNotify shared;
  shared.filter = has_not(1, 2);
  ASSERT_TRUE(writer.add_stream_notify(shared));
  const std::string bytes = writer.take();
  ASSERT_TRUE(decode_cluster_message(bytes));
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decode_cluster_message(std::string_view(bytes).substr(0, n))) << n;
  }
}

TEST(ClusterMessage, MalformedBytesAreRefused) {
  ClusterMessageWriter writer("a");
  ASSERT_TRUE(writer.add_notify("d", 1, 2, NotifyPriority::kHigh));
  const std::string good = writer.take();
  // header: version 0, sender_len 1, 'a' 2, count 3-4; record: kind 5, priority 6, stream 7-14,
  // head 15-22, device length 23-24, 'd' 25
  ASSERT_EQ(good.size(), 26u);
  auto with = [&](std::size_t at, char c) {
    std::string bytes = good;
    bytes[at] = c;
    return bytes;
  };
  EXPECT_FALSE(decode_cluster_message(with(0, 2)));      // unknown version
  EXPECT_FALSE(decode_cluster_message(with(1, 0)));      // empty sender
  EXPECT_FALSE(decode_cluster_message(with(4, 0)));      // no record
  EXPECT_FALSE(decode_cluster_message(with(4, 2)));      // more records than there are
  EXPECT_FALSE(decode_cluster_message(with(3, 0x7f)));   // a count the bytes cannot hold
  EXPECT_FALSE(decode_cluster_message(with(5, 9)));      // unknown record kind
  EXPECT_FALSE(decode_cluster_message(with(6, 2)));      // unknown priority
  EXPECT_FALSE(decode_cluster_message(with(23, 0x7f)));  // device length past the end
  EXPECT_FALSE(decode_cluster_message(with(24, 0)));     // empty device
  EXPECT_FALSE(decode_cluster_message(good + "x"));      // trailing byte
  EXPECT_FALSE(decode_cluster_message(""));
  EXPECT_FALSE(decode_cluster_message("garbage that is not a message"));
  // A device length above the maximum is refused before anything is read or allocated.
  std::string huge = good.substr(0, 23);
  huge += static_cast<char>(0xff);
  huge += static_cast<char>(0xff);
  huge += std::string(0xffff, 'd');
  EXPECT_FALSE(decode_cluster_message(huge));
}

TEST(ClusterMessage, AnInvalidFilterProgramIsRefused) {
  ClusterMessageWriter writer("a");
  StreamNotify shared;
  shared.filter = has_not(1, 2);
  ASSERT_TRUE(writer.add_stream_notify(shared));
  std::string bytes = writer.take();
  // The filter is last: drop its final step (kAnd) and shorten its length (the low byte of the
  // u16 after header 5, kind 1, priority 1, stream 8, head 8, spread 4).
  const std::size_t filter_bytes = has_not(1, 2)->encode().size();
  ASSERT_EQ(static_cast<std::uint8_t>(bytes[28]), filter_bytes);
  bytes.pop_back();
  bytes[28] = static_cast<char>(filter_bytes - 1);
  EXPECT_FALSE(decode_cluster_message(bytes));
}

}  // namespace
}  // namespace herald::distribution
