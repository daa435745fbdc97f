#include "subscribe_queue.h"

#include <algorithm>
#include <utility>

#include "protocol/frame_codec.h"
#include "server_answer.h"

namespace herald::detail {

namespace {

// The characters FCM allows in topic names, as the server checks them.
bool is_topic_char(char ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || ch == '.' || ch == '~' || ch == '%' || ch == '-';
}

}  // namespace

std::string SubscribeQueue::problem(const std::vector<std::string>& topics, std::uint32_t history) {
  if (topics.empty() || topics.size() > kMaxTopics) {
    return std::to_string(topics.size()) + " topics: a request names 1.." +
           std::to_string(kMaxTopics);
  }
  for (const std::string& t : topics) {
    if (t.empty() || t.size() > kMaxTopicBytes || !std::all_of(t.begin(), t.end(), is_topic_char)) {
      return "topic \"" + t + "\" is not 1..64 bytes of [A-Za-z0-9_.~%-]";
    }
  }
  if (history > kMaxHistory) {
    return "history " + std::to_string(history) + " is above " + std::to_string(kMaxHistory);
  }
  return {};
}

SubscribeQueue::SubscribeQueue(Backoff retry) : retry_(std::move(retry)) {}

void SubscribeQueue::push(SubscribeRequest r) {
  Entry e;
  e.request = std::move(r);
  entries_.push_back(std::move(e));
}

SubscribeCompletion SubscribeQueue::complete(Entry& e, SubscribeStatus status,
                                             std::uint32_t error_code, std::string reason) {
  SubscribeCompletion c;
  c.result.id = e.request.id;
  c.result.status = status;
  c.result.error_code = error_code;
  c.result.reason = std::move(reason);
  c.done = std::move(e.request.done);
  return c;
}

void SubscribeQueue::take_sendable(Clock::time_point now, std::uint32_t max_body_bytes,
                                   std::string& frames,
                                   std::vector<SubscribeCompletion>& completions) {
  const std::size_t limit = std::min<std::size_t>(max_body_bytes, protocol::kMaxEncodableBodyBytes);
  while (!entries_.empty()) {
    Entry& e = entries_.front();
    if (e.in_flight || (e.retry_at && *e.retry_at > now)) return;
    protocol::wire::Subscribe sub;
    sub.set_id(e.request.id);
    sub.set_app(e.request.app);
    for (const std::string& t : e.request.topics) sub.add_topics(t);
    sub.set_unsubscribe(e.request.unsubscribe);
    sub.set_history(e.request.history);
    const std::size_t body_bytes = sub.ByteSizeLong();
    if (body_bytes > limit) {
      completions.push_back(complete(e, SubscribeStatus::kInvalid, 0,
                                     "subscribe frame body of " + std::to_string(body_bytes) +
                                         " bytes exceeds the server's max_frame_bytes " +
                                         std::to_string(limit)));
      entries_.pop_front();
      continue;
    }
    protocol::append_frame(protocol::FrameType::kSubscribe, sub, frames);
    e.in_flight = true;
    e.sent_at = now;
    e.retry_at.reset();
    return;
  }
}

std::optional<SubscribeCompletion> SubscribeQueue::on_answer(std::uint64_t id,
                                                             std::uint32_t error_code,
                                                             Clock::time_point now) {
  if (entries_.empty() || !entries_.front().in_flight || entries_.front().request.id != id) {
    return std::nullopt;
  }
  Entry& e = entries_.front();
  e.in_flight = false;
  if (is_retryable(error_code)) {
    e.retry_at = now + retry_.next();
    return std::nullopt;
  }
  retry_.reset();
  SubscribeCompletion c;
  if (error_code == 0) {
    c = complete(e, SubscribeStatus::kDone, 0, "");
  } else {
    c = complete(e, SubscribeStatus::kRejected, error_code, refusal_reason(error_code));
  }
  entries_.pop_front();
  return c;
}

void SubscribeQueue::on_disconnected() {
  for (Entry& e : entries_) e.in_flight = false;
}

std::vector<SubscribeCompletion> SubscribeQueue::fail_all(const std::string& reason) {
  std::vector<SubscribeCompletion> out;
  out.reserve(entries_.size());
  for (Entry& e : entries_) out.push_back(complete(e, SubscribeStatus::kStopped, 0, reason));
  entries_.clear();
  return out;
}

std::optional<SubscribeQueue::Clock::time_point> SubscribeQueue::next_retry() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.front().retry_at;
}

std::optional<SubscribeQueue::Clock::time_point> SubscribeQueue::in_flight_since() const {
  if (entries_.empty() || !entries_.front().in_flight) return std::nullopt;
  return entries_.front().sent_at;
}

bool SubscribeQueue::in_flight(std::uint64_t id) const {
  return !entries_.empty() && entries_.front().in_flight && entries_.front().request.id == id;
}

}  // namespace herald::detail
