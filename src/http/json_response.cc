#include "http/json_response.h"

#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

namespace herald::http {

namespace beast = boost::beast;
namespace json = boost::json;

Response json_response(beast::http::status status, const json::value& body) {
  Response res{status, 11};
  res.set(beast::http::field::content_type, "application/json");
  res.body() = json::serialize(body);
  return res;
}

Response error_response(beast::http::status status, std::string_view code,
                        std::string_view message) {
  json::object error;
  error["code"] = code;
  error["message"] = message;
  json::object body;
  body["error"] = std::move(error);
  return json_response(status, body);
}

}  // namespace herald::http
