// AppService: the durable side of apps and their API keys, behind the admin API. Create, list,
// update (disable, rate limits, webhook) apps; add and revoke keys, so that a key is rotated
// without a failed request: add a key, move the senders to it, revoke the old one (at once or
// after a grace period during which both work).
//
// Every change is written, synced, as the app's record ("app/<id>" in the RecordStore, JSON)
// before it is published to the AppRegistry and the RateLimiter, so an answered admin call
// survives a crash and no sender ever sees a key that is not stored yet. Changes are serialised
// by an AsyncLock, never by a mutex held across a write.
//
// Owns nothing it is given: the stores, registry and limiter outlive it. Thread-safe: every member
// may be called from any thread or coroutine.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "logic/app_registry.h"
#include "logic/detail/async_lock.h"
#include "logic/logic_error.h"
#include "logic/message_service.h"
#include "logic/rate_limiter.h"
#include "storage/record_store.h"
#include "storage/stream_store.h"

namespace herald::logic {

// What an admin call may set; unset fields keep their value.
struct AppSettings {
  std::optional<bool> disabled;
  std::optional<AppRateLimits> limits;
  // Set to a URL: the app's webhook (a secret is generated if it has none). Set to nullopt
  // inside: the webhook is removed. Unset: unchanged.
  std::optional<std::optional<std::string>> webhook_url;
};

struct NewApiKey {
  ApiKey info;
  std::string secret;  // shown once; only its hash is stored
};

class AppService {
 public:
  AppService(boost::asio::any_io_executor executor, storage::StreamStore& streams,
             storage::RecordStore& records, AppRegistry& registry, RateLimiter& limiter,
             Clock clock);

  // Loads every stored app, then reconciles the configured ones: an app missing from storage is
  // created with its configured keys; a configured key missing from its stored app is added; a
  // configured key that an admin revoked stays revoked (logged), since the store is the
  // authority once an app exists. Webhooks are the exception: the file owns the webhook it
  // names (Webhook::configured), which replaces the stored one, and one it no longer names is
  // removed. Publishes the result and tells every listener about every app. Call once, before
  // serving.
  boost::asio::awaitable<boost::system::result<void>> async_load(std::vector<AppConfig> configured);

  // Cluster mode (several processes share the storage): publishes every stored app that differs
  // from what this process holds, as another node's admin call left it, to the registry, the
  // rate limiter and the listeners; returns how many. Call periodically, after async_load.
  // Changes are last-writer-wins across nodes. Errors: kStorageFailed.
  boost::asio::awaitable<boost::system::result<std::size_t>> async_refresh();

  // Errors: kBadRequest (invalid id or settings), kAppExists, kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<std::pair<App, NewApiKey>>> async_create(
      std::string id, AppSettings settings);
  // Errors: kUnknownApp, kBadRequest, kWebhookConfigured (settings.webhook_url for an app whose
  // webhook the configuration file sets), kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<App>> async_update(std::string id,
                                                                  AppSettings settings);
  // Errors: kUnknownApp, kBadRequest (label over 64 bytes), kTooManyKeys (the app has
  // kMaxKeysPerApp working keys: revoke one first; one revoked with a grace period holds its slot
  // until it stops working), kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<NewApiKey>> async_add_key(std::string app,
                                                                         std::string label);
  // The key stops working at now + grace_s. Errors: kUnknownApp, kUnknownKey, kLastKey (no other
  // key would still work after it stops), kBusy, kStorageFailed. Revoking an already revoked
  // key moves its end earlier only, never later.
  boost::asio::awaitable<boost::system::result<ApiKey>> async_revoke_key(std::string app,
                                                                         std::string key_id,
                                                                         std::int64_t grace_s);

  // Called after every published change with the app as it now is, and by async_load for every
  // app. For components that follow app settings, such as the webhook dispatchers
  // (WebhookSupervisor). Runs on the thread that made the change (any event loop, or the thread
  // running async_load) while the change lock is held, so calls come one at a time in the order
  // of the changes; a listener must not block. Register before async_load.
  using Listener = std::function<void(const App&)>;
  void on_change(Listener listener);

  static constexpr std::size_t kMaxKeysPerApp = 16;
  // A key's label: at most this many characters (Unicode code points, as JSON Schema's
  // maxLength counts them in docs/api/openapi.yaml), so at most 4x as many bytes of UTF-8.
  static constexpr std::size_t kMaxLabelChars = 64;
  // Whether `label` (valid UTF-8, as every parsed JSON string is) is short enough.
  [[nodiscard]] static bool valid_label(std::string_view label);
  // Revoked keys are kept (for listing) this long after they stopped working.
  static constexpr std::int64_t kRevokedKeyRetentionMs = 30LL * 24 * 3600 * 1000;

  // The record key of an app.
  [[nodiscard]] static std::string record_key(std::string_view app);

 private:
  // Changes one app: what an edit does to a copy of the app as it is now; nullopt to store the
  // result, or the error that refuses the change (nothing is stored then).
  using Edit = std::function<std::optional<LogicError>(App& app)>;
  // Under lock_: finds app `id` (kUnknownApp when there is none), applies `edit` to a copy, and
  // stores and publishes the result. Returns the app as stored. `edit` runs before this
  // completes, so it may refer to the caller's locals. Errors: kUnknownApp, edit's, kBusy,
  // kStorageFailed.
  boost::asio::awaitable<boost::system::result<App>> async_change(std::string id, Edit edit);
  // Writes `app`'s record, synced; with `create` only if there is none (else kAppExists).
  boost::asio::awaitable<boost::system::result<void>> async_write(App app, bool create);
  // async_write, then publish.
  boost::asio::awaitable<boost::system::result<void>> async_store(App app, bool create);
  void publish(const App& changed);
  // Every stored app, decoded. kStorageFailed (a record that does not decode is logged).
  [[nodiscard]] boost::system::result<std::vector<App>> read_stored(std::int64_t now_ms);
  [[nodiscard]] static std::optional<LogicError> apply(const AppSettings& settings, App& app);

  storage::StreamStore& streams_;
  storage::RecordStore& records_;
  AppRegistry& registry_;
  RateLimiter& limiter_;
  Clock clock_;
  detail::AsyncLock lock_;  // serialises changes
  std::vector<Listener> listeners_;
};

}  // namespace herald::logic
