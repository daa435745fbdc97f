#include "upstream_queue.h"

#include <algorithm>
#include <unordered_set>
#include <utility>

#include "protocol/frame_codec.h"
#include "server_answer.h"

namespace herald::detail {

UpstreamQueue::UpstreamQueue(Backoff retry) : retry_(std::move(retry)) {}

void UpstreamQueue::push(UpstreamMessage m) {
  Entry e;
  e.message = std::move(m);
  entries_.push_back(std::move(e));
}

UpstreamCompletion UpstreamQueue::complete(Entry& e, UpstreamStatus status,
                                           std::uint32_t error_code, std::string reason) {
  UpstreamCompletion c;
  c.bytes = e.message.bytes();
  c.result.id = e.message.id;
  c.result.status = status;
  c.result.error_code = error_code;
  c.result.reason = std::move(reason);
  c.done = std::move(e.message.done);
  return c;
}

void UpstreamQueue::take_sendable(Clock::time_point now, std::uint32_t max_body_bytes,
                                  std::string& frames,
                                  std::vector<UpstreamCompletion>& completions) {
  const std::size_t limit = std::min<std::size_t>(max_body_bytes, protocol::kMaxEncodableBodyBytes);
  // Apps whose oldest message was seen: only that one may be in flight.
  std::unordered_set<std::string_view> seen;
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = *it;
    if (!seen.insert(e.message.app).second || e.in_flight || (e.retry_at && *e.retry_at > now)) {
      ++it;
      continue;
    }
    protocol::wire::Upstream up;
    up.set_id(e.message.id);
    up.set_app(e.message.app);
    up.set_data(e.message.data);
    up.set_kind(e.message.binary ? protocol::wire::DATA_KIND_BINARY
                                 : protocol::wire::DATA_KIND_JSON);
    const std::size_t body_bytes = up.ByteSizeLong();
    if (body_bytes > limit) {
      completions.push_back(complete(e, UpstreamStatus::kInvalid, 0,
                                     "upstream frame body of " + std::to_string(body_bytes) +
                                         " bytes exceeds the server's max_frame_bytes " +
                                         std::to_string(limit)));
      // The app's next message may go in its place.
      seen.erase(e.message.app);
      it = entries_.erase(it);
      continue;
    }
    protocol::append_frame(protocol::FrameType::kUpstream, up, frames);
    e.in_flight = true;
    e.sent_at = now;
    e.retry_at.reset();
    ++it;
  }
}

std::optional<UpstreamCompletion> UpstreamQueue::on_ack(std::uint64_t id, std::uint32_t error_code,
                                                        Clock::time_point now) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [id](const Entry& e) { return e.in_flight && e.message.id == id; });
  if (it == entries_.end()) return std::nullopt;
  it->in_flight = false;
  if (error_code == 0) {
    retry_.reset();
    UpstreamCompletion c = complete(*it, UpstreamStatus::kStored, 0, "");
    entries_.erase(it);
    return c;
  }
  if (is_retryable(error_code)) {
    it->retry_at = now + retry_.next();
    return std::nullopt;
  }
  UpstreamCompletion c =
      complete(*it, UpstreamStatus::kRejected, error_code, refusal_reason(error_code));
  entries_.erase(it);
  return c;
}

void UpstreamQueue::on_disconnected() {
  for (Entry& e : entries_) e.in_flight = false;
}

std::vector<UpstreamCompletion> UpstreamQueue::fail_all(const std::string& reason) {
  std::vector<UpstreamCompletion> out;
  out.reserve(entries_.size());
  for (Entry& e : entries_) out.push_back(complete(e, UpstreamStatus::kStopped, 0, reason));
  entries_.clear();
  return out;
}

std::optional<UpstreamQueue::Clock::time_point> UpstreamQueue::next_retry() const {
  std::optional<Clock::time_point> first;
  for (const Entry& e : entries_) {
    if (e.retry_at && (!first || *e.retry_at < *first)) first = e.retry_at;
  }
  return first;
}

std::optional<UpstreamQueue::Clock::time_point> UpstreamQueue::oldest_in_flight() const {
  std::optional<Clock::time_point> oldest;
  for (const Entry& e : entries_) {
    if (e.in_flight && (!oldest || e.sent_at < *oldest)) oldest = e.sent_at;
  }
  return oldest;
}

bool UpstreamQueue::in_flight(std::uint64_t id) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [id](const Entry& e) { return e.in_flight && e.message.id == id; });
}

}  // namespace herald::detail
