// herald-hbsim: how the client's heartbeat fares behind a carrier NAT that forgets idle
// connections: the interval it settles on, the radio wake-ups per hour it costs and the
// connections it loses, over simulated time with the client's real HeartbeatPolicy. See
// docs/heartbeat.md.
//
//   herald-hbsim --idle-timeout-s=300                 # the client's defaults, adaptive
//   herald-hbsim --idle-timeout-s=300 --fixed --heartbeat-s=60
//
// Pure computation: a 24-hour run takes milliseconds.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "common/flag_reader.h"
#include "hbsim/nat_heartbeat_sim.h"

namespace {

using herald::hbsim::NatHeartbeatReport;
using herald::hbsim::NatHeartbeatScenario;
using herald::hbsim::WakeUp;
using herald::tools::FlagReader;
using herald::tools::parse_number;
using herald::tools::UsageError;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage =
    R"(usage: herald-hbsim (--idle-timeout-s=T | --idle-timeout-ms=T) [--fixed]
                    [--heartbeat-s=60] [--heartbeat-min-s=30] [--heartbeat-max-s=600]
                    [--heartbeat-step-s=60] [--heartbeat-probe-after-s=1800]
                    [--heartbeat-probe-after-max-s=86400]
                    [--response-timeout-ms=10000] [--backoff-ms=100]
                    [--duration-h=24] [--steady-from-h=1] [--json] [--trace]

Simulates one device behind a carrier NAT that forgets a connection idle for T or longer, with
the client library's own adaptive heartbeat policy, and reports the interval it settles on, the
radio wake-ups it costs (every Ping and every connect is one) and the connections it loses.
Defaults are the client's (ClientOptions). Flags take their value after '=' or as the next
argument. The model: docs/heartbeat.md.

  --idle-timeout-s=T, --idle-timeout-ms=T
                             the NAT's idle timeout (as herald-natsim --idle-timeout-ms)
  --fixed                    adaptive heartbeat off: a Ping every --heartbeat-s
  --heartbeat-s=N            where the adaptive heartbeat starts, or the fixed interval
  --heartbeat-min-s=N        the adaptive heartbeat's bounds and step
  --heartbeat-max-s=N
  --heartbeat-step-s=N
  --heartbeat-probe-after-s=N
                             settled this long, the adaptive heartbeat tries one step longer
  --heartbeat-probe-after-max-s=N
                             the longest wait between probes: each probe that fails at the
                             interval that failed last doubles the wait, up to N
  --response-timeout-ms=N    how long a lost Ping takes to be noticed
  --backoff-ms=N             the reconnect delay after a lost connection
  --duration-h=N             hours simulated (default 24)
  --steady-from-h=N          steady state is measured from this hour to the end (default 1)
  --json                     one JSON object instead of the table
  --trace                    also every wake-up, one a line (with --json: a "trace" array)

Exit status 2: bad arguments.
)";

struct Args {
  NatHeartbeatScenario scenario;
  bool json = false;
};

constexpr std::int64_t kDayS = 86'400;

