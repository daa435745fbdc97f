#include "heartbeat_simulation.h"

#include <string_view>

namespace herald::detail {

namespace {

using std::chrono::seconds;

constexpr std::string_view kNetwork = "sim";

bool at_limit(const HeartbeatPolicy& p, seconds nat_timeout) {
  const auto& s = p.settings();
  if (nat_timeout > s.max) return p.interval() == s.max && p.last_good() == s.max;
  return p.settled() && p.interval() < nat_timeout && p.interval() >= nat_timeout - s.step;
}

}  // namespace

HeartbeatSimulationResult simulate_heartbeat(const HeartbeatSettings& settings, seconds nat_timeout,
                                             std::optional<seconds> suggested_start,
                                             seconds duration, HeartbeatPolicy::Suggestion use) {
  HeartbeatPolicy policy(settings);
  policy.set_network(kNetwork);
  HeartbeatPolicy::Clock::time_point now;  // the epoch: simulated time starts at 0
  if (suggested_start) policy.suggest(kNetwork, *suggested_start, now, use);

  HeartbeatSimulationResult r;
  const auto end = now + duration;
  for (;;) {
    const seconds idle = policy.interval();
    if (now + idle > end) break;
    now += idle;
    ++r.heartbeats;
    if (idle < nat_timeout) {
      policy.on_success(idle, now);
    } else {
      ++r.failed_heartbeats;
      policy.on_failure(idle, now);
    }
    if (!r.converged && at_limit(policy, nat_timeout)) {
      r.converged = true;
      r.heartbeats_to_converge = r.heartbeats;
      r.failures_to_converge = r.failed_heartbeats;
      r.time_to_converge = std::chrono::duration_cast<seconds>(now.time_since_epoch());
    }
  }
  if (!r.converged) {
    r.heartbeats_to_converge = r.heartbeats;
    r.failures_to_converge = r.failed_heartbeats;
    r.time_to_converge = std::chrono::duration_cast<seconds>(now.time_since_epoch());
  }
  r.interval = policy.interval();
  r.settled_interval = policy.settled_interval();
  return r;
}

ConvergenceSummary summarise(std::span<const HeartbeatSimulationResult> results) {
  ConvergenceSummary s;
  s.devices = results.size();
  if (results.empty()) return s;
  double minutes = 0;
  for (const auto& r : results) {
    s.failures_to_converge += static_cast<double>(r.failures_to_converge);
    s.heartbeats_to_converge += static_cast<double>(r.heartbeats_to_converge);
    s.failed_heartbeats += static_cast<double>(r.failed_heartbeats);
    s.heartbeats += static_cast<double>(r.heartbeats);
    if (r.converged) {
      ++s.converged;
      minutes += static_cast<double>(r.time_to_converge.count()) / 60.0;
    }
  }
  const auto n = static_cast<double>(results.size());
  s.failures_to_converge /= n;
  s.heartbeats_to_converge /= n;
  s.failed_heartbeats /= n;
  s.heartbeats /= n;
  if (s.converged != 0) s.minutes_to_converge = minutes / static_cast<double>(s.converged);
  return s;
}

}  // namespace herald::detail
