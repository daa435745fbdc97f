// How the client reads the error code of a server's answer to one request (an UpstreamAck, a
// Streams answering a Subscribe): shared by the request queues.
#pragma once

#include <cstdint>
#include <string>

#include "protocol/error_code.h"

namespace herald::detail {

// Answers that changed nothing and ask to try again later (docs/protocol.md section 7):
// server_busy and internal.
inline bool is_retryable(std::uint32_t error_code) {
  const auto code = static_cast<protocol::ErrorCode>(error_code);
  return code == protocol::ErrorCode::kServerBusy || code == protocol::ErrorCode::kInternal;
}

// The reason given to the app for a refusal for good: the code and its name.
inline std::string refusal_reason(std::uint32_t error_code) {
  return "the server refused it: " + std::to_string(error_code) + " (" +
         std::string(protocol::to_string(static_cast<protocol::ErrorCode>(error_code))) + ")";
}

}  // namespace herald::detail
