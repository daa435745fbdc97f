#include "http/sender_api.h"

#include <algorithm>
#include <charconv>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/system/errc.hpp>
#include <boost/url/parse.hpp>

#include "common/log.h"
#include "http/detail/api_support.h"
#include "http/detail/base64.h"
#include "http/detail/device_view.h"
#include "http/json_response.h"
#include "logic/logic_error.h"

namespace herald::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using logic::LogicError;
using namespace detail;  // the shared request and error helpers

namespace {

// Fills `out.devices` (or `alias`) from the "to" field. Returns the error answer, if any.
std::optional<Response> parse_targets(const json::value* to, std::size_t max_targets,
                                      logic::SendRequest& out, std::string& alias) {
  if (to == nullptr) return bad_request("missing field 'to'");
  const json::object* object = to->if_object();
  constexpr std::string_view kShape =
      "'to' must have exactly one field: {\"device\": ID}, {\"devices\": [ID, ...]}, "
      "{\"alias\": NAME}, {\"topic\": NAME}, {\"condition\": TEXT} or {\"broadcast\": true}";
  if (object == nullptr || object->size() != 1) return bad_request(kShape);
  const json::value* one = object->if_contains("device");
  const json::value* many = object->if_contains("devices");
  const json::value* named = object->if_contains("alias");
  const json::value* topic = object->if_contains("topic");
  const json::value* condition = object->if_contains("condition");
  const json::value* broadcast = object->if_contains("broadcast");
  if (topic != nullptr) {
    if (!topic->is_string() || !logic::TopicService::valid_topic(topic->get_string())) {
      return bad_request("'to.topic' must be " + std::string(logic::TopicService::kTopicRule));
    }
    out.shared = logic::SharedAudience{logic::SharedAudience::Kind::kTopic,
                                       std::string(topic->get_string()), std::nullopt, "", 0};
    return std::nullopt;
  }
  if (condition != nullptr) {
    if (!condition->is_string()) return bad_request("'to.condition' must be a string");
    std::string why;
    auto parsed = logic::TopicCondition::parse(condition->get_string(), why);
    if (!parsed) return bad_request("'to.condition': " + why);
    if (!parsed->satisfiable()) return bad_request("'to.condition' can never hold");
    out.shared = logic::SharedAudience{logic::SharedAudience::Kind::kCondition, "",
                                       std::move(parsed), std::string(condition->get_string()), 0};
    return std::nullopt;
  }
  if (broadcast != nullptr) {
    if (!broadcast->is_bool() || !broadcast->get_bool()) {
      return bad_request("'to.broadcast' must be true");
    }
    out.shared =
        logic::SharedAudience{logic::SharedAudience::Kind::kBroadcast, "", std::nullopt, "", 0};
    return std::nullopt;
  }
  if (one == nullptr && many == nullptr && named == nullptr) return bad_request(kShape);
  if (named != nullptr) {
    if (!named->is_string() || !logic::AliasService::valid_alias(named->get_string())) {
      return bad_request("'to.alias' must be 1..128 bytes of [A-Za-z0-9._:@+-]");
    }
    alias = named->get_string();
    return std::nullopt;
  }
  std::vector<const json::value*> ids;
  if (one != nullptr) {
    ids.push_back(one);
  } else {
    const json::array* array = many->if_array();
    if (array == nullptr) return bad_request("'to.devices' must be an array of device ids");
    if (array->empty()) return bad_request("'to.devices' must not be empty");
    if (array->size() > max_targets) {
      return error_of(LogicError::kTooManyTargets,
                      "at most " + std::to_string(max_targets) + " devices per message");
    }
    for (const json::value& v : *array) ids.push_back(&v);
  }
  out.devices.reserve(ids.size());
  for (const json::value* id : ids) {
    const json::string* s = id->if_string();
    if (s == nullptr) return bad_request("a device id must be a string");
    if (!logic::DeviceTokenAuthority::valid_device_id(*s)) {
      return bad_request("invalid device id: must be " + std::string(kDeviceIdRule));
    }
    out.devices.emplace_back(*s);
  }
  return std::nullopt;
}

// The "device" field of a body that holds only it.
std::optional<std::string> parse_device_body(std::string_view body,
                                             std::optional<Response>& error) {
  auto object = parse_object(body, {"device"}, error);
  if (!object) return std::nullopt;
  const json::value* device = object->if_contains("device");
  if (device == nullptr || !device->is_string()) {
    error = bad_request("'device' must be a string");
    return std::nullopt;
  }
  if (!logic::DeviceTokenAuthority::valid_device_id(device->get_string())) {
    error = bad_request("invalid device id: must be " + std::string(kDeviceIdRule));
    return std::nullopt;
  }
  return std::string(device->get_string());
}

// Fills the optional "collapse_key" and "priority".
std::optional<Response> parse_options(const json::object& body, logic::SendRequest& out) {
  if (const json::value* key = body.if_contains("collapse_key")) {
    if (!key->is_string() || key->get_string().empty() ||
        key->get_string().size() > logic::MessageService::kMaxCollapseKeyBytes) {
      return bad_request("'collapse_key' must be a string of 1..64 bytes");
    }
    out.collapse_key = key->get_string();
  }
  if (const json::value* priority = body.if_contains("priority")) {
    if (!priority->is_string() ||
        (priority->get_string() != "high" && priority->get_string() != "normal")) {
      return bad_request("'priority' must be \"high\" or \"normal\"");
    }
    out.priority = priority->get_string() == "high" ? distribution::NotifyPriority::kHigh
                                                    : distribution::NotifyPriority::kNormal;
  }
  return std::nullopt;
}

// Fills `send_at_ms` from the optional "send_at_ms": a Unix time in milliseconds, at most
// `max_horizon_ms` after `now_ms`. Whether it is far enough ahead to be scheduled is the
// caller's decision.
std::optional<Response> parse_send_at(const json::value* value, std::int64_t now_ms,
                                      std::int64_t max_horizon_ms,
                                      std::optional<std::int64_t>& send_at_ms) {
  if (value == nullptr) return std::nullopt;
  const std::string horizon = "send_at_ms may be at most " + std::to_string(max_horizon_ms / 1000) +
                              " s (" + std::to_string(max_horizon_ms / 86'400'000) +
                              " days) from now";
  // An integer beyond int64 is a time, just a very late one.
  if (value->is_uint64()) return error_of(LogicError::kBadSendAt, horizon);
  if (!value->is_int64() || value->get_int64() < 0) {
    return bad_request("'send_at_ms' must be an integer >= 0: a Unix time in milliseconds");
  }
  const std::int64_t at = value->get_int64();
  if (at - now_ms > max_horizon_ms) {
    return error_of(LogicError::kBadSendAt,
                    horizon + "; it is " + std::to_string((at - now_ms) / 1000) + " s from now");
  }
  send_at_ms = at;
  return std::nullopt;
}

// The Idempotency-Key header: 1..128 printable ASCII characters, if present.
std::optional<Response> parse_idempotency_key(const Request& request, std::string& key) {
  const auto it = request.find("Idempotency-Key");
  if (it == request.end()) return std::nullopt;
  const std::string_view value = it->value();
  const bool printable =
      std::all_of(value.begin(), value.end(), [](char c) { return c > 0x20 && c < 0x7f; });
  if (value.empty() || value.size() > 128 || !printable) {
    return bad_request("Idempotency-Key must be 1..128 printable ASCII characters");
  }
  key = value;
  return std::nullopt;
}

constexpr std::int64_t kIdempotencyWindowMs = 24LL * 3600 * 1000;

std::string idempotency_record_key(std::string_view app, std::string_view key) {
  return "idem/" + std::string(app) + "/" + logic::AppRegistry::sha256_hex(key);
}

json::object alias_json(const std::string& alias, const std::vector<std::string>& devices) {
  json::array list;
  for (const auto& d : devices) list.emplace_back(d);
  return {{"alias", alias}, {"devices", std::move(list)}};
}

// Fills `out.ttl_s` from the optional "ttl_s" field.
std::optional<Response> parse_ttl(const json::value* ttl, std::int64_t max_ttl_s,
                                  logic::SendRequest& out) {
  if (ttl == nullptr) return std::nullopt;
  const std::string range =
      "ttl_s must be an integer from 0 (deliver now or drop) to " + std::to_string(max_ttl_s);
  // Only integers: 1.5 is not a number of seconds, and a uint64 above int64 is out of range.
  if (!ttl->is_int64()) return error_of(LogicError::kBadTtl, range);
  const std::int64_t v = ttl->get_int64();
  if (v < 0 || v > max_ttl_s) return error_of(LogicError::kBadTtl, range);
  out.ttl_s = v;
  return std::nullopt;
}

// Fills `out.data` and `out.kind` from "data" and the optional "encoding".
std::optional<Response> parse_data(const json::value* data, const json::value* encoding,
                                   std::size_t max_payload_bytes, logic::SendRequest& out) {
  if (data == nullptr) return bad_request("missing field 'data'");
  bool base64 = false;
  if (encoding != nullptr) {
    const json::string* s = encoding->if_string();
    if (s == nullptr || (*s != "base64" && *s != "json")) {
      return bad_request("'encoding' must be \"json\" (the default) or \"base64\"");
    }
    base64 = *s == "base64";
  }
  if (base64) {
    const json::string* s = data->if_string();
    if (s == nullptr) return bad_request("with \"encoding\": \"base64\", 'data' must be a string");
    auto bytes = detail::base64_decode(*s);
    if (!bytes) return bad_request("'data' is not valid base64 (RFC 4648, standard alphabet)");
    out.data = std::move(*bytes);
    out.kind = storage::DataKind::kBinary;
  } else {
    out.data = json::serialize(*data);
    out.kind = storage::DataKind::kJson;
  }
  if (out.data.size() > max_payload_bytes) {
    return error_of(LogicError::kPayloadTooLarge,
                    "data is " + std::to_string(out.data.size()) + " bytes; at most " +
                        std::to_string(max_payload_bytes) + " are allowed");
  }
  return std::nullopt;
}

}  // namespace

