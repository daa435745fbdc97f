#include "logic/logic_error.h"

#include <string>

#include <boost/system/errc.hpp>

namespace herald::logic {

std::string_view to_string(LogicError e) {
  switch (e) {
    case LogicError::kOk:
      return "ok";
    case LogicError::kBadRequest:
      return "bad_request";
    case LogicError::kUnauthorized:
      return "unauthorized";
    case LogicError::kUnknownApp:
      return "unknown_app";
    case LogicError::kUnknownDevice:
      return "unknown_device";
    case LogicError::kPayloadTooLarge:
      return "payload_too_large";
    case LogicError::kBadTtl:
      return "bad_ttl";
    case LogicError::kTooManyTargets:
      return "too_many_targets";
    case LogicError::kTooManyKeys:
      return "too_many_keys";
    case LogicError::kTooManyTopics:
      return "too_many_topics";
    case LogicError::kBadSendAt:
      return "bad_send_at";
    case LogicError::kForbiddenStream:
      return "forbidden_stream";
    case LogicError::kAppDisabled:
      return "app_disabled";
    case LogicError::kUnknownAlias:
      return "unknown_alias";
    case LogicError::kUnknownMessage:
      return "unknown_message";
    case LogicError::kUnknownKey:
      return "unknown_key";
    case LogicError::kNotFound:
      return "not_found";
    case LogicError::kAppExists:
      return "app_exists";
    case LogicError::kIdempotencyKeyReused:
      return "idempotency_key_reused";
    case LogicError::kLastKey:
      return "last_key";
    case LogicError::kWebhookConfigured:
      return "webhook_configured";
    case LogicError::kRateLimited:
      return "rate_limited";
    case LogicError::kTooManyScheduled:
      return "too_many_scheduled";
    case LogicError::kBusy:
      return "busy";
    case LogicError::kStorageFailed:
      return "storage_failed";
    case LogicError::kStorageFull:
      return "storage_full";
  }
  return "unknown";
}

namespace {

class LogicCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "herald.logic"; }
  std::string message(int ev) const override {
    return std::string(to_string(static_cast<LogicError>(ev)));
  }
};

}  // namespace

const boost::system::error_category& logic_category() {
  static const LogicCategory category;
  return category;
}

boost::system::error_code storage_error(const boost::system::error_code& ec) {
  if (ec == boost::system::errc::resource_unavailable_try_again) return LogicError::kBusy;
  if (ec == boost::system::errc::no_space_on_device) return LogicError::kStorageFull;
  return LogicError::kStorageFailed;
}

}  // namespace herald::logic
