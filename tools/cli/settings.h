// Settings: where herald sends its requests and with which secrets. Each setting comes from the
// first of these that has it:
//
//   setting       flag            environment           config file    default
//   server        --server        HERALD_SERVER         server         http://127.0.0.1:7780
//   API key       --key           HERALD_API_KEY        api_key        (none)
//   admin token   --admin-token   HERALD_ADMIN_TOKEN    admin_token    (none)
//
// The config file is --config, else $HERALD_CONFIG, else $XDG_CONFIG_HOME/herald/cli.toml, else
// ~/.config/herald/cli.toml. A TOML file of those three string keys:
//
//   server = "http://127.0.0.1:7780"
//   api_key = "..."
//   admin_token = "..."
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
  std::string host;
  std::uint16_t port = 80;
  std::optional<std::string> api_key;
  std::optional<std::string> admin_token;
  // The config file looked at (whether or not it exists), for messages.
  std::filesystem::path config_path;
};

// The config file herald reads: --config, $HERALD_CONFIG, $XDG_CONFIG_HOME/herald/cli.toml or
// $HOME/.config/herald/cli.toml; empty when none of those is set.
[[nodiscard]] std::filesystem::path config_path(const Args& args, const Getenv& getenv);

// Resolves every setting as the table above says. Throws UsageError for a bad config file or a
// server that is not http://HOST[:PORT].
[[nodiscard]] Settings resolve_settings(const Args& args, const Getenv& getenv);

}  // namespace herald::cli
