// DeviceTokenAuthority: mints and verifies the credentials a device presents in its Hello.
//
//   token = "v1." <issued_at_s> "." base64url(HMAC-SHA256(secret, "v1|" device "|" issued_at_s))
//
// The server needs no per-device state to verify a token; rotating the secret invalidates every
// token. Thread-safe (immutable after construction).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald::logic {

class DeviceTokenAuthority {
 public:
  // `secret` must be at least 32 bytes; `max_age_s` = 0 means tokens do not expire.
  DeviceTokenAuthority(std::string secret, std::int64_t max_age_s);

  [[nodiscard]] std::string mint(std::string_view device, std::int64_t now_s) const;
  // True when `token` was minted for `device` with this secret and has not expired.
  [[nodiscard]] bool verify(std::string_view device, std::string_view token,
                            std::int64_t now_s) const;

  // The rule for device ids: 1..128 bytes of [A-Za-z0-9._:-].
  [[nodiscard]] static bool valid_device_id(std::string_view device);

 private:
  std::string secret_;
  std::int64_t max_age_s_;
};

}  // namespace herald::logic
