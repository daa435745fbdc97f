// simulate_nat_heartbeat: one device's heartbeat behind a carrier NAT, over simulated time, with
// the client's real HeartbeatPolicy (client/src/heartbeat_policy.h) making every decision. What
// herald-hbsim prints, and what docs/heartbeat.md and docs/benchmarks.md report.
//
// The model (docs/heartbeat.md, "The model"), on a simulated clock that starts at 0 with a
// connect:
//
//   connect ─▶ wait I ─▶ Ping ─┬─ idle I < T: Pong at once; the next wait is what the Ping
//      ▲                       │   announced (the policy's interval_after_success)
//      │                       └─ idle I ≥ T: the NAT forgot the mapping, the Ping is lost;
//      │                           after response_timeout the policy hears on_failure(I)
//      └──── reconnect_delay ◀─────┘  (the connection is lost: count it)
//
//   - Wake-ups: every Ping is one radio wake-up, and every connect (the handshake) is one. A loss
//     costs two: the lost Ping and the reconnect (detecting the loss is a timer, not the radio).
//   - The idle period a Ping ends is the whole interval: the round trip is taken as 0, the Pong
//     arrives with the Ping, nothing else crosses the connection (no messages), and the NAT
//     never moves. An idle period of exactly T loses the mapping: where a real NAT's timer fires
//     within the second is unknown, so the simulation takes the conservative side (herald-natsim
//     itself drops only past T).
//   - The server accepts every interval the client announces (its range contains the client's),
//     and its own idle deadline (1.5 x interval + grace) never ends a connection first.
//   - A reconnect after a lost connection waits `reconnect_delay`: the client's backoff after a
//     connection that reached HelloOk draws from [0, backoff_initial], so backoff_initial is the
//     worst case. The handshake itself takes no time.
//
// Adaptive mode builds the policy's settings from the scenario as the client builds them from
// ClientOptions (min and max widened to include the start); fixed mode keeps `heartbeat` for ever.
//
// Pure computation: no I/O, no clock of its own; the same scenario always gives the same report.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace herald::hbsim {

// What is simulated. Defaults: the client's defaults (ClientOptions) behind a 5-minute NAT, for
// 24 hours.
struct NatHeartbeatScenario {
  // The NAT drops a mapping idle for this long (or longer). Positive.
  std::chrono::milliseconds nat_idle_timeout{std::chrono::minutes(5)};
  // ClientOptions::adaptive_heartbeat. Off: a Ping every `heartbeat`, whatever happens.
  bool adaptive = true;
  // ClientOptions::heartbeat_s: where the adaptive heartbeat starts, or the fixed interval.
  std::chrono::seconds heartbeat{60};
  std::chrono::seconds heartbeat_min{30};                        // ClientOptions::heartbeat_min_s
  std::chrono::seconds heartbeat_max{600};                       // ClientOptions::heartbeat_max_s
  std::chrono::seconds heartbeat_step{60};                       // ClientOptions::heartbeat_step_s
  std::chrono::seconds probe_after{std::chrono::minutes(30)};    // heartbeat_probe_after
  std::chrono::seconds probe_after_max{std::chrono::hours(24)};  // heartbeat_probe_after_max
  std::chrono::milliseconds response_timeout{10000};             // ClientOptions::response_timeout
  std::chrono::milliseconds reconnect_delay{100};                // ClientOptions::backoff_initial
  std::chrono::milliseconds duration{std::chrono::hours(24)};
  // Steady state is measured from here to `duration`; less than `duration`.
  std::chrono::milliseconds steady_from{std::chrono::hours(1)};
  bool keep_trace = false;  // fill NatHeartbeatReport::trace
};

// One radio wake-up.
struct WakeUp {
  enum class Kind { kConnect, kHeartbeat };
  Kind kind = Kind::kConnect;
  std::chrono::milliseconds at{0};  // simulated time
  std::chrono::seconds idle{0};     // kHeartbeat: the idle period the Ping ended
  bool lost = false;                // kHeartbeat: the mapping was gone, so the connection was lost
};

struct NatHeartbeatReport {
  // The interval the heartbeat settled on: the last one that worked (or, if none ever worked,
  // the last one tried). In fixed mode, the fixed interval.
  std::chrono::seconds interval{0};
  // When the device started waiting `interval` for good: from then on every wait is `interval`,
  // except probes. Nothing when no heartbeat happened.
  std::optional<std::chrono::milliseconds> settled_at;
  std::uint64_t wake_ups = 0;             // heartbeats + connects
  std::uint64_t heartbeats = 0;           // Pings sent, lost ones included
  std::uint64_t connects = 0;             // the first connect and every reconnect
  std::uint64_t wake_ups_first_hour = 0;  // in [0, 1 h), the first connect included
  double wake_ups_per_hour_steady = 0;    // in [steady_from, duration), per hour
  std::uint64_t losses = 0;               // connections lost (= lost Pings)
  std::uint64_t losses_after_settling = 0;
  // Waits longer than `interval` begun once the policy had settled: the policy's probes. At the
  // NAT's limit each is lost, and the policy backs off: 30 min, 1 h, 2 h, ... up to
  // probe_after_max between them (client/src/heartbeat_policy.h).
  std::uint64_t probes = 0;
  std::vector<WakeUp> trace;  // every wake-up in order, when NatHeartbeatScenario::keep_trace
};

// Runs `scenario`. Throws std::invalid_argument when nat_idle_timeout or duration is not
// positive, steady_from is not in [0, duration), heartbeat is below 1 s, or duration is above 366
// days. heartbeat_min and heartbeat_step below 1 s count as 1 s, as in the client.
[[nodiscard]] NatHeartbeatReport simulate_nat_heartbeat(const NatHeartbeatScenario& scenario);

}  // namespace herald::hbsim
