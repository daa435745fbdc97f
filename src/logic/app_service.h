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
  // authority once an app exists. Publishes the result. Call once, before serving.
  boost::asio::awaitable<boost::system::result<void>> async_load(std::vector<AppConfig> configured);

  // Errors: kBadRequest (invalid id or settings), kAppExists, kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<std::pair<App, NewApiKey>>> async_create(
      std::string id, AppSettings settings);
  // Errors: kUnknownApp, kBadRequest, kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<App>> async_update(std::string id,
                                                                  AppSettings settings);
  // Errors: kUnknownApp, kBadRequest (label over 64 bytes), kAppExists is never returned; at most
  // kMaxKeysPerApp working keys (kBadRequest beyond), kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<NewApiKey>> async_add_key(std::string app,
                                                                         std::string label);
  // The key stops working at now + grace_s. Errors: kUnknownApp, kUnknownKey, kLastKey (no other
  // key would still work after it stops), kBusy, kStorageFailed. Revoking an already revoked
  // key moves its end earlier only, never later.
  boost::asio::awaitable<boost::system::result<ApiKey>> async_revoke_key(std::string app,
                                                                         std::string key_id,
                                                                         std::int64_t grace_s);

  // Called after every published change with the app as it now is (on the thread that made the
  // change). For components that follow app settings, such as webhook dispatchers. Register
  // before async_load.
  using Listener = std::function<void(const App&)>;
  void on_change(Listener listener);

  static constexpr std::size_t kMaxKeysPerApp = 16;
  static constexpr std::size_t kMaxLabelBytes = 64;
  // Revoked keys are kept (for listing) this long after they stopped working.
  static constexpr std::int64_t kRevokedKeyRetentionMs = 30LL * 24 * 3600 * 1000;

  // The record key of an app.
  [[nodiscard]] static std::string record_key(std::string_view app);

 private:
  // Writes `app` (synced) and publishes it; `create` fails with kAppExists if it exists.
  boost::asio::awaitable<boost::system::result<void>> async_store(const App& app, bool create);
  void publish(const App& changed);
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
