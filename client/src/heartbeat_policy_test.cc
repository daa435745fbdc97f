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

// Runs `p` behind a NAT that forgets a connection idle for `nat_timeout` or longer, advancing
// `now`, until a heartbeat fails; returns its idle period.
seconds run_until_failure(HeartbeatPolicy& p, Clock::time_point& now, seconds nat_timeout) {
  for (;;) {
    const seconds idle = p.interval();
    now += idle;
    if (idle >= nat_timeout) {
      p.on_failure(idle, now);
      return idle;
    }
    p.on_success(idle, now);
  }
}

TEST(HeartbeatPolicy, FailedProbesAtTheSameIntervalDoubleTheWaitUpToProbeAfterMax) {
  HeartbeatSettings s = settings();
  s.probe_after_max = std::chrono::hours(24);
  HeartbeatPolicy p(s);
  Clock::time_point now;
  ASSERT_EQ(run_until_failure(p, now, seconds(300)), seconds(300));  // settles at 240
  ASSERT_EQ(p.interval(), seconds(240));
  for (const minutes wait : {minutes(30), minutes(60), minutes(120), minutes(240), minutes(480),
                             minutes(960), minutes(1440), minutes(1440)}) {
    EXPECT_EQ(p.probe_wait(), wait);
    const Clock::time_point failed_at = now;
    // Nothing changed on the network: every probe tries 300 s again, and fails again.
    EXPECT_EQ(run_until_failure(p, now, seconds(300)), seconds(300));
    EXPECT_EQ(p.interval(), seconds(240));
    // The probe began with the first heartbeat of 240 s that ended `wait` or more later.
    EXPECT_GE(now - failed_at, wait + seconds(300)) << wait.count() << " min";
    EXPECT_LT(now - failed_at, wait + seconds(240 + 300)) << wait.count() << " min";
  }
}

TEST(HeartbeatPolicy, ProbeThatWorksResetsTheWait) {
  HeartbeatSettings s = settings();
  s.max = seconds(600);
  HeartbeatPolicy p(s);
  Clock::time_point now;
  run_until_failure(p, now, seconds(300));
  run_until_failure(p, now, seconds(300));  // a failed probe
  run_until_failure(p, now, seconds(300));  // the same again: the wait doubles, twice
  ASSERT_EQ(p.probe_wait(), minutes(120));
  // The NAT now keeps 6 minutes: the next probe (300 s, 2 hours on) works.
  const Clock::time_point failed_at = now;
  while (p.interval() == seconds(240)) succeed(p, now);
  const Clock::time_point probe_began = now;
  EXPECT_GE(probe_began - failed_at, minutes(120));
  succeed(p, now);
  EXPECT_EQ(p.last_good(), seconds(300));
  EXPECT_EQ(p.probe_wait(), minutes(30));
  // The next step is tried probe_after after the working probe began, not 4 hours later.
  while (p.interval() == seconds(300)) succeed(p, now);
  EXPECT_EQ(p.interval(), seconds(360));
  EXPECT_GE(now - probe_began, minutes(30));
  EXPECT_LT(now - probe_began, minutes(30) + seconds(300));
  // 360 s fails: a new interval failing, so the network waits probe_after, not more.
  EXPECT_EQ(run_until_failure(p, now, seconds(360)), seconds(360));
  EXPECT_EQ(p.interval(), seconds(300));
  EXPECT_EQ(p.probe_wait(), minutes(30));
}

TEST(HeartbeatPolicy, FailureOfTheKeptIntervalResetsTheWait) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  run_until_failure(p, now, seconds(300));
  run_until_failure(p, now, seconds(300));
  ASSERT_EQ(p.probe_wait(), minutes(60));
  // The network changed: 240 s, which worked, fails too. Not a probe: back to probe_after.
  EXPECT_EQ(run_until_failure(p, now, seconds(240)), seconds(240));
  EXPECT_EQ(p.interval(), seconds(180));
  EXPECT_EQ(p.probe_wait(), minutes(30));
}

TEST(HeartbeatPolicy, NewNetworkStartsAtProbeAfterAndEachKeepsItsOwnWait) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  p.set_network("carrier:A");
  run_until_failure(p, now, seconds(300));
  run_until_failure(p, now, seconds(300));
  run_until_failure(p, now, seconds(300));
  ASSERT_EQ(p.probe_wait(), minutes(120));
  p.set_network("wifi:home");
  EXPECT_EQ(p.probe_wait(), minutes(30));
  run_until_failure(p, now, seconds(300));  // its own limit: settles, the first failure there
  EXPECT_EQ(p.probe_wait(), minutes(30));
  p.set_network("carrier:A");
  EXPECT_EQ(p.probe_wait(), minutes(120));
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

TEST(HeartbeatPolicy, SuggestionStartsANetworkNotLearnedYet) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  p.set_network("carrier:A");
  EXPECT_TRUE(p.suggest("carrier:A", seconds(240), now));
  EXPECT_EQ(p.interval(), seconds(240));
  EXPECT_FALSE(p.settled());
  succeed(p, now);  // lengthens from the suggestion as from initial
  EXPECT_EQ(p.interval(), seconds(300));
  EXPECT_EQ(p.last_good(), seconds(240));
}

