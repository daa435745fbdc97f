// MessageTracker: what became of each message at each target — the data behind
// GET /v1/apps/{app}/messages/{id} — and the revoke / recall of a message.
//
// Records (RecordStore keys; every one expires kRetentionMs after the message itself):
//   msg/<app>/<id>                     the message (TrackedMessage, as JSON): created, expires,
//                                      its target devices, the ones dropped and why, and for a
//                                      scheduled message its send time and phase (scheduled,
//                                      cancelled, sent). Written in the same atomic, synced batch
//                                      as its inbox entries (or, scheduled, as its sched/ record:
//                                      message_scheduler.h), so a message the API accepted always
//                                      has its record.
//   mst/<app>/<id>/<device>/<stage>    when a stage was reached, per target, one key per stage so
//                                      that no write reads another: s (stored: "epoch:seq:ms"),
//                                      n (notified), d (delivered, the last time it was sent to
//                                      the device), a (acked), r (revoked), c (recalled). Written
//                                      with sync = false: status, not data (a machine crash may
//                                      lose the last few; a revoke then finds the entry by id).
//
// Thread-safe; owns nothing it is given.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
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

// A target the message was not stored for, and why (TargetState.dropped_reason in the API):
//   "offline"       ttl 0 and the device was not connected when it was sent;
//   "unregistered"  a scheduled message whose device was unregistered before it was due;
//   "expired"       a scheduled message sent after its TTL (which counts from send_at_ms) ran
//                   out, because the server was down when it was due;
//   "rejected"      a scheduled message that no longer passed validation when it was due (its
//                   app gone, the limits lowered since it was accepted).
struct DroppedTarget {
  std::string device;
  std::string reason;

  friend bool operator==(const DroppedTarget&, const DroppedTarget&) = default;
};

// Who a message for a shared stream (a topic, a condition, a broadcast) was for.
struct TrackedAudience {
  enum class Kind { kTopic, kCondition, kBroadcast };
  Kind kind = Kind::kTopic;
  std::string text;          // the topic, or the condition as the sender wrote it
  std::string stream_key;    // where its one entry is stored
  std::uint64_t stream = 0;  // that stream's id in the protocol (0 in records older than it)

  friend bool operator==(const TrackedAudience&, const TrackedAudience&) = default;
};

