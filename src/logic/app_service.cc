#include "logic/app_service.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <iterator>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/system/errc.hpp>

#include "common/log.h"

namespace herald::logic {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::string_view kRecordPrefix = "app/";
constexpr std::size_t kMaxWebhookUrlBytes = 2048;
constexpr std::size_t kListPage = 256;

std::string random_hex(std::size_t bytes) {
  std::array<unsigned char, 64> raw{};
  if (bytes > raw.size() || RAND_bytes(raw.data(), static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no randomness for a secret");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    out.push_back(kHex[raw[i] >> 4]);
    out.push_back(kHex[raw[i] & 0x0f]);
  }
  return out;
}

// ---- the stored record (JSON: readable with any RocksDB tool, and new fields are cheap) ----

json::object encode_limit(const RateLimit& r) { return {{"per_s", r.per_s}, {"burst", r.burst}}; }

std::string encode(const App& app) {
  json::array keys;
  for (const auto& k : app.keys) {
    keys.push_back(json::object{{"id", k.id},
                                {"label", k.label},
                                {"prefix", k.prefix},
                                {"sha256", k.sha256},
                                {"created_at_ms", k.created_at_ms},
                                {"revoked_at_ms", k.revoked_at_ms}});
  }
  json::object o{{"id", app.id},
                 {"disabled", app.disabled},
                 {"created_at_ms", app.created_at_ms},
                 {"requests", encode_limit(app.limits.requests)},
                 {"messages", encode_limit(app.limits.messages)},
                 {"keys", std::move(keys)}};
  if (app.webhook) {
    json::object hook{{"url", app.webhook->url}, {"secret", app.webhook->secret}};
    if (app.webhook->configured) hook["configured"] = true;
    o["webhook"] = std::move(hook);
  }
  return json::serialize(o);
}

RateLimit decode_limit(const json::value& v) {
  return {json::value_to<double>(v.at("per_s")), json::value_to<double>(v.at("burst"))};
}

// Throws on a malformed record (caught by the caller, which reports the key).
App decode(std::string_view text) {
  const json::object o = json::parse(text).as_object();
  App app;
  app.id = json::value_to<std::string>(o.at("id"));
  app.disabled = o.at("disabled").as_bool();
  app.created_at_ms = o.at("created_at_ms").to_number<std::int64_t>();
  app.limits.requests = decode_limit(o.at("requests"));
  app.limits.messages = decode_limit(o.at("messages"));
  if (const auto* w = o.if_contains("webhook")) {
    const json::value* configured = w->as_object().if_contains("configured");
    app.webhook = Webhook{json::value_to<std::string>(w->at("url")),
                          json::value_to<std::string>(w->at("secret")),
                          configured != nullptr && configured->as_bool()};
  }
  for (const auto& kv : o.at("keys").as_array()) {
    const auto& k = kv.as_object();
    ApiKey key;
    key.id = json::value_to<std::string>(k.at("id"));
    key.label = json::value_to<std::string>(k.at("label"));
    key.prefix = json::value_to<std::string>(k.at("prefix"));
    key.sha256 = json::value_to<std::string>(k.at("sha256"));
    key.created_at_ms = k.at("created_at_ms").to_number<std::int64_t>();
    key.revoked_at_ms = k.at("revoked_at_ms").to_number<std::int64_t>();
    app.keys.push_back(std::move(key));
  }
  return app;
}

bool valid_limit(const RateLimit& r) {
  return r.per_s >= 0 && r.burst >= 0 && r.per_s < 1e9 && r.burst < 1e9;
}

}  // namespace

AppService::AppService(asio::any_io_executor executor, storage::StreamStore& streams,
                       storage::RecordStore& records, AppRegistry& registry, RateLimiter& limiter,
                       Clock clock)
    : streams_(streams),
      records_(records),
      registry_(registry),
      limiter_(limiter),
      clock_(std::move(clock)),
      lock_(std::move(executor)) {}

bool AppService::valid_label(std::string_view label) {
  if (label.size() > 4 * kMaxLabelChars) return false;
  // Code points: every byte that is not a UTF-8 continuation byte (10xxxxxx) starts one.
  const auto chars = std::count_if(label.begin(), label.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  });
  return static_cast<std::size_t>(chars) <= kMaxLabelChars;
}

std::string AppService::record_key(std::string_view app) {
  std::string key(kRecordPrefix);
  key.append(app);
  return key;
}

void AppService::on_change(Listener listener) { listeners_.push_back(std::move(listener)); }

void AppService::publish(const App& changed) {
  std::vector<App> apps;
  for (const auto& app : registry_.apps()) {
    if (app->id != changed.id) apps.push_back(*app);
  }
  apps.push_back(changed);
  registry_.publish(std::move(apps));
  limiter_.set_limits(changed.id, changed.limits);
  for (const auto& listener : listeners_) listener(changed);
}