SenderApi::SenderApi(SenderApiDeps deps) : d_(std::move(deps)) {}

asio::awaitable<Response> SenderApi::handle(Request request) {
  auto path = path_segments(request, 7);
  if (!path) co_return not_found();
  auto& p = *path;
  const auto method = request.method();
  if (p.size() == 1 && p[0] == "healthz") {
    if (method != bhttp::verb::get) co_return method_not_allowed("GET");
    co_return json_response(bhttp::status::ok, json::object{{"status", "ok"}});
  }
  if (p.size() < 4 || p[0] != "v1" || p[1] != "apps") co_return not_found();
  const std::string app = p[2];
  const std::string& kind = p[3];
  // The method is checked before the key: a 405 tells nothing about apps.
  if (kind == "messages" && p.size() == 4) {
    if (method != bhttp::verb::post) co_return method_not_allowed("POST");
    co_return co_await async_send_message(std::move(request), app);
  }
  if (kind == "messages" && p.size() == 5) {
    co_return co_await async_message(std::move(request), app, p[4]);
  }
  if (kind == "devices" && p.size() == 4) {
    if (method != bhttp::verb::post) co_return method_not_allowed("POST");
    if (auto denied = authorize(request, app)) co_return std::move(*denied);
    co_return co_await async_register_device(std::move(request), app);
  }
  if (kind == "devices" && p.size() == 6 && p[5] == "topics") {
    if (method != bhttp::verb::get) co_return method_not_allowed("GET");
    if (auto denied = authorize(request, app)) co_return std::move(*denied);
    co_return device_topics(app, p[4]);
  }
  if (kind == "topics" && p.size() >= 5) co_return co_await async_topic(std::move(request), p);
  if (kind == "devices" && p.size() == 5) {
    if (method != bhttp::verb::get && method != bhttp::verb::delete_) {
      co_return method_not_allowed("GET, DELETE");
    }
    if (auto denied = authorize(request, app)) co_return std::move(*denied);
    if (method == bhttp::verb::get) co_return get_device(app, p[4]);
    auto removed = unregister_device(app, p[4]);
    if (removed.result() == bhttp::status::ok) {
      // Its topics of the app go with it; a failure here leaves records no pull can reach.
      auto forgotten = co_await d_.topics.async_unregistered(app, p[4]);
      if (!forgotten) log::warn("topics_not_forgotten", {{"app", app}, {"device", p[4]}});
    }
    co_return removed;
  }
  if (kind == "aliases" && p.size() >= 5) co_return co_await async_alias(std::move(request), p);
  co_return not_found();
}

