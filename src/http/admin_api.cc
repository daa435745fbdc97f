#include "http/admin_api.h"

#include <openssl/crypto.h>

#include <charconv>
#include <cmath>
#include <stdexcept>
#include <utility>

#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "http/detail/api_support.h"
#include "http/detail/device_view.h"
#include "http/json_response.h"
#include "http/webhook_client.h"
#include "logic/device_token.h"

namespace herald::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
using logic::LogicError;
using namespace detail;

namespace {

constexpr std::int64_t kMaxGraceS = 30LL * 24 * 3600;

// A rate as JSON: whole numbers as integers (100, not 1E2).
json::value number(double d) {
  if (d == std::floor(d) && d < 9e15) return static_cast<std::int64_t>(d);
  return d;
}

json::object to_json(const logic::RateLimit& requests, const logic::RateLimit& messages) {
  json::object o;
  if (requests.per_s > 0) o["requests_per_s"] = number(requests.per_s);
  if (requests.burst > 0) o["requests_burst"] = number(requests.burst);
  if (messages.per_s > 0) o["messages_per_s"] = number(messages.per_s);
  if (messages.burst > 0) o["messages_burst"] = number(messages.burst);
  return o;
}

json::object to_json(const logic::ApiKey& k) {
  json::object o{{"id", k.id}, {"prefix", k.prefix}, {"created_at_ms", k.created_at_ms}};
  if (!k.label.empty()) o["label"] = k.label;
  if (k.revoked_at_ms != 0) o["revoked_at_ms"] = k.revoked_at_ms;
  return o;
}

json::object to_json(const logic::App& app, std::int64_t now_ms) {
  json::object o{{"id", app.id},
                 {"disabled", app.disabled},
                 {"created_at_ms", app.created_at_ms},
                 {"rate_limits", to_json(app.limits.requests, app.limits.messages)},
                 {"keys", app.working_keys(now_ms)}};
  if (app.webhook) {
    json::object hook{{"url", app.webhook->url}, {"secret", app.webhook->secret}};
    if (app.webhook->configured) hook["configured"] = true;
    o["webhook"] = std::move(hook);
  }
  return o;
}

json::object to_json(const logic::NewApiKey& key) {
  json::object o = to_json(key.info);
  o["key"] = key.secret;
  return o;
}

// A non-negative JSON number (integers too), or nullopt.
std::optional<double> non_negative(const json::value& v) {
  if (!v.is_number()) return std::nullopt;
  const double d = v.to_number<double>();
  if (!(d >= 0) || d > 1e9) return std::nullopt;
  return d;
}

// Reads "rate_limits" into `limits`; returns the error answer, if any.
std::optional<Response> parse_limits(const json::value& v, logic::AppRateLimits& limits) {
  const json::object* o = v.if_object();
  if (o == nullptr) return bad_request("'rate_limits' must be an object");
  limits = {};
  for (const auto& kv : *o) {
    const auto d = non_negative(kv.value());
    if (!d) return bad_request("'rate_limits." + std::string(kv.key()) + "' must be a number >= 0");
    if (kv.key() == "requests_per_s") {
      limits.requests.per_s = *d;
    } else if (kv.key() == "requests_burst") {
      limits.requests.burst = *d;
    } else if (kv.key() == "messages_per_s") {
      limits.messages.per_s = *d;
    } else if (kv.key() == "messages_burst") {
      limits.messages.burst = *d;
    } else {
      return bad_request("unknown field 'rate_limits." + std::string(kv.key()) + "'");
    }
  }
  return std::nullopt;
}

// Reads "webhook" ({"url": ...} or, when `nullable`, null) into `settings`.
std::optional<Response> parse_webhook(const json::value& v, bool nullable,
                                      logic::AppSettings& settings) {
  if (v.is_null() && nullable) {
    settings.webhook_url = std::optional<std::string>();
    return std::nullopt;
  }
  const json::object* o = v.if_object();
  if (o == nullptr) return bad_request("'webhook' must be an object {\"url\": ...}");
  for (const auto& kv : *o) {
    if (kv.key() != "url")
      return bad_request("unknown field 'webhook." + std::string(kv.key()) + "'");
  }
  const json::value* url = o->if_contains("url");
  if (url == nullptr || !url->is_string()) return bad_request("'webhook.url' must be a string");
  const std::string_view text = url->get_string();
  if (!text.starts_with("http://") || text.size() > 2048) {
    return bad_request("'webhook.url' must be an http:// URL of at most 2048 bytes");
  }
  // What the dispatcher will connect to: refused now rather than failing there.
  try {
    (void)parse_webhook_url(text);
  } catch (const std::invalid_argument& e) {
    return bad_request("'webhook.url': " + std::string(e.what()));
  }
  settings.webhook_url = std::optional<std::string>(std::string(text));
  return std::nullopt;
}

}  // namespace

