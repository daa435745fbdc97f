#include "cli/settings.h"

#include <charconv>
#include <cstdlib>
#include <map>
#include <sstream>
#include <system_error>

#include <toml++/toml.h>
#include <boost/url/parse.hpp>

namespace herald::cli {

namespace {

constexpr std::string_view kKnownKeys = "server, api_key, admin_token, ca_file, tls_server_name";

// The config file's settings, by key.
using FileSettings = std::map<std::string, std::string, std::less<>>;

FileSettings load_file(const std::filesystem::path& path, bool must_exist) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (must_exist) throw UsageError("config file " + path.string() + " does not exist");
    return {};
  }
  toml::table table;
  try {
    table = toml::parse_file(path.string());
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << path.string() << ":" << e.source().begin.line << ": " << e.description();
    throw UsageError(msg.str());
  }
  FileSettings out;
  for (const auto& [key, value] : table) {
    const std::string name(key.str());
    if (name != "server" && name != "api_key" && name != "admin_token" && name != "ca_file" &&
        name != "tls_server_name") {
      throw UsageError(path.string() + ": unknown key '" + name +
                       "' (known: " + std::string(kKnownKeys) + ")");
    }
    const auto text = value.value<std::string>();
    if (!value.is_string() || !text || text->empty()) {
      throw UsageError(path.string() + ": '" + name + "' must be a non-empty string");
    }
    out[name] = *text;
  }
  return out;
}

// flag, else environment variable, else the file's key.
std::optional<std::string> pick(const Args& args, std::string_view flag, const Getenv& getenv,
                                std::string_view env, const FileSettings& file,
                                std::string_view key) {
  if (auto v = args.get(flag)) return v;
  if (auto v = getenv(env)) return v;
  if (const auto it = file.find(key); it != file.end()) return it->second;
  return std::nullopt;
}

void parse_server(Settings& s) {
  std::string text = s.server;
  if (text.find("://") == std::string::npos) text = "http://" + text;
  const auto url = boost::urls::parse_uri(text);
  if (url && url->scheme() != "http" && url->scheme() != "https") {
    throw UsageError("the server's scheme must be http or https, not '" +
                     std::string(url->scheme()) + "' in '" + s.server + "'");
  }
  if (!url || url->host_address().empty() || (url->path() != "" && url->path() != "/") ||
      url->has_query() || url->has_fragment() || url->has_userinfo()) {
    throw UsageError("the server must look like http://HOST:PORT or https://HOST:PORT, not '" +
                     s.server + "'");
  }
  s.https = url->scheme() == "https";
  s.port = s.https ? 443 : 80;
  s.host = url->host_address();
  if (url->has_port()) {
    const std::string_view port = url->port();
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc{} || end != port.data() + port.size() || v < 1 || v > 65535) {
      throw UsageError("bad port in the server '" + s.server + "'");
    }
    s.port = static_cast<std::uint16_t>(v);
  }
}

}  // namespace

Getenv process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

std::filesystem::path config_path(const Args& args, const Getenv& getenv) {
  if (auto v = args.get("config")) return *v;
  if (auto v = getenv("HERALD_CONFIG")) return *v;
  if (auto v = getenv("XDG_CONFIG_HOME")) return std::filesystem::path(*v) / "herald" / "cli.toml";
  if (auto v = getenv("HOME")) return std::filesystem::path(*v) / ".config" / "herald" / "cli.toml";
  return {};
}

Settings resolve_settings(const Args& args, const Getenv& getenv) {
  Settings s;
  s.config_path = config_path(args, getenv);
  const bool named = args.has("config") || getenv("HERALD_CONFIG").has_value();
  if (args.has("config") && s.config_path.empty()) throw UsageError("--config needs a file name");
  const FileSettings file =
      s.config_path.empty() ? FileSettings{} : load_file(s.config_path, /*must_exist=*/named);
  s.server = pick(args, "server", getenv, "HERALD_SERVER", file, "server")
                 .value_or(std::string(kDefaultServer));
  parse_server(s);
  s.api_key = pick(args, "key", getenv, "HERALD_API_KEY", file, "api_key");
  s.admin_token = pick(args, "admin-token", getenv, "HERALD_ADMIN_TOKEN", file, "admin_token");
  if (!s.https) {
    for (const std::string_view flag : {"ca-file", "tls-server-name"}) {
      if (args.has(flag)) {
        throw UsageError("--" + std::string(flag) + " is for an https server, not '" + s.server +
                         "'");
      }
    }
    return s;
  }
  s.ca_file = pick(args, "ca-file", getenv, "HERALD_CA_FILE", file, "ca_file");
  s.tls_server_name =
      pick(args, "tls-server-name", getenv, "HERALD_TLS_SERVER_NAME", file, "tls_server_name")
          .value_or(s.host);
  return s;
}

}  // namespace herald::cli
