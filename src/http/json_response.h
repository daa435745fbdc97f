// Building JSON responses, shared by the server (its own 400/413/431/500 answers) and the APIs.
//
// Every error Herald's HTTP APIs return has the same shape, so clients need one parser:
//
//   {"error": {"code": "<snake_case>", "message": "<human text>"}}
//
// `code` is stable and meant for programs (the logic layer's to_string(LogicError) where one
// applies); `message` is for people and may change.
#pragma once

#include <string_view>

#include <boost/beast/http/status.hpp>
#include <boost/json/value.hpp>

#include "http/message.h"

namespace herald::http {

// A response with `body` serialized as its JSON body and Content-Type application/json. Version,
// keep-alive and Content-Length are left to the server, which fills them from the request.
[[nodiscard]] Response json_response(boost::beast::http::status status,
                                     const boost::json::value& body);

// A response with the error body above.
[[nodiscard]] Response error_response(boost::beast::http::status status, std::string_view code,
                                      std::string_view message);

}  // namespace herald::http
