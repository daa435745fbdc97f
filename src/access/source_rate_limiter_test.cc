#include "access/source_rate_limiter.h"

#include <cstdint>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/ip/address.hpp>

namespace herald::access {
namespace {

using boost::asio::ip::address;
using boost::asio::ip::make_address;

constexpr std::uint64_t kSeed = 42;

// Connections `source` gets admitted out of `tries` made at `now_ms`.
int admitted(SourceRateLimiter& limiter, const std::string& source, int tries,
             std::int64_t now_ms) {
  int n = 0;
  const address a = make_address(source);
  for (int i = 0; i < tries; ++i) n += limiter.admit(a, now_ms) ? 1 : 0;
  return n;
}

TEST(SourceRateLimiter, AdmitsABurstThenRefuses) {
  SourceRateLimiter limiter(10, 5, 1024, kSeed);
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 20, 1'000), 5);
}

TEST(SourceRateLimiter, RefillsAtItsRate) {
  SourceRateLimiter limiter(10, 5, 1024, kSeed);  // one token per 100 ms
  ASSERT_EQ(admitted(limiter, "192.0.2.1", 5, 1'000), 5);
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 1, 1'099), 0);
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 1, 1'100), 1);
  // Fractions carry over: refused tries at 1'150 do not lose the half token earned by then.
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 3, 1'150), 0);
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 3, 1'200), 1);
  // Three tokens 300 ms later, never more than the burst however long the silence.
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 10, 1'500), 3);
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 10, 100'000), 5);
}

TEST(SourceRateLimiter, AClockStepBackIsNoTimePassing) {
  SourceRateLimiter limiter(10, 2, 1024, kSeed);
  ASSERT_EQ(admitted(limiter, "192.0.2.1", 2, 5'000), 2);
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 5, 1'000), 0);
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 5, 5'100), 1);
}

TEST(SourceRateLimiter, SourcesHaveTheirOwnBuckets) {
  SourceRateLimiter limiter(1, 3, 1024, kSeed);
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 10, 0), 3);
  EXPECT_EQ(admitted(limiter, "192.0.2.2", 10, 0), 3);
  EXPECT_EQ(admitted(limiter, "2001:db8::1", 10, 0), 3);
  EXPECT_EQ(limiter.tracked(), 3u);
}

TEST(SourceRateLimiter, Ipv6CountsBySlash64Prefix) {
  SourceRateLimiter limiter(1, 4, 1024, kSeed);
  // One host picking a new address of its /64 for each connection shares one bucket.
  EXPECT_EQ(admitted(limiter, "2001:db8:1:2::1", 1, 0), 1);
  EXPECT_EQ(admitted(limiter, "2001:db8:1:2:ffff:ffff:ffff:ffff", 1, 0), 1);
  EXPECT_EQ(admitted(limiter, "2001:db8:1:2:abcd::7", 5, 0), 2);
  // The next /64 is another source.
  EXPECT_EQ(admitted(limiter, "2001:db8:1:3::1", 5, 0), 4);
  EXPECT_EQ(SourceRateLimiter::key_of(make_address("2001:db8:1:2::1")),
            SourceRateLimiter::key_of(make_address("2001:db8:1:2:9::9")));
}

TEST(SourceRateLimiter, Ipv4MappedIpv6IsTheIpv4Address) {
  SourceRateLimiter limiter(1, 2, 1024, kSeed);
  EXPECT_EQ(SourceRateLimiter::key_of(make_address("::ffff:192.0.2.7")),
            SourceRateLimiter::key_of(make_address("192.0.2.7")));
  EXPECT_EQ(admitted(limiter, "::ffff:192.0.2.7", 1, 0), 1);
  EXPECT_EQ(admitted(limiter, "192.0.2.7", 5, 0), 1);
  // An IPv4 address and an IPv6 prefix with the same 64 bits are different sources.
  EXPECT_NE(SourceRateLimiter::key_of(make_address("192.0.2.7")),
            SourceRateLimiter::key_of(make_address("::c000:207")));
}

TEST(SourceRateLimiter, ZeroRateIsOff) {
  SourceRateLimiter limiter(0, 1, 1024, kSeed);
  EXPECT_FALSE(limiter.enabled());
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 100'000, 0), 100'000);
  EXPECT_EQ(limiter.max_sources(), 0u);  // no table at all
  EXPECT_EQ(limiter.tracked(), 0u);
}

TEST(SourceRateLimiter, TableStaysBoundedUnderAFloodOfSources) {
  SourceRateLimiter limiter(1, 1, 256, kSeed);
  ASSERT_EQ(limiter.max_sources(), 256u);  // 16 shards of 2 sets of 8 ways
  // 100'000 sources, one connection each: every one is admitted (a new source has a full
  // bucket), the table never holds more than its entries.
  int n = 0;
  for (std::uint32_t i = 0; i < 100'000; ++i) {
    n += limiter.admit(boost::asio::ip::address_v4(0x0a000000u + i), i) ? 1 : 0;
  }
  EXPECT_EQ(n, 100'000);
  EXPECT_EQ(limiter.tracked(), 256u);
}

TEST(SourceRateLimiter, AnEvictedSourceStartsWithAFullBucket) {
  SourceRateLimiter limiter(1, 3, 128, kSeed);
  ASSERT_EQ(admitted(limiter, "192.0.2.1", 10, 0), 3);  // drained
  // 10'000 other sources within the same millisecond push it out of its set (each set of 8 sees
  // hundreds of newcomers; the least recently seen entry goes).
  for (std::uint32_t i = 0; i < 10'000; ++i) {
    (void)limiter.admit(boost::asio::ip::address_v4(0x0a000000u + i), 1);
  }
  // No time passed for its bucket to refill, yet it is admitted three times again.
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 10, 1), 3);
}

TEST(SourceRateLimiter, RecentlySeenSourcesSurviveEvictionOverQuietOnes) {
  SourceRateLimiter limiter(1, 2, 128, kSeed);
  // A flooder drained at t=1000 and keeps trying; quiet sources from t=0 fill the table first.
  for (std::uint32_t i = 0; i < 128; ++i) {
    (void)limiter.admit(boost::asio::ip::address_v4(0x0a000000u + i), 0);
  }
  ASSERT_EQ(admitted(limiter, "192.0.2.1", 2, 1'000), 2);
  // Newcomers at t=1000 push out the quiet entries seen at t=0 before the flooder's, which was
  // seen last: as long as no more than 7 newcomers land in its set, it stays drained.
  for (std::uint32_t i = 0; i < 16; ++i) {
    (void)limiter.admit(boost::asio::ip::address_v4(0x0b000000u + i), 1'000);
  }
  EXPECT_EQ(admitted(limiter, "192.0.2.1", 1, 1'000), 0);
}

}  // namespace
}  // namespace herald::access
