#include "logic/app_registry.h"

#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <stdexcept>

namespace herald::logic {

namespace {
constexpr std::size_t kKeyPrefixChars = 6;
}  // namespace

std::size_t App::working_keys(std::int64_t now_ms) const {
  return static_cast<std::size_t>(
      std::count_if(keys.begin(), keys.end(), [&](const ApiKey& k) { return k.works_at(now_ms); }));
}

AppRegistry::AppRegistry() : snapshot_(std::make_shared<const Snapshot>()) {}

AppRegistry::AppRegistry(const std::vector<AppConfig>& configs) : AppRegistry() {
  std::vector<App> apps;
  for (const auto& config : configs) {
    if (!valid_app_id(config.id)) {
      throw std::invalid_argument("apps: invalid app id '" + config.id + "'");
    }
    for (const auto& other : apps) {
      if (other.id == config.id) {
        throw std::invalid_argument("apps: duplicate app id '" + config.id + "'");
      }
    }
    App app;
    app.id = config.id;
    for (const auto& key : config.keys) app.keys.push_back(describe_key(key, "config", 0));
    if (config.webhook) {
      app.webhook = *config.webhook;
      app.webhook->configured = true;
    }
    apps.push_back(std::move(app));
  }
  publish(std::move(apps));
}

void AppRegistry::publish(std::vector<App> apps) {
  std::sort(apps.begin(), apps.end(), [](const App& a, const App& b) { return a.id < b.id; });
  auto next = std::make_shared<Snapshot>();
  for (auto& app : apps) {
    auto shared = std::make_shared<const App>(std::move(app));
    next->apps.push_back(shared);
    next->by_id.emplace(shared->id, shared);
    for (std::size_t i = 0; i < shared->keys.size(); ++i) {
      next->by_key_hash.emplace(shared->keys[i].sha256, std::pair{shared, i});
    }
  }
  snapshot_.store(std::shared_ptr<const Snapshot>(std::move(next)), std::memory_order_release);
}

std::shared_ptr<const App> AppRegistry::find(std::string_view app) const {
  const auto s = snapshot();
  const auto it = s->by_id.find(app);
  return it == s->by_id.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const App>> AppRegistry::apps() const { return snapshot()->apps; }

std::optional<AppRegistry::KeyMatch> AppRegistry::authenticate(std::string_view key,
                                                               std::int64_t now_ms) const {
  if (key.empty()) return std::nullopt;
  const std::string hash = sha256_hex(key);
  const auto s = snapshot();
  const auto it = s->by_key_hash.find(hash);
  if (it == s->by_key_hash.end()) return std::nullopt;
  const ApiKey& k = it->second.first->keys[it->second.second];
  if (!k.works_at(now_ms)) return std::nullopt;
  return KeyMatch{it->second.first, k.id};
}

bool AppRegistry::valid_app_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

std::string AppRegistry::sha256_hex(std::string_view text) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest.data());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0x0f]);
  }
  return out;
}

ApiKey AppRegistry::describe_key(std::string_view key, std::string label, std::int64_t now_ms) {
  ApiKey k;
  k.sha256 = sha256_hex(key);
  k.id = k.sha256.substr(0, 16);
  k.label = std::move(label);
  k.prefix = std::string(key.substr(0, std::min(key.size(), kKeyPrefixChars)));
  k.created_at_ms = now_ms;
  return k;
}

}  // namespace herald::logic
