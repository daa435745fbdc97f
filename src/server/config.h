// heraldd's configuration: a TOML file (docs/configuration.md lists every setting), each setting
// overridable by a flag of the same name:
//
//   heraldd --config herald.toml --access.listen=0.0.0.0:7700 --storage.durability fast
//
// Apps are [[apps]] tables in the file or --app ID:KEY[,KEY...] flags (which replace the file's
// apps); an app's own settings (its webhook) are keys of its table or --apps.ID.SETTING flags.
//
// A bad file, an unknown setting or a bad value stops start-up with a ConfigError that names the
// setting. Without any file the embedded default runs: data in ./herald-data, one app "demo"
// whose key is generated on first start and kept in the data directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "access/access_options.h"
#include "logic/app_registry.h"
#include "logic/message_scheduler.h"
#include "logic/message_service.h"

namespace herald::server {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpSettings {
  std::string listen_address = "0.0.0.0";
  std::uint16_t listen_port = 7780;
  bool tls = false;  // HTTPS, with TlsSettings
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_connections = 10'000;
};

// TLS (docs/security.md): the certificate of device connections (access.tls) and of the HTTP
// API (http.tls), and the session tickets that let a reconnecting device skip the full handshake.
struct TlsSettings {
  bool access = false;              // access.tls: device connections are TLS
  std::filesystem::path cert_file;  // PEM certificate chain; required with access.tls or http.tls
  std::filesystem::path key_file;   // PEM private key
  std::string ticket_secret;        // empty: generated into <data_dir>/tls_ticket_secret
  std::uint32_t ticket_lifetime_s = 12 * 3600;
  // Polling peers over HTTPS (http.tls): the CAs to trust (empty: the system's store) and the
  // name their certificates carry (empty: tls.cert_file's own name).
  std::filesystem::path ca_file;
  std::string server_name;
};

struct StorageSettings {
  std::string durability = "sync";    // "sync" (fsync + group commit) or "fast"
  std::size_t writer_queue = 65'536;  // appends waiting for the writer; beyond it: 503
  std::size_t block_cache_mb = 64;
  // Free-space reserve of the data directory's file system: below it new messages get 507.
  std::size_t min_free_mb = 256;
  // "rocksdb": the embedded store in data_dir. "redis": a Redis Cluster every node of the
  // deployment shares (cluster mode, docs/cluster.md); routes and notifies cross nodes there too.
  std::string backend = "rocksdb";
  std::string redis_nodes;                // "HOST:PORT,..." seeds of the cluster
  std::string redis_keyspace = "herald";  // the deployment's hash tag: its storage's one slot
  std::uint32_t redis_timeout_ms = 2'000;
  std::uint32_t redis_replicas_to_wait = 0;  // WAIT for this many replicas per write batch
};

struct AuthSettings {
  std::string token_secret;          // empty: generated into <data_dir>/token_secret
  std::int64_t token_max_age_s = 0;  // 0: tokens do not expire
};

struct AdminSettings {
  std::string token;  // empty: generated into <data_dir>/admin_token
};

// How upstream messages reach the apps' webhooks (every app alike).
struct UpstreamSettings {
  std::size_t batch_max_messages = 100;       // messages per webhook request
  std::uint32_t webhook_timeout_ms = 10'000;  // a request not answered by then is retried
  std::uint32_t retry_initial_ms = 500;       // backoff after the first failed request
  std::uint32_t retry_max_ms = 60'000;        // the backoff doubles up to this (with jitter)
};

// One app's upstream settings: keys of its [[apps]] table, or --apps.ID.SETTING flags.
struct AppUpstreamSettings {
  std::string webhook_url;     // http://HOST[:PORT]/PATH; empty: the app accepts no upstream
  std::string webhook_secret;  // empty: generated into <data_dir>/webhook_secret.<app>
  std::size_t upstream_max_pending = 100'000;   // stored, not yet delivered; beyond it: busy
  std::int64_t upstream_ttl_s = 7 * 24 * 3600;  // undelivered messages are dropped after this
};

// A HOST:PORT setting.
struct Address {
  std::string host;
  std::uint16_t port = 0;
};

// The access nodes of the deployment (static membership; docs/endpoints.md).
struct DeploymentSettings {
  std::vector<Address> peers;              // the other nodes' HTTP addresses
  std::uint32_t poll_interval_ms = 1'000;  // how often each peer's load is fetched
  std::uint32_t peer_timeout_ms = 3'000;   // unheard this long: the peer leaves the list
};

// The signed endpoint list (GET /v1/endpoints).
struct EndpointsSettings {
  std::filesystem::path signing_key_file;  // empty: <data_dir>/endpoint_signing_key.pem
  std::uint32_t validity_s = 600;          // expires_at_ms - issued_at_ms
};

struct Config {
  std::filesystem::path data_dir = "herald-data";
  int threads = 0;  // event loops; 0 = one per core
  std::string log_level = "info";
  std::filesystem::path ready_file;  // written (JSON with the bound ports) once listening
  access::AccessOptions access;
  // Where devices are told to connect to this node; empty: access.listen, unless a wildcard.
  std::vector<Address> advertise;
  DeploymentSettings deployment;
  EndpointsSettings endpoints;
  // --print-endpoint-public-key: print the list signing key's public half and exit.
  bool print_endpoint_public_key = false;
  HttpSettings http;
  TlsSettings tls;
  StorageSettings storage;
  AuthSettings auth;
  AdminSettings admin;
  std::string node_name;  // empty: the host name
  logic::MessageLimits messages;
  logic::SchedulerLimits scheduler;    // scheduled sends (send_at_ms)
  std::vector<logic::AppConfig> apps;  // empty: the "demo" app (see above)
  UpstreamSettings upstream;
  // By app id; only apps that have any such setting. Every key names an app of `apps`.
  std::map<std::string, AppUpstreamSettings> app_upstream;
};

// Parses argv (and the file named by --config). Throws ConfigError; `--help` output goes to
// `help_out` and sets `wants_help`.
Config load_config(int argc, const char* const* argv, bool& wants_help, std::string& help_out);

// The settings table as Markdown (the body of docs/configuration.md is checked against it).
std::string settings_markdown();
// The same for the per-app settings.
std::string app_settings_markdown();

// Where heraldd keeps the generated webhook secret of `app` when none is configured.
std::filesystem::path webhook_secret_path(const std::filesystem::path& data_dir,
                                          std::string_view app);

}  // namespace herald::server
