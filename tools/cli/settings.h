// Settings: where herald sends its requests and with which secrets. Each setting comes from the
// first of these that has it:
//
//   setting          flag               environment             config file      default
//   server           --server           HERALD_SERVER           server           (below)
//   API key          --key              HERALD_API_KEY          api_key          (none)
//   admin token      --admin-token      HERALD_ADMIN_TOKEN      admin_token      (none)
//   CA file          --ca-file          HERALD_CA_FILE          ca_file          system CAs
//   TLS server name  --tls-server-name  HERALD_TLS_SERVER_NAME  tls_server_name  the host
//
// The default server is http://127.0.0.1:7780.
//
// The server is http://HOST[:PORT] (port 80 by default) or https://HOST[:PORT] (443); a bare
// HOST[:PORT] is http. Over https the server's certificate must be signed by a CA of the CA file
// and carry the TLS server name, which is also sent as SNI: set it when HOST is an address and
// the certificate names the deployment (all-IP access), not the address. The two TLS settings
// given as flags with an http server are a UsageError (from the environment or the file they are
// ignored: one environment may serve both kinds of server).
//
// The config file is --config, else $HERALD_CONFIG, else $XDG_CONFIG_HOME/herald/cli.toml, else
// ~/.config/herald/cli.toml. A TOML file of those string keys:
//
//   server = "https://push.example.com:7780"
//   api_key = "..."
//   admin_token = "..."
//   ca_file = "/etc/herald/ca.pem"
//
// A file named by --config or $HERALD_CONFIG must exist; the default one may not. An unknown key,
// a value that is not a non-empty string, or bad TOML is a UsageError naming the file (and the
// line): a misspelt setting must not silently fall back to its default. An empty environment
// variable counts as unset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cli/args.h"

namespace herald::cli {

// Reads an environment variable; nullopt when unset. Injected so that tests choose the
// environment.
using Getenv = std::function<std::optional<std::string>(std::string_view)>;
// The process's environment (std::getenv).
[[nodiscard]] Getenv process_environment();

inline constexpr std::string_view kDefaultServer = "http://127.0.0.1:7780";

struct Settings {
  std::string server;  // as given, for messages
  bool https = false;
  std::string host;
  std::uint16_t port = 80;
  // https only: the CAs to trust (PEM file); nullopt: the system's default store.
  std::optional<std::string> ca_file;
  // https only: the name the server's certificate must carry, and the SNI; `host` by default.
  std::string tls_server_name;
  std::optional<std::string> api_key;
  std::optional<std::string> admin_token;
  // The config file looked at (whether or not it exists), for messages.
  std::filesystem::path config_path;
};

// The config file herald reads: --config, $HERALD_CONFIG, $XDG_CONFIG_HOME/herald/cli.toml or
// $HOME/.config/herald/cli.toml; empty when none of those is set.
[[nodiscard]] std::filesystem::path config_path(const Args& args, const Getenv& getenv);

// Resolves every setting as the table above says. Throws UsageError for a bad config file, a
// server that is not http://HOST[:PORT] or https://HOST[:PORT] (another scheme is named as such),
// or a TLS flag with an http server.
[[nodiscard]] Settings resolve_settings(const Args& args, const Getenv& getenv);

}  // namespace herald::cli
