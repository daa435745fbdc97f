// PresenceLog: when each device was last seen, for device lookups ("last_seen_ms"). A device is
// seen when it connects and when its connection ends; while it is online, lookups answer "now".
//
// Written as records ("seen/<device>", the Unix ms as decimal text) with sync = false: a
// last-seen time is status, not data, so it costs no fsync and may lose its last update on a
// machine crash (never on a process crash). Records expire after kRetention.
//
// Thread-safe. Owns nothing it is given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/system/result.hpp>

#include "logic/message_service.h"
#include "storage/record_store.h"
#include "storage/stream_store.h"

namespace herald::logic {

class PresenceLog {
 public:
  static constexpr std::int64_t kRetentionMs = 90LL * 24 * 3600 * 1000;

  PresenceLog(storage::StreamStore& streams, storage::RecordStore& records, Clock clock);

  // Records that `device` was seen now. Never blocks and never fails the caller: the write
  // completes in the background (a failure is logged).
  void seen(std::string_view device);
  // When `device` was last seen, if ever (within the retention).
  [[nodiscard]] boost::system::result<std::optional<std::int64_t>> last_seen(
      std::string_view device);

  [[nodiscard]] static std::string record_key(std::string_view device);

 private:
  storage::StreamStore& streams_;
  storage::RecordStore& records_;
  Clock clock_;
};

}  // namespace herald::logic
