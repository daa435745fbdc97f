// herald-bench: Herald side by side with the systems users would pick instead, on loopback,
// with the same subscriber counts and payloads. docs/benchmark-methodology.md says how it
// measures; docs/benchmarks.md holds the latest run.
//
// usage: herald-bench SCENARIO[,SCENARIO...] [--systems=all|herald,mosquitto-qos0,...]
//                     [--OPTION=VALUE ...] [--json]
//   storm      connect --devices subscribers over --processes worker processes (--window
//              attempts in flight each): connections per second until all are held
//   idle       the same, then server memory per held connection (user space: the server's RSS;
//              kernel: slab and TCP buffer pages, both loopback ends) and the load generator's
//   unicast    message k to subscriber k % devices at --rate for --duration-s (open loop):
//              achieved rate, latency from the API call (or publish) to the subscriber's handler
//   broadcast  --messages messages to every subscriber, sent as fast as the system takes them:
//              time to the last delivery, deliveries per second
//   churn      unicast while random subscribers disconnect, --churn-per-s in total, each
//              reconnecting --away-ms later
// Systems: herald (heraldd from this build), mosquitto-qos0, mosquitto-qos1, nats, redis (each
// started from its Debian package). Every run checks each message reached its subscribers exactly
// once and says so; the exit status is 1 when a system broke the guarantee it makes (below).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "common/flag_reader.h"
#include "delivery_check.h"
#include "herald_server.h"
#include "peers.h"
#include "process.h"
#include "sender.h"
#include "worker.h"
#include "worker_process.h"

namespace herald::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

enum class Scenario { kStorm, kIdle, kUnicast, kBroadcast, kChurn };

constexpr std::pair<std::string_view, Scenario> kScenarios[] = {
    {"storm", Scenario::kStorm},     {"idle", Scenario::kIdle},
    {"unicast", Scenario::kUnicast}, {"broadcast", Scenario::kBroadcast},
    {"churn", Scenario::kChurn},
};

std::string_view name_of(Scenario s) {
  for (const auto& [name, scenario] : kScenarios) {
    if (scenario == s) return name;
  }
  return "?";
}

const std::vector<std::string> kAllSystems = {"herald", "mosquitto-qos0", "mosquitto-qos1", "nats",
                                              "redis"};

struct Options {
  std::vector<Scenario> scenarios;
  std::vector<std::string> systems{kAllSystems};
  int devices = 1000;
  int processes = 2;
  int window = 500;        // connection attempts in flight per worker
  int per_source = 20000;  // connections per source address (about 28k ephemeral ports each)
  int rate = 1000;         // unicast and churn: messages per second
  int duration_s = 10;
  int messages = 10;  // broadcast
  int payload_bytes = 32;
  int churn_per_s = 50;     // churn: disconnections per second over all workers
  int away_ms = 1000;       // churn: how long a disconnected subscriber stays away
  int sender_threads = 16;  // Herald: HTTP API connections of the sender
  int server_threads = 2;   // heraldd --threads
  int settle_s = 10;        // give up waiting for deliveries after this long without progress
  int connect_timeout_s = 120;
  int runs = 1;  // of each scenario on each system, interleaved; figures are their medians
  std::string durability = "sync";
  bool json = false;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr
      << "herald-bench: " << why << "\n"
      << "usage: herald-bench storm|idle|unicast|broadcast|churn[,...] "
         "[--systems=all|herald,mosquitto-qos0,mosquitto-qos1,nats,redis] [--devices=N] "
         "[--processes=N] [--window=N] [--per-source=N] [--rate=N] [--duration-s=N] "
         "[--messages=N] [--payload-bytes=N] [--churn-per-s=N] [--away-ms=N] [--sender-threads=N] "
         "[--server-threads=N] [--settle-s=N] [--connect-timeout-s=N] [--runs=N] "
         "[--durability=sync|fast] [--json]\n";
  std::exit(2);
}

