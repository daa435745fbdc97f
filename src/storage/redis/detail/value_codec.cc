#include "storage/redis/detail/value_codec.h"

#include <cctype>
#include <charconv>

namespace herald::storage::redis_detail {
namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xffU));
  }
}

void put_i64(std::string& out, std::int64_t v) {
  const auto u = static_cast<std::uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((u >> shift) & 0xffU));
  }
}

void put_field(std::string& out, std::string_view field) {
  put_u32(out, static_cast<std::uint32_t>(field.size()));
  out.append(field);
}

std::uint64_t get_be(std::string_view in, std::size_t offset, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) {
    v = (v << 8) | static_cast<unsigned char>(in[offset + i]);
  }
  return v;
}

// Reads one length-prefixed field at `offset`, advancing it; nullopt when it runs past the end.
std::optional<std::string_view> get_field(std::string_view in, std::size_t& offset) {
  if (in.size() - offset < 4) return std::nullopt;
  const auto length = static_cast<std::size_t>(get_be(in, offset, 4));
  offset += 4;
  if (in.size() - offset < length) return std::nullopt;
  auto field = in.substr(offset, length);
  offset += length;
  return field;
}

}  // namespace

std::string encode_entry(const Entry& entry, std::string_view collapse_key) {
  std::string out;
  out.reserve(kEntryHeaderBytes + 20 + entry.app.size() + entry.message_id.size() +
              entry.data.size() + entry.audience.size() + collapse_key.size());
  out.push_back(static_cast<char>(kValueVersion));
  out.push_back(static_cast<char>(entry.kind));
  put_i64(out, entry.expires_at_ms);
  put_i64(out, entry.sent_at_ms);
  put_field(out, entry.app);
  put_field(out, entry.message_id);
  put_field(out, entry.data);
  put_field(out, entry.audience);
  put_field(out, collapse_key);
  return out;
}

std::optional<Entry> decode_entry(std::string_view value) {
  if (value.size() < kEntryHeaderBytes || static_cast<unsigned char>(value[0]) != kValueVersion) {
    return std::nullopt;
  }
  const auto kind = static_cast<unsigned char>(value[1]);
  if (kind > static_cast<unsigned char>(DataKind::kRecall)) return std::nullopt;
  Entry entry;
  entry.kind = static_cast<DataKind>(kind);
  entry.expires_at_ms = static_cast<std::int64_t>(get_be(value, 2, 8));
  entry.sent_at_ms = static_cast<std::int64_t>(get_be(value, 10, 8));
  std::size_t offset = kEntryHeaderBytes;
  auto app = get_field(value, offset);
  auto message_id = app ? get_field(value, offset) : std::nullopt;
  auto data = message_id ? get_field(value, offset) : std::nullopt;
  auto audience = data ? get_field(value, offset) : std::nullopt;
  auto collapse_key = audience ? get_field(value, offset) : std::nullopt;
  if (!collapse_key || offset != value.size()) return std::nullopt;
  if (entry.kind == DataKind::kTombstone && (!data->empty() || !audience->empty())) {
    return std::nullopt;
  }
  entry.app = *app;
  entry.message_id = *message_id;
  entry.data = *data;
  entry.audience = *audience;
  return entry;
}

std::string encode_record(std::int64_t expires_at_ms, std::string_view value) {
  std::string out;
  out.reserve(9 + value.size());
  out.push_back(static_cast<char>(kValueVersion));
  put_i64(out, expires_at_ms);
  out.append(value);
  return out;
}

std::optional<Record> decode_record(std::string_view key, std::string_view stored) {
  if (stored.size() < 9 || static_cast<unsigned char>(stored[0]) != kValueVersion) {
    return std::nullopt;
  }
  return Record{std::string(key), std::string(stored.substr(9)),
                static_cast<std::int64_t>(get_be(stored, 1, 8))};
}

std::string encode_cursor(const AckedCursor& cursor) {
  return std::to_string(cursor.epoch) + ' ' + std::to_string(cursor.seq) + ' ' +
         std::to_string(cursor.acked_at_ms);
}

std::optional<AckedCursor> decode_cursor(std::string_view stored) {
  const auto first = stored.find(' ');
  if (first == std::string_view::npos) return std::nullopt;
  const auto second = stored.find(' ', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  auto epoch = parse_u64(stored.substr(0, first));
  auto seq = parse_u64(stored.substr(first + 1, second - first - 1));
  auto acked_at = parse_i64(stored.substr(second + 1));
  if (!epoch || !seq || !acked_at) return std::nullopt;
  return AckedCursor{*epoch, *seq, *acked_at};
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<std::int64_t> parse_i64(std::string_view text) {
  const std::string_view digits = text.starts_with('-') ? text.substr(1) : text;
  // Canonical only: no '+', no leading zero, no "-0" (so that printing it gives the same text).
  if (digits.empty() || !std::isdigit(static_cast<unsigned char>(digits[0])) ||
      (digits.size() > 1 && digits[0] == '0') || (digits != text && digits == "0")) {
    return std::nullopt;
  }
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace herald::storage::redis_detail
