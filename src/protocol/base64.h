// Base64 (RFC 4648 section 4, the standard alphabet), shared by the server's sender API (binary
// message payloads) and the signed endpoint list (keys and signatures, server and client).
// Decoding is strict, so that one byte string has exactly one accepted spelling: no whitespace, no
// URL-safe characters, padding optional but correct when present, and the unused bits of the last
// character zero.
//
// Plain functions: thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace herald::protocol {

// The decoded bytes, or nothing when `text` is not valid base64. Never throws on bad input.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

// The padded encoding of `bytes`.
[[nodiscard]] std::string base64_encode(std::string_view bytes);

}  // namespace herald::protocol