constexpr std::pair<std::string_view, int Options::*> kIntOptions[] = {
    {"devices", &Options::devices},
    {"processes", &Options::processes},
    {"window", &Options::window},
    {"per-source", &Options::per_source},
    {"rate", &Options::rate},
    {"duration-s", &Options::duration_s},
    {"messages", &Options::messages},
    {"payload-bytes", &Options::payload_bytes},
    {"churn-per-s", &Options::churn_per_s},
    {"away-ms", &Options::away_ms},
    {"sender-threads", &Options::sender_threads},
    {"server-threads", &Options::server_threads},
    {"settle-s", &Options::settle_s},
    {"connect-timeout-s", &Options::connect_timeout_s},
    {"runs", &Options::runs},
};

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> out;
  std::stringstream in{std::string(text)};
  for (std::string item; std::getline(in, item, ',');) out.push_back(item);
  return out;
}

// The scenarios (argv[1]) and flags (--name=value or --name value) of a run; exits with the
// usage on a mistake.
Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2 || std::string_view(argv[1]).starts_with("--")) usage("no scenario");
  for (const auto& name : split(argv[1])) {
    const auto* s = std::find_if(std::begin(kScenarios), std::end(kScenarios),
                                 [&](const auto& known) { return known.first == name; });
    if (s == std::end(kScenarios)) usage("unknown scenario " + name);
    o.scenarios.push_back(s->second);
  }
  try {
    tools::FlagReader flags(argc - 1, argv + 1);  // the scenarios stand where a program name would
    while (flags.next()) {
      const auto flag = flags.flag();
      if (flag == "--json" && !flags.has_inline_value()) {
        o.json = true;
      } else if (flag == "--systems") {
        const auto value = flags.value();
        o.systems = value == "all" ? kAllSystems : split(value);
        for (const auto& s : o.systems) {
          PeerKind kind{};
          if (s != "herald" && !parse_peer(s, kind)) usage("unknown system " + s);
        }
      } else if (flag == "--durability") {
        o.durability = flags.value();
        if (o.durability != "sync" && o.durability != "fast") usage("--durability is sync or fast");
      } else {
        const auto* option = std::find_if(
            std::begin(kIntOptions), std::end(kIntOptions),
            [&](const auto& known) { return "--" + std::string(known.first) == flag; });
        if (option == std::end(kIntOptions)) {
          usage("unknown argument \"" + std::string(flags.argument()) + "\"");
        }
        o.*(option->second) = tools::parse_number(flag, flags.value(), 1, 100'000'000);
      }
    }
  } catch (const tools::UsageError& e) {
    usage(e.what());
  }
  o.processes = std::min(o.processes, o.devices);
  return o;
}

// ---- the systems under test ----

// One system's server for one run, and the sender's side of it. send() may be called from
// sender_threads() threads at once, each with its own `thread` index.
class System {
 public:
  virtual ~System() = default;
  [[nodiscard]] virtual std::string version() const = 0;
  [[nodiscard]] virtual std::uint16_t port() const = 0;
  [[nodiscard]] virtual std::int64_t server_rss_kib() const = 0;
  [[nodiscard]] virtual std::vector<std::string> worker_args() const { return {}; }
  [[nodiscard]] virtual int sender_threads() const = 0;
  // Sends message `k` to subscriber `to`, or to every subscriber when `to` is -1; whether the
  // system accepted it (as far as it says at once: see flush()).
  virtual bool send(int thread, std::int64_t k, int to, const std::string& payload) = 0;
  // Waits until everything sent is answered; false when a message failed or the wait timed out.
  virtual bool flush() { return true; }
};

