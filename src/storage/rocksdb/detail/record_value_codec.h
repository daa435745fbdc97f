// The stored form of a control-plane record (RecordStore): the value under a key of the records
// column family. The key is the record's key itself, bare, so that a prefix of record keys is a
// prefix of stored keys and RecordStore::scan is one Seek.
//
//   offset  0     1                9
//           +-----+----------------+--------------------------+
//           | ver | expires_at_ms  | value (to the end)       |
//           | =1  | int64, BE      |                          |
//           +-----+----------------+--------------------------+
//
// expires_at_ms sits at offset 1, as in the entry record, so that the TTL compaction filter reads
// it without decoding the rest; 0 means the record never expires. A value shorter than the
// header or of an unknown version is corrupt and decodes to nullopt, never to a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/record_store.h"

namespace herald::storage::detail {

inline constexpr std::uint8_t kRecordValueVersion = 1;
inline constexpr std::size_t kRecordValueHeaderBytes = 9;  // ver, expires_at_ms

[[nodiscard]] std::string encode_record_value(std::int64_t expires_at_ms, std::string_view value);

// The record stored under `key`. nullopt: the stored value is corrupt.
[[nodiscard]] std::optional<Record> decode_record_value(std::string_view key,
                                                        std::string_view stored);

// When the TTL compaction filter may drop the stored record: its expires_at_ms; nullopt when it
// never expires (expires_at_ms == 0) or is too short or of an unknown version to tell (kept, so
// that reads report the damage).
[[nodiscard]] std::optional<std::int64_t> record_value_drop_at_ms(std::string_view stored);

}  // namespace herald::storage::detail