Args parse_args(int argc, char** argv) {
  Args a;
  NatHeartbeatScenario& s = a.scenario;
  bool has_timeout = false;
  FlagReader flags(argc, argv);
  while (flags.next()) {
    const std::string_view flag = flags.flag();
    auto value = [&] { return flags.value(); };
    auto secs = [&] { return seconds(parse_number<std::int64_t>(flag, value(), 0, 7 * kDayS)); };
    auto millis = [&] {
      return milliseconds(parse_number<std::int64_t>(flag, value(), 0, 7 * kDayS * 1000));
    };
    if (flag == "--help" || flag == "-h") {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      std::exit(kExitOk);
    } else if (flag == "--idle-timeout-s") {
      s.nat_idle_timeout = seconds(parse_number<std::int64_t>(flag, value(), 1, 7 * kDayS));
      has_timeout = true;
    } else if (flag == "--idle-timeout-ms") {
      s.nat_idle_timeout =
          milliseconds(parse_number<std::int64_t>(flag, value(), 1, 7 * kDayS * 1000));
      has_timeout = true;
    } else if (flag == "--fixed" && !flags.has_inline_value()) {
      s.adaptive = false;
    } else if (flag == "--heartbeat-s") {
      s.heartbeat = seconds(parse_number<std::int64_t>(flag, value(), 1, kDayS));
    } else if (flag == "--heartbeat-min-s") {
      s.heartbeat_min = secs();
    } else if (flag == "--heartbeat-max-s") {
      s.heartbeat_max = secs();
    } else if (flag == "--heartbeat-step-s") {
      s.heartbeat_step = secs();
    } else if (flag == "--heartbeat-probe-after-s") {
      s.probe_after = secs();
    } else if (flag == "--heartbeat-probe-after-max-s") {
      s.probe_after_max = secs();
    } else if (flag == "--response-timeout-ms") {
      s.response_timeout = millis();
    } else if (flag == "--backoff-ms") {
      s.reconnect_delay = millis();
    } else if (flag == "--duration-h") {
      s.duration = std::chrono::hours(parse_number<std::int64_t>(flag, value(), 1, 24 * 366));
    } else if (flag == "--steady-from-h") {
      s.steady_from = std::chrono::hours(parse_number<std::int64_t>(flag, value(), 0, 24 * 366));
    } else if (flag == "--json" && !flags.has_inline_value()) {
      a.json = true;
    } else if (flag == "--trace" && !flags.has_inline_value()) {
      s.keep_trace = true;
    } else {
      throw UsageError("unknown argument \"" + std::string(flags.argument()) + "\"");
    }
  }
  if (!has_timeout) throw UsageError("--idle-timeout-s or --idle-timeout-ms is required");
  if (s.steady_from >= s.duration) throw UsageError("--steady-from-h must be below --duration-h");
  return a;
}

double to_s(milliseconds t) { return std::chrono::duration<double>(t).count(); }

// "300 s", or "4.5 s" when T is not a whole number of seconds.
std::string seconds_text(milliseconds t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, t.count() % 1000 == 0 ? "%.0f s" : "%.3g s", to_s(t));
  return buf;
}

std::string settings_text(const NatHeartbeatScenario& s) {
  std::string text;
  if (s.adaptive) {
    text = "adaptive, start " + std::to_string(s.heartbeat.count()) + " s, step " +
           std::to_string(s.heartbeat_step.count()) + " s, range " +
           std::to_string(std::min(s.heartbeat_min, s.heartbeat).count()) + ".." +
           std::to_string(std::max(s.heartbeat_max, s.heartbeat).count()) + " s, probe after " +
           std::to_string(s.probe_after.count()) + " s (backing off to " +
           std::to_string(std::max(s.probe_after_max, s.probe_after).count()) + " s)";
  } else {
    text = "fixed, every " + std::to_string(s.heartbeat.count()) + " s";
  }
  return text + "; a lost Ping noticed after " + std::to_string(s.response_timeout.count()) +
         " ms, reconnect after " + std::to_string(s.reconnect_delay.count()) + " ms";
}

void print_row(std::string_view label, const std::string& value) {
  std::printf("  %-34.*s %s\n", static_cast<int>(label.size()), label.data(), value.c_str());
}

