// What the HTTP APIs (sender_api, admin_api) share: the one error shape and its status mapping,
// the bearer credential, strict JSON bodies, path segments. Layer-private.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/status.hpp>
#include <boost/json/object.hpp>
#include <boost/system/error_code.hpp>

#include "http/message.h"
#include "logic/logic_error.h"

namespace herald::http::detail {

[[nodiscard]] boost::beast::http::status status_of(logic::LogicError e);
// A default message for errors that come back from the logic layer without one.
[[nodiscard]] std::string_view default_message(logic::LogicError e);

// The one way every API error is answered: the status of `e`, {"error": {code, message}}, and
// the headers the status calls for (WWW-Authenticate with 401, Retry-After with 503 and with
// 429 too_many_scheduled).
[[nodiscard]] Response error_of(logic::LogicError e, std::string_view message);
// An error from the logic layer (its default message), or 500 for anything else (logged).
[[nodiscard]] Response error_of(const boost::system::error_code& ec);
[[nodiscard]] Response bad_request(std::string_view message);
[[nodiscard]] Response not_found();
[[nodiscard]] Response method_not_allowed(std::string_view allow);
// 429 with Retry-After: the whole seconds to wait, rounded up (at least 1).
[[nodiscard]] Response rate_limited(std::int64_t wait_ms);

// A storage error as the logic layer classifies it: kBusy (retry soon) or kStorageFailed.
[[nodiscard]] logic::LogicError storage_error(const boost::system::error_code& ec);

// The credential of "Authorization: Bearer <credential>", if the header has that form.
[[nodiscard]] std::optional<std::string_view> bearer_key(const Request& request);

// The decoded path segments of the request target, or nullopt when the target is malformed or
// has more than `max_segments` segments (no route is that deep).
[[nodiscard]] std::optional<std::vector<std::string>> path_segments(const Request& request,
                                                                    std::size_t max_segments);
// The decoded value of query parameter `name`, if present.
[[nodiscard]] std::optional<std::string> query_param(const Request& request, std::string_view name);

// Parses a request body that must be a JSON object whose keys are all in `allowed`. On error,
// `error` holds the answer (400 naming the problem).
[[nodiscard]] std::optional<boost::json::object> parse_object(
    std::string_view body, std::initializer_list<std::string_view> allowed,
    std::optional<Response>& error);

}  // namespace herald::http::detail
