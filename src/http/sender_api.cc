#include "http/sender_api.h"

#include <utility>
#include <vector>

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

constexpr std::string_view kDeviceIdRule = "1..128 bytes of [A-Za-z0-9._:-]";

// Fills `out.devices` from the "to" field. Returns the error answer, if any.
std::optional<Response> parse_targets(const json::value* to, std::size_t max_targets,
                                      logic::SendRequest& out) {
  if (to == nullptr) return bad_request("missing field 'to'");
  const json::object* object = to->if_object();
  if (object == nullptr) {
    return bad_request("'to' must be an object: {\"device\": ID} or {\"devices\": [ID, ...]}");
  }
  const json::value* one = object->if_contains("device");
  const json::value* many = object->if_contains("devices");
  if (object->size() != 1 || (one == nullptr && many == nullptr)) {
    return bad_request("'to' must have exactly one field, 'device' or 'devices'");
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

// Fills `out.ttl_s` from the optional "ttl_s" field.
std::optional<Response> parse_ttl(const json::value* ttl, std::int64_t max_ttl_s,
                                  logic::SendRequest& out) {
  if (ttl == nullptr) return std::nullopt;
  const std::string range = "ttl_s must be an integer from 1 to " + std::to_string(max_ttl_s);
  // Only integers: 1.5 is not a number of seconds, and a uint64 above int64 is out of range.
  if (!ttl->is_int64()) return error_of(LogicError::kBadTtl, range);
  const std::int64_t v = ttl->get_int64();
  if (v < 1 || v > max_ttl_s) return error_of(LogicError::kBadTtl, range);
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

SenderApi::SenderApi(logic::MessageService& messages, const logic::AppRegistry& apps,
                     const logic::DeviceTokenAuthority& tokens, storage::DeviceStore& devices,
                     logic::Clock clock)
    : messages_(messages),
      apps_(apps),
      tokens_(tokens),
      devices_(devices),
      clock_(std::move(clock)) {}

asio::awaitable<Response> SenderApi::handle(Request request) {
  const auto path = path_segments(request, 4);
  if (!path) co_return not_found();
  const auto& p = *path;
  if (p.size() == 1 && p[0] == "healthz") {
    if (request.method() != bhttp::verb::get) co_return method_not_allowed("GET");
    co_return json_response(bhttp::status::ok, json::object{{"status", "ok"}});
  }
  if (p.size() == 4 && p[0] == "v1" && p[1] == "apps" &&
      (p[3] == "devices" || p[3] == "messages")) {
    // The method is checked before the key: a 405 tells nothing about apps.
    if (request.method() != bhttp::verb::post) co_return method_not_allowed("POST");
    if (auto denied = authorize(request, p[2])) co_return std::move(*denied);
    if (p[3] == "devices") co_return register_device(request, p[2]);
    std::string app = p[2];
    co_return co_await async_send_message(std::move(request), std::move(app));
  }
  co_return not_found();
}

std::optional<Response> SenderApi::authorize(const Request& request, std::string_view app) const {
  const auto key = bearer_key(request);
  if (!key) {
    return error_of(LogicError::kUnauthorized,
                    "missing API key: send the header \"Authorization: Bearer <api key>\"");
  }
  const auto match = apps_.authenticate(*key, clock_());
  if (!match) return error_of(LogicError::kUnauthorized, "invalid API key");
  // The key is not one of {app}'s. Whether {app} exists is told to nobody: a caller whose key
  // opens some other app hears "unknown app" for every app not its own.
  if (match->app->id != app) {
    return error_of(LogicError::kUnknownApp, "this API key has no app '" + std::string(app) + "'");
  }
  if (match->app->disabled) {
    return error_of(LogicError::kAppDisabled, "the app '" + std::string(app) + "' is disabled");
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

  const std::int64_t now_ms = clock_();
  auto registered = devices_.register_device(app, device, now_ms);
  if (!registered) {
    log::warn("register_device_failed",
              {{"app", app}, {"device", device}, {"error", registered.error().message()}});
    const LogicError e = storage_error(registered.error());
    return error_of(e, default_message(e));
  }
  json::object out;
  out["device"] = device;
  out["token"] = tokens_.mint(device, now_ms / 1000);
  return json_response(*registered ? bhttp::status::created : bhttp::status::ok, out);
}

asio::awaitable<Response> SenderApi::async_send_message(Request request, std::string app) {
  const logic::MessageLimits& limits = messages_.limits();
  std::optional<Response> error;
  auto body = parse_object(request.body(), {"to", "data", "encoding", "ttl_s"}, error);
  if (!body) co_return std::move(*error);

  logic::SendRequest send;
  send.app = std::move(app);
  if ((error = parse_targets(body->if_contains("to"), limits.max_targets, send))) {
    co_return std::move(*error);
  }
  if ((error = parse_ttl(body->if_contains("ttl_s"), limits.max_ttl_s, send))) {
    co_return std::move(*error);
  }
  if ((error = parse_data(body->if_contains("data"), body->if_contains("encoding"),
                          limits.max_payload_bytes, send))) {
    co_return std::move(*error);
  }
  // The payload now lives in `send`: do not hold it three times across the write.
  body.reset();
  std::string().swap(request.body());

  // Fully validated; the logic layer still checks registrations and stores nothing on error.
  auto sent = co_await messages_.async_send(std::move(send));
  if (!sent) co_return error_of(sent.error());

  json::array targets;
  targets.reserve(sent->targets.size());
  for (const auto& t : sent->targets) {
    targets.push_back(json::object{
        {"device", t.device}, {"epoch", t.epoch}, {"seq", t.seq}, {"online", t.online}});
  }
  json::object out;
  out["id"] = sent->message_id;
  out["targets"] = std::move(targets);
  co_return json_response(bhttp::status::ok, out);
}

}  // namespace herald::http
