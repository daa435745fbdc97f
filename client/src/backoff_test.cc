#include "backoff.h"

#include <cstdint>
#include <random>

#include <gtest/gtest.h>

namespace herald::detail {
namespace {

using std::chrono::milliseconds;

// Always draws the ceiling itself, so next() shows the ceiling it drew under.
Backoff::Random top() {
  return [](std::uint64_t bound) { return bound; };
}

TEST(Backoff, CeilingDoublesFromInitialUpToMax) {
  Backoff b(milliseconds(100), milliseconds(1000), top());
  EXPECT_EQ(b.next(), milliseconds(100));
  EXPECT_EQ(b.next(), milliseconds(200));
  EXPECT_EQ(b.next(), milliseconds(400));
  EXPECT_EQ(b.next(), milliseconds(800));
  EXPECT_EQ(b.next(), milliseconds(1000));
  EXPECT_EQ(b.next(), milliseconds(1000));
}

TEST(Backoff, ResetReturnsToInitialCeiling) {
  Backoff b(milliseconds(100), milliseconds(1000), top());
  for (int i = 0; i < 5; ++i) (void)b.next();
  b.reset();
  EXPECT_EQ(b.ceiling(), milliseconds(100));
  EXPECT_EQ(b.next(), milliseconds(100));
}

TEST(Backoff, FullJitterDrawsFromZeroToTheCeiling) {
  std::uint64_t seen_bound = 0;
  Backoff zero(milliseconds(100), milliseconds(1000), [&](std::uint64_t bound) {
    seen_bound = bound;
    return std::uint64_t{0};
  });
  (void)zero.next();
  EXPECT_EQ(zero.next(), milliseconds(0));
  EXPECT_EQ(seen_bound, 200u);
}

TEST(Backoff, RandomDelaysStayWithinTheCeiling) {
  std::mt19937_64 engine(42);  // fixed seed: hermetic
  Backoff b(milliseconds(50), milliseconds(3000), [&](std::uint64_t bound) {
    return std::uniform_int_distribution<std::uint64_t>(0, bound)(engine);
  });
  bool below_half = false;
  for (int i = 0; i < 200; ++i) {
    const milliseconds ceiling = b.ceiling();
    const milliseconds d = b.next();
    EXPECT_GE(d.count(), 0);
    EXPECT_LE(d, ceiling);
    EXPECT_LE(d, milliseconds(3000));
    below_half = below_half || d < ceiling / 2;
  }
  EXPECT_TRUE(below_half) << "delays are not jittered";
}

TEST(Backoff, ClampsARandomSourceThatOvershoots) {
  Backoff b(milliseconds(100), milliseconds(1000),
            [](std::uint64_t bound) { return bound * 10 + 7; });
  EXPECT_EQ(b.next(), milliseconds(100));
}

TEST(Backoff, MaxBelowInitialIsRaisedToInitial) {
  Backoff b(milliseconds(500), milliseconds(10), top());
  EXPECT_EQ(b.next(), milliseconds(500));
  EXPECT_EQ(b.next(), milliseconds(500));
}

TEST(Backoff, ManyFailuresNeitherOverflowNorExceedMax) {
  Backoff b(milliseconds(1), std::chrono::hours(24 * 365), top());
  for (int i = 0; i < 100'000; ++i) ASSERT_LE(b.next(), std::chrono::hours(24 * 365));
  EXPECT_EQ(b.ceiling(), std::chrono::hours(24 * 365));
}

TEST(Backoff, DefaultRandomSourceStaysInRange) {
  Backoff b(milliseconds(10), milliseconds(80));
  for (int i = 0; i < 100; ++i) {
    const milliseconds ceiling = b.ceiling();
    EXPECT_LE(b.next(), ceiling);
  }
}

}  // namespace
}  // namespace herald::detail
