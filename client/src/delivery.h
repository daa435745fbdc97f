// Delivery: the pull / ack state machine of one client, with no socket in sight (docs/protocol.md
// section 5).
//
//   HelloOk              ──▶ on_connected()      ──▶ Pull the inbox and every known stream
//   Notify{stream, head} ──▶ on_notify()         ──▶ Pull if head != cursor, unless a pull is in
//                                                    flight (then remembered)
//   Messages             ──▶ on_messages()       ──▶ handlers in order, CursorStore::save, Ack,
//                                                    Pull again (more, a newer head, a notify)
//
// Entries by kind: JSON and BINARY (and kinds this version does not know, as BINARY) go to the
// message handler, RECALL to the recall handler; a TOMBSTONE reaches no handler. Every kind takes
// its seq, so each moves the cursor by one and none is ever a gap.
//   Pong{resync}         ──▶ on_pong()           ──▶ Pull every known stream
//   Error (not fatal)    ──▶ on_request_failed() ──▶ later, with backoff: retry_failed() pulls
//
// The connection feeds it decoded frames and sends what it returns (the ack first, then the
// pulls). Per stream it keeps the cursor (loaded from the CursorStore the first time the stream is
// seen), whether a pull is in flight, and the last head announced meanwhile. Invariants:
//
//   - at most one Pull per stream is in flight, except after a misattributed error (below), when
//     a stream may be pulled twice; the duplicate entries are then dropped;
//   - within an epoch the cursor only moves forward, so an entry with seq <= cursor never reaches
//     a handler, and an entry is handed over only when its seq is exactly cursor + 1;
//   - a gap the server did not announce through truncated_before is a protocol error: the
//     connection is closed rather than the gap hidden.
//
// Errors: the server answers every Pull with exactly one frame, in order, Messages or a non-fatal
// Error, and answers an Ack only to reject it. So a non-fatal Error is taken as the answer to the
// oldest pull still waiting (`waiting_`). If it really answered an Ack, the cost is a spare pull
// of that stream, or a stream forgotten until its next Notify: the Messages that answer its pull
// later still deliver it.
//
// Not thread-safe: owned by one client and used on its strand. The CursorStore must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include <boost/system/result.hpp>

#include "herald/client.h"
#include "protocol/frame_codec.h"

namespace herald::detail {

struct PullRequest {
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;
  std::uint64_t after_seq = 0;
  std::uint32_t limit = 0;
  friend bool operator==(const PullRequest&, const PullRequest&) = default;
};

struct AckRequest {
  std::uint64_t stream = 0;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  friend bool operator==(const AckRequest&, const AckRequest&) = default;
};

// Frames to send, in this order: the ack, then the pulls.
struct Outbound {
  std::optional<AckRequest> ack;
  std::vector<PullRequest> pulls;
};

class Delivery {
 public:
  using Cursor = CursorStore::Cursor;
  using Deliver = std::function<void(const Message&)>;
  using DeliverRecall = std::function<void(const Recall&)>;

  // More streams than this (a hostile or broken server inventing stream ids) is a protocol error.
  static constexpr std::size_t kMaxStreams = 4096;

  Delivery(CursorStore& cursors, std::uint32_t pull_limit);

  // A connection was authenticated: pull the inbox and every stream seen so far.
  [[nodiscard]] Outbound on_connected();
  // The connection is gone: nothing is in flight any more.
  void on_disconnected();
  // Notify{stream, head_seq}. Errors when the stream would exceed kMaxStreams.
  [[nodiscard]] boost::system::result<Outbound> on_notify(std::uint64_t stream,
                                                          std::uint64_t head_seq);
  // Pong: with `resync`, pulls every known stream (after the reply, if one is in flight).
  [[nodiscard]] Outbound on_pong(bool resync);
  // A non-fatal Error answered the oldest waiting pull: unknown_stream forgets that stream (the
  // inbox excepted), any other code marks it for retry_failed().
  void on_request_failed(protocol::ErrorCode code);
  // True when a failed pull waits for retry_failed().
  [[nodiscard]] bool has_failed_pulls() const;
  // Pulls again every stream whose pull failed; the caller waits a backoff delay first.
  [[nodiscard]] Outbound retry_failed();
  // A Messages frame. Calls `deliver` for each new message and `recall` for each new recall, in
  // seq order (entries are moved out of `messages`); steps over tombstones; then saves the cursor
  // if it moved. A recall whose data names no message, or with no `recall` function, reaches no
  // handler but still moves the cursor. Errors (nothing more delivered, the cursor saved as far
  // as it got) on an unannounced gap or too many streams. Exceptions from the handlers or
  // CursorStore::save propagate; when a handler throws, the cursor is first saved up to the
  // entry before.
  [[nodiscard]] boost::system::result<Outbound> on_messages(protocol::wire::Messages& messages,
                                                            const Deliver& deliver,
                                                            const DeliverRecall& recall = {});

  // For tests and diagnostics.
  [[nodiscard]] Cursor cursor(std::uint64_t stream) const;
  [[nodiscard]] bool pull_in_flight(std::uint64_t stream) const;
  [[nodiscard]] bool knows(std::uint64_t stream) const { return streams_.contains(stream); }

 private:
  struct StreamState {
    Cursor cursor;
    std::optional<std::uint64_t> notified_head;  // last head announced while a pull was in flight
    bool pull_in_flight = false;
    bool pull_again = false;  // a resync arrived while a pull was in flight
    bool failed = false;      // its pull failed: pull again in retry_failed()
  };

  // The state of `stream`, loading its cursor the first time; nullptr past kMaxStreams.
  StreamState* find_or_load(std::uint64_t stream);
  void pull(std::uint64_t stream, StreamState& state, Outbound& out);
  // Calls the handler `entry`'s kind asks for, if any (moving its fields out).
  static void hand_over(std::uint64_t stream, std::uint64_t epoch, protocol::wire::Entry& entry,
                        const Deliver& deliver, const DeliverRecall& recall);

  CursorStore& cursors_;
  std::uint32_t pull_limit_;
  std::map<std::uint64_t, StreamState> streams_;
  std::deque<std::uint64_t> waiting_;  // streams of the pulls sent and not answered, oldest first
};

}  // namespace herald::detail
