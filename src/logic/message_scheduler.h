// MessageScheduler: scheduled sends. A message with a send time keeps until then in a durable
// record, survives restarts, and is sent through MessageService::async_send when it is due,
// exactly once, unless the sender cancels it first.
//
//   POST .../messages {send_at_ms}                         the run loop (one coroutine, on the
//     │ async_schedule: validate like a send,              scheduler's event loop)
//     │ take a slot, ONE synced write of:                   │ scan sched/ from the start: the
//     │   sched/<due>/<app>/<id>  the request               │ earliest records first
//     │   msg/<app>/<id>          state "scheduled"         │ fire the due ones (a bounded batch,
//     │   [idem/<app>/<key>]      (Idempotency-Key)         │ concurrently), each ONE write of
//     ▼                                                     │   entries + msg/ (sent)
//   202, then wake the loop if it sleeps past <due> ──────▶ │   + settled/<app>/<id> = "fired"
//                                                           │   - sched/<due>/<app>/<id>
//   DELETE .../messages/{id}                                │   only unless settled/ exists
//     async_cancel: ONE write, only unless settled/ exists: │ sleep (steady timer) until the
//       msg/ (cancelled) + settled/ = "cancelled"           │ earliest record not yet due, or
//       - sched/<due>/<app>/<id>                            ▼ until woken
//
// Records (RecordStore keys):
//   sched/<due_ms, 13 digits>/<app>/<id>   what to send: targets, data, TTL, collapse key, times
//                                          (JSON). Never expires: the scheduler removes it when it
//                                          fires or is cancelled. Keys order by due time, so a
//                                          scan from the start finds the due ones first.
//   settled/<app>/<id>                     "fired", "cancelled" or "dropped": who removed the sched
//                                          record. The exactly-once guard (below). Expires with
//                                          the message record.
//
// Exactly once. Every write that removes a sched record (a fire, a cancel, a drop) is
// conditional on settled/<app>/<id> not existing and puts it, in the same atomic write
// (AppendBatch::unless_record_exists): of two racing, the writer lets exactly one through, and
// the other finds the record and writes nothing. A crash cannot split a fire: its entries, the
// message record, the settled record and the deletion of the sched record are one write. So a
// message is never stored twice (a restart finds no sched record of a fired message) and never
// lost (a sched record stays until a write that sent or cancelled it). A cancel that loses to the
// fire answers kNotScheduled: the message was sent, revoke it (MessageTracker::async_revoke).
//
// When it is due. A message fires at the first step of the loop at which clock() >= send_at_ms:
// never before (the injected wall clock decides, not the timer), normally within a millisecond
// after. The loop sleeps at most kMaxSleepMs at a time, so a wall clock set forward is noticed
// within that. Overdue records (the server was down) fire at the first step after start(), in
// due order. A message whose TTL (counted from send_at_ms) ran out meanwhile is dropped for every
// target ("expired") rather than stored already expired.
//
// Bounded: at most max_pending_per_app scheduled messages wait per app and max_pending_total in
// all (async_schedule answers kTooManyScheduled beyond), send_at_ms at most max_horizon_ms ahead
// (kBadSendAt), a stored request at most max_record_bytes (kPayloadTooLarge); a step fires at
// most fire_batch messages, then looks again. Memory holds one counter per app with pending
// messages, never the messages.
//
// Threads: async_schedule, async_cancel, recover and pending may run on any thread; the run loop,
// async_fire_due, wake and stop run on (or post to) the scheduler's executor, which must be
// single-threaded (one event loop) or a strand. The collaborators outlive the scheduler. Created
// with create() and kept alive by its own coroutines while they run.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/result.hpp>

#include "logic/clock.h"
#include "logic/logic_error.h"
#include "logic/message_id.h"
#include "logic/message_service.h"
#include "logic/message_tracker.h"
#include "storage/record_store.h"
#include "storage/stream_store.h"

