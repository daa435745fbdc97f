// MessageService: the logic layer's core. Accepts messages from senders (validate, append to each
// target's inbox durably, then notify), and serves devices' pulls and acks.
//
// Owns nothing it is given: the stores and the router outlive it. Thread-safe: every member may be
// called from any event loop thread concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/system/result.hpp>

#include "distribution/router.h"
#include "logic/app_registry.h"
#include "logic/clock.h"
#include "logic/logic_error.h"
#include "logic/message_id.h"
#include "logic/message_tracker.h"
#include "logic/topic_condition.h"
#include "logic/topic_service.h"
#include "storage/device_store.h"
#include "storage/stream_store.h"

namespace herald::logic {

struct MessageLimits {
  std::size_t max_payload_bytes = 4096;
  std::size_t max_targets = 1000;  // devices per request
  std::int64_t default_ttl_s = 7 * 24 * 3600;
  std::int64_t max_ttl_s = 28 * 24 * 3600;
  std::uint32_t max_pull_entries = 100;
  std::size_t max_pull_bytes = 256 * 1024;
};

// How a scheduled message is sent when it is due (MessageScheduler). It keeps what it got when
// it was accepted: its id, creation time and send time; its TTL counts from send_at_ms. Targets
// no longer registered are dropped (reason "unregistered") instead of failing the send; if the
// TTL already ran out (the server was down when it was due) every target is dropped ("expired").
// The write is exactly-once: it happens only if no live record `settled.key` exists, and puts
// `settled` and deletes `consume_record` (the scheduler's sched/ record) in the same atomic write
// as the entries and the message record. A cancel writes the same `settled` key, so of a cancel
// and a fire racing each other exactly one is written; the other finds the record
// (SendResult::existing) and changes nothing.
struct ScheduledFire {
  std::string message_id;
  std::int64_t created_at_ms = 0;
  std::int64_t send_at_ms = 0;
  std::string consume_record;
  storage::Record settled;
};

// A message for many devices, stored once in a shared stream (docs/protocol.md section 11).
struct SharedAudience {
  enum class Kind { kTopic, kCondition, kBroadcast };
  Kind kind = Kind::kTopic;
  std::string topic;                        // kTopic
  std::optional<TopicCondition> condition;  // kCondition, parsed
  std::string condition_text;               // kCondition, as the sender wrote it
  // Non-zero: each access node spreads its notifies over this many milliseconds.
  std::uint32_t spread_ms = 0;
};

struct SendRequest {
  std::string app;
  // The targets: 1..max_targets devices (duplicates are removed), or else `shared`.
  std::vector<std::string> devices;
  std::optional<SharedAudience> shared;
  std::string data;
  storage::DataKind kind = storage::DataKind::kJson;
  // Unset = default; 1..max_ttl_s; 0 = deliver now or drop: stored only for targets online now,
  // for kTtlZeroWindowMs, and dropped for the others.
  std::optional<std::int64_t> ttl_s;
  // Non-empty: replaces the target's latest undelivered message with the same key.
  std::string collapse_key;
  // kHigh notifies online targets at once; kNormal lets the access node merge the notify with
  // others for a short while (distribution::NotifyPriority). Storage is the same for both.
  distribution::NotifyPriority priority = distribution::NotifyPriority::kHigh;
  // Idempotency: when set, the message is stored only if no live record `key` exists, and the
  // record is written with it in the same atomic write. If it exists, nothing is stored and the
  // result carries it (SendResult::existing). Not with `scheduled`. Its value must be a JSON
  // object; the message id is added to it as "id" (with_message_id), so that whoever finds the
  // record later can find the message, even if the process died before it answered.
  std::optional<storage::Record> idempotency;
  // Set by the scheduler only: this is a scheduled message being sent (see ScheduledFire).
  std::optional<ScheduledFire> scheduled;
};

// The targets of a request, after validation: duplicates removed, each one's registration
// looked up.
struct ValidatedTargets {
  std::vector<std::string> registered;
  std::vector<std::string> unregistered;  // valid ids, not registered for the app
};

struct TargetResult {
  std::string device;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  bool online = false;   // a notify was handed to a connection
  bool dropped = false;  // not stored; dropped_reason says why (DroppedTarget in the tracker)
  std::string dropped_reason;
};

// Where a message for a shared audience was stored.
struct SharedResult {
  std::uint64_t stream = 0;  // the wire stream id
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
};

struct SendResult {
  std::string message_id;
  std::vector<TargetResult> targets;  // empty for a shared audience
  std::optional<SharedResult> shared;
  std::int64_t expires_at_ms = 0;
  std::optional<storage::Record> existing;  // the idempotency record that was found instead
};

// `idempotency` with `message_id` added to its value, a JSON object, as "id" (SendRequest::
// idempotency). A value that is not a JSON object is kept as it is.
[[nodiscard]] storage::Record with_message_id(storage::Record idempotency,
                                              std::string_view message_id);

class MessageService {
 public:
  static constexpr std::int64_t kTtlZeroWindowMs = 30'000;
  static constexpr std::size_t kMaxCollapseKeyBytes = 64;

