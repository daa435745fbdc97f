#include "logic/message_scheduler.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <exception>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "common/crash_point.h"
#include "common/log.h"

namespace herald::logic {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::string_view kSchedPrefix = "sched/";
constexpr std::size_t kDueDigits = 13;  // Unix ms until the year 2286
constexpr std::size_t kRecoverPage = 1024;

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  std::size_t size = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') --size;
  if (text.size() >= 2 && text[text.size() - 2] == '=') --size;
  out.resize(size);
  return out;
}

// A sched record's key, taken apart: sched/<due, 13 digits>/<app>/<id>.
struct SchedKey {
  std::int64_t due_ms = 0;
  std::string app;
  std::string id;
};

std::optional<SchedKey> parse_sched_key(std::string_view key) {
  if (!key.starts_with(kSchedPrefix)) return std::nullopt;
  key.remove_prefix(kSchedPrefix.size());
  if (key.size() < kDueDigits + 1 || key[kDueDigits] != '/') return std::nullopt;
  SchedKey out;
  const auto [end, ec] = std::from_chars(key.data(), key.data() + kDueDigits, out.due_ms);
  if (ec != std::errc() || end != key.data() + kDueDigits) return std::nullopt;
  key.remove_prefix(kDueDigits + 1);
  // App ids have no '/'; message ids neither.
  const auto slash = key.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == key.size()) {
    return std::nullopt;
  }
  out.app = key.substr(0, slash);
  out.id = key.substr(slash + 1);
  if (out.id.find('/') != std::string::npos) return std::nullopt;
  return out;
}

// What a sched record holds: the request as accepted, with its TTL made explicit (a default
// changed by a restart must not change an accepted message).
struct StoredRequest {
  std::vector<std::string> devices;
  storage::DataKind kind = storage::DataKind::kJson;
  std::string data;
  std::int64_t ttl_s = 0;
  std::string collapse_key;
  distribution::NotifyPriority priority = distribution::NotifyPriority::kHigh;
  std::int64_t created_at_ms = 0;
  std::int64_t send_at_ms = 0;
  std::int64_t expires_at_ms = 0;
};

// {"devices": [..], "kind": "json"|"binary", "data": text or base64, "ttl_s": N,
//  "collapse_key": "..", "priority": "normal", "created_at_ms": N, "send_at_ms": N,
//  "expires_at_ms": N}; without "priority" (records of older versions too) it is high.
std::string encode_request(const StoredRequest& r) {
  json::array devices;
  for (const auto& d : r.devices) devices.emplace_back(d);
  const bool binary = r.kind == storage::DataKind::kBinary;
  json::object o{{"devices", std::move(devices)},
                 {"kind", binary ? "binary" : "json"},
                 // JSON data is UTF-8 text (it was parsed as JSON); bytes go as base64.
                 {"data", binary ? base64_encode(r.data) : r.data},
                 {"ttl_s", r.ttl_s},
                 {"created_at_ms", r.created_at_ms},
                 {"send_at_ms", r.send_at_ms},
                 {"expires_at_ms", r.expires_at_ms}};
  if (!r.collapse_key.empty()) o["collapse_key"] = r.collapse_key;
  if (r.priority == distribution::NotifyPriority::kNormal) o["priority"] = "normal";
  return json::serialize(o);
}

std::optional<StoredRequest> decode_request(std::string_view text) {
  boost::system::error_code ec;
  const json::value v = json::parse(text, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return std::nullopt;
  StoredRequest r;
  auto integer = [o](std::string_view name, std::int64_t& out) {
    const json::value* field = o->if_contains(name);
    if (field == nullptr || !field->is_int64()) return false;
    out = field->get_int64();
    return true;
  };
  if (!integer("ttl_s", r.ttl_s) || !integer("created_at_ms", r.created_at_ms) ||
      !integer("send_at_ms", r.send_at_ms) || !integer("expires_at_ms", r.expires_at_ms)) {
    return std::nullopt;
  }
  const json::value* devices = o->if_contains("devices");
  const json::value* kind = o->if_contains("kind");
  const json::value* data = o->if_contains("data");
  if (devices == nullptr || !devices->is_array() || kind == nullptr || !kind->is_string() ||
      data == nullptr || !data->is_string()) {
    return std::nullopt;
  }
  for (const auto& d : devices->get_array()) {
    if (!d.is_string()) return std::nullopt;
    r.devices.emplace_back(d.get_string());
  }
  if (kind->get_string() == "binary") {
    auto bytes = base64_decode(data->get_string());
    if (!bytes) return std::nullopt;
    r.kind = storage::DataKind::kBinary;
    r.data = std::move(*bytes);
  } else if (kind->get_string() == "json") {
    r.data = data->get_string();
  } else {
    return std::nullopt;
  }
  if (const json::value* key = o->if_contains("collapse_key")) {
    if (!key->is_string()) return std::nullopt;
    r.collapse_key = key->get_string();
  }
  if (const json::value* priority = o->if_contains("priority")) {
    if (!priority->is_string() || priority->get_string() != "normal") return std::nullopt;
    r.priority = distribution::NotifyPriority::kNormal;
  }
  return r;
}

bool transient(const boost::system::error_code& ec) {
  return ec == LogicError::kBusy || ec == LogicError::kStorageFailed;
}

}  // namespace