asio::awaitable<boost::system::result<void>> AppService::async_write(App app, bool create) {
  storage::AppendBatch batch;
  batch.now_ms = clock_();
  batch.put_records.push_back({record_key(app.id), encode(app), 0});
  if (create) batch.unless_record_exists = record_key(app.id);
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) {
    log::warn("app_store_failed", {{"app", app.id}, {"error", ec.message()}});
    co_return storage_error(ec);
  }
  if (outcome.existing) co_return LogicError::kAppExists;
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<void>> AppService::async_store(App app, bool create) {
  auto written = co_await async_write(app, create);
  if (!written) co_return written.error();
  publish(app);
  co_return boost::system::result<void>{};
}

std::optional<LogicError> AppService::apply(const AppSettings& settings, App& app) {
  if (settings.disabled) app.disabled = *settings.disabled;
  if (settings.limits) {
    if (!valid_limit(settings.limits->requests) || !valid_limit(settings.limits->messages)) {
      return LogicError::kBadRequest;
    }
    app.limits = *settings.limits;
  }
  if (settings.webhook_url) {
    if (app.webhook && app.webhook->configured) return LogicError::kWebhookConfigured;
    if (!*settings.webhook_url) {
      app.webhook.reset();
    } else {
      const std::string& url = **settings.webhook_url;
      if (!url.starts_with("http://") || url.size() > kMaxWebhookUrlBytes) {
        return LogicError::kBadRequest;
      }
      if (!app.webhook) app.webhook = Webhook{url, random_hex(32)};
      app.webhook->url = url;
    }
  }
  return std::nullopt;
}

boost::system::result<std::vector<App>> AppService::read_stored(std::int64_t now_ms) {
  std::vector<App> apps;
  std::string after;
  for (;;) {
    auto page = records_.scan(kRecordPrefix, after, kListPage, now_ms);
    if (!page) return storage_error(page.error());
    for (const auto& record : *page) {
      try {
        apps.push_back(decode(record.value));
      } catch (const std::exception& e) {
        log::error("app_record_corrupt", {{"key", record.key}, {"error", e.what()}});
        return LogicError::kStorageFailed;
      }
    }
    if (page->size() < kListPage) break;
    after = page->back().key;
  }
  return apps;
}

asio::awaitable<boost::system::result<std::size_t>> AppService::async_refresh() {
  auto stored = read_stored(clock_());
  if (!stored) co_return stored.error();
  auto held = co_await lock_.acquire();
  std::size_t changed = 0;
  for (const auto& app : *stored) {
    const auto current = registry_.find(app.id);
    if (current && *current == app) continue;
    publish(app);
    ++changed;
  }
  co_return changed;
}

