#include "http/detail/api_support.h"

#include <algorithm>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/parse.hpp>
#include <boost/system/errc.hpp>
#include <boost/url/parse.hpp>

#include "common/log.h"
#include "http/json_response.h"

namespace herald::http::detail {

namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using logic::LogicError;

bhttp::status status_of(LogicError e) {
  switch (e) {
    case LogicError::kOk:
      return bhttp::status::ok;
    case LogicError::kBadRequest:
    case LogicError::kBadTtl:
    case LogicError::kTooManyTargets:
    case LogicError::kTooManyKeys:
    case LogicError::kTooManyTopics:
    case LogicError::kBadSendAt:
      return bhttp::status::bad_request;
    case LogicError::kUnauthorized:
      return bhttp::status::unauthorized;
    case LogicError::kUnknownApp:
    case LogicError::kUnknownDevice:
    case LogicError::kUnknownAlias:
    case LogicError::kUnknownMessage:
    case LogicError::kUnknownKey:
    case LogicError::kNotFound:
      return bhttp::status::not_found;
    case LogicError::kPayloadTooLarge:
      return bhttp::status::payload_too_large;
    case LogicError::kForbiddenStream:
    case LogicError::kAppDisabled:
      return bhttp::status::forbidden;
    case LogicError::kAppExists:
    case LogicError::kIdempotencyKeyReused:
    case LogicError::kLastKey:
    case LogicError::kWebhookConfigured:
      return bhttp::status::conflict;
    case LogicError::kRateLimited:
    case LogicError::kTooManyScheduled:
      return bhttp::status::too_many_requests;
    case LogicError::kBusy:
    case LogicError::kStorageFailed:
      return bhttp::status::service_unavailable;
    case LogicError::kStorageFull:
      return bhttp::status::insufficient_storage;
  }
  return bhttp::status::internal_server_error;
}

// A default message for errors that come back from the logic layer without one.
std::string_view default_message(LogicError e) {
  switch (e) {
    case LogicError::kUnknownApp:
      return "unknown app";
    case LogicError::kUnknownDevice:
      return "a target device is not registered for this app";
    case LogicError::kPayloadTooLarge:
      return "data is too large";
    case LogicError::kBadTtl:
      return "ttl_s is out of range";
    case LogicError::kTooManyTargets:
      return "too many target devices";
    case LogicError::kTooManyKeys:
      return "the app has its maximum of working API keys: revoke one to free a slot";
    case LogicError::kTooManyTopics:
      return "too many topics: a device may join 256, an app may have 1000000";
    case LogicError::kBadSendAt:
      return "send_at_ms is out of range";
    case LogicError::kAppDisabled:
      return "the app is disabled";
    case LogicError::kUnknownAlias:
      return "no such alias";
    case LogicError::kUnknownMessage:
      return "no such message";
    case LogicError::kUnknownKey:
      return "no such API key";
    case LogicError::kNotFound:
      return "no such resource";
    case LogicError::kAppExists:
      return "an app with this id exists";
    case LogicError::kIdempotencyKeyReused:
      return "this Idempotency-Key was used with a different request";
    case LogicError::kLastKey:
      return "revoking it would leave the app without a working key: add another key first";
    case LogicError::kWebhookConfigured:
      return "the app's webhook is set in heraldd's configuration file: change it there";
    case LogicError::kRateLimited:
      return "over the app's rate limit";
    case LogicError::kTooManyScheduled:
      return "the app has as many scheduled messages waiting as it may; retry once some were "
             "sent or cancelled";
    case LogicError::kBusy:
      return "Herald is overloaded; nothing was stored, retry later";
    case LogicError::kStorageFailed:
      return "storage failed; the message may not have been stored, retry later";
    case LogicError::kStorageFull:
      return "Herald's disk is nearly full; nothing was stored, retry later";
    default:
      return "the request was rejected";
  }
}

// The one way every error of this API is answered.
Response error_of(LogicError e, std::string_view message) {
  Response res = error_response(status_of(e), logic::to_string(e), message);
  if (e == LogicError::kUnauthorized) res.set(bhttp::field::www_authenticate, "Bearer");
  // Retry-After in seconds: a short pause is enough for a full write queue or a storage hiccup.
  if (e == LogicError::kBusy || e == LogicError::kStorageFailed) {
    res.set(bhttp::field::retry_after, "1");
  }
  // A full disk waits for an operator or for expiry to free space: half a minute between
  // retries is soon enough to resume and keeps retrying senders from piling up.
  if (e == LogicError::kStorageFull) res.set(bhttp::field::retry_after, "30");
  // A scheduled message frees its slot when it is sent or cancelled, which may be far off: a
  // minute keeps a retrying sender from hammering the node meanwhile.
  if (e == LogicError::kTooManyScheduled) res.set(bhttp::field::retry_after, "60");
  return res;
}

Response error_of(const boost::system::error_code& ec) {
  if (ec.category() == logic::logic_category()) {
    const auto e = static_cast<LogicError>(ec.value());
    return error_of(e, default_message(e));
  }
  log::error("sender_api_unexpected_error", {{"error", ec.message()}});
  return error_response(bhttp::status::internal_server_error, "internal", "internal error");
}

Response bad_request(std::string_view message) {
  return error_of(LogicError::kBadRequest, message);
}

Response method_not_allowed(std::string_view allow) {
  Response res = error_response(bhttp::status::method_not_allowed, "method_not_allowed",
                                std::string("this resource allows only ") + std::string(allow));
  res.set(bhttp::field::allow, allow);
  return res;
}

// A storage error of the DeviceStore, as the logic layer would classify it.
LogicError storage_error(const boost::system::error_code& ec) {
  if (ec == boost::system::errc::resource_unavailable_try_again) return LogicError::kBusy;
  if (ec == boost::system::errc::no_space_on_device) return LogicError::kStorageFull;
  return LogicError::kStorageFailed;
}

std::optional<std::string_view> bearer_key(const Request& request) {
  const auto it = request.find(bhttp::field::authorization);
  if (it == request.end()) return std::nullopt;
  std::string_view value = it->value();
  constexpr std::string_view kScheme = "Bearer ";
  if (value.size() <= kScheme.size() || !beast::iequals(value.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  return value;
}

// Parses a request body that must be a JSON object whose keys are all in `allowed`. On error,
// `error` holds the answer.
std::optional<json::object> parse_object(std::string_view body,
                                         std::initializer_list<std::string_view> allowed,
                                         std::optional<Response>& error) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    error = bad_request("the request body is not valid JSON: " + ec.message());
    return std::nullopt;
  }
  json::object* object = v.if_object();
  if (object == nullptr) {
    error = bad_request("the request body must be a JSON object");
    return std::nullopt;
  }
  for (const auto& kv : *object) {
    bool known = false;
    for (std::string_view a : allowed) known = known || kv.key() == a;
    if (!known) {
      error = bad_request("unknown field '" + std::string(kv.key()) + "'");
      return std::nullopt;
    }
  }
  return std::move(*object);
}

Response not_found() {
  return error_response(bhttp::status::not_found, "not_found", "no such resource");
}

Response rate_limited(std::int64_t wait_ms) {
  Response res = error_of(LogicError::kRateLimited, "over the app's rate limit; retry after " +
                                                        std::to_string(wait_ms) + " ms");
  res.set(bhttp::field::retry_after,
          std::to_string(std::max<std::int64_t>(1, (wait_ms + 999) / 1000)));
  return res;
}

std::optional<std::vector<std::string>> path_segments(const Request& request,
                                                      std::size_t max_segments) {
  auto url = boost::urls::parse_origin_form(request.target());
  if (!url) return std::nullopt;
  std::vector<std::string> path;
  for (std::string segment : url->segments()) {
    if (path.size() == max_segments) return std::nullopt;
    path.push_back(std::move(segment));
  }
  return path;
}

std::optional<std::string> query_param(const Request& request, std::string_view name) {
  auto url = boost::urls::parse_origin_form(request.target());
  if (!url) return std::nullopt;
  for (const auto& param : url->params()) {
    if (param.key == name) return std::string(param.value);
  }
  return std::nullopt;
}

}  // namespace herald::http::detail
