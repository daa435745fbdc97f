// The signed endpoint list (GET /v1/endpoints, All-IP access): its fields, the canonical bytes its
// Ed25519 signature covers, and the one verification both sides use. docs/endpoints.md is the
// contract; this header is shared by the server, which signs lists (herald_http's
// EndpointSigner), and the client library, which fetches, verifies and caches them, so that the
// two can never disagree on a byte.
//
// The signed bytes (ASCII, every line ends with LF, numbers in decimal without leading zeros or
// signs, endpoints in the order of the list):
//
//   herald-endpoints-v1\n
//   issued_at_ms=<issued_at_ms>\n
//   expires_at_ms=<expires_at_ms>\n
//   key_id=<key_id>\n
//   heartbeat=<start_s> <reports> <network>\n     only when the list carries a heartbeat hint
//   <host> <port> <load> <node>\n                  one line per endpoint
//
// Hosts are IP literals (no brackets), so no endpoint line can start with "heartbeat="; node
// names and the hint's network hold no control character, so none can forge a line; each comes
// last on its line and may hold spaces.
//
// Plain functions and values: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include "protocol/network_id.h"

namespace herald::protocol {

// Load in thousandths: 0 idle, 1000 full (capped there).
using LoadPermille = std::uint32_t;
inline constexpr LoadPermille kFullLoad = 1000;

// The hint's network name: 1..64 bytes without control characters.
inline constexpr std::size_t kMaxHeartbeatNetworkBytes = kMaxNetworkIdBytes;

struct Endpoint {
  std::string host;  // an IP literal (IPv4 dotted quad, IPv6 without brackets)
  std::uint16_t port = 0;
  std::string node;
  LoadPermille load = 0;
};

// What the deployment learned about heartbeats on one network (filled by the server; optional):
// a client on `network` may start its adaptive heartbeat at `start_s` seconds instead of its
// default. `reports` is how many devices' reports the figure rests on.
struct HeartbeatHint {
  std::string network;
  std::uint32_t start_s = 0;
  std::uint32_t reports = 0;
};

struct EndpointList {
  std::vector<Endpoint> endpoints;
  std::int64_t issued_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::string key_id;
  std::optional<HeartbeatHint> heartbeat = std::nullopt;
};

// Why a served list was refused. Every one means "do not use this list": fetch it elsewhere or
// fall back (cached list, embedded endpoints); retrying the same source later may succeed for
// kExpired (a fresher list) and for nothing else until the source changes.
enum class EndpointListError {
  kMalformed = 1,  // not JSON, or a field missing, of the wrong type or out of range
  kBadPublicKey,   // the trusted key given is not base64 of 32 bytes (a configuration error)
  kUnknownKey,     // key_id names another key than the trusted one
  kBadSignature,   // the signature does not match the fields: forged or tampered with
  kExpired,        // genuine, but at or past expires_at_ms
};

[[nodiscard]] const boost::system::error_category& endpoint_list_category() noexcept;
[[nodiscard]] boost::system::error_code make_error_code(EndpointListError e) noexcept;

// True when `text` may stand in the signed bytes as a node name: non-empty, no control character.
[[nodiscard]] bool valid_node_name(std::string_view text);
// True when `text` may stand as a heartbeat hint's network: a valid network id (network_id.h).
[[nodiscard]] bool valid_heartbeat_network(std::string_view text);

// The bytes the signature covers (see the top of this file).
[[nodiscard]] std::string canonical_bytes(const EndpointList& list);

// key_id of a raw public key: lowercase hex of the first 8 bytes of its SHA-256.
[[nodiscard]] std::string endpoint_key_id(std::string_view public_key);

// The raw 32-byte Ed25519 public key of its standard base64 (what clients embed), or nothing
// when `text` is not that.
[[nodiscard]] std::optional<std::string> decode_endpoint_public_key(std::string_view text);

// The list's fields as served, without "signature" (the signer adds it).
[[nodiscard]] boost::json::object endpoint_list_fields(const EndpointList& list);

// What a client does with a served list: reads its fields, checks that key_id names
// `public_key_base64`, rebuilds the canonical bytes, checks the signature, then the expiry at
// `now_ms`, in that order, and answers the list or the first reason to refuse it. Unknown fields
// are ignored (they are not signed). Never throws for any document.
[[nodiscard]] boost::system::result<EndpointList> check_signed_list(
    const boost::json::value& document, std::string_view public_key_base64, std::int64_t now_ms);
// The same for a response body: text that does not parse as JSON is kMalformed.
[[nodiscard]] boost::system::result<EndpointList> check_signed_list(
    std::string_view body, std::string_view public_key_base64, std::int64_t now_ms);

// check_signed_list() without the reason.
[[nodiscard]] std::optional<EndpointList> verify_signed_list(const boost::json::value& document,
                                                             std::string_view public_key_base64,
                                                             std::int64_t now_ms);

}  // namespace herald::protocol

namespace boost::system {
template <>
struct is_error_code_enum<::herald::protocol::EndpointListError> : std::true_type {};
}  // namespace boost::system
