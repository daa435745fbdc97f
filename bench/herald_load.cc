// herald-load: end-to-end load against a real heraldd that it starts itself (from the same build)
// on loopback, with the real HTTP API and the real client library. Figures go to
// docs/benchmarks.md with the command line that produced them.
//
// usage: herald-load SCENARIO [--OPTION=VALUE ...] [--json]
//   push      accepted pushes per second through the sender API (closed loop, --threads clients),
//             each request to --targets devices; with --cluster, in the same run against two
//             heraldd nodes on a real Redis Cluster (the senders split over both nodes' APIs)
//   latency   API call -> device callback latency at a fixed --rate (open loop), p50/p99/p999,
//             and a check that every accepted message arrived exactly once; with --cluster, in
//             the same run: embedded (one heraldd on RocksDB, the peer), cluster_same_node (two
//             heraldd nodes on a real 3-master Redis Cluster, sender and devices on node B) and
//             cluster_cross_node (sender on node A's API, devices on node B: every notify
//             crosses nodes through Redis pub/sub), with ratios to embedded
//   idle      heraldd resident memory per idle device connection, for --connections devices
//   broadcast one message, then a --burst of messages, to each of --connections devices: stored
//             once as broadcasts, and as the peer in the same run as unicast (requests naming up
//             to 1000 devices), each on a fresh heraldd; time until the last device has them,
//             deliveries per second, heraldd memory and data-directory growth, and with
//             --spread-s=N one paced broadcast; checks every device got every message once
//   racing    time from Client::start() to kConnected with three endpoints, one dead (blackholed
//             by a herald-natsim proxy, or a closed port refusing), first or last in the list:
//             racing (race_width 3, stagger 250 ms) against sequential (race_width 1,
//             connect_timeout 5 s, response_timeout --response-timeout-ms), --rounds runs each
// options: --duration-s=10 --threads=16 --devices=100 --targets=1 --rate=1000 --connections=10000
//          --payload-bytes=32 --server-threads=2 --client-threads=1 --durability=sync|fast
//          --burst=50 --spread-s=0 --rounds=5 --response-timeout-ms=10000
//          --tls (device connections over TLS, access.tls, with certificates made for the run;
//          push, latency, idle and broadcast)
//          --cluster (push and latency: the cases above; redis-server must be installed)
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/address_v4.hpp>
#include <boost/json.hpp>

#include "herald/client.h"
#include "herald_server.h"
#include "natsim/nat_proxy.h"
#include "sender.h"
#include "storage/redis/redis_cluster_client.h"
#include "storage/redis/testing/test_redis_cluster.h"
#include "tls/testing/test_certificates.h"

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
  int client_threads = 1;  // threads of the EventLoop that runs every device's client
  int burst = 50;          // broadcast: messages of the burst
  int spread_s = 0;        // broadcast: > 0 adds one paced broadcast spread over this many seconds
  int rounds = 5;          // racing: runs of each case
  int response_timeout_ms = 10'000;  // racing: the sequential client's handshake deadline
  std::string durability = "sync";
  bool json = false;
  // --cluster: push and latency measure cluster mode against the embedded peer in the same run.
  bool cluster = false;
  // --tls: heraldd's device listener is TLS and every device connects over it, trusting this CA.
  std::shared_ptr<const tls::testing::TestCertificates> tls;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "herald-load: " << why << "\n"
            << "usage: herald-load push|latency|idle|broadcast|racing [--duration-s=N] "
               "[--threads=N] [--devices=N] [--targets=N] [--rate=N] [--connections=N] "
               "[--payload-bytes=N] [--server-threads=N] [--client-threads=N] "
               "[--durability=sync|fast] [--burst=N] [--spread-s=N] [--rounds=N] "
               "[--response-timeout-ms=N] [--tls] [--cluster] [--json]\n";
  std::exit(2);
}

// The options that take a whole number, and where each goes.
constexpr std::pair<std::string_view, int Options::*> kIntOptions[] = {
    {"duration-s", &Options::duration_s},
    {"threads", &Options::threads},
    {"devices", &Options::devices},
    {"targets", &Options::targets},
    {"rate", &Options::rate},
    {"connections", &Options::connections},
    {"payload-bytes", &Options::payload_bytes},
    {"server-threads", &Options::server_threads},
    {"client-threads", &Options::client_threads},
    {"burst", &Options::burst},
    {"spread-s", &Options::spread_s},
    {"rounds", &Options::rounds},
    {"response-timeout-ms", &Options::response_timeout_ms},
};

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) usage("no scenario");
  o.scenario = argv[1];
  if (o.scenario != "push" && o.scenario != "latency" && o.scenario != "idle" &&
      o.scenario != "broadcast" && o.scenario != "racing") {
    usage("unknown scenario " + o.scenario);
  }
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--cluster") {
      if (o.scenario != "push" && o.scenario != "latency") {
        usage("--cluster applies to push and latency only");
      }
      o.cluster = true;
      continue;
    }
    if (a == "--tls") {
      if (o.scenario == "racing") usage("--tls does not apply to racing");
      o.tls = std::make_shared<const tls::testing::TestCertificates>(
          tls::testing::make_test_certificates(make_temp_dir("herald-load-tls")));
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
    // Only --spread-s may be 0 (no paced broadcast).
    if (ec != std::errc{} || end != value.data() + value.size() || v < 0 ||
        (v == 0 && name != "spread-s")) {
      usage("bad value for --" + std::string(name));
    }
    const auto option = std::find_if(std::begin(kIntOptions), std::end(kIntOptions),
                                     [&](const auto& known) { return known.first == name; });
    if (option == std::end(kIntOptions)) usage("unknown option --" + std::string(name));
    o.*(option->second) = v;
  }
  if (o.targets > o.devices) usage("--targets must not exceed --devices");
  return o;
}

