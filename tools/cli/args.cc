#include "cli/args.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

namespace herald::cli {

namespace {

constexpr std::array kFlags = {
    // Global: where to send, with which secret, how to print.
    FlagSpec{"server", "URL", false, true,
             "the API server, http://HOST:PORT or https://HOST:PORT (else $HERALD_SERVER, the "
             "config file's 'server', http://127.0.0.1:7780)"},
    FlagSpec{"ca-file", "FILE", false, true,
             "https: the CAs to trust, PEM (else $HERALD_CA_FILE, the config file's 'ca_file', "
             "the system's CAs)"},
    FlagSpec{"tls-server-name", "NAME", false, true,
             "https: the name the server's certificate must carry (else "
             "$HERALD_TLS_SERVER_NAME, the config file's 'tls_server_name', the server's host)"},
    FlagSpec{"key", "KEY", false, true,
             "the app's API key (else $HERALD_API_KEY, the config file's 'api_key')"},
    FlagSpec{"admin-token", "TOKEN", false, true,
             "the admin token (else $HERALD_ADMIN_TOKEN, the config file's 'admin_token')"},
    FlagSpec{"config", "FILE", false, true,
             "the config file (else $HERALD_CONFIG, $XDG_CONFIG_HOME/herald/cli.toml, "
             "~/.config/herald/cli.toml)"},
    FlagSpec{"json", "", false, true, "print the server's JSON answer unchanged"},
    FlagSpec{"timeout-ms", "MS", false, true, "deadline of the request (default 10000)"},
    FlagSpec{"help", "", false, true, "this text; after a command, that command's"},
    // The commands'.
    FlagSpec{"app", "APP", false, false, "the app's id"},
    FlagSpec{"device", "ID", true, false, "a device id"},
    FlagSpec{"alias", "NAME", false, false, "an alias (a user id the app binds devices to)"},
    FlagSpec{"id", "ID", false, false, "a message id, as push printed it"},
    FlagSpec{"data", "JSON", false, false, "the message, a JSON value ('\"text\"' for a string)"},
    FlagSpec{"data-base64", "B64", false, false, "the message, binary bytes as base64 text"},
    FlagSpec{"ttl", "SECONDS", false, false,
             "how long to keep it for offline devices (0: deliver now or drop)"},
    FlagSpec{"collapse-key", "KEY", false, false,
             "a newer message with the same key replaces an older one not yet delivered"},
    FlagSpec{"topic", "TOPIC", false, false, "a topic: 1 to 64 of [A-Za-z0-9_.~%-]"},
    FlagSpec{"condition", "EXPR", false, false,
             "the devices whose topics satisfy EXPR, over at most 5 topics: "
             "\"'a' in topics && ('b' in topics || !('c' in topics))\""},
    FlagSpec{"broadcast", "", false, false, "every device registered for the app"},
    FlagSpec{"spread", "SECONDS", false, false,
             "spread the notifies of a topic, condition or broadcast message over this many "
             "seconds (at most 3600; default 0: at once)"},
    FlagSpec{"history", "N", false, false,
             "also deliver the topic's last N messages (at most 100; default 0)"},
    FlagSpec{"after", "ID", false, false, "list the devices after this one (the next page)"},
    FlagSpec{"limit", "N", false, false, "list at most N devices (1 to 1000, default 100)"},
    FlagSpec{"priority", "high|normal", false, false,
             "high (the default) notifies at once; normal may wait up to a second at the access "
             "node, merged with the device's other waiting notifies"},
    FlagSpec{"send-at", "MS", false, false, "send at this Unix time in ms (scheduled)"},
    FlagSpec{"idempotency-key", "KEY", false, false,
             "a retry with the same key within 24 h sends nothing twice"},
    FlagSpec{"requests-per-s", "N", false, false, "requests per second (0: unlimited)"},
    FlagSpec{"requests-burst", "N", false, false, "request burst (default: one second's worth)"},
    FlagSpec{"messages-per-s", "N", false, false, "messages per second (0: unlimited)"},
    FlagSpec{"messages-burst", "N", false, false, "message burst (default: one second's worth)"},
    FlagSpec{"webhook", "URL", false, false, "the app's webhook for upstream messages (http://)"},
    FlagSpec{"no-webhook", "", false, false, "remove the app's webhook"},
    FlagSpec{"label", "TEXT", false, false, "a label for the key, to recognise it"},
    FlagSpec{"key-id", "ID", false, false, "a key's id, as 'admin key list' prints it"},
    FlagSpec{"grace", "SECONDS", false, false,
             "seconds the key keeps working (default 0: revoked now)"},
};

std::string usage_value(const FlagSpec& f) {
  return "--" + std::string(f.name) + " " + std::string(f.value_name);
}

}  // namespace

std::span<const FlagSpec> all_flags() { return kFlags; }

const FlagSpec* find_flag(std::string_view name) {
  const auto it = std::find_if(kFlags.begin(), kFlags.end(),
                               [name](const FlagSpec& f) { return f.name == name; });
  return it == kFlags.end() ? nullptr : &*it;
}

Args Args::parse(std::span<const std::string_view> args) {
  Args out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "-h") arg = "--help";
    if (!arg.starts_with("-") || arg == "-") {
      out.words_.emplace_back(arg);
      continue;
    }
    if (!arg.starts_with("--")) throw UsageError("unknown option " + std::string(arg));
    std::optional<std::string_view> inline_value;
    std::string_view name = arg.substr(2);
    if (const auto eq = name.find('='); eq != std::string_view::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const FlagSpec* flag = find_flag(name);
    if (flag == nullptr) {
      if (name == "base64") {
        throw UsageError("unknown option --base64: send binary data with --data-base64 B64");
      }
      throw UsageError("unknown option --" + std::string(name));
    }
    std::string value;
    if (flag->value_name.empty()) {
      if (inline_value) throw UsageError("--" + std::string(name) + " takes no value");
    } else if (inline_value) {
      value = std::string(*inline_value);
    } else if (i + 1 < args.size()) {
      // The next argument is the value even when it starts with '-' (--data -1).
      value = std::string(args[++i]);
    } else {
      throw UsageError(usage_value(*flag) + ": the value is missing");
    }
    auto& values = out.values_[std::string(name)];
    if (!values.empty() && !flag->repeatable) {
      throw UsageError("--" + std::string(name) + " is given twice");
    }
    values.push_back(std::move(value));
  }
  return out;
}

