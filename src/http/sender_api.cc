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
#include "http/detail/request_body.h"
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
    auto ids = parse_alias_body(request.body(), error);
    if (!ids) co_return std::move(*error);
    devices = co_await d_.aliases.async_set(app, alias, std::move(*ids));
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
  std::optional<Response> error;
  auto body = parse_join_body(request.body(), error);
  if (!body) return error;
  ids = std::move(body->devices);
  history = body->history;
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
  auto parsed = parse_device_body(request.body(), error);
  if (!parsed) return std::move(*error);
  const std::string device = std::move(*parsed);

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
  const MessageBodyLimits body_limits{limits.max_targets, limits.max_ttl_s,
                                      limits.max_payload_bytes,
                                      d_.scheduler.limits().max_horizon_ms};
  auto body = parse_message_body(request.body(), body_limits, d_.clock(), error);
  if (!body) co_return std::move(*error);
  logic::SendRequest send = std::move(body->send);
  send.app = std::move(app);
  const std::string alias = std::move(body->alias);
  const std::optional<std::int64_t> send_at_ms = body->send_at_ms;
  const bool scheduled = body->scheduled;
  // The payload now lives in `send`: do not hold it twice across the write.
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
    if (*kept) co_return co_await async_replay(**kept, fingerprint, send.app);
  }
  if (auto wait = d_.limiter.try_acquire(send.app, send.shared ? 1 : send.devices.size())) {
    co_return rate_limited(wait->count());
  }
  if (!idempotency_key.empty()) {
    // The record is written with the message, which adds its id (logic::with_message_id); the
    // answer is added once it is known. A replay without it is rebuilt from the status.
    send.idempotency = storage::Record{idempotency_record,
                                       json::serialize(json::object{{"fingerprint", fingerprint}}),
                                       d_.clock() + kIdempotencyWindowMs};
  }

  // Fully validated; the logic layer still checks registrations and stores nothing on error.
  const std::string app_id = send.app;  // `send` is moved into the logic layer below
  json::object out;
  bhttp::status status = bhttp::status::ok;
  if (scheduled) {
    auto kept = co_await d_.scheduler.async_schedule(std::move(send), *send_at_ms);
    if (!kept) co_return error_of(kept.error());
    if (kept->existing) co_return co_await async_replay(*kept->existing, fingerprint, app_id);
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
    if (sent->existing) co_return co_await async_replay(*sent->existing, fingerprint, app_id);
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
    batch.put_records.push_back({idempotency_record,
                                 json::serialize(json::object{{"fingerprint", fingerprint},
                                                              {"id", out["id"]},
                                                              {"status", static_cast<int>(status)},
                                                              {"answer", out}}),
                                 batch.now_ms + kIdempotencyWindowMs});
    auto [ec, ignored] =
        co_await d_.streams.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
    if (ec) log::warn("idempotency_answer_not_kept", {{"error", ec.message()}});
  }
  co_return json_response(status, out);
}

namespace {

// The answer a send got, rebuilt from the message's status (GET .../messages/{id}) when the
// first answer was never kept. It says what the status knows: each target's epoch and seq once
// its stored stage was written (not "online": that was true only at the moment of the send).
// A scheduled message is answered as it was then: 202, state scheduled, its send time.
Response rebuilt_answer(const json::object& status) {
  json::object out;
  out["id"] = status.at("id");
  const json::value* send_at = status.if_contains("send_at_ms");
  const bool scheduled = send_at != nullptr;
  out["state"] = scheduled ? "scheduled" : "sent";
  if (scheduled) out["send_at_ms"] = *send_at;
  json::array targets;
  if (const json::value* listed = status.if_contains("targets"); listed && listed->is_array()) {
    for (const json::value& t : listed->get_array()) {
      const json::object& target = t.get_object();
      json::object one{{"device", target.at("device")}};
      const json::value* state = target.if_contains("state");
      if (!scheduled && state != nullptr && *state == "dropped") {
        one["dropped"] = true;
      } else if (!scheduled) {
        if (const json::value* epoch = target.if_contains("epoch")) one["epoch"] = *epoch;
        if (const json::value* seq = target.if_contains("seq")) one["seq"] = *seq;
      }
      targets.push_back(std::move(one));
    }
  }
  out["targets"] = std::move(targets);
  if (const json::value* stream = status.if_contains("stream")) out["stream"] = *stream;
  return json_response(scheduled ? bhttp::status::accepted : bhttp::status::ok, out);
}

}  // namespace

asio::awaitable<Response> SenderApi::async_replay(storage::Record record, std::string fingerprint,
                                                  std::string app) {
  boost::system::error_code ec;
  const json::value kept = json::parse(record.value, ec);
  if (ec || !kept.is_object()) co_return error_of(LogicError::kStorageFailed, "storage failed");
  const json::object& o = kept.get_object();
  const json::value* first = o.if_contains("fingerprint");
  if (first == nullptr || !first->is_string() || first->get_string() != fingerprint) {
    co_return error_of(LogicError::kIdempotencyKeyReused,
                       "this Idempotency-Key was used with a different request");
  }
  Response res;
  if (const json::value* answer = o.if_contains("answer")) {
    // The first answer's status: 202 for a scheduled message (records kept before it had none).
    const json::value* first_status = o.if_contains("status");
    const bool accepted = first_status != nullptr && *first_status == 202;
    res = json_response(accepted ? bhttp::status::accepted : bhttp::status::ok, *answer);
  } else if (const json::value* id = o.if_contains("id"); id != nullptr && id->is_string()) {
    // The message was stored with this record, but its answer was not kept: the first request
    // is still being answered, or the process died before it answered (or before the unsynced
    // answer reached the disk). Either way the message exists: answer from its status.
    auto status = co_await d_.tracker.async_status(app, std::string(id->get_string()));
    if (!status) co_return error_of(status.error());
    res = rebuilt_answer(*status);
  } else {
    // A record written before records carried the message id, whose answer was never kept.
    co_return error_of(LogicError::kBusy,
                       "the first request with this key is still being answered");
  }
  res.set("Idempotent-Replayed", "true");
  co_return res;
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
