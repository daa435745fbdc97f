// WebhookDispatcher: delivers one app's upstream messages (device -> backend) to the webhook the
// app configured. The distribution layer's upstream path (DESIGN.md: distribution "carries
// upstream frames to the business logic"); the logic layer's UpstreamService stores the messages,
// this class carries them on.
//
// Why here: it is neither business logic (it never decides what a message means, only moves
// stored entries to their destination, like the router moves notifies) nor an HTTP API (Herald
// is the client). In the cluster it becomes its own role beside the routers. Distribution sits
// below http, so the HTTP call is behind WebhookTransport (webhook_transport.h), which the HTTP
// layer implements: the CMake dependencies keep pointing one way.
//
//   UpstreamService ──append──▶ stream "u/<app>" ◀──read after cursor── WebhookDispatcher
//        │                                                                 │  POST batch, signed
//        └──────────── wake() ───────────────────────────────────────────▶ │──────────────▶ backend
//                                                     cursor ◀── 2xx ──────┘
//
// The loop: read up to max_batch_messages entries after the delivered cursor, POST them as one
// JSON body signed with the app's secret (webhook_signature.h), and on a 2xx answer move the
// cursor past them and persist it. Anything else (another status, no connection, a timeout) is
// retried, the same batch again, after an exponential backoff with jitter; new entries do not cut
// a backoff short. With nothing left to send it sleeps until wake() or stop().
//
// Delivery is at least once. The cursor is persisted after the backend answered, so a crash in
// between, a timeout whose request the backend did process, or a machine crash losing the last
// unsynced cursor write sends a batch again; every message carries an id ("<device>:<upstream
// id>") unique per app, by which the backend drops what it already has. Order is the stream's,
// so each device's messages arrive in the order the device sent them (and were stored).
//
// Expired entries (the app's upstream TTL passed while the backend was unreachable) are never
// returned by the store; the dispatcher steps over them, counts them in expired_total and logs
// how many were lost. If the stream's epoch changes (a machine crash in the fast durability mode),
// every entry of the new epoch is sent again: at least once still holds.
//
// The cursor is an acked cursor (DeviceStore::acked) under the reserved owner kWebhookCursorOwner
// and the stream's key: '#' is outside the device id alphabet [A-Za-z0-9._:-], so no device can
// own that cursor. It is written through the store's writer (AppendBatch::acked_cursors), unsynced
// and never waited for on the loop: a process crash loses no cursor move, a machine crash may
// lose the latest ones, which only means sending those batches again.
//
// Following the app's settings: retarget() points the dispatcher at another webhook (a new URL or
// secret) and pause() stops it sending, both without losing or skipping anything, because the
// stream and the cursor belong to the app, not to a URL. After retarget() every message not yet
// delivered, the backlog included, goes to the new target; a POST already in flight finishes
// where it started (if the old backend answers 2xx, those messages count as delivered). While
// paused nothing is sent and the stored messages wait, within their TTL, for the next retarget().
// One dispatcher per app for as long as the process runs (WebhookSupervisor), so that no two
// loops ever deliver the same stream.
//
// Threads: every member runs on the dispatcher's executor (one event loop), except start(),
// wake(), retarget(), pause() and stop(), which any thread may call. The stores outlive the
// dispatcher; it owns its transports. Created with create() and kept alive by its own coroutine
// while it runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include "distribution/webhook_transport.h"
#include "storage/device_store.h"
#include "storage/stream_store.h"

namespace herald::distribution {

// The DeviceStore owner of every dispatcher's delivered cursor (see above).
inline constexpr std::string_view kWebhookCursorOwner = "#webhook";

struct WebhookDispatcherOptions {
  std::string app;
  std::string stream;  // the app's upstream stream key, chosen by the logic layer
  std::string secret;  // the HMAC key of Herald-Signature
  std::size_t max_batch_messages = 100;
  // Sum of the data bytes of one batch, before base64; the first message goes whatever its size.
  std::size_t max_batch_bytes = 1024 * 1024;
  // Backoff after a failed attempt n (1, 2, ...): d = min(retry_max, retry_initial * 2^(n-1)),
  // then a uniformly random wait in [d/2, d] ("equal jitter"), so the dispatchers of many apps,
  // or of many Herald nodes, do not all retry at the same moment.
  std::chrono::milliseconds retry_initial{500};
  std::chrono::milliseconds retry_max{60'000};
  std::uint64_t jitter_seed = 0;  // 0: seeded from std::random_device; tests fix it
};

// Counters for monitoring; relaxed atomics, readable from any thread.
struct WebhookDispatcherMetrics {
  std::atomic<std::uint64_t> delivered_total{0};        // messages the backend answered 2xx for
  std::atomic<std::uint64_t> batches_total{0};          // POSTs answered 2xx
  std::atomic<std::uint64_t> failed_attempts_total{0};  // POSTs not answered 2xx
  std::atomic<std::uint64_t> expired_total{0};          // messages that expired undelivered
  std::atomic<std::uint64_t> delivered_seq{0};          // the cursor: last seq delivered
};

class WebhookDispatcher : public std::enable_shared_from_this<WebhookDispatcher> {
 public:
  using Clock = std::function<std::int64_t()>;  // Unix milliseconds