namespace herald::logic {

struct SchedulerLimits {
  // A send time at most this far ahead; further is kBadSendAt. 28 days: the longest TTL allowed,
  // so that nothing accepted is kept longer than the longest-lived message.
  std::int64_t max_horizon_ms = 28LL * 24 * 3600 * 1000;
  // Scheduled messages waiting, per app and in all; beyond either, kTooManyScheduled.
  std::size_t max_pending_per_app = 10'000;
  std::size_t max_pending_total = 100'000;
  // Messages one step fires (concurrently, so that their writes share group commits).
  std::size_t fire_batch = 64;
  // The stored request (data, targets, options); larger is kPayloadTooLarge. Below the
  // RecordStore's own bound (1 MiB in RocksDB).
  std::size_t max_record_bytes = 512 * 1024;
};

// Counters for monitoring and tests; relaxed atomics, readable from any thread.
struct SchedulerMetrics {
  std::atomic<std::uint64_t> scheduled_total{0};  // accepted by async_schedule
  std::atomic<std::uint64_t> fired_total{0};      // sent (to at least one target, or dropped)
  std::atomic<std::uint64_t> cancelled_total{0};  // cancelled by async_cancel
  std::atomic<std::uint64_t> rejected_total{0};   // failed validation when due: dropped
  std::atomic<std::uint64_t> retries_total{0};    // fires that failed (storage) and wait a retry
  std::atomic<std::uint64_t> steps_total{0};      // scans of the run loop (async_fire_due calls)
};

struct ScheduleResult {
  std::string message_id;
  std::int64_t send_at_ms = 0;
  std::vector<std::string> devices;  // the targets, duplicates removed
  // The Idempotency-Key record found instead (nothing was stored), as in SendResult.
  std::optional<storage::Record> existing;
};

enum class CancelOutcome {
  kCancelled,     // it was scheduled and is now cancelled (or was already): it is never sent
  kNotScheduled,  // it was sent (perhaps just now, racing the cancel): revoke it instead
};

// What one step of the loop did and found.
struct FireStep {
  std::size_t fired = 0;    // records settled by this step: sent, dropped or found settled
  std::size_t retried = 0;  // records left for a later step (a storage error): back off
  // The due time of the earliest record not yet due, if the scan saw one.
  std::optional<std::int64_t> next_due_ms;
  bool more = false;  // a whole batch was due: more may be, step again at once
};

class MessageScheduler : public std::enable_shared_from_this<MessageScheduler> {
 public:
  // A send time at most this far ahead is not scheduled: the API sends it at once.
  static constexpr std::int64_t kImmediateWindowMs = 1000;
  // The longest the loop sleeps without looking at the clock again.
  static constexpr std::int64_t kMaxSleepMs = 60'000;
  // Backoff after a step whose fires failed (storage busy or failing): doubles up to the max.
  static constexpr std::int64_t kRetryInitialMs = 100;
  static constexpr std::int64_t kRetryMaxMs = 10'000;

  // `executor` must be single-threaded (an event loop) or a strand.
  [[nodiscard]] static std::shared_ptr<MessageScheduler> create(
      boost::asio::any_io_executor executor, SchedulerLimits limits, MessageService& messages,
      MessageTracker& tracker, storage::StreamStore& streams, storage::RecordStore& records,
      MessageIdGenerator& ids, Clock clock);

  MessageScheduler(const MessageScheduler&) = delete;
  MessageScheduler& operator=(const MessageScheduler&) = delete;

  // Counts the messages an earlier run left scheduled, per app, for the limits (one scan of the
  // sched/ records). Call once, before async_schedule is used. Errors: kStorageFailed.
  [[nodiscard]] boost::system::result<void> recover();
  // Starts the run loop on the executor: overdue messages fire at once. Any thread; call once.
  void start();
  // Stops the loop after its current step: fires under way complete (each is one atomic write,
  // so a stop never splits one), sleeps end at once. Any thread; idempotent.
  void stop();
  // Makes the loop look at the records and the clock again now. Any thread; cheap. The
  // scheduler wakes itself for what it schedules; this is for a clock that moved (tests).
  void wake();

