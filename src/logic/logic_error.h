// Errors of the logic layer. Each says what the caller should do; the HTTP API maps them to a
// status and a JSON body {"error": {"code": to_string(e), "message": ...}}.
#pragma once

#include <string_view>
#include <type_traits>

#include <boost/system/error_code.hpp>

namespace herald::logic {

enum class LogicError {
  kOk = 0,
  // The request is wrong; do not retry it unchanged (HTTP 400/401/404/413).
  kBadRequest,    // a field is missing or malformed
  kUnauthorized,  // missing or wrong API key
  kUnknownApp,
  kUnknownDevice,  // a target device is not registered for this app
  kPayloadTooLarge,
  kBadTtl,
  kTooManyTargets,
  kTooManyKeys,      // the app has its maximum of working API keys: revoke one first
  kTooManyTopics,    // the device has joined as many topics as it may, or the app has as many
  kBadSendAt,        // send_at_ms is negative or further ahead than the scheduler's horizon
  kForbiddenStream,  // a device asked for a stream that is not its own
  kAppDisabled,      // the app exists but an operator disabled it (HTTP 403)
  kUnknownAlias,
  kUnknownMessage,
  kUnknownKey,  // no API key with that id
  kNotFound,    // no such resource (HTTP route)
  // The request conflicts with the state; do not retry it unchanged (HTTP 409).
  kAppExists,
  kIdempotencyKeyReused,  // the same Idempotency-Key came with a different request
  kLastKey,               // revoking it would leave the app without a working key
  kWebhookConfigured,     // the app's webhook is set in the configuration file, not here
  // Over the app's rate limit: retry after the time given (HTTP 429 with Retry-After).
  kRateLimited,
  // The app has as many scheduled messages waiting as it may (or the node has): retry once some
  // were sent or cancelled (HTTP 429 with Retry-After).
  kTooManyScheduled,
  // Herald is overloaded or failing; retry later with backoff (HTTP 503).
  kBusy,
  kStorageFailed,
  // The disk holding the messages is (nearly) full: nothing was stored. Retry later; an operator
  // must free space (HTTP 507 with Retry-After). Messages already accepted are still delivered.
  kStorageFull,
};

std::string_view to_string(LogicError e);
const boost::system::error_category& logic_category();

// A storage error as the logic layer reports it: kBusy when the writer's queue was full (retry
// soon), kStorageFull when the store refused new entries for lack of disk space (nothing stored),
// kStorageFailed for anything else.
boost::system::error_code storage_error(const boost::system::error_code& ec);

inline boost::system::error_code make_error_code(LogicError e) {
  return {static_cast<int>(e), logic_category()};
}

}  // namespace herald::logic

template <>
struct boost::system::is_error_code_enum<herald::logic::LogicError> : std::true_type {};
