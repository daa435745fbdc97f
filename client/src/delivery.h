// Delivery: the pull / ack state machine of one client, with no socket in sight.
//
//   HelloOk              ──▶ on_connected() ──▶ Pull the inbox and every known stream
//   Notify{stream, head} ──▶ on_notify()    ──▶ Pull, unless one is in flight (then remembered)
//   Messages             ──▶ on_messages()  ──▶ handlers in order, CursorStore::save, Ack,
//                                               Pull again (more, a newer head, a missed notify)
//   Pong{resync}         ──▶ on_pong()      ──▶ Pull every known stream
//   Error (not fatal)    ──▶ on_request_failed(): the pulls in flight are retried at the next Pong
//
// The connection feeds it decoded frames and sends what it returns (the ack first, then the
// pulls). Per stream it keeps the cursor (loaded from the CursorStore the first time the stream is
// seen), whether a pull is in flight, and the highest head announced meanwhile. Invariants:
//
//   - at most one Pull per stream is in flight, except after on_request_failed() (the failed pull
//     is not identified, so its stream may be pulled twice; duplicates are then dropped below);
//   - within an epoch the cursor only moves forward, so an entry with seq <= cursor never reaches
//     a handler, and an entry is handed over only when its seq is exactly cursor + 1;
//   - a gap the server did not announce through truncated_before is a protocol error: the
//     connection is closed rather than the gap hidden.
//
// Not thread-safe: owned by one client and used on its strand. The CursorStore must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
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
  // Pong: pulls every stream when `resync`, else only those whose pull failed.
  [[nodiscard]] Outbound on_pong(bool resync);
  // The server answered a request with a non-fatal Error; it does not say which one.
  void on_request_failed();
  // A Messages frame. Calls `deliver` for each new entry in order (entries are moved out of
  // `messages`), then saves the cursor if it moved. Errors (nothing more delivered, the cursor
  // saved as far as it got) on an unannounced gap or too many streams. Exceptions from `deliver`
  // or CursorStore::save propagate; when `deliver` throws, the cursor is first saved up to the
  // entry before.
  [[nodiscard]] boost::system::result<Outbound> on_messages(protocol::wire::Messages& messages,
                                                            const Deliver& deliver);

  // For tests and diagnostics.
  [[nodiscard]] Cursor cursor(std::uint64_t stream) const;
  [[nodiscard]] bool pull_in_flight(std::uint64_t stream) const;
  [[nodiscard]] std::size_t stream_count() const { return streams_.size(); }

 private:
  struct StreamState {
    Cursor cursor;
    std::uint64_t notified_head = 0;  // highest head announced while a pull was in flight
    bool pull_in_flight = false;
    bool pull_again = false;  // a resync arrived while a pull was in flight
    bool retry = false;       // a pull may have failed: pull again at the next Pong
  };

  // The state of `stream`, loading its cursor the first time; nullptr past kMaxStreams.
  StreamState* find_or_load(std::uint64_t stream);
  void pull(std::uint64_t stream, StreamState& state, Outbound& out);

  CursorStore& cursors_;
  std::uint32_t pull_limit_;
  std::map<std::uint64_t, StreamState> streams_;
};

}  // namespace herald::detail
