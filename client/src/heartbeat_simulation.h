// Heartbeat simulation: one device running the client's real HeartbeatPolicy behind a NAT that
// drops a mapping left idle longer than its timeout, in simulated time (no clock, no sleep, no
// socket). Used to measure how fast the adaptive heartbeat converges, cold and from the server's
// suggestion (bench/heartbeat_convergence.cc, docs/benchmarks.md), and by herald-hbsim.
//
// The model, one heartbeat after another:
//
//   t ──idle = policy.interval()──▶ ping ── idle <  nat_timeout: Pong ──▶ on_success(idle, t)
//                                         └─ idle >= nat_timeout: lost ──▶ on_failure(idle, t),
//                                                                          reconnect at once
//
// An idle period of exactly nat_timeout loses the mapping (where a real NAT's timer fires within
// the second is unknown; this is the conservative side, as in herald-hbsim's model).
// A heartbeat is one radio wake-up; a failed one also costs a reconnect (counted, not timed: the
// model reconnects instantly and the next idle period starts at the failure). Convergence is the
// moment the interval reaches the device's own limit and stays there: settled (a longer interval
// failed) below nat_timeout by at most one step, or at the policy's max once max worked when the
// NAT allows it. A device whose NAT times out below the policy's min never converges.
//
// Pure functions of their arguments: thread-safe, deterministic.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>

#include "heartbeat_policy.h"

namespace herald::detail {

struct HeartbeatSimulationResult {
  // Over the whole simulated duration.
  std::uint64_t heartbeats = 0;         // radio wake-ups for heartbeats
  std::uint64_t failed_heartbeats = 0;  // each one a lost connection and a reconnect
  // Until convergence (equal to the totals when the device did not converge).
  bool converged = false;
  std::uint64_t heartbeats_to_converge = 0;
  std::uint64_t failures_to_converge = 0;
  std::chrono::seconds time_to_converge{0};
  // The interval at the end, and what the device would report in Hello.settled_heartbeat_s.
  std::chrono::seconds interval{0};
  std::chrono::seconds settled_interval{0};
};

// Simulates `duration` of one device with `settings` behind a NAT with `nat_timeout`, starting
// cold (from settings.initial) or, when `suggested_start` is given, from that suggestion used as
// `use` says (HeartbeatPolicy::suggest). Heartbeats run until the first one that would end after
// `duration`.
[[nodiscard]] HeartbeatSimulationResult simulate_heartbeat(
    const HeartbeatSettings& settings, std::chrono::seconds nat_timeout,
    std::optional<std::chrono::seconds> suggested_start, std::chrono::seconds duration,
    HeartbeatPolicy::Suggestion use = HeartbeatPolicy::Suggestion::kStart);

// Means over a population of simulated devices.
struct ConvergenceSummary {
  std::size_t devices = 0;
  std::size_t converged = 0;
  double failures_to_converge = 0;    // mean
  double heartbeats_to_converge = 0;  // mean
  double minutes_to_converge = 0;     // mean, over the devices that converged
  double failed_heartbeats = 0;       // mean, whole duration
  double heartbeats = 0;              // mean, whole duration
};

[[nodiscard]] ConvergenceSummary summarise(std::span<const HeartbeatSimulationResult> results);

}  // namespace herald::detail