// Starts heraldd with the load tools' settings, then `extra_args`.
std::unique_ptr<HeraldServer> start_server(const Options& o,
                                           std::vector<std::string> extra_args = {}) {
  std::vector<std::string> args = {
      "--threads=" + std::to_string(o.server_threads), "--storage.durability=" + o.durability,
      // Load tools hold many idle connections; keep them for the whole run.
      "--access.heartbeat_default_s=600", "--access.heartbeat_max_s=600",
      // Thousands of devices connect from one source address at once, which the per-source
      // connection-rate limit exists to refuse.
      "--access.connect_rate_per_s=0"};
  if (o.tls) {
    args.insert(args.end(), {"--access.tls=true", "--tls.cert_file=" + o.tls->cert_file.string(),
                             "--tls.key_file=" + o.tls->key_file.string()});
  }
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  return std::make_unique<HeraldServer>(std::move(args));
}

// ---- cluster mode (docs/cluster.md): heraldd nodes sharing a real Redis Cluster ----

using storage::testing::TestRedisCluster;

// Shared by the nodes of a deployment, so that a token issued by one is valid on the other.
const std::string kClusterTokenSecret = "herald-load-cluster-token-secret-0123456789";

// Nodes A and B of one deployment (`keyspace`) on `redis`, as tests/integration/cluster_test.cc
// starts them (no deployment.peer: nothing here drains). Each case takes a keyspace of its own,
// so no case sees another's streams.
struct ClusterNodes {
  ClusterNodes(const Options& o, const TestRedisCluster& redis, const std::string& keyspace)
      : b(start_server(o, args(redis, "node-b", keyspace))),
        a(start_server(o, args(redis, "node-a", keyspace))) {}

  static std::vector<std::string> args(const TestRedisCluster& redis, const std::string& node,
                                       const std::string& keyspace) {
    return {"--node_name=" + node, "--auth.token_secret=" + kClusterTokenSecret,
            "--storage.backend=redis", "--storage.redis.nodes=" + redis.seeds_text(),
            "--storage.redis.keyspace=" + keyspace};
  }

  std::unique_ptr<HeraldServer> b;
  std::unique_ptr<HeraldServer> a;
};

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

