#include "protocol/error_code.h"

#include <string>

namespace herald::protocol {
namespace {

// The stable names of error codes; "unknown" for values this version does not define.
std::string_view name_of(ErrorCode c) {
  switch (c) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kMalformedFrame:
      return "malformed_frame";
    case ErrorCode::kFrameTooLarge:
      return "frame_too_large";
    case ErrorCode::kUnknownFrameType:
      return "unknown_frame_type";
    case ErrorCode::kUnexpectedFrame:
      return "unexpected_frame";
    case ErrorCode::kUnsupportedVersion:
      return "unsupported_version";
    case ErrorCode::kBadCredentials:
      return "bad_credentials";
    case ErrorCode::kHandshakeTimeout:
      return "handshake_timeout";
    case ErrorCode::kRaceLost:
      return "race_lost";
    case ErrorCode::kHeartbeatTimeout:
      return "heartbeat_timeout";
    case ErrorCode::kSlowConsumer:
      return "slow_consumer";
    case ErrorCode::kUnknownStream:
      return "unknown_stream";
    case ErrorCode::kBadRequest:
      return "bad_request";
    case ErrorCode::kServerBusy:
      return "server_busy";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kUnknownApp:
      return "unknown_app";
  }
  return "unknown";
}

std::string sentence_of(ErrorCode c) {
  switch (c) {
    case ErrorCode::kOk:
      return "success";
    case ErrorCode::kMalformedFrame:
      return "malformed frame: bad length encoding or body";
    case ErrorCode::kFrameTooLarge:
      return "frame body longer than the allowed maximum";
    case ErrorCode::kUnknownFrameType:
      return "unknown frame type";
    case ErrorCode::kUnexpectedFrame:
      return "frame not allowed in this connection state";
    case ErrorCode::kUnsupportedVersion:
      return "unsupported protocol version";
    case ErrorCode::kBadCredentials:
      return "bad device id or token";
    case ErrorCode::kHandshakeTimeout:
      return "no Hello within the handshake deadline";
    case ErrorCode::kRaceLost:
      return "another attempt of the same connection race won; this one is not needed";
    case ErrorCode::kHeartbeatTimeout:
      return "nothing received within the heartbeat deadline";
    case ErrorCode::kSlowConsumer:
      return "peer does not read; output queue limit reached";
    case ErrorCode::kUnknownStream:
      return "unknown or forbidden stream";
    case ErrorCode::kBadRequest:
      return "request field out of range";
    case ErrorCode::kServerBusy:
      return "server busy; retry with backoff";
    case ErrorCode::kInternal:
      return "internal server error; retry with backoff";
    case ErrorCode::kUnknownApp:
      return "the device is not registered for this app";
  }
  return "unknown protocol error " + std::to_string(static_cast<std::uint32_t>(c));
}

class ProtocolCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "herald.protocol"; }

  std::string message(int ev) const override { return sentence_of(static_cast<ErrorCode>(ev)); }

  boost::system::error_condition default_error_condition(int ev) const noexcept override {
    const auto v = static_cast<std::uint32_t>(ev);
    if (v >= 1 && v <= 4) return ErrorCondition::kProtocolViolation;
    if (v >= 10 && v <= 13) return ErrorCondition::kHandshakeFailed;
    if (v >= 20 && v <= 21) return ErrorCondition::kConnectionLost;
    if (v >= 30 && v <= 34) return ErrorCondition::kRequestRejected;
    return {ev, *this};
  }
};

class ProtocolConditionCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "herald.protocol.condition"; }

  std::string message(int ev) const override {
    switch (static_cast<ErrorCondition>(ev)) {
      case ErrorCondition::kProtocolViolation:
        return "protocol violation";
      case ErrorCondition::kHandshakeFailed:
        return "handshake failed";
      case ErrorCondition::kConnectionLost:
        return "connection closed by its rules";
      case ErrorCondition::kRequestRejected:
        return "request rejected";
    }
    return "unknown protocol condition";
  }
};

}  // namespace

std::string_view to_string(ErrorCode c) { return name_of(c); }

const boost::system::error_category& protocol_category() {
  static const ProtocolCategory category;
  return category;
}

const boost::system::error_category& protocol_condition_category() {
  static const ProtocolConditionCategory category;
  return category;
}

}  // namespace herald::protocol
