#include "logic/app_registry.h"

#include <openssl/crypto.h>

#include <stdexcept>

namespace herald::logic {

AppRegistry::AppRegistry(std::vector<AppConfig> apps) : apps_(std::move(apps)) {
  for (std::size_t i = 0; i < apps_.size(); ++i) {
    if (!valid_app_id(apps_[i].id)) {
      throw std::invalid_argument("apps: invalid app id '" + apps_[i].id + "'");
    }
    if (!index_.emplace(apps_[i].id, i).second) {
      throw std::invalid_argument("apps: duplicate app id '" + apps_[i].id + "'");
    }
  }
}

bool AppRegistry::exists(std::string_view app) const {
  return index_.find(std::string(app)) != index_.end();
}

bool AppRegistry::authenticate(std::string_view app, std::string_view key) const {
  const auto it = index_.find(std::string(app));
  if (it == index_.end() || key.empty()) return false;
  bool match = false;
  // Compare against every key without stopping early, each in constant time.
  for (const auto& k : apps_[it->second].keys) {
    if (k.size() == key.size() && CRYPTO_memcmp(k.data(), key.data(), k.size()) == 0) {
      match = true;
    }
  }
  return match;
}

bool AppRegistry::valid_app_id(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace herald::logic
