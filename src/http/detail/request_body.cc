#include "http/detail/request_body.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "http/detail/api_support.h"
#include "http/detail/base64.h"
#include "http/detail/device_view.h"
#include "logic/alias_service.h"
#include "logic/device_token.h"
#include "logic/logic_error.h"
#include "logic/message_scheduler.h"
#include "logic/topic_condition.h"
#include "logic/topic_service.h"

namespace herald::http::detail {

namespace json = boost::json;
using logic::LogicError;

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

// Whether every number in `v` is finite. Boost.JSON's parser bounds the depth (32), so the
// recursion is bounded too.
bool all_numbers_finite(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_:
      return std::isfinite(v.get_double());
    case json::kind::array:
      return std::all_of(v.get_array().begin(), v.get_array().end(), all_numbers_finite);
    case json::kind::object:
      return std::all_of(
          v.get_object().begin(), v.get_object().end(),
          [](const json::key_value_pair& kv) { return all_numbers_finite(kv.value()); });
    default:
      return true;
  }
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
    // A number beyond a double's range parses as an infinity, which serializes as "Infinity":
    // not JSON. Refused rather than stored as JSON that no device can parse (found by
    // request_body_fuzz; corpus file crash_data_infinity).
    if (!all_numbers_finite(*data)) {
      return bad_request("'data' holds a number beyond the range of a double (1.8e308)");
    }
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

// 1..max_devices valid device ids under "devices"; the 400 answer if not.
std::optional<std::vector<std::string>> parse_device_list(const json::object& body,
                                                          std::size_t max_devices,
                                                          std::optional<Response>& error) {
  const json::value* list = body.if_contains("devices");
  if (list == nullptr || !list->is_array() || list->get_array().empty() ||
      list->get_array().size() > max_devices) {
    error = bad_request("'devices' must be an array of 1.." + std::to_string(max_devices) +
                        " device ids");
    return std::nullopt;
  }
  std::vector<std::string> ids;
  ids.reserve(list->get_array().size());
  for (const json::value& v : list->get_array()) {
    if (!v.is_string() || !logic::DeviceTokenAuthority::valid_device_id(v.get_string())) {
      error = bad_request("invalid device id: must be " + std::string(kDeviceIdRule));
      return std::nullopt;
    }
    ids.emplace_back(v.get_string());
  }
  return ids;
}

}  // namespace

std::optional<MessageBody> parse_message_body(std::string_view body,
                                              const MessageBodyLimits& limits, std::int64_t now_ms,
                                              std::optional<Response>& error) {
  auto object = parse_object(
      body,
      {"to", "data", "encoding", "ttl_s", "collapse_key", "priority", "send_at_ms", "spread_s"},
      error);
  if (!object) return std::nullopt;
  MessageBody out;
  logic::SendRequest& send = out.send;
  if ((error = parse_options(*object, send))) return std::nullopt;
  if ((error = parse_send_at(object->if_contains("send_at_ms"), now_ms, limits.max_horizon_ms,
                             out.send_at_ms))) {
    return std::nullopt;
  }
  // In the past or within a second: sent now, like a message without a send time.
  out.scheduled =
      out.send_at_ms && *out.send_at_ms > now_ms + logic::MessageScheduler::kImmediateWindowMs;
  if ((error = parse_targets(object->if_contains("to"), limits.max_targets, send, out.alias))) {
    return std::nullopt;
  }
  if ((error = parse_ttl(object->if_contains("ttl_s"), limits.max_ttl_s, send))) {
    return std::nullopt;
  }
  if (const json::value* spread = object->if_contains("spread_s")) {
    constexpr std::int64_t kMaxSpreadS = logic::MessageService::kMaxSpreadMs / 1000;
    const auto seconds = spread->if_int64();
    if (!send.shared || seconds == nullptr || *seconds < 0 || *seconds > kMaxSpreadS) {
      error = bad_request("'spread_s' must be an integer in 0.." + std::to_string(kMaxSpreadS) +
                          ", for a message to a topic, a condition or a broadcast");
      return std::nullopt;
    }
    send.shared->spread_ms = static_cast<std::uint32_t>(*seconds * 1000);
  }
  if (send.shared && out.scheduled) {
    error = bad_request("'send_at_ms' is not supported for topics, conditions and broadcasts");
    return std::nullopt;
  }
  if ((error = parse_data(object->if_contains("data"), object->if_contains("encoding"),
                          limits.max_payload_bytes, send))) {
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> parse_device_body(std::string_view body,
                                             std::optional<Response>& error) {
  auto object = parse_object(body, {"device"}, error);
  if (!object) return std::nullopt;
  const json::value* device = object->if_contains("device");
  if (device == nullptr) {
    error = bad_request("missing field 'device'");
    return std::nullopt;
  }
  if (!device->is_string()) {
    error = bad_request("'device' must be a string");
    return std::nullopt;
  }
  if (!logic::DeviceTokenAuthority::valid_device_id(device->get_string())) {
    error = bad_request("invalid device id: must be " + std::string(kDeviceIdRule));
    return std::nullopt;
  }
  return std::string(device->get_string());
}

std::optional<std::vector<std::string>> parse_alias_body(std::string_view body,
                                                         std::optional<Response>& error) {
  auto object = parse_object(body, {"devices"}, error);
  if (!object) return std::nullopt;
  return parse_device_list(*object, logic::AliasService::kMaxDevicesPerAlias, error);
}

std::optional<JoinBody> parse_join_body(std::string_view body, std::optional<Response>& error) {
  auto object = parse_object(body, {"devices", "history"}, error);
  if (!object) return std::nullopt;
  JoinBody out;
  // "devices" is checked first: a join without devices is told so whatever its history.
  const json::value* devices = object->if_contains("devices");
  if (devices == nullptr || !devices->is_array() || devices->get_array().empty() ||
      devices->get_array().size() > logic::TopicService::kMaxDevicesPerJoin) {
    error = bad_request("'devices' must be an array of 1.." +
                        std::to_string(logic::TopicService::kMaxDevicesPerJoin) + " device ids");
    return std::nullopt;
  }
  if (const json::value* h = object->if_contains("history")) {
    const auto* n = h->if_int64();
    if (n == nullptr || *n < 0 || *n > logic::TopicService::kMaxHistory) {
      error = bad_request("'history' must be an integer in 0.." +
                          std::to_string(logic::TopicService::kMaxHistory));
      return std::nullopt;
    }
    out.history = static_cast<std::uint32_t>(*n);
  }
  auto ids = parse_device_list(*object, logic::TopicService::kMaxDevicesPerJoin, error);
  if (!ids) return std::nullopt;
  out.devices = std::move(*ids);
  return out;
}

}  // namespace herald::http::detail
