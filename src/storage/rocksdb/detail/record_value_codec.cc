#include "storage/rocksdb/detail/record_value_codec.h"

#include "storage/rocksdb/detail/coding.h"

namespace herald::storage::detail {

std::string encode_record_value(std::int64_t expires_at_ms, std::string_view value) {
  std::string stored;
  stored.reserve(kRecordValueHeaderBytes + value.size());
  stored.push_back(static_cast<char>(kRecordValueVersion));
  put_fixed64(stored, static_cast<std::uint64_t>(expires_at_ms));
  stored.append(value);
  return stored;
}

std::optional<Record> decode_record_value(std::string_view key, std::string_view stored) {
  std::uint8_t version = 0;
  std::uint64_t expires_at = 0;
  if (!get_fixed8(stored, version) || version != kRecordValueVersion ||
      !get_fixed64(stored, expires_at)) {
    return std::nullopt;
  }
  return Record{std::string(key), std::string(stored), static_cast<std::int64_t>(expires_at)};
}

std::optional<std::int64_t> record_value_drop_at_ms(std::string_view stored) {
  if (stored.size() < kRecordValueHeaderBytes ||
      static_cast<std::uint8_t>(stored[0]) != kRecordValueVersion) {
    return std::nullopt;
  }
  const auto expires_at_ms = static_cast<std::int64_t>(decode_fixed64(stored.data() + 1));
  if (expires_at_ms == 0) return std::nullopt;
  return expires_at_ms;
}

}  // namespace herald::storage::detail
