// herald-crashloop: kill -9 heraldd at random moments during a push load, again and again, then
// check that nothing it acknowledged was lost and nothing reached an app twice
// (docs/crash-testing.md). It starts heraldd itself (from the same build) on loopback, --devices
// devices through the real client library (file cursor stores, as phones keep them), and
// --senders careful senders at --rate messages per second in all: each message for one device,
// posted with an idempotency key and retried while heraldd is down. Each cycle waits a random time
// in [--min-up-ms, --max-up-ms] after heraldd is ready, kills it (SIGKILL) and restarts it on the
// same data directory and ports. After the last cycle the senders stop, one last message per device
// ("fence") is sent, every device drains up to its fence, and the DeliveryChecker reports.
//
// usage: herald-crashloop [--cycles=20] [--devices=8] [--senders=4] [--rate=200] [--seed=N]
//                         [--min-up-ms=200] [--max-up-ms=1500] [--give-up-ms=10000]
//                         [--drain-s=60] [--json]
// Exits 0 when the checker found no violation, 1 when it found one or a device did not drain,
// 2 on bad usage. The seed is printed; the same seed gives the same kill moments and targets (the
// timing of a real process, and so what is in flight at each kill, still varies).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "checked_device.h"
#include "common/flag_reader.h"
#include "delivery_checker.h"
#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "sender.h"
#include "test_device.h"

namespace {

using namespace herald;
using namespace herald::testing;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  int cycles = 20;
  int devices = 8;
  int senders = 4;
  int rate = 200;  // messages per second over all senders
  std::uint64_t seed = 0;
  bool seeded = false;
  int min_up_ms = 200;
  int max_up_ms = 1500;
  int give_up_ms = 10'000;  // a sender's retries of one message, past restarts
  int drain_s = 60;
  bool json = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "herald-crashloop: " << why << "\n"
            << "usage: herald-crashloop [--cycles=N] [--devices=N] [--senders=N] [--rate=N] "
               "[--seed=N] [--min-up-ms=N] [--max-up-ms=N] [--give-up-ms=N] [--drain-s=N] "
               "[--json]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  const std::pair<std::string_view, int*> ints[] = {
      {"--cycles", &o.cycles},         {"--devices", &o.devices},
      {"--senders", &o.senders},       {"--rate", &o.rate},
      {"--min-up-ms", &o.min_up_ms},   {"--max-up-ms", &o.max_up_ms},
      {"--give-up-ms", &o.give_up_ms}, {"--drain-s", &o.drain_s},
  };
  try {
    tools::FlagReader flags(argc, argv);
    while (flags.next()) {
      const auto flag = flags.flag();
      if (flag == "--json" && !flags.has_inline_value()) {
        o.json = true;
      } else if (flag == "--seed") {
        o.seed = tools::parse_number<std::uint64_t>(flag, flags.value(), 0, UINT64_MAX);
        o.seeded = true;
      } else {
        const auto* option = std::find_if(std::begin(ints), std::end(ints),
                                          [&](const auto& entry) { return entry.first == flag; });
        if (option == std::end(ints)) {
          usage("unknown argument \"" + std::string(flags.argument()) + "\"");
        }
        *option->second = tools::parse_number(flag, flags.value(), 0, 100'000'000);
      }
    }
  } catch (const tools::UsageError& e) {
    usage(e.what());
  }
  if (o.devices < 1 || o.senders < 1 || o.rate < 1) usage("--devices, --senders, --rate >= 1");
  if (o.max_up_ms < o.min_up_ms) usage("--max-up-ms must not be below --min-up-ms");
  if (!o.seeded) o.seed = std::random_device{}();
  return o;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(rank, v.size() - 1)];
}

