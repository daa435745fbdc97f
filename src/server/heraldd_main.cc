// heraldd: all four layers of Herald in one process (the embedded default).
//
//   event loops (one thread each) ── access: device connections (SO_REUSEPORT per loop)
//                                 ├─ http: the sender API, the admin API, the signed endpoint
//                                 │  list (peers' loads polled on the first loop)
//                                 └─ distribution: one WebhookDispatcher per app with a webhook,
//                                    kept in line with the app's settings by WebhookSupervisor
//   logic (MessageService, UpstreamService) ── storage (RocksDB, group-commit writer thread)
//                                           └─ distribution (LocalRouter, dispatchers' wake-up)
//   MessageScheduler: scheduled sends, one coroutine on the first loop (started with the
//   listeners, after it counted what an earlier run left scheduled; stopped on shutdown)
//
// Start-up failures (bad config, unusable data directory, port in use) print one line naming the
// cause and exit 2. SIGINT/SIGTERM (or POST /v1/admin/drain) drain the node (NodeDrain): the
// device listeners close, devices are asked at a bounded rate to reconnect elsewhere, and once
// they left (or at the drain's deadline, or at a second signal) the process stops cleanly:
// listeners close, in-flight requests finish, the store records a clean shutdown.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <google/protobuf/stubs/logging.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "access/access_server.h"
#include "access/heartbeat_advisor.h"
#include "common/log.h"
#include "common/run_to_completion.h"
#include "distribution/local_router.h"
#include "distribution/redis/cluster_router.h"
#include "distribution/webhook_dispatcher.h"
#include "http/admin_api.h"
#include "http/endpoint_api.h"
#include "http/http_server.h"
#include "http/sender_api.h"
#include "http/webhook_client.h"
#include "logic/alias_service.h"
#include "logic/app_registry.h"
#include "logic/app_service.h"
#include "logic/device_token.h"
#include "logic/message_id.h"
#include "logic/message_scheduler.h"
#include "logic/message_service.h"
#include "logic/presence_log.h"
#include "logic/rate_limiter.h"
#include "logic/topic_service.h"
#include "logic/upstream_service.h"
#include "logic/webhook_supervisor.h"
#include "server/config.h"
#include "server/cpu_meter.h"
#include "server/metrics.h"
#include "server/node_drain.h"
#include "server/node_number.h"
#include "server/secrets.h"
#include "storage/redis/redis_storage.h"
#include "storage/rocksdb/rocksdb_storage.h"
#include "tls/tls_context.h"

