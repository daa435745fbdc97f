#include "server/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <span>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "distribution/redis/cluster_router.h"
#include "distribution/webhook_dispatcher.h"
#include "http/detail/api_support.h"
#include "http/json_response.h"
#include "logic/app_registry.h"
#include "logic/logic_error.h"
#include "logic/message_scheduler.h"
#include "logic/upstream_service.h"
#include "logic/webhook_supervisor.h"
#include "server/cpu_meter.h"
#include "storage/redis/redis_storage.h"
#include "storage/rocksdb/rocksdb_storage.h"

namespace herald::server {

namespace {

namespace bhttp = boost::beast::http;
using metrics::PrometheusText;

std::uint64_t load(const std::atomic<std::uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}
std::int64_t load(const std::atomic<std::int64_t>& a) { return a.load(std::memory_order_relaxed); }

// A counter family with one unlabelled sample.
struct Counter {
  std::string_view name;
  std::string_view help;
  std::uint64_t value;
};

void write_counters(PrometheusText& out, std::span<const Counter> counters) {
  for (const auto& c : counters) out.counter(c.name, c.help, c.value);
}

void write_access(PrometheusText& out, const MetricsSources& s) {
  const auto& a = s.access;
  out.gauge("herald_access_connections", "Open device sockets, authenticated or not.",
            load(a.connections));
  out.gauge("herald_access_authenticated_connections", "Open device sockets past their Hello.",
            load(a.authenticated));
  out.gauge("herald_access_capacity",
            "Connections this node takes before it redirects new Hellos (access.capacity).",
            s.capacity);
  out.gauge("herald_draining", "1 while this node drains its devices, else 0.",
            static_cast<std::int64_t>(s.draining && s.draining() ? 1 : 0));
  const Counter counters[] = {
      {"herald_access_accepted_total", "Device sockets accepted.", load(a.accepted_total)},
      {"herald_access_rejected_over_capacity_total",
       "Device sockets closed at once: the node was at its capacity.",
       load(a.rejected_over_capacity_total)},
      {"herald_access_refused_source_rate_total",
       "Device sockets closed unread: their source address was over access.connect_rate_per_s.",
       load(a.refused_source_rate_total)},
      {"herald_access_unauthenticated_evicted_total",
       "Unauthenticated sockets shut down to admit newer ones (access.max_unauthenticated).",
       load(a.unauthenticated_evicted_total)},
      {"herald_access_auth_failures_total", "Hellos refused: unknown device or wrong token.",
       load(a.auth_failures_total)},
      {"herald_access_protocol_errors_total", "Connections closed for a protocol error.",
       load(a.protocol_errors_total)},
      {"herald_access_heartbeat_timeouts_total",
       "Connections closed: nothing heard within the heartbeat deadline.",
       load(a.heartbeat_timeouts_total)},
      {"herald_access_handshake_timeouts_total",
       "Connections closed: no Hello (or TLS handshake) within its deadline.",
       load(a.handshake_timeouts_total)},
      {"herald_access_slow_consumer_closes_total",
       "Connections closed: the device read too slowly and its output queue hit the bound.",
       load(a.slow_consumer_closes_total)},
      {"herald_access_notifies_sent_total", "Notify frames sent to devices.",
       load(a.notifies_sent_total)},
      {"herald_access_notifies_skipped_total",
       "Notifies not sent: the device had already been told of that head.",
       load(a.notifies_skipped_total)},
      {"herald_access_notifies_deferred_total",
       "Normal-priority notifies held back to be merged with others.",
       load(a.notifies_deferred_total)},
      {"herald_access_notifies_merged_total", "Notifies folded into another Notify frame.",
       load(a.notifies_merged_total)},
      {"herald_access_pulls_total", "Pull requests served.", load(a.pulls_total)},
      {"herald_access_entries_sent_total", "Stream entries sent to devices in pull replies.",
       load(a.entries_sent_total)},
      {"herald_access_acks_total", "Acks received from devices.", load(a.acks_total)},
      {"herald_access_drain_reconnects_total", "Reconnect{DRAIN} frames sent while draining.",
       load(a.drain_reconnects_total)},
      {"herald_access_overload_redirects_total",
       "Hellos answered with Reconnect{OVERLOAD}: the node was over its capacity.",
       load(a.overload_redirects_total)},
      {"herald_access_tls_handshakes_total", "Device TLS handshakes completed.",
       load(a.tls_handshakes_total)},
      {"herald_access_tls_resumed_total", "Device TLS handshakes resumed from a ticket.",
       load(a.tls_resumed_total)},
      {"herald_access_tls_failures_total",
       "Device connections ended by a TLS failure (handshake or record).",
       load(a.tls_failures_total)},
  };
  write_counters(out, counters);
  out.family("herald_delivery_delay_seconds", "histogram",
             "From a message's acceptance to its entry leaving in a pull reply: the push "
             "latency for online devices; messages that waited for an offline device are in the "
             "high buckets.");
  a.delivery_delay.write(out, "herald_delivery_delay_seconds");
}

// The writer's figures, from either store.
struct WriterFigures {
  std::uint64_t writes = 0;
  std::uint64_t appends = 0;
  std::uint64_t deduplicated = 0;
  std::uint64_t entries = 0;
  std::uint64_t tombstones = 0;
  std::uint64_t refused = 0;
};

void write_writer(PrometheusText& out, const WriterFigures& w, std::string_view writes_help) {
  const Counter counters[] = {
      {"herald_storage_writes_total", writes_help, w.writes},
      {"herald_storage_appends_total", "Append batches completed by a successful write.",
       w.appends},
      {"herald_storage_appends_deduplicated_total",
       "Append batches whose idempotency record existed: nothing written.", w.deduplicated},
      {"herald_storage_entries_written_total", "Stream entries written.", w.entries},
      {"herald_storage_tombstones_written_total",
       "Entries replaced by tombstones (revoked, or collapsed by a newer one).", w.tombstones},
      {"herald_storage_appends_refused_total",
       "Append batches refused at once: the writer's queue was full.", w.refused},
  };
  write_counters(out, counters);
}

void write_storage(PrometheusText& out, const MetricsSources& s) {
  if (s.redis != nullptr) {
    const auto w = s.redis->streams().writer_stats();
    write_writer(out,
                 {w.pipelines_written, w.appends_written, w.appends_skipped, w.entries_written,
                  w.tombstones_written, w.appends_refused},
                 "Pipelines of append scripts the Redis master answered (one AOF fsync each at "
                 "most).");
    out.counter("herald_storage_appends_failed_total",
                "Append batches failed by Redis: an error, a timeout or too few replicas (each "
                "may or may not have been applied).",
                w.appends_failed);
  }
  if (s.rocksdb == nullptr) return;
  auto& database = s.rocksdb->database();
  out.gauge("herald_storage_healthy",
            "1 while the store accepts writes, 0 after a failed write until RocksDB resumed.",
            static_cast<std::int64_t>(database.healthy() ? 1 : 0));
  out.gauge("herald_storage_needs_restart",
            "1 once RocksDB refused to resume: only a restart makes the store writable again.",
            static_cast<std::int64_t>(database.needs_restart() ? 1 : 0));
  const auto& space = database.free_space();
  out.gauge("herald_storage_free_bytes", "Free bytes on the data directory's file system.",
            static_cast<std::int64_t>(space.free_bytes()));
  out.gauge("herald_storage_min_free_bytes",
            "The reserve (storage.min_free_mb): below it new messages are refused.",
            static_cast<std::int64_t>(space.min_free_bytes()));
  const auto w = s.rocksdb->streams().writer_stats();
  write_writer(out,
               {w.batches_written, w.appends_written, w.appends_skipped, w.entries_written,
                w.tombstones_written, w.appends_refused},
               "Group commits written to RocksDB (in sync mode, one fsync each at most).");
}

void write_logic(PrometheusText& out, const MetricsSources& s) {
  const auto& u = s.upstream;
  const auto& m = s.scheduler;
  const Counter counters[] = {
      {"herald_upstream_stored_total", "Upstream messages from devices stored.",
       load(u.stored_total)},
      {"herald_upstream_duplicates_total",
       "Upstream messages sent again by a device: already stored, nothing written.",
       load(u.duplicates_total)},
      {"herald_upstream_busy_total",
       "Upstream messages refused for now (a bound or a full writer queue).", load(u.busy_total)},
      {"herald_scheduled_total", "Sends scheduled for later.", load(m.scheduled_total)},
      {"herald_scheduled_fired_total", "Scheduled sends sent when due.", load(m.fired_total)},
      {"herald_scheduled_cancelled_total", "Scheduled sends cancelled.", load(m.cancelled_total)},
      {"herald_scheduled_rejected_total",
       "Scheduled sends dropped when due: they no longer passed validation.",
       load(m.rejected_total)},
      {"herald_scheduled_retries_total",
       "Scheduled sends that failed to store when due and wait for a retry.",
       load(m.retries_total)},
  };
  write_counters(out, counters);

  // Webhooks, one sample per app that has a dispatcher.
  struct Delivery {
    std::string app;
    std::shared_ptr<distribution::WebhookDispatcher> dispatcher;
  };
  std::vector<Delivery> deliveries;
  const auto apps = s.apps.apps();
  for (const auto& app : apps) {
    if (auto d = s.webhooks.dispatcher(app->id)) deliveries.push_back({app->id, std::move(d)});
  }
  out.gauge("herald_apps", "Apps known to this node.", static_cast<std::int64_t>(apps.size()));
  using Field = const std::atomic<std::uint64_t> distribution::WebhookDispatcherMetrics::*;
  struct WebhookCounter {
    std::string_view name;
    std::string_view help;
    Field field;
  };
  const WebhookCounter webhook_counters[] = {
      {"herald_webhook_delivered_total", "Upstream messages the app's webhook answered 2xx for.",
       &distribution::WebhookDispatcherMetrics::delivered_total},
      {"herald_webhook_posts_total", "Webhook POSTs answered 2xx.",
       &distribution::WebhookDispatcherMetrics::batches_total},
      {"herald_webhook_failed_posts_total", "Webhook POSTs not answered 2xx (retried).",
       &distribution::WebhookDispatcherMetrics::failed_attempts_total},
      {"herald_webhook_expired_total", "Upstream messages that expired before delivery.",
       &distribution::WebhookDispatcherMetrics::expired_total},
  };
  for (const auto& c : webhook_counters) {
    out.family(c.name, "counter", c.help);
    for (const auto& d : deliveries) {
      out.sample(c.name, load(d.dispatcher->metrics().*c.field), {{"app", d.app}});
    }
  }
}

void write_cluster(PrometheusText& out, const MetricsSources& s) {
  if (s.cluster_router == nullptr) return;
  const auto r = s.cluster_router->stats();
  out.gauge("herald_cluster_subscribed",
            "1 while the node holds its pub/sub subscriptions in the Redis Cluster.",
            static_cast<std::int64_t>(r.subscribed ? 1 : 0));
  const Counter counters[] = {
      {"herald_cluster_forwarded_total", "Notifies published to the node holding their device.",
       r.forwarded},
      {"herald_cluster_broadcast_total", "Stream notifies published to every node.", r.broadcast},
      {"herald_cluster_no_route_total",
       "Notifies for devices with no route on another node: not sent.", r.no_route},
      {"herald_cluster_unreachable_total",
       "Forwarded notifies no node was subscribed for (a crashed node's route).", r.unreachable},
      {"herald_cluster_dropped_total",
       "Forwards refused: the forwarder's queue was full or the record not encodable.", r.dropped},
      {"herald_cluster_forward_failures_total", "Forwards lost to a Redis error.",
       r.forward_failures},
      {"herald_cluster_received_total", "Notifies received from other nodes.", r.received},
      {"herald_cluster_received_offline_total",
       "Notifies received for devices no longer attached here.", r.received_offline},
      {"herald_cluster_malformed_total", "Pub/sub messages ignored as not well formed.",
       r.malformed},
      {"herald_cluster_route_writes_total", "Route sets and deletes applied.", r.route_writes},
      {"herald_cluster_route_writes_dropped_total",
       "Route writes refused: the writer's queue was full.", r.route_writes_dropped},
      {"herald_cluster_route_writes_failed_total",
       "Route writes lost to a Redis error (the sweep restores them).", r.route_writes_failed},
      {"herald_cluster_routes_refreshed_total", "Routes rewritten by the sweep.",
       r.routes_refreshed},
      {"herald_cluster_lookup_failures_total",
       "Route lookups that failed (the device was answered offline).", r.lookups_failed},
      {"herald_cluster_subscriber_errors_total",
       "Broken pub/sub subscriptions (then resubscribed).", r.subscriber_errors},
  };
  write_counters(out, counters);
}

// The request's path, without its query.
std::string_view path_of(const http::Request& request) {
  const std::string_view target = request.target();
  return target.substr(0, target.find('?'));
}

void write_process(PrometheusText& out, const MetricsSources& s) {
  // The standard names of Prometheus's process collector, so existing dashboards work.
  timespec cpu{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  out.family("process_cpu_seconds_total", "counter", "User and system CPU time spent, seconds.");
  out.sample("process_cpu_seconds_total",
             static_cast<double>(cpu.tv_sec) + static_cast<double>(cpu.tv_nsec) / 1e9);
  std::int64_t resident_pages = 0;
  std::int64_t virtual_pages = 0;
  if (std::ifstream statm("/proc/self/statm"); statm) statm >> virtual_pages >> resident_pages;
  const std::int64_t page = ::sysconf(_SC_PAGESIZE);
  out.gauge("process_resident_memory_bytes", "Resident memory size, bytes.", resident_pages * page);
  out.gauge("process_virtual_memory_bytes", "Virtual memory size, bytes.", virtual_pages * page);
  std::int64_t fds = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  out.gauge("process_open_fds", "Open file descriptors (device and HTTP sockets among them).", fds);
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  out.gauge("process_max_fds", "The open-files limit.", static_cast<std::int64_t>(files.rlim_cur));
  out.gauge("process_start_time_seconds", "Start time since the Unix epoch, seconds.",
            static_cast<double>(s.started_at_ms) / 1e3);
  out.gauge("herald_cpu_share",
            "Share of the machine's CPU this process used over the last second, 0 to 1 (the "
            "endpoint list's load figure).",
            s.cpu.share());
}

}  // namespace

std::string_view to_string(HttpApi api) {
  switch (api) {
    case HttpApi::kSender:
      return "sender";
    case HttpApi::kAdmin:
      return "admin";
    case HttpApi::kEndpoints:
      return "endpoints";
    case HttpApi::kOperations:
      return "operations";
  }
  return "unknown";
}

void HttpMetrics::record(HttpApi api, unsigned status, std::chrono::nanoseconds elapsed) {
  const auto a = static_cast<std::size_t>(api);
  const unsigned index = status >= kFirstStatus && status < kFirstStatus + kStatuses
                             ? status - kFirstStatus
                             : kStatuses - 1;
  requests_[a][index].fetch_add(1, std::memory_order_relaxed);
  latency_[a].observe(elapsed);
}

std::uint64_t HttpMetrics::requests(HttpApi api, unsigned status) const {
  if (status < kFirstStatus || status >= kFirstStatus + kStatuses) return 0;
  return load(requests_[static_cast<std::size_t>(api)][status - kFirstStatus]);
}

void HttpMetrics::write(PrometheusText& out) const {
  out.family("herald_http_requests_total", "counter",
             "HTTP requests answered, by API (sender, admin, endpoints, operations) and status.");
  for (std::size_t a = 0; a < kHttpApis; ++a) {
    const auto api = to_string(static_cast<HttpApi>(a));
    for (unsigned i = 0; i < kStatuses; ++i) {
      const auto n = load(requests_[a][i]);
      if (n == 0) continue;
      const auto code = std::to_string(kFirstStatus + i);
      out.sample("herald_http_requests_total", n, {{"api", api}, {"code", code}});
    }
  }
  out.family("herald_http_request_duration_seconds", "histogram",
             "Time from a request read to its response handed to the writer, by API.");
  for (std::size_t a = 0; a < kHttpApis; ++a) {
    latency_[a].write(out, "herald_http_request_duration_seconds",
                      {{"api", to_string(static_cast<HttpApi>(a))}});
  }
}

std::string render_metrics(const MetricsSources& sources) {
  PrometheusText out;
  out.family("herald_node_info", "gauge", "This node's name; always 1.");
  out.sample("herald_node_info", std::int64_t{1}, {{"node", sources.node}});
  write_access(out, sources);
  sources.http.write(out);
  write_storage(out, sources);
  write_logic(out, sources);
  write_cluster(out, sources);
  write_process(out, sources);
  return out.take();
}

std::vector<std::string> not_ready_reasons(const MetricsSources& s) {
  std::vector<std::string> reasons;
  if (s.draining && s.draining()) reasons.emplace_back("draining");
  if (s.rocksdb != nullptr) {
    auto& database = s.rocksdb->database();
    if (database.needs_restart()) {
      reasons.emplace_back("storage_needs_restart");
    } else if (!database.healthy()) {
      reasons.emplace_back("storage_unhealthy");
    }
    if (database.free_space().below_reserve()) reasons.emplace_back("disk_space_below_reserve");
  }
  if (s.cluster_router != nullptr && !s.cluster_router->stats().subscribed) {
    reasons.emplace_back("cluster_unsubscribed");
  }
  return reasons;
}

bool is_operations_request(const http::Request& request) {
  const auto path = path_of(request);
  return path == "/metrics" || path == "/readyz";
}

http::Response answer_operations(const http::Request& request, bool admin,
                                 const MetricsSources& sources) {
  if (request.method() != bhttp::verb::get) return http::detail::method_not_allowed("GET");
  if (path_of(request) == "/readyz") {
    const auto reasons = not_ready_reasons(sources);
    if (reasons.empty()) {
      return http::json_response(bhttp::status::ok, boost::json::object{{"status", "ready"}});
    }
    boost::json::array list;
    for (const auto& r : reasons) list.emplace_back(r);
    return http::json_response(bhttp::status::service_unavailable,
                               boost::json::object{{"status", "not_ready"}, {"reasons", list}});
  }
  if (!admin) {
    return http::detail::error_of(
        logic::LogicError::kUnauthorized,
        "GET /metrics takes the admin token (Authorization: Bearer <token>)");
  }
  http::Response response{bhttp::status::ok, request.version()};
  response.set(bhttp::field::content_type, metrics::PrometheusText::kContentType);
  response.body() = render_metrics(sources);
  return response;
}

boost::asio::awaitable<http::Response> async_answer_operations(http::Request request, bool admin,
                                                               const MetricsSources& sources) {
  co_return answer_operations(request, admin, sources);
}

boost::asio::awaitable<http::Response> async_counted(boost::asio::awaitable<http::Response> answer,
                                                     HttpApi api, HttpMetrics& metrics) {
  const auto started = std::chrono::steady_clock::now();
  http::Response response = co_await std::move(answer);
  metrics.record(api, response.result_int(), std::chrono::steady_clock::now() - started);
  co_return response;
}

}  // namespace herald::server