asio::awaitable<boost::system::result<void>> AppService::async_load(
    std::vector<AppConfig> configured) {
  const std::int64_t now_ms = clock_();
  auto read = read_stored(now_ms);
  if (!read) co_return read.error();
  std::vector<App> apps = std::move(*read);

  // The configuration, applied to what is stored: configured apps and keys are added (a key an
  // admin revoked stays revoked), and configured webhooks replace what the records hold, because
  // the file owns them; one the file no longer names goes away (the app's stored upstream
  // messages stay, for a webhook set later).
  const std::vector<App> stored = apps;
  for (const auto& config : configured) {
    auto it =
        std::find_if(apps.begin(), apps.end(), [&](const App& a) { return a.id == config.id; });
    if (it == apps.end()) {
      App created;
      created.id = config.id;
      created.created_at_ms = now_ms;
      apps.push_back(std::move(created));
      it = std::prev(apps.end());
    }
    App& app = *it;
    for (const auto& secret : config.keys) {
      ApiKey key = AppRegistry::describe_key(secret, "config", now_ms);
      const auto known = std::find_if(app.keys.begin(), app.keys.end(),
                                      [&](const ApiKey& k) { return k.sha256 == key.sha256; });
      if (known == app.keys.end()) {
        app.keys.push_back(std::move(key));
      } else if (!known->works_at(now_ms)) {
        log::warn("configured_key_revoked", {{"app", app.id}, {"key_id", known->id}});
      }
    }
    if (config.webhook) {
      Webhook hook = *config.webhook;
      hook.configured = true;
      if (app.webhook && !app.webhook->configured) {
        log::warn("app_webhook_replaced_by_config",
                  {{"app", app.id}, {"was", app.webhook->url}, {"url", hook.url}});
      }
      app.webhook = std::move(hook);
    }
  }
  for (auto& app : apps) {
    if (!app.webhook || !app.webhook->configured) continue;
    const bool named = std::any_of(configured.begin(), configured.end(),
                                   [&](const AppConfig& c) { return c.id == app.id && c.webhook; });
    if (!named) {
      log::info("app_webhook_unconfigured", {{"app", app.id}, {"was", app.webhook->url}});
      app.webhook.reset();
    }
  }
  for (const auto& app : apps) {
    const auto before =
        std::find_if(stored.begin(), stored.end(), [&](const App& a) { return a.id == app.id; });
    if (before != stored.end() && *before == app) continue;
    auto written = co_await async_write(app, /*create=*/false);
    if (!written) co_return written.error();
  }

  for (const auto& app : apps) limiter_.set_limits(app.id, app.limits);
  registry_.publish(apps);
  for (const auto& app : apps) {
    for (const auto& listener : listeners_) listener(app);
  }
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<std::pair<App, NewApiKey>>> AppService::async_create(
    std::string id, AppSettings settings) {
  if (!AppRegistry::valid_app_id(id)) co_return LogicError::kBadRequest;
  const std::int64_t now_ms = clock_();
  App app;
  app.id = std::move(id);
  app.created_at_ms = now_ms;
  if (auto e = apply(settings, app)) co_return *e;
  NewApiKey key;
  key.secret = "hk_" + random_hex(20);
  key.info = AppRegistry::describe_key(key.secret, "", now_ms);
  app.keys.push_back(key.info);

  auto held = co_await lock_.acquire();
  auto stored = co_await async_store(app, /*create=*/true);
  if (!stored) co_return stored.error();
  co_return std::pair{std::move(app), std::move(key)};
}

asio::awaitable<boost::system::result<App>> AppService::async_change(std::string id, Edit edit) {
  auto held = co_await lock_.acquire();
  const auto current = registry_.find(id);
  if (!current) co_return LogicError::kUnknownApp;
  App app = *current;
  if (const auto refused = edit(app)) co_return *refused;
  assert(app.id == id);
  auto stored = co_await async_store(app, /*create=*/false);
  if (!stored) co_return stored.error();
  co_return app;
}

asio::awaitable<boost::system::result<App>> AppService::async_update(std::string id,
                                                                     AppSettings settings) {
  co_return co_await async_change(std::move(id),
                                  [&settings](App& app) { return apply(settings, app); });
}

asio::awaitable<boost::system::result<NewApiKey>> AppService::async_add_key(std::string app_id,
                                                                            std::string label) {
  if (!valid_label(label)) co_return LogicError::kBadRequest;
  NewApiKey key;
  auto changed =
      co_await async_change(std::move(app_id), [&](App& app) -> std::optional<LogicError> {
        const std::int64_t now_ms = clock_();
        if (app.working_keys(now_ms) >= kMaxKeysPerApp) return LogicError::kTooManyKeys;
        // Keys revoked long ago are dropped now that the record is rewritten anyway.
        std::erase_if(app.keys, [&](const ApiKey& k) {
          return k.revoked_at_ms != 0 && k.revoked_at_ms + kRevokedKeyRetentionMs < now_ms;
        });
        key.secret = "hk_" + random_hex(20);
        key.info = AppRegistry::describe_key(key.secret, std::move(label), now_ms);
        app.keys.push_back(key.info);
        return std::nullopt;
      });
  if (!changed) co_return changed.error();
  co_return key;
}

asio::awaitable<boost::system::result<ApiKey>> AppService::async_revoke_key(std::string app_id,
                                                                            std::string key_id,
                                                                            std::int64_t grace_s) {
  if (grace_s < 0) co_return LogicError::kBadRequest;
  ApiKey revoked;
  auto changed =
      co_await async_change(std::move(app_id), [&](App& app) -> std::optional<LogicError> {
        const auto it = std::find_if(app.keys.begin(), app.keys.end(),
                                     [&](const ApiKey& k) { return k.id == key_id; });
        if (it == app.keys.end()) return LogicError::kUnknownKey;
        const std::int64_t ends_at = clock_() + grace_s * 1000;
        // Another key must still work once this one stops, or the app's senders are locked out.
        const bool another_works =
            std::any_of(app.keys.begin(), app.keys.end(), [&](const ApiKey& k) {
              return k.id != key_id && (k.revoked_at_ms == 0 || k.revoked_at_ms > ends_at);
            });
        if (!another_works) return LogicError::kLastKey;
        if (it->revoked_at_ms == 0 || it->revoked_at_ms > ends_at) it->revoked_at_ms = ends_at;
        revoked = *it;
        return std::nullopt;
      });
  if (!changed) co_return changed.error();
  co_return revoked;
}

}  // namespace herald::logic
