// Byte-level encodings shared by the stored keys and records (as LevelDB's util/coding.h):
// fixed-width integers are big-endian, so that keys sort bytewise in numeric order, and
// lengths are varint32 (7 bits a byte, low group first, high bit = more follows).
//
// The get_* functions read from the front of `in` and advance it; they return false, leaving
// `in` in an unspecified position, when the bytes are too short or malformed. They never throw.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace herald::storage::detail {

inline constexpr std::size_t kMaxVarint32Bytes = 5;

void put_fixed32(std::string& dst, std::uint32_t value);
void put_fixed64(std::string& dst, std::uint64_t value);
void put_varint32(std::string& dst, std::uint32_t value);
// varint32 length, then the bytes. Precondition: value.size() fits in 32 bits.
void put_length_prefixed(std::string& dst, std::string_view value);

[[nodiscard]] std::uint32_t decode_fixed32(const char* p);
[[nodiscard]] std::uint64_t decode_fixed64(const char* p);

[[nodiscard]] bool get_fixed8(std::string_view& in, std::uint8_t& value);
[[nodiscard]] bool get_fixed32(std::string_view& in, std::uint32_t& value);
[[nodiscard]] bool get_fixed64(std::string_view& in, std::uint64_t& value);
[[nodiscard]] bool get_varint32(std::string_view& in, std::uint32_t& value);
// The varint32 length, then that many bytes (a view into `in`'s buffer).
[[nodiscard]] bool get_length_prefixed(std::string_view& in, std::string_view& value);

}  // namespace herald::storage::detail