// What the message record msg/<app>/<id> holds.
struct TrackedMessage {
  enum class Phase {
    kSent,       // stored in its targets' inboxes (or dropped for every one)
    kScheduled,  // waiting for send_at_ms in the scheduler (message_scheduler.h)
    kCancelled,  // was scheduled, cancelled before it was sent: never stored in an inbox
  };
  Phase phase = Phase::kSent;
  // kSent: the targets that got an inbox entry. kScheduled / kCancelled: every target, as
  // accepted (an alias resolved).
  std::vector<std::string> devices;
  std::vector<DroppedTarget> dropped;  // kSent only
  std::int64_t created_at_ms = 0;      // accepted
  std::int64_t expires_at_ms = 0;      // the entries' expiry (a scheduled one's: send_at + TTL)
  std::int64_t send_at_ms = 0;         // a scheduled message's send time; 0 = sent when accepted
  std::int64_t cancelled_at_ms = 0;    // kCancelled
  std::int64_t revoked_at_ms = 0;      // 0 = not revoked
  // Set for a message stored once in a shared stream; `devices` is then empty.
  std::optional<TrackedAudience> audience;
};

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

  // The message record, for the batch that stores the message's entries (or schedules it, or
  // cancels it). It expires kRetentionMs after message.expires_at_ms.
  [[nodiscard]] static storage::Record message_record(std::string_view app, std::string_view id,
                                                      const TrackedMessage& message);
  // The message record as stored. Errors: kUnknownMessage (none, or expired), kStorageFailed
  // (a read error, or a record that does not parse).
  [[nodiscard]] boost::system::result<TrackedMessage> message(std::string_view app,
                                                              std::string_view id);
  // After the entries are stored (and notifies handed out): the stored and notified stages,
  // queued to the writer (unsynced) before this returns, without waiting for them: the send's
  // answer does not wait for a second write. async_status() passes a writer barrier, so a
  // status read after the answer still sees them.
  void stored(std::string_view app, std::string_view id, std::int64_t expires_at_ms,
              const std::vector<TrackedTarget>& targets);
  // A pull answered these entries to `device` (tombstones and recalls are skipped).
  void delivered(std::string_view device, const std::vector<storage::Entry>& entries);

  // Shared streams (topics, conditions, broadcasts) keep no record per device: a message stored
  // once has counters, kept in memory and written to its count record msc/<app>/<id> by
  // flush_counts(); its position goes to msp/<app>/<id> (stored_shared), its audience's size to
  // mtg/<app>/<id> (targeted). Records unsynced, expiring with the message record.
  //   delivered: entries a pull answered (a device that pulls the same entry again before its
  //              ack moves, after a lost answer, counts twice);
  //   acked:     entries acks covered, each device once (its acked cursor moves forward only;
  //              an ack that comes before the previous one was written may count again);
  //   expired:   once the message expired, targeted - acked (floored at 0).
  void stored_shared(std::string_view app, std::string_view id, std::int64_t expires_at_ms,
                     std::uint64_t epoch, std::uint64_t seq);
  void targeted(std::string_view app, std::string_view id, std::int64_t expires_at_ms,
                std::uint64_t count);
  void delivered_shared(const std::vector<storage::Entry>& entries);
  // Where a shared message's entry is: its msp/ record (stored_shared, or rewritten synced by a
  // revoke). nullopt when there is none (lost, or expired).
  struct SharedPosition {
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;
  };
  [[nodiscard]] std::optional<SharedPosition> shared_position(std::string_view app,
                                                              std::string_view id);
  // A device's ack of a shared stream: its cursor (as acked()) and the counts of the messages
  // it covers (the entries meant for it).
  void acked_shared(storage::AckUpdate ack, const std::vector<storage::Entry>& entries);
  // Writes the counts changed since the last call (one unsynced write), forgets those of
  // messages past their retention, and logs how many status writes the storage refused since
  // (one line, not one per write). Called periodically, and by async_status so that a status
  // shows every count gathered so far; cheap when nothing changed.
  void flush_counts();
  // A collapse key replaced this (now tombstoned) entry of `device`.
  void replaced(std::string_view device, const storage::Entry& tombstone);
  // `ack.device` acked up to `ack.cursor`, covering these entries: the device's cursor and the
  // acked stage of each entry's message, one unsynced write queued to the writer (the caller's
  // thread never waits on storage for an ack).
  void acked(storage::AckUpdate ack, const std::vector<storage::Entry>& entries);

  // The JSON answer of GET .../messages/{id} (MessageStatus in docs/api/openapi.yaml). A
  // scheduled or cancelled message shows every target in that state; a sent one each target's
  // stages, then its dropped targets. Errors: kUnknownMessage, kStorageFailed.
  [[nodiscard]] boost::system::result<boost::json::object> status(std::string_view app,
                                                                  std::string_view id);
  // status() once every stage record queued before the call is written (a writer barrier).
  boost::asio::awaitable<boost::system::result<boost::json::object>> async_status(std::string app,
                                                                                  std::string id);

  // Revokes the message at every target: a live inbox entry becomes a tombstone; where it may
  // have been delivered (sent in a pull, or the device is online now, so a pull may be under
  // way) a recall entry follows it, which the client library hands to the app. One atomic,
  // synced write. Answers the status afterwards. For a message that was sent (a scheduled one
  // is cancelled by MessageScheduler::async_cancel instead). Errors: kUnknownMessage, kBusy,
  // kStorageFailed.
  //
  // A shared message (topic, condition, broadcast) is one entry: it becomes a tombstone and,
  // unless it expired, a recall with the same audience follows it in the same stream, notified
  // at high priority. A pull hands that recall only to a device whose cursor had passed the
  // message (MessageService::pull_shared); the others see two tombstones.
  boost::asio::awaitable<boost::system::result<boost::json::object>> async_revoke(
      std::string app, std::string id, std::string recall_id);

  [[nodiscard]] static std::string message_key(std::string_view app, std::string_view id);

 private:
  struct Stages;
  [[nodiscard]] boost::system::result<std::vector<Stages>> read_stages(
      std::string_view app, std::string_view id, const std::vector<std::string>& devices);
  // Queues stage records (and acked cursors) to the writer unsynced, without waiting; a failure
  // is logged (status is bookkeeping).
  void write_unsynced(std::vector<storage::Record> records,
                      std::vector<storage::AckUpdate> acks = {});

  // A shared message's counts in this process (started from the stored ones).
  struct Counts {
    std::uint64_t delivered = 0;
    std::uint64_t acked = 0;
    std::int64_t expires_at_ms = 0;
    bool dirty = false;  // changed since the last flush
  };
  // The message's counts, loaded on first use. Holds counts_mu_.
  Counts& counts_of(const storage::Entry& e);
  boost::asio::awaitable<boost::system::result<boost::json::object>> async_revoke_shared(
      std::string app, std::string id, TrackedMessage tracked, std::string recall_id,
      std::int64_t now_ms);
  // The shared message's entry, found by its position or, that record lost, among the last
  // kFindSeqLimit entries of its stream; nullopt when it is not there any more.
  struct SharedEntry {
    std::uint64_t epoch = 0;
    storage::Entry entry;
  };
  [[nodiscard]] boost::system::result<std::optional<SharedEntry>> find_shared(
      std::string_view app, std::string_view id, const TrackedAudience& audience,
      std::int64_t now_ms);
  [[nodiscard]] boost::system::result<boost::json::object> shared_status(std::string_view app,
                                                                         std::string_view id,
                                                                         const TrackedMessage& m);

  // Unsynced writes the storage refused (its writer's queue full) since the last flush_counts(),
  // which logs them as one line rather than one per write.
  std::atomic<std::uint64_t> dropped_writes_{0};
  std::mutex counts_mu_;
  std::map<std::pair<std::string, std::string>, Counts> counts_;  // by (app, id)
  storage::StreamStore& streams_;
  storage::RecordStore& records_;
  storage::DeviceStore& devices_;
  distribution::Router& router_;
  Clock clock_;
};

}  // namespace herald::logic
