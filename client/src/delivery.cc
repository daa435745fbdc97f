#include "delivery.h"

#include <algorithm>
#include <exception>
#include <string>
#include <utility>

namespace herald::detail {

using protocol::ErrorCode;

Delivery::Delivery(CursorStore& cursors, std::uint32_t pull_limit)
    : cursors_(cursors), pull_limit_(pull_limit) {}

Delivery::StreamState* Delivery::find_or_load(std::uint64_t stream) {
  if (auto it = streams_.find(stream); it != streams_.end()) return &it->second;
  if (streams_.size() >= kMaxStreams) return nullptr;
  StreamState state;
  state.cursor = cursors_.load(stream);
  return &streams_.emplace(stream, state).first->second;
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
  find_or_load(protocol::kInboxStream);
  Outbound out;
  for (auto& [stream, state] : streams_) pull(stream, state, out);
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

boost::system::result<Outbound> Delivery::on_notify(std::uint64_t stream, std::uint64_t head_seq) {
  StreamState* state = find_or_load(stream);
  if (state == nullptr) return make_error_code(ErrorCode::kBadRequest);
  Outbound out;
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
  for (auto& [stream, state] : streams_) {
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
  if (code == ErrorCode::kUnknownStream && stream != protocol::kInboxStream) {
    // The device may not read it (any more). Its cursor stays in the store.
    streams_.erase(it);
    return;
  }
  it->second.pull_in_flight = false;
  it->second.failed = true;
}

bool Delivery::has_failed_pulls() const {
  return std::any_of(streams_.begin(), streams_.end(),
                     [](const auto& entry) { return entry.second.failed; });
}

Outbound Delivery::retry_failed() {
  Outbound out;
  for (auto& [stream, state] : streams_) {
    if (!state.failed) continue;
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
                                                      const DeliverRecall& recall) {
  const std::uint64_t stream = messages.stream();
  if (auto w = std::find(waiting_.begin(), waiting_.end(), stream); w != waiting_.end()) {
    waiting_.erase(w);  // normally the front: answers come in order
  }
  StreamState* state = find_or_load(stream);
  if (state == nullptr) return make_error_code(ErrorCode::kBadRequest);
  state->pull_in_flight = false;
  const Cursor before = state->cursor;
  Cursor& cursor = state->cursor;

  if (cursor.epoch == 0) {
    // No cursor yet: adopt the stream's epoch (the server sends epoch_changed = false).
    cursor.epoch = messages.epoch();
  } else if (cursor.epoch != messages.epoch()) {
    // The cursor is void. Decided by comparing epochs rather than by epoch_changed alone: a
    // second answer to a pull sent with the old epoch also says epoch_changed, and resetting
    // again would deliver the new epoch's entries twice.
    cursor = {messages.epoch(), 0};
  }
  // Entries before truncated_before are gone: skip them knowingly (never backwards).
  if (messages.truncated_before() > 0 && messages.truncated_before() - 1 > cursor.seq) {
    cursor.seq = messages.truncated_before() - 1;
  }

  bool gap = false;
  for (auto& entry : *messages.mutable_entries()) {
    if (entry.seq() <= cursor.seq) continue;  // already delivered
    if (entry.seq() != cursor.seq + 1) {
      gap = true;
      break;
    }
    try {
      hand_over(stream, cursor.epoch, entry, deliver, recall);
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
  if (gap) return make_error_code(ErrorCode::kBadRequest);

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

void Delivery::hand_over(std::uint64_t stream, std::uint64_t epoch, protocol::wire::Entry& entry,
                         const Deliver& deliver, const DeliverRecall& recall) {
  switch (entry.kind()) {
    case protocol::wire::DATA_KIND_TOMBSTONE:
      return;  // replaced or revoked before delivery: only its seq is left
    case protocol::wire::DATA_KIND_RECALL: {
      // Nothing to tell an app without a recall handler, or about an empty id.
      if (!recall || entry.data().empty()) return;
      Recall r;
      r.app = std::move(*entry.mutable_app());
      r.stream = stream;
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

}  // namespace herald::detail
