#include "heartbeat_simulation.h"

#include <vector>

#include <gtest/gtest.h>

namespace herald::detail {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

HeartbeatSettings settings() {
  HeartbeatSettings s;
  s.initial = seconds(60);
  s.min = seconds(30);
  s.max = seconds(1800);
  s.step = seconds(60);
  s.probe_after = minutes(30);
  return s;
}

TEST(HeartbeatSimulation, ColdDeviceClimbsToItsNatLimitAndFailsOnceAbove) {
  // 1, 2, 3, 4 min work; 5 min (idle as long as the NAT's timeout) fails; back to 4, settled.
  const auto r = simulate_heartbeat(settings(), minutes(5), std::nullopt, hours(1));
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.heartbeats_to_converge, 5u);
  EXPECT_EQ(r.failures_to_converge, 1u);
  EXPECT_EQ(r.time_to_converge, minutes(15));
  EXPECT_EQ(r.interval, minutes(4));
  EXPECT_EQ(r.settled_interval, minutes(4));
}

TEST(HeartbeatSimulation, SuggestionAtTheLimitSkipsTheClimb) {
  const auto r = simulate_heartbeat(settings(), minutes(5), minutes(4), hours(1));
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.heartbeats_to_converge, 2u);  // 4 min works, 5 min fails
  EXPECT_EQ(r.failures_to_converge, 1u);
  EXPECT_EQ(r.time_to_converge, minutes(9));
  EXPECT_EQ(r.settled_interval, minutes(4));
}

TEST(HeartbeatSimulation, HeldSuggestionWithinAStepOfTheLimitConvergesWithoutFailure) {
  const auto r = simulate_heartbeat(settings(), minutes(5), minutes(4), minutes(29),
                                    HeartbeatPolicy::Suggestion::kHold);
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.failures_to_converge, 0u);
  EXPECT_EQ(r.time_to_converge, minutes(4));  // its first heartbeat
  EXPECT_EQ(r.failed_heartbeats, 0u);         // no probe before 30 min
  EXPECT_EQ(r.settled_interval, seconds(0));  // held, not found: not reported
}

TEST(HeartbeatSimulation, SuggestionAboveTheLimitStepsDownOneFailureAtATime) {
  // 7 min fails, 6 min fails, 5 min is within one step below the 5.5 min limit.
  const auto r = simulate_heartbeat(settings(), seconds(330), minutes(7), minutes(40));
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.failures_to_converge, 2u);
  EXPECT_EQ(r.time_to_converge, minutes(13));
  EXPECT_EQ(r.interval, minutes(5));
}

TEST(HeartbeatSimulation, NatAboveMaxConvergesAtMaxWithoutFailure) {
  HeartbeatSettings s = settings();
  s.max = minutes(10);
  const auto r = simulate_heartbeat(s, minutes(30), std::nullopt, hours(3));
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.failures_to_converge, 0u);
  EXPECT_EQ(r.time_to_converge, minutes(55));  // 1 + 2 + ... + 10
  EXPECT_EQ(r.failed_heartbeats, 0u);
  EXPECT_EQ(r.settled_interval, minutes(10));
}

TEST(HeartbeatSimulation, NatBelowMinNeverConverges) {
  const auto r = simulate_heartbeat(settings(), seconds(20), std::nullopt, hours(1));
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.failed_heartbeats, r.heartbeats);
  EXPECT_EQ(r.failures_to_converge, r.failed_heartbeats);
}

TEST(HeartbeatSimulation, SettledDeviceFailsOncePerProbeAndBacksOffItsProbes) {
  // Settled at 4 min after 15 min; from then each probe of 5 min fails, and as each fails at the
  // same interval as the failure before it, the wait before the next one doubles: 30 min, 1 h,
  // 2 h, each counted from the failure and ended by the next 4 min heartbeat. The probes fail at
  // 52, 117 and 242 min (a probe every 30 min would have failed 6 times by then).
  const auto r = simulate_heartbeat(settings(), minutes(5), std::nullopt, minutes(250));
  EXPECT_EQ(r.failed_heartbeats, 1u + 3u);
  EXPECT_EQ(
      simulate_heartbeat(settings(), minutes(5), std::nullopt, minutes(241)).failed_heartbeats,
      1u + 2u);
}

TEST(HeartbeatSimulation, StopsBeforeAHeartbeatThatWouldEndPastTheDuration) {
  const auto r = simulate_heartbeat(settings(), minutes(5), std::nullopt, minutes(5));
  EXPECT_EQ(r.heartbeats, 2u);  // 1 + 2 min; the 3 min one would end at 6 min
  EXPECT_FALSE(r.converged);
}

TEST(HeartbeatSimulation, SummaryAveragesThePopulation) {
  std::vector<HeartbeatSimulationResult> results;
  results.push_back(simulate_heartbeat(settings(), minutes(5), std::nullopt, hours(1)));
  results.push_back(simulate_heartbeat(settings(), minutes(5), minutes(4), hours(1)));
  results.push_back(simulate_heartbeat(settings(), seconds(20), std::nullopt, minutes(10)));
  const auto s = summarise(results);
  EXPECT_EQ(s.devices, 3u);
  EXPECT_EQ(s.converged, 2u);
  EXPECT_DOUBLE_EQ(s.minutes_to_converge, 12.0);  // (15 + 9) / 2
  EXPECT_EQ(summarise({}).devices, 0u);
}

}  // namespace
}  // namespace herald::detail
