// SenderApi: the HTTP API business services call: devices, aliases, messages. A plain function
// from request to response (mount it on an HttpServer, or call it in a test). The contract, with
// every body and error, is docs/api/openapi.yaml; in short:
//
//   GET    /healthz
//   POST   /v1/apps/{app}/devices                          register, returns the device token
//   GET    /v1/apps/{app}/devices/{device}                 online, node, last seen, positions
//   DELETE /v1/apps/{app}/devices/{device}                 unregister
//   GET|PUT|DELETE /v1/apps/{app}/aliases/{alias}          an alias's devices
//   POST   /v1/apps/{app}/aliases/{alias}/devices          bind one more device
//   DELETE /v1/apps/{app}/aliases/{alias}/devices/{device} unbind one
//   POST   /v1/apps/{app}/messages                         send to a device, devices or an alias
//                                                          (Idempotency-Key: a retry stores
//                                                          nothing); with send_at_ms more than
//                                                          1 s ahead: scheduled, answered 202
//   GET    /v1/apps/{app}/messages/{id}                    per-target state and stage times
//   DELETE /v1/apps/{app}/messages/{id}                    cancel a scheduled message; revoke a
//                                                          sent one, and recall where delivered
//
// Every /v1/apps/{app}/... request carries "Authorization: Bearer <api key>". So that nobody
// learns which apps exist without a key:
//   - no key, or a key that belongs to no app          -> 401 unauthorized (same answer whether
//                                                          {app} exists or not)
//   - a key of another app (the caller is a sender,    -> 404 unknown_app (same answer whether
//     but not of {app})                                   {app} exists or not)
//   - a key of {app}, the app disabled                 -> 403 app_disabled
//   - a key of {app}, over its rate limit              -> 429 rate_limited (with Retry-After)
//   - a key of {app}                                   -> the request is served
//
// Errors are {"error": {"code": "<snake_case>", "message": "<text>"}}:
//   400 bad_request (bad JSON, a missing field, a field of the wrong type, an unknown field, a
//       malformed device id or bad base64), bad_ttl, too_many_targets, bad_send_at (more than
//       the scheduler's horizon, 28 days, ahead)
//   401 unauthorized (with WWW-Authenticate: Bearer)
//   403 app_disabled
//   404 unknown_app, unknown_device (not registered for the app), unknown_alias, not_found (route)
//   405 method_not_allowed (with Allow)
//   413 payload_too_large (the stored data, after base64 decoding, exceeds max_payload_bytes)
//   429 rate_limited (with Retry-After): nothing was done
//   429 too_many_scheduled (with Retry-After): the app (or the node) has as many scheduled
//       messages waiting as it may; nothing was stored
//   503 busy (with Retry-After): nothing was stored, retry with backoff
//   503 storage_failed (with Retry-After): the disk failed; the message may or may not have been
//       stored (it is if the write reached the log before its fsync failed), retry with backoff
//   507 storage_full (with Retry-After): free disk space is below storage.min_free_mb; nothing
//       was stored, retry once an operator freed space
// Unknown fields are rejected rather than ignored: a misspelt "ttl" must not silently send a
// message with the default TTL. Every request is validated completely before anything is
// stored, so a 4xx changes nothing.
//
// Thread-safe: handle() may run on any number of event loops at once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "distribution/router.h"
#include "http/message.h"
#include "logic/alias_service.h"
#include "logic/app_registry.h"
#include "logic/device_token.h"
#include "logic/message_id.h"
#include "logic/message_scheduler.h"
#include "logic/message_service.h"
#include "logic/message_tracker.h"
#include "logic/presence_log.h"
#include "logic/rate_limiter.h"
#include "logic/topic_service.h"
#include "storage/device_store.h"
#include "storage/record_store.h"
#include "storage/stream_store.h"

namespace herald::http {

// What the sender API works with. References: every collaborator outlives the SenderApi.
struct SenderApiDeps {
  logic::MessageService& messages;
  const logic::AppRegistry& apps;
  const logic::DeviceTokenAuthority& tokens;
  storage::DeviceStore& devices;
  storage::StreamStore& streams;
  storage::RecordStore& records;
  logic::AliasService& aliases;
  distribution::Router& router;
  logic::RateLimiter& limiter;
  logic::PresenceLog& presence;
  logic::MessageTracker& tracker;
  logic::MessageScheduler& scheduler;
  logic::MessageIdGenerator& ids;
  logic::TopicService& topics;
  std::string node;  // this node's name, reported by device lookups
  logic::Clock clock;
};

class SenderApi {
 public:
  explicit SenderApi(SenderApiDeps deps);

  // Answers one request; never throws for any request content. Suspends only while something is
  // being stored.
  boost::asio::awaitable<Response> handle(Request request);

 private:
  // Nothing when `request` carries a working key of `app` (an enabled app) and the app's rate
  // limit allows one request and `messages` messages (nullopt: the caller takes the tokens
  // later, once it knows how many); else the 401, 403, 404 or 429 answer.
  [[nodiscard]] std::optional<Response> authorize(const Request& request, std::string_view app,
                                                  std::optional<std::uint64_t> messages = 0) const;
  Response register_device(const Request& request, const std::string& app);
  // register_device, then the device's start in the app's broadcast stream.
  boost::asio::awaitable<Response> async_register_device(Request request, std::string app);
  Response device_topics(const std::string& app, const std::string& device);
  // /v1/apps/{app}/topics/{topic}[/subscribers[/{device}]]; `p` are the path's segments.
  boost::asio::awaitable<Response> async_topic(Request request, std::vector<std::string> p);
  static Response bad_topic();
  boost::asio::awaitable<Response> async_topic_info(std::string app, std::string topic);
  Response topic_subscribers(const Request& request, const std::string& app,
                             const std::string& topic);
  // The body of POST .../topics/{topic}/subscribers, every device checked; the 4xx answer if not.
  std::optional<Response> parse_join(const Request& request, const std::string& app,
                                     std::vector<std::string>& ids, std::uint32_t& history);
  static constexpr std::size_t kMaxSubscribersPerCall = logic::TopicService::kMaxDevicesPerJoin;
  Response get_device(const std::string& app, const std::string& device);
  Response unregister_device(const std::string& app, const std::string& device);
  boost::asio::awaitable<Response> async_alias(Request request, std::vector<std::string> path);
  boost::asio::awaitable<Response> async_send_message(Request request, std::string app);
  // The first answer under an Idempotency-Key, or 409 when the request differs. An answer that
  // was never kept (the process died between storing the message and answering) is rebuilt
  // from the status of the message the record names.
  boost::asio::awaitable<Response> async_replay(storage::Record record, std::string fingerprint,
                                                std::string app);
  // GET (status) and DELETE (cancel, or revoke / recall) of one message.
  boost::asio::awaitable<Response> async_message(Request request, std::string app, std::string id);

  SenderApiDeps d_;
};

}  // namespace herald::http
