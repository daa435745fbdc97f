#include "storage/rocksdb/detail/coding.h"

namespace herald::storage::detail {

void put_fixed32(std::string& dst, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    dst.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

void put_fixed64(std::string& dst, std::uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    dst.push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

void put_varint32(std::string& dst, std::uint32_t value) {
  while (value >= 0x80) {
    dst.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  dst.push_back(static_cast<char>(value));
}

void put_length_prefixed(std::string& dst, std::string_view value) {
  put_varint32(dst, static_cast<std::uint32_t>(value.size()));
  dst.append(value);
}

std::uint32_t decode_fixed32(const char* p) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

std::uint64_t decode_fixed64(const char* p) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

bool get_fixed8(std::string_view& in, std::uint8_t& value) {
  if (in.empty()) return false;
  value = static_cast<std::uint8_t>(in.front());
  in.remove_prefix(1);
  return true;
}

bool get_fixed32(std::string_view& in, std::uint32_t& value) {
  if (in.size() < 4) return false;
  value = decode_fixed32(in.data());
  in.remove_prefix(4);
  return true;
}

bool get_fixed64(std::string_view& in, std::uint64_t& value) {
  if (in.size() < 8) return false;
  value = decode_fixed64(in.data());
  in.remove_prefix(8);
  return true;
}

bool get_varint32(std::string_view& in, std::uint32_t& value) {
  std::uint32_t result = 0;
  for (std::size_t i = 0; i < kMaxVarint32Bytes && i < in.size(); ++i) {
    const auto byte = static_cast<std::uint32_t>(static_cast<unsigned char>(in[i]));
    // The fifth byte may carry only the top 4 bits of a 32-bit value.
    if (i == kMaxVarint32Bytes - 1 && byte > 0x0f) return false;
    result |= (byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      value = result;
      in.remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

bool get_length_prefixed(std::string_view& in, std::string_view& value) {
  std::uint32_t size = 0;
  if (!get_varint32(in, size) || in.size() < size) return false;
  value = in.substr(0, size);
  in.remove_prefix(size);
  return true;
}

}  // namespace herald::storage::detail
