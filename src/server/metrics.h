// heraldd's monitoring: GET /metrics (the Prometheus text format, behind the admin token) and
// GET /readyz (whether this node should get new devices and requests), on the HTTP listener.
//
// A scrape reads the counters the components keep anyway (relaxed atomics: access, storage
// writer, upstream, scheduler, webhooks, the cluster router), the HTTP counters below, and the
// process's own figures (the standard process_* names), and writes them out; nothing is
// aggregated in between, so a scrape costs the same whatever the traffic. Every metric is
// listed in docs/operations.md, "Monitoring".
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "access/access_metrics.h"
#include "common/prometheus_text.h"
#include "http/message.h"

namespace herald::storage {
class RocksDbStorage;
class RedisStorage;
}  // namespace herald::storage
namespace herald::distribution {
class ClusterRouter;
}
namespace herald::logic {
class AppRegistry;
class WebhookSupervisor;
struct UpstreamMetrics;
struct SchedulerMetrics;
}  // namespace herald::logic

namespace herald::server {

class CpuMeter;

// Which of heraldd's HTTP APIs answered: the "api" label.
enum class HttpApi : std::uint8_t { kSender, kAdmin, kEndpoints, kOperations };
inline constexpr std::size_t kHttpApis = 4;
[[nodiscard]] std::string_view to_string(HttpApi api);

// Requests answered, by API and status code, and how long each took to answer (from the
// request read to the response handed to the writer). Any thread.
class HttpMetrics {
 public:
  void record(HttpApi api, unsigned status, std::chrono::nanoseconds elapsed);
  void write(metrics::PrometheusText& out) const;
  [[nodiscard]] std::uint64_t requests(HttpApi api, unsigned status) const;

 private:
  static constexpr unsigned kFirstStatus = 100;
  static constexpr unsigned kStatuses = 500;  // 100..599; anything else counts as 599
  std::array<std::array<std::atomic<std::uint64_t>, kStatuses>, kHttpApis> requests_{};
  std::array<metrics::LatencyHistogram, kHttpApis> latency_{};
};

// What a scrape reads. Pointers may be null where the mode has no such part (rocksdb in cluster
// mode; redis and cluster_router in the embedded one).
struct MetricsSources {
  std::string node;
  const access::AccessMetrics& access;
  const HttpMetrics& http;
  const logic::UpstreamMetrics& upstream;
  const logic::SchedulerMetrics& scheduler;
  const logic::AppRegistry& apps;
  const logic::WebhookSupervisor& webhooks;
  const CpuMeter& cpu;
  storage::RocksDbStorage* rocksdb = nullptr;
  storage::RedisStorage* redis = nullptr;
  const distribution::ClusterRouter* cluster_router = nullptr;
  std::function<bool()> draining;
  std::int64_t capacity = 0;  // access.effective_capacity()
  std::int64_t started_at_ms = 0;
};

// The whole exposition.
[[nodiscard]] std::string render_metrics(const MetricsSources& sources);

// Why this node is not ready now; empty when it is: "draining", "storage_unhealthy",
// "storage_needs_restart", "disk_space_below_reserve", "cluster_unsubscribed".
[[nodiscard]] std::vector<std::string> not_ready_reasons(const MetricsSources& sources);

// The response to GET /metrics or GET /readyz (`request` is one of them), given whether the
// request carries the admin token. Other methods get 405, /metrics without the token 401.
[[nodiscard]] http::Response answer_operations(const http::Request& request, bool admin,
                                               const MetricsSources& sources);
[[nodiscard]] boost::asio::awaitable<http::Response> async_answer_operations(
    http::Request request, bool admin, const MetricsSources& sources);

// Awaits `answer` and records it in `metrics` under `api`, timed from this call.
[[nodiscard]] boost::asio::awaitable<http::Response> async_counted(
    boost::asio::awaitable<http::Response> answer, HttpApi api, HttpMetrics& metrics);
// Whether `request` is for answer_operations.
[[nodiscard]] bool is_operations_request(const http::Request& request);

}  // namespace herald::server
