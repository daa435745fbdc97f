// The small records: a stream's meta, the database-wide state, a registration, an acked cursor
// and a collapse pointer. Each starts with a version byte; integers are big-endian. A record of
// the wrong length or an unknown version decodes to nullopt (corrupt), never to a crash.
//
//   stream_meta value     | ver=1 | stream_epoch32 u32 | head_seq u64 |            13 bytes
//   default "state"       | ver=1 | generation u32 | flags u8 | varint len | boot id |
//                           flags: bit 0 = running (no clean shutdown recorded yet),
//                                  bit 1 = that run used Durability::kFast
//   app_devices value     | ver=1 | registered_at_ms i64 |                           9 bytes
//   device_apps value     | ver=1 | registered_at_ms i64 |                           9 bytes
//   acked_cursors value   | ver=1 | epoch u64 | seq u64 | acked_at_ms i64 |        25 bytes
//   collapse_keys value   | ver=1 | expires_at_ms i64 | seq u64 | varint len | message_id |
//                           expires_at_ms is the entry's, at offset 1 as in the entry record,
//                           so that the same TTL rule drops the pointer with its entry
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/device_store.h"

namespace herald::storage::detail {

// What a stream's meta stores. The effective epoch is (generation << 32) | stream_epoch32;
// stream_epoch32 == 0 means the stream was never written.
struct StreamMeta {
  std::uint32_t stream_epoch32 = 0;
  std::uint64_t head_seq = 0;

  friend bool operator==(const StreamMeta&, const StreamMeta&) = default;
};

struct DatabaseState {
  std::uint32_t generation = 0;
  bool running = false;
  bool fast_run = false;
  std::string boot_id{};
};

// Where the latest entry appended to a stream with a given collapse key is (collapse_keys).
struct CollapsePointer {
  std::uint64_t seq = 0;
  std::string message_id{};
  std::int64_t expires_at_ms = 0;  // the entry's; the pointer is dead with it

  friend bool operator==(const CollapsePointer&, const CollapsePointer&) = default;
};

[[nodiscard]] std::uint64_t effective_epoch(std::uint32_t generation, std::uint32_t stream_epoch32);

[[nodiscard]] std::string encode_stream_meta(const StreamMeta& meta);
[[nodiscard]] std::optional<StreamMeta> decode_stream_meta(std::string_view value);

// Precondition: boot_id is at most 255 bytes (a boot id is 36).
[[nodiscard]] std::string encode_database_state(const DatabaseState& state);
[[nodiscard]] std::optional<DatabaseState> decode_database_state(std::string_view value);

[[nodiscard]] std::string encode_registration(std::int64_t registered_at_ms);
[[nodiscard]] std::optional<std::int64_t> decode_registration(std::string_view value);

[[nodiscard]] std::string encode_acked_cursor(const AckedCursor& cursor);
[[nodiscard]] std::optional<AckedCursor> decode_acked_cursor(std::string_view value);

// Precondition: message_id fits a varint32 length.
[[nodiscard]] std::string encode_collapse_pointer(const CollapsePointer& pointer);
[[nodiscard]] std::optional<CollapsePointer> decode_collapse_pointer(std::string_view value);
// expires_at_ms without decoding the rest, for the TTL compaction filter; nullopt: too short or
// of an unknown version.
[[nodiscard]] std::optional<std::int64_t> collapse_pointer_expires_at_ms(std::string_view value);

}  // namespace herald::storage::detail
