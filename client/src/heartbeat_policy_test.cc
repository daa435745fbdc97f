#include "heartbeat_policy.h"

#include <string>

#include <gtest/gtest.h>

namespace herald::detail {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using Clock = HeartbeatPolicy::Clock;

HeartbeatSettings settings() {
  HeartbeatSettings s;
  s.initial = seconds(60);
  s.min = seconds(30);
  s.max = seconds(300);
  s.step = seconds(60);
  s.probe_after = minutes(30);
  s.max_networks = 3;
  return s;
}

// Lets `p` succeed at its current interval, advancing `now` by that interval.
void succeed(HeartbeatPolicy& p, Clock::time_point& now) {
  now += p.interval();
  p.on_success(p.interval(), now);
}

TEST(HeartbeatPolicy, LengthensTheIntervalStepByStepWhileHeartbeatsSucceed) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  EXPECT_EQ(p.interval(), seconds(60));
  succeed(p, now);
  EXPECT_EQ(p.interval(), seconds(120));
  EXPECT_EQ(p.last_good(), seconds(60));
  succeed(p, now);
  EXPECT_EQ(p.interval(), seconds(180));
  EXPECT_FALSE(p.settled());
}

TEST(HeartbeatPolicy, NeverGoesAboveMax) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  for (int i = 0; i < 10; ++i) succeed(p, now);
  EXPECT_EQ(p.interval(), seconds(300));
  EXPECT_EQ(p.last_good(), seconds(300));
}

TEST(HeartbeatPolicy, FailureFallsBackToTheLastGoodIntervalAndKeepsIt) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  succeed(p, now);  // 60 worked
  succeed(p, now);  // 120 worked
  ASSERT_EQ(p.interval(), seconds(180));
  now += seconds(180);
  p.on_failure(seconds(180), now);
  EXPECT_EQ(p.interval(), seconds(120));
  EXPECT_TRUE(p.settled());
  for (int i = 0; i < 5; ++i) succeed(p, now);  // 10 minutes: not yet time to probe
  EXPECT_EQ(p.interval(), seconds(120));
}

TEST(HeartbeatPolicy, FailureWithoutAGoodIntervalStepsDownButNotBelowMin) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  p.on_failure(seconds(60), now);
  EXPECT_EQ(p.interval(), seconds(30));  // 60 - 60, raised to min
  p.on_failure(seconds(30), now);
  EXPECT_EQ(p.interval(), seconds(30));
}

TEST(HeartbeatPolicy, FailureOfTheLastGoodIntervalForgetsIt) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  succeed(p, now);
  succeed(p, now);
  p.on_failure(seconds(180), now);
  ASSERT_EQ(p.interval(), seconds(120));
  p.on_failure(seconds(120), now);
  EXPECT_EQ(p.interval(), seconds(60));
  EXPECT_EQ(p.last_good(), seconds(0));
}

TEST(HeartbeatPolicy, ProbesOneStepHigherAfterProbeAfterOfStableOperation) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  succeed(p, now);
  p.on_failure(seconds(120), now);
  ASSERT_EQ(p.interval(), seconds(60));
  const Clock::time_point settled_at = now;
  while (now < settled_at + minutes(30)) succeed(p, now);
  EXPECT_EQ(p.interval(), seconds(120));  // the probe
  succeed(p, now);                        // it worked: kept, no further step yet
  EXPECT_EQ(p.last_good(), seconds(120));
  EXPECT_EQ(p.interval(), seconds(120));
  now += seconds(120);
  p.on_failure(seconds(120), now);  // a probe that fails falls back again
  EXPECT_EQ(p.interval(), seconds(60));
}

TEST(HeartbeatPolicy, RemembersEachNetwork) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  p.set_network("wifi:home");
  succeed(p, now);
  succeed(p, now);
  p.on_failure(seconds(180), now);
  ASSERT_EQ(p.interval(), seconds(120));
  p.set_network("carrier:A");
  EXPECT_EQ(p.interval(), seconds(60));  // a new network starts from initial
  EXPECT_FALSE(p.settled());
  succeed(p, now);
  p.set_network("wifi:home");
  EXPECT_EQ(p.interval(), seconds(120));
  EXPECT_TRUE(p.settled());
  p.set_network("carrier:A");
  EXPECT_EQ(p.interval(), seconds(120));
}

TEST(HeartbeatPolicy, ForgetsTheLeastRecentlyUsedNetworkPastTheBound) {
  HeartbeatPolicy p(settings());  // remembers 3: "", a, b, then c evicts ""
  Clock::time_point now;
  p.set_network("a");
  succeed(p, now);
  p.set_network("b");
  p.set_network("a");  // a is recent again
  p.set_network("c");  // evicts ""
  p.set_network("d");  // evicts b
  p.set_network("a");
  EXPECT_EQ(p.interval(), seconds(120));
  p.set_network("");  // forgotten: starts over
  EXPECT_EQ(p.interval(), seconds(60));
}

TEST(HeartbeatPolicy, ShorterIdleThanAskedDoesNotLengthenTheInterval) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  p.on_success(seconds(20), now);
  EXPECT_EQ(p.interval(), seconds(60));
  EXPECT_EQ(p.last_good(), seconds(20));
}

TEST(HeartbeatPolicy, IntervalAfterSuccessPredictsOnSuccess) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  EXPECT_EQ(p.interval_after_success(seconds(60), now), seconds(120));
  EXPECT_EQ(p.interval(), seconds(60));  // unchanged
  p.on_success(seconds(60), now);
  EXPECT_EQ(p.interval(), seconds(120));
}

TEST(HeartbeatPolicy, SettingsAreNormalised) {
  HeartbeatSettings s;
  s.initial = seconds(5000);
  s.min = seconds(0);
  s.max = seconds(100);
  s.step = seconds(0);
  HeartbeatPolicy p(s);
  EXPECT_EQ(p.interval(), seconds(100));
  EXPECT_EQ(p.settings().min, seconds(1));
  EXPECT_EQ(p.settings().step, seconds(1));
}

}  // namespace
}  // namespace herald::detail