  // `executor` must be single-threaded (an event loop's io_context) or a strand.
  [[nodiscard]] static std::shared_ptr<WebhookDispatcher> create(
      boost::asio::any_io_executor executor, WebhookDispatcherOptions options,
      storage::StreamStore& streams, storage::DeviceStore& devices,
      std::unique_ptr<WebhookTransport> transport, Clock clock);

  WebhookDispatcher(const WebhookDispatcher&) = delete;
  WebhookDispatcher& operator=(const WebhookDispatcher&) = delete;

  // Loads the persisted cursor and starts delivering. Any thread; call once.
  void start();
  // A new entry was stored in the stream: stop sleeping. Cheap; any thread, any number of times.
  void wake();
  // Stops after the current step: a POST in flight completes (the transport's deadline bounds
  // it) but nothing new starts; sleeps and backoffs end at once. Any thread; idempotent.
  void stop();
  // From the next POST on, delivers through `transport` (built for this dispatcher's executor)
  // and signs with `secret`; resumes a paused dispatcher. A POST in flight completes through the
  // old transport, which is destroyed after it. A backoff ends at once and the failure count
  // starts over, so a new URL is tried now. Any thread; the last call wins.
  void retarget(std::unique_ptr<WebhookTransport> transport, std::string secret);
  // Sends nothing more until retarget(): a POST in flight completes, then the dispatcher sleeps
  // with its cursor where it is (nothing is skipped). wake() does not resume it. Any thread;
  // idempotent.
  void pause();

  [[nodiscard]] const WebhookDispatcherMetrics& metrics() const { return metrics_; }
  [[nodiscard]] const std::string& app() const { return options_.app; }
  [[nodiscard]] const boost::asio::any_io_executor& executor() const { return executor_; }

  // The JSON body of one batch:
  //   {"app": "<app>", "messages": [
  //      {"id": "<device>:<upstream id>", "device": "<device>", "received_at_ms": N,
  //       "data": <the JSON value the device sent>},
  //      {"id": ..., "device": ..., "received_at_ms": N, "encoding": "base64",
  //       "data": "<base64 of the bytes the device sent>"}, ...]}
  // `entries` are upstream entries (message_id "<device>:<id>", kind JSON or binary).
  [[nodiscard]] static std::string batch_body(std::string_view app,
                                              const std::vector<storage::Entry>& entries);

  // The wait after failed attempt `attempt` (>= 1): uniformly random in [d/2, d] where
  // d = min(max, initial * 2^(attempt - 1)). See WebhookDispatcherOptions::retry_initial.
  [[nodiscard]] static std::chrono::milliseconds backoff_delay(unsigned attempt,
                                                               std::chrono::milliseconds initial,
                                                               std::chrono::milliseconds max,
                                                               std::mt19937_64& random);

 private:
  WebhookDispatcher(boost::asio::any_io_executor executor, WebhookDispatcherOptions options,
                    storage::StreamStore& streams, storage::DeviceStore& devices,
                    std::unique_ptr<WebhookTransport> transport, Clock clock);

  boost::asio::awaitable<void> run();
  // Reads the persisted cursor into cursor_; false when the store failed (retry later).
  bool load_cursor();
  void save_cursor();
  // Sleeps until wake(), retarget(), pause() or stop().
  boost::asio::awaitable<void> sleep_until_woken();
  // Sleeps the backoff of failed attempt `attempt` (>= 1), or until stop(), retarget() or
  // pause().
  boost::asio::awaitable<void> back_off(unsigned attempt);
  // Takes a target retarget() left, if any. Between POSTs only: transport_ is in use during one.
  // Returns whether it took one.
  bool take_new_target();

  boost::asio::any_io_executor executor_;
  WebhookDispatcherOptions options_;
  storage::StreamStore& streams_;
  storage::DeviceStore& devices_;
  std::unique_ptr<WebhookTransport> transport_;
  // Left by retarget() for the loop to take between POSTs; null when there is none.
  std::unique_ptr<WebhookTransport> next_transport_;
  std::string next_secret_;
  Clock clock_;
  boost::asio::steady_timer wake_timer_;   // armed while sleeping for new entries
  boost::asio::steady_timer retry_timer_;  // armed while backing off
  std::mt19937_64 jitter_;
  storage::AckedCursor cursor_;  // {epoch, last seq delivered}
  bool woken_ = false;           // wake() came since the last read
  bool stopping_ = false;
  bool paused_ = false;
  WebhookDispatcherMetrics metrics_;
};

}  // namespace herald::distribution