AdminApi::AdminApi(AdminApiDeps deps)
    : d_(std::move(deps)),
      token_sha256_(d_.admin_token.empty() ? "" : logic::AppRegistry::sha256_hex(d_.admin_token)) {
  d_.admin_token.clear();  // only its hash is kept
}

bool AdminApi::authorized(const Request& request) const {
  if (token_sha256_.empty()) return false;
  const auto token = bearer_key(request);
  if (!token) return false;
  const std::string presented = logic::AppRegistry::sha256_hex(*token);
  return CRYPTO_memcmp(presented.data(), token_sha256_.data(), presented.size()) == 0;
}

asio::awaitable<Response> AdminApi::handle(Request request) {
  if (!authorized(request)) {
    co_return error_of(LogicError::kUnauthorized,
                       token_sha256_.empty()
                           ? "the admin API is off: set admin.token in heraldd's configuration"
                           : "missing or wrong admin token (Authorization: Bearer <token>)");
  }
  const auto path = path_segments(request, 6);
  if (!path || path->size() < 3 || (*path)[0] != "v1" || (*path)[1] != "admin")
    co_return not_found();
  const auto& p = *path;
  const auto method = request.method();
  const std::int64_t now_ms = d_.clock();

  // /v1/admin/apps
  if (p.size() == 3 && p[2] == "apps") {
    if (method == bhttp::verb::get) {
      json::array out;
      for (const auto& app : d_.registry.apps()) out.push_back(to_json(*app, now_ms));
      co_return json_response(bhttp::status::ok, json::object{{"apps", std::move(out)}});
    }
    if (method != bhttp::verb::post) co_return method_not_allowed("GET, POST");
    std::optional<Response> error;
    auto body = parse_object(request.body(), {"id", "rate_limits", "webhook"}, error);
    if (!body) co_return std::move(*error);
    const json::value* id = body->if_contains("id");
    if (id == nullptr || !id->is_string()) co_return bad_request("'id' must be a string");
    if (!logic::AppRegistry::valid_app_id(id->get_string())) {
      co_return bad_request("invalid app id: must be 1..64 bytes of [a-z0-9._-]");
    }
    logic::AppSettings settings;
    if (const auto* v = body->if_contains("rate_limits")) {
      logic::AppRateLimits limits;
      if ((error = parse_limits(*v, limits))) co_return std::move(*error);
      settings.limits = limits;
    }
    if (const auto* v = body->if_contains("webhook")) {
      if ((error = parse_webhook(*v, false, settings))) co_return std::move(*error);
    }
    auto created = co_await d_.apps.async_create(std::string(id->get_string()), settings);
    if (!created) co_return error_of(created.error());
    co_return json_response(
        bhttp::status::created,
        json::object{{"app", to_json(created->first, now_ms)}, {"key", to_json(created->second)}});
  }

  // /v1/admin/drain
  if (p.size() == 3 && p[2] == "drain") co_return drain(request);

  // /v1/admin/devices/{device}
  if (p[2] == "devices" && p.size() == 4) {
    if (method != bhttp::verb::get) co_return method_not_allowed("GET");
    co_return get_device(p[3]);
  }

  if (p.size() < 4 || p[2] != "apps") co_return not_found();
  const std::string& app_id = p[3];

  // /v1/admin/apps/{app}
  if (p.size() == 4) {
    if (method == bhttp::verb::get) {
      const auto app = d_.registry.find(app_id);
      if (!app) co_return error_of(LogicError::kUnknownApp, "no such app");
      co_return json_response(bhttp::status::ok, to_json(*app, now_ms));
    }
    if (method != bhttp::verb::patch) co_return method_not_allowed("GET, PATCH");
    std::optional<Response> error;
    auto body = parse_object(request.body(), {"disabled", "rate_limits", "webhook"}, error);
    if (!body) co_return std::move(*error);
    if (body->empty()) co_return bad_request("nothing to change");
    logic::AppSettings settings;
    if (const auto* v = body->if_contains("disabled")) {
      if (!v->is_bool()) co_return bad_request("'disabled' must be true or false");
      settings.disabled = v->get_bool();
    }
    if (const auto* v = body->if_contains("rate_limits")) {
      logic::AppRateLimits limits;
      if ((error = parse_limits(*v, limits))) co_return std::move(*error);
      settings.limits = limits;
    }
    if (const auto* v = body->if_contains("webhook")) {
      if ((error = parse_webhook(*v, true, settings))) co_return std::move(*error);
    }
    auto updated = co_await d_.apps.async_update(app_id, settings);
    if (updated.error() == LogicError::kWebhookConfigured) {
      co_return error_of(LogicError::kWebhookConfigured,
                         "the webhook of app '" + app_id +
                             "' is set in heraldd's configuration file (webhook_url in its "
                             "[[apps]] table, or --apps." +
                             app_id +
                             ".webhook_url): change it there and restart heraldd, or remove it "
                             "there to manage it through this API");
    }
    if (!updated) co_return error_of(updated.error());
    co_return json_response(bhttp::status::ok, to_json(*updated, now_ms));
  }

  if (p[4] != "keys") co_return not_found();

  // /v1/admin/apps/{app}/keys
  if (p.size() == 5) {
    if (method == bhttp::verb::get) {
      const auto app = d_.registry.find(app_id);
      if (!app) co_return error_of(LogicError::kUnknownApp, "no such app");
      json::array keys;
      for (const auto& k : app->keys) keys.push_back(to_json(k));
      co_return json_response(bhttp::status::ok, json::object{{"keys", std::move(keys)}});
    }
    if (method != bhttp::verb::post) co_return method_not_allowed("GET, POST");
    std::string label;
    if (!request.body().empty()) {
      std::optional<Response> error;
      auto body = parse_object(request.body(), {"label"}, error);
      if (!body) co_return std::move(*error);
      if (const auto* v = body->if_contains("label")) {
        if (!v->is_string() || !logic::AppService::valid_label(v->get_string())) {
          co_return bad_request("'label' must be a string of at most " +
                                std::to_string(logic::AppService::kMaxLabelChars) + " characters");
        }
        label = v->get_string();
      }
    }
    auto key = co_await d_.apps.async_add_key(app_id, std::move(label));
    if (key.error() == LogicError::kTooManyKeys) {
      co_return error_of(
          LogicError::kTooManyKeys,
          "the app '" + app_id + "' has " + std::to_string(logic::AppService::kMaxKeysPerApp) +
              " working keys, the most an app may have: revoke one to free a slot (DELETE "
              "/v1/admin/apps/" +
              app_id +
              "/keys/{key_id}, or herald admin key revoke); a key revoked with grace_s keeps its "
              "slot until it stops working");
    }
    if (!key) co_return error_of(key.error());
    co_return json_response(bhttp::status::created, to_json(*key));
  }

  // /v1/admin/apps/{app}/keys/{key_id}
  if (p.size() == 6) {
    if (method != bhttp::verb::delete_) co_return method_not_allowed("DELETE");
    std::int64_t grace_s = 0;
    if (auto text = query_param(request, "grace_s")) {
      const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), grace_s);
      if (ec != std::errc() || end != text->data() + text->size() || grace_s < 0 ||
          grace_s > kMaxGraceS) {
        co_return bad_request("grace_s must be an integer from 0 to " + std::to_string(kMaxGraceS));
      }
    }
    auto revoked = co_await d_.apps.async_revoke_key(app_id, p[5], grace_s);
    if (!revoked) co_return error_of(revoked.error());
    co_return json_response(bhttp::status::ok, to_json(*revoked));
  }
  co_return not_found();
}