std::optional<Response> SenderApi::authorize(const Request& request, std::string_view app,
                                             std::optional<std::uint64_t> messages) const {
  const auto key = bearer_key(request);
  if (!key) {
    return error_of(LogicError::kUnauthorized,
                    "missing API key: send the header \"Authorization: Bearer <api key>\"");
  }
  const auto match = d_.apps.authenticate(*key, d_.clock());
  if (!match) return error_of(LogicError::kUnauthorized, "invalid API key");
  // The key is not one of {app}'s. Whether {app} exists is told to nobody: a caller whose key
  // opens some other app hears "unknown app" for every app not its own.
  if (match->app->id != app) {
    return error_of(LogicError::kUnknownApp, "this API key has no app '" + std::string(app) + "'");
  }
  if (match->app->disabled) {
    return error_of(LogicError::kAppDisabled, "the app '" + std::string(app) + "' is disabled");
  }
  if (!messages) return std::nullopt;
  if (auto wait = d_.limiter.try_acquire(app, *messages)) return rate_limited(wait->count());
  return std::nullopt;
}

Response SenderApi::get_device(const std::string& app, const std::string& device) {
  if (!logic::DeviceTokenAuthority::valid_device_id(device)) {
    return error_of(LogicError::kUnknownDevice, "no such device for this app");
  }
  auto registered_at = d_.devices.registered_at(app, device);
  if (!registered_at) return error_of(storage_error(registered_at.error()), "storage failed");
  // Another app's device is "not found", exactly like a device that does not exist.
  if (!*registered_at) return error_of(LogicError::kUnknownDevice, "no such device for this app");
  auto inbox = inbox_position(d_.streams, d_.devices, device);
  if (!inbox) return error_of(storage_error(inbox.error()), "storage failed");
  json::object out{{"device", device}, {"registered_at_ms", **registered_at}};
  (void)add_presence(out, device, d_.router, d_.presence, d_.node, d_.clock());
  out["streams"] = json::array{std::move(*inbox)};
  return json_response(bhttp::status::ok, out);
}