  static constexpr std::uint32_t kMaxSpreadMs = 3'600'000;

  MessageService(MessageLimits limits, const AppRegistry& apps, storage::StreamStore& streams,
                 storage::DeviceStore& devices, distribution::Router& router,
                 MessageIdGenerator& ids, MessageTracker& tracker, TopicService& topics,
                 Clock clock);

  // Validates, stores durably (the entries and the message's status record, atomically), then
  // notifies online targets. Completes once every target's entry is durable. On error nothing was
  // stored. Errors: kUnknownApp, kUnknownDevice (not with request.scheduled: such targets are
  // dropped), kBadRequest, kPayloadTooLarge, kBadTtl, kTooManyTargets, kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<SendResult>> async_send(SendRequest request);

  // Every check async_send makes before storing, without storing anything: the app exists, the
  // targets (1..max_targets valid ids), payload size, TTL, collapse key. The registrations are
  // looked up, not judged: the caller decides what an unregistered target means. Errors:
  // kUnknownApp, kUnknownDevice (a malformed id), kBadRequest, kPayloadTooLarge, kBadTtl,
  // kTooManyTargets, kBusy, kStorageFailed. Thread-safe; runs on the caller's thread.
  [[nodiscard]] boost::system::result<ValidatedTargets> validate(const SendRequest& request) const;

  // Device side. `stream` is the wire stream id (0 = the device's inbox); kForbiddenStream for
  // any stream the device may not read. Entries of apps the device is no longer registered for
  // come back as tombstones: they are not delivered, and the cursor steps over them. A shared
  // stream is read from the device's start (a cursor before it is answered as if it were at
  // it, with truncated_before saying so), and an entry whose condition the device's topics do
  // not satisfy comes back as a tombstone.
  [[nodiscard]] boost::system::result<storage::ReadResult> pull(const std::string& device,
                                                                std::uint64_t stream,
                                                                std::uint64_t epoch,
                                                                std::uint64_t after_seq,
                                                                std::uint32_t limit);
  // Records the device's ack (for status and pruning; not needed for correctness): its cursor
  // and the acked stage of the messages it covers, queued to the storage writer unsynced, so
  // the caller (an event loop) never waits on storage. A lookup right after may not show it
  // yet. Errors: kForbiddenStream, kBadRequest (an epoch or seq the stream never had),
  // kStorageFailed (the stream's head could not be read).
  [[nodiscard]] boost::system::result<void> ack(const std::string& device, std::uint64_t stream,
                                                std::uint64_t epoch, std::uint64_t seq);

  // The storage key of a device's inbox stream.
  [[nodiscard]] static std::string inbox_key(std::string_view device);

  [[nodiscard]] const MessageLimits& limits() const { return limits_; }

 private:
  // Marks the message whose entry `seq` of `device`'s inbox a collapse key replaced.
  void replaced(const std::string& device, std::uint64_t seq);
  boost::asio::awaitable<boost::system::result<SendResult>> async_send_shared(SendRequest request);
  // Counts the devices a shared message is for (the readers of `carrier`, those matching
  // `filter` if set), a page at a time so other work on the loop goes on, and records it.
  boost::asio::awaitable<void> async_count_targeted(
      std::string app, std::string id, std::int64_t expires_at_ms, std::string carrier,
      std::shared_ptr<const distribution::StreamFilter> filter);
  [[nodiscard]] boost::system::result<storage::ReadResult> pull_shared(const std::string& device,
                                                                       std::uint64_t stream,
                                                                       std::uint64_t epoch,
                                                                       std::uint64_t after_seq,
                                                                       std::uint32_t limit);
  // Whether a device had the message `recall` revokes: it is in the stream's epoch `epoch`,
  // after `from_seq` (where the device started reading) and not after `passed` (its cursor).
  [[nodiscard]] bool had_revoked(const storage::Entry& recall, std::uint64_t epoch,
                                 std::uint64_t from_seq, std::uint64_t passed);
  // The entries an ack of `key` up to (epoch, seq) covers: those after the device's previous
  // ack and after `from_seq`. kBadRequest for an epoch or seq the stream never had.
  [[nodiscard]] boost::system::result<std::vector<storage::Entry>> covered_by_ack(
      const std::string& device, const std::string& key, std::uint64_t epoch, std::uint64_t seq,
      std::uint64_t from_seq);
  [[nodiscard]] boost::system::result<void> ack_shared(const std::string& device,
                                                       std::uint64_t stream, std::uint64_t epoch,
                                                       std::uint64_t seq);

  MessageLimits limits_;
  const AppRegistry& apps_;
  storage::StreamStore& streams_;
  storage::DeviceStore& devices_;
  distribution::Router& router_;
  MessageIdGenerator& ids_;
  MessageTracker& tracker_;
  TopicService& topics_;
  Clock clock_;
};

}  // namespace herald::logic