int run(const Options& o) {
  const auto started = Clock::now();
  const auto dir = make_temp_dir("herald-crashloop");
  HeraldServer server;
  Sender sender(server.http_port());
  DeliveryChecker checker;
  EventLoop loop;
  std::vector<std::string> ids;
  std::vector<std::unique_ptr<CheckedDevice>> devices;
  for (int i = 0; i < o.devices; ++i) {
    ids.push_back("loop-" + std::to_string(i));
    const std::string token = sender.register_device(kNewsApp, ids.back());
    devices.push_back(
        std::make_unique<CheckedDevice>(loop, server, ids.back(), token, dir, checker));
  }
  for (auto& d : devices) {
    if (!d->wait_connected(30s)) {
      std::cerr << "herald-crashloop: a device did not connect\n";
      return 1;
    }
  }

  // The senders: each paces its share of --rate, one message at a time, retrying it (same
  // idempotency key) while heraldd is down, and records the final outcome.
  std::atomic<std::int64_t> retries = 0;
  std::vector<std::jthread> senders;
  const auto period = std::chrono::microseconds(1'000'000LL * o.senders / o.rate);
  for (int s = 0; s < o.senders; ++s) {
    senders.emplace_back([&, s](std::stop_token stop) {
      Sender careful(server.http_port());
      std::mt19937_64 rng(o.seed + 1 + static_cast<std::uint64_t>(s));
      std::uniform_int_distribution<std::size_t> pick(0, ids.size() - 1);
      auto next = Clock::now();
      for (std::int64_t n = 0; !stop.stop_requested(); ++n) {
        const std::string& device = ids[pick(rng)];
        const std::string key = "s" + std::to_string(s) + "-" + std::to_string(n);
        const PushOutcome answer = careful.post_message_until_answered(
            kNewsApp, checked_message_body(device, key), key, 20ms,
            std::chrono::milliseconds(o.give_up_ms), &retries);
        checker.record_send(send_record(key, {device}, answer));
        next += period;
        std::this_thread::sleep_until(next);  // the load's pace, not a synchronisation
        if (Clock::now() > next + 1s) next = Clock::now();  // behind after a restart: no burst
      }
    });
  }

  // The cycles: up a random while, then SIGKILL, then a restart on the same data and ports.
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int> up_ms(o.min_up_ms, o.max_up_ms);
  std::vector<double> restart_ms;
  for (int cycle = 0; cycle < o.cycles; ++cycle) {
    std::this_thread::sleep_for(std::chrono::milliseconds(up_ms(rng)));  // the random moment
    server.kill9();
    const auto killed = Clock::now();
    server.restart();  // returns once heraldd listens again
    restart_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - killed).count());
  }
  for (auto& t : senders) t.request_stop();
  senders.clear();  // joins: each finishes the message in hand

  // Fences: one last message per device; in order per device, so once each arrived, every
  // device got everything stored for it before.
  bool drained = true;
  for (const auto& device : ids) {
    const std::string fence = "fence-" + device;
    const PushOutcome answer = sender.post_message_until_answered(
        kNewsApp, checked_message_body(device, fence), fence, 20ms, 30s);
    checker.record_send(send_record(fence, {device}, answer));
    if (!answer.accepted()) drained = false;
  }
  const auto drain_deadline = Clock::now() + std::chrono::seconds(o.drain_s);
  for (const auto& device : ids) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline - Clock::now());
    if (!checker.wait_for(device, "fence-" + device, std::max(left, 0ms))) drained = false;
  }
  const DeliveryReport r = checker.check();
  std::size_t reconnects = 0;
  for (auto& d : devices) reconnects += d->connections() - 1;
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  devices.clear();

  const bool ok = r.ok() && drained;
  if (o.json) {
    boost::json::object out{
        {"seed", o.seed},
        {"cycles", o.cycles},
        {"devices", o.devices},
        {"senders", o.senders},
        {"rate", o.rate},
        {"seconds", seconds},
        {"acknowledged", r.acknowledged},
        {"refused", r.refused},
        {"unknown", r.unknown},
        {"retries", retries.load()},
        {"deliveries", r.deliveries},
        {"owed", r.owed},
        {"lost", r.lost.count},
        {"unexpected", r.unexpected.count},
        {"duplicated", r.duplicated.count},
        {"seq_reused", r.seq_reused.count},
        {"out_of_order", r.out_of_order.count},
        {"unannounced_gaps", r.unannounced_gaps.count},
        {"gaps_told", r.gaps},
        {"lost_in_announced_gap", r.lost_in_announced_gap.count},
        {"unknown_arrived", r.unknown_arrived.count},
        {"unknown_not_arrived", r.unknown_not_arrived.count},
        {"device_reconnects", reconnects},
        {"restart_ms_p50", percentile(restart_ms, 50)},
        {"restart_ms_max", percentile(restart_ms, 100)},
        {"drained", drained},
        {"ok", ok},
    };
    std::cout << boost::json::serialize(out) << "\n";
  } else {
    std::printf("herald-crashloop: seed %llu, %d cycles, %d devices, %d senders at %d/s, %.1f s\n",
                static_cast<unsigned long long>(o.seed), o.cycles, o.devices, o.senders, o.rate,
                seconds);
    std::printf("  %-34s %zu\n", "sends acknowledged", r.acknowledged);
    std::printf("  %-34s %zu\n", "sends refused", r.refused);
    std::printf("  %-34s %zu\n", "sends of unknown outcome", r.unknown);
    std::printf("  %-34s %lld\n", "sender retries", static_cast<long long>(retries.load()));
    std::printf("  %-34s %zu (owed %zu)\n", "deliveries", r.deliveries, r.owed);
    std::printf("  %-34s %zu\n", "device reconnects", reconnects);
    std::printf("  %-34s p50 %.0f, max %.0f\n", "kill -> ready again (ms)",
                percentile(restart_ms, 50), percentile(restart_ms, 100));
    std::printf("  %-34s %s\n", "drained (every fence arrived)", drained ? "yes" : "NO");
    std::cout << r.summary();
  }
  // The examples of each violation, where a smoke run that hides stdout still shows them.
  if (!ok) std::cerr << "herald-crashloop: seed " << o.seed << "\n" << r.summary();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "herald-crashloop: " << e.what() << "\n";
    return 1;
  }
}