Response SenderApi::unregister_device(const std::string& app, const std::string& device) {
  if (!logic::DeviceTokenAuthority::valid_device_id(device)) {
    return error_of(LogicError::kUnknownDevice, "no such device for this app");
  }
  auto removed = d_.devices.unregister_device(app, device);
  if (!removed) return error_of(storage_error(removed.error()), "storage failed");
  if (!*removed) return error_of(LogicError::kUnknownDevice, "no such device for this app");
  return json_response(bhttp::status::ok, json::object{{"device", device}, {"unregistered", true}});
}

asio::awaitable<Response> SenderApi::async_alias(Request request, std::vector<std::string> p) {
  const auto method = request.method();
  const std::string& app = p[2];
  const std::string& alias = p[4];
  if (p.size() == 5 && method != bhttp::verb::get && method != bhttp::verb::put &&
      method != bhttp::verb::delete_) {
    co_return method_not_allowed("GET, PUT, DELETE");
  }
  if (p.size() == 6 && (p[5] != "devices")) co_return not_found();
  if (p.size() == 6 && method != bhttp::verb::post) co_return method_not_allowed("POST");
  if (p.size() == 7 && (p[5] != "devices")) co_return not_found();
  if (p.size() == 7 && method != bhttp::verb::delete_) co_return method_not_allowed("DELETE");
  if (auto denied = authorize(request, app)) co_return std::move(*denied);
  if (!logic::AliasService::valid_alias(alias)) {
    co_return error_of(LogicError::kUnknownAlias, "no such alias");
  }

  boost::system::result<std::vector<std::string>> devices = LogicError::kUnknownAlias;
  std::optional<Response> error;
  if (p.size() == 5 && method == bhttp::verb::get) {
    devices = d_.aliases.devices(app, alias);
  } else if (p.size() == 5 && method == bhttp::verb::put) {
    auto body = parse_object(request.body(), {"devices"}, error);
    if (!body) co_return std::move(*error);
    const json::value* list = body->if_contains("devices");
    if (list == nullptr || !list->is_array() || list->get_array().empty() ||
        list->get_array().size() > logic::AliasService::kMaxDevicesPerAlias) {
      co_return bad_request("'devices' must be an array of 1.." +
                            std::to_string(logic::AliasService::kMaxDevicesPerAlias) +
                            " device ids");
    }
    std::vector<std::string> ids;
    for (const auto& v : list->get_array()) {
      if (!v.is_string() || !logic::DeviceTokenAuthority::valid_device_id(v.get_string())) {
        co_return bad_request("invalid device id: must be " + std::string(kDeviceIdRule));
      }
      ids.emplace_back(v.get_string());
    }
    devices = co_await d_.aliases.async_set(app, alias, std::move(ids));
  } else if (p.size() == 5) {
    auto erased = co_await d_.aliases.async_erase(app, alias);
    if (!erased) co_return error_of(erased.error());
    devices = std::vector<std::string>{};
  } else if (p.size() == 6) {
    auto device = parse_device_body(request.body(), error);
    if (!device) co_return std::move(*error);
    devices = co_await d_.aliases.async_add(app, alias, std::move(*device));
  } else {
    devices = co_await d_.aliases.async_remove(app, alias, p[6]);
  }
  if (!devices) co_return error_of(devices.error());
  co_return json_response(bhttp::status::ok, alias_json(alias, *devices));
}

