#include "hbsim/nat_heartbeat_sim.h"

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <optional>
#include <stdexcept>

#include "heartbeat_policy.h"

namespace herald::hbsim {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Policy = detail::HeartbeatPolicy;

constexpr milliseconds kHour = std::chrono::hours(1);
constexpr milliseconds kMaxDuration = std::chrono::hours(24 * 366);

// As the client builds them from ClientOptions (client.cc, heartbeat_settings()): the bounds are
// widened to include the start.
detail::HeartbeatSettings policy_settings(const NatHeartbeatScenario& s) {
  detail::HeartbeatSettings p;
  p.initial = s.heartbeat;
  p.min = std::min(s.heartbeat_min, s.heartbeat);
  p.max = std::max(s.heartbeat_max, s.heartbeat);
  p.step = s.heartbeat_step;
  p.probe_after = s.probe_after;
  p.probe_after_max = s.probe_after_max;
  return p;
}

void validate(const NatHeartbeatScenario& s) {
  if (s.nat_idle_timeout <= milliseconds(0)) {
    throw std::invalid_argument("the NAT idle timeout must be positive");
  }
  if (s.duration <= milliseconds(0) || s.duration > kMaxDuration) {
    throw std::invalid_argument("the duration must be positive and at most 366 days");
  }
  if (s.steady_from < milliseconds(0) || s.steady_from >= s.duration) {
    throw std::invalid_argument("steady state must start before the end of the simulation");
  }
  if (s.heartbeat < seconds(1)) throw std::invalid_argument("the heartbeat must be at least 1 s");
}

// One wait between two wake-ups of a connection: what settling is judged on.
struct Wait {
  milliseconds begin{0};
  seconds length{0};
  bool worked = false;
  bool settled = false;  // the policy had settled when the wait began (always, in fixed mode)
};

// The simulated device: one connection at a time, its heartbeat decided by `policy_` (adaptive)
// or fixed. Fills the report's counters and records every wait.
class Device {
 public:
  Device(const NatHeartbeatScenario& s, NatHeartbeatReport& report)
      : s_(s), report_(report), policy_(policy_settings(s)) {}

  void run() {
    milliseconds t(0);
    for (;;) {
      connect(t);
      // Heartbeats of this connection until one finds the mapping gone or time runs out.
      const std::optional<milliseconds> lost_at = heartbeats();
      if (!lost_at) return;
      const milliseconds failed_at = *lost_at + s_.response_timeout;
      if (s_.adaptive) policy_.on_failure(interval_, time_point(failed_at));
      t = failed_at + s_.reconnect_delay;
      if (t >= s_.duration) return;
    }
  }

  [[nodiscard]] const std::vector<Wait>& waits() const { return waits_; }
  [[nodiscard]] std::uint64_t steady_wake_ups() const { return steady_wake_ups_; }

 private:
  static Policy::Clock::time_point time_point(milliseconds t) {
    return Policy::Clock::time_point{} + t;
  }

  void connect(milliseconds t) {
    wake(WakeUp{WakeUp::Kind::kConnect, t, seconds(0), false});
    ++report_.connects;
    // HelloOk: the server accepts what the Hello announced.
    begin_wait(t, s_.adaptive ? policy_.interval() : s_.heartbeat);
  }

  void begin_wait(milliseconds t, seconds interval) {
    wait_begin_ = t;
    interval_ = interval;
    wait_settled_ = !s_.adaptive || policy_.settled();
  }

  // Returns when the Ping that found the mapping gone was sent; nothing when the simulation ended
  // first.
  std::optional<milliseconds> heartbeats() {
    for (;;) {
      const milliseconds ping_at = wait_begin_ + interval_;
      if (ping_at >= s_.duration) return std::nullopt;
      const bool lost = interval_ >= s_.nat_idle_timeout;
      wake(WakeUp{WakeUp::Kind::kHeartbeat, ping_at, interval_, lost});
      ++report_.heartbeats;
      waits_.push_back(Wait{wait_begin_, interval_, !lost, wait_settled_});
      if (lost) {
        ++report_.losses;
        return ping_at;
      }
      seconds next = interval_;
      if (s_.adaptive) {
        // The Ping announced the next interval; its Pong tells the policy, which then asks for
        // exactly that.
        next = policy_.interval_after_success(interval_, time_point(ping_at));
        policy_.on_success(interval_, time_point(ping_at));
        assert(policy_.interval() == next);
      }
      begin_wait(ping_at, next);
    }
  }

  void wake(const WakeUp& w) {
    ++report_.wake_ups;
    if (w.at < kHour) ++report_.wake_ups_first_hour;
    if (w.at >= s_.steady_from) ++steady_wake_ups_;
    if (s_.keep_trace) report_.trace.push_back(w);
  }

  const NatHeartbeatScenario& s_;
  NatHeartbeatReport& report_;
  Policy policy_;
  seconds interval_{0};  // the wait in progress
  milliseconds wait_begin_{0};
  bool wait_settled_ = false;
  std::uint64_t steady_wake_ups_ = 0;
  std::vector<Wait> waits_;
};

}  // namespace

NatHeartbeatReport simulate_nat_heartbeat(const NatHeartbeatScenario& scenario) {
  validate(scenario);
  NatHeartbeatReport report;
  Device device(scenario, report);
  device.run();
  report.wake_ups_per_hour_steady = static_cast<double>(device.steady_wake_ups()) /
                                    std::chrono::duration<double, std::chrono::hours::period>(
                                        scenario.duration - scenario.steady_from)
                                        .count();

  const std::vector<Wait>& waits = device.waits();
  if (waits.empty()) {
    report.interval = scenario.adaptive ? policy_settings(scenario).initial : scenario.heartbeat;
    return report;
  }
  // The resting interval: the last one that worked, else the last one tried.
  const auto last_worked =
      std::find_if(waits.rbegin(), waits.rend(), [](const Wait& w) { return w.worked; });
  report.interval = last_worked != waits.rend() ? last_worked->length : waits.back().length;
  // Settled from the first wait of `interval` after which every wait is `interval` or a probe (a
  // longer wait begun with the policy settled). The climb's overshoot, begun before the policy
  // settled, is no probe.
  const auto at_rest = [&report](const Wait& w) {
    return w.length == report.interval || (w.length > report.interval && w.settled);
  };
  std::size_t first = waits.size();
  while (first > 0 && at_rest(waits[first - 1])) --first;
  while (first < waits.size() && waits[first].length != report.interval) ++first;
  if (first < waits.size()) {
    report.settled_at = waits[first].begin;
    for (std::size_t i = first; i < waits.size(); ++i) {
      if (waits[i].length > report.interval) ++report.probes;
      if (!waits[i].worked) ++report.losses_after_settling;
    }
  }
  return report;
}

}  // namespace herald::hbsim
