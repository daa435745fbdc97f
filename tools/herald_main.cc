// herald: the sender CLI. Registers devices and pushes messages through the sender HTTP API.
//
//   herald [--server http://HOST:PORT] [--key KEY] [--json] register --app APP --device ID
//   herald [--server ...] [--key KEY] [--json] push --app APP --device ID [--device ID ...]
//          --data JSON [--base64] [--ttl S]
//
// Exit status: 0 success, 1 the server refused or could not be reached, 2 bad usage.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/pchars.hpp>

#include "http/http_client.h"

namespace {

namespace bhttp = boost::beast::http;
namespace json = boost::json;
using herald::http::HttpClient;
using herald::http::Response;

constexpr std::string_view kDefaultServer = "http://127.0.0.1:7780";
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage =
    R"(usage: herald [OPTIONS] COMMAND [ARGS]

commands:
  register --app APP --device ID
      Registers device ID for APP and prints its token.
  push --app APP --device ID [--device ID ...] --data DATA [--base64] [--ttl SECONDS]
      Sends DATA (a JSON value, or with --base64 the base64 text of binary data) to each
      device and prints the message id and each device's sequence number.

options:
  --server URL      the sender API (default: $HERALD_SERVER, else http://127.0.0.1:7780)
  --key KEY         the app's API key (default: $HERALD_API_KEY)
  --json            print the server's JSON answer unchanged
  --timeout-ms MS   deadline of each request (default 10000)
  -h, --help        this text

exit status: 0 success, 1 refused by the server or unreachable, 2 bad usage
)";

struct Options {
  std::optional<std::string> server;
  std::optional<std::string> key;
  bool json_output = false;
  std::int64_t timeout_ms = 10'000;
  std::string command;
  std::optional<std::string> app;
  std::vector<std::string> devices;
  std::optional<std::string> data;
  bool base64 = false;
  std::optional<std::int64_t> ttl_s;
};

struct UsageError {
  std::string message;
};

std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// Flags may come before or after the command, as "--flag value" or "--flag=value".
Options parse_args(int argc, char** argv) {
  Options o;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::optional<std::string_view> inline_value;
    if (arg.starts_with("--")) {
      if (const auto eq = arg.find('='); eq != std::string_view::npos) {
        inline_value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
      }
    }
    const auto value = [&]() -> std::string {
      if (inline_value) return std::string(*inline_value);
      if (i + 1 >= args.size()) throw UsageError{std::string(arg) + " needs a value"};
      return std::string(args[++i]);
    };
    const auto no_value = [&] {
      if (inline_value) throw UsageError{std::string(arg) + " takes no value"};
    };

    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (arg == "--server") {
      o.server = value();
    } else if (arg == "--key") {
      o.key = value();
    } else if (arg == "--json") {
      no_value();
      o.json_output = true;
    } else if (arg == "--timeout-ms") {
      const auto ms = parse_int(value());
      if (!ms || *ms <= 0) throw UsageError{"--timeout-ms needs a positive integer"};
      o.timeout_ms = *ms;
    } else if (arg == "--app") {
      o.app = value();
    } else if (arg == "--device") {
      o.devices.push_back(value());
    } else if (arg == "--data") {
      o.data = value();
    } else if (arg == "--base64") {
      no_value();
      o.base64 = true;
    } else if (arg == "--ttl") {
      const auto ttl = parse_int(value());
      if (!ttl) throw UsageError{"--ttl needs an integer number of seconds"};
      o.ttl_s = *ttl;
    } else if (arg.starts_with("-")) {
      throw UsageError{"unknown option " + std::string(arg)};
    } else if (o.command.empty()) {
      o.command = std::string(arg);
    } else {
      throw UsageError{"unexpected argument '" + std::string(arg) + "'"};
    }
  }
  if (o.command.empty()) throw UsageError{"no command given"};
  if (!o.server) {
    const char* env = std::getenv("HERALD_SERVER");
    o.server = env != nullptr && *env != '\0' ? std::string(env) : std::string(kDefaultServer);
  }
  if (!o.key) {
    const char* env = std::getenv("HERALD_API_KEY");
    if (env != nullptr && *env != '\0') o.key = std::string(env);
  }
  return o;
}

struct Server {
  std::string host;
  std::uint16_t port = 80;
};

Server parse_server(std::string text) {
  if (text.find("://") == std::string::npos) text = "http://" + text;
  auto url = boost::urls::parse_uri(text);
  if (!url || url->scheme() != "http" || url->host_address().empty() ||
      (url->path() != "" && url->path() != "/") || url->has_query()) {
    throw UsageError{"--server must look like http://HOST:PORT, not '" + text + "'"};
  }
  Server server;
  server.host = url->host_address();
  if (url->has_port()) {
    const auto port = parse_int(url->port());
    if (!port || *port < 1 || *port > 65535) throw UsageError{"bad port in --server"};
    server.port = static_cast<std::uint16_t>(*port);
  }
  return server;
}