asio::awaitable<Response> SenderApi::async_register_device(Request request, std::string app) {
  Response res = register_device(request, app);
  if (res.result() != bhttp::status::created && res.result() != bhttp::status::ok) co_return res;
  // The device reads the app's broadcast stream from now on: a broadcast sent after this answer
  // reaches it, however late it connects within the message's TTL.
  std::optional<Response> error;
  auto body = parse_object(request.body(), {"device"}, error);
  const std::string device(body->at("device").get_string());
  auto joined = co_await d_.topics.async_registered(app, device);
  if (!joined) co_return error_of(joined.error());
  co_return res;
}

Response SenderApi::device_topics(const std::string& app, const std::string& device) {
  if (!logic::DeviceTokenAuthority::valid_device_id(device)) {
    return error_of(LogicError::kUnknownDevice, "no such device for this app");
  }
  auto registered = d_.devices.is_registered(app, device);
  if (!registered) return error_of(storage_error(registered.error()), "storage failed");
  if (!*registered) return error_of(LogicError::kUnknownDevice, "no such device for this app");
  auto joined = d_.topics.joined(device);
  if (!joined) return error_of(joined.error());
  json::array topics;
  for (const auto& s : *joined) {
    if (s.app == app) topics.push_back(json::object{{"topic", s.topic}, {"since_ms", s.since_ms}});
  }
  return json_response(bhttp::status::ok, json::object{{"device", device}, {"topics", topics}});
}

asio::awaitable<Response> SenderApi::async_topic(Request request, std::vector<std::string> p) {
  // p: v1 apps {app} topics {topic} [subscribers [{device}]]
  const auto method = request.method();
  const bool whole = p.size() == 5;
  const bool list = p.size() == 6 && p[5] == "subscribers";
  const bool one = p.size() == 7 && p[5] == "subscribers";
  if (!whole && !list && !one) co_return not_found();
  if (whole && method != bhttp::verb::get) co_return method_not_allowed("GET");
  if (list && method != bhttp::verb::post && method != bhttp::verb::get) {
    co_return method_not_allowed("GET, POST");
  }
  if (one && method != bhttp::verb::delete_) co_return method_not_allowed("DELETE");
  if (auto denied = authorize(request, p[2])) co_return std::move(*denied);
  if (!logic::TopicService::valid_topic(p[4])) co_return bad_topic();
  if (whole) co_return co_await async_topic_info(p[2], p[4]);
  if (list && method == bhttp::verb::get) co_return topic_subscribers(request, p[2], p[4]);
  std::vector<std::string> devices;
  std::uint32_t history = 0;
  if (one) {
    if (!logic::DeviceTokenAuthority::valid_device_id(p[6])) {
      co_return error_of(LogicError::kUnknownDevice, "no such device for this app");
    }
    std::vector<std::string> topics{p[4]};
    auto left = co_await d_.topics.async_unsubscribe(p[6], p[2], std::move(topics), false);
    if (!left) co_return error_of(left.error());
    json::object out;
    out["device"] = p[6];
    out["topic"] = p[4];
    out["joined"] = false;
    co_return json_response(bhttp::status::ok, out);
  }
  if (auto refused = parse_join(request, p[2], devices, history)) co_return std::move(*refused);
  auto joined = co_await d_.topics.async_join(p[2], p[4], devices, history);
  if (!joined) co_return error_of(joined.error());
  json::object out;
  out["topic"] = p[4];
  out["joined"] = devices.size();
  co_return json_response(bhttp::status::ok, out);
}

Response SenderApi::bad_topic() {
  return bad_request("a topic is " + std::string(logic::TopicService::kTopicRule));
}

asio::awaitable<Response> SenderApi::async_topic_info(std::string app, std::string topic) {
  auto found = d_.topics.find_topic(app, topic);
  if (!found) co_return error_of(found.error());
  if (!*found) {
    co_return error_of(LogicError::kNotFound,
                       "no such topic: it was never joined, pushed to or named in a condition");
  }
  constexpr std::uint64_t kCountLimit = 10'000'000;
  auto count = co_await d_.topics.async_count_subscribers(app, topic, kCountLimit);
  if (!count) co_return error_of(count.error());
  json::object out;
  out["topic"] = topic;
  out["stream"] = (*found)->stream;
  out["created_at_ms"] = (*found)->created_at_ms;
  out["subscribers"] = *count;
  co_return json_response(bhttp::status::ok, out);
}