// heraldd from this build: devices registered through the API, messages through the sender API,
// each request with an idempotency key and retried while the outcome is unknown or heraldd asks
// to (a careful sender's behaviour; the key makes a second copy impossible).
class HeraldSystem final : public System {
 public:
  HeraldSystem(const Options& o, const std::filesystem::path& dir)
      : server_({"--threads=" + std::to_string(o.server_threads),
                 "--storage.durability=" + o.durability,
                 // Load runs hold idle connections: keep them for the whole run.
                 "--access.heartbeat_default_s=600", "--access.heartbeat_max_s=600",
                 // Up to --per-source devices connect from one source address at once; the
                 // peers have no per-source connection-rate limit either.
                 "--access.connect_rate_per_s=0"}),
        tokens_file_(dir / "tokens") {
    for (int t = 0; t < o.sender_threads; ++t) {
      senders_.push_back(std::make_unique<testing::Sender>(server_.http_port()));
    }
    register_devices(o.devices);
  }

  [[nodiscard]] std::string version() const override { return "heraldd (this build)"; }
  [[nodiscard]] std::uint16_t port() const override { return server_.device_port(); }
  [[nodiscard]] std::int64_t server_rss_kib() const override { return server_.rss_kib(); }
  [[nodiscard]] std::vector<std::string> worker_args() const override {
    return {"--tokens=" + tokens_file_.string()};
  }
  [[nodiscard]] int sender_threads() const override { return static_cast<int>(senders_.size()); }

  bool send(int thread, std::int64_t k, int to, const std::string& payload) override {
    boost::json::object body{{"data", boost::json::parse(payload)}};
    if (to < 0) {
      body["to"] = boost::json::object{{"broadcast", true}};
    } else {
      body["to"] = boost::json::object{
          {"devices", boost::json::array{boost::json::string("bench-" + std::to_string(to))}}};
    }
    const auto answer = senders_[static_cast<std::size_t>(thread)]->post_message_until_answered(
        testing::kNewsApp, boost::json::serialize(body), "m" + std::to_string(k), 10ms, 30s);
    if (answer.accepted()) return true;
    std::cerr << "herald-bench: message " << k << " answered " << answer.status << "\n";
    return false;
  }

 private:
  void register_devices(int n) {
    std::vector<std::string> tokens(static_cast<std::size_t>(n));
    std::atomic<int> next{0};
    std::vector<std::thread> threads;
    for (auto& sender : senders_) {
      threads.emplace_back([&, s = sender.get()] {
        for (int i = next++; i < n; i = next++) {
          tokens[static_cast<std::size_t>(i)] =
              s->register_device(testing::kNewsApp, "bench-" + std::to_string(i));
        }
      });
    }
    for (auto& t : threads) t.join();
    std::ofstream out(tokens_file_);
    for (const auto& t : tokens) out << t << "\n";
  }

  testing::HeraldServer server_;
  std::filesystem::path tokens_file_;
  std::vector<std::unique_ptr<testing::Sender>> senders_;
};

// A peer from its Debian package; messages through one pipelined publisher connection.
class PeerSystem final : public System {
 public:
  explicit PeerSystem(PeerKind kind)
      : kind_(kind), server_(kind), publisher_(kind, server_.port()) {}

  [[nodiscard]] std::string version() const override { return server_.version(); }
  [[nodiscard]] std::uint16_t port() const override { return server_.port(); }
  [[nodiscard]] std::int64_t server_rss_kib() const override { return server_.rss_kib(); }
  [[nodiscard]] int sender_threads() const override { return 1; }

  bool send(int, std::int64_t, int to, const std::string& payload) override {
    publisher_.publish(to < 0 ? broadcast_topic(kind_) : unicast_topic(kind_, to), payload);
    return true;
  }
  bool flush() override { return publisher_.flush(60s) && publisher_.failed() == 0; }

 private:
  PeerKind kind_;
  PeerServer server_;
  PeerPublisher publisher_;
};

std::unique_ptr<System> start_system(const std::string& name, const Options& o,
                                     const std::filesystem::path& dir) {
  if (name == "herald") return std::make_unique<HeraldSystem>(o, dir);
  PeerKind kind{};
  parse_peer(name, kind);
  return std::make_unique<PeerSystem>(kind);
}

