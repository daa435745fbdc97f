// SubscribeQueue: the topic joins and leaves of one client, from subscribe() / unsubscribe() to
// the Streams frame that answers them, with no socket in sight (docs/protocol.md section 11).
//
//   subscribe(), unsubscribe() ──▶ push()             queued, in call order
//   HelloOk, an answer, a retry ──▶ take_sendable()   ──▶ one Subscribe frame: the oldest request,
//                                                         if it is not in flight and its retry
//                                                         time (after a busy answer) has come
//   Streams{request_id, code}   ──▶ on_answer()        0: done; busy, internal: sent again after a
//                                                      backoff delay; else: done (rejected)
//   the connection is gone      ──▶ on_disconnected()  the request in flight goes again on the
//                                                      next connection
//   the client stops            ──▶ fail_all()
//
// Invariants:
//   - at most one request is in flight, and it is the oldest: requests apply in call order over
//     all apps, so a join and a later leave of the same topic cannot be swapped, even when the
//     server answers busy to the first (the others wait behind it);
//   - a request leaves the queue only as a SubscribeCompletion, and every completion is handed to
//     the caller once, so each callback runs exactly once;
//   - an id is never changed: a resend (after a reconnect or a busy answer) carries the same id;
//     the server applies joins and leaves idempotently, so a resend of an applied one is harmless.
//
// One request at a time costs one round trip per request; requests are rare (an app joins its
// topics at start-up, a user toggles one), and each carries up to 32 topics.
//
// Not thread-safe: owned by one client and used on its strand. The bound (count) is checked by
// the client before push(), on the caller's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "backoff.h"
#include "herald/client.h"

namespace herald::detail {

struct SubscribeRequest {
  std::uint64_t id = 0;
  std::string app;
  std::vector<std::string> topics;
  bool unsubscribe = false;
  std::uint32_t history = 0;
  Client::SubscribeCallback done;
};

// A request that left the queue: run `done(result)` on the strand.
struct SubscribeCompletion {
  Client::SubscribeCallback done;
  SubscribeResult result;
};

class SubscribeQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // The protocol's limits on a request (docs/protocol.md section 11).
  static constexpr std::size_t kMaxTopics = 32;
  static constexpr std::size_t kMaxTopicBytes = 64;
  static constexpr std::uint32_t kMaxHistory = 100;
  // The largest Subscribe frame a valid request makes: header 5, id 11, app 2 + 64, per topic
  // 2 + 64, unsubscribe 2, history 2 (subscribe_queue_test.cc checks it).
  static constexpr std::size_t kMaxFrameBytes = 5 + 11 + 66 + kMaxTopics * 66 + 2 + 2;

  // Why `topics` and `history` break the protocol's rules, or empty when they do not. The app id
  // is the caller's to check.
  [[nodiscard]] static std::string problem(const std::vector<std::string>& topics,
                                           std::uint32_t history);

  // `retry` spaces the resends after busy and internal answers; reset by every answer that is not
  // busy or internal.
  explicit SubscribeQueue(Backoff retry);

  void push(SubscribeRequest r);

  // Appends to `frames` the Subscribe frame of the oldest request when it may go now (see the
  // header). A request whose body would exceed `max_body_bytes` (the server's limit) cannot ever
  // be sent: it is completed with kInvalid into `completions`, and the next one is looked at.
  void take_sendable(Clock::time_point now, std::uint32_t max_body_bytes, std::string& frames,
                     std::vector<SubscribeCompletion>& completions);

  // Streams{request_id = id, error_code} completed a request (the last frame of its list, or a
  // refusal). The completion when the request is done; nullopt when it will be sent again (busy,
  // internal) or the id is not in flight (a late or stray answer).
  [[nodiscard]] std::optional<SubscribeCompletion> on_answer(std::uint64_t id,
                                                             std::uint32_t error_code,
                                                             Clock::time_point now);

  // The connection is gone: the request in flight goes again, same id, on the next one.
  void on_disconnected();

  // Every request, in call order, completed with kStopped and `reason`; the queue is then empty.
  [[nodiscard]] std::vector<SubscribeCompletion> fail_all(const std::string& reason);

  // When the request waiting after a busy answer may go again.
  [[nodiscard]] std::optional<Clock::time_point> next_retry() const;
  // When the request in flight was sent: its answer is due within the response timeout.
  [[nodiscard]] std::optional<Clock::time_point> in_flight_since() const;

  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] bool in_flight(std::uint64_t id) const;

 private:
  struct Entry {
    SubscribeRequest request;
    bool in_flight = false;
    Clock::time_point sent_at;
    std::optional<Clock::time_point> retry_at;  // set by a busy or internal answer
  };

  static SubscribeCompletion complete(Entry& e, SubscribeStatus status, std::uint32_t error_code,
                                      std::string reason);

  // Call order; only the front may be in flight or waiting for a retry.
  std::deque<Entry> entries_;
  Backoff retry_;
};

}  // namespace herald::detail