Response SenderApi::topic_subscribers(const Request& request, const std::string& app,
                                      const std::string& topic) {
  // A page of subscribers: ?after=<device>&limit=<1..1000>
  std::size_t limit = 100;
  if (auto text = query_param(request, "limit")) {
    std::size_t n = 0;
    const std::from_chars_result parsed =
        std::from_chars(text->data(), text->data() + text->size(), n);
    if (parsed.ec != std::errc() || parsed.ptr != text->data() + text->size() || n < 1 ||
        n > 1000) {
      return bad_request("'limit' must be in 1..1000");
    }
    limit = n;
  }
  std::string after;
  if (auto text = query_param(request, "after")) {
    // A device id, as every subscriber is: anything else is a caller's mistake, not an empty page.
    if (!logic::DeviceTokenAuthority::valid_device_id(*text)) {
      return bad_request("'after' must be a device id: " + std::string(kDeviceIdRule));
    }
    after = std::move(*text);
  }
  auto page = d_.topics.subscribers(app, topic, after, limit);
  if (!page) return error_of(page.error());
  json::array devices;
  for (auto& d : *page) devices.emplace_back(d);
  json::object out{{"topic", topic}, {"devices", std::move(devices)}};
  if (page->size() == limit) out["next_after"] = page->back();
  return json_response(bhttp::status::ok, out);
}

std::optional<Response> SenderApi::parse_join(const Request& request, const std::string& app,
                                              std::vector<std::string>& ids,
                                              std::uint32_t& history) {
  // {"devices": [ID, ...], "history": N}
  std::optional<Response> error;
  auto body = parse_object(request.body(), {"devices", "history"}, error);
  if (!body) return error;
  const json::array* devices = body->contains("devices") ? body->at("devices").if_array() : nullptr;
  if (devices == nullptr || devices->empty() || devices->size() > kMaxSubscribersPerCall) {
    return bad_request("'devices' must be an array of 1.." +
                       std::to_string(kMaxSubscribersPerCall) + " device ids");
  }
  if (const json::value* h = body->if_contains("history")) {
    const auto* n = h->if_int64();
    if (n == nullptr || *n < 0 || *n > logic::TopicService::kMaxHistory) {
      return bad_request("'history' must be an integer in 0.." +
                         std::to_string(logic::TopicService::kMaxHistory));
    }
    history = static_cast<std::uint32_t>(*n);
  }
  for (const json::value& v : *devices) {
    if (!v.is_string() || !logic::DeviceTokenAuthority::valid_device_id(v.get_string())) {
      return bad_request("invalid device id: must be " + std::string(kDeviceIdRule));
    }
    ids.emplace_back(v.get_string());
  }
  // Checked for all before any joins: an unknown device changes nothing.
  for (const auto& device : ids) {
    auto registered = d_.devices.is_registered(app, device);
    if (!registered) return error_of(storage_error(registered.error()), "storage failed");
    if (!*registered) {
      return error_of(LogicError::kUnknownDevice,
                      "device '" + device + "' is not registered for this app");
    }
  }
  return std::nullopt;
}

Response SenderApi::register_device(const Request& request, const std::string& app) {
  std::optional<Response> error;
  auto body = parse_object(request.body(), {"device"}, error);
  if (!body) return std::move(*error);
  const json::value* device_value = body->if_contains("device");
  if (device_value == nullptr) return bad_request("missing field 'device'");
  const json::string* device_string = device_value->if_string();
  if (device_string == nullptr) return bad_request("'device' must be a string");
  const std::string device(*device_string);
  if (!logic::DeviceTokenAuthority::valid_device_id(device)) {
    return bad_request("invalid device id: must be " + std::string(kDeviceIdRule));
  }

  const std::int64_t now_ms = d_.clock();
  auto registered = d_.devices.register_device(app, device, now_ms);
  if (!registered) {
    log::warn("register_device_failed",
              {{"app", app}, {"device", device}, {"error", registered.error().message()}});
    const LogicError e = storage_error(registered.error());
    return error_of(e, default_message(e));
  }
  json::object out;
  out["device"] = device;
  out["token"] = d_.tokens.mint(device, now_ms / 1000);
  return json_response(*registered ? bhttp::status::created : bhttp::status::ok, out);
}

