// Redis Cluster's key-to-slot mapping: CRC16 (XMODEM) of the key, or of its hash tag, modulo
// 16384. A hash tag is the part between the first '{' and the next '}' when that part is not
// empty; keys sharing a tag share a slot, which is what lets one script or transaction touch
// several keys (https://redis.io/docs/reference/cluster-spec/#hash-tags).
#pragma once

#include <cstdint>
#include <string_view>

namespace herald::storage {

inline constexpr std::uint16_t kClusterSlots = 16384;

// The slot of `key`, as every Redis Cluster node computes it.
[[nodiscard]] std::uint16_t key_slot(std::string_view key) noexcept;

}  // namespace herald::storage
