// AppRegistry: the apps this deployment serves and the API keys that authenticate their senders.
// In this version apps come from the configuration file; the admin API (create, rotate, revoke)
// replaces the source, not this interface. Immutable after construction, so any thread may read.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace herald::logic {

struct AppConfig {
  std::string id;                 // [a-z0-9._-], 1..64 bytes
  std::vector<std::string> keys;  // API keys; any one authenticates a sender of this app
};

class AppRegistry {
 public:
  explicit AppRegistry(std::vector<AppConfig> apps);

  [[nodiscard]] bool exists(std::string_view app) const;
  // True when `key` is one of `app`'s keys. Constant-time in the key's content.
  [[nodiscard]] bool authenticate(std::string_view app, std::string_view key) const;
  [[nodiscard]] const std::vector<AppConfig>& apps() const { return apps_; }

  // The rule for app ids, shared by the config loader and the HTTP API.
  [[nodiscard]] static bool valid_app_id(std::string_view id);

 private:
  std::vector<AppConfig> apps_;
  std::unordered_map<std::string, std::size_t> index_;
};

}  // namespace herald::logic