asio::awaitable<Response> SenderApi::async_send_message(Request request, std::string app) {
  // Authenticated before the body is even parsed; the rate limit is taken once the number of
  // targets is known.
  if (auto denied = authorize(request, app, std::nullopt)) co_return std::move(*denied);
  const logic::MessageLimits& limits = d_.messages.limits();
  std::optional<Response> error;
  std::string idempotency_key;
  if ((error = parse_idempotency_key(request, idempotency_key))) co_return std::move(*error);
  // The fingerprint of the request, to tell a retry from another request under the same key.
  const std::string fingerprint =
      idempotency_key.empty() ? "" : logic::AppRegistry::sha256_hex(request.body());
  auto body = parse_object(
      request.body(),
      {"to", "data", "encoding", "ttl_s", "collapse_key", "priority", "send_at_ms", "spread_s"},
      error);
  if (!body) co_return std::move(*error);

  logic::SendRequest send;
  send.app = std::move(app);
  if ((error = parse_options(*body, send))) co_return std::move(*error);
  const std::int64_t now_ms = d_.clock();
  std::optional<std::int64_t> send_at_ms;
  if ((error = parse_send_at(body->if_contains("send_at_ms"), now_ms,
                             d_.scheduler.limits().max_horizon_ms, send_at_ms))) {
    co_return std::move(*error);
  }
  // In the past or within a second: sent now, like a message without a send time.
  const bool scheduled =
      send_at_ms && *send_at_ms > now_ms + logic::MessageScheduler::kImmediateWindowMs;
  std::string alias;
  if ((error = parse_targets(body->if_contains("to"), limits.max_targets, send, alias))) {
    co_return std::move(*error);
  }
  if ((error = parse_ttl(body->if_contains("ttl_s"), limits.max_ttl_s, send))) {
    co_return std::move(*error);
  }
  if (const json::value* spread = body->if_contains("spread_s")) {
    constexpr std::int64_t kMaxSpreadS = logic::MessageService::kMaxSpreadMs / 1000;
    const auto seconds = spread->if_int64();
    if (!send.shared || seconds == nullptr || *seconds < 0 || *seconds > kMaxSpreadS) {
      co_return bad_request("'spread_s' must be an integer in 0.." + std::to_string(kMaxSpreadS) +
                            ", for a message to a topic, a condition or a broadcast");
    }
    send.shared->spread_ms = static_cast<std::uint32_t>(*seconds * 1000);
  }
  if (send.shared && scheduled) {
    co_return bad_request("'send_at_ms' is not supported for topics, conditions and broadcasts");
  }
  if ((error = parse_data(body->if_contains("data"), body->if_contains("encoding"),
                          limits.max_payload_bytes, send))) {
    co_return std::move(*error);
  }
  // The payload now lives in `send`: do not hold it three times across the write.
  body.reset();
  std::string().swap(request.body());

  if (!alias.empty()) {
    auto bound = d_.aliases.devices(send.app, alias);
    if (!bound) co_return error_of(bound.error());
    // Devices unregistered since they were bound are skipped, not an error: the alias is the
    // sender's view of a user, and a user may drop a phone.
    for (auto& device : *bound) {
      auto registered = d_.devices.is_registered(send.app, device);
      if (registered && *registered) send.devices.push_back(std::move(device));
    }
    if (send.devices.empty()) {
      co_return error_of(LogicError::kUnknownDevice, "no device of this alias is registered");
    }
  }
  std::string idempotency_record;
  if (!idempotency_key.empty()) {
    idempotency_record = idempotency_record_key(send.app, idempotency_key);
    // A retry is answered from the record without spending the app's rate: the message was
    // counted once already. (Two first tries racing are settled by the write below.)
    auto kept = d_.records.get(idempotency_record, d_.clock());
    if (!kept) co_return error_of(storage_error(kept.error()), "storage failed");
    if (*kept) co_return replay(**kept, fingerprint);
  }
  if (auto wait = d_.limiter.try_acquire(send.app, send.shared ? 1 : send.devices.size())) {
    co_return rate_limited(wait->count());
  }
  if (!idempotency_key.empty()) {
    // The message id is not known yet: the record first holds the fingerprint, and the answer
    // is added once the message is stored (a replay without it is rebuilt from the status).
    send.idempotency = storage::Record{idempotency_record,
                                       json::serialize(json::object{{"fingerprint", fingerprint}}),
                                       d_.clock() + kIdempotencyWindowMs};
  }

  // Fully validated; the logic layer still checks registrations and stores nothing on error.
  json::object out;
  bhttp::status status = bhttp::status::ok;
  if (scheduled) {
    auto kept = co_await d_.scheduler.async_schedule(std::move(send), *send_at_ms);
    if (!kept) co_return error_of(kept.error());
    if (kept->existing) co_return replay(*kept->existing, fingerprint);
    json::array targets;
    targets.reserve(kept->devices.size());
    for (const auto& d : kept->devices) targets.push_back(json::object{{"device", d}});
    out["id"] = kept->message_id;
    out["state"] = "scheduled";
    out["send_at_ms"] = kept->send_at_ms;
    out["targets"] = std::move(targets);
    status = bhttp::status::accepted;
  } else {
    auto sent = co_await d_.messages.async_send(std::move(send));
    if (!sent) co_return error_of(sent.error());
    if (sent->existing) co_return replay(*sent->existing, fingerprint);
    json::array targets;
    targets.reserve(sent->targets.size());
    for (const auto& t : sent->targets) {
      if (t.dropped) {
        targets.push_back(json::object{{"device", t.device}, {"dropped", true}});
        continue;
      }
      targets.push_back(json::object{
          {"device", t.device}, {"epoch", t.epoch}, {"seq", t.seq}, {"online", t.online}});
    }
    out["id"] = sent->message_id;
    out["state"] = "sent";
    out["targets"] = std::move(targets);
    if (sent->shared) {
      out["stream"] = json::object{{"stream", sent->shared->stream},
                                   {"epoch", sent->shared->epoch},
                                   {"seq", sent->shared->seq}};
    }
  }
  if (!idempotency_record.empty()) {
    // Unsynced: if it is lost, a replay rebuilds the answer from the message's status.
    storage::AppendBatch batch;
    batch.now_ms = d_.clock();
    batch.sync = false;
    batch.put_records.push_back(
        {idempotency_record,
         json::serialize(json::object{
             {"fingerprint", fingerprint}, {"status", static_cast<int>(status)}, {"answer", out}}),
         batch.now_ms + kIdempotencyWindowMs});
    auto [ec, ignored] =
        co_await d_.streams.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
    if (ec) log::warn("idempotency_answer_not_kept", {{"error", ec.message()}});
  }
  co_return json_response(status, out);
}