  // Validates `request` as async_send would (every error an immediate send has, an unregistered
  // target included), then stores it durably to be sent at `send_at_ms` (Unix ms; the past is
  // allowed and fires at the next step), with the message record in state "scheduled" and
  // request.idempotency, in one synced write. Completes once it is durable. On error nothing was
  // stored. Errors: those of MessageService::validate, kUnknownDevice, kBadSendAt (negative or
  // more than max_horizon_ms ahead), kTooManyScheduled, kPayloadTooLarge (the stored request
  // exceeds max_record_bytes), kBadRequest (request.scheduled set), kBusy, kStorageFailed.
  boost::asio::awaitable<boost::system::result<ScheduleResult>> async_schedule(
      SendRequest request, std::int64_t send_at_ms);

  // Cancels message `id` of `app` if it is still scheduled, in one synced write that also
  // removes its sched record; it is then never sent. Cancelling a cancelled message again is
  // kCancelled and changes nothing. Errors: kUnknownMessage, kBusy, kStorageFailed (the outcome
  // is then unknown: read the status).
  boost::asio::awaitable<boost::system::result<CancelOutcome>> async_cancel(std::string app,
                                                                            std::string id);

  // One step of the run loop: fires every message due at clock() among the first fire_batch
  // records, concurrently, and completes once each fire has completed. The loop calls it; tests
  // call it directly instead of running the loop. Calling it while the loop runs is safe (a
  // message still fires once) but wasted work. Runs on the scheduler's executor.
  boost::asio::awaitable<FireStep> async_fire_due();

  // Scheduled messages waiting, of `app` or (empty) of every app.
  [[nodiscard]] std::size_t pending(std::string_view app = {}) const;
  [[nodiscard]] const SchedulerMetrics& metrics() const { return metrics_; }
  [[nodiscard]] const SchedulerLimits& limits() const { return limits_; }

  // The record keys (see the top of this file).
  [[nodiscard]] static std::string sched_key(std::int64_t due_ms, std::string_view app,
                                             std::string_view id);
  [[nodiscard]] static std::string settled_key(std::string_view app, std::string_view id);

 private:
  enum class Fired { kSettled, kRetry };

  MessageScheduler(boost::asio::any_io_executor executor, SchedulerLimits limits,
                   MessageService& messages, MessageTracker& tracker, storage::StreamStore& streams,
                   storage::RecordStore& records, MessageIdGenerator& ids, Clock clock);

  boost::asio::awaitable<void> run();
  // Sends (or drops) the message of one due sched record.
  boost::asio::awaitable<Fired> async_fire(storage::Record record);
  // Removes a sched record whose message can no longer be sent (it fails validation now, or
  // the record does not parse): the message ends "dropped" for every target with `reason`.
  boost::asio::awaitable<Fired> async_drop(std::string sched_key, std::string app, std::string id,
                                           std::string reason);
  // Takes a slot of `app` (false: a limit is reached) or gives one back.
  bool take_slot(const std::string& app);
  void release_slot(const std::string& app);
  // A message due at `due_ms` was scheduled: wake the loop if it sleeps past that.
  void scheduled(std::int64_t due_ms);
  boost::asio::awaitable<void> sleep(std::optional<std::int64_t> until_ms);
  boost::asio::awaitable<void> back_off(unsigned attempt);

  boost::asio::any_io_executor executor_;
  SchedulerLimits limits_;
  MessageService& messages_;
  MessageTracker& tracker_;
  storage::StreamStore& streams_;
  storage::RecordStore& records_;
  MessageIdGenerator& ids_;
  Clock clock_;

  mutable std::mutex slots_mutex_;
  std::unordered_map<std::string, std::size_t> pending_by_app_;  // guarded by slots_mutex_
  std::size_t pending_total_ = 0;                                // guarded by slots_mutex_

  // Executor only.
  boost::asio::steady_timer timer_;  // the loop's sleep and backoff
  // While the loop sleeps: the due time it sleeps until (kForever: until woken); kAwake while it
  // steps.
  static constexpr std::int64_t kAwake = -1;
  static constexpr std::int64_t kForever = std::numeric_limits<std::int64_t>::max();
  std::int64_t sleeping_until_ms_ = kAwake;
  bool woken_ = false;  // something may be due sooner than the last scan said: scan again
  bool stopping_ = false;

  SchedulerMetrics metrics_;
};

}  // namespace herald::logic