// What each system promises, which the run holds it to. Herald: exactly once, always. Over a
// connection that stays up every peer delivers each message once. Under churn MQTT QoS 1 with a
// persistent session delivers at least once (duplicates allowed); QoS 0, NATS core and Redis
// pub/sub deliver at most once (what is sent while a subscriber is away is lost, by design).
bool keeps_its_promise(const std::string& system, Scenario s, const DeliveryCheck::Result& r) {
  if (system == "herald" || s != Scenario::kChurn) return r.exactly_once();
  if (system == "mosquitto-qos1") return r.lost == 0 && r.unexpected == 0;
  return r.duplicated == 0 && r.unexpected == 0;
}

std::string promise_of(const std::string& system, Scenario s) {
  if (system == "herald" || s != Scenario::kChurn) return "exactly once";
  if (system == "mosquitto-qos1") return "at least once";
  return "at most once";
}

// ---- kernel memory ----

// Slab memory and TCP buffer pages of the whole machine, in bytes: what the kernel spends on
// sockets (on loopback, both ends of every connection).
std::int64_t kernel_socket_bytes() {
  std::int64_t total = 0;
  std::ifstream meminfo("/proc/meminfo");
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("Slab:", 0) == 0) total += std::stoll(line.substr(5)) * 1024;
  }
  std::ifstream sockstat("/proc/net/sockstat");
  for (std::string word; sockstat >> word;) {
    if (word == "mem") {
      std::int64_t pages = 0;
      sockstat >> pages;
      total += pages * 4096;
      break;  // the TCP line comes first
    }
  }
  return total;
}

// ---- one run: one scenario on one fresh system ----

using Figures = std::vector<std::pair<std::string, double>>;

struct Run {
  std::string system;
  std::string version;
  Figures figures;
  std::string verdict;  // the delivery check's, or why the run could not be made
  std::string promise;
  bool ok = true;
};

// The workers of one run, and their answers summed.
class Workers {
 public:
  Workers(const Options& o, const System& system, const std::string& name) {
    for (int w = 0; w < o.processes; ++w) {
      const int first = static_cast<int>(static_cast<std::int64_t>(o.devices) * w / o.processes);
      const int next =
          static_cast<int>(static_cast<std::int64_t>(o.devices) * (w + 1) / o.processes);
      std::string sources;
      for (int s = 0; s * o.per_source < next - first; ++s) {
        if (!sources.empty()) sources += ",";
        sources += "127.1." + std::to_string(w % 256) + "." + std::to_string(s + 1);
      }
      std::vector<std::string> args{"--system=" + name,
                                    "--port=" + std::to_string(system.port()),
                                    "--first=" + std::to_string(first),
                                    "--count=" + std::to_string(next - first),
                                    "--window=" + std::to_string(o.window),
                                    "--sources=" + sources};
      for (auto& a : system.worker_args()) args.push_back(a);
      workers_.push_back(std::make_unique<WorkerProcess>(args));
    }
    for (auto& w : workers_) expect(*w, "init", 30s);
  }

  // Sends `command` to every worker and returns each one's answer, split into words.
  std::vector<std::vector<std::string>> ask(const std::string& command,
                                            std::chrono::milliseconds timeout = 30s) {
    for (auto& w : workers_) w->send(command);
    std::vector<std::vector<std::string>> answers;
    for (auto& w : workers_) {
      std::istringstream in(w->receive(timeout));
      answers.emplace_back(std::istream_iterator<std::string>(in),
                           std::istream_iterator<std::string>());
    }
    return answers;
  }

  // The sum of field `i` of every answer to `command`.
  std::int64_t sum(const std::string& command, std::size_t i) {
    std::int64_t total = 0;
    for (const auto& a : ask(command)) total += std::stoll(a.at(i));
    return total;
  }