Response SenderApi::replay(const storage::Record& record, const std::string& fingerprint) {
  boost::system::error_code ec;
  const json::value kept = json::parse(record.value, ec);
  if (ec || !kept.is_object()) return error_of(LogicError::kStorageFailed, "storage failed");
  const json::object& o = kept.get_object();
  const json::value* first = o.if_contains("fingerprint");
  if (first == nullptr || !first->is_string() || first->get_string() != fingerprint) {
    return error_of(LogicError::kIdempotencyKeyReused,
                    "this Idempotency-Key was used with a different request");
  }
  Response res;
  if (const json::value* answer = o.if_contains("answer")) {
    // The first answer's status: 202 for a scheduled message (records kept before it had none).
    const json::value* first_status = o.if_contains("status");
    const bool accepted = first_status != nullptr && *first_status == 202;
    res = json_response(accepted ? bhttp::status::accepted : bhttp::status::ok, *answer);
  } else {
    // Stored, but the first answer was never kept (a crash right after): rebuild it.
    return error_of(LogicError::kBusy, "the first request with this key is still being answered");
  }
  res.set("Idempotent-Replayed", "true");
  return res;
}

asio::awaitable<Response> SenderApi::async_message(Request request, std::string app,
                                                   std::string id) {
  const auto method = request.method();
  if (method != bhttp::verb::get && method != bhttp::verb::delete_) {
    co_return method_not_allowed("GET, DELETE");
  }
  if (auto denied = authorize(request, app)) co_return std::move(*denied);
  const bool valid_id = id.size() == 16 && std::all_of(id.begin(), id.end(), [](char c) {
                          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                        });
  if (!valid_id) co_return error_of(LogicError::kUnknownMessage, "no such message");
  if (method == bhttp::verb::get) {
    auto status = co_await d_.tracker.async_status(app, id);
    if (!status) co_return error_of(status.error());
    co_return json_response(bhttp::status::ok, *status);
  }
  // A scheduled message is cancelled; one sent (perhaps just now, the cancel losing the race
  // with its send time) is revoked.
  auto cancelled = co_await d_.scheduler.async_cancel(app, id);
  if (!cancelled) co_return error_of(cancelled.error());
  if (*cancelled == logic::CancelOutcome::kCancelled) {
    auto status = d_.tracker.status(app, id);
    if (!status) co_return error_of(status.error());
    co_return json_response(bhttp::status::ok, *status);
  }
  auto revoked = co_await d_.tracker.async_revoke(app, id, d_.ids.next(d_.clock()));
  if (!revoked) co_return error_of(revoked.error());
  co_return json_response(bhttp::status::ok, *revoked);
}

}  // namespace herald::http
