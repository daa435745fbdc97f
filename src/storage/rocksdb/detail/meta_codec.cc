#include "storage/rocksdb/detail/meta_codec.h"

#include "storage/rocksdb/detail/coding.h"

namespace herald::storage::detail {
namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kRunningFlag = 1u << 0;
constexpr std::uint8_t kFastRunFlag = 1u << 1;
constexpr std::uint8_t kKnownFlags = kRunningFlag | kFastRunFlag;

bool get_version(std::string_view& in) {
  std::uint8_t version = 0;
  return get_fixed8(in, version) && version == kVersion;
}

}  // namespace

std::uint64_t effective_epoch(std::uint32_t generation, std::uint32_t stream_epoch32) {
  return (std::uint64_t{generation} << 32) | stream_epoch32;
}

std::string encode_stream_meta(const StreamMeta& meta) {
  std::string value;
  value.push_back(static_cast<char>(kVersion));
  put_fixed32(value, meta.stream_epoch32);
  put_fixed64(value, meta.head_seq);
  return value;
}

std::optional<StreamMeta> decode_stream_meta(std::string_view value) {
  StreamMeta meta;
  if (!get_version(value) || !get_fixed32(value, meta.stream_epoch32) ||
      !get_fixed64(value, meta.head_seq) || !value.empty()) {
    return std::nullopt;
  }
  // A written stream always has a non-zero epoch; a zero one would read as "never written".
  if (meta.stream_epoch32 == 0) return std::nullopt;
  return meta;
}

std::string encode_database_state(const DatabaseState& state) {
  std::string value;
  value.push_back(static_cast<char>(kVersion));
  put_fixed32(value, state.generation);
  std::uint8_t flags = 0;
  if (state.running) flags |= kRunningFlag;
  if (state.fast_run) flags |= kFastRunFlag;
  value.push_back(static_cast<char>(flags));
  put_length_prefixed(value, state.boot_id);
  return value;
}

std::optional<DatabaseState> decode_database_state(std::string_view value) {
  DatabaseState state;
  std::uint8_t flags = 0;
  std::string_view boot_id;
  if (!get_version(value) || !get_fixed32(value, state.generation) || !get_fixed8(value, flags) ||
      (flags & ~kKnownFlags) != 0 || !get_length_prefixed(value, boot_id) || !value.empty()) {
    return std::nullopt;
  }
  state.running = (flags & kRunningFlag) != 0;
  state.fast_run = (flags & kFastRunFlag) != 0;
  state.boot_id = boot_id;
  return state;
}

std::string encode_registration(std::int64_t registered_at_ms) {
  std::string value;
  value.push_back(static_cast<char>(kVersion));
  put_fixed64(value, static_cast<std::uint64_t>(registered_at_ms));
  return value;
}

std::optional<std::int64_t> decode_registration(std::string_view value) {
  std::uint64_t registered_at = 0;
  if (!get_version(value) || !get_fixed64(value, registered_at) || !value.empty()) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(registered_at);
}

std::string encode_acked_cursor(const AckedCursor& cursor) {
  std::string value;
  value.push_back(static_cast<char>(kVersion));
  put_fixed64(value, cursor.epoch);
  put_fixed64(value, cursor.seq);
  put_fixed64(value, static_cast<std::uint64_t>(cursor.acked_at_ms));
  return value;
}

std::optional<AckedCursor> decode_acked_cursor(std::string_view value) {
  AckedCursor cursor;
  std::uint64_t acked_at = 0;
  if (!get_version(value) || !get_fixed64(value, cursor.epoch) || !get_fixed64(value, cursor.seq) ||
      !get_fixed64(value, acked_at) || !value.empty()) {
    return std::nullopt;
  }
  cursor.acked_at_ms = static_cast<std::int64_t>(acked_at);
  return cursor;
}

std::string encode_collapse_pointer(const CollapsePointer& pointer) {
  std::string value;
  value.push_back(static_cast<char>(kVersion));
  put_fixed64(value, static_cast<std::uint64_t>(pointer.expires_at_ms));
  put_fixed64(value, pointer.seq);
  put_length_prefixed(value, pointer.message_id);
  return value;
}

std::optional<CollapsePointer> decode_collapse_pointer(std::string_view value) {
  CollapsePointer pointer;
  std::uint64_t expires_at = 0;
  std::string_view message_id;
  if (!get_version(value) || !get_fixed64(value, expires_at) || !get_fixed64(value, pointer.seq) ||
      !get_length_prefixed(value, message_id) || !value.empty()) {
    return std::nullopt;
  }
  pointer.expires_at_ms = static_cast<std::int64_t>(expires_at);
  pointer.message_id = message_id;
  return pointer;
}

std::optional<std::int64_t> collapse_pointer_expires_at_ms(std::string_view value) {
  std::uint64_t expires_at = 0;
  if (!get_version(value) || !get_fixed64(value, expires_at)) return std::nullopt;
  return static_cast<std::int64_t>(expires_at);
}

}  // namespace herald::storage::detail
