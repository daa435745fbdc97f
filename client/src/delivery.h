// Delivery: the pull / ack state machine of one client, with no socket in sight (docs/protocol.md
// sections 5 and 11).
//
//   HelloOk              ──▶ on_connected()      ──▶ Pull the inbox
//   Streams (complete)   ──▶ on_streams()        ──▶ the streams read besides the inbox, replaced;
//                                                    a cursor missing or older than the stream's
//                                                    start moved there (saved); Pull each stream
//                                                    whose epoch or head is beyond its cursor
//   Notify{stream, head} ──▶ on_notify()         ──▶ Pull if head != cursor, unless a pull is in
//                                                    flight (then remembered); ignored for a
//                                                    stream the device does not read
//   Messages             ──▶ on_messages()       ──▶ the gap handler if the answer announces
//                                                    one, handlers in order, CursorStore::save,
//                                                    Ack, Pull again (more, a newer head, a
//                                                    notify)
//
// Entries by kind: JSON and BINARY (and kinds this version does not know, as BINARY) go to the
// message handler, RECALL to the recall handler; a TOMBSTONE reaches no handler. Every kind takes
// its seq, so each moves the cursor by one and none is ever a gap. Messages and recalls of a
// topic or broadcast stream carry the topic (or the broadcast flag) the stream's list entry gave.
//   Pong{resync}         ──▶ on_pong()           ──▶ Pull the inbox and every listed stream
//   Error (not fatal)    ──▶ on_request_failed() ──▶ later, with backoff: retry_failed() pulls
//
// The connection feeds it decoded frames and sends what it returns (the ack first, then the
// pulls). Per stream it keeps the cursor (loaded from the CursorStore the first time the stream is
// seen), whether the device reads it (the inbox always; any other stream while the last list
// names it), whether a pull is in flight, and the last head announced meanwhile. Invariants:
//
//   - at most one Pull per stream is in flight, except after a misattributed error (below), when
//     a stream may be pulled twice; the duplicate entries are then dropped;
//   - within an epoch the cursor only moves forward, so an entry with seq <= cursor never reaches
//     a handler, and an entry is handed over only when its seq is exactly cursor + 1;
//   - a gap the server did not announce through truncated_before is a protocol error: the
//     connection is closed rather than the gap hidden. Entries up to a stream's start_seq are not
//     a gap: they were pushed before the device joined, and the cursor moves past them knowingly
//     (when the list arrives, and again when a new epoch is the list's epoch), so a pull answered
//     "as if from start_seq" never shows one;
//   - only streams the device reads are pulled, acked or delivered from. A stream dropped from
//     the list (or refused with unknown_stream, until the next list) keeps its cursor in memory,
//     but the answer to a pull still in flight for it is dropped unapplied: no handler, no save,
//     no ack (an Ack of a stream the server no longer lists would draw an unknown_stream Error,
//     taken for the answer of some other pull). Joining again starts at the new start_seq anyway.
//
// Errors: the server answers every Pull with exactly one frame, in order, Messages or a non-fatal
// Error, and answers an Ack only to reject it. So a non-fatal Error is taken as the answer to the
// oldest pull still waiting (`waiting_`). If it really answered an Ack, the cost is a spare pull
// of that stream, or a stream forgotten until the next list: the Messages that answer its pull
// later are then dropped, and the next list or reconnect pulls it again.
//
// Not thread-safe: owned by one client and used on its strand. The CursorStore must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
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
  using DeliverGap = std::function<void(const Gap&)>;

  // A list naming more streams than this (a hostile or broken server) is a protocol error. The
  // streams kept in memory, read or not, stay under it too: after a list, streams no longer read
  // and with no pull in flight are forgotten (cursor and all) while there are more.
  static constexpr std::size_t kMaxStreams = 4096;

  Delivery(CursorStore& cursors, std::uint32_t pull_limit);

  // A connection was authenticated: pull the inbox. The other streams are pulled when the list
  // the server sends right after HelloOk says they have news (on_streams).
  [[nodiscard]] Outbound on_connected();
  // The connection is gone: nothing is in flight any more.
  void on_disconnected();
  // A complete list of the streams the device reads besides its inbox: it replaces the previous
  // one. For each entry: remembers its app and topic; moves a cursor that is missing, or older
  // in the entry's epoch, to (epoch, start_seq) and saves it; pulls the stream when the entry's
  // epoch differs from the cursor's or its head is beyond it (after the reply, when a pull is in
  // flight). Entries for stream 0 (the inbox, always read) are skipped; a stream listed twice
  // takes its last entry. Errors, changing nothing, when the list names kMaxStreams streams or
  // more (the inbox takes one). Exceptions from CursorStore::load and save propagate.
  [[nodiscard]] boost::system::result<Outbound> on_streams(
      const std::vector<protocol::wire::StreamInfo>& list);
  // Notify{stream, head_seq}. Ignored for a stream the device does not read.
  [[nodiscard]] Outbound on_notify(std::uint64_t stream, std::uint64_t head_seq);
  // Pong: with `resync`, pulls the inbox and every listed stream (after the reply, if one is in
  // flight).
  [[nodiscard]] Outbound on_pong(bool resync);
  // A non-fatal Error answered the oldest waiting pull: unknown_stream forgets that stream until
  // the next list (the inbox excepted), any other code marks it for retry_failed().
  void on_request_failed(protocol::ErrorCode code);
  // True when a failed pull waits for retry_failed().
  [[nodiscard]] bool has_failed_pulls() const;
  // Pulls again every stream whose pull failed; the caller waits a backoff delay first.
  [[nodiscard]] Outbound retry_failed();
  // A Messages frame. First, when the answer moves the cursor past entries the device will
  // never get (a new epoch, or truncated_before beyond the cursor), calls `gap` once (if given);
  // a cursor moved to a topic's start_seq is no gap. Then calls `deliver` for each new message
  // and `recall` for each new recall, in seq order (entries are moved out of `messages`); steps
  // over tombstones; then saves the cursor if it moved. A recall whose data names no message, or
  // with no `recall` function, reaches no handler but still moves the cursor. The answer for a
  // stream the device does not read (any more) is dropped unapplied. Errors (nothing more
  // delivered, the cursor saved as far as it got) on an unannounced gap. Exceptions from the
  // handlers or CursorStore::save propagate; when `gap` throws the cursor has not moved, and when
  // a message or recall handler throws, the cursor is first saved up to the entry before.
  [[nodiscard]] boost::system::result<Outbound> on_messages(protocol::wire::Messages& messages,
                                                            const Deliver& deliver,
                                                            const DeliverRecall& recall = {},
                                                            const DeliverGap& gap = {});

  // Pulls sent and not answered yet (by Messages or a non-fatal Error).
  [[nodiscard]] std::size_t pulls_waiting() const { return waiting_.size(); }

  // For tests and diagnostics.
  [[nodiscard]] Cursor cursor(std::uint64_t stream) const;
  [[nodiscard]] bool pull_in_flight(std::uint64_t stream) const;
  // True while the device reads `stream`: the inbox always, another while the list names it.
  [[nodiscard]] bool reads(std::uint64_t stream) const;

 private:
  struct StreamState {
    Cursor cursor;
    std::optional<std::uint64_t> notified_head;  // last head announced while a pull was in flight
    bool read = false;  // the inbox, or named by the last list (and not refused since)
    bool pull_in_flight = false;
    bool pull_again = false;  // a resync or a list arrived while a pull was in flight
    bool failed = false;      // its pull failed: pull again in retry_failed()
    // From the stream's list entry; empty for the inbox.
    std::string app;
    std::string topic;
    // The list entry's start: entries up to `start.seq` of epoch `start.epoch` were pushed before
    // the device joined. {0, 0} for the inbox.
    Cursor start;
  };

  // The state of `stream`, loading its cursor the first time.
  StreamState& find_or_load(std::uint64_t stream);
  // The state of `stream` if the device reads it: the inbox (loaded if needed), or a listed stream.
  StreamState* find_read(std::uint64_t stream);
  // The stream is no longer read: nothing of it is pulled until a list names it again.
  static void stop_reading(StreamState& state);
  // Forgets streams not read and not pulled until at most `keep` states remain, if it can.
  void make_room(std::size_t keep);
  void pull(std::uint64_t stream, StreamState& state, Outbound& out);
  // Calls the handler `entry`'s kind asks for, if any (moving its fields out).
  static void hand_over(std::uint64_t stream, const StreamState& state,
                        protocol::wire::Entry& entry, const Deliver& deliver,
                        const DeliverRecall& recall);

  CursorStore& cursors_;
  std::uint32_t pull_limit_;
  std::map<std::uint64_t, StreamState> streams_;
  std::deque<std::uint64_t> waiting_;  // streams of the pulls sent and not answered, oldest first
};

}  // namespace herald::detail