// Polls `done` every 10 ms until it holds or `timeout` passes; returns whether it held.
bool wait_until(const std::function<bool()>& done, Clock::duration timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Starts one client on `loop` per token: device i is device_name(i), announcing a 600 s
// heartbeat so that none times out during a run. `connected` counts every kConnected,
// reconnects included; when `handler` is set, handler(i) receives device i's messages of
// kNewsApp. The clients must stop (or be destroyed) before `loop`, and `connected` and what the
// handlers use must outlive them.
std::vector<std::unique_ptr<Client>> start_devices(
    const Options& o, EventLoop& loop, const HeraldServer& server,
    const std::vector<std::string>& tokens, std::atomic<int>& connected,
    const std::function<Client::MessageHandler(int)>& handler = {}) {
  std::vector<std::unique_ptr<Client>> clients;
  clients.reserve(tokens.size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    ClientOptions co;
    co.endpoints = {{"127.0.0.1", server.device_port()}};
    co.device_id = device_name(static_cast<int>(i));
    co.token = tokens[i];
    co.heartbeat_s = 600;
    if (o.tls) {
      co.tls.enabled = true;
      co.tls.ca_file = o.tls->ca_file.string();
      co.tls.server_name = o.tls->server_name;
    }
    auto c = std::make_unique<Client>(loop, co, make_memory_cursor_store());
    if (handler) c->on_message(kNewsApp.id, handler(static_cast<int>(i)));
    c->on_state([&connected](const StateChange& s) {
      if (s.state == ConnectionState::kConnected) connected++;
    });
    c->start();
    clients.push_back(std::move(c));
  }
  return clients;
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

using Figures = std::vector<std::pair<std::string, double>>;

double figure(const Figures& figures, const std::string& name) {
  for (const auto& [k, v] : figures) {
    if (k == name) return v;
  }
  return 0;
}

// Appends `key` = figure `a` / figure `b` (0 when `b` is 0).
void add_ratio(Figures& figures, const std::string& key, const std::string& a,
               const std::string& b) {
  const double den = figure(figures, b);
  figures.emplace_back(key, den != 0 ? figure(figures, a) / den : 0);
}

void report(const Options& o, const Figures& figures) {
  if (o.json) {
    boost::json::object out{{"scenario", o.scenario}};
    for (const auto& [k, v] : figures) out[k] = v;
    std::cout << boost::json::serialize(out) << "\n";
    return;
  }
  std::printf(
      "scenario %s (server threads %d, durability %s%s)\n", o.scenario.c_str(), o.server_threads,
      o.durability.c_str(),
      o.cluster ? " for embedded; cluster: 2 nodes on a 3-master Redis Cluster, appendfsync always"
                : "");
  for (const auto& [k, v] : figures) std::printf("  %-42s %14.2f\n", k.c_str(), v);
}

// Pushes through `apis` (sender thread t on apis[t % size]) for --duration-s; figures named
// "<prefix>accepted_requests_per_s" and so on. `ok` turns false if a request was refused.
Figures measure_push(const Options& o, const std::vector<const HeraldServer*>& apis,
                     const std::string& prefix, bool& ok) {
  register_devices(*apis.front(), o.devices, o.threads);
  std::atomic<std::int64_t> accepted{0};
  std::atomic<std::int64_t> failed{0};
  std::mutex mu;
  std::vector<double> call_ms;
  const auto end = Clock::now() + std::chrono::seconds(o.duration_s);
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&, t] {
      Sender sender(apis[static_cast<std::size_t>(t) % apis.size()]->http_port());
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
  if (failed != 0) ok = false;
  return {{prefix + "accepted_requests_per_s", static_cast<double>(accepted) / o.duration_s},
          {prefix + "accepted_messages_per_s",
           static_cast<double>(accepted) * o.targets / o.duration_s},
          {prefix + "failed", static_cast<double>(failed)},
          {prefix + "api_call_p50_ms", percentile(call_ms, 50)},
          {prefix + "api_call_p99_ms", percentile(call_ms, 99)}};
}

int run_push(const Options& o) {
  bool ok = true;
  if (!o.cluster) {
    auto server = start_server(o);
    report(o, measure_push(o, {server.get()}, "", ok));
    return ok ? 0 : 1;
  }
  Figures figures;
  {
    auto server = start_server(o);
    figures = measure_push(o, {server.get()}, "embedded_", ok);
  }
  {
    TestRedisCluster redis;
    ClusterNodes nodes(o, redis, "load-push");
    const auto cluster = measure_push(o, {nodes.a.get(), nodes.b.get()}, "cluster_", ok);
    figures.insert(figures.end(), cluster.begin(), cluster.end());
  }
  // Ratios: above 1 means the embedded peer is that many times better (more pushes, faster calls).
  add_ratio(figures, "ratio_requests_embedded_per_cluster", "embedded_accepted_requests_per_s",
            "cluster_accepted_requests_per_s");
  add_ratio(figures, "ratio_api_call_p50_cluster_per_embedded", "cluster_api_call_p50_ms",
            "embedded_api_call_p50_ms");
  add_ratio(figures, "ratio_api_call_p99_cluster_per_embedded", "cluster_api_call_p99_ms",
            "embedded_api_call_p99_ms");
  report(o, figures);
  return ok ? 0 : 1;
}

// Polls until every device 0..devices-1 has its route (written by the node holding its
// connection, asynchronously after the Hello) in `keyspace` on `redis`: until then a notify from
// another node finds no route and waits for the device's next heartbeat. Returns whether all did
// within 30 s.
bool wait_for_routes(const TestRedisCluster& redis, const std::string& keyspace, int devices) {
  storage::RedisClusterOptions options;
  options.seeds = redis.masters();
  storage::RedisClusterClient client(std::move(options));
  int next = 0;  // devices before it have their route
  return wait_until(
      [&] {
        for (; next < devices; ++next) {
          const auto key = keyspace + ":route:{" + device_name(next) + "}";
          const auto exists = client.call(key, {"EXISTS", key});
          if (!exists || exists->integer != 1) return false;
        }
        return true;
      },
      30s);
}

// One run of the latency scenario: devices registered through `api` and connected to
// `devices_at` (the same heraldd, or in cluster mode another node), messages sent through `api`
// at --rate. `ready` (when set) holds once the devices are reachable from `api`. Figures are
// named "<prefix>latency_p50_ms" and so on; `ok` turns false if an accepted message was lost or
// duplicated, or a request refused.
Figures measure_latency(const Options& o, const HeraldServer& api, const HeraldServer& devices_at,
                        const std::string& prefix, const std::function<bool()>& ready, bool& ok) {
  const auto tokens = register_devices(api, o.devices, o.threads);

  // Devices: every message records its latency and its key, to check exactly-once.
  const std::int64_t total = static_cast<std::int64_t>(o.rate) * o.duration_s;
  std::vector<std::atomic<std::uint8_t>> seen(static_cast<std::size_t>(total));
  std::mutex mu;
  std::vector<double> latency_ms;
  latency_ms.reserve(static_cast<std::size_t>(total));
  std::atomic<std::int64_t> delivered{0};
  EventLoop loop(o.client_threads);
  std::atomic<int> connected{0};
  auto clients = start_devices(o, loop, devices_at, tokens, connected, [&](int) {
    return [&](const Message& m) {
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
    };
  });
  // A device still connecting when the run starts is no failure: it pulls its messages once in.
  wait_until([&] { return connected >= o.devices; }, 60s);
  // "embedded_" names the case "embedded"; no prefix, no name.
  const std::string case_name =
      prefix.empty() ? "" : " (" + prefix.substr(0, prefix.size() - 1) + ")";
  if (ready && !ready()) {
    std::cerr << "herald-load: not every device reachable after 30 s" << case_name << "\n";
  }

  // Open loop: message k is due at start + k / rate, whatever the previous calls took.
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> accepted{0};
  std::atomic<std::int64_t> failed{0};
  std::vector<std::atomic<std::uint8_t>> was_accepted(static_cast<std::size_t>(total));
  const auto start = Clock::now() + 100ms;
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&] {
      Sender sender(api.http_port());
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
  wait_until([&] { return delivered >= accepted; }, 30s);
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
  if (lost || duplicated) {
    std::cerr << "herald-load: delivery check FAILED" << case_name << "\n";
  }
  if (lost || duplicated || failed) ok = false;
  return {{prefix + "target_rate_per_s", static_cast<double>(o.rate)},
          {prefix + "achieved_rate_per_s", static_cast<double>(accepted) / send_s},
          {prefix + "accepted", static_cast<double>(accepted)},
          {prefix + "failed", static_cast<double>(failed)},
          {prefix + "lost", static_cast<double>(lost)},
          {prefix + "duplicated", static_cast<double>(duplicated)},
          {prefix + "latency_p50_ms", percentile(l, 50)},
          {prefix + "latency_p99_ms", percentile(l, 99)},
          {prefix + "latency_p999_ms", percentile(l, 99.9)},
          {prefix + "latency_max_ms", l.empty() ? 0 : *std::max_element(l.begin(), l.end())}};
}

int run_latency(const Options& o) {
  bool ok = true;
  if (!o.cluster) {
    auto server = start_server(o);
    report(o, measure_latency(o, *server, *server, "", {}, ok));
    return ok ? 0 : 1;
  }
  // Each case on fresh processes, one after the other: the Redis Cluster starts once the
  // embedded peer is done, so that the peer runs alone as it does without --cluster.
  Figures figures;
  {
    auto server = start_server(o);
    figures = measure_latency(o, *server, *server, "embedded_", {}, ok);
  }
  {
    TestRedisCluster redis;
    for (const bool cross : {false, true}) {
      const std::string name = cross ? "cluster_cross_node" : "cluster_same_node";
      ClusterNodes nodes(o, redis, name);
      const auto f = measure_latency(
          o, cross ? *nodes.a : *nodes.b, *nodes.b, name + "_",
          [&] { return wait_for_routes(redis, name, o.devices); }, ok);
      figures.insert(figures.end(), f.begin(), f.end());
    }
  }
  // Ratios: above 1 means that many times slower than the embedded peer (or than the same node).
  for (const std::string p : {"p50", "p99", "p999"}) {
    const std::string key = "_latency_" + p + "_ms";
    add_ratio(figures, "ratio_same_node_" + p + "_per_embedded", "cluster_same_node" + key,
              "embedded" + key);
    add_ratio(figures, "ratio_cross_node_" + p + "_per_embedded", "cluster_cross_node" + key,
              "embedded" + key);
    add_ratio(figures, "ratio_cross_node_" + p + "_per_same_node", "cluster_cross_node" + key,
              "cluster_same_node" + key);
  }
  report(o, figures);
  return ok ? 0 : 1;
}

int run_idle(const Options& o) {
  auto server = start_server(o);
  const auto tokens = register_devices(*server, o.connections, o.threads);
  const auto server_before = server->rss_kib();
  const auto self_before = rss_kib(getpid());
  EventLoop loop(o.client_threads);
  std::atomic<int> connected{0};
  const auto t0 = Clock::now();
  auto clients = start_devices(o, loop, *server, tokens, connected);
  wait_until([&] { return connected >= o.connections; }, 120s);
  const double connect_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto server_after = server->rss_kib();
  const auto self_after = rss_kib(getpid());
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

// ---- broadcast: one message to every device, stored once, against unicast in the same run ----

enum class Audience { kBroadcast, kUnicast };

// The sender API's limit on devices per request (messages.max_targets, default 1000).
constexpr int kMaxTargetsPerRequest = 1000;

// Who got which message of a fan-out run, how often and when first: a devices x messages grid.
// record() runs on the receiving device's client strand (one writer per device); the main
// thread reads the counters while it waits and everything once the devices are quiet.
class DeliveryLog {
 public:
  DeliveryLog(int devices, int messages)
      : devices_(devices),
        messages_(messages),
        count_(static_cast<std::size_t>(devices) * static_cast<std::size_t>(messages)),
        first_ns_(count_.size()),
        reached_(static_cast<std::size_t>(messages)) {}

  // Message `k` (its "k" field) reached `device` at `at_ns`, from a broadcast stream or not.
  void record(int device, std::int64_t k, bool broadcast, Audience expected, std::int64_t at_ns) {
    if (broadcast != (expected == Audience::kBroadcast)) ++wrong_stream_;
    if (k < 0 || k >= messages_) {
      ++strays_;
      return;
    }
    const auto at = slot(device, static_cast<int>(k));
    if (count_[at]++ == 0) {
      first_ns_[at] = at_ns;
      ++reached_[static_cast<std::size_t>(k)];
    }
  }
  // Whether every device has every message of [k0, k1).
  [[nodiscard]] bool complete(int k0, int k1) const {
    for (int k = k0; k < k1; ++k) {
      if (reached_[static_cast<std::size_t>(k)] < devices_) return false;
    }
    return true;
  }
  // When each device that got message `k` first had it, in ms after `since_ns`.
  [[nodiscard]] std::vector<double> arrivals_ms(int k, std::int64_t since_ns) const {
    std::vector<double> out;
    out.reserve(static_cast<std::size_t>(devices_));
    for (int d = 0; d < devices_; ++d) {
      const auto at = slot(d, k);
      if (count_[at] > 0) out.push_back(static_cast<double>(first_ns_[at] - since_ns) / 1e6);
    }
    return out;
  }
  // The last first-arrival of any message of [k0, k1), in ns.
  [[nodiscard]] std::int64_t last_ns(int k0, int k1) const {
    std::int64_t last = 0;
    for (int d = 0; d < devices_; ++d) {
      for (int k = k0; k < k1; ++k) last = std::max(last, first_ns_[slot(d, k)].load());
    }
    return last;
  }
  // (device, message) pairs that never arrived, and those that arrived more than once.
  [[nodiscard]] std::int64_t missed() const {
    return std::count_if(count_.begin(), count_.end(), [](const auto& n) { return n == 0; });
  }
  [[nodiscard]] std::int64_t duplicated() const {
    return std::count_if(count_.begin(), count_.end(), [](const auto& n) { return n > 1; });
  }
  // Messages with an unknown key, and messages from the other kind of stream than expected.
  [[nodiscard]] std::int64_t strays() const { return strays_; }
  [[nodiscard]] std::int64_t wrong_stream() const { return wrong_stream_; }

 private:
  [[nodiscard]] std::size_t slot(int device, int k) const {
    return static_cast<std::size_t>(device) * static_cast<std::size_t>(messages_) +
           static_cast<std::size_t>(k);
  }
  int devices_;
  int messages_;
  std::vector<std::atomic<std::uint32_t>> count_;
  std::vector<std::atomic<std::int64_t>> first_ns_;  // steady clock, as now_ns()
  std::vector<std::atomic<int>> reached_;            // devices that have message k
  std::atomic<std::int64_t> strays_{0};
  std::atomic<std::int64_t> wrong_stream_{0};
};

// The highest resident set size of heraldd while it runs, sampled every 10 ms on its own thread.
class PeakRss {
 public:
  explicit PeakRss(const HeraldServer& server)
      : server_(server), thread_([this](std::stop_token stop) {
          while (!stop.stop_requested()) {
            sample();
            std::this_thread::sleep_for(10ms);
          }
        }) {}
  // Stops sampling; the peak seen, a last sample included (a burst may be shorter than 10 ms).
  std::int64_t stop() {
    thread_.request_stop();
    if (thread_.joinable()) thread_.join();
    sample();
    return peak_kib_;
  }

 private:
  void sample() { peak_kib_ = std::max(peak_kib_.load(), server_.rss_kib()); }
  const HeraldServer& server_;
  std::atomic<std::int64_t> peak_kib_{0};
  std::jthread thread_;  // last: it samples into peak_kib_
};

// Bytes in the regular files under `dir` (RocksDB deletes files while it runs: those are skipped).
std::int64_t dir_bytes(const std::filesystem::path& dir) {
  std::error_code ec;
  std::int64_t total = 0;
  for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code size_ec;
    const auto n = it->is_regular_file(size_ec) ? it->file_size(size_ec) : 0;
    if (!size_ec) total += static_cast<std::int64_t>(n);
  }
  return total;
}

// The size of `dir` once it stopped changing for 500 ms (or after 10 s): the devices' acks and the
// messages' status records are written after the devices have their messages.
std::int64_t settled_dir_bytes(const std::filesystem::path& dir) {
  auto size = dir_bytes(dir);
  const auto deadline = Clock::now() + 10s;
  for (auto stable_since = Clock::now(); Clock::now() - stable_since < 500ms;) {
    if (Clock::now() > deadline) break;
    std::this_thread::sleep_for(100ms);
    const auto now = dir_bytes(dir);
    if (now != size) stable_since = Clock::now();
    size = now;
  }
  return size;
}

struct SendRequest {
  std::string idempotency_key;  // "m<k>" for message k, "m<k>-<first device>" in unicast
  std::string body;
};

// The requests that send messages [k0, k1) to all `devices`: one per message as a broadcast
// (paced over `spread_s` when non-zero), ceil(devices / 1000) per message as unicast.
std::vector<SendRequest> fan_out_requests(const Options& o, Audience audience, int devices, int k0,
                                          int k1, int spread_s = 0) {
  std::vector<SendRequest> out;
  for (int k = k0; k < k1; ++k) {
    const auto data = boost::json::parse(payload(o, k, 0));
    if (audience == Audience::kBroadcast) {
      boost::json::object body{{"to", boost::json::object{{"broadcast", true}}}, {"data", data}};
      if (spread_s > 0) body["spread_s"] = spread_s;
      out.push_back({"m" + std::to_string(k), boost::json::serialize(body)});
      continue;
    }
    for (int first = 0; first < devices; first += kMaxTargetsPerRequest) {
      boost::json::array to;
      for (int d = first; d < std::min(devices, first + kMaxTargetsPerRequest); ++d) {
        to.emplace_back(device_name(d));
      }
      boost::json::object body{{"to", boost::json::object{{"devices", std::move(to)}}},
                               {"data", data}};
      out.push_back(
          {"m" + std::to_string(k) + "-" + std::to_string(first), boost::json::serialize(body)});
    }
  }
  return out;
}

struct SendOutcome {
  std::int64_t start_ns = 0;     // before the first request
  std::int64_t answered_ns = 0;  // the last answer
  std::int64_t retried = 0;      // attempts answered 503 or 429, or not answered
  std::int64_t failed = 0;       // requests still not accepted after a minute of retries
};

// Posts `r` as a careful sender does: with its idempotency key, and again with backoff (50 ms
// doubling to 1 s, for up to a minute) while heraldd answers 503 (overloaded), 429 or nothing
// (the outcome unknown: the key makes a second copy impossible). Returns whether it was accepted.
bool post_until_answered(Sender& sender, const SendRequest& r, std::atomic<std::int64_t>& retried) {
  const auto answer =
      sender.post_message_until_answered(kNewsApp, r.body, r.idempotency_key, 50ms, 60s, &retried);
  if (answer.accepted()) return true;
  std::cerr << "herald-load: request " << r.idempotency_key << " answered " << answer.status << " "
            << boost::json::serialize(answer.body) << "\n";
  return false;
}

// Sends `requests` in order over min(--threads, their number) keep-alive connections, each
// connection taking the next request once its previous one was answered.
SendOutcome send_requests(const Options& o, const HeraldServer& server,
                          const std::vector<SendRequest>& requests) {
  std::atomic<std::size_t> next{0};
  std::atomic<std::int64_t> retried{0};
  std::atomic<std::int64_t> failed{0};
  std::vector<std::unique_ptr<Sender>> senders;
  for (int t = 0; t < std::min<int>(o.threads, static_cast<int>(requests.size())); ++t) {
    senders.push_back(std::make_unique<Sender>(server.http_port()));
  }
  SendOutcome out;
  out.start_ns = now_ns();
  std::vector<std::thread> workers;
  for (auto& sender : senders) {
    workers.emplace_back([&, s = sender.get()] {
      for (auto i = next++; i < requests.size(); i = next++) {
        if (!post_until_answered(*s, requests[i], retried)) failed++;
      }
    });
  }
  for (auto& w : workers) w.join();
  out.answered_ns = now_ns();
  out.retried = retried;
  out.failed = failed;
  return out;
}

// One side of the broadcast scenario on a fresh heraldd with --connections devices connected:
// message 0 alone, then messages 1..burst at once, then (broadcast with --spread-s) one paced
// message. Figures are named "<audience>_..."; `ok` is false if any device missed a message or
// got one twice, or the server refused one.
Figures run_fan_out(const Options& o, Audience audience, bool& ok) {
  const std::string name = audience == Audience::kBroadcast ? "broadcast" : "unicast";
  const int n = o.connections;
  const bool paced = audience == Audience::kBroadcast && o.spread_s > 0;
  const int messages = 1 + o.burst + (paced ? 1 : 0);
  Figures f;
  auto add = [&](const std::string& key, double v) { f.emplace_back(name + "_" + key, v); };

  auto server = start_server(o);
  const auto tokens = register_devices(*server, n, o.threads);
  DeliveryLog log(n, messages);
  EventLoop loop(o.client_threads);
  std::atomic<int> connected{0};
  const auto t_connect = Clock::now();
  auto clients = start_devices(o, loop, *server, tokens, connected, [&](int i) {
    return [&log, audience, i](const Message& m) {
      const auto at = now_ns();
      log.record(i, boost::json::parse(m.data).at("k").as_int64(), m.broadcast, audience, at);
    };
  });
  if (!wait_until([&] { return connected >= n; }, 180s)) {
    std::cerr << "herald-load: only " << connected << " of " << n << " devices connected\n";
    ok = false;
    return f;
  }
  add("connect_all_s", std::chrono::duration<double>(Clock::now() - t_connect).count());
  std::int64_t failed = 0;
  std::int64_t retried = 0;

  // One message: how long until the last device has it.
  {
    const auto requests = fan_out_requests(o, audience, n, 0, 1);
    const auto sent = send_requests(o, *server, requests);
    failed += sent.failed;
    retried += sent.retried;
    wait_until([&] { return log.complete(0, 1); }, 60s);
    auto at = log.arrivals_ms(0, sent.start_ns);
    add("one_api_ms", static_cast<double>(sent.answered_ns - sent.start_ns) / 1e6);
    add("one_first_device_ms", at.empty() ? 0 : *std::min_element(at.begin(), at.end()));
    add("one_median_device_ms", percentile(at, 50));
    add("one_last_device_ms", at.empty() ? 0 : *std::max_element(at.begin(), at.end()));
  }

  // The burst: every message sent as fast as the senders go.
  {
    const int k1 = 1 + o.burst;
    const auto requests = fan_out_requests(o, audience, n, 1, k1);
    const auto disk_before = settled_dir_bytes(server->data_dir());
    const auto rss_before = server->rss_kib();
    PeakRss peak(*server);
    const auto sent = send_requests(o, *server, requests);
    failed += sent.failed;
    retried += sent.retried;
    wait_until([&] { return log.complete(1, k1); }, 300s);
    const auto rss_peak = peak.stop();
    const auto rss_after = server->rss_kib();
    const double last_s = static_cast<double>(log.last_ns(1, k1) - sent.start_ns) / 1e9;
    const double deliveries = static_cast<double>(n) * o.burst;
    add("burst_requests", static_cast<double>(requests.size()));
    add("burst_api_s", static_cast<double>(sent.answered_ns - sent.start_ns) / 1e9);
    add("burst_last_device_s", last_s);
    add("burst_deliveries_per_s", last_s > 0 ? deliveries / last_s : 0);
    add("burst_rss_before_mib", static_cast<double>(rss_before) / 1024);
    add("burst_rss_peak_growth_mib", static_cast<double>(rss_peak - rss_before) / 1024);
    add("burst_rss_after_growth_mib", static_cast<double>(rss_after - rss_before) / 1024);
    add("burst_data_dir_growth_mib",
        static_cast<double>(settled_dir_bytes(server->data_dir()) - disk_before) / (1 << 20));
  }

  // Paced: one broadcast whose notifies each access loop spreads over --spread-s.
  if (paced) {
    const int k = messages - 1;
    const auto requests = fan_out_requests(o, audience, n, k, k + 1, o.spread_s);
    const auto sent = send_requests(o, *server, requests);
    failed += sent.failed;
    retried += sent.retried;
    wait_until([&] { return log.complete(k, k + 1); }, std::chrono::seconds(o.spread_s) + 60s);
    auto at = log.arrivals_ms(k, sent.start_ns);
    add("paced_first_device_s", at.empty() ? 0 : *std::min_element(at.begin(), at.end()) / 1e3);
    add("paced_p10_device_s", percentile(at, 10) / 1e3);
    add("paced_median_device_s", percentile(at, 50) / 1e3);
    add("paced_p90_device_s", percentile(at, 90) / 1e3);
    add("paced_last_device_s", at.empty() ? 0 : *std::max_element(at.begin(), at.end()) / 1e3);
  }

  // A duplicate would come after its first copy: give one a second to show before counting.
  std::this_thread::sleep_for(1s);
  // Connections lost and made again after all were up (a slow reader dropped by the server, say).
  add("reconnects", static_cast<double>(connected - n));
  for (auto& c : clients) c->stop();
  add("retried_requests", static_cast<double>(retried));
  add("failed_requests", static_cast<double>(failed));
  add("missed", static_cast<double>(log.missed()));
  add("duplicated", static_cast<double>(log.duplicated()));
  add("wrong_stream_or_stray", static_cast<double>(log.wrong_stream() + log.strays()));
  if (failed || log.missed() || log.duplicated() || log.wrong_stream() || log.strays()) ok = false;
  return f;
}

int run_broadcast(const Options& o) {
  bool ok = true;
  auto figures = run_fan_out(o, Audience::kBroadcast, ok);
  const auto unicast = run_fan_out(o, Audience::kUnicast, ok);
  figures.insert(figures.end(), unicast.begin(), unicast.end());
  // Ratios: above 1 means broadcast is that many times better (faster, less memory, less disk).
  const auto ratio = [&](const std::string& key, const std::string& a, const std::string& b) {
    add_ratio(figures, key, a, b);
  };
  ratio("ratio_one_last_device_uni_per_cast", "unicast_one_last_device_ms",
        "broadcast_one_last_device_ms");
  ratio("ratio_burst_last_device_uni_per_cast", "unicast_burst_last_device_s",
        "broadcast_burst_last_device_s");
  ratio("ratio_burst_deliveries_cast_per_uni", "broadcast_burst_deliveries_per_s",
        "unicast_burst_deliveries_per_s");
  ratio("ratio_burst_rss_peak_growth_uni_per_cast", "unicast_burst_rss_peak_growth_mib",
        "broadcast_burst_rss_peak_growth_mib");
  ratio("ratio_burst_data_dir_growth_uni_per_cast", "unicast_burst_data_dir_growth_mib",
        "broadcast_burst_data_dir_growth_mib");
  report(o, figures);
  if (!ok) std::cerr << "herald-load: delivery check FAILED\n";
  return ok ? 0 : 1;
}

// racing: how long a client takes to connect when one of its three endpoints is dead.
//
//   endpoints   [dead, heraldd, forward proxy to heraldd]   (dead first)
//               [heraldd, forward proxy to heraldd, dead]   (dead last)
//   dead        a herald-natsim blackhole (accepts, never answers: only the handshake deadline
//               finds it dead), or a closed port (refused at once)
//
// Each run is a fresh Client (the same device), from start() to kConnected; the median and the
// slowest of --rounds runs per case, and the sequential / racing ratio of the medians.

// Milliseconds from start() to kConnected of a fresh client; -1 when it did not connect in time.
double time_to_connect(EventLoop& loop, ClientOptions options) {
  std::mutex mu;
  std::condition_variable cv;
  bool connected = false;
  Client client(loop, std::move(options), make_memory_cursor_store());
  client.on_state([&](const StateChange& s) {
    if (s.state != ConnectionState::kConnected) return;
    std::lock_guard lock(mu);
    connected = true;
    cv.notify_all();
  });
  const auto t0 = Clock::now();
  client.start();
  std::unique_lock lock(mu);
  const bool ok = cv.wait_for(lock, 60s, [&] { return connected; });
  const auto elapsed = Clock::now() - t0;
  lock.unlock();
  client.stop();
  return ok ? std::chrono::duration<double, std::milli>(elapsed).count() : -1;
}

int run_racing(const Options& o) {
  auto server = start_server(o);
  const std::string token = Sender(server->http_port()).register_device(kNewsApp, "race-bench");
  const auto loopback = boost::asio::ip::address_v4::loopback();
  natsim::NatProxyOptions forward;
  forward.target = {loopback, server->device_port()};
  natsim::NatProxyThread second_path(forward);
  natsim::NatProxyOptions blackhole_options = forward;
  blackhole_options.mode = natsim::NatMode::kBlackhole;
  natsim::NatProxyThread blackhole(blackhole_options);
  const Endpoint direct{"127.0.0.1", server->device_port()};
  const Endpoint proxied{"127.0.0.1", second_path.port()};

  EventLoop loop(o.client_threads);
  std::vector<std::pair<std::string, double>> figures;
  bool ok = true;
  for (const bool blackholed : {true, false}) {
    for (const bool dead_first : {true, false}) {
      const std::string name =
          std::string(blackholed ? "blackholed" : "refused") + (dead_first ? "_first" : "_last");
      double medians[2] = {0, 0};
      for (const bool racing : {true, false}) {
        std::vector<double> runs;
        for (int r = 0; r < o.rounds; ++r) {
          // A fresh closed port each run: one that nothing listens on, refused at once.
          const Endpoint dead{"127.0.0.1", blackholed ? blackhole.port() : free_port()};
          ClientOptions co;
          co.endpoints = dead_first ? std::vector<Endpoint>{dead, direct, proxied}
                                    : std::vector<Endpoint>{direct, proxied, dead};
          co.device_id = "race-bench";
          co.token = token;
          co.heartbeat_s = 600;
          co.race_width = racing ? 3 : 1;
          co.race_stagger = 250ms;
          co.connect_timeout = 5000ms;
          co.response_timeout = std::chrono::milliseconds(o.response_timeout_ms);
          const double ms = time_to_connect(loop, co);
          if (ms < 0) ok = false;
          runs.push_back(ms);
        }
        std::sort(runs.begin(), runs.end());
        const std::string key = name + (racing ? "_racing" : "_sequential");
        medians[racing ? 0 : 1] = runs[runs.size() / 2];
        figures.emplace_back(key + "_median_ms", runs[runs.size() / 2]);
        figures.emplace_back(key + "_max_ms", runs.back());
      }
      figures.emplace_back(name + "_ratio_sequential_per_racing",
                           medians[0] > 0 ? medians[1] / medians[0] : 0);
    }
  }
  report(o, figures);
  if (!ok) std::cerr << "herald-load: a client did not connect within 60 s\n";
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  const int status = o.scenario == "push"        ? run_push(o)
                     : o.scenario == "latency"   ? run_latency(o)
                     : o.scenario == "broadcast" ? run_broadcast(o)
                     : o.scenario == "racing"    ? run_racing(o)
                                                 : run_idle(o);
  if (o.tls) std::filesystem::remove_all(o.tls->ca_file.parent_path());
  return status;
}