  // Feeds every delivery of every worker into `check`; returns how many a worker could not
  // keep (past its bound), which the check cannot see.
  std::int64_t collect(const std::filesystem::path& dir, DeliveryCheck& check) {
    std::int64_t overflow = 0;
    for (std::size_t w = 0; w < workers_.size(); ++w) {
      const auto path = dir / ("deliveries-" + std::to_string(w));
      workers_[w]->send("dump " + path.string());
      std::istringstream answer(workers_[w]->receive(120s));
      std::string word;
      std::int64_t n = 0;
      std::int64_t unrecorded = 0;
      answer >> word >> n >> unrecorded;
      overflow += unrecorded;
      std::ifstream in(path, std::ios::binary);
      Delivery d;
      while (in.read(reinterpret_cast<char*>(&d), sizeof d)) check.record(d);
      std::filesystem::remove(path);
    }
    return overflow;
  }

  [[nodiscard]] std::int64_t rss_kib() const {
    std::int64_t total = 0;
    for (const auto& w : workers_) total += testing::rss_kib(w->pid());
    return total;
  }

 private:
  static void expect(WorkerProcess& w, const std::string& word, std::chrono::milliseconds timeout) {
    const auto line = w.receive(timeout);
    if (line != word) throw std::runtime_error("worker said \"" + line + "\", not " + word);
  }

  std::vector<std::unique_ptr<WorkerProcess>> workers_;
};

// Waits until the workers have `expected` deliveries, or until none came for --settle-s.
void wait_for_deliveries(const Options& o, Workers& workers, std::int64_t expected) {
  std::int64_t seen = -1;
  auto progress_at = Clock::now();
  for (;;) {
    const auto delivered = workers.sum("count", 1);
    if (delivered >= expected) return;
    if (delivered != seen) {
      seen = delivered;
      progress_at = Clock::now();
    } else if (Clock::now() - progress_at > std::chrono::seconds(o.settle_s)) {
      return;
    }
    std::this_thread::sleep_for(20ms);  // polling interval of a progress counter
  }
}

// Sends messages [0, total) open loop: message k is due at start + k / rate whatever earlier
// sends took, spread over the system's sender threads. `to(k)` is its subscriber (-1: all).
// Returns how many were accepted; `check` learns which.
std::int64_t send_paced(System& system, const Options& o, std::int64_t total, double rate,
                        const std::function<int(std::int64_t)>& to, DeliveryCheck& check,
                        std::int64_t& start_ns) {
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> accepted{0};
  std::mutex mu;
  // Paced sending starts a moment from now, so that message 0 is not already late.
  const auto start = Clock::now() + (rate > 0 ? 50ms : 0ms);
  start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count();
  std::vector<std::thread> threads;
  for (int t = 0; t < system.sender_threads(); ++t) {
    threads.emplace_back([&, t] {
      for (std::int64_t k = next++; k < total; k = next++) {
        if (rate > 0) {
          std::this_thread::sleep_until(start + std::chrono::nanoseconds(static_cast<std::int64_t>(
                                                    static_cast<double>(k) * 1e9 / rate)));
        }
        const int subscriber = to(k);
        if (!system.send(t, k, subscriber, make_payload(k, now_ns(), o.payload_bytes))) continue;
        accepted++;
        std::lock_guard lock(mu);
        check.expect(k, subscriber);
      }
    });
  }
  for (auto& t : threads) t.join();
  return accepted;
}