std::string Args::command() const {
  std::string text;
  for (const auto& w : words_) text += (text.empty() ? "" : " ") + w;
  return text;
}

bool Args::has(std::string_view name) const { return values_.contains(name); }

std::vector<std::string> Args::given() const {
  std::vector<std::string> names;
  for (const auto& [name, values] : values_) names.push_back(name);
  return names;
}

std::optional<std::string> Args::get(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second.front();
}

std::vector<std::string> Args::all(std::string_view name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::string Args::required(std::string_view name) const {
  if (auto v = get(name)) return *v;
  const FlagSpec* flag = find_flag(name);
  throw UsageError(command() + " needs " +
                   (flag != nullptr ? usage_value(*flag) : "--" + std::string(name)));
}

std::optional<std::int64_t> Args::integer(std::string_view name, std::int64_t min) const {
  const auto text = get(name);
  if (!text) return std::nullopt;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc{} || end != text->data() + text->size() || v < min) {
    throw UsageError("--" + std::string(name) + " needs an integer >= " + std::to_string(min) +
                     ", not '" + *text + "'");
  }
  return v;
}

std::optional<double> Args::rate(std::string_view name) const {
  const auto text = get(name);
  if (!text) return std::nullopt;
  double v = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc{} || end != text->data() + text->size() || !std::isfinite(v) || v < 0) {
    throw UsageError("--" + std::string(name) + " needs a number >= 0, not '" + *text + "'");
  }
  return v;
}

}  // namespace herald::cli
