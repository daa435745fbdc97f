// The HTTP message types every Herald HTTP component speaks: whole requests and responses with
// their bodies in memory. Bodies are bounded by the server (HttpServerOptions::max_body_bytes)
// and by the client (HttpClient::kMaxResponseBodyBytes), so a string body is never unbounded.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace herald::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

}  // namespace herald::http