Run run_one(const Options& o, Scenario scenario, const std::string& name) {
  Run run;
  run.system = name;
  run.promise = promise_of(name, scenario);
  const auto dir = testing::make_temp_dir("herald-bench");
  try {
    auto system = start_system(name, o, dir);
    run.version = system->version();
    const auto server_before = system->server_rss_kib();
    const auto kernel_before = kernel_socket_bytes();
    Workers workers(o, *system, name);
    const auto workers_before = workers.rss_kib();

    // Every scenario starts with the storm: all subscribers connect at once.
    const auto go_ns = now_ns();
    std::int64_t held = 0;
    std::int64_t failed = 0;
    std::int64_t last_ns = go_ns;
    for (const auto& a : workers.ask("connect", std::chrono::seconds(o.connect_timeout_s))) {
      held += std::stoll(a.at(1));
      failed += std::stoll(a.at(2));
      last_ns = std::max<std::int64_t>(last_ns, std::stoll(a.at(3)));
    }
    const double connect_s = static_cast<double>(last_ns - go_ns) / 1e9;
    run.figures = {
        {"connections_held", static_cast<double>(held)},
        {"connections_failed", static_cast<double>(failed)},
        {"connect_all_s", connect_s},
        {"connections_per_s", connect_s > 0 ? static_cast<double>(held) / connect_s : 0}};
    if (held != o.devices) {
      run.ok = false;
      run.verdict = "only " + std::to_string(held) + " of " + std::to_string(o.devices) +
                    " subscribers connected";
      return run;
    }
    if (scenario == Scenario::kIdle) {
      const double per = 1.0 / static_cast<double>(held);
      run.figures.emplace_back(
          "server_bytes_per_conn",
          static_cast<double>(system->server_rss_kib() - server_before) * 1024 * per);
      run.figures.emplace_back("kernel_bytes_per_conn_both_ends",
                               static_cast<double>(kernel_socket_bytes() - kernel_before) * per);
      run.figures.emplace_back(
          "client_bytes_per_conn",
          static_cast<double>(workers.rss_kib() - workers_before) * 1024 * per);
    }
    if (scenario == Scenario::kStorm || scenario == Scenario::kIdle) {
      run.verdict = "all connected";
      return run;
    }

    const bool broadcast = scenario == Scenario::kBroadcast;
    const std::int64_t total =
        broadcast ? o.messages : static_cast<std::int64_t>(o.rate) * o.duration_s;
    DeliveryCheck check(broadcast ? DeliveryCheck::Mode::kBroadcast : DeliveryCheck::Mode::kUnicast,
                        o.devices, total);
    if (scenario == Scenario::kChurn) {
      workers.ask("churn " + std::to_string(static_cast<double>(o.churn_per_s) / o.processes) +
                  " " + std::to_string(o.away_ms));
    }
    std::int64_t start_ns = 0;
    const std::int64_t accepted = send_paced(
        *system, o, total, broadcast ? 0.0 : o.rate,
        [&](std::int64_t k) { return broadcast ? -1 : static_cast<int>(k % o.devices); }, check,
        start_ns);
    const double send_s = static_cast<double>(now_ns() - start_ns) / 1e9;
    const bool flushed = system->flush();
    std::int64_t reconnects = 0;
    if (scenario == Scenario::kChurn) {
      reconnects = workers.sum("count", 3);
      workers.ask("calm");
    }
    wait_for_deliveries(o, workers, broadcast ? accepted * o.devices : accepted);
    const std::int64_t overflow = workers.collect(dir, check);
    auto r = check.result();

    run.figures.emplace_back("sent", static_cast<double>(total));
    run.figures.emplace_back("accepted", static_cast<double>(accepted));
    if (broadcast) {
      const double spread_s = static_cast<double>(r.last_recv_ns - start_ns) / 1e9;
      run.figures.emplace_back("deliveries", static_cast<double>(r.delivered));
      run.figures.emplace_back("time_to_last_delivery_s", spread_s);
      run.figures.emplace_back("deliveries_per_s",
                               spread_s > 0 ? static_cast<double>(r.delivered) / spread_s : 0);
    } else {
      run.figures.emplace_back("achieved_rate_per_s", static_cast<double>(accepted) / send_s);
    }
    run.figures.emplace_back("latency_p50_ms", percentile(r.latency_ms, 50));
    run.figures.emplace_back("latency_p99_ms", percentile(r.latency_ms, 99));
    run.figures.emplace_back("latency_p999_ms", percentile(r.latency_ms, 99.9));
    run.figures.emplace_back(
        "latency_max_ms",
        r.latency_ms.empty() ? 0 : *std::max_element(r.latency_ms.begin(), r.latency_ms.end()));
    run.figures.emplace_back("lost", static_cast<double>(r.lost));
    run.figures.emplace_back("duplicated", static_cast<double>(r.duplicated));
    if (scenario == Scenario::kChurn) {
      run.figures.emplace_back("reconnects", static_cast<double>(reconnects));
    }
    run.verdict = r.verdict();
    if (!flushed) run.verdict += "; the publisher's flush failed";
    if (overflow > 0) run.verdict += "; " + std::to_string(overflow) + " deliveries not recorded";
    run.ok = keeps_its_promise(name, scenario, r) && overflow == 0 && flushed;
  } catch (const std::exception& e) {
    run.ok = false;
    run.verdict = std::string("run failed: ") + e.what();
  }
  std::filesystem::remove_all(dir);
  return run;
}

