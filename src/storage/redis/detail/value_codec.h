// The values the Redis stores keep, shared by the C++ side and the Lua scripts
// (detail/scripts.cc), which read them with struct.unpack. Integers are big-endian; every value
// is exactly as long as its fields, so a short, long or unknown-version value decodes to nullopt
// (the store reports it as corrupt), never to undefined behaviour.
//
//  entry (a field of the stream's entries hash, named by its seq in decimal)
//  offset 0     1      2                10               18
//         +-----+------+----------------+----------------+
//         | ver | kind | expires_at_ms  | sent_at_ms     |   kind: DataKind (2 = tombstone)
//         | =1  |  u8  | int64          | int64          |
//         +-----+------+----------------+----------------+
//  offset 18, five fields, each a u32 length then its bytes:
//         | app | message_id | data | audience | collapse_key |
//  The collapse key is the store's own: trimming an expired entry drops the collapse pointer
//  that still names it. A tombstone keeps app, message_id, times and collapse key, with data and
//  audience empty.
//
//  record (a string key)         | ver=1 | expires_at_ms int64 | value (to the end) |
//  acked cursor (a hash field)   "<epoch> <seq> <acked_at_ms>" in decimal (the scripts compare
//                                 seqs as decimal strings, exact beyond 2^53)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/device_store.h"
#include "storage/record_store.h"
#include "storage/stream_store.h"

namespace herald::storage::redis_detail {

inline constexpr std::uint8_t kValueVersion = 1;
inline constexpr std::size_t kEntryHeaderBytes = 18;
// Each variable field of an entry: at most this many bytes (the u32 length bounds it anyway;
// Redis bounds a whole value to 512 MB).
inline constexpr std::size_t kMaxEntryFieldBytes = 64 * 1024 * 1024;

// The stored entry; entry.seq is not stored (it names the hash field).
[[nodiscard]] std::string encode_entry(const Entry& entry, std::string_view collapse_key);
// nullopt: not an entry of this format. The result's seq is 0.
[[nodiscard]] std::optional<Entry> decode_entry(std::string_view value);

[[nodiscard]] std::string encode_record(std::int64_t expires_at_ms, std::string_view value);
[[nodiscard]] std::optional<Record> decode_record(std::string_view key, std::string_view stored);

[[nodiscard]] std::string encode_cursor(const AckedCursor& cursor);
[[nodiscard]] std::optional<AckedCursor> decode_cursor(std::string_view stored);

// The strict inverses of std::to_string for 64-bit integers: canonical decimal text only (no
// '+', no leading zero, no "-0", no overflow), so that printing the number gives the text back.
[[nodiscard]] std::optional<std::uint64_t> parse_u64(std::string_view text);
[[nodiscard]] std::optional<std::int64_t> parse_i64(std::string_view text);

}  // namespace herald::storage::redis_detail
