#include "logic/presence_log.h"

#include <charconv>

#include "common/log.h"

namespace herald::logic {

PresenceLog::PresenceLog(storage::StreamStore& streams, storage::RecordStore& records, Clock clock)
    : streams_(streams), records_(records), clock_(std::move(clock)) {}

std::string PresenceLog::record_key(std::string_view device) {
  std::string key = "seen/";
  key.append(device);
  return key;
}

void PresenceLog::seen(std::string_view device) {
  const std::int64_t now_ms = clock_();
  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  batch.sync = false;
  batch.put_records.push_back({record_key(device), std::to_string(now_ms), now_ms + kRetentionMs});
  // The completion runs on the writer's side (no executor of ours is involved); it only logs.
  streams_.async_append(
      std::move(batch),
      [device = std::string(device)](boost::system::error_code ec, storage::AppendOutcome) {
        if (ec) {
          log::warn("presence_write_failed", {{"device", device}, {"error", ec.message()}});
        }
      });
}

boost::system::result<std::optional<std::int64_t>> PresenceLog::last_seen(std::string_view device) {
  auto record = records_.get(record_key(device), clock_());
  if (!record) return record.error();
  if (!*record) return std::optional<std::int64_t>();
  std::int64_t ms = 0;
  const auto& text = (*record)->value;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
  if (ec != std::errc() || end != text.data() + text.size()) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(ms);
}

}  // namespace herald::logic