double figure(const Run& run, const std::string& name) {
  for (const auto& [k, v] : run.figures) {
    if (k == name) return v;
  }
  return 0;
}

// The runs of one system merged: each figure's median, and the verdict of the first run that
// broke the system's promise (else the last run's).
Run merge(const std::vector<Run>& runs) {
  Run out = runs.back();
  const auto broken = std::find_if(runs.begin(), runs.end(), [](const Run& r) { return !r.ok; });
  if (broken != runs.end()) {
    out.ok = false;
    out.verdict = broken->verdict + " (run " + std::to_string(broken - runs.begin() + 1) + " of " +
                  std::to_string(runs.size()) + ")";
  } else if (runs.size() > 1) {
    out.verdict += " (the last of " + std::to_string(runs.size()) + " runs, all as promised)";
  }
  for (auto& [name, value] : out.figures) {
    std::vector<double> values;
    for (const auto& r : runs) values.push_back(figure(r, name));
    value = percentile(values, 50);
  }
  return out;
}

// ---- the report ----

// How a figure compares between systems: rates (higher wins), costs in time or bytes (lower
// wins), or counts, which the delivery check judges and no ratio describes.
enum class Reading { kHigherWins, kLowerWins, kCount };

Reading reading_of(const std::string& figure) {
  if (figure.ends_with("per_s")) return Reading::kHigherWins;
  if (figure.ends_with("_ms") || figure.ends_with("_s") ||
      figure.find("bytes") != std::string::npos) {
    return Reading::kLowerWins;
  }
  return Reading::kCount;
}

std::string parameters(const Options& o, Scenario s) {
  std::string p = std::to_string(o.devices) + " subscribers over " + std::to_string(o.processes) +
                  " worker processes, " + std::to_string(o.payload_bytes) + "-byte padding";
  if (s == Scenario::kUnicast || s == Scenario::kChurn) {
    p += ", " + std::to_string(o.rate) + " messages/s for " + std::to_string(o.duration_s) + " s";
  }
  if (s == Scenario::kBroadcast) p += ", " + std::to_string(o.messages) + " messages to all";
  if (s == Scenario::kChurn) {
    p += ", " + std::to_string(o.churn_per_s) + " disconnections/s, each away " +
         std::to_string(o.away_ms) + " ms";
  }
  if (o.runs > 1) p += "; medians of " + std::to_string(o.runs) + " runs";
  return p;
}

