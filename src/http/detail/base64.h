// Base64 (RFC 4648 section 4, the standard alphabet) for binary message payloads in the sender
// API's JSON. Decoding is strict, so that one payload has exactly one accepted spelling: no
// whitespace, no URL-safe characters, padding optional but correct when present, and the unused
// bits of the last character zero.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace herald::http::detail {

// The decoded bytes, or nothing when `text` is not valid base64. Never throws on bad input.
[[nodiscard]] std::optional<std::string> base64_decode(std::string_view text);

// The padded encoding of `bytes`.
[[nodiscard]] std::string base64_encode(std::string_view bytes);

}  // namespace herald::http::detail
