// Keys of the column families (layout drawn in docs/storage.md).
//
// A stream's entries live under one prefix, the varint32 length of the stream key followed by
// the key itself; the big-endian sequence number follows, so a stream's entries are contiguous
// and in sequence order under RocksDB's bytewise comparator, and no stream's prefix is the
// prefix of another's (the length comes first):
//
//   stream_entries:  +------------+-------------+---------------------+
//                    | len varint | stream key  | seq, 8 bytes, BE    |
//                    +------------+-------------+---------------------+
//
// The two-part keys of the device column families use the same shape, with a second name in
// place of the sequence number: app_devices = lp(app) device, device_apps = lp(device) app,
// acked_cursors = lp(device) stream. stream_meta is keyed by the bare stream key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace herald::storage::detail {

inline constexpr std::size_t kSeqBytes = 8;

// lp(stream): the prefix every entry key of `stream` starts with.
[[nodiscard]] std::string stream_prefix(std::string_view stream);

[[nodiscard]] std::string entry_key(std::string_view stream, std::uint64_t seq);

// `prefix` followed by the big-endian `seq`.
[[nodiscard]] std::string entry_key_from_prefix(std::string_view prefix, std::uint64_t seq);

// The sequence number of an entry key that starts with `prefix`; nullopt when the key does not
// have the shape prefix + 8 bytes.
[[nodiscard]] std::optional<std::uint64_t> entry_key_seq(std::string_view key,
                                                         std::string_view prefix);

// lp(first) second.
[[nodiscard]] std::string pair_key(std::string_view first, std::string_view second);

// lp(first): the prefix of every pair key whose first part is `first`.
[[nodiscard]] std::string pair_key_prefix(std::string_view first);

// The part of a pair key after `prefix` (= lp(first)); nullopt when `key` does not start with it.
[[nodiscard]] std::optional<std::string_view> pair_key_second(std::string_view key,
                                                              std::string_view prefix);

// The smallest key greater than every key that starts with `prefix`; empty if none exists
// (prefix is all 0xff), meaning "no upper bound".
[[nodiscard]] std::string prefix_successor(std::string_view prefix);

}  // namespace herald::storage::detail
