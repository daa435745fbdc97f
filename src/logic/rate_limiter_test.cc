#include "logic/rate_limiter.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace herald::logic {
namespace {

using std::chrono::milliseconds;

AppRateLimits requests(double per_s, double burst = 0) { return {{per_s, burst}, {}}; }
AppRateLimits messages(double per_s, double burst = 0) { return {{}, {per_s, burst}}; }

// A clock the test moves by hand.
struct ManualClock {
  std::int64_t now_ms = 1'000'000;
  RateLimiter::MonotonicClock fn() {
    return [this] { return now_ms; };
  }
};

TEST(RateLimiter, AnAppWithoutLimitsIsNeverRefused) {
  ManualClock clock;
  RateLimiter limiter(clock.fn());
  for (int i = 0; i < 10'000; ++i) ASSERT_FALSE(limiter.try_acquire("news", 1000));
}

TEST(RateLimiter, RequestsBeyondTheBurstAreRefusedWithTheTimeUntilTheNextToken) {
  ManualClock clock;
  RateLimiter limiter(clock.fn());
  limiter.set_limits("news", requests(10, 3));
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(limiter.try_acquire("news", 1)) << i;
  const auto wait = limiter.try_acquire("news", 1);
  ASSERT_TRUE(wait);
  EXPECT_EQ(*wait, milliseconds(100));  // one token at 10/s
  clock.now_ms += 99;
  EXPECT_TRUE(limiter.try_acquire("news", 1));
  clock.now_ms += 1;
  EXPECT_FALSE(limiter.try_acquire("news", 1));
}

TEST(RateLimiter, MessagesAreCountedPerTargetAndARefusalTakesNothing) {
  ManualClock clock;
  RateLimiter limiter(clock.fn());
  limiter.set_limits("news", {{1000, 0}, {100, 0}});
  EXPECT_FALSE(limiter.try_acquire("news", 60));
  const auto wait = limiter.try_acquire("news", 60);  // 40 left: refused, and nothing taken
  ASSERT_TRUE(wait);
  EXPECT_EQ(*wait, milliseconds(200));            // 20 more tokens at 100/s
  EXPECT_FALSE(limiter.try_acquire("news", 40));  // the 40 are still there
  EXPECT_TRUE(limiter.try_acquire("news", 1));
}

TEST(RateLimiter, AppsHaveSeparateBuckets) {
  ManualClock clock;
  RateLimiter limiter(clock.fn());
  limiter.set_limits("news", requests(1));
  limiter.set_limits("chat", requests(1));
  EXPECT_FALSE(limiter.try_acquire("news", 1));
  EXPECT_TRUE(limiter.try_acquire("news", 1));
  EXPECT_FALSE(limiter.try_acquire("chat", 1));
  EXPECT_FALSE(limiter.try_acquire("other", 1));
}

TEST(RateLimiter, TheBucketRefillsOnlyUpToItsBurst) {
  ManualClock clock;
  RateLimiter limiter(clock.fn());
  limiter.set_limits("news", messages(10, 20));
  EXPECT_FALSE(limiter.try_acquire("news", 20));
  clock.now_ms += 60'000;  // a minute idle refills 20, not 600
  EXPECT_FALSE(limiter.try_acquire("news", 20));
  EXPECT_TRUE(limiter.try_acquire("news", 1));
}

TEST(RateLimiter, ARequestLargerThanTheBurstIsAlwaysRefused) {
  ManualClock clock;
  RateLimiter limiter(clock.fn());
  limiter.set_limits("news", messages(10, 10));
  const auto wait = limiter.try_acquire("news", 11);
  ASSERT_TRUE(wait);
  clock.now_ms += wait->count();
  EXPECT_TRUE(limiter.try_acquire("news", 11));
  EXPECT_FALSE(limiter.try_acquire("news", 10));
}

TEST(RateLimiter, RemovingTheLimitsLiftsThem) {
  ManualClock clock;
  RateLimiter limiter(clock.fn());
  limiter.set_limits("news", requests(1));
  EXPECT_FALSE(limiter.try_acquire("news", 1));
  EXPECT_TRUE(limiter.try_acquire("news", 1));
  limiter.set_limits("news", {});
  EXPECT_FALSE(limiter.try_acquire("news", 1));
}

TEST(RateLimiter, ConcurrentCallersNeverTakeMoreThanTheBucketHolds) {
  ManualClock clock;  // frozen: no refill while the threads run
  RateLimiter limiter(clock.fn());
  limiter.set_limits("news", messages(1, 1000));
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (!limiter.try_acquire("news", 1)) ++granted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 1000);
}

}  // namespace
}  // namespace herald::logic