std::string MessageScheduler::sched_key(std::int64_t due_ms, std::string_view app,
                                        std::string_view id) {
  std::string digits = std::to_string(std::max<std::int64_t>(0, due_ms));
  std::string key(kSchedPrefix);
  key.append(kDueDigits > digits.size() ? kDueDigits - digits.size() : 0, '0');
  key.append(digits).append("/").append(app).append("/").append(id);
  return key;
}

std::string MessageScheduler::settled_key(std::string_view app, std::string_view id) {
  std::string key = "settled/";
  key.append(app).append("/").append(id);
  return key;
}

std::shared_ptr<MessageScheduler> MessageScheduler::create(
    asio::any_io_executor executor, SchedulerLimits limits, MessageService& messages,
    MessageTracker& tracker, storage::StreamStore& streams, storage::RecordStore& records,
    MessageIdGenerator& ids, Clock clock) {
  return std::shared_ptr<MessageScheduler>(new MessageScheduler(
      std::move(executor), limits, messages, tracker, streams, records, ids, std::move(clock)));
}

MessageScheduler::MessageScheduler(asio::any_io_executor executor, SchedulerLimits limits,
                                   MessageService& messages, MessageTracker& tracker,
                                   storage::StreamStore& streams, storage::RecordStore& records,
                                   MessageIdGenerator& ids, Clock clock)
    : executor_(std::move(executor)),
      limits_(limits),
      messages_(messages),
      tracker_(tracker),
      streams_(streams),
      records_(records),
      ids_(ids),
      clock_(std::move(clock)),
      timer_(executor_) {
  limits_.fire_batch = std::max<std::size_t>(1, limits_.fire_batch);
}

boost::system::result<void> MessageScheduler::recover() {
  std::unordered_map<std::string, std::size_t> by_app;
  std::size_t total = 0;
  std::string after;
  for (;;) {
    auto page = records_.scan(kSchedPrefix, after, kRecoverPage, clock_());
    if (!page) return storage_error(page.error());
    for (const auto& r : *page) {
      const auto key = parse_sched_key(r.key);
      if (!key) continue;  // the loop drops it when it comes to it
      ++by_app[key->app];
      ++total;
    }
    if (page->size() < kRecoverPage) break;
    after = page->back().key;
  }
  {
    std::lock_guard lock(slots_mutex_);
    pending_by_app_ = std::move(by_app);
    pending_total_ = total;
  }
  log::info("scheduler_recovered", {{"pending", total}});
  return {};
}

void MessageScheduler::start() {
  // An exception escaping the loop (out of memory, a bug) stops scheduled sends, not the
  // process; it is logged here, where the loop was spawned.
  asio::co_spawn(executor_, run(), [](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      log::error("scheduler_failed", {{"error", x.what()}});
    }
  });
}

void MessageScheduler::stop() {
  asio::post(executor_, [self = shared_from_this()] {
    self->stopping_ = true;
    self->timer_.cancel();
  });
}

void MessageScheduler::wake() {
  asio::post(executor_, [self = shared_from_this()] {
    self->woken_ = true;
    self->timer_.cancel();
  });
}

void MessageScheduler::scheduled(std::int64_t due_ms) {
  asio::post(executor_, [self = shared_from_this(), due_ms] {
    if (self->sleeping_until_ms_ == kAwake) {
      // Mid-step (or backing off): its scan may have missed the new record.
      self->woken_ = true;
    } else if (due_ms < self->sleeping_until_ms_) {
      self->woken_ = true;
      self->timer_.cancel();
    }
  });
}

std::size_t MessageScheduler::pending(std::string_view app) const {
  std::lock_guard lock(slots_mutex_);
  if (app.empty()) return pending_total_;
  const auto it = pending_by_app_.find(std::string(app));
  return it == pending_by_app_.end() ? 0 : it->second;
}

