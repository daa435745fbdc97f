// AppRegistry: the apps this deployment serves and the API keys that authenticate their senders,
// as one immutable snapshot that readers share and writers replace whole (read-copy-update).
//
// AppService (app_service.h) owns the durable copy and publishes a new snapshot after every
// change; tests and tools may fill a registry directly from AppConfigs. Herald never keeps an API
// key itself, only its SHA-256: a key is looked up by its hash, so authentication costs one hash
// and one map lookup however many apps and keys exist.
//
// Thread-safe: any thread may read while another publishes; a reader keeps the snapshot (or the
// App) it got alive for as long as it holds the shared_ptr.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "logic/rate_limiter.h"

namespace herald::logic {

// Where an app's upstream messages go (docs/upstream.md).
struct Webhook {
  std::string url;     // http://host[:port]/path
  std::string secret;  // HMAC key of Herald-Signature
  // Set by heraldd's configuration file, which then owns it: the admin API may not change it,
  // and it goes away when the file no longer names it (see AppService::async_load).
  bool configured = false;
  friend bool operator==(const Webhook&, const Webhook&) = default;
};

// An app as the configuration file names it: its id, the API keys it accepts, its webhook.
struct AppConfig {
  std::string id;                 // [a-z0-9._-], 1..64 bytes
  std::vector<std::string> keys;  // API keys; any one authenticates a sender of this app
  std::optional<Webhook> webhook = std::nullopt;  // url and secret (`configured` is implied)
};

struct ApiKey {
  std::string id;      // 16 hex digits: the first 8 bytes of sha256
  std::string label;   // free text from whoever created it, at most 64 bytes
  std::string prefix;  // the key's first characters, so that people can tell keys apart
  std::string sha256;  // hex SHA-256 of the key; the key itself is never stored
  std::int64_t created_at_ms = 0;
  std::int64_t revoked_at_ms = 0;  // 0: works; else it stops working at this time
  std::int64_t last_used_ms = 0;   // not persisted on every use; see AppService

  [[nodiscard]] bool works_at(std::int64_t now_ms) const {
    return revoked_at_ms == 0 || now_ms < revoked_at_ms;
  }
  friend bool operator==(const ApiKey&, const ApiKey&) = default;
};

struct App {
  std::string id;
  bool disabled = false;  // sender calls are refused (403); devices keep what was stored
  std::int64_t created_at_ms = 0;
  AppRateLimits limits;
  std::optional<Webhook> webhook;
  std::vector<ApiKey> keys;  // revoked ones too, until they are dropped

  [[nodiscard]] std::size_t working_keys(std::int64_t now_ms) const;
  friend bool operator==(const App&, const App&) = default;
};

class AppRegistry {
 public:
  AppRegistry();
  // Apps straight from configuration, keys hashed (created_at_ms 0). Throws std::invalid_argument
  // for an invalid or duplicate id.
  explicit AppRegistry(const std::vector<AppConfig>& apps);

  // Replaces the snapshot. Ids must be valid and unique (the caller, AppService, checks).
  void publish(std::vector<App> apps);

  [[nodiscard]] std::shared_ptr<const App> find(std::string_view app) const;
  [[nodiscard]] bool exists(std::string_view app) const { return find(app) != nullptr; }
  // Every app, in id order.
  [[nodiscard]] std::vector<std::shared_ptr<const App>> apps() const;

  struct KeyMatch {
    std::shared_ptr<const App> app;
    std::string key_id;
  };
  // The app `key` opens at now_ms, if any: a key that is revoked (or past its grace period)
  // opens nothing. A disabled app is still returned: refusing it is the caller's call (403, not
  // 401).
  [[nodiscard]] std::optional<KeyMatch> authenticate(std::string_view key,
                                                     std::int64_t now_ms) const;

  // The rule for app ids, shared by the config loader and the HTTP API.
  [[nodiscard]] static bool valid_app_id(std::string_view id);
  // The stored description of `key` (id, prefix, hash), created at now_ms.
  [[nodiscard]] static ApiKey describe_key(std::string_view key, std::string label,
                                           std::int64_t now_ms);
  // Hex SHA-256 of `text`.
  [[nodiscard]] static std::string sha256_hex(std::string_view text);

 private:
  struct Snapshot {
    std::vector<std::shared_ptr<const App>> apps;  // id order
    std::unordered_map<std::string_view, std::shared_ptr<const App>> by_id;
    // sha256 -> (app, index of the key in app->keys)
    std::unordered_map<std::string_view, std::pair<std::shared_ptr<const App>, std::size_t>>
        by_key_hash;
  };
  [[nodiscard]] std::shared_ptr<const Snapshot> snapshot() const {
    return snapshot_.load(std::memory_order_acquire);
  }

  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
};

}  // namespace herald::logic
