#include "storage/rocksdb/detail/record_codec.h"

#include "storage/rocksdb/detail/coding.h"

namespace herald::storage::detail {

std::string encode_entry_record(const Entry& entry) {
  std::string record;
  record.reserve(kEntryRecordFixedBytes + 4 * kMaxVarint32Bytes + entry.app.size() +
                 entry.message_id.size() + entry.data.size() + entry.audience.size());
  record.push_back(static_cast<char>(kEntryRecordVersion));
  put_fixed64(record, static_cast<std::uint64_t>(entry.expires_at_ms));
  put_fixed64(record, static_cast<std::uint64_t>(entry.sent_at_ms));
  record.push_back(static_cast<char>(entry.kind));
  put_length_prefixed(record, entry.app);
  put_length_prefixed(record, entry.message_id);
  put_length_prefixed(record, entry.data);
  // An optional trailing field: records written before it existed simply end here.
  if (!entry.audience.empty()) put_length_prefixed(record, entry.audience);
  return record;
}

std::optional<Entry> decode_entry_record(std::string_view record) {
  std::string_view in = record;
  std::uint8_t version = 0;
  std::uint64_t expires_at = 0;
  std::uint64_t sent_at = 0;
  std::uint8_t kind = 0;
  std::string_view app;
  std::string_view message_id;
  std::string_view data;
  if (!get_fixed8(in, version) || version != kEntryRecordVersion) return std::nullopt;
  if (!get_fixed64(in, expires_at) || !get_fixed64(in, sent_at) || !get_fixed8(in, kind)) {
    return std::nullopt;
  }
  if (kind > static_cast<std::uint8_t>(DataKind::kRecall)) return std::nullopt;
  std::string_view audience;
  if (!get_length_prefixed(in, app) || !get_length_prefixed(in, message_id) ||
      !get_length_prefixed(in, data)) {
    return std::nullopt;
  }
  if (!in.empty() && (!get_length_prefixed(in, audience) || audience.empty() || !in.empty())) {
    return std::nullopt;
  }
  if (kind == static_cast<std::uint8_t>(DataKind::kTombstone) && !data.empty()) return std::nullopt;
  Entry entry;
  entry.app = app;
  entry.message_id = message_id;
  entry.kind = static_cast<DataKind>(kind);
  entry.data = data;
  entry.audience = audience;
  entry.sent_at_ms = static_cast<std::int64_t>(sent_at);
  entry.expires_at_ms = static_cast<std::int64_t>(expires_at);
  return entry;
}

std::optional<std::int64_t> entry_record_expires_at_ms(std::string_view record) {
  if (record.size() < kEntryRecordFixedBytes ||
      static_cast<std::uint8_t>(record[0]) != kEntryRecordVersion) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(decode_fixed64(record.data() + kExpiresAtOffset));
}

std::string encode_tombstone_record(const Entry& replaced) {
  Entry tombstone;
  tombstone.app = replaced.app;
  tombstone.message_id = replaced.message_id;
  tombstone.kind = DataKind::kTombstone;
  tombstone.sent_at_ms = replaced.sent_at_ms;
  tombstone.expires_at_ms = replaced.expires_at_ms;
  return encode_entry_record(tombstone);
}

}  // namespace herald::storage::detail
