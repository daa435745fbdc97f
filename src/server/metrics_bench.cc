// What monitoring costs heraldd (docs/benchmarks.md, "Monitoring"):
//
// - Scrape/apps:N: one GET /metrics body (render_metrics) of a node with N apps that have a
//   webhook, over real components: the RocksDB store, the upstream service, the webhook
//   supervisor with one dispatcher per app, traffic already counted. The counter bytes_per_scrape
//   is the size of the body.
// - Observe/...: one observation of the delivery-delay histogram, which the access layer makes
//   for every entry it sends, from 1 and 2 threads at once; against the same buckets behind a
//   mutex (LockedHistogram), the way a metrics registry that locks per observation does it.
// - HttpRecord: what async_counted adds to every HTTP answer.
//
// Usage: bench/herald_metrics_bench [--benchmark_filter=Scrape] [--benchmark_min_time=0.01]

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "common/log.h"
#include "http/webhook_client.h"
#include "logic/app_registry.h"
#include "logic/message_scheduler.h"
#include "logic/upstream_service.h"
#include "logic/webhook_supervisor.h"
#include "server/cpu_meter.h"
#include "server/metrics.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "storage/rocksdb/test_util.h"

namespace herald::server {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A node as heraldd wires it for monitoring, with `apps` apps that each have a webhook (their
// dispatchers idle: nothing upstream is stored, so nothing is posted).
class Node {
 public:
  explicit Node(std::size_t apps) {
    log::set_level(log::Level::kWarn);  // not a line per app's webhook
    storage::RocksDbOptions options;
    options.path = dir_.db_path();
    storage_ = storage::RocksDbStorage::open(options).value();
    upstream_.emplace(std::vector<logic::UpstreamAppSettings>{}, 4096, storage_->streams(),
                      storage_->devices(), logic::system_clock(),
                      [this](const std::string& app) { webhooks_->wake(app); });
    webhooks_.emplace(
        std::vector<asio::any_io_executor>{io_.get_executor()}, logic::WebhookSupervisorOptions{},
        *upstream_, storage_->streams(), storage_->devices(),
        [](asio::any_io_executor executor, const std::string& url) {
          return std::make_unique<http::WebhookClient>(std::move(executor),
                                                       http::parse_webhook_url(url), 5s);
        },
        logic::system_clock());
    std::vector<logic::App> list;
    for (std::size_t i = 0; i < apps; ++i) {
      logic::App app;
      app.id = "app-" + std::to_string(i);
      app.webhook = logic::Webhook{"http://127.0.0.1:9/upstream", "secret-" + app.id, false};
      webhooks_->apply(app);
      list.push_back(std::move(app));
    }
    registry_.publish(std::move(list));
    loop_ = std::thread([this] { io_.run(); });
    count_traffic();
  }
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() {
    webhooks_->stop();
    work_.reset();
    loop_.join();
  }

  [[nodiscard]] MetricsSources sources() {
    return MetricsSources{.node = "node-1",
                          .access = access_,
                          .http = http_,
                          .upstream = upstream_->metrics(),
                          .scheduler = scheduler_,
                          .apps = registry_,
                          .webhooks = *webhooks_,
                          .cpu = cpu_,
                          .rocksdb = storage_.get(),
                          .draining = [] { return false; },
                          .capacity = 100'000};
  }

 private:
  // Figures in every family, the HTTP codes a busy node answers, latencies in every bucket.
  void count_traffic() {
    access_.connections = 90'000;
    access_.authenticated = 89'500;
    access_.accepted_total = 1'234'567;
    access_.notifies_sent_total = 98'765'432;
    access_.entries_sent_total = 123'456'789;
    for (const unsigned code : {200u, 201u, 202u, 400u, 401u, 404u, 429u, 503u}) {
      for (const HttpApi api : {HttpApi::kSender, HttpApi::kAdmin, HttpApi::kEndpoints}) {
        for (int i = 0; i < 3; ++i) http_.record(api, code, std::chrono::microseconds(150 << i));
      }
    }
    for (std::int64_t ms = 0; ms < 100'000'000; ms = ms * 3 + 1) {
      access_.delivery_delay.observe(std::chrono::milliseconds(ms));
    }
  }

  storage::testing::TempDir dir_;
  std::unique_ptr<storage::RocksDbStorage> storage_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::optional<logic::UpstreamService> upstream_;
  std::optional<logic::WebhookSupervisor> webhooks_;
  logic::AppRegistry registry_;
  logic::SchedulerMetrics scheduler_;
  access::AccessMetrics access_;
  HttpMetrics http_;
  CpuMeter cpu_;
  std::thread loop_;
};

void Scrape(benchmark::State& state) {
  Node node(static_cast<std::size_t>(state.range(0)));
  const auto sources = node.sources();
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string body = render_metrics(sources);
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
}
BENCHMARK(Scrape)->ArgName("apps")->Arg(1)->Arg(100)->Arg(1000)->Unit(benchmark::kMicrosecond);

// The same buckets as metrics::LatencyHistogram, each observation under one lock.
class LockedHistogram {
 public:
  void observe(std::chrono::nanoseconds elapsed) {
    const auto ns = std::max<std::int64_t>(0, elapsed.count());
    const double seconds = static_cast<double>(ns) / 1e9;
    const auto& bounds = metrics::LatencyHistogram::kBounds;
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin());
    std::lock_guard lock(mu_);
    ++buckets_[bucket];
    sum_ns_ += static_cast<std::uint64_t>(ns);
  }

 private:
  std::mutex mu_;
  std::array<std::uint64_t, metrics::LatencyHistogram::kBounds.size() + 1> buckets_{};
  std::uint64_t sum_ns_ = 0;
};

// Delays a push platform sees: most under a second, some from devices that were offline.
std::chrono::nanoseconds delay_of(std::uint64_t i) {
  constexpr std::array<std::chrono::nanoseconds, 8> kDelays{200us, 800us, 3ms, 12ms,
                                                            40ms,  150ms, 2s,  7200s};
  return kDelays[i % kDelays.size()];
}

metrics::LatencyHistogram shared_histogram;
LockedHistogram shared_locked_histogram;

void Observe_Atomic(benchmark::State& state) {
  std::uint64_t i = static_cast<std::uint64_t>(state.thread_index());
  for (auto _ : state) shared_histogram.observe(delay_of(i++));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(Observe_Atomic)->Threads(1)->Threads(2)->UseRealTime();

void Observe_Locked(benchmark::State& state) {
  std::uint64_t i = static_cast<std::uint64_t>(state.thread_index());
  for (auto _ : state) shared_locked_histogram.observe(delay_of(i++));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(Observe_Locked)->Threads(1)->Threads(2)->UseRealTime();

void HttpRecord(benchmark::State& state) {
  static HttpMetrics metrics;
  std::uint64_t i = 0;
  for (auto _ : state) metrics.record(HttpApi::kSender, 200, delay_of(i++));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(HttpRecord)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace herald::server

BENCHMARK_MAIN();
