#include "delivery.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

namespace herald::detail {

using protocol::ErrorCode;

Delivery::Delivery(CursorStore& cursors, std::uint32_t pull_limit)
    : cursors_(cursors), pull_limit_(pull_limit) {}

Delivery::StreamState& Delivery::find_or_load(std::uint64_t stream) {
  if (auto it = streams_.find(stream); it != streams_.end()) return it->second;
  StreamState state;
  state.cursor = cursors_.load(stream);
  state.read = stream == protocol::kInboxStream;
  return streams_.emplace(stream, std::move(state)).first->second;
}

Delivery::StreamState* Delivery::find_read(std::uint64_t stream) {
  if (stream == protocol::kInboxStream) return &find_or_load(stream);
  auto it = streams_.find(stream);
  return it != streams_.end() && it->second.read ? &it->second : nullptr;
}

void Delivery::stop_reading(StreamState& state) {
  state.read = false;
  state.pull_again = false;
  state.failed = false;
  state.notified_head.reset();
}

void Delivery::make_room(std::size_t keep) {
  for (auto it = streams_.begin(); it != streams_.end() && streams_.size() > keep;) {
    // A stream not read keeps only its cursor, which the store has too: loaded again if the
    // stream is listed again. One with a pull in flight stays until the answer is dropped.
    if (!it->second.read && !it->second.pull_in_flight) {
      it = streams_.erase(it);
    } else {
      ++it;
    }
  }
}

void Delivery::pull(std::uint64_t stream, StreamState& state, Outbound& out) {
  state.pull_in_flight = true;
  state.pull_again = false;
  state.failed = false;
  state.notified_head.reset();
  waiting_.push_back(stream);
  out.pulls.push_back({stream, state.cursor.epoch, state.cursor.seq, pull_limit_});
}

Outbound Delivery::on_connected() {
  Outbound out;
  pull(protocol::kInboxStream, find_or_load(protocol::kInboxStream), out);
  return out;
}

void Delivery::on_disconnected() {
  waiting_.clear();
  for (auto& [stream, state] : streams_) {
    state.pull_in_flight = false;
    state.pull_again = false;
    state.failed = false;
    state.notified_head.reset();
  }
}

boost::system::result<Outbound> Delivery::on_streams(
    const std::vector<protocol::wire::StreamInfo>& list) {
  // The last entry of each stream, in stream order.
  std::map<std::uint64_t, const protocol::wire::StreamInfo*> listed;
  for (const auto& info : list) {
    if (info.stream() != protocol::kInboxStream) listed[info.stream()] = &info;
  }
  if (listed.size() >= kMaxStreams) return make_error_code(ErrorCode::kBadRequest);  // + inbox

  for (auto& [stream, state] : streams_) {
    if (stream != protocol::kInboxStream && !listed.contains(stream)) stop_reading(state);
  }
  Outbound out;
  for (const auto& [stream, info] : listed) {
    StreamState& state = find_or_load(stream);
    state.read = true;
    state.app = info->app();
    state.topic = info->topic();
    state.start = {info->epoch(), info->start_seq()};
    Cursor& cursor = state.cursor;
    // Entries up to start_seq were pushed before the device joined: a cursor without them is no
    // gap, and the server answers a pull from it as if it came from start_seq anyway.
    if (info->epoch() != 0 &&
        (cursor == Cursor{} || (cursor.epoch == info->epoch() && cursor.seq < info->start_seq()))) {
      cursor = {info->epoch(), info->start_seq()};
      cursors_.save(stream, cursor);
    }
    if (info->epoch() == cursor.epoch && info->head_seq() <= cursor.seq) continue;
    if (state.pull_in_flight) {
      state.pull_again = true;  // its answer may predate what the list shows
    } else {
      pull(stream, state, out);
    }
  }
  make_room(kMaxStreams);
  return out;
}

Outbound Delivery::on_notify(std::uint64_t stream, std::uint64_t head_seq) {
  Outbound out;
  StreamState* state = find_read(stream);
  if (state == nullptr) return out;  // not listed: the device does not read it (any more)
  if (state->pull_in_flight) {
    state->notified_head = head_seq;  // not lost: looked at when the reply arrives
  } else if (head_seq != state->cursor.seq) {
    // Not only above: a head below the cursor is a stream that was reset (a new epoch), which
    // only a pull can tell. A late Notify for entries already pulled costs one empty pull.
    pull(stream, *state, out);
  }
  return out;
}

Outbound Delivery::on_pong(bool resync) {
  Outbound out;
  if (!resync) return out;
  find_or_load(protocol::kInboxStream);
  for (auto& [stream, state] : streams_) {
    if (!state.read) continue;
    if (state.pull_in_flight) {
      state.pull_again = true;
    } else {
      pull(stream, state, out);
    }
  }
  return out;
}

void Delivery::on_request_failed(ErrorCode code) {
  if (waiting_.empty()) return;  // it answered an Ack
  const std::uint64_t stream = waiting_.front();
  waiting_.pop_front();
  auto it = streams_.find(stream);
  if (it == streams_.end()) return;
  StreamState& state = it->second;
  state.pull_in_flight = false;
  if (!state.read) return;  // dropped from the list meanwhile
  if (code == ErrorCode::kUnknownStream && stream != protocol::kInboxStream) {
    // The device may not read it (any more): forgotten until the next list names it. Its cursor
    // stays.
    stop_reading(state);
    return;
  }
  state.failed = true;
}

bool Delivery::has_failed_pulls() const {
  return std::any_of(streams_.begin(), streams_.end(),
                     [](const auto& entry) { return entry.second.read && entry.second.failed; });
}

Outbound Delivery::retry_failed() {
  Outbound out;
  for (auto& [stream, state] : streams_) {
    if (!state.failed || !state.read) continue;
    if (state.pull_in_flight) {
      state.failed = false;  // pulled meanwhile (a notify)
    } else {
      pull(stream, state, out);
    }
  }
  return out;
}

boost::system::result<Outbound> Delivery::on_messages(protocol::wire::Messages& messages,
                                                      const Deliver& deliver,
                                                      const DeliverRecall& recall,
                                                      const DeliverGap& announce_gap) {
  const std::uint64_t stream = messages.stream();
  if (auto w = std::find(waiting_.begin(), waiting_.end(), stream); w != waiting_.end()) {
    waiting_.erase(w);  // normally the front: answers come in order
  }
  StreamState* state = find_read(stream);
  if (state == nullptr) {
    // Dropped from the list while its pull was in flight (or never pulled): dropped unapplied,
    // so that no Ack goes for a stream the server no longer lists.
    if (auto it = streams_.find(stream); it != streams_.end()) it->second.pull_in_flight = false;
    return Outbound{};
  }
  state->pull_in_flight = false;
  const Cursor before = state->cursor;

  // Where the answer puts the cursor before its entries. Computed aside and assigned after the
  // gap handler ran: one that throws leaves the cursor where it was, so the gap is told again.
  Cursor from = before;
  bool new_epoch = false;
  if (from.epoch == 0) {
    // No cursor yet: adopt the stream's epoch (the server sends epoch_changed = false).
    from.epoch = messages.epoch();
  } else if (from.epoch != messages.epoch()) {
    // The cursor is void. Decided by comparing epochs rather than by epoch_changed alone: a
    // second answer to a pull sent with the old epoch also says epoch_changed, and resetting
    // again would deliver the new epoch's entries twice (and announce the gap twice).
    from = {messages.epoch(), 0};
    new_epoch = true;
  }
  // A topic's entries up to its start were pushed before the device joined: when the stream's
  // new epoch is the one its list entry named, the cursor starts there (the server answers as if
  // the pull came from it), not at 0. No gap: they were never the device's.
  if (state->start.epoch != 0 && from.epoch == state->start.epoch && from.seq < state->start.seq) {
    from.seq = state->start.seq;
  }
  // Entries before truncated_before are gone: skip them knowingly (never backwards).
  bool truncated = false;
  if (messages.truncated_before() > 0 && messages.truncated_before() - 1 > from.seq) {
    from.seq = messages.truncated_before() - 1;
    truncated = true;
  }
  if ((new_epoch || truncated) && announce_gap) {
    Gap g;
    g.stream = stream;
    g.app = state->app;
    g.topic = state->topic;
    g.broadcast = stream != protocol::kInboxStream && state->topic.empty();
    g.reason = new_epoch ? GapReason::kNewEpoch : GapReason::kTruncated;
    g.from_epoch = before.epoch;
    g.from_seq = before.seq;
    g.epoch = from.epoch;
    g.resume_after_seq = from.seq;
    announce_gap(g);
  }
  Cursor& cursor = state->cursor;
  cursor = from;

  bool unannounced_gap = false;
  for (auto& entry : *messages.mutable_entries()) {
    if (entry.seq() <= cursor.seq) continue;  // already delivered
    if (entry.seq() != cursor.seq + 1) {
      unannounced_gap = true;
      break;
    }
    try {
      hand_over(stream, *state, entry, deliver, recall);
    } catch (...) {
      // The failed entry is not counted as delivered: the next client on this store gets it.
      if (cursor != before) cursors_.save(stream, cursor);
      throw;
    }
    cursor.seq = entry.seq();
  }

  const bool progressed = cursor != before;
  Outbound out;
  if (progressed) {
    cursors_.save(stream, cursor);
    if (cursor.seq > 0) out.ack = AckRequest{stream, cursor.epoch, cursor.seq};
  }
  if (unannounced_gap) return make_error_code(ErrorCode::kBadRequest);

  // Pull again for a notify that arrived meanwhile, a resync, or when the server says there is
  // more. `more` and head_seq count only when this reply moved the cursor: a server that keeps
  // announcing entries it does not return must not make us spin.
  bool again = state->pull_again || (state->notified_head && *state->notified_head != cursor.seq);
  if (progressed && (messages.more() || messages.head_seq() > cursor.seq)) again = true;
  state->pull_again = false;
  state->notified_head.reset();
  if (again) pull(stream, *state, out);
  return out;
}

void Delivery::hand_over(std::uint64_t stream, const StreamState& state,
                         protocol::wire::Entry& entry, const Deliver& deliver,
                         const DeliverRecall& recall) {
  const std::uint64_t epoch = state.cursor.epoch;
  const bool broadcast = stream != protocol::kInboxStream && state.topic.empty();
  // Entries name their app; a topic stream's entries are its app's (section 11) in any case.
  if (entry.app().empty()) entry.set_app(state.app);
  switch (entry.kind()) {
    case protocol::wire::DATA_KIND_TOMBSTONE:
      return;  // replaced or revoked before delivery: only its seq is left
    case protocol::wire::DATA_KIND_RECALL: {
      // Nothing to tell an app without a recall handler, or about an empty id.
      if (!recall || entry.data().empty()) return;
      Recall r;
      r.app = std::move(*entry.mutable_app());
      r.stream = stream;
      r.topic = state.topic;
      r.broadcast = broadcast;
      r.epoch = epoch;
      r.seq = entry.seq();
      r.id = std::move(*entry.mutable_message_id());
      r.recalled_id = std::move(*entry.mutable_data());
      r.sent_at_ms = static_cast<std::int64_t>(entry.sent_at_ms());
      recall(r);
      return;
    }
    default:
      break;
  }
  Message m;
  m.app = std::move(*entry.mutable_app());
  m.stream = stream;
  m.topic = state.topic;
  m.broadcast = broadcast;
  m.epoch = epoch;
  m.seq = entry.seq();
  m.id = std::move(*entry.mutable_message_id());
  m.data = std::move(*entry.mutable_data());
  // An unknown kind is handled as binary (docs/protocol.md section 9).
  m.binary = entry.kind() != protocol::wire::DATA_KIND_JSON;
  m.sent_at_ms = static_cast<std::int64_t>(entry.sent_at_ms());
  m.expires_at_ms = static_cast<std::int64_t>(entry.expires_at_ms());
  deliver(m);
}

Delivery::Cursor Delivery::cursor(std::uint64_t stream) const {
  auto it = streams_.find(stream);
  return it == streams_.end() ? Cursor{} : it->second.cursor;
}

bool Delivery::pull_in_flight(std::uint64_t stream) const {
  auto it = streams_.find(stream);
  return it != streams_.end() && it->second.pull_in_flight;
}

bool Delivery::reads(std::uint64_t stream) const {
  if (stream == protocol::kInboxStream) return true;
  auto it = streams_.find(stream);
  return it != streams_.end() && it->second.read;
}

}  // namespace herald::detail