TEST(HeartbeatPolicy, SuggestionIsClampedIntoMinAndMax) {
  HeartbeatPolicy p(settings());
  const Clock::time_point now;
  EXPECT_TRUE(p.suggest("", seconds(5000), now));
  EXPECT_EQ(p.interval(), seconds(300));
  EXPECT_TRUE(p.suggest("", seconds(1), now));  // still nothing learned: a newer suggestion wins
  EXPECT_EQ(p.interval(), seconds(30));
}

TEST(HeartbeatPolicy, SuggestionDoesNotOverrideWhatTheNetworkLearned) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  succeed(p, now);  // a success on "" is learned state
  EXPECT_FALSE(p.suggest("", seconds(240), now));
  EXPECT_EQ(p.interval(), seconds(120));
  p.set_network("b");
  p.on_failure(seconds(60), now);  // settled without any success
  EXPECT_FALSE(p.suggest("b", seconds(240), now));
  EXPECT_EQ(p.interval(), seconds(30));
}

TEST(HeartbeatPolicy, SuggestionAboveTheLimitFailsOnceAndFallsBackOneStepBelow) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  ASSERT_TRUE(p.suggest("", seconds(240), now));
  now += seconds(240);
  p.on_failure(seconds(240), now);
  EXPECT_EQ(p.interval(), seconds(180));
  EXPECT_TRUE(p.settled());
  EXPECT_EQ(p.settled_interval(), seconds(0));  // 180 s has not worked yet
  succeed(p, now);
  EXPECT_EQ(p.settled_interval(), seconds(180));
}

TEST(HeartbeatPolicy, SuggestionForAnotherNetworkWaitsForIt) {
  HeartbeatPolicy p(settings());
  const Clock::time_point now;
  p.set_network("a");
  EXPECT_TRUE(p.suggest("b", seconds(240), now));
  EXPECT_EQ(p.network(), "a");
  EXPECT_EQ(p.interval(), seconds(60));
  p.set_network("b");
  EXPECT_EQ(p.interval(), seconds(240));
}

TEST(HeartbeatPolicy, HeldSuggestionIsKeptUntilProbeAfterThenProbed) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  ASSERT_TRUE(p.suggest("", seconds(240), now, HeartbeatPolicy::Suggestion::kHold));
  EXPECT_EQ(p.interval(), seconds(240));
  EXPECT_TRUE(p.settled());
  const Clock::time_point held_at = now;
  while (now < held_at + minutes(30)) {
    EXPECT_EQ(p.interval(), seconds(240));
    succeed(p, now);
  }
  EXPECT_EQ(p.interval(), seconds(300));        // the probe
  EXPECT_EQ(p.settled_interval(), seconds(0));  // 240 held, not found: nothing to report
  now += seconds(300);
  p.on_failure(seconds(300), now);
  EXPECT_EQ(p.interval(), seconds(240));
  EXPECT_EQ(p.settled_interval(), seconds(240));  // its own limit now
  // The first failure at 300 s on this network: nothing to back off from yet.
  EXPECT_EQ(p.probe_wait(), minutes(30));
  EXPECT_EQ(run_until_failure(p, now, seconds(300)), seconds(300));
  EXPECT_EQ(p.probe_wait(), minutes(60));
}

TEST(HeartbeatPolicy, HeldSuggestionThatFailsStepsBelowIt) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  ASSERT_TRUE(p.suggest("", seconds(240), now, HeartbeatPolicy::Suggestion::kHold));
  EXPECT_TRUE(p.suggest("", seconds(180), now, HeartbeatPolicy::Suggestion::kHold));  // newer
  now += seconds(180);
  p.on_failure(seconds(180), now);
  EXPECT_EQ(p.interval(), seconds(120));
  EXPECT_FALSE(p.suggest("", seconds(240), now));  // a failure of its own is learned state
  succeed(p, now);
  EXPECT_EQ(p.settled_interval(), seconds(120));
}

TEST(HeartbeatPolicy, SettledIntervalIsReportedOnlyOnceTheLimitIsKnown) {
  HeartbeatPolicy p(settings());
  Clock::time_point now;
  succeed(p, now);
  succeed(p, now);
  EXPECT_EQ(p.settled_interval(), seconds(0));  // 120 worked, 180 untried
  now += seconds(180);
  p.on_failure(seconds(180), now);
  EXPECT_EQ(p.settled_interval(), seconds(120));
  p.set_network("open");
  for (int i = 0; i < 5; ++i) succeed(p, now);
  EXPECT_FALSE(p.settled());
  EXPECT_EQ(p.settled_interval(), seconds(300));  // max worked: nothing longer to find
}

TEST(HeartbeatPolicy, SettingsAreNormalised) {
  HeartbeatSettings s;
  s.initial = seconds(5000);
  s.min = seconds(0);
  s.max = seconds(100);
  s.step = seconds(0);
  s.probe_after = minutes(30);
  s.probe_after_max = minutes(10);
  HeartbeatPolicy p(s);
  EXPECT_EQ(p.interval(), seconds(100));
  EXPECT_EQ(p.settings().min, seconds(1));
  EXPECT_EQ(p.settings().step, seconds(1));
  EXPECT_EQ(p.settings().probe_after_max, minutes(30));
}

}  // namespace
}  // namespace herald::detail
