#include "server/config.h"

#include <charconv>
#include <functional>
#include <limits>
#include <sstream>

#include <toml++/toml.h>
#include <boost/asio/ip/address.hpp>

#include "http/admin_api.h"
#include "http/endpoint_list.h"
#include "http/webhook_client.h"
#include "storage/redis/redis_connection.h"

namespace herald::server {
namespace {

// One row of the settings table: how to read the setting from text and show its current value.
// A TOML value is turned into the same text a flag would carry, so both share one parser.
struct Setting {
  std::string_view name;
  std::string_view help;
  std::function<void(Config&, std::string_view)> set;
  std::function<std::string(const Config&)> show;
  // Each value adds to a list: a flag given several times, or a TOML array of strings.
  bool repeatable = false;
};

[[noreturn]] void bad(std::string_view name, std::string_view why) {
  throw ConfigError(std::string(name) + ": " + std::string(why));
}

template <class T>
T parse_integer(std::string_view name, std::string_view text, T min, T max) {
  long long v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size())
    bad(name, "not an integer: " + std::string(text));
  if (v < static_cast<long long>(min) ||
      static_cast<unsigned long long>(v) > static_cast<unsigned long long>(max)) {
    bad(name, "out of range [" + std::to_string(min) + ", " + std::to_string(max) +
                  "]: " + std::string(text));
  }
  return static_cast<T>(v);
}

// "host:port" or "[v6]:port" -> (host, port).
void parse_listen(std::string_view name, std::string_view text, std::string& host,
                  std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    bad(name, "expected HOST:PORT, got " + std::string(text));
  std::string_view h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  host = std::string(h);
  port = parse_integer<std::uint16_t>(name, text.substr(colon + 1), 0, 65535);
}

std::string listen_text(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// "IP:PORT[,IP:PORT...]" -> addresses whose hosts are IP literals and ports not 0.
std::vector<Address> parse_ip_endpoints(std::string_view name, std::string_view text) {
  std::vector<Address> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    Address a;
    parse_listen(name, text.substr(0, comma), a.host, a.port);
    boost::system::error_code ec;
    (void)boost::asio::ip::make_address(a.host, ec);
    if (ec) bad(name, "not an IP address: " + a.host);
    if (a.port == 0) bad(name, "port 0 cannot be advertised");
    out.push_back(std::move(a));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  return out;
}

std::string addresses_text(const std::vector<Address>& addresses) {
  std::string out;
  for (const auto& a : addresses) {
    if (!out.empty()) out += ",";
    out += listen_text(a.host, a.port);
  }
  return out;
}

template <class T, class Get>
Setting integer(std::string_view name, std::string_view help, Get get, T min, T max) {
  return Setting{
      name, help,
      [=](Config& c, std::string_view t) { get(c) = parse_integer<T>(name, t, min, max); },
      [=](const Config& c) { return std::to_string(get(const_cast<Config&>(c))); }};
}

template <class Get>
Setting boolean(std::string_view name, std::string_view help, Get get) {
  return Setting{name, help,
                 [=](Config& c, std::string_view t) {
                   if (t != "true" && t != "false") {
                     bad(name, "expected true or false, got " + std::string(t));
                   }
                   get(c) = t == "true";
                 },
                 [=](const Config& c) -> std::string {
                   return get(const_cast<Config&>(c)) ? "true" : "false";
                 }};
}

const std::vector<Setting>& settings() {
  using u32 = std::uint32_t;
  using i64 = std::int64_t;
  static const std::vector<Setting> table = {
      {"data_dir", "directory of the embedded RocksDB store and generated secrets",
       [](Config& c, std::string_view t) {
         if (t.empty()) bad("data_dir", "must not be empty");
         c.data_dir = std::string(t);
       },
       [](const Config& c) { return c.data_dir.string(); }},
      integer<int>(
          "threads", "event loops (one thread each); 0 = one per core",
          [](Config& c) -> int& { return c.threads; }, 0, 256),
      {"log_level", "debug, info, warn or error",
       [](Config& c, std::string_view t) {
         if (t != "debug" && t != "info" && t != "warn" && t != "error") {
           bad("log_level", "expected debug, info, warn or error, got " + std::string(t));
         }
         c.log_level = std::string(t);
       },
       [](const Config& c) { return c.log_level; }},
      {"ready_file", "if set, a JSON file with the bound ports is written once listening",
       [](Config& c, std::string_view t) { c.ready_file = std::string(t); },
       [](const Config& c) { return c.ready_file.string(); }},

      {"access.listen", "device endpoint, HOST:PORT (port 0 = any free port)",
       [](Config& c, std::string_view t) {
         parse_listen("access.listen", t, c.access.listen_address, c.access.listen_port);
       },
       [](const Config& c) { return listen_text(c.access.listen_address, c.access.listen_port); }},
      {"access.advertise",
       "device endpoints of this node in endpoint lists, IP:PORT[,IP:PORT...]; empty = "
       "access.listen with its bound port, unless its address is a wildcard (then none)",
       [](Config& c, std::string_view t) {
         c.advertise = parse_ip_endpoints("access.advertise", t);
       },
       [](const Config& c) { return addresses_text(c.advertise); }},
      integer<std::size_t>(
          "access.max_connections", "device connections per process",
          [](Config& c) -> std::size_t& { return c.access.max_connections; }, 1, 100'000'000),
      integer<std::size_t>(
          "access.capacity",
          "device connections this process is meant to carry: its load in endpoint lists is "
          "measured against it, and a Hello arriving while this many are authenticated is "
          "redirected to a peer (Reconnect OVERLOAD); 0 = access.max_connections",
          [](Config& c) -> std::size_t& { return c.access.capacity; }, 0, 100'000'000),
      integer<u32>(
          "access.drain_rate_per_s",
          "devices asked per second to reconnect elsewhere while the node drains (SIGTERM, "
          "POST /v1/admin/drain)",
          [](Config& c) -> u32& { return c.access.drain_rate_per_s; }, 1, http::kMaxDrainRatePerS),
      integer<u32>(
          "access.drain_deadline_s",
          "longest a drain waits for the devices to leave before the node exits anyway",
          [](Config& c) -> u32& { return c.access.drain_deadline_s; }, 1, http::kMaxDrainDeadlineS),
      integer<u32>(
          "access.handshake_timeout_ms", "time a new connection has to send its Hello",
          [](Config& c) -> u32& { return c.access.handshake_timeout_ms; }, 100, 600'000),
      integer<u32>(
          "access.connect_rate_per_s",
          "new connections per second allowed from one source (an IPv4 address or an IPv6 /64) "
          "per process; above it they are closed right after accept; 0 = no limit",
          [](Config& c) -> u32& { return c.access.connect_rate_per_s; }, 0, 10'000'000),
      integer<u32>(
          "access.connect_burst",
          "connections one source may open at once above access.connect_rate_per_s",
          [](Config& c) -> u32& { return c.access.connect_burst; }, 1, 10'000'000),
      integer<u32>(
          "access.connect_rate_sources",
          "sources the connection-rate limit remembers (a fixed table, 32 bytes each); one "
          "pushed out by others starts again with a full burst",
          [](Config& c) -> u32& { return c.access.connect_rate_sources; }, 128, 16'777'216),
      integer<std::size_t>(
          "access.max_unauthenticated",
          "connections per process that have not sent a valid Hello yet; a new one beyond it "
          "closes the oldest of them; 0 = no cap",
          [](Config& c) -> std::size_t& { return c.access.max_unauthenticated; }, 0, 100'000'000),
      integer<u32>(
          "access.heartbeat_default_s", "heartbeat interval when the client names none",
          [](Config& c) -> u32& { return c.access.heartbeat_default_s; }, 1, 86'400),
      integer<u32>(
          "access.heartbeat_min_s", "shortest heartbeat interval a client may announce",
          [](Config& c) -> u32& { return c.access.heartbeat_min_s; }, 1, 86'400),
      integer<u32>(
          "access.heartbeat_max_s", "longest heartbeat interval a client may announce",
          [](Config& c) -> u32& { return c.access.heartbeat_max_s; }, 1, 86'400),
      integer<u32>(
          "access.heartbeat_grace_s",
          "extra time past 1.5 heartbeat intervals before a silent device is dropped",
          [](Config& c) -> u32& { return c.access.heartbeat_grace_s; }, 0, 3'600),
      integer<u32>(
          "access.wheel_tick_ms", "resolution of connection deadlines",
          [](Config& c) -> u32& { return c.access.wheel_tick_ms; }, 10, 60'000),
      integer<u32>(
          "access.max_frame_bytes", "largest frame body accepted from an authenticated device",
          [](Config& c) -> u32& { return c.access.max_frame_bytes; }, 512, 16 << 20),
      integer<std::size_t>(
          "access.output_high_watermark_bytes",
          "queued output above which notifies are skipped (the device resyncs later)",
          [](Config& c) -> std::size_t& { return c.access.output_high_watermark_bytes; }, 1024,
          1 << 30),
      integer<std::size_t>(
          "access.output_hard_limit_bytes",
          "queued output at which a device that does not read is disconnected",
          [](Config& c) -> std::size_t& { return c.access.output_hard_limit_bytes; }, 4096,
          1 << 30),
      integer<u32>(
          "access.socket_send_buffer_bytes",
          "kernel send buffer (SO_SNDBUF) of each device connection; 0 = the kernel's "
          "autotuning",
          [](Config& c) -> u32& { return c.access.socket_send_buffer_bytes; }, 0, 64 << 20),
      integer<u32>(
          "access.normal_notify_delay_ms",
          "longest a normal-priority notify waits to be merged with others (0 = send at once)",
          [](Config& c) -> u32& { return c.access.normal_notify_delay_ms; }, 0, 60'000),

      boolean("access.tls",
              "device connections are TLS (tls.cert_file, tls.key_file); false = plaintext",
              [](Config& c) -> bool& { return c.tls.access; }),
      {"http.listen", "sender API endpoint, HOST:PORT (port 0 = any free port)",
       [](Config& c, std::string_view t) {
         parse_listen("http.listen", t, c.http.listen_address, c.http.listen_port);
       },
       [](const Config& c) { return listen_text(c.http.listen_address, c.http.listen_port); }},
      integer<std::size_t>(
          "http.max_body_bytes", "largest request body (413 beyond)",
          [](Config& c) -> std::size_t& { return c.http.max_body_bytes; }, 1024, 64 << 20),
      integer<std::size_t>(
          "http.max_connections", "open HTTP connections per process",
          [](Config& c) -> std::size_t& { return c.http.max_connections; }, 1, 1'000'000),
      boolean("http.tls",
              "the HTTP API (sender, admin, endpoint list) is HTTPS (tls.cert_file, "
              "tls.key_file); false = plain HTTP",
              [](Config& c) -> bool& { return c.http.tls; }),

      {"tls.cert_file", "PEM certificate chain of access.tls and http.tls",
       [](Config& c, std::string_view t) { c.tls.cert_file = std::string(t); },
       [](const Config& c) { return c.tls.cert_file.string(); }},
      {"tls.key_file", "PEM private key of tls.cert_file",
       [](Config& c, std::string_view t) { c.tls.key_file = std::string(t); },
       [](const Config& c) { return c.tls.key_file.string(); }},
      {"tls.ticket_secret",
       "secret the session-ticket keys derive from, at least 32 bytes, the same on every node "
       "so a device resumes its TLS session on any of them; empty = generated into the data "
       "directory",
       [](Config& c, std::string_view t) {
         if (!t.empty() && t.size() < 32) bad("tls.ticket_secret", "must be at least 32 bytes");
         c.tls.ticket_secret = std::string(t);
       },
       [](const Config& c) { return c.tls.ticket_secret.empty() ? "" : "(set)"; }},
      integer<std::uint32_t>(
          "tls.ticket_lifetime_s",
          "how long a session ticket resumes, and the rotation period of ticket keys",
          [](Config& c) -> std::uint32_t& { return c.tls.ticket_lifetime_s; }, 60, 7 * 86'400),
      {"tls.ca_file",
       "PEM CAs trusted when this node polls its peers over HTTPS (http.tls); empty = the "
       "system's store",
       [](Config& c, std::string_view t) { c.tls.ca_file = std::string(t); },
       [](const Config& c) { return c.tls.ca_file.string(); }},
      {"tls.server_name",
       "the name the peers' certificates must carry; empty = the name of tls.cert_file (its "
       "first DNS name), for a deployment whose nodes share one name",
       [](Config& c, std::string_view t) { c.tls.server_name = std::string(t); },
       [](const Config& c) { return c.tls.server_name; }},

      {"storage.durability",
       "sync: answer after fsync (group commit); fast: a machine crash may lose the last moments, "
       "announced by an epoch change",
       [](Config& c, std::string_view t) {
         if (t != "sync" && t != "fast")
           bad("storage.durability", "expected sync or fast, got " + std::string(t));
         c.storage.durability = std::string(t);
       },
       [](const Config& c) { return c.storage.durability; }},
      integer<std::size_t>(
          "storage.writer_queue", "appends waiting for the writer (503 beyond)",
          [](Config& c) -> std::size_t& { return c.storage.writer_queue; }, 16, 10'000'000),
      integer<std::size_t>(
          "storage.block_cache_mb", "RocksDB block cache",
          [](Config& c) -> std::size_t& { return c.storage.block_cache_mb; }, 1, 1 << 20),
      integer<std::size_t>(
          "storage.min_free_mb",
          "free-space reserve of the data directory's disk: below it new messages are refused "
          "(507 storage_full) until space returns; 0 = off",
          [](Config& c) -> std::size_t& { return c.storage.min_free_mb; }, 0, 1 << 24),
      {"storage.backend",
       "rocksdb: the embedded store in data_dir; redis: a Redis Cluster shared by every node of "
       "the deployment (storage.redis.nodes), which routes notifies between nodes too",
       [](Config& c, std::string_view t) {
         if (t != "rocksdb" && t != "redis")
           bad("storage.backend", "expected rocksdb or redis, got " + std::string(t));
         c.storage.backend = std::string(t);
       },
       [](const Config& c) { return c.storage.backend; }},
      {"storage.redis.nodes",
       "HOST:PORT,... of Redis Cluster nodes (any of them; the rest are learned) for "
       "storage.backend = redis",
       [](Config& c, std::string_view t) {
         if (!t.empty() && !storage::parse_redis_endpoints(t)) {
           bad("storage.redis.nodes", "expected HOST:PORT[,HOST:PORT...], got " + std::string(t));
         }
         c.storage.redis_nodes = std::string(t);
       },
       [](const Config& c) { return c.storage.redis_nodes; }},
      {"storage.redis.keyspace",
       "the deployment's name in Redis: its hash tag, so its storage is one slot (one master) and "
       "each write batch one atomic script; deployments sharing a cluster use different ones",
       [](Config& c, std::string_view t) {
         if (t.empty() || t.size() > 64 || t.find_first_of("{}") != std::string_view::npos) {
           bad("storage.redis.keyspace", "must be 1..64 bytes without braces");
         }
         c.storage.redis_keyspace = std::string(t);
       },
       [](const Config& c) { return c.storage.redis_keyspace; }},
      integer<std::uint32_t>(
          "storage.redis.timeout_ms",
          "the longest a Redis command waits, redirects and retries included",
          [](Config& c) -> std::uint32_t& { return c.storage.redis_timeout_ms; }, 10, 60'000),
      integer<std::uint32_t>(
          "storage.redis.replicas_to_wait",
          "replicas that must have each write batch before it is acknowledged (Redis WAIT); 0 = "
          "the master's own fsync (appendfsync always) is enough",
          [](Config& c) -> std::uint32_t& { return c.storage.redis_replicas_to_wait; }, 0, 16),

      {"auth.token_secret",
       "HMAC secret for device tokens, at least 32 bytes; empty = generated into the data "
       "directory",
       [](Config& c, std::string_view t) {
         if (!t.empty() && t.size() < 32) bad("auth.token_secret", "must be at least 32 bytes");
         c.auth.token_secret = std::string(t);
       },
       [](const Config& c) { return c.auth.token_secret.empty() ? "" : "(set)"; }},
      integer<i64>(
          "auth.token_max_age_s", "device token lifetime; 0 = no expiry",
          [](Config& c) -> i64& { return c.auth.token_max_age_s; }, 0, 10LL * 365 * 86'400),
      {"admin.token",
       "bearer token of the admin API (/v1/admin), at least 16 bytes; empty = generated into the "
       "data directory",
       [](Config& c, std::string_view t) {
         if (!t.empty() && t.size() < 16) bad("admin.token", "must be at least 16 bytes");
         c.admin.token = std::string(t);
       },
       [](const Config& c) { return c.admin.token.empty() ? "" : "(set)"; }},
      {"node_name", "this node's name in device lookups; empty = the host name",
       [](Config& c, std::string_view t) {
         if (t.size() > 64) bad("node_name", "must be at most 64 bytes");
         c.node_name = std::string(t);
       },
       [](const Config& c) { return c.node_name; }},

      {"deployment.peer",
       "HTTP address HOST:PORT of another access node, whose load is polled for endpoint lists; "
       "repeatable (flags replace the file's list)",
       [](Config& c, std::string_view t) {
         Address a;
         parse_listen("deployment.peer", t, a.host, a.port);
         if (a.host.empty() || a.port == 0) bad("deployment.peer", "expected HOST:PORT");
         c.deployment.peers.push_back(std::move(a));
       },
       [](const Config& c) { return addresses_text(c.deployment.peers); }, true},
      integer<u32>(
          "deployment.poll_interval_ms", "how often each peer's load is fetched",
          [](Config& c) -> u32& { return c.deployment.poll_interval_ms; }, 100, 60'000),
      integer<u32>(
          "deployment.peer_timeout_ms",
          "a peer whose load has not been fetched for this long leaves the endpoint list",
          [](Config& c) -> u32& { return c.deployment.peer_timeout_ms; }, 200, 600'000),
      {"endpoints.signing_key_file",
       "Ed25519 private key (PEM) that signs endpoint lists, the same on every node; created if "
       "missing; empty = endpoint_signing_key.pem in the data directory",
       [](Config& c, std::string_view t) { c.endpoints.signing_key_file = std::string(t); },
       [](const Config& c) { return c.endpoints.signing_key_file.string(); }},
      integer<u32>(
          "endpoints.validity_s", "how long a served endpoint list is valid (its expiry)",
          [](Config& c) -> u32& { return c.endpoints.validity_s; }, 10, 30 * 86'400),

      integer<std::size_t>(
          "messages.max_payload_bytes", "largest message data (413 beyond)",
          [](Config& c) -> std::size_t& { return c.messages.max_payload_bytes; }, 1, 1 << 20),
      integer<std::size_t>(
          "messages.max_targets", "devices per send request",
          [](Config& c) -> std::size_t& { return c.messages.max_targets; }, 1, 100'000),
      integer<i64>(
          "messages.default_ttl_s", "time to live of a message that names none",
          [](Config& c) -> i64& { return c.messages.default_ttl_s; }, 1, 365LL * 86'400),
      integer<i64>(
          "messages.max_ttl_s", "longest time to live a sender may ask for",
          [](Config& c) -> i64& { return c.messages.max_ttl_s; }, 1, 365LL * 86'400),
      integer<u32>(
          "messages.max_pull_entries", "entries per answer to a device's pull",
          [](Config& c) -> u32& { return c.messages.max_pull_entries; }, 1, 10'000),

      integer<std::size_t>(
          "scheduler.max_pending_per_app",
          "scheduled messages one app may have waiting (429 too_many_scheduled beyond)",
          [](Config& c) -> std::size_t& { return c.scheduler.max_pending_per_app; }, 1, 10'000'000),
      integer<std::size_t>(
          "scheduler.max_pending", "scheduled messages waiting on this node, every app together",
          [](Config& c) -> std::size_t& { return c.scheduler.max_pending_total; }, 1, 100'000'000),

      integer<std::size_t>(
          "upstream.batch_max_messages", "upstream messages per webhook request",
          [](Config& c) -> std::size_t& { return c.upstream.batch_max_messages; }, 1, 10'000),
      integer<u32>(
          "upstream.webhook_timeout_ms",
          "time a webhook has to answer a request; after it the request is retried",
          [](Config& c) -> u32& { return c.upstream.webhook_timeout_ms; }, 100, 600'000),
      integer<u32>(
          "upstream.retry_initial_ms",
          "wait before retrying a failed webhook request; doubles per failure, with jitter",
          [](Config& c) -> u32& { return c.upstream.retry_initial_ms; }, 1, 3'600'000),
      integer<u32>(
          "upstream.retry_max_ms", "longest wait between two webhook retries",
          [](Config& c) -> u32& { return c.upstream.retry_max_ms; }, 1, 86'400'000),
  };
  return table;
}

// One row of the per-app settings table: keys of an [[apps]] table beside id and keys, or
// --apps.ID.NAME flags. Errors name the setting as apps.NAME and the app.
struct AppSetting {
  std::string_view name;
  std::string_view help;
  std::function<void(AppUpstreamSettings&, const std::string& app, std::string_view)> set;
  std::function<std::string(const AppUpstreamSettings&)> show;
};

[[noreturn]] void bad_app(std::string_view name, const std::string& app, std::string_view why) {
  bad("apps." + std::string(name), "app '" + app + "': " + std::string(why));
}

const std::vector<AppSetting>& app_settings() {
  static const std::vector<AppSetting> table = {
      {"webhook_url",
       "where the app's upstream messages are POSTed, http://HOST[:PORT]/PATH; set here, the "
       "admin API cannot change it; empty = none from the file (the admin API may set one)",
       [](AppUpstreamSettings& a, const std::string& app, std::string_view t) {
         if (!t.empty()) {
           try {
             (void)http::parse_webhook_url(t);
           } catch (const std::invalid_argument& e) {
             bad_app("webhook_url", app, e.what());
           }
         }
         a.webhook_url = std::string(t);
       },
       [](const AppUpstreamSettings& a) { return a.webhook_url; }},
      {"webhook_secret",
       "HMAC-SHA256 key of the Herald-Signature header, at least 32 bytes; empty = generated "
       "into the data directory (webhook_secret.APP)",
       [](AppUpstreamSettings& a, const std::string& app, std::string_view t) {
         if (!t.empty() && t.size() < 32)
           bad_app("webhook_secret", app, "must be at least 32 bytes");
         a.webhook_secret = std::string(t);
       },
       [](const AppUpstreamSettings& a) { return a.webhook_secret.empty() ? "" : "(set)"; }},
      {"upstream_max_pending",
       "upstream messages stored and not yet delivered; beyond it devices are answered busy",
       [](AppUpstreamSettings& a, const std::string&, std::string_view t) {
         a.upstream_max_pending =
             parse_integer<std::size_t>("apps.upstream_max_pending", t, 1, 100'000'000);
       },
       [](const AppUpstreamSettings& a) { return std::to_string(a.upstream_max_pending); }},
      {"upstream_ttl_s", "time an undelivered upstream message is kept, then dropped (logged)",
       [](AppUpstreamSettings& a, const std::string&, std::string_view t) {
         a.upstream_ttl_s =
             parse_integer<std::int64_t>("apps.upstream_ttl_s", t, 1, 365LL * 86'400);
       },
       [](const AppUpstreamSettings& a) { return std::to_string(a.upstream_ttl_s); }},
  };
  return table;
}

const AppSetting* find_app_setting(std::string_view name) {
  for (const auto& s : app_settings()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool has_app(const Config& config, std::string_view id) {
  for (const auto& app : config.apps) {
    if (app.id == id) return true;
  }
  return false;
}

// --apps.ID.NAME=VALUE. App ids may hold dots, setting names do not: the name follows the last.
void apply_app_flag(Config& config, std::string_view flag, std::string_view value) {
  const std::string_view rest = flag.substr(5);  // after "apps."
  const auto dot = rest.rfind('.');
  if (dot == std::string_view::npos || dot == 0) bad(flag, "expected --apps.ID.SETTING=VALUE");
  const std::string app(rest.substr(0, dot));
  const AppSetting* setting = find_app_setting(rest.substr(dot + 1));
  if (!setting) bad(flag, "unknown app setting (heraldd --help lists them)");
  if (!has_app(config, app)) bad(flag, "no app '" + app + "' is configured");
  setting->set(config.app_upstream[app], app, value);
}

const Setting* find_setting(std::string_view name) {
  for (const auto& s : settings()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

void apply(Config& config, std::string_view name, std::string_view value) {
  const Setting* s = find_setting(name);
  if (!s) bad(name, "unknown setting (heraldd --help lists them)");
  s->set(config, value);
}

// "id:key1,key2" -> an app.
logic::AppConfig parse_app_flag(std::string_view text) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos)
    bad("--app", "expected ID:KEY[,KEY...], got " + std::string(text));
  logic::AppConfig app;
  app.id = std::string(text.substr(0, colon));
  std::string_view keys = text.substr(colon + 1);
  while (!keys.empty()) {
    const auto comma = keys.find(',');
    app.keys.emplace_back(keys.substr(0, comma));
    keys = comma == std::string_view::npos ? std::string_view{} : keys.substr(comma + 1);
  }
  return app;
}

std::string node_text(std::string_view name, const toml::node& node) {
  if (auto s = node.value<std::string>(); s && node.is_string()) return *s;
  if (node.is_integer()) return std::to_string(*node.value<std::int64_t>());
  if (node.is_boolean()) return *node.value<bool>() ? "true" : "false";
  bad(name, "expected a string or an integer");
}

void load_apps(const toml::node& node, Config& config) {
  const auto* array = node.as_array();
  if (!array) bad("apps", "expected an array of tables ([[apps]])");
  for (const auto& element : *array) {
    const auto* table = element.as_table();
    if (!table) bad("apps", "expected an array of tables ([[apps]])");
    logic::AppConfig app;
    // Applied once the table's id is known, wherever it stands in the table.
    std::vector<std::pair<const AppSetting*, std::string>> settings;
    for (const auto& [key, value] : *table) {
      if (key == "id") {
        app.id = node_text("apps.id", value);
      } else if (key == "keys") {
        const auto* keys = value.as_array();
        if (!keys) bad("apps.keys", "expected an array of strings");
        for (const auto& k : *keys) {
          if (!k.is_string()) bad("apps.keys", "expected an array of strings");
          app.keys.push_back(*k.value<std::string>());
        }
      } else if (const AppSetting* setting = find_app_setting(key.str())) {
        const std::string name = "apps." + std::string(key.str());
        settings.emplace_back(setting, node_text(name, value));
      } else {
        bad("apps." + std::string(key.str()), "unknown setting");
      }
    }
    for (const auto& [setting, text] : settings) {
      setting->set(config.app_upstream[app.id], app.id, text);
    }
    config.apps.push_back(std::move(app));
  }
}

void load_table(const toml::table& table, const std::string& prefix, Config& config) {
  for (const auto& [key, value] : table) {
    const std::string name =
        prefix.empty() ? std::string(key.str()) : prefix + "." + std::string(key.str());
    if (name == "apps") {
      load_apps(value, config);
    } else if (const auto* sub = value.as_table()) {
      load_table(*sub, name, config);
    } else if (const auto* list = value.as_array()) {
      const Setting* s = find_setting(name);
      if (!s || !s->repeatable) bad(name, "expected a single value, not an array");
      for (const auto& element : *list) s->set(config, node_text(name, element));
    } else {
      apply(config, name, node_text(name, value));
    }
  }
}

void validate(Config& config) {
  const auto& a = config.access;
  if (a.heartbeat_min_s > a.heartbeat_max_s)
    bad("access.heartbeat_min_s", "greater than access.heartbeat_max_s");
  if (a.heartbeat_default_s < a.heartbeat_min_s || a.heartbeat_default_s > a.heartbeat_max_s) {
    bad("access.heartbeat_default_s", "outside [heartbeat_min_s, heartbeat_max_s]");
  }
  if ((config.tls.access || config.http.tls) &&
      (config.tls.cert_file.empty() || config.tls.key_file.empty())) {
    bad(config.tls.access ? "access.tls" : "http.tls", "needs tls.cert_file and tls.key_file");
  }
  if (a.capacity > a.max_connections) {
    bad("access.capacity", "greater than access.max_connections");
  }
  if (a.output_high_watermark_bytes >= a.output_hard_limit_bytes) {
    bad("access.output_high_watermark_bytes", "must be below access.output_hard_limit_bytes");
  }
  // One entry (payload + app, id and timestamps) must always fit in one Messages frame.
  if (config.messages.max_payload_bytes + 1024 > a.max_frame_bytes) {
    bad("messages.max_payload_bytes", "must be at least 1024 bytes below access.max_frame_bytes");
  }
  if (config.messages.default_ttl_s > config.messages.max_ttl_s) {
    bad("messages.default_ttl_s", "greater than messages.max_ttl_s");
  }
  for (const auto& app : config.apps) {
    if (!logic::AppRegistry::valid_app_id(app.id)) {
      bad("apps.id", "'" + app.id + "' is not 1..64 bytes of [a-z0-9._-]");
    }
    if (app.keys.empty()) bad("apps.keys", "app '" + app.id + "' has no key");
    for (const auto& k : app.keys) {
      if (k.size() < 16) bad("apps.keys", "keys of app '" + app.id + "' must be at least 16 bytes");
    }
  }
  if (!config.node_name.empty() && !http::valid_node_name(config.node_name)) {
    bad("node_name", "must not hold control characters");
  }
  if (config.storage.backend == "redis" && config.storage.redis_nodes.empty()) {
    bad("storage.backend", "redis needs storage.redis.nodes");
  }
  if (config.deployment.peer_timeout_ms < config.deployment.poll_interval_ms) {
    bad("deployment.peer_timeout_ms", "less than deployment.poll_interval_ms");
  }
  if (config.upstream.retry_initial_ms > config.upstream.retry_max_ms) {
    bad("upstream.retry_initial_ms", "greater than upstream.retry_max_ms");
  }
  for (const auto& [app, upstream] : config.app_upstream) {
    if (!has_app(config, app)) bad("apps.webhook_url", "no app '" + app + "' is configured");
    // A secret without a webhook would silently do nothing: a webhook set through the admin
    // API gets its own secret. The bound and TTL apply to such a webhook too.
    if (upstream.webhook_url.empty() && !upstream.webhook_secret.empty()) {
      bad_app("webhook_secret", app, "is set but webhook_url is not");
    }
  }
}

}  // namespace

std::string app_settings_markdown() {
  const AppUpstreamSettings defaults;
  std::ostringstream out;
  out << "| app setting | default | meaning |\n|---|---|---|\n";
  for (const auto& s : app_settings()) {
    out << "| `" << s.name << "` | `" << s.show(defaults) << "` | " << s.help << " |\n";
  }
  return out.str();
}

std::filesystem::path webhook_secret_path(const std::filesystem::path& data_dir,
                                          std::string_view app) {
  return data_dir / ("webhook_secret." + std::string(app));
}

std::string settings_markdown() {
  Config defaults;
  std::ostringstream out;
  out << "| setting | default | meaning |\n|---|---|---|\n";
  for (const auto& s : settings()) {
    out << "| `" << s.name << "` | `" << s.show(defaults) << "` | " << s.help << " |\n";
  }
  return out.str();
}

Config load_config(int argc, const char* const* argv, bool& wants_help, std::string& help_out) {
  Config config;
  wants_help = false;
  // Pass 1: the file, so that flags override it wherever they stand.
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string path;
    if (arg == "--config") {
      if (i + 1 >= argc) bad("--config", "needs a file name");
      path = argv[i + 1];
    } else if (arg.starts_with("--config=")) {
      path = std::string(arg.substr(9));
    } else {
      continue;
    }
    try {
      const toml::table table = toml::parse_file(path);
      load_table(table, "", config);
    } catch (const toml::parse_error& e) {
      std::ostringstream msg;
      msg << path << ":" << e.source().begin.line << ": " << e.description();
      bad("--config", msg.str());
    }
  }
  // Pass 2: flags. Per-app flags wait until every --app flag is in, wherever they stand.
  bool apps_from_flags = false;
  bool peers_from_flags = false;
  std::vector<std::pair<std::string, std::string>> app_flags;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      wants_help = true;
      help_out =
          "usage: heraldd [--config FILE] [--SETTING=VALUE ...] [--app ID:KEY[,KEY...]]\n"
          "               [--apps.ID.SETTING=VALUE ...]\n"
          "       heraldd --print-endpoint-public-key [--config FILE] [--SETTING=VALUE ...]\n"
          "               (creates the endpoint signing key if missing)\n\n" +
          settings_markdown() + "\nPer app ([[apps]] keys, or --apps.ID.SETTING):\n\n" +
          app_settings_markdown();
      return config;
    }
    if (arg == "--print-endpoint-public-key") {
      config.print_endpoint_public_key = true;
      continue;
    }
    if (!arg.starts_with("--")) bad(arg, "unexpected argument (settings are --name=value)");
    arg.remove_prefix(2);
    std::string_view name = arg;
    std::string value;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = std::string(arg.substr(eq + 1));
    } else {
      if (i + 1 >= argc) bad(name, "needs a value");
      value = argv[++i];
    }
    if (name == "config") continue;
    if (name == "app") {
      if (!apps_from_flags) {  // flags replace the file's apps, with their settings
        config.apps.clear();
        config.app_upstream.clear();
      }
      apps_from_flags = true;
      config.apps.push_back(parse_app_flag(value));
      continue;
    }
    if (name == "deployment.peer" && !peers_from_flags) {  // flags replace the file's peers
      config.deployment.peers.clear();
      peers_from_flags = true;
    }
    if (name.starts_with("apps.")) {
      app_flags.emplace_back(std::string(name), std::move(value));
      continue;
    }
    apply(config, name, value);
  }
  for (const auto& [flag, value] : app_flags) apply_app_flag(config, flag, value);
  validate(config);
  return config;
}

}  // namespace herald::server