namespace {

json::object to_json(const DrainState& state) {
  json::object o{{"draining", state.draining},
                 {"connections", state.connections},
                 {"reconnects_sent", state.reconnects_sent},
                 {"rate_per_s", state.rate_per_s},
                 {"deadline_s", state.deadline_s}};
  if (state.draining) {
    o["started_at_ms"] = state.started_at_ms;
    o["deadline_at_ms"] = state.deadline_at_ms;
  }
  return o;
}

// Reads an integer field in [1, max]; returns the error answer, if any.
std::optional<Response> parse_positive(const json::object& body, std::string_view name,
                                       std::uint32_t max, std::optional<std::uint32_t>& out) {
  const json::value* v = body.if_contains(name);
  if (v == nullptr) return std::nullopt;
  const auto n = v->if_int64();
  if (n == nullptr || *n < 1 || *n > max) {
    return bad_request("'" + std::string(name) + "' must be an integer from 1 to " +
                       std::to_string(max));
  }
  out = static_cast<std::uint32_t>(*n);
  return std::nullopt;
}

}  // namespace

Response AdminApi::drain(const Request& request) {
  if (d_.drain == nullptr) return not_found();
  const auto method = request.method();
  if (method == bhttp::verb::get)
    return json_response(bhttp::status::ok, to_json(d_.drain->drain_state()));
  if (method != bhttp::verb::post) return method_not_allowed("GET, POST");
  DrainRequest wanted;
  if (!request.body().empty()) {
    std::optional<Response> error;
    auto body = parse_object(request.body(), {"deadline_s", "rate_per_s"}, error);
    if (!body) return std::move(*error);
    if ((error = parse_positive(*body, "deadline_s", kMaxDrainDeadlineS, wanted.deadline_s))) {
      return std::move(*error);
    }
    if ((error = parse_positive(*body, "rate_per_s", kMaxDrainRatePerS, wanted.rate_per_s))) {
      return std::move(*error);
    }
  }
  if (!d_.drain->start_drain(wanted)) {
    const auto state = d_.drain->drain_state();
    return error_response(bhttp::status::conflict, "already_draining",
                          "the node is draining since " + std::to_string(state.started_at_ms) +
                              " (Unix ms) and exits at the latest at " +
                              std::to_string(state.deadline_at_ms) +
                              "; GET /v1/admin/drain shows its progress");
  }
  return json_response(bhttp::status::accepted, to_json(d_.drain->drain_state()));
}

