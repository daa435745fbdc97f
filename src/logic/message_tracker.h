// MessageTracker: what became of each message at each target — the data behind
// GET /v1/apps/{app}/messages/{id} — and the revoke / recall of a message.
//
// Records (RecordStore keys; every one expires kRetentionMs after the message itself):
//   msg/<app>/<id>                     the message: created, expires, its target devices. Written
//                                      in the same atomic, synced batch as its inbox entries, so a
//                                      message the API accepted always has its record.
//   mst/<app>/<id>/<device>/<stage>    when a stage was reached, per target, one key per stage so
//                                      that no write reads another: s (stored: "epoch:seq:ms"),
//                                      n (notified), d (delivered, the last time it was sent to
//                                      the device), a (acked), r (revoked), c (recalled). Written
//                                      with sync = false: status, not data (a machine crash may
//                                      lose the last few; a revoke then finds the entry by id).
//
// Thread-safe; owns nothing it is given.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include "distribution/router.h"
#include "logic/clock.h"
#include "logic/logic_error.h"
#include "storage/device_store.h"
#include "storage/record_store.h"
#include "storage/stream_store.h"

namespace herald::logic {

struct TrackedTarget {
  std::string device;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  bool notified = false;
};

class MessageTracker {
 public:
  static constexpr std::int64_t kRetentionMs = 7LL * 24 * 3600 * 1000;

  MessageTracker(storage::StreamStore& streams, storage::RecordStore& records,
                 storage::DeviceStore& devices, distribution::Router& router, Clock clock);

  // The message record, for the batch that stores the message's entries.
  [[nodiscard]] storage::Record message_record(std::string_view app, std::string_view id,
                                               const std::vector<std::string>& devices,
                                               std::int64_t created_at_ms,
                                               std::int64_t expires_at_ms) const;
  // After the entries are stored (and notifies handed out): the stored and notified stages.
  // Completes once they are written (not fsynced), so a status read after the send's answer
  // sees them.
  boost::asio::awaitable<void> async_stored(std::string app, std::string id,
                                            std::int64_t expires_at_ms,
                                            std::vector<TrackedTarget> targets);
  // A pull answered these entries to `device` (tombstones and recalls are skipped).
  void delivered(std::string_view device, const std::vector<storage::Entry>& entries);
  // A collapse key replaced this (now tombstoned) entry of `device`.
  void replaced(std::string_view device, const storage::Entry& tombstone);
  // `device` acked these entries.
  void acked(std::string_view device, const std::vector<storage::Entry>& entries);

  // The JSON answer of GET .../messages/{id}. Errors: kUnknownMessage, kStorageFailed.
  [[nodiscard]] boost::system::result<boost::json::object> status(std::string_view app,
                                                                  std::string_view id);

  // Revokes the message at every target: a live inbox entry becomes a tombstone; where it may
  // have been delivered (sent in a pull, or the device is online now, so a pull may be under
  // way) a recall entry follows it, which the client library hands to the app. One atomic,
  // synced write. Answers the status afterwards. Errors: kUnknownMessage, kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<boost::json::object>> async_revoke(
      std::string app, std::string id, std::string recall_id);

  [[nodiscard]] static std::string message_key(std::string_view app, std::string_view id);

 private:
  struct Stages;
  [[nodiscard]] boost::system::result<std::vector<Stages>> read_stages(
      std::string_view app, std::string_view id, const std::vector<std::string>& devices);
  void write_unsynced(std::vector<storage::Record> records);

  storage::StreamStore& streams_;
  storage::RecordStore& records_;
  storage::DeviceStore& devices_;
  distribution::Router& router_;
  Clock clock_;
};

}  // namespace herald::logic
