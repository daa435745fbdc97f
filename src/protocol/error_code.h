// Error codes carried in Error frames (type 0x0A) and returned by the decoder. The numeric values
// are part of the wire protocol: never renumber, only append. docs/protocol.md lists each code
// with the server's reaction; `is_fatal` is the machine-readable half of that table.
#pragma once

#include <cstdint>
#include <string_view>
#include <type_traits>

#include <boost/system/error_code.hpp>

namespace herald::protocol {

enum class ErrorCode : std::uint32_t {
  kOk = 0,
  // Framing: the byte stream cannot be trusted any more. Fatal: an Error frame, then close.
  kMalformedFrame = 1,    // a body that does not parse, a bad length encoding
  kFrameTooLarge = 2,     // a length above the configured maximum (nothing was allocated)
  kUnknownFrameType = 3,  // a type byte this version does not define
  kUnexpectedFrame = 4,   // a valid frame in the wrong state (data before Hello, second Hello,
                          // a server-only frame sent by a client)
  // Handshake. Fatal.
  kUnsupportedVersion = 10,  // Hello.protocol_version is not 1
  kBadCredentials = 11,      // unknown device id format, wrong or forged token
  kHandshakeTimeout = 12,    // no Hello within the handshake deadline
  kRaceLost = 13,            // Hello.race_id equals the live connection's: another attempt of
                             // the same racing round won this node; the live one is untouched
  // Connection life. Fatal.
  kHeartbeatTimeout = 20,  // nothing received within the announced heartbeat interval + grace
  kSlowConsumer = 21,      // the device did not read; its output queue reached the hard limit
  // Requests. Not fatal: the connection stays open, the request changed nothing.
  kUnknownStream = 30,  // a stream the device may not read, or that does not exist
  kBadRequest = 31,     // a field out of range (e.g. ack beyond the stream head)
  kServerBusy = 32,     // try again later (with backoff)
  kInternal = 33,       // server-side failure; try again later
  kUnknownApp = 34,     // an Upstream for an app the device is not registered for; do not retry
};

// True when the sender of an Error with this code closes the connection right after it.
constexpr bool is_fatal(ErrorCode c) {
  const auto v = static_cast<std::uint32_t>(c);
  return v != 0 && v < 30;
}

// The stable snake_case name of `c` ("frame_too_large"), for logs and metrics labels. A value
// this version does not define (a peer may send any number) is "unknown".
std::string_view to_string(ErrorCode c);

// The category of ErrorCode values ("herald.protocol"); message() is a human-readable sentence.
const boost::system::error_category& protocol_category();

inline boost::system::error_code make_error_code(ErrorCode c) {
  return {static_cast<int>(c), protocol_category()};
}

// The groups of the table above, for callers that react to a kind of failure rather than to one
// code: `if (ec == ErrorCondition::kHandshakeFailed) ...`.
enum class ErrorCondition {
  kProtocolViolation = 1,  // codes 1..4: the byte stream is bad; close
  kHandshakeFailed = 2,    // codes 10..13: the device is not admitted; close
  kConnectionLost = 3,     // codes 20..21: the connection is closed by its own rules
  kRequestRejected = 4,    // codes 30..34: one request failed; the connection stays
};

const boost::system::error_category& protocol_condition_category();

inline boost::system::error_condition make_error_condition(ErrorCondition c) {
  return {static_cast<int>(c), protocol_condition_category()};
}

}  // namespace herald::protocol

template <>
struct boost::system::is_error_code_enum<herald::protocol::ErrorCode> : std::true_type {};

template <>
struct boost::system::is_error_condition_enum<herald::protocol::ErrorCondition> : std::true_type {};
