// herald-load: end-to-end load against a real heraldd that it starts itself (from the same build)
// on loopback, with the real HTTP API and the real client library. Figures go to
// docs/benchmarks.md with the command line that produced them.
//
// usage: herald-load SCENARIO [--OPTION=VALUE ...] [--json]
//   push      accepted pushes per second through the sender API (closed loop, --threads clients),
//             each request to --targets devices
//   latency   API call -> device callback latency at a fixed --rate (open loop), p50/p99/p999,
//             and a check that every accepted message arrived exactly once
//   idle      heraldd resident memory per idle device connection, for --connections devices
// options: --duration-s=10 --threads=16 --devices=100 --targets=1 --rate=1000 --connections=10000
//          --payload-bytes=32 --server-threads=2 --durability=sync|fast
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "inbox.h"
#include "sender.h"

namespace {

using namespace herald;
using namespace herald::testing;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  std::string scenario;
  int duration_s = 10;
  int threads = 16;
  int devices = 100;
  int targets = 1;  // devices per push request
  int rate = 1000;
  int connections = 10'000;
  int payload_bytes = 32;
  int server_threads = 2;
  std::string durability = "sync";
  bool json = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "herald-load: " << why << "\n"
            << "usage: herald-load push|latency|idle [--duration-s=N] [--threads=N] "
               "[--devices=N] [--targets=N] [--rate=N] [--connections=N] [--payload-bytes=N] "
               "[--server-threads=N] [--durability=sync|fast] [--json]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) usage("no scenario");
  o.scenario = argv[1];
  if (o.scenario != "push" && o.scenario != "latency" && o.scenario != "idle") {
    usage("unknown scenario " + o.scenario);
  }
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--json") {
      o.json = true;
      continue;
    }
    const auto eq = a.find('=');
    if (!a.starts_with("--") || eq == std::string_view::npos) usage("bad option " + std::string(a));
    const auto name = a.substr(2, eq - 2);
    const auto value = a.substr(eq + 1);
    if (name == "durability") {
      if (value != "sync" && value != "fast") usage("--durability is sync or fast");
      o.durability = std::string(value);
      continue;
    }
    int v = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc{} || end != value.data() + value.size() || v <= 0) {
      usage("bad value for --" + std::string(name));
    }
    if (name == "duration-s")
      o.duration_s = v;
    else if (name == "threads")
      o.threads = v;
    else if (name == "devices")
      o.devices = v;
    else if (name == "targets")
      o.targets = v;
    else if (name == "rate")
      o.rate = v;
    else if (name == "connections")
      o.connections = v;
    else if (name == "payload-bytes")
      o.payload_bytes = v;
    else if (name == "server-threads")
      o.server_threads = v;
    else
      usage("unknown option --" + std::string(name));
  }
  if (o.targets > o.devices) usage("--targets must not exceed --devices");
  return o;
}

std::unique_ptr<HeraldServer> start_server(const Options& o) {
  return std::make_unique<HeraldServer>(std::vector<std::string>{
      "--threads=" + std::to_string(o.server_threads), "--storage.durability=" + o.durability,
      // Load tools hold many idle connections; keep them for the whole run.
      "--access.heartbeat_default_s=600", "--access.heartbeat_max_s=600"});
}

std::string device_name(int i) { return "load-" + std::to_string(i); }

// Registers devices 0..n-1 with `threads` parallel senders; returns their tokens.
std::vector<std::string> register_devices(const HeraldServer& server, int n, int threads) {
  std::vector<std::string> tokens(static_cast<std::size_t>(n));
  std::atomic<int> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < std::min(threads, n); ++t) {
    workers.emplace_back([&] {
      Sender sender(server.http_port());
      for (int i = next++; i < n; i = next++) {
        tokens[static_cast<std::size_t>(i)] = sender.register_device(kNewsApp, device_name(i));
      }
    });
  }
  for (auto& w : workers) w.join();
  return tokens;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