std::string number(double value, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

void print_table(const NatHeartbeatScenario& s, const NatHeartbeatReport& r) {
  const auto hours = std::chrono::duration_cast<std::chrono::hours>(s.duration).count();
  const auto steady_from_h = std::chrono::duration_cast<std::chrono::hours>(s.steady_from).count();
  std::printf("herald-hbsim: %lld h simulated behind a NAT that forgets a connection idle for %s\n",
              static_cast<long long>(hours), seconds_text(s.nat_idle_timeout).c_str());
  std::printf("heartbeat: %s\n\n", settings_text(s).c_str());
  for (const WakeUp& w : r.trace) {
    if (w.kind == WakeUp::Kind::kConnect) {
      std::printf("  %12.3f s  connect\n", to_s(w.at));
    } else {
      std::printf("  %12.3f s  ping after %lld s%s\n", to_s(w.at),
                  static_cast<long long>(w.idle.count()), w.lost ? ": lost" : "");
    }
  }
  if (!r.trace.empty()) std::printf("\n");
  print_row("interval reached", std::to_string(r.interval.count()) + " s");
  print_row("time to settle", r.settled_at ? number(to_s(*r.settled_at), 1) + " s (" +
                                                 number(to_s(*r.settled_at) / 60, 1) + " min)"
                                           : std::string("never"));
  print_row("wake-ups in the first hour", std::to_string(r.wake_ups_first_hour));
  print_row(
      "wake-ups per hour, hours " + std::to_string(steady_from_h + 1) + "-" + std::to_string(hours),
      number(r.wake_ups_per_hour_steady, 2));
  print_row("lost connections", std::to_string(r.losses) + " (" +
                                    std::to_string(r.losses_after_settling) +
                                    " after settling; probes " + std::to_string(r.probes) + ")");
  print_row("wake-ups in total", std::to_string(r.wake_ups) + " (pings " +
                                     std::to_string(r.heartbeats) + ", connects " +
                                     std::to_string(r.connects) + ")");
}

void print_json(const NatHeartbeatScenario& s, const NatHeartbeatReport& r) {
  boost::json::object settings{
      {"adaptive", s.adaptive},
      {"heartbeat_s", s.heartbeat.count()},
      {"heartbeat_min_s", s.heartbeat_min.count()},
      {"heartbeat_max_s", s.heartbeat_max.count()},
      {"heartbeat_step_s", s.heartbeat_step.count()},
      {"heartbeat_probe_after_s", s.probe_after.count()},
      {"heartbeat_probe_after_max_s", s.probe_after_max.count()},
      {"response_timeout_ms", s.response_timeout.count()},
      {"backoff_ms", s.reconnect_delay.count()},
  };
  boost::json::object out{
      {"idle_timeout_ms", s.nat_idle_timeout.count()},
      {"settings", std::move(settings)},
      {"duration_h", std::chrono::duration_cast<std::chrono::hours>(s.duration).count()},
      {"steady_from_h", std::chrono::duration_cast<std::chrono::hours>(s.steady_from).count()},
      {"interval_s", r.interval.count()},
      {"settled_at_ms", nullptr},
      {"wake_ups_first_hour", r.wake_ups_first_hour},
      {"wake_ups_per_hour_steady", r.wake_ups_per_hour_steady},
      {"losses", r.losses},
      {"losses_after_settling", r.losses_after_settling},
      {"probes", r.probes},
      {"wake_ups", r.wake_ups},
      {"heartbeats", r.heartbeats},
      {"connects", r.connects},
  };
  if (r.settled_at) out["settled_at_ms"] = r.settled_at->count();
  if (s.keep_trace) {
    boost::json::array trace;
    for (const WakeUp& w : r.trace) {
      boost::json::object item{{"at_ms", w.at.count()}};
      if (w.kind == WakeUp::Kind::kConnect) {
        item["kind"] = "connect";
      } else {
        item["kind"] = "ping";
        item["idle_s"] = w.idle.count();
        item["lost"] = w.lost;
      }
      trace.push_back(std::move(item));
    }
    out["trace"] = std::move(trace);
  }
  const std::string text = boost::json::serialize(out);
  std::printf("%s\n", text.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  NatHeartbeatReport report;
  try {
    args = parse_args(argc, argv);
    report = herald::hbsim::simulate_nat_heartbeat(args.scenario);
  } catch (const std::exception& e) {
    // A bad command line, or a scenario the simulation refuses (std::invalid_argument).
    std::fprintf(stderr, "herald-hbsim: %s\n\n%.*s", e.what(), static_cast<int>(kUsage.size()),
                 kUsage.data());
    return kExitUsage;
  }
  if (args.json) {
    print_json(args.scenario, report);
  } else {
    print_table(args.scenario, report);
  }
  return kExitOk;
}