namespace {

namespace asio = boost::asio;
using namespace herald;

constexpr std::string_view kDemoApp = "demo";
// How long a stopping server waits for devices to take their Reconnect frames.
constexpr auto kDrainTime = std::chrono::milliseconds(500);

log::Level parse_level(const std::string& s) {
  if (s == "debug") return log::Level::kDebug;
  if (s == "warn") return log::Level::kWarn;
  if (s == "error") return log::Level::kError;
  return log::Level::kInfo;
}

// Writes the ready file atomically (rename), so a watcher never reads half of it.
void write_ready_file(const std::filesystem::path& path, std::uint16_t device_port,
                      std::uint16_t http_port) {
  const boost::json::object ready{{"device_port", device_port},
                                  {"http_port", http_port},
                                  {"pid", static_cast<std::int64_t>(::getpid())}};
  const auto tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp);
    out << boost::json::serialize(ready) << "\n";
    if (!out) throw std::runtime_error("ready_file: cannot write " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

void print_banner(const server::Config& config, std::uint16_t device_port, std::uint16_t http_port,
                  bool demo, const std::string& demo_key) {
  const char* const scheme = config.http.tls ? "https" : "http";
  std::printf("heraldd %s: devices on %s:%u%s, sender API on %s://%s:%u, data in %s\n", "0.1.0",
              config.access.listen_address.c_str(), device_port, config.tls.access ? " (TLS)" : "",
              scheme, config.http.listen_address.c_str(), http_port, config.data_dir.c_str());
  if (demo) {
    std::printf(
        "\nNo apps configured: serving the demo app \"%s\" (key kept in %s).\n"
        "Send a first push, from another terminal in this directory:\n\n"
        "  export HERALD_API_KEY=%s HERALD_SERVER=%s://127.0.0.1:%u\n"
        "  TOKEN=$(build/bin/herald register --app demo --device phone-1)\n"
        "  build/bin/herald-device --server 127.0.0.1:%u --device phone-1 --token \"$TOKEN\" "
        "--print &\n"
        "  build/bin/herald push --app demo --device phone-1 --data '{\"hello\":\"world\"}'\n\n",
        std::string(kDemoApp).c_str(), (config.data_dir / "demo_api_key").c_str(), demo_key.c_str(),
        scheme, http_port, device_port);
  }
  std::fflush(stdout);
}

// Where devices are told to connect: configured, else the device listener unless it listens on a
// wildcard address (which says nothing a device could dial).
std::vector<http::HostPort> advertised_endpoints(const server::Config& config,
                                                 std::uint16_t device_port) {
  std::vector<http::HostPort> out;
  for (const auto& a : config.advertise) out.push_back({a.host, a.port});
  boost::system::error_code ec;
  const auto listen = asio::ip::make_address(config.access.listen_address, ec);
  if (out.empty() && !ec && !listen.is_unspecified()) {
    out.push_back({config.access.listen_address, device_port});
  }
  return out;
}

std::filesystem::path signing_key_path(const server::Config& config) {
  return config.endpoints.signing_key_file.empty() ? config.data_dir / "endpoint_signing_key.pem"
                                                   : config.endpoints.signing_key_file;
}

// --print-endpoint-public-key: what clients embed to verify endpoint lists.
int print_endpoint_public_key(const server::Config& config) {
  const auto path = signing_key_path(config);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const auto signer = server::load_or_create_signing_key(path);
  std::printf("%s\n", signer.public_key_base64().c_str());
  return 0;
}

// Every connection is a file: use all the descriptors this process may have.
void raise_file_limit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
}

// The storage layer behind its three interfaces, whichever backend holds it.
struct Storage {
  std::unique_ptr<storage::RocksDbStorage> rocksdb;
  std::unique_ptr<storage::RedisStorage> redis;