std::string payload(const Options& o, std::int64_t k, std::int64_t t_ns) {
  std::string pad(static_cast<std::size_t>(o.payload_bytes), 'x');
  return "{\"k\":" + std::to_string(k) + ",\"t\":" + std::to_string(t_ns) + ",\"pad\":\"" + pad +
         "\"}";
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

void report(const Options& o, const std::vector<std::pair<std::string, double>>& figures) {
  if (o.json) {
    boost::json::object out{{"scenario", o.scenario}};
    for (const auto& [k, v] : figures) out[k] = v;
    std::cout << boost::json::serialize(out) << "\n";
    return;
  }
  std::printf("scenario %s (server threads %d, durability %s)\n", o.scenario.c_str(),
              o.server_threads, o.durability.c_str());
  for (const auto& [k, v] : figures) std::printf("  %-28s %14.2f\n", k.c_str(), v);
}

int run_push(const Options& o) {
  auto server = start_server(o);
  register_devices(*server, o.devices, o.threads);
  std::atomic<std::int64_t> accepted{0};
  std::atomic<std::int64_t> failed{0};
  std::mutex mu;
  std::vector<double> call_ms;
  const auto end = Clock::now() + std::chrono::seconds(o.duration_s);
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&, t] {
      Sender sender(server->http_port());
      std::vector<double> local;
      std::vector<std::string> targets(static_cast<std::size_t>(o.targets));
      for (std::int64_t k = t; Clock::now() < end; k += o.threads) {
        // Consecutive devices from a rotating start: every device gets its share.
        for (int i = 0; i < o.targets; ++i) {
          targets[static_cast<std::size_t>(i)] =
              device_name(static_cast<int>((k * o.targets + i) % o.devices));
        }
        const auto t0 = Clock::now();
        const auto r = sender.push(kNewsApp, targets, payload(o, k, 0));
        local.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        (r.accepted() ? accepted : failed)++;
      }
      std::lock_guard lock(mu);
      call_ms.insert(call_ms.end(), local.begin(), local.end());
    });
  }
  for (auto& w : workers) w.join();
  report(o, {{"accepted_requests_per_s", static_cast<double>(accepted) / o.duration_s},
             {"accepted_messages_per_s", static_cast<double>(accepted) * o.targets / o.duration_s},
             {"failed", static_cast<double>(failed)},
             {"api_call_p50_ms", percentile(call_ms, 50)},
             {"api_call_p99_ms", percentile(call_ms, 99)}});
  return failed == 0 ? 0 : 1;
}

