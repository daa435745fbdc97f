// SenderApi: the HTTP API business services call to register devices and send messages. A plain
// function from request to response (mount it on an HttpServer, or call it in a test).
//
//   GET  /healthz                      200 {"status":"ok"}
//   POST /v1/apps/{app}/devices        {"device": "<id>"}
//                                      201 new / 200 already registered
//                                      {"device": "<id>", "token": "<device token>"}
//   POST /v1/apps/{app}/messages       {"to": {"device": "<id>"} | {"devices": ["<id>", ...]},
//                                       "data": <any JSON value>,
//                                       "encoding": "base64"   (optional: data is a base64
//                                                               string, stored as binary),
//                                       "ttl_s": <seconds>}    (optional, 1..max_ttl_s)
//                                      200 {"id": "<message id>", "targets": [{"device": ...,
//                                           "epoch": N, "seq": N, "online": bool}, ...]}
//
// Every /v1/apps/{app}/... request carries "Authorization: Bearer <api key>". So that nobody
// learns which apps exist without a key:
//   - no key, or a key that belongs to no app          -> 401 unauthorized (same answer whether
//                                                          {app} exists or not)
//   - a key of another app (the caller is a sender,    -> 404 unknown_app (same answer whether
//     but not of {app})                                   {app} exists or not)
//   - a key of {app}                                   -> the request is served
//
// Errors are {"error": {"code": "<snake_case>", "message": "<text>"}}:
//   400 bad_request (bad JSON, a missing field, a field of the wrong type, an unknown field, a
//       malformed device id or bad base64), bad_ttl, too_many_targets
//   401 unauthorized (with WWW-Authenticate: Bearer)
//   404 unknown_app, unknown_device (a target is not registered for the app), not_found (route)
//   405 method_not_allowed (with Allow)
//   413 payload_too_large (the stored data, after base64 decoding, exceeds max_payload_bytes)
//   503 busy (with Retry-After): nothing was stored, retry with backoff
//   503 storage_failed (with Retry-After): the disk failed; the message may or may not have been
//       stored (it is if the write reached the log before its fsync failed), retry with backoff
// Unknown fields are rejected rather than ignored: a misspelt "ttl" must not silently send a
// message with the default TTL. Every request is validated completely before anything is
// stored, so a 4xx changes nothing.
//
// Holds references: every collaborator outlives the SenderApi, which outlives its server.
// Thread-safe: handle() may run on any number of event loops at once.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "http/message.h"
#include "logic/app_registry.h"
#include "logic/device_token.h"
#include "logic/message_service.h"
#include "storage/device_store.h"

namespace herald::http {

class SenderApi {
 public:
  SenderApi(logic::MessageService& messages, const logic::AppRegistry& apps,
            const logic::DeviceTokenAuthority& tokens, storage::DeviceStore& devices,
            logic::Clock clock);

  // Answers one request; never throws for any request content. Suspends only while a message is
  // being stored.
  boost::asio::awaitable<Response> handle(Request request);

 private:
  // Nothing when `request` carries a key of `app`; else the 401 or 404 described above.
  [[nodiscard]] std::optional<Response> authorize(const Request& request,
                                                  std::string_view app) const;
  Response register_device(const Request& request, const std::string& app);
  boost::asio::awaitable<Response> async_send_message(Request request, std::string app);

  logic::MessageService& messages_;
  const logic::AppRegistry& apps_;
  const logic::DeviceTokenAuthority& tokens_;
  storage::DeviceStore& devices_;
  logic::Clock clock_;
};

}  // namespace herald::http