Response AdminApi::get_device(const std::string& device) {
  if (!logic::DeviceTokenAuthority::valid_device_id(device)) {
    return bad_request("invalid device id: must be " + std::string(kDeviceIdRule));
  }
  auto apps = d_.devices.apps_of(device);
  if (!apps) return error_of(storage_error(apps.error()), "storage failed");
  json::array registrations;
  for (const auto& app : *apps) {
    auto at = d_.devices.registered_at(app, device);
    if (!at) return error_of(storage_error(at.error()), "storage failed");
    if (!*at) continue;  // unregistered since apps_of read it
    registrations.push_back(json::object{{"app", app}, {"registered_at_ms", **at}});
  }
  auto inbox = inbox_position(d_.streams, d_.devices, device);
  if (!inbox) return error_of(storage_error(inbox.error()), "storage failed");
  json::object out{{"device", device}};
  const bool seen = add_presence(out, device, d_.router, d_.presence, d_.node, d_.clock());
  if (registrations.empty() && !seen && inbox->at("epoch").to_number<std::uint64_t>() == 0) {
    return error_of(LogicError::kUnknownDevice,
                    "no such device: it is registered for no app, has never been seen and has "
                    "no inbox");
  }
  out["apps"] = std::move(registrations);
  out["streams"] = json::array{std::move(*inbox)};
  return json_response(bhttp::status::ok, out);
}

}  // namespace herald::http
