#include "hbsim/nat_heartbeat_sim.h"

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "heartbeat_simulation.h"

namespace herald::hbsim {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// The client's defaults behind a NAT of `timeout`.
NatHeartbeatScenario behind(milliseconds timeout) {
  NatHeartbeatScenario s;
  s.nat_idle_timeout = timeout;
  return s;
}

NatHeartbeatScenario fixed(seconds interval, milliseconds timeout) {
  NatHeartbeatScenario s = behind(timeout);
  s.adaptive = false;
  s.heartbeat = interval;
  return s;
}

TEST(NatHeartbeatSim, SettlesOneStepBelowTheNatTimeout) {
  // 60, 120, 180, 240 work; 300 finds the 5-minute NAT's mapping gone (Ping at 900 s, noticed at
  // 910 s, reconnected at 910.1 s), and the policy falls back to 240.
  const NatHeartbeatReport r = simulate_nat_heartbeat(behind(minutes(5)));
  EXPECT_EQ(r.interval, seconds(240));
  ASSERT_TRUE(r.settled_at.has_value());
  EXPECT_EQ(*r.settled_at, milliseconds(910'100));
  EXPECT_EQ(r.losses - r.losses_after_settling, 1u);
}

// The probes' back-off off (probe_after_max = probe_after): a probe every 30 min, as the policy
// did before it backed off, each a lost connection.
TEST(NatHeartbeatSim, ProbesAtTheNatLimitEachCostALostConnection) {
  NatHeartbeatScenario s = behind(minutes(5));
  s.probe_after_max = s.probe_after;
  s.keep_trace = true;
  const NatHeartbeatReport r = simulate_nat_heartbeat(s);
  ASSERT_TRUE(r.settled_at.has_value());
  EXPECT_GT(r.probes, 30u);  // one per 30 min of settled operation, and a little more
  EXPECT_EQ(r.losses_after_settling, r.probes);
  for (const WakeUp& w : r.trace) {
    if (w.kind != WakeUp::Kind::kHeartbeat || w.at < *r.settled_at) continue;
    // Settled, the device pings every 240 s; only a probe (300 s) is lost, and it always is.
    EXPECT_EQ(w.lost, w.idle == seconds(300)) << "at " << w.at.count() << " ms";
    EXPECT_TRUE(w.idle == seconds(240) || w.idle == seconds(300)) << "at " << w.at.count() << " ms";
  }
}

// Lost Pings in `r`'s trace, in order.
std::vector<milliseconds> losses_in(const NatHeartbeatReport& r) {
  std::vector<milliseconds> at;
  for (const WakeUp& w : r.trace) {
    if (w.lost) at.push_back(w.at);
  }
  return at;
}

// Between two lost probes: the failure is noticed response_timeout after the first, the device
// waits out the probe wait in 240 s heartbeats, and the next probe (300 s) begins with the first
// heartbeat to end at or after it.
void expect_probe_waits(const NatHeartbeatScenario& s, const std::vector<milliseconds>& lost,
                        const std::vector<minutes>& waits) {
  ASSERT_EQ(lost.size(), waits.size() + 1);
  for (std::size_t i = 0; i < waits.size(); ++i) {
    const milliseconds gap = lost[i + 1] - (lost[i] + s.response_timeout);
    EXPECT_GE(gap, waits[i] + seconds(300)) << "after the loss at " << lost[i].count() << " ms";
    EXPECT_LT(gap, waits[i] + seconds(240 + 300) + s.reconnect_delay)
        << "after the loss at " << lost[i].count() << " ms";
  }
}

TEST(NatHeartbeatSim, ProbesAtTheNatLimitBackOffSoADayLosesSixConnectionsNotForty) {
  NatHeartbeatScenario s = behind(minutes(5));
  s.keep_trace = true;
  const NatHeartbeatReport r = simulate_nat_heartbeat(s);
  EXPECT_EQ(r.interval, seconds(240));
  EXPECT_EQ(r.losses, 6u);  // the one that settled it, then each probe, all at 300 s
  EXPECT_EQ(r.probes, 5u);
  EXPECT_EQ(r.losses_after_settling, r.probes);
  // Each probe fails at the interval that failed before it: the wait doubles, from the failure
  // that settled the policy on.
  expect_probe_waits(s, losses_in(r),
                     {minutes(30), minutes(60), minutes(120), minutes(240), minutes(480)});
}

TEST(NatHeartbeatSim, ProbeWaitStopsDoublingAtProbeAfterMax) {
  NatHeartbeatScenario s = behind(minutes(5));
  s.probe_after_max = hours(2);
  s.duration = hours(8);
  s.keep_trace = true;
  const NatHeartbeatReport r = simulate_nat_heartbeat(s);
  expect_probe_waits(s, losses_in(r), {minutes(30), minutes(60), minutes(120), minutes(120)});
}

TEST(NatHeartbeatSim, NeverLosesOnceSettledWhenNoProbeIsDue) {
  NatHeartbeatScenario s = behind(minutes(5));
  s.probe_after = hours(48);
  const NatHeartbeatReport r = simulate_nat_heartbeat(s);
  EXPECT_EQ(r.interval, seconds(240));
  EXPECT_EQ(r.losses, 1u);
  EXPECT_EQ(r.losses_after_settling, 0u);
  EXPECT_EQ(r.probes, 0u);
  // From hour 1 on, one Ping every 240 s: 15 an hour.
  EXPECT_NEAR(r.wake_ups_per_hour_steady, 15.0, 0.05);
}

TEST(NatHeartbeatSim, ReachesTheMaximumUnderALongNatTimeoutWithoutLosses) {
  // 60 + 120 + ... + 540 = 2700 s of climbing, then 600 s for ever.
  const NatHeartbeatReport r = simulate_nat_heartbeat(behind(minutes(30)));
  EXPECT_EQ(r.interval, seconds(600));
  ASSERT_TRUE(r.settled_at.has_value());
  EXPECT_EQ(*r.settled_at, seconds(2700));
  EXPECT_EQ(r.losses, 0u);
  EXPECT_EQ(r.probes, 0u);
  EXPECT_DOUBLE_EQ(r.wake_ups_per_hour_steady, 6.0);
  EXPECT_EQ(r.wake_ups_first_hour, 11u);  // the connect and Pings at 60, 180, ..., 3300 s
}

TEST(NatHeartbeatSim, FixedIntervalBelowTheNatTimeoutWakesOncePerIntervalAndNeverLoses) {
  const NatHeartbeatReport r = simulate_nat_heartbeat(fixed(seconds(60), minutes(2)));
  EXPECT_EQ(r.interval, seconds(60));
  EXPECT_EQ(r.wake_ups_first_hour, 60u);  // the connect and 59 Pings
  EXPECT_DOUBLE_EQ(r.wake_ups_per_hour_steady, 60.0);
  EXPECT_EQ(r.losses, 0u);
  EXPECT_EQ(r.connects, 1u);
}

TEST(NatHeartbeatSim, FixedIntervalAboveTheNatTimeoutLosesEveryHeartbeat) {
  const NatHeartbeatReport r = simulate_nat_heartbeat(fixed(seconds(60), seconds(30)));
  EXPECT_GT(r.heartbeats, 1000u);
  EXPECT_EQ(r.losses, r.heartbeats);
  EXPECT_EQ(r.losses_after_settling, r.losses);
  // Every loss is followed by a reconnect, unless the day ended first.
  EXPECT_GE(r.connects, r.losses);
  EXPECT_LE(r.connects, r.losses + 1);
}

TEST(NatHeartbeatSim, AnIdlePeriodOfExactlyTheNatTimeoutLosesTheMapping) {
  const NatHeartbeatReport r = simulate_nat_heartbeat(fixed(seconds(60), seconds(60)));
  EXPECT_EQ(r.losses, r.heartbeats);
}

TEST(NatHeartbeatSim, StartingAboveTheNatTimeoutDescendsOneStepPerLoss) {
  // 600, 540, 480, 420, 360 and 300 are lost; 240 works.
  NatHeartbeatScenario s = behind(minutes(5));
  s.heartbeat = seconds(600);
  s.probe_after = hours(48);
  const NatHeartbeatReport r = simulate_nat_heartbeat(s);
  EXPECT_EQ(r.interval, seconds(240));
  EXPECT_EQ(r.losses, 6u);
  EXPECT_EQ(r.losses_after_settling, 0u);
}

TEST(NatHeartbeatSim, IntegrationTestScenarioSettlesAtFourSeconds) {
  // tests/integration/heartbeat_nat_test.cc, in simulated time: 1, 2, 3, 4 s work, 5 s is lost
  // behind a 4.5 s NAT (Ping at 15 s, noticed at 16 s, reconnected at 16.02 s).
  NatHeartbeatScenario s = behind(milliseconds(4500));
  s.heartbeat = seconds(1);
  s.heartbeat_min = seconds(1);
  s.heartbeat_max = seconds(20);
  s.heartbeat_step = seconds(1);
  s.probe_after = hours(48);
  s.response_timeout = milliseconds(1000);
  s.reconnect_delay = milliseconds(20);
  s.duration = hours(1);
  s.steady_from = minutes(1);
  const NatHeartbeatReport r = simulate_nat_heartbeat(s);
  EXPECT_EQ(r.interval, seconds(4));
  ASSERT_TRUE(r.settled_at.has_value());
  EXPECT_EQ(*r.settled_at, milliseconds(16'020));
  EXPECT_EQ(r.losses, 1u);
  EXPECT_EQ(r.losses_after_settling, 0u);
}

TEST(NatHeartbeatSim, CountsEveryPingAndEveryConnectAsAWakeUp) {
  NatHeartbeatScenario s = behind(minutes(2));
  s.keep_trace = true;
  const NatHeartbeatReport r = simulate_nat_heartbeat(s);
  EXPECT_EQ(r.wake_ups, r.heartbeats + r.connects);
  EXPECT_EQ(r.trace.size(), r.wake_ups);
  EXPECT_EQ(r.connects, r.losses + 1);  // no loss in the last 10.1 s of the day
  for (std::size_t i = 1; i < r.trace.size(); ++i) {
    EXPECT_LT(r.trace[i - 1].at, r.trace[i].at);
    // A lost Ping is followed by the reconnect, response timeout and backoff later.
    if (r.trace[i - 1].lost) {
      EXPECT_EQ(r.trace[i].kind, WakeUp::Kind::kConnect);
      EXPECT_EQ(r.trace[i].at - r.trace[i - 1].at, milliseconds(10'100));
    }
  }
}

// The client's own convergence simulation (client/src/heartbeat_simulation.h) counts heartbeats
// and failures only, and reconnects at once; with no response timeout and no backoff this one
// must see the very same heartbeats.
TEST(NatHeartbeatSim, AgreesWithTheClientsConvergenceSimulationWhenReconnectsTakeNoTime) {
  for (const seconds timeout : {seconds(120), seconds(300), seconds(1800)}) {
    NatHeartbeatScenario s = behind(timeout);
    s.response_timeout = milliseconds(0);
    s.reconnect_delay = milliseconds(0);
    s.duration = seconds(86'401);  // no Ping falls on the end, where the two count differently
    const NatHeartbeatReport mine = simulate_nat_heartbeat(s);

    detail::HeartbeatSettings settings;  // the client's defaults, as in NatHeartbeatScenario
    const detail::HeartbeatSimulationResult theirs =
        detail::simulate_heartbeat(settings, timeout, std::nullopt, seconds(86'401));
    EXPECT_EQ(mine.heartbeats, theirs.heartbeats) << timeout.count() << " s";
    EXPECT_EQ(mine.losses, theirs.failed_heartbeats) << timeout.count() << " s";
    EXPECT_EQ(mine.interval, theirs.settled_interval) << timeout.count() << " s";
  }
}

TEST(NatHeartbeatSim, RejectsAScenarioWithoutANatTimeoutOrSteadyState) {
  EXPECT_THROW((void)simulate_nat_heartbeat(behind(milliseconds(0))), std::invalid_argument);
  NatHeartbeatScenario s = behind(minutes(5));
  s.steady_from = s.duration;
  EXPECT_THROW((void)simulate_nat_heartbeat(s), std::invalid_argument);
}

}  // namespace
}  // namespace herald::hbsim