bool MessageScheduler::take_slot(const std::string& app) {
  std::lock_guard lock(slots_mutex_);
  std::size_t& of_app = pending_by_app_[app];
  if (of_app >= limits_.max_pending_per_app || pending_total_ >= limits_.max_pending_total) {
    if (of_app == 0) pending_by_app_.erase(app);
    return false;
  }
  ++of_app;
  ++pending_total_;
  return true;
}

void MessageScheduler::release_slot(const std::string& app) {
  std::lock_guard lock(slots_mutex_);
  const auto it = pending_by_app_.find(app);
  // recover() counted every record this process may remove; a missing count is a bug, but a
  // harmless one: never go below zero.
  if (it == pending_by_app_.end()) return;
  if (--it->second == 0) pending_by_app_.erase(it);
  if (pending_total_ > 0) --pending_total_;
}

asio::awaitable<boost::system::result<ScheduleResult>> MessageScheduler::async_schedule(
    SendRequest request, std::int64_t send_at_ms) {
  if (request.scheduled) co_return LogicError::kBadRequest;
  const std::int64_t now_ms = clock_();
  if (send_at_ms < 0 || send_at_ms - now_ms > limits_.max_horizon_ms) {
    co_return LogicError::kBadSendAt;
  }
  // The same checks, and errors, as an immediate send: a scheduled message that would fail
  // now is refused now, not dropped later.
  auto validated = messages_.validate(request);
  if (!validated) co_return validated.error();
  if (!validated->unregistered.empty()) co_return LogicError::kUnknownDevice;

  StoredRequest stored;
  stored.devices = std::move(validated->registered);
  stored.kind = request.kind;
  stored.data = std::move(request.data);
  stored.ttl_s = request.ttl_s.value_or(messages_.limits().default_ttl_s);
  stored.collapse_key = std::move(request.collapse_key);
  stored.priority = request.priority;
  stored.created_at_ms = now_ms;
  stored.send_at_ms = send_at_ms;
  // The TTL counts from the send time (as MessageService::async_send computes it then).
  stored.expires_at_ms = stored.ttl_s == 0 ? send_at_ms + MessageService::kTtlZeroWindowMs
                                           : send_at_ms + stored.ttl_s * 1000;
  std::string value = encode_request(stored);
  if (value.size() > limits_.max_record_bytes) co_return LogicError::kPayloadTooLarge;

  ScheduleResult result;
  result.message_id = ids_.next(now_ms);
  result.send_at_ms = send_at_ms;
  if (!take_slot(request.app)) co_return LogicError::kTooManyScheduled;

  TrackedMessage tracked;
  tracked.phase = TrackedMessage::Phase::kScheduled;
  tracked.devices = stored.devices;
  tracked.created_at_ms = now_ms;
  tracked.expires_at_ms = stored.expires_at_ms;
  tracked.send_at_ms = send_at_ms;

  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  // Never expires: only a fire, a cancel or a drop removes it.
  batch.put_records.push_back(
      {sched_key(send_at_ms, request.app, result.message_id), std::move(value), 0});
  batch.put_records.push_back(
      MessageTracker::message_record(request.app, result.message_id, tracked));
  if (request.idempotency) {
    batch.unless_record_exists = request.idempotency->key;
    batch.put_records.push_back(
        with_message_id(std::move(*request.idempotency), result.message_id));
  }
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) {
    release_slot(request.app);
    log::warn("schedule_failed", {{"app", request.app}, {"error", ec.message()}});
    co_return storage_error(ec);
  }
  if (outcome.existing) {
    release_slot(request.app);
    result.existing = std::move(outcome.existing);
    co_return result;
  }
  metrics_.scheduled_total.fetch_add(1, std::memory_order_relaxed);
  result.devices = std::move(stored.devices);
  scheduled(send_at_ms);
  co_return result;
}

