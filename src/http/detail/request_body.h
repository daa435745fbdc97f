// The sender API's JSON request bodies, parsed and validated into what the handlers act on: the
// bytes an outside caller controls, kept apart from the handlers (which then authorize, look up
// and store) so that they are fuzzed on their own (request_body_fuzz.cc). Layer-private.
//
// Every parser has the shape of parse_object: on success the parsed request and `error` left
// unset; on failure nullopt and `error` holding the whole answer, a 4xx with
// {"error": {"code", "message"}} naming the problem. None throws, whatever the bytes; none
// looks anything up (registrations are the caller's), so the same body always gets the same
// answer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"
#include "logic/message_service.h"

namespace herald::http::detail {

// What POST /v1/apps/{app}/messages asks for, validated against `MessageBodyLimits`.
struct MessageBody {
  // Everything but `app` (the route's) and `idempotency` (the header's). Either 1..max_targets
  // valid device ids, or `shared` (a topic, a satisfiable condition or the broadcast), or
  // neither and a valid `alias` (resolved to devices by the caller).
  logic::SendRequest send;
  std::string alias;
  // The body's "send_at_ms", at most max_horizon_ms after now_ms.
  std::optional<std::int64_t> send_at_ms;
  // send_at_ms is more than MessageScheduler::kImmediateWindowMs ahead: the message is scheduled,
  // not sent now. Never with `send.shared`.
  bool scheduled = false;
};

struct MessageBodyLimits {
  std::size_t max_targets = 0;        // MessageLimits::max_targets
  std::int64_t max_ttl_s = 0;         // MessageLimits::max_ttl_s
  std::size_t max_payload_bytes = 0;  // MessageLimits::max_payload_bytes, of the stored data
  std::int64_t max_horizon_ms = 0;    // SchedulerLimits::max_horizon_ms
};

// Errors: 400 bad_request, bad_ttl, too_many_targets, bad_send_at; 413 payload_too_large.
[[nodiscard]] std::optional<MessageBody> parse_message_body(std::string_view body,
                                                            const MessageBodyLimits& limits,
                                                            std::int64_t now_ms,
                                                            std::optional<Response>& error);

// {"device": ID}: POST /v1/apps/{app}/devices and POST .../aliases/{alias}/devices. The id is
// valid (DeviceTokenAuthority::valid_device_id). Errors: 400 bad_request.
[[nodiscard]] std::optional<std::string> parse_device_body(std::string_view body,
                                                           std::optional<Response>& error);

// {"devices": [ID, ...]}: PUT .../aliases/{alias}; 1..AliasService::kMaxDevicesPerAlias valid
// ids. Errors: 400 bad_request.
[[nodiscard]] std::optional<std::vector<std::string>> parse_alias_body(
    std::string_view body, std::optional<Response>& error);

// {"devices": [ID, ...], "history": N}: POST .../topics/{topic}/subscribers;
// 1..TopicService::kMaxDevicesPerJoin valid ids, history 0..TopicService::kMaxHistory (0 when
// absent). Errors: 400 bad_request.
struct JoinBody {
  std::vector<std::string> devices;
  std::uint32_t history = 0;
};
[[nodiscard]] std::optional<JoinBody> parse_join_body(std::string_view body,
                                                      std::optional<Response>& error);

}  // namespace herald::http::detail
