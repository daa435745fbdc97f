#include "distribution/stream_filter.h"

#include <array>
#include <string>

#include <gtest/gtest.h>

namespace herald::distribution {
namespace {

using Op = StreamFilter::Op;

// ('1' || '2') && !'3'
StreamFilter sample() {
  return StreamFilter(
      {{Op::kHas, 1}, {Op::kHas, 2}, {Op::kOr}, {Op::kHas, 3}, {Op::kNot}, {Op::kAnd}});
}

TEST(StreamFilter, EvaluatesItsProgramAgainstTheReadersStreams) {
  const StreamFilter f = sample();
  ASSERT_TRUE(f.valid());
  const std::array<std::uint64_t, 1> only_1{1};
  const std::array<std::uint64_t, 2> two_and_9{2, 9};
  const std::array<std::uint64_t, 2> one_and_3{1, 3};
  const std::array<std::uint64_t, 1> only_3{3};
  EXPECT_TRUE(f.matches_sorted(only_1));
  EXPECT_TRUE(f.matches_sorted(two_and_9));
  EXPECT_FALSE(f.matches_sorted(one_and_3));
  EXPECT_FALSE(f.matches_sorted(only_3));
  EXPECT_FALSE(f.matches_sorted({}));
  EXPECT_TRUE(f.matches([](std::uint64_t s) { return s == 2; }));
}

TEST(StreamFilter, RoundTripsThroughItsByteForm) {
  StreamFilter f({{Op::kHas, 300}, {Op::kHas, 1ULL << 40}, {Op::kAnd}});
  const std::string bytes = f.encode();
  EXPECT_EQ(bytes.size(), 1 + 2 + 1 + 6 + 1u);
  auto back = StreamFilter::decode(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, f);
  EXPECT_EQ(StreamFilter::decode(sample().encode()), sample());
}

TEST(StreamFilter, RejectsProgramsThatDoNotLeaveExactlyOneValue) {
  EXPECT_FALSE(StreamFilter().valid());
  EXPECT_FALSE(StreamFilter({{Op::kAnd}}).valid());
  EXPECT_FALSE(StreamFilter({{Op::kNot}}).valid());
  EXPECT_FALSE(StreamFilter({{Op::kHas, 1}, {Op::kHas, 2}}).valid());
  EXPECT_FALSE(StreamFilter({{Op::kHas, 1}, {Op::kOr}}).valid());
}

TEST(StreamFilter, DecodeRefusesBrokenBytes) {
  EXPECT_FALSE(StreamFilter::decode(""));
  EXPECT_FALSE(StreamFilter::decode("\x09"));                      // unknown op
  EXPECT_FALSE(StreamFilter::decode(std::string("\x01\x80", 2)));  // varint cut off
  EXPECT_FALSE(StreamFilter::decode("\x01\x01\x03"));              // an and with one operand
  std::string too_long;
  for (std::size_t i = 0; i <= StreamFilter::kMaxSteps; ++i) too_long += "\x01\x01";
  EXPECT_FALSE(StreamFilter::decode(too_long));
  std::string overlong_varint = "\x01";
  overlong_varint += std::string(10, '\xff');
  overlong_varint += '\x01';
  EXPECT_FALSE(StreamFilter::decode(overlong_varint));
  // Ten bytes whose last one carries bits past the 64th.
  EXPECT_FALSE(StreamFilter::decode("\x01" + std::string(9, '\xff') + '\x02'));
  const auto widest = StreamFilter::decode("\x01" + std::string(9, '\xff') + '\x01');
  ASSERT_TRUE(widest);
  EXPECT_EQ(widest->program().front().stream, ~std::uint64_t{0});
}

}  // namespace
}  // namespace herald::distribution