void print_table(std::FILE* out, const Options& o, Scenario s, const std::vector<Run>& runs) {
  std::fprintf(out, "\n== %s: %s\n", std::string(name_of(s)).c_str(), parameters(o, s).c_str());
  std::fprintf(out, "%-42s", "");
  for (const auto& r : runs) std::fprintf(out, " %16s", r.system.c_str());
  std::fprintf(out, "\n");
  const auto* herald = runs.front().system == "herald" ? &runs.front() : nullptr;
  for (const auto& [name, value] : runs.front().figures) {
    std::fprintf(out, "%-42s", name.c_str());
    for (const auto& r : runs) std::fprintf(out, " %16.3f", figure(r, name));
    std::fprintf(out, "\n");
  }
  if (herald && runs.size() > 1) {
    std::fprintf(out, "peer / herald%29s", "");
    for (const auto& r : runs) {
      if (&r != herald) std::fprintf(out, " %16s", r.system.c_str());
    }
    std::fprintf(out, "\n");
    for (const auto& [name, value] : herald->figures) {
      const auto reading = reading_of(name);
      if (value == 0 || reading == Reading::kCount) continue;
      std::fprintf(out, "  %-40s",
                   (name + (reading == Reading::kLowerWins ? " (lower wins)" : "")).c_str());
      for (const auto& r : runs) {
        if (&r != herald) std::fprintf(out, " %15.2fx", figure(r, name) / value);
      }
      std::fprintf(out, "\n");
    }
  }
  for (const auto& r : runs) {
    std::fprintf(out, "%-16s %-24s promises %-14s got %s%s\n", r.system.c_str(), r.version.c_str(),
                 (r.promise + ",").c_str(), r.verdict.c_str(), r.ok ? "" : "  ** FAILED **");
  }
}

boost::json::object to_json(const Options& o, Scenario s, const std::vector<Run>& runs) {
  boost::json::object out{{"scenario", name_of(s)}, {"parameters", parameters(o, s)}};
  boost::json::array results;
  const Run* herald = runs.front().system == "herald" ? &runs.front() : nullptr;
  for (const auto& r : runs) {
    boost::json::object figures;
    boost::json::object ratios;
    for (const auto& [k, v] : r.figures) {
      // Counts stay whole numbers for the reader (18000, not 1.8E4).
      if (v == std::floor(v) && std::abs(v) < 1e15) {
        figures[k] = static_cast<std::int64_t>(v);
      } else {
        figures[k] = v;
      }
      if (herald && figure(*herald, k) != 0 && reading_of(k) != Reading::kCount) {
        ratios[k] = v / figure(*herald, k);
      }
    }
    boost::json::object one{{"system", r.system},   {"version", r.version}, {"promise", r.promise},
                            {"verdict", r.verdict}, {"ok", r.ok},           {"figures", figures}};
    if (herald && &r != herald) one["ratio_to_herald"] = ratios;
    results.push_back(one);
  }
  out["results"] = results;
  return out;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  using namespace herald::bench;
  if (argc > 1 && std::string_view(argv[1]) == "--worker") return worker_main(argc - 1, argv + 1);
  const Options o = parse(argc, argv);
  // Every process of the run (workers and servers inherit it) may open as many files as allowed.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  // The report goes to stdout, alone: what the servers and workers say goes to stderr.
  std::FILE* report = fdopen(dup(STDOUT_FILENO), "w");
  dup2(STDERR_FILENO, STDOUT_FILENO);
  bool ok = true;
  for (const auto scenario : o.scenarios) {
    // Interleaved (every system once, then again), so that a drift of the machine's state
    // touches every system alike.
    std::vector<std::vector<Run>> each(o.systems.size());
    for (int round = 0; round < o.runs; ++round) {
      for (std::size_t s = 0; s < o.systems.size(); ++s) {
        each[s].push_back(run_one(o, scenario, o.systems[s]));
      }
    }
    std::vector<Run> runs;
    for (const auto& r : each) {
      runs.push_back(merge(r));
      ok = ok && runs.back().ok;
    }
    if (o.json) {
      std::fprintf(report, "%s\n", boost::json::serialize(to_json(o, scenario, runs)).c_str());
    } else {
      print_table(report, o, scenario, runs);
    }
    std::fflush(report);
  }
  return ok ? 0 : 1;
}
