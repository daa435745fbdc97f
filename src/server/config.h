// heraldd's configuration: a TOML file (docs/configuration.md lists every setting), each setting
// overridable by a flag of the same name:
//
//   heraldd --config herald.toml --access.listen=0.0.0.0:7700 --storage.durability fast
//
// A bad file, an unknown setting or a bad value stops start-up with a ConfigError that names the
// setting. Without any file the embedded default runs: data in ./herald-data, one app "demo"
// whose key is generated on first start and kept in the data directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "access/access_options.h"
#include "logic/app_registry.h"
#include "logic/message_service.h"

namespace herald::server {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct HttpSettings {
  std::string listen_address = "0.0.0.0";
  std::uint16_t listen_port = 7780;
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_connections = 10'000;
};

struct StorageSettings {
  std::string durability = "sync";    // "sync" (fsync + group commit) or "fast"
  std::size_t writer_queue = 65'536;  // appends waiting for the writer; beyond it: 503
  std::size_t block_cache_mb = 64;
};

struct AuthSettings {
  std::string token_secret;          // empty: generated into <data_dir>/token_secret
  std::int64_t token_max_age_s = 0;  // 0: tokens do not expire
};

struct Config {
  std::filesystem::path data_dir = "herald-data";
  int threads = 0;  // event loops; 0 = one per core
  std::string log_level = "info";
  std::filesystem::path ready_file;  // written (JSON with the bound ports) once listening
  access::AccessOptions access;
  HttpSettings http;
  StorageSettings storage;
  AuthSettings auth;
  logic::MessageLimits messages;
  std::vector<logic::AppConfig> apps;  // empty: the "demo" app (see above)
};

// Parses argv (and the file named by --config). Throws ConfigError; `--help` output goes to
// `help_out` and sets `wants_help`.
Config load_config(int argc, const char* const* argv, bool& wants_help, std::string& help_out);

// The settings table as Markdown (the body of docs/configuration.md is checked against it).
std::string settings_markdown();

}  // namespace herald::server