int run_latency(const Options& o) {
  auto server = start_server(o);
  const auto tokens = register_devices(*server, o.devices, o.threads);

  // Devices: every message records its latency and its key, to check exactly-once.
  const std::int64_t total = static_cast<std::int64_t>(o.rate) * o.duration_s;
  std::vector<std::atomic<std::uint8_t>> seen(static_cast<std::size_t>(total));
  std::mutex mu;
  std::vector<double> latency_ms;
  latency_ms.reserve(static_cast<std::size_t>(total));
  std::atomic<std::int64_t> delivered{0};
  EventLoop loop(1);
  std::vector<std::unique_ptr<Client>> clients;
  StateLog states;
  std::atomic<int> connected{0};
  for (int i = 0; i < o.devices; ++i) {
    ClientOptions co;
    co.endpoints = {{"127.0.0.1", server->device_port()}};
    co.device_id = device_name(i);
    co.token = tokens[static_cast<std::size_t>(i)];
    co.heartbeat_s = 600;
    auto c = std::make_unique<Client>(loop, co, make_memory_cursor_store());
    c->on_message(kNewsApp.id, [&](const Message& m) {
      const auto now = now_ns();
      const auto v = boost::json::parse(m.data).as_object();
      const auto k = v.at("k").as_int64();
      const auto t = v.at("t").as_int64();
      if (k >= 0 && k < total) seen[static_cast<std::size_t>(k)]++;
      {
        std::lock_guard lock(mu);
        latency_ms.push_back(static_cast<double>(now - t) / 1e6);
      }
      delivered++;
    });
    c->on_state([&](const StateChange& s) {
      if (s.state == ConnectionState::kConnected) connected++;
    });
    c->start();
    clients.push_back(std::move(c));
  }
  const auto connect_deadline = Clock::now() + 60s;
  while (connected < o.devices && Clock::now() < connect_deadline)
    std::this_thread::sleep_for(10ms);

  // Open loop: message k is due at start + k / rate, whatever the previous calls took.
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> accepted{0};
  std::atomic<std::int64_t> failed{0};
  std::vector<std::atomic<std::uint8_t>> was_accepted(static_cast<std::size_t>(total));
  const auto start = Clock::now() + 100ms;
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&] {
      Sender sender(server->http_port());
      for (std::int64_t k = next++; k < total; k = next++) {
        std::this_thread::sleep_until(start +
                                      std::chrono::nanoseconds(k * 1'000'000'000LL / o.rate));
        const auto r = sender.push(kNewsApp, {device_name(static_cast<int>(k % o.devices))},
                                   payload(o, k, now_ns()));
        if (r.accepted()) {
          accepted++;
          was_accepted[static_cast<std::size_t>(k)] = 1;
        } else {
          failed++;
        }
      }
    });
  }
  for (auto& w : workers) w.join();
  const double send_s = std::chrono::duration<double>(Clock::now() - start).count();
  const auto drain_deadline = Clock::now() + 30s;
  while (delivered < accepted && Clock::now() < drain_deadline) std::this_thread::sleep_for(10ms);
  for (auto& c : clients) c->stop();

  std::int64_t lost = 0;
  std::int64_t duplicated = 0;
  for (std::int64_t k = 0; k < total; ++k) {
    const auto n = seen[static_cast<std::size_t>(k)].load();
    if (was_accepted[static_cast<std::size_t>(k)] && n == 0) ++lost;
    if (n > 1) ++duplicated;
  }
  std::vector<double> l;
  {
    std::lock_guard lock(mu);
    l = latency_ms;
  }
  report(o, {{"target_rate_per_s", static_cast<double>(o.rate)},
             {"achieved_rate_per_s", static_cast<double>(accepted) / send_s},
             {"accepted", static_cast<double>(accepted)},
             {"failed", static_cast<double>(failed)},
             {"lost", static_cast<double>(lost)},
             {"duplicated", static_cast<double>(duplicated)},
             {"latency_p50_ms", percentile(l, 50)},
             {"latency_p99_ms", percentile(l, 99)},
             {"latency_p999_ms", percentile(l, 99.9)},
             {"latency_max_ms", l.empty() ? 0 : *std::max_element(l.begin(), l.end())}});
  if (lost || duplicated) std::cerr << "herald-load: delivery check FAILED\n";
  return (lost || duplicated || failed) ? 1 : 0;
}

std::int64_t self_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

int run_idle(const Options& o) {
  auto server = start_server(o);
  const auto tokens = register_devices(*server, o.connections, o.threads);
  const auto server_before = server->rss_kib();
  const auto self_before = self_rss_kib();
  EventLoop loop(1);
  std::atomic<int> connected{0};
  std::vector<std::unique_ptr<Client>> clients;
  const auto t0 = Clock::now();
  for (int i = 0; i < o.connections; ++i) {
    ClientOptions co;
    co.endpoints = {{"127.0.0.1", server->device_port()}};
    co.device_id = device_name(i);
    co.token = tokens[static_cast<std::size_t>(i)];
    co.heartbeat_s = 600;
    auto c = std::make_unique<Client>(loop, co, make_memory_cursor_store());
    c->on_state([&](const StateChange& s) {
      if (s.state == ConnectionState::kConnected) connected++;
    });
    c->start();
    clients.push_back(std::move(c));
  }
  const auto deadline = Clock::now() + 120s;
  while (connected < o.connections && Clock::now() < deadline) std::this_thread::sleep_for(10ms);
  const double connect_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto server_after = server->rss_kib();
  const auto self_after = self_rss_kib();
  const int held = connected.load();
  report(o, {{"connections", static_cast<double>(held)},
             {"connect_all_s", connect_s},
             {"server_rss_before_kib", static_cast<double>(server_before)},
             {"server_rss_after_kib", static_cast<double>(server_after)},
             {"server_bytes_per_conn",
              held ? static_cast<double>(server_after - server_before) * 1024 / held : 0},
             {"client_lib_bytes_per_conn",
              held ? static_cast<double>(self_after - self_before) * 1024 / held : 0}});
  for (auto& c : clients) c->stop();
  return held == o.connections ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (o.scenario == "push") return run_push(o);
  if (o.scenario == "latency") return run_latency(o);
  return run_idle(o);
}
