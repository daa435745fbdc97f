// herald-heartbeat-convergence: how much the server's heartbeat hint shortens the adaptive
// heartbeat's convergence (docs/protocol.md section 4), in simulated time with the client's real
// HeartbeatPolicy (client/src/heartbeat_simulation.h) and the server's real HeartbeatAdvisor.
//
// For each scenario (a carrier whose NAT drops idle mappings after T, the same T for every device
// or spread evenly over a range):
//   1. --learners devices start cold (the client's defaults), converge, and report the interval
//      they settled on to a HeartbeatAdvisor, as their next Hello would;
//   2. --newcomers devices start cold, as many start from the advisor's hint (as they would from
//      GET /v1/endpoints?network=) and lengthen from there (kStart), and as many hold the hint
//      until their first probe (kHold); each is simulated until it converged (24 h at most).
// It prints, cold / start / hold, the mean failed heartbeats, heartbeats (radio wake-ups) and
// minutes until convergence, and each hinted figure over the cold one. docs/benchmarks.md holds
// the figures.
//
// usage: herald-heartbeat-convergence [--learners=20] [--newcomers=100]
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "access/heartbeat_advisor.h"
#include "heartbeat_simulation.h"

namespace {

using herald::detail::ConvergenceSummary;
using herald::detail::HeartbeatSettings;
using herald::detail::HeartbeatSimulationResult;
using Suggestion = herald::detail::HeartbeatPolicy::Suggestion;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr std::string_view kNetwork = "carrier:sim";
constexpr auto kHorizon = std::chrono::hours(24);

struct Scenario {
  const char* name;
  seconds nat_low;   // the NAT timeouts of the population, spread evenly over [low, high]
  seconds nat_high;  // equal to nat_low: every device alike
  seconds max;       // the policy's max
  std::uint32_t percentile;
};

// The i-th of n NAT timeouts spread evenly over [low, high]: the midpoints of n equal slices.
seconds nat_timeout(const Scenario& s, std::size_t i, std::size_t n) {
  const auto span = (s.nat_high - s.nat_low).count();
  return s.nat_low +
         seconds(span * static_cast<std::int64_t>(2 * i + 1) / static_cast<std::int64_t>(2 * n));
}

HeartbeatSettings client_defaults(seconds max) {
  HeartbeatSettings h;  // ClientOptions' defaults
  h.initial = seconds(60);
  h.min = seconds(30);
  h.max = max;
  h.step = seconds(60);
  h.probe_after = minutes(30);
  return h;
}

ConvergenceSummary run(const Scenario& s, std::size_t n, std::optional<seconds> start,
                       Suggestion use = Suggestion::kStart) {
  std::vector<HeartbeatSimulationResult> results;
  for (std::size_t i = 0; i < n; ++i) {
    results.push_back(herald::detail::simulate_heartbeat(
        client_defaults(s.max), nat_timeout(s, i, n), start, kHorizon, use));
  }
  return herald::detail::summarise(results);
}

// "cold / start / hold (start/cold, hold/cold)" with the given precision; ratios are "-" when the
// cold figure is 0.
std::string compare(double cold, double start, double hold, int precision) {
  char text[128];
  if (cold == 0) {
    std::snprintf(text, sizeof text, "%.*f / %.*f / %.*f (-)", precision, cold, precision, start,
                  precision, hold);
  } else {
    std::snprintf(text, sizeof text, "%.*f / %.*f / %.*f (%.2f, %.2f)", precision, cold, precision,
                  start, precision, hold, start / cold, hold / cold);
  }
  return text;
}

std::optional<std::size_t> flag(std::string_view arg, std::string_view name) {
  if (!arg.starts_with(name)) return std::nullopt;
  arg.remove_prefix(name.size());
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), value);
  if (ec != std::errc() || end != arg.data() + arg.size() || value == 0 || value > 100'000) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t learners = 20;
  std::size_t newcomers = 100;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (auto v = flag(arg, "--learners=")) {
      learners = *v;
    } else if (auto w = flag(arg, "--newcomers=")) {
      newcomers = *w;
    } else {
      std::fprintf(stderr,
                   "usage: herald-heartbeat-convergence [--learners=20] [--newcomers=100]\n"
                   "  (each 1..100000)\n");
      return 2;
    }
  }

  const Scenario scenarios[] = {
      {"2 min", minutes(2), minutes(2), seconds(600), 25},
      {"5 min", minutes(5), minutes(5), seconds(600), 25},
      {"30 min", minutes(30), minutes(30), seconds(600), 25},
      {"30 min, max 30 min", minutes(30), minutes(30), seconds(1800), 25},
      {"4..6 min", minutes(4), minutes(6), seconds(600), 25},
      {"4..6 min, p75 hint", minutes(4), minutes(6), seconds(600), 75},
      {"2..8 min", minutes(2), minutes(8), seconds(600), 25},
      {"2..8 min, p50 hint", minutes(2), minutes(8), seconds(600), 50},
      {"2..8 min, p75 hint", minutes(2), minutes(8), seconds(600), 75},
  };
  std::printf(
      "%zu learners; then %zu newcomers each cold, from the hint (start) and holding the hint "
      "(hold); means per device; every device converged unless the exit status is 1\n\n",
      learners, newcomers);
  std::printf(
      "| NAT idle timeout | hint | failed heartbeats to converge: cold / start / hold (ratios) | "
      "heartbeats to converge | minutes to converge |\n"
      "|---|---|---|---|---|\n");
  int status = 0;
  for (const auto& s : scenarios) {
    herald::access::HeartbeatAdvisorOptions options;
    options.percentile = s.percentile;
    options.max_devices_per_network = std::max<std::size_t>(learners, 1);
    herald::access::HeartbeatAdvisor advisor(options);
    for (std::size_t i = 0; i < learners; ++i) {
      const auto r = herald::detail::simulate_heartbeat(
          client_defaults(s.max), nat_timeout(s, i, learners), std::nullopt, kHorizon);
      advisor.record(kNetwork, "learner-" + std::to_string(i),
                     static_cast<std::uint32_t>(r.settled_interval.count()), 0);
    }
    const auto hint = advisor.hint(kNetwork, 0);
    std::optional<seconds> start;
    if (hint) start = seconds(hint->start_s);
    const auto cold = run(s, newcomers, std::nullopt);
    const auto started = run(s, newcomers, start, Suggestion::kStart);
    const auto held = run(s, newcomers, start, Suggestion::kHold);
    if (cold.converged != newcomers || started.converged != newcomers ||
        held.converged != newcomers) {
      status = 1;
    }
    const std::string hint_text = hint ? std::to_string(hint->start_s) + " s (p" +
                                             std::to_string(s.percentile) + " of " +
                                             std::to_string(hint->reports) + ")"
                                       : "none";
    std::printf(
        "| %s | %s | %s | %s | %s |\n", s.name, hint_text.c_str(),
        compare(cold.failures_to_converge, started.failures_to_converge, held.failures_to_converge,
                2)
            .c_str(),
        compare(cold.heartbeats_to_converge, started.heartbeats_to_converge,
                held.heartbeats_to_converge, 1)
            .c_str(),
        compare(cold.minutes_to_converge, started.minutes_to_converge, held.minutes_to_converge, 1)
            .c_str());
  }
  return status;
}