asio::awaitable<boost::system::result<CancelOutcome>> MessageScheduler::async_cancel(
    std::string app, std::string id) {
  auto message = tracker_.message(app, id);
  if (!message) co_return message.error();
  if (message->phase == TrackedMessage::Phase::kCancelled) co_return CancelOutcome::kCancelled;
  if (message->phase != TrackedMessage::Phase::kScheduled) co_return CancelOutcome::kNotScheduled;

  const std::int64_t now_ms = clock_();
  TrackedMessage cancelled = std::move(*message);
  cancelled.phase = TrackedMessage::Phase::kCancelled;
  cancelled.cancelled_at_ms = now_ms;
  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  // The fire writes the same key: exactly one of the two is written (see the top of the .h).
  batch.unless_record_exists = settled_key(app, id);
  batch.put_records.push_back(
      {settled_key(app, id), "cancelled", cancelled.expires_at_ms + MessageTracker::kRetentionMs});
  batch.delete_records.push_back(sched_key(cancelled.send_at_ms, app, id));
  batch.put_records.push_back(MessageTracker::message_record(app, id, cancelled));
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) {
    log::warn("cancel_failed", {{"app", app}, {"id", id}, {"error", ec.message()}});
    co_return storage_error(ec);
  }
  if (outcome.existing) {
    // Settled before this write: cancelled by another request, or sent (fired or dropped).
    co_return outcome.existing->value == "cancelled" ? CancelOutcome::kCancelled
                                                     : CancelOutcome::kNotScheduled;
  }
  release_slot(app);
  metrics_.cancelled_total.fetch_add(1, std::memory_order_relaxed);
  co_return CancelOutcome::kCancelled;
}

asio::awaitable<FireStep> MessageScheduler::async_fire_due() {
  const auto self = shared_from_this();
  FireStep step;
  const std::int64_t now_ms = clock_();
  auto page = records_.scan(kSchedPrefix, {}, limits_.fire_batch, now_ms);
  if (!page) {
    log::warn("scheduler_scan_failed", {{"error", page.error().message()}});
    step.retried = 1;
    metrics_.steps_total.fetch_add(1, std::memory_order_relaxed);
    co_return step;
  }
  std::vector<storage::Record> due;
  for (auto& r : *page) {
    const auto key = parse_sched_key(r.key);
    // A key that does not parse is "due": async_fire drops it.
    if (key && key->due_ms > now_ms) {
      step.next_due_ms = key->due_ms;  // keys order by due time: the rest are later
      break;
    }
    due.push_back(std::move(r));
  }
  step.more = due.size() == limits_.fire_batch;

  // Fired concurrently so that their writes share group commits. Each starts (in key order,
  // the executor running them in the order spawned) and submits its write before the next
  // starts, so two messages for one device are stored in due order.
  std::size_t remaining = due.size();
  asio::steady_timer all_done(executor_, asio::steady_timer::time_point::max());
  for (auto& record : due) {
    asio::co_spawn(executor_, async_fire(std::move(record)),
                   [&step, &remaining, &all_done](std::exception_ptr e, Fired fired) {
                     if (e) {
                       try {
                         std::rethrow_exception(e);
                       } catch (const std::exception& x) {
                         log::error("scheduled_fire_failed", {{"error", x.what()}});
                       }
                       fired = Fired::kRetry;
                     }
                     ++(fired == Fired::kRetry ? step.retried : step.fired);
                     if (--remaining == 0) all_done.cancel();
                   });
  }
  // Ends when the last fire cancels it; the error says nothing more.
  if (remaining > 0) co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  metrics_.steps_total.fetch_add(1, std::memory_order_relaxed);
  co_return step;
}

asio::awaitable<MessageScheduler::Fired> MessageScheduler::async_fire(storage::Record record) {
  const auto key = parse_sched_key(record.key);
  if (!key) {
    // Not a key this scheduler writes: nothing to send, no message to tell. Remove it so that
    // it does not stop the loop's scan.
    log::error("scheduled_record_corrupt", {{"key", record.key}});
    storage::AppendBatch batch;
    batch.now_ms = clock_();
    batch.delete_records.push_back(record.key);
    auto [ec, ignored] =
        co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
    co_return ec ? Fired::kRetry : Fired::kSettled;
  }
  // Named values into async_drop, and its result bound before co_return: GCC 12 miscompiles
  // temporaries built inside a co_await expression (src/http/README.md).
  std::string app = key->app;
  std::string id = key->id;
  std::string rejected = "rejected";
  auto stored = decode_request(record.value);
  if (!stored) {
    log::error("scheduled_record_corrupt", {{"app", app}, {"id", id}});
    const Fired dropped = co_await async_drop(std::move(record.key), std::move(app), std::move(id),
                                              std::move(rejected));
    co_return dropped;
  }

  SendRequest request;
  request.app = app;
  request.devices = std::move(stored->devices);
  request.data = std::move(stored->data);
  request.kind = stored->kind;
  request.ttl_s = stored->ttl_s;
  request.collapse_key = std::move(stored->collapse_key);
  request.priority = stored->priority;
  ScheduledFire fire;
  fire.message_id = id;
  fire.created_at_ms = stored->created_at_ms;
  fire.send_at_ms = stored->send_at_ms;
  fire.consume_record = record.key;
  fire.settled = {settled_key(app, id), "fired",
                  stored->expires_at_ms + MessageTracker::kRetentionMs};
  request.scheduled = std::move(fire);

  auto sent = co_await messages_.async_send(std::move(request));
  if (!sent) {
    if (transient(sent.error())) {
      metrics_.retries_total.fetch_add(1, std::memory_order_relaxed);
      log::warn("scheduled_fire_retry",
                {{"app", app}, {"id", id}, {"error", sent.error().message()}});
      co_return Fired::kRetry;
    }
    // It passed these checks when it was accepted; the app or the limits changed since.
    log::warn("scheduled_message_rejected",
              {{"app", app}, {"id", id}, {"error", sent.error().message()}});
    const Fired dropped = co_await async_drop(std::move(record.key), std::move(app), std::move(id),
                                              std::move(rejected));
    co_return dropped;
  }
  if (sent->existing) {
    // Settled already: a cancel won the race, and removed the sched record with it.
    co_return Fired::kSettled;
  }
  HERALD_CRASH_POINT("after_scheduled_fire");
  release_slot(app);
  metrics_.fired_total.fetch_add(1, std::memory_order_relaxed);
  std::size_t dropped = 0;
  for (const auto& t : sent->targets) dropped += t.dropped ? 1 : 0;
  log::debug("scheduled_message_sent",
             {{"app", app}, {"id", id}, {"targets", sent->targets.size()}, {"dropped", dropped}});
  co_return Fired::kSettled;
}

