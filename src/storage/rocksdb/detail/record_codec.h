// The stored form of a stream entry: the value under an entry key of stream_entries.
//
//   offset  0     1                9                17
//           +-----+----------------+----------------+------+
//           | ver | expires_at_ms  | sent_at_ms     | kind |
//           | =1  | int64, BE      | int64, BE      |  u8  |
//           +-----+----------------+----------------+------+
//   offset 18
//           +--------+-----+--------+------------+--------+------+
//           | varint | app | varint | message_id | varint | data |
//           | len    |     | len    |            | len    |      |
//           +--------+-----+--------+------------+--------+------+
//
// expires_at_ms sits at a fixed offset so that the TTL compaction filter and reads can test
// expiry without decoding the rest. The sequence number is not stored: it is in the key.
// kind is a DataKind (0 JSON, 1 binary, 2 tombstone, 3 recall); a tombstone has empty data.
// A record is exactly as long as its fields; anything else (short, trailing bytes, unknown
// version or kind, a tombstone with data) is corrupt and decodes to nullopt, never to a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/stream_store.h"

namespace herald::storage::detail {

inline constexpr std::uint8_t kEntryRecordVersion = 1;
inline constexpr std::size_t kExpiresAtOffset = 1;
inline constexpr std::size_t kEntryRecordFixedBytes = 18;  // ver, expires, sent, kind
// Each variable field's length is a varint32.
inline constexpr std::size_t kMaxEntryFieldBytes = 0xffffffffu;

// Precondition: app, message_id and data are each at most kMaxEntryFieldBytes long.
// entry.seq is not encoded.
[[nodiscard]] std::string encode_entry_record(const Entry& entry);

// Fills every field of the entry except seq. nullopt: the record is corrupt.
[[nodiscard]] std::optional<Entry> decode_entry_record(std::string_view record);

// expires_at_ms without decoding the rest; nullopt: too short or an unknown version.
[[nodiscard]] std::optional<std::int64_t> entry_record_expires_at_ms(std::string_view record);

// The record of the tombstone that replaces `replaced` at its seq: the same app, message_id,
// sent_at_ms and expires_at_ms, kind kTombstone, no data.
[[nodiscard]] std::string encode_tombstone_record(const Entry& replaced);

}  // namespace herald::storage::detail