  storage::StreamStore& streams() {
    return rocksdb ? static_cast<storage::StreamStore&>(rocksdb->streams()) : redis->streams();
  }
  storage::RecordStore& records() {
    return rocksdb ? static_cast<storage::RecordStore&>(rocksdb->records()) : redis->records();
  }
  storage::DeviceStore& devices() {
    return rocksdb ? static_cast<storage::DeviceStore&>(rocksdb->devices()) : redis->devices();
  }
};

Storage open_rocksdb_storage(const server::Config& config) {
  storage::RocksDbOptions options;
  options.path = (config.data_dir / "rocksdb").string();
  options.durability =
      config.storage.durability == "fast" ? storage::Durability::kFast : storage::Durability::kSync;
  options.writer_queue_entries = config.storage.writer_queue;
  options.block_cache_bytes = config.storage.block_cache_mb << 20;
  options.min_free_bytes = static_cast<std::uint64_t>(config.storage.min_free_mb) << 20;
  auto opened = storage::RocksDbStorage::open(options);
  if (!opened) throw std::runtime_error("storage: " + opened.error().message);
  return {std::move(*opened), nullptr};
}

Storage open_redis_storage(const server::Config& config,
                           const std::vector<storage::RedisEndpoint>& nodes) {
  storage::RedisStorageOptions options;
  options.nodes = nodes;
  options.keyspace = config.storage.redis_keyspace;
  options.command_timeout = std::chrono::milliseconds(config.storage.redis_timeout_ms);
  options.writer_queue_entries = config.storage.writer_queue;
  options.replicas_to_wait = static_cast<int>(config.storage.redis_replicas_to_wait);
  auto opened = storage::RedisStorage::open(options);
  if (!opened) throw std::runtime_error("storage: " + opened.error().message);
  log::info("storage_redis",
            {{"nodes", config.storage.redis_nodes}, {"keyspace", config.storage.redis_keyspace}});
  return {nullptr, std::move(*opened)};
}

std::uint32_t claim_node_number(Storage& store, const std::string& node_name) {
  asio::io_context start_up;
  auto claimed = run_to_completion(
      start_up, server::async_claim_node_number(store.streams(), store.records(), node_name,
                                                logic::system_clock()()));
  if (!claimed) throw std::runtime_error("node number: " + claimed.error().message());
  log::info("node_number", {{"node", node_name}, {"number", *claimed}});
  return *claimed;
}

int run(server::Config config) {
  if (config.print_endpoint_public_key) return print_endpoint_public_key(config);
  const std::int64_t started_at_ms = logic::system_clock()();
  log::set_level(parse_level(config.log_level));
  raise_file_limit();
  std::filesystem::create_directories(config.data_dir);

  // Secrets: configured, or generated once and kept in the data directory.
  if (config.admin.token.empty()) {
    config.admin.token = server::load_or_create_secret(config.data_dir / "admin_token", 16);
  }
  if (config.node_name.empty()) config.node_name = boost::asio::ip::host_name();
  if (config.auth.token_secret.empty()) {
    config.auth.token_secret = server::load_or_create_secret(config.data_dir / "token_secret", 32);
  }
  // TLS: one server context for device connections and the HTTP API; its ticket keys derive from
  // a secret every node of the deployment shares (copy the file, or set tls.ticket_secret).
  std::shared_ptr<asio::ssl::context> tls_context;
  if (config.tls.access || config.http.tls) {
    if (config.tls.ticket_secret.empty()) {
      config.tls.ticket_secret =
          server::load_or_create_secret(config.data_dir / "tls_ticket_secret", 32);
    }
    tls_context =
        tls::make_server_context({config.tls.cert_file.string(), config.tls.key_file.string(),
                                  config.tls.ticket_secret, config.tls.ticket_lifetime_s});
  }
  const auto signer = server::load_or_create_signing_key(signing_key_path(config));
  log::info("endpoint_signing_key", {{"file", signing_key_path(config).string()},
                                     {"key_id", signer.key_id()},
                                     {"public_key", signer.public_key_base64()}});
  const bool demo = config.apps.empty();
  std::string demo_key;
  if (demo) {
    demo_key = server::load_or_create_secret(config.data_dir / "demo_api_key", 16);
    config.apps.push_back({std::string(kDemoApp), {demo_key}});
  }

  // Storage: the embedded RocksDB store, or the Redis Cluster every node of the deployment
  // shares (cluster mode). Declared before everything that uses it, so destroyed after.
  const bool cluster = config.storage.backend == "redis";
  const auto redis_nodes = cluster
                               ? storage::parse_redis_endpoints(config.storage.redis_nodes).value()
                               : std::vector<storage::RedisEndpoint>{};
  Storage store = cluster ? open_redis_storage(config, redis_nodes) : open_rocksdb_storage(config);

  // Pull answers fill about half a frame with data; the rest is headroom for the other fields.
  config.messages.max_pull_bytes = config.access.max_frame_bytes / 2;
  // A peer sending invalid UTF-8 makes protobuf log an error per frame; the frame is refused with
  // an Error frame and counted, so the library's own log line would only let peers flood logs.
  google::protobuf::SetLogHandler(nullptr);

  // Logic and distribution.
  logic::AppRegistry apps;
  logic::RateLimiter limiter;
  const logic::DeviceTokenAuthority tokens(config.auth.token_secret, config.auth.token_max_age_s);
  // Message ids carry the node's number: 0 alone, one held under a lease in a cluster.
  const std::uint32_t node_number = cluster ? claim_node_number(store, config.node_name) : 0;
  logic::MessageIdGenerator ids(node_number);
  // Routes: this process's connections; in a cluster also every node's, in Redis, with notifies
  // crossing to the node that holds the device.
  std::optional<distribution::LocalRouter> local_router;
  std::optional<distribution::ClusterRouter> cluster_router;
  logic::PresenceLog presence(store.streams(), store.records(), logic::system_clock());
  auto seen = [&presence](std::string_view device, bool) { presence.seen(device); };
  if (cluster) {
    distribution::ClusterRouterOptions options;
    options.nodes = redis_nodes;
    options.keyspace = config.storage.redis_keyspace;
    options.node_name = config.node_name;
    options.command_timeout = std::chrono::milliseconds(config.storage.redis_timeout_ms);
    cluster_router.emplace(std::move(options));
    cluster_router->set_presence_listener(seen);
    cluster_router->start();
  } else {
    local_router.emplace();
    local_router->set_presence_listener(seen);
  }
  distribution::Router& router = cluster ? static_cast<distribution::Router&>(*cluster_router)
                                         : static_cast<distribution::Router&>(*local_router);
  logic::MessageTracker tracker(store.streams(), store.records(), store.devices(), router,
                                logic::system_clock());
  logic::TopicService topics(store.streams(), store.records(), store.devices(), apps, router,
                             logic::system_clock());
  if (auto opened_topics = topics.open(); !opened_topics) {
    throw std::runtime_error("topics: cannot read them: " + opened_topics.error().message());
  }
  logic::MessageService messages(config.messages, apps, store.streams(), store.devices(), router,
                                 ids, tracker, topics, logic::system_clock());

  // Event loops: one io_context per thread; access and http share them.
  const int threads = config.threads > 0
                          ? config.threads
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::io_context*> loops;
  for (int i = 0; i < threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    loops.push_back(contexts.back().get());
  }

  // Webhooks named in the configuration, with their secrets: configured, or generated once and
  // kept in the data directory. AppService stores them with their apps (the file owns them).
  for (auto& app : config.apps) {
    const auto it = config.app_upstream.find(app.id);
    if (it == config.app_upstream.end() || it->second.webhook_url.empty()) continue;
    auto& settings = it->second;
    std::string secret_source = "configured";
    if (settings.webhook_secret.empty()) {
      const auto path = server::webhook_secret_path(config.data_dir, app.id);
      settings.webhook_secret = server::load_or_create_secret(path, 32);
      secret_source = path.string();
    }
    app.webhook = logic::Webhook{settings.webhook_url, settings.webhook_secret};
    log::info("upstream_webhook_configured",
              {{"app", app.id}, {"url", settings.webhook_url}, {"secret", secret_source}});
  }

  // Upstream: UpstreamService stores what devices send; the supervisor keeps one dispatcher per
  // app with a webhook (spread over the loops) in line with the app's settings, from start-up
  // (async_load tells it every app) to every admin change, and tells UpstreamService which apps
  // accept. A stored message wakes its app's dispatcher through the supervisor, which exists
  // before anything can be stored.
  std::optional<logic::WebhookSupervisor> webhooks;
  logic::UpstreamService upstream({}, config.messages.max_payload_bytes, store.streams(),
                                  store.devices(), logic::system_clock(),
                                  [&webhooks](const std::string& app) { webhooks->wake(app); });
  logic::WebhookSupervisorOptions webhook_options;
  const server::AppUpstreamSettings upstream_defaults;
  webhook_options.defaults = {"", upstream_defaults.upstream_max_pending,
                              upstream_defaults.upstream_ttl_s};
  for (const auto& [app, settings] : config.app_upstream) {
    webhook_options.per_app[app] = {app, settings.upstream_max_pending, settings.upstream_ttl_s};
  }
  webhook_options.max_batch_messages = config.upstream.batch_max_messages;
  webhook_options.retry_initial = std::chrono::milliseconds(config.upstream.retry_initial_ms);
  webhook_options.retry_max = std::chrono::milliseconds(config.upstream.retry_max_ms);
  std::vector<asio::any_io_executor> webhook_loops;
  for (auto* loop : loops) webhook_loops.push_back(loop->get_executor());
  const auto webhook_timeout = std::chrono::milliseconds(config.upstream.webhook_timeout_ms);
  webhooks.emplace(
      std::move(webhook_loops), std::move(webhook_options), upstream, store.streams(),
      store.devices(),
      [webhook_timeout](asio::any_io_executor executor, const std::string& url) {
        return std::make_unique<http::WebhookClient>(std::move(executor),
                                                     http::parse_webhook_url(url), webhook_timeout);
      },
      logic::system_clock());

  // Apps: the stored ones, reconciled with the configured ones, before anything is served.
  logic::AppService app_service(loops.front()->get_executor(), store.streams(), store.records(),
                                apps, limiter, logic::system_clock());
  app_service.on_change([&webhooks](const logic::App& app) { webhooks->apply(app); });
  {
    asio::io_context start_up;
    const auto loaded = run_to_completion(start_up, app_service.async_load(config.apps));
    if (!loaded) throw std::runtime_error("apps: cannot load: " + loaded.error().message());
  }
  logic::AliasService aliases(loops.front()->get_executor(), store.streams(), store.records(),
                              store.devices(), logic::system_clock());
  // Scheduled sends: the pending ones an earlier run left are counted before anything is served
  // (the limits hold from the first request); the loop starts with the listeners and fires the
  // overdue ones at once.
  const auto scheduler = logic::MessageScheduler::create(
      loops.front()->get_executor(), config.scheduler, messages, tracker, store.streams(),
      store.records(), ids, logic::system_clock());
  if (auto recovered = scheduler->recover(); !recovered) {
    throw std::runtime_error("scheduler: cannot read the scheduled messages: " +
                             recovered.error().message());
  }

  access::AccessMetrics access_metrics;
  // What devices settled on per network, from their Hellos; read by the endpoint list's hints.
  access::HeartbeatAdvisor heartbeat_advisor;
  // Devices this node sends away (drain, overload) go to the peer the endpoint directory picks;
  // the directory exists before the listeners start.
  http::EndpointDirectory* redirect_directory = nullptr;
  const access::AccessContext access_context{
      config.access,
      messages,
      upstream,
      topics,
      tokens,
      router,
      access_metrics,
      [&redirect_directory](bool need_room) {
        const auto peer =
            redirect_directory->pick_peer(http::EndpointDirectory::SteadyClock::now(), need_room);
        return peer ? http::host_port_text(*peer) : std::string();
      },
      &heartbeat_advisor,
      config.tls.access ? tls_context->native_handle() : nullptr};
  access::AccessServer access(loops, access_context);

  http::SenderApi api({messages, apps, tokens, store.devices(), store.streams(), store.records(),
                       aliases, router, limiter, presence, tracker, *scheduler, ids, topics,
                       config.node_name, logic::system_clock()});
  // Draining, and the clean stop that ends it (on the first loop, serialised with everything
  // else). Both are defined further down, once everything they stop exists.
  std::atomic<bool> draining{false};
  std::function<void()> stop_process;
  server::NodeDrain node_drain(
      *loops.front(), access, access_metrics, draining,
      {config.access.drain_rate_per_s, config.access.drain_deadline_s},
      [&stop_process] { stop_process(); }, logic::system_clock());
  http::AdminApi admin({app_service, apps, store.devices(), store.streams(), router, presence,
                        config.node_name, config.admin.token, logic::system_clock(), &node_drain});
  // The endpoint list: this node's load, measured per request, and its peers', polled.
  server::CpuMeter cpu;
  const auto advertised = advertised_endpoints(config, access.port());
  http::EndpointDirectory directory(
      [&] {
        return http::NodeLoad{config.node_name,
                              advertised,
                              access_metrics.connections.load(std::memory_order_relaxed),
                              static_cast<std::int64_t>(config.access.effective_capacity()),
                              cpu.share(),
                              draining.load(std::memory_order_relaxed),
                              logic::system_clock()()};
      },
      std::chrono::milliseconds(config.deployment.peer_timeout_ms));
  redirect_directory = &directory;
  http::EndpointApi endpoint_api(
      {directory, signer, std::chrono::seconds(config.endpoints.validity_s), logic::system_clock(),
       [&heartbeat_advisor](const std::string& network) -> std::optional<http::HeartbeatHint> {
         const auto advice = heartbeat_advisor.hint(network, logic::system_clock()());
         if (!advice) return std::nullopt;
         return http::HeartbeatHint{network, advice->start_s, advice->reports};
       }});
  http::HttpServerOptions http_options;
  http_options.max_body_bytes = config.http.max_body_bytes;
  http_options.max_connections = config.http.max_connections;
  if (config.http.tls) http_options.tls = tls_context;
  boost::system::error_code ec;
  const auto http_address = asio::ip::make_address(config.http.listen_address, ec);
  if (ec)
    throw server::ConfigError("http.listen: not an IP address: " + config.http.listen_address);
  // Monitoring: GET /metrics (Prometheus, behind the admin token) and GET /readyz.
  server::HttpMetrics http_metrics;
  const server::MetricsSources metrics_sources{
      .node = config.node_name,
      .access = access_metrics,
      .http = http_metrics,
      .upstream = upstream.metrics(),
      .scheduler = scheduler->metrics(),
      .apps = apps,
      .webhooks = *webhooks,
      .cpu = cpu,
      .rocksdb = store.rocksdb.get(),
      .redis = store.redis.get(),
      .cluster_router = cluster ? &*cluster_router : nullptr,
      .draining = [&draining] { return draining.load(std::memory_order_relaxed); },
      .capacity = static_cast<std::int64_t>(config.access.effective_capacity()),
      .started_at_ms = started_at_ms};
  http::HttpServer http_server(
      loops, {http_address, config.http.listen_port},
      [&api, &admin, &endpoint_api, &http_metrics, &metrics_sources](http::Request request) {
        using server::HttpApi;
        if (http::EndpointApi::serves(request)) {
          return server::async_counted(endpoint_api.handle(std::move(request)), HttpApi::kEndpoints,
                                       http_metrics);
        }
        if (server::is_operations_request(request)) {
          const bool operator_asks = admin.authorized(request);
          return server::async_counted(
              server::async_answer_operations(std::move(request), operator_asks, metrics_sources),
              HttpApi::kOperations, http_metrics);
        }
        if (request.target().starts_with("/v1/admin/")) {
          return server::async_counted(admin.handle(std::move(request)), HttpApi::kAdmin,
                                       http_metrics);
        }
        return server::async_counted(api.handle(std::move(request)), HttpApi::kSender,
                                     http_metrics);
      },
      http_options);

  access.start();
  http_server.start();
  scheduler->start();
  const auto poll_interval = std::chrono::milliseconds(config.deployment.poll_interval_ms);
  // With http.tls the peers serve HTTPS too: their certificates are checked against the
  // deployment's name.
  http::HttpClient::TlsSettings peer_tls;
  if (config.http.tls && !config.deployment.peers.empty()) {
    peer_tls.server_name = config.tls.server_name.empty() ? tls::certificate_name(*tls_context)
                                                          : config.tls.server_name;
    if (peer_tls.server_name.empty()) {
      throw server::ConfigError("tls.server_name: " + config.tls.cert_file.string() +
                                " names no host; say which name the peers' certificates carry");
    }
    peer_tls.context =
        tls::make_client_context({config.tls.ca_file.string(), peer_tls.server_name, true});
  }
  for (const auto& peer : config.deployment.peers) {
    asio::co_spawn(*loops.front(),
                   http::async_poll_peer(&directory, {peer.host, peer.port}, poll_interval,
                                         poll_interval, peer_tls),
                   [peer](std::exception_ptr e) {
                     if (e) log::error("peer_poll_failed", {{"peer", peer.host}});
                   });
  }
  // Topic messages' delivery counts reach their records once a second; the CPU meter samples.
  // In a cluster, apps are re-read then too.
  asio::steady_timer count_timer(*loops.front());
  std::function<void()> flush_counts = [&] {
    count_timer.expires_after(std::chrono::seconds(1));
    count_timer.async_wait([&](const boost::system::error_code& error) {
      if (error) return;
      tracker.flush_counts();
      cpu.sample();
      // In a cluster, apps another node's admin API changed reach this node's registry.
      if (cluster) {
        asio::co_spawn(*loops.front(), app_service.async_refresh(),
                       [](std::exception_ptr e, boost::system::result<std::size_t> refreshed) {
                         if (e || !refreshed) log::warn("apps_refresh_failed", {});
                       });
      }
      flush_counts();
    });
  };
  flush_counts();
  // In a cluster the node number's lease is renewed every third of it. A node that lost its
  // number (its lease lapsed and another node took it) stops: its message ids could collide.
  asio::steady_timer lease_timer(*loops.front());
  std::function<void()> renew_lease = [&] {
    lease_timer.expires_after(std::chrono::milliseconds(server::kNodeNumberLeaseMs / 3));
    lease_timer.async_wait([&](const boost::system::error_code& error) {
      if (error) return;
      asio::co_spawn(
          *loops.front(),
          server::async_renew_node_number(store.streams(), store.records(), config.node_name,
                                          node_number, logic::system_clock()()),
          [&](std::exception_ptr e, boost::system::result<bool> renewed) {
            if (e || !renewed) {
              log::warn("node_number_renewal_failed", {{"number", node_number}});
            } else if (!*renewed) {
              log::error("node_number_lost", {{"number", node_number}});
              stop_process();
              return;
            }
            renew_lease();
          });
    });
  };
  if (cluster) renew_lease();
  log::info("listening", {{"devices", access.port()},
                          {"http", http_server.port()},
                          {"threads", threads},
                          {"storage", config.storage.backend},
                          {"durability", config.storage.durability}});
  if (!config.ready_file.empty()) {
    write_ready_file(config.ready_file, access.port(), http_server.port());
  }
  print_banner(config, access.port(), http_server.port(), demo, demo_key);

  // Shutdown: on the first loop, so it is serialised with everything else. A signal drains the
  // node; the next one, the drain's end or its deadline stops it.
  asio::signal_set signals(*loops.front(), SIGINT, SIGTERM);
  std::function<void()> wait_signal = [&] {
    signals.async_wait([&](const boost::system::error_code& error, int signal) {
      if (error) return;
      node_drain.on_signal(signal);
      wait_signal();
    });
  };
  wait_signal();
  asio::steady_timer drain(*loops.front());
  bool stopping = false;
  stop_process = [&] {
    if (std::exchange(stopping, true)) return;
    log::info("stopping", {});
    node_drain.cancel();
    // Peers polling this node leave it out of their lists from now on.
    draining.store(true, std::memory_order_relaxed);
    boost::system::error_code ignored;
    signals.cancel(ignored);
    // Devices still here (a drain's deadline passed) are told to go, all at once.
    access.stop();
    http_server.stop();
    // A POST in flight finishes within the drain time or is cut off by the loops stopping;
    // either way its batch is sent again after the restart (at least once).
    webhooks->stop();
    // A fire under way completes within the drain time or not at all: each is one atomic write.
    scheduler->stop();
    count_timer.cancel();
    lease_timer.cancel();
    tracker.flush_counts();
    drain.expires_after(kDrainTime);
    drain.async_wait([&](const boost::system::error_code&) {
      for (auto* io : loops) io->stop();
    });
  };
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::thread> workers;
  for (std::size_t i = 1; i < loops.size(); ++i) {
    workers.emplace_back([io = loops[i]] { io->run(); });
  }
  loops.front()->run();
  for (auto& w : workers) w.join();
  log::info("stopped", {});
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  server::Config config;
  try {
    bool wants_help = false;
    std::string help;
    config = server::load_config(argc, argv, wants_help, help);
    if (wants_help) {
      std::cout << help;
      return 0;
    }
  } catch (const server::ConfigError& e) {
    std::cerr << "heraldd: bad configuration: " << e.what() << "\n";
    return 2;
  }
  try {
    return run(std::move(config));
  } catch (const std::exception& e) {
    std::cerr << "heraldd: cannot start: " << e.what() << "\n";
    return 2;
  }
}
