// UpstreamQueue: the upstream messages of one client, from send_upstream() to their UpstreamAck,
// with no socket in sight (docs/protocol.md section 10).
//
//   send_upstream()            ──▶ push()             queued, in call order
//   HelloOk, an ack, a retry   ──▶ take_sendable()    ──▶ Upstream frames: per app, its oldest
//                                                         message, if none of the app's is in
//                                                         flight or waiting for a retry
//   UpstreamAck{id, code}      ──▶ on_ack()           0: done (stored); busy, internal: sent again
//                                                     after a backoff delay; else: done (rejected)
//   the connection is gone     ──▶ on_disconnected()  what was in flight goes again on the next one
//   the client stops           ──▶ fail_all()
//
// Invariants:
//   - per app at most one message is in flight, and it is the app's oldest: an app's messages are
//     stored in call order, even when the server answers busy to one of them;
//   - a message leaves the queue only as an UpstreamCompletion, and every completion is handed to
//     the caller once, so each callback runs exactly once;
//   - an id is never changed: a resend (after a reconnect or a busy answer) carries the same id,
//     so the server stores the message once.
//
// Not thread-safe: owned by one client and used on its strand. The bounds (count and bytes) are
// checked by the client before push(), on the caller's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <vector>

#include "backoff.h"
#include "herald/client.h"

namespace herald::detail {

struct UpstreamMessage {
  std::uint64_t id = 0;
  std::string app;
  std::string data;
  bool binary = false;
  Client::UpstreamCallback done;

  // What the message counts against ClientOptions::max_upstream_bytes.
  [[nodiscard]] std::size_t bytes() const { return app.size() + data.size(); }
};

// A message that left the queue: run `done(result)` (on the strand) and release `bytes`.
struct UpstreamCompletion {
  Client::UpstreamCallback done;
  UpstreamResult result;
  std::size_t bytes = 0;
};

class UpstreamQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // Bytes an Upstream frame adds to its app and data, at most: header 5, id 11, app 2 (ids are
  // at most 64 bytes), data 5, kind 2 (frame_codec_test.cc pins the bound for data < 2 MiB).
  static constexpr std::size_t kMaxFrameOverheadBytes = 32;

  // `retry` spaces the resends after busy and internal answers; reset by every stored message.
  explicit UpstreamQueue(Backoff retry);

  void push(UpstreamMessage m);

  // Appends to `frames` an Upstream frame for each message that may go now (see the header).
  // A message whose body would exceed `max_body_bytes` (the server's limit) cannot ever be sent:
  // it is completed with kInvalid into `completions`.
  void take_sendable(Clock::time_point now, std::uint32_t max_body_bytes, std::string& frames,
                     std::vector<UpstreamCompletion>& completions);

  // UpstreamAck{id, error_code}. The completion when the message is done; nullopt when it will be
  // sent again (busy, internal) or the id is not in flight (an ack that came too late).
  [[nodiscard]] std::optional<UpstreamCompletion> on_ack(std::uint64_t id, std::uint32_t error_code,
                                                         Clock::time_point now);

  // The connection is gone: nothing is in flight any more; all of it goes again, same ids.
  void on_disconnected();

  // Every message, in call order, completed with kStopped and `reason`; the queue is then empty.
  [[nodiscard]] std::vector<UpstreamCompletion> fail_all(const std::string& reason);

  // When the earliest message waiting after a busy answer may go again.
  [[nodiscard]] std::optional<Clock::time_point> next_retry() const;
  // When the oldest message in flight was sent: its ack is due within the response timeout.
  [[nodiscard]] std::optional<Clock::time_point> oldest_in_flight() const;

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] bool in_flight(std::uint64_t id) const;

 private:
  struct Entry {
    UpstreamMessage message;
    bool in_flight = false;
    Clock::time_point sent_at;
    std::optional<Clock::time_point> retry_at;  // set by a busy or internal answer
  };

  UpstreamCompletion complete(Entry& e, UpstreamStatus status, std::uint32_t error_code,
                              std::string reason);

  // A list: no allocation while empty (an idle client), and erasing an acked message in the
  // middle keeps the others where they are. Call order.
  std::list<Entry> entries_;
  Backoff retry_;
};

}  // namespace herald::detail
