// Network ids: how an app names the network a device is on (Client::set_network), as sent in
// Hello.network and asked about in GET /v1/endpoints?network=. The server learns a starting
// heartbeat interval per id (docs/protocol.md section 4); ids are compared byte for byte, so the
// app decides how specific one is ("carrier:310-260", "wifi:<hash of the BSSID>").
//
// An id is at most kMaxNetworkIdBytes bytes with no control character (below 0x20, or 0x7f), so
// that it can stand on one line of a signed endpoint list and in a log line. Empty means "not
// said". Shared by the client, the access layer and the endpoint list, so that all three agree.
#pragma once

#include <cstddef>
#include <string_view>

namespace herald::protocol {

inline constexpr std::size_t kMaxNetworkIdBytes = 64;

// True when `id` may be reported and asked about: 1..kMaxNetworkIdBytes bytes, no control
// character.
[[nodiscard]] constexpr bool valid_network_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxNetworkIdBytes) return false;
  for (const char c : id) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return false;
  }
  return true;
}

}  // namespace herald::protocol
