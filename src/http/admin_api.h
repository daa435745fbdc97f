// AdminApi: the operators' HTTP API under /v1/admin/ — apps, their API keys, their settings. A
// plain function from request to response like SenderApi; mount both with ApiRouter (or call it
// in a test).
//
//   POST   /v1/admin/apps                      create an app and its first key     201 / 409
//   GET    /v1/admin/apps                      every app
//   GET    /v1/admin/apps/{app}                one app
//   PATCH  /v1/admin/apps/{app}                disabled, rate_limits, webhook      / 409
//                                              webhook_configured (the file sets it)
//   POST   /v1/admin/apps/{app}/keys           add a key (rotation step 1)         201 / 400
//                                              too_many_keys (16 working: revoke one)
//   GET    /v1/admin/apps/{app}/keys           the keys, without secrets
//   DELETE /v1/admin/apps/{app}/keys/{id}      revoke, ?grace_s=N (rotation step 2) / 409 last_key
//
// docs/api/openapi.yaml is the contract (bodies, fields, errors). Every request carries
// "Authorization: Bearer <admin token>"; anything else is 401, for every path under /v1/admin/,
// existing or not. The token is compared in constant time against its SHA-256.
//
// Holds references: every collaborator outlives the AdminApi. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "http/message.h"
#include "logic/app_service.h"

namespace herald::http {

class AdminApi {
 public:
  // `admin_token` empty: the admin API is off (every call 401, saying so).
  AdminApi(logic::AppService& apps, const logic::AppRegistry& registry, std::string admin_token,
           logic::Clock clock);

  // Answers a request whose path starts with /v1/admin/. Never throws for any request content.
  boost::asio::awaitable<Response> handle(Request request);

 private:
  [[nodiscard]] bool authorized(const Request& request) const;

  logic::AppService& apps_;
  const logic::AppRegistry& registry_;
  std::string token_sha256_;  // empty: no token configured
  logic::Clock clock_;
};

}  // namespace herald::http
