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
  state.retry = false;
  state.notified_head = 0;
  out.pulls.push_back({stream, state.cursor.epoch, state.cursor.seq, pull_limit_});
}

Outbound Delivery::on_connected() {
  find_or_load(protocol::kInboxStream);
  Outbound out;
  for (auto& [stream, state] : streams_) pull(stream, state, out);
  return out;
}

void Delivery::on_disconnected() {
  for (auto& [stream, state] : streams_) {
    state.pull_in_flight = false;
    state.pull_again = false;
    state.retry = false;
    state.notified_head = 0;
  }
}

boost::system::result<Outbound> Delivery::on_notify(std::uint64_t stream, std::uint64_t head_seq) {
  StreamState* state = find_or_load(stream);
  if (state == nullptr) return make_error_code(ErrorCode::kBadRequest);
  Outbound out;
  if (state->pull_in_flight) {
    // Not lost: looked at again when the reply arrives.
    state->notified_head = std::max(state->notified_head, head_seq);
  } else if (head_seq > state->cursor.seq) {
    pull(stream, *state, out);
  }
  return out;
}

Outbound Delivery::on_pong(bool resync) {
  Outbound out;
  for (auto& [stream, state] : streams_) {
    if (!resync && !state.retry) continue;
    if (state.pull_in_flight) {
      state.pull_again = true;
    } else {
      pull(stream, state, out);
    }
  }
  return out;
}

void Delivery::on_request_failed() {
  for (auto& [stream, state] : streams_) {
    if (!state.pull_in_flight) continue;
    state.pull_in_flight = false;
    state.retry = true;
  }
}

boost::system::result<Outbound> Delivery::on_messages(protocol::wire::Messages& messages,
                                                      const Deliver& deliver) {
  const std::uint64_t stream = messages.stream();
  StreamState* state = find_or_load(stream);
  if (state == nullptr) return make_error_code(ErrorCode::kBadRequest);
  state->pull_in_flight = false;
  const Cursor before = state->cursor;
  Cursor& cursor = state->cursor;

  // A new epoch voids the cursor. Compared with our own epoch rather than trusting
  // epoch_changed alone: a second reply to a pull sent with the old epoch also says
  // epoch_changed, and resetting again would deliver the new epoch's entries twice.
  if (cursor.epoch != messages.epoch()) cursor = {messages.epoch(), 0};
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
    Message m;
    m.app = std::move(*entry.mutable_app());
    m.stream = stream;
    m.epoch = cursor.epoch;
    m.seq = entry.seq();
    m.id = std::move(*entry.mutable_message_id());
    m.data = std::move(*entry.mutable_data());
    m.binary = entry.kind() == protocol::wire::DATA_KIND_BINARY;
    m.sent_at_ms = static_cast<std::int64_t>(entry.sent_at_ms());
    m.expires_at_ms = static_cast<std::int64_t>(entry.expires_at_ms());
    try {
      deliver(m);
    } catch (...) {
      // The failed entry is not counted as delivered: the next client on this store gets it.
      if (cursor != before) cursors_.save(stream, cursor);
      throw;
    }
    cursor.seq = m.seq;
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
  bool again = state->pull_again || state->notified_head > cursor.seq;
  if (progressed && (messages.more() || messages.head_seq() > cursor.seq)) again = true;
  state->pull_again = false;
  state->notified_head = 0;
  if (again) pull(stream, *state, out);
  return out;
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