asio::awaitable<MessageScheduler::Fired> MessageScheduler::async_drop(std::string sched,
                                                                      std::string app,
                                                                      std::string id,
                                                                      std::string reason) {
  const std::int64_t now_ms = clock_();
  TrackedMessage dropped;
  auto message = tracker_.message(app, id);
  if (message) {
    dropped.created_at_ms = message->created_at_ms;
    dropped.expires_at_ms = message->expires_at_ms;
    dropped.send_at_ms = message->send_at_ms;
    for (auto& d : message->devices) dropped.dropped.push_back({std::move(d), reason});
  } else if (message.error() != LogicError::kUnknownMessage) {
    co_return Fired::kRetry;
  }
  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  batch.unless_record_exists = settled_key(app, id);
  batch.put_records.push_back(
      {settled_key(app, id), "dropped", dropped.expires_at_ms + MessageTracker::kRetentionMs});
  batch.delete_records.push_back(std::move(sched));
  if (message) batch.put_records.push_back(MessageTracker::message_record(app, id, dropped));
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return Fired::kRetry;
  if (!outcome.existing) {
    release_slot(app);
    metrics_.rejected_total.fetch_add(1, std::memory_order_relaxed);
  }
  co_return Fired::kSettled;
}

asio::awaitable<void> MessageScheduler::run() {
  const auto self = shared_from_this();
  unsigned attempt = 0;  // steps in a row whose fires failed
  while (!stopping_) {
    // Cleared before the scan: a message scheduled from here on sets it again.
    woken_ = false;
    sleeping_until_ms_ = kAwake;
    const FireStep step = co_await async_fire_due();
    if (stopping_) break;
    if (step.retried > 0) {
      co_await back_off(++attempt);
      continue;
    }
    attempt = 0;
    if (step.more || woken_) continue;
    co_await sleep(step.next_due_ms);
  }
}

asio::awaitable<void> MessageScheduler::sleep(std::optional<std::int64_t> until_ms) {
  if (stopping_ || woken_) co_return;
  if (until_ms) {
    sleeping_until_ms_ = *until_ms;
    const std::int64_t wait_ms = std::clamp<std::int64_t>(*until_ms - clock_(), 0, kMaxSleepMs);
    timer_.expires_after(std::chrono::milliseconds(wait_ms));
  } else {
    sleeping_until_ms_ = kForever;
    timer_.expires_at(asio::steady_timer::time_point::max());
  }
  // Ends at the due time, or by wake(), stop() or an earlier message cancelling it.
  co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  sleeping_until_ms_ = kAwake;
}

asio::awaitable<void> MessageScheduler::back_off(unsigned attempt) {
  if (stopping_) co_return;
  const unsigned doublings = std::min(attempt - 1, 16u);
  const std::int64_t wait_ms = std::min(kRetryMaxMs, kRetryInitialMs << doublings);
  log::warn("scheduler_backing_off", {{"attempt", attempt}, {"wait_ms", wait_ms}});
  timer_.expires_after(std::chrono::milliseconds(wait_ms));
  co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
}

}  // namespace herald::logic