std::string app_path(const Options& o, std::string_view what) {
  if (!o.app) throw UsageError{o.command + " needs --app"};
  return "/v1/apps/" + boost::urls::encode(*o.app, boost::urls::pchars) + "/" + std::string(what);
}

// Prints the server's error and returns the exit status for it.
int report_failure(const Response& res) {
  boost::system::error_code ec;
  const json::value body = json::parse(res.body(), ec);
  const json::value* error = ec                 ? nullptr
                             : body.is_object() ? body.as_object().if_contains("error")
                                                : nullptr;
  if (error != nullptr && error->is_object() && error->as_object().contains("code") &&
      error->as_object().contains("message") && error->at("code").is_string() &&
      error->at("message").is_string()) {
    std::cerr << "herald: " << std::string_view(error->at("code").as_string()) << ": "
              << std::string_view(error->at("message").as_string()) << " (HTTP " << res.result_int()
              << ")\n";
  } else {
    std::cerr << "herald: HTTP " << res.result_int() << ": " << res.body() << "\n";
  }
  return kExitFailed;
}

std::string cell(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  return json::serialize(v);
}

void print_targets_table(const json::value& body) {
  std::cout << "id " << cell(body.at("id")) << "\n";
  std::vector<std::vector<std::string>> rows = {{"DEVICE", "EPOCH", "SEQ", "ONLINE"}};
  for (const json::value& t : body.at("targets").as_array()) {
    const json::value* online = t.as_object().if_contains("online");
    rows.push_back(
        {cell(t.at("device")), cell(t.at("epoch")), cell(t.at("seq")),
         online != nullptr && online->is_bool() ? (online->get_bool() ? "yes" : "no") : "-"});
  }
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

int run(const Options& o) {
  const Server server = parse_server(*o.server);
  if (!o.key) throw UsageError{"no API key: pass --key or set HERALD_API_KEY"};

  std::string target;
  json::object request;
  if (o.command == "register") {
    if (o.devices.size() != 1) throw UsageError{"register needs exactly one --device"};
    if (o.data || o.base64 || o.ttl_s)
      throw UsageError{"register takes no --data, --base64, --ttl"};
    target = app_path(o, "devices");
    request["device"] = o.devices.front();
  } else if (o.command == "push") {
    if (o.devices.empty()) throw UsageError{"push needs at least one --device"};
    if (!o.data) throw UsageError{"push needs --data"};
    target = app_path(o, "messages");
    if (o.devices.size() == 1) {
      request["to"] = json::object{{"device", o.devices.front()}};
    } else {
      json::array devices;
      for (const auto& d : o.devices) devices.emplace_back(d);
      request["to"] = json::object{{"devices", std::move(devices)}};
    }
    if (o.base64) {
      request["data"] = *o.data;
      request["encoding"] = "base64";
    } else {
      boost::system::error_code ec;
      json::value data = json::parse(*o.data, ec);
      if (ec) {
        throw UsageError{"--data is not valid JSON (" + ec.message() +
                         "); to send text, quote it: --data '\"hello\"'"};
      }
      request["data"] = std::move(data);
    }
    if (o.ttl_s) request["ttl_s"] = *o.ttl_s;
  } else {
    throw UsageError{"unknown command '" + o.command + "'"};
  }

  HttpClient client(server.host, server.port, std::chrono::milliseconds(o.timeout_ms));
  auto res = client.request(bhttp::verb::post, target, json::serialize(request),
                            {{"Authorization", "Bearer " + *o.key}});
  if (!res) {
    std::cerr << "herald: cannot reach " << *o.server << ": " << res.error().message() << "\n";
    return kExitFailed;
  }
  if (o.json_output) std::cout << res->body() << "\n";
  if (res->result_int() / 100 != 2) return report_failure(*res);
  if (o.json_output) return 0;

  boost::system::error_code ec;
  const json::value body = json::parse(res->body(), ec);
  if (ec || !body.is_object()) {
    std::cerr << "herald: the server answered with something that is not JSON: " << res->body()
              << "\n";
    return kExitFailed;
  }
  try {
    if (o.command == "register") {
      std::cout << cell(body.at("token")) << "\n";
    } else {
      print_targets_table(body);
    }
  } catch (const std::exception&) {
    // at() and as_*() throw on an answer of an unexpected shape.
    std::cerr << "herald: unexpected answer from the server: " << res->body() << "\n";
    return kExitFailed;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "herald: " << e.message << "\n(run 'herald --help' for usage)\n";
    return kExitUsage;
  }
}
