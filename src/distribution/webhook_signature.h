// How a webhook request proves it comes from Herald: an HMAC-SHA256, keyed with the app's webhook
// secret, over the request's timestamp and body, sent as
//
//   Herald-Signature: t=<unix seconds>,v1=<64 lowercase hex digits>
//                       \_____________/     \__________________________________________/
//                            t              HMAC-SHA256(secret, "<t>" + "." + <raw body bytes>)
//
// A backend recomputes the MAC over the raw body it received (before parsing it), compares in
// constant time, and refuses timestamps too far from its clock (five minutes is usual) so that a
// captured request cannot be replayed later. A future scheme is added as v2=..., beside v1, so
// backends can move over without a flag day. docs/upstream.md has a verification example.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald::distribution {

inline constexpr std::string_view kWebhookSignatureHeader = "Herald-Signature";

// The lowercase hex HMAC-SHA256 of "<unix_s>.<body>" keyed with `secret`.
[[nodiscard]] std::string webhook_mac_hex(std::string_view secret, std::int64_t unix_s,
                                          std::string_view body);

// The Herald-Signature header value for `body` sent at `unix_s`: "t=<unix_s>,v1=<mac hex>".
[[nodiscard]] std::string webhook_signature(std::string_view secret, std::int64_t unix_s,
                                            std::string_view body);

}  // namespace herald::distribution
