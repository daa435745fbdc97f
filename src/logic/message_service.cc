#include "logic/message_service.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/system/errc.hpp>

#include "common/crash_point.h"
#include "common/log.h"
#include "logic/device_token.h"

namespace herald::logic {
namespace {

// The wire id of a device's inbox (protocol::kInboxStream); the logic layer owns the mapping from
// wire stream ids to storage keys.
constexpr std::uint64_t kInboxStream = 0;

}  // namespace

Clock system_clock() {
  return [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
}

MessageService::MessageService(MessageLimits limits, const AppRegistry& apps,
                               storage::StreamStore& streams, storage::DeviceStore& devices,
                               distribution::Router& router, MessageIdGenerator& ids,
                               MessageTracker& tracker, TopicService& topics, Clock clock)
    : limits_(limits),
      apps_(apps),
      streams_(streams),
      devices_(devices),
      router_(router),
      ids_(ids),
      tracker_(tracker),
      topics_(topics),
      clock_(std::move(clock)) {}

storage::Record with_message_id(storage::Record idempotency, std::string_view message_id) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(idempotency.value, ec);
  if (ec || !value.is_object()) return idempotency;
  value.get_object()["id"] = message_id;
  idempotency.value = boost::json::serialize(value);
  return idempotency;
}

std::string MessageService::inbox_key(std::string_view device) {
  std::string key = "i/";
  key.append(device);
  return key;
}

boost::system::result<ValidatedTargets> MessageService::validate(const SendRequest& request) const {
  if (!apps_.exists(request.app)) return LogicError::kUnknownApp;
  if (request.devices.empty()) return LogicError::kBadRequest;
  if (request.devices.size() > limits_.max_targets) return LogicError::kTooManyTargets;
  if (request.data.size() > limits_.max_payload_bytes) return LogicError::kPayloadTooLarge;
  const std::int64_t ttl_s = request.ttl_s.value_or(limits_.default_ttl_s);
  if (ttl_s < 0 || ttl_s > limits_.max_ttl_s) return LogicError::kBadTtl;
  if (request.collapse_key.size() > kMaxCollapseKeyBytes) return LogicError::kBadRequest;

  ValidatedTargets targets;
  targets.registered.reserve(request.devices.size());
  std::unordered_set<std::string_view> seen;
  for (const auto& device : request.devices) {
    if (!DeviceTokenAuthority::valid_device_id(device)) return LogicError::kUnknownDevice;
    if (!seen.insert(device).second) continue;
    auto registered = devices_.is_registered(request.app, device);
    if (!registered) return storage_error(registered.error());
    (*registered ? targets.registered : targets.unregistered).push_back(device);
  }
  return targets;
}

boost::asio::awaitable<boost::system::result<SendResult>> MessageService::async_send(
    SendRequest request) {
  if (request.shared) co_return co_await async_send_shared(std::move(request));
  // Validate everything before storing anything: an error changes nothing.
  if (request.scheduled && request.idempotency) co_return LogicError::kBadRequest;
  auto validated = validate(request);
  if (!validated) co_return validated.error();
  if (!request.scheduled && !validated->unregistered.empty()) {
    co_return LogicError::kUnknownDevice;
  }
  const std::int64_t ttl_s = request.ttl_s.value_or(limits_.default_ttl_s);

  const std::int64_t now_ms = clock_();
  const ScheduledFire* fire = request.scheduled ? &*request.scheduled : nullptr;
  SendResult result;
  result.message_id = fire != nullptr ? fire->message_id : ids_.next(now_ms);
  // A scheduled message's TTL counts from its send time, not from when it was accepted.
  const std::int64_t ttl_from_ms = fire != nullptr ? fire->send_at_ms : now_ms;
  result.expires_at_ms = ttl_s == 0 ? ttl_from_ms + kTtlZeroWindowMs : ttl_from_ms + ttl_s * 1000;

  TrackedMessage tracked;
  tracked.created_at_ms = fire != nullptr ? fire->created_at_ms : now_ms;
  tracked.expires_at_ms = result.expires_at_ms;
  tracked.send_at_ms = fire != nullptr ? fire->send_at_ms : 0;
  auto drop = [&](std::string device, std::string_view reason) {
    TargetResult dropped;
    dropped.device = device;
    dropped.dropped = true;
    dropped.dropped_reason = reason;
    result.targets.push_back(std::move(dropped));
    tracked.dropped.push_back({std::move(device), std::string(reason)});
  };
  for (auto& device : validated->unregistered) drop(std::move(device), "unregistered");

  // ttl 0: "now or never". Only devices online at this moment get it, for a short window.
  // A scheduled message sent after its TTL ran out (the server was down) reaches nobody.
  const bool expired = result.expires_at_ms <= now_ms;
  std::vector<std::string> stored_targets;
  for (auto& device : validated->registered) {
    if (expired) {
      drop(std::move(device), "expired");
    } else if (ttl_s == 0 && !router_.is_online(device)) {
      drop(std::move(device), "offline");
    } else {
      stored_targets.push_back(std::move(device));
    }
  }

  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  batch.entries.reserve(stored_targets.size());
  for (const auto& device : stored_targets) {
    storage::AppendRequest append;
    append.stream = inbox_key(device);
    append.entry.app = request.app;
    append.entry.message_id = result.message_id;
    append.entry.kind = request.kind;
    append.entry.data = request.data;  // one copy per target: inbox entries are per device
    append.entry.sent_at_ms = now_ms;
    append.entry.expires_at_ms = result.expires_at_ms;
    append.collapse_key = request.collapse_key;
    batch.entries.push_back(std::move(append));
  }
  // The status record is part of the same atomic write: an accepted message always has one.
  tracked.devices = stored_targets;
  batch.put_records.push_back(
      MessageTracker::message_record(request.app, result.message_id, tracked));
  if (request.idempotency) {
    batch.unless_record_exists = request.idempotency->key;
    batch.put_records.push_back(
        with_message_id(std::move(*request.idempotency), result.message_id));
  }
  if (fire != nullptr) {
    batch.unless_record_exists = fire->settled.key;
    batch.delete_records.push_back(fire->consume_record);
    batch.put_records.push_back(fire->settled);
    // Accepted when it was scheduled: a full disk must not turn it into a dropped message.
    batch.may_use_reserve = true;
  }

  auto [ec, outcome] = co_await streams_.async_append(
      std::move(batch), boost::asio::as_tuple(boost::asio::use_awaitable));
  if (ec) {
    // A refusal for lack of space is logged once by the store (storage_space_low), not for
    // every message it refuses.
    if (ec != boost::system::errc::no_space_on_device) {
      log::warn("append_failed", {{"app", request.app}, {"error", ec.message()}});
    }
    co_return storage_error(ec);
  }
  if (outcome.existing) {
    result.existing = std::move(outcome.existing);
    result.targets.clear();
    co_return result;
  }
  HERALD_CRASH_POINT("after_store_write");

  // Commit before deliver: every entry is durable now, so notifies may go out.
  std::vector<TrackedTarget> tracked_targets;
  for (std::size_t i = 0; i < stored_targets.size(); ++i) {
    TargetResult t;
    t.device = std::move(stored_targets[i]);
    t.epoch = outcome.results[i].epoch;
    t.seq = outcome.results[i].seq;
    // Notified here, or (cluster mode) connected to another node, where the notify was forwarded.
    t.online = router_.notify(t.device, kInboxStream, t.seq, request.priority) ||
               router_.is_online(t.device);
    tracked_targets.push_back({t.device, t.epoch, t.seq, t.online});
    if (outcome.results[i].collapsed_seq != 0) {
      replaced(t.device, outcome.results[i].collapsed_seq);
    }
    result.targets.push_back(std::move(t));
  }
  tracker_.stored(request.app, result.message_id, result.expires_at_ms, tracked_targets);
  co_return result;
}

boost::asio::awaitable<boost::system::result<SendResult>> MessageService::async_send_shared(
    SendRequest request) {
  // Validate everything before storing anything: an error changes nothing. (Scheduled sends to
  // shared audiences are not supported yet: the scheduler keeps device lists.)
  if (request.scheduled || !request.devices.empty()) co_return LogicError::kBadRequest;
  if (!apps_.exists(request.app)) co_return LogicError::kUnknownApp;
  if (request.data.size() > limits_.max_payload_bytes) co_return LogicError::kPayloadTooLarge;
  const std::int64_t ttl_s = request.ttl_s.value_or(limits_.default_ttl_s);
  if (ttl_s < 0 || ttl_s > limits_.max_ttl_s) co_return LogicError::kBadTtl;
  if (request.collapse_key.size() > kMaxCollapseKeyBytes) co_return LogicError::kBadRequest;
  const SharedAudience& audience = *request.shared;
  if (audience.spread_ms > kMaxSpreadMs) co_return LogicError::kBadRequest;

  // Where the message is stored: the topic's stream, a topic the condition requires, or the
  // app's broadcast stream, which every device of the app reads.
  std::string carrier;
  std::shared_ptr<const distribution::StreamFilter> filter;
  switch (audience.kind) {
    case SharedAudience::Kind::kTopic:
      if (!TopicService::valid_topic(audience.topic)) co_return LogicError::kBadRequest;
      carrier = audience.topic;
      break;
    case SharedAudience::Kind::kBroadcast:
      break;
    case SharedAudience::Kind::kCondition: {
      if (!audience.condition || !audience.condition->satisfiable()) {
        co_return LogicError::kBadRequest;
      }
      const auto& names = audience.condition->topics();
      std::vector<std::uint64_t> streams;
      for (const auto& name : names) {
        auto info = co_await topics_.async_topic(request.app, name);
        if (!info) co_return info.error();
        streams.push_back(info->stream);
      }
      const auto required = audience.condition->required();
      if (!required.empty()) carrier = names[required.front()];
      filter =
          std::make_shared<const distribution::StreamFilter>(audience.condition->compile(streams));
      break;
    }
  }
  auto stream = co_await topics_.async_topic(request.app, carrier);
  if (!stream) co_return stream.error();

  const std::int64_t now_ms = clock_();
  SendResult result;
  result.message_id = ids_.next(now_ms);
  result.expires_at_ms = ttl_s == 0 ? now_ms + kTtlZeroWindowMs : now_ms + ttl_s * 1000;
  const std::string stream_key = TopicService::stream_key(request.app, carrier);

  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  storage::AppendRequest append;
  append.stream = stream_key;
  append.entry.app = request.app;
  append.entry.message_id = result.message_id;
  append.entry.kind = request.kind;
  append.entry.data = std::move(request.data);  // stored once, whatever the audience's size
  append.entry.sent_at_ms = now_ms;
  append.entry.expires_at_ms = result.expires_at_ms;
  if (filter) append.entry.audience = filter->encode();
  append.collapse_key = request.collapse_key;
  batch.entries.push_back(std::move(append));
  TrackedMessage tracked;
  tracked.created_at_ms = now_ms;
  tracked.expires_at_ms = result.expires_at_ms;
  switch (audience.kind) {
    case SharedAudience::Kind::kTopic:
      tracked.audience = {TrackedAudience::Kind::kTopic, audience.topic, stream_key,
                          stream->stream};
      break;
    case SharedAudience::Kind::kCondition:
      tracked.audience = {TrackedAudience::Kind::kCondition, audience.condition_text, stream_key,
                          stream->stream};
      break;
    case SharedAudience::Kind::kBroadcast:
      tracked.audience = {TrackedAudience::Kind::kBroadcast, "", stream_key, stream->stream};
      break;
  }
  batch.put_records.push_back(
      MessageTracker::message_record(request.app, result.message_id, tracked));
  if (request.idempotency) {
    batch.unless_record_exists = request.idempotency->key;
    batch.put_records.push_back(
        with_message_id(std::move(*request.idempotency), result.message_id));
  }

  auto [ec, outcome] = co_await streams_.async_append(
      std::move(batch), boost::asio::as_tuple(boost::asio::use_awaitable));
  if (ec) {
    // A refusal for lack of space is logged once by the store (storage_space_low), not for
    // every message it refuses.
    if (ec != boost::system::errc::no_space_on_device) {
      log::warn("append_failed", {{"app", request.app}, {"error", ec.message()}});
    }
    co_return storage_error(ec);
  }
  if (outcome.existing) {
    result.existing = std::move(outcome.existing);
    co_return result;
  }
  HERALD_CRASH_POINT("after_store_write");
  // Commit before deliver: the entry is durable, the notify may go to every reader.
  const auto& stored = outcome.results.front();
  result.shared = SharedResult{stream->stream, stored.epoch, stored.seq};
  distribution::StreamNotify notify;
  notify.stream = stream->stream;
  notify.head_seq = stored.seq;
  notify.priority = request.priority;
  notify.spread_ms = audience.spread_ms;
  notify.filter = filter;
  router_.notify_stream(notify);
  tracker_.stored_shared(request.app, result.message_id, result.expires_at_ms, stored.epoch,
                         stored.seq);
  boost::asio::co_spawn(co_await boost::asio::this_coro::executor,
                        async_count_targeted(request.app, result.message_id, result.expires_at_ms,
                                             carrier, notify.filter),
                        boost::asio::detached);
  co_return result;
}

void MessageService::replaced(const std::string& device, std::uint64_t seq) {
  // The tombstone keeps the replaced message's id: read it to mark that message "replaced".
  const std::string key = inbox_key(device);
  storage::ReadRequest read;
  read.stream = key;
  read.after_seq = seq - 1;
  read.max_entries = 1;
  read.now_ms = clock_();
  auto r = streams_.read(read);
  if (!r || r->entries.empty() || r->entries.front().seq != seq) return;
  tracker_.replaced(device, r->entries.front());
}

boost::system::result<storage::ReadResult> MessageService::pull(const std::string& device,
                                                                std::uint64_t stream,
                                                                std::uint64_t epoch,
                                                                std::uint64_t after_seq,
                                                                std::uint32_t limit) {
  if (stream != kInboxStream) return pull_shared(device, stream, epoch, after_seq, limit);
  const std::string key = inbox_key(device);
  storage::ReadRequest read;
  read.stream = key;
  read.epoch = epoch;
  read.after_seq = after_seq;
  read.max_entries =
      limit == 0 ? limits_.max_pull_entries : std::min(limit, limits_.max_pull_entries);
  read.max_bytes = limits_.max_pull_bytes;
  read.now_ms = clock_();
  auto r = streams_.read(read);
  if (!r) return storage_error(r.error());
  if (r->entries.empty()) return r;
  // Entries of an app the device left (unregistered) are stepped over, not delivered.
  auto apps = devices_.apps_of(device);
  if (!apps) return storage_error(apps.error());
  for (auto& e : r->entries) {
    if (e.kind == storage::DataKind::kTombstone) continue;
    if (!std::binary_search(apps->begin(), apps->end(), e.app)) {
      e.kind = storage::DataKind::kTombstone;
      e.data.clear();
    }
  }
  tracker_.delivered(device, r->entries);
  return r;
}

boost::system::result<void> MessageService::ack(const std::string& device, std::uint64_t stream,
                                                std::uint64_t epoch, std::uint64_t seq) {
  if (stream != kInboxStream) return ack_shared(device, stream, epoch, seq);
  const std::string key = inbox_key(device);
  auto covered = covered_by_ack(device, key, epoch, seq, 0);
  if (!covered) return covered.error();
  tracker_.acked({device, key, storage::AckedCursor{epoch, seq, clock_()}}, *covered);
  return {};
}

boost::system::result<std::vector<storage::Entry>> MessageService::covered_by_ack(
    const std::string& device, const std::string& key, std::uint64_t epoch, std::uint64_t seq,
    std::uint64_t from_seq) {
  auto head = streams_.head(key);
  if (!head) return storage_error(head.error());
  if (epoch != head->epoch || seq > head->head_seq) return LogicError::kBadRequest;
  auto previous = devices_.acked(device, key);
  // The entries after the previous ack. (An ack still queued is not seen yet; its entries are
  // then counted again, harmlessly for a stage record, an over-count for a shared one.)
  storage::ReadRequest read;
  read.stream = key;
  read.epoch = epoch;
  read.after_seq = previous && *previous && (*previous)->epoch == epoch ? (*previous)->seq : 0;
  read.after_seq = std::max(read.after_seq, from_seq);
  read.max_entries = limits_.max_pull_entries;
  read.max_bytes = limits_.max_pull_bytes;
  read.now_ms = clock_();
  std::vector<storage::Entry> covered;
  if (read.after_seq < seq) {
    if (auto entries = streams_.read(read)) {
      std::erase_if(entries->entries, [&](const storage::Entry& e) { return e.seq > seq; });
      covered = std::move(entries->entries);
    }
  }
  return covered;
}

}  // namespace herald::logic

namespace herald::logic {
namespace {

// Whether a condition entry is for a device that joined `joined`: its condition holds over the
// topics joined by the time it was sent and still joined. An entry without one is for every
// reader; one whose condition does not decode is for none.
bool reaches(const storage::Entry& e, const std::vector<Subscription>& joined) {
  if (e.audience.empty()) return true;
  auto filter = distribution::StreamFilter::decode(e.audience);
  return filter && filter->matches([&](std::uint64_t stream) {
    return std::any_of(joined.begin(), joined.end(), [&](const Subscription& j) {
      return j.stream == stream && j.since_ms <= e.sent_at_ms;
    });
  });
}

}  // namespace

boost::asio::awaitable<void> MessageService::async_count_targeted(
    std::string app, std::string id, std::int64_t expires_at_ms, std::string carrier,
    std::shared_ptr<const distribution::StreamFilter> filter) {
  constexpr std::uint64_t kMaxCount = 100'000'000;
  constexpr std::size_t kPage = 1000;
  std::uint64_t n = 0;
  if (!filter) {
    auto counted = co_await topics_.async_count_subscribers(app, carrier, kMaxCount);
    if (!counted) co_return;
    n = *counted;
  } else {
    const auto executor = co_await boost::asio::this_coro::executor;
    std::string after;
    for (;;) {
      auto page = topics_.subscribers(app, carrier, after, kPage);
      if (!page) co_return;
      for (const auto& device : *page) {
        auto joined = topics_.joined(device);
        if (!joined) co_return;
        const bool match = filter->matches([&](std::uint64_t stream) {
          return std::any_of(joined->begin(), joined->end(),
                             [&](const Subscription& j) { return j.stream == stream; });
        });
        if (match) ++n;
      }
      if (page->size() < kPage) break;
      after = page->back();
      // Let the loop serve others between pages.
      co_await boost::asio::post(executor, boost::asio::use_awaitable);
    }
  }
  tracker_.targeted(app, id, expires_at_ms, n);
}

boost::system::result<storage::ReadResult> MessageService::pull_shared(const std::string& device,
                                                                       std::uint64_t stream,
                                                                       std::uint64_t epoch,
                                                                       std::uint64_t after_seq,
                                                                       std::uint32_t limit) {
  auto sub = topics_.subscription(device, stream);
  if (!sub) return sub.error();
  if (!*sub) return LogicError::kForbiddenStream;
  const std::string key = TopicService::stream_key((*sub)->app, (*sub)->topic);
  auto head = streams_.head(key);
  if (!head) return storage_error(head.error());
  storage::ReadRequest read;
  read.stream = key;
  read.epoch = epoch;
  read.after_seq = after_seq;
  read.max_entries =
      limit == 0 ? limits_.max_pull_entries : std::min(limit, limits_.max_pull_entries);
  read.max_bytes = limits_.max_pull_bytes;
  read.now_ms = clock_();
  // What was pushed before the device joined is not its to read: a cursor before its start
  // (none yet, or an older one) reads from the start, and truncated_before says so.
  const bool epoch_changed = epoch != 0 && epoch != head->epoch;
  const std::uint64_t effective = epoch_changed ? 0 : after_seq;
  const bool clamped = head->epoch == (*sub)->epoch && effective < (*sub)->start_seq;
  if (clamped) {
    read.epoch = head->epoch;
    read.after_seq = (*sub)->start_seq;
  }
  auto r = streams_.read(read);
  if (!r) return storage_error(r.error());
  if (clamped && r->epoch == head->epoch) {
    r->epoch_changed = epoch_changed;
    r->truncated_before = std::max(r->truncated_before, (*sub)->start_seq + 1);
  }
  // Condition messages: a device whose topics (joined by the time the message was sent, and
  // still joined) do not satisfy the condition steps over them. A recall is for a device that
  // had the revoked message: its cursor was past it.
  const std::uint64_t passed = r->epoch == head->epoch && !clamped ? effective : 0;
  const std::uint64_t from_seq = (*sub)->epoch == r->epoch ? (*sub)->start_seq : 0;
  std::optional<std::vector<Subscription>> joined;
  for (auto& e : r->entries) {
    bool skip = e.kind == storage::DataKind::kRecall && !had_revoked(e, r->epoch, from_seq, passed);
    if (!skip && !e.audience.empty()) {
      if (!joined) {
        auto topics = topics_.joined(device);
        if (!topics) return topics.error();
        joined = std::move(*topics);
      }
      skip = !reaches(e, *joined);
    }
    if (skip) {
      e.kind = storage::DataKind::kTombstone;
      e.data.clear();
    }
    e.audience.clear();
  }
  tracker_.delivered_shared(r->entries);
  return r;
}

bool MessageService::had_revoked(const storage::Entry& recall, std::uint64_t epoch,
                                 std::uint64_t from_seq, std::uint64_t passed) {
  const auto at = tracker_.shared_position(recall.app, recall.data);
  return at && at->epoch == epoch && at->seq > from_seq && at->seq <= passed;
}

boost::system::result<void> MessageService::ack_shared(const std::string& device,
                                                       std::uint64_t stream, std::uint64_t epoch,
                                                       std::uint64_t seq) {
  auto sub = topics_.subscription(device, stream);
  if (!sub) return sub.error();
  if (!*sub) return LogicError::kForbiddenStream;
  const std::string key = TopicService::stream_key((*sub)->app, (*sub)->topic);
  // What came before the device joined is not its to ack.
  auto covered =
      covered_by_ack(device, key, epoch, seq, (*sub)->epoch == epoch ? (*sub)->start_seq : 0);
  if (!covered) return covered.error();
  // Condition messages count only where they were meant to go.
  if (std::any_of(covered->begin(), covered->end(),
                  [](const auto& e) { return !e.audience.empty(); })) {
    auto topics = topics_.joined(device);
    if (!topics) return topics.error();
    std::erase_if(*covered, [&](const storage::Entry& e) { return !reaches(e, *topics); });
  }
  tracker_.acked_shared({device, key, storage::AckedCursor{epoch, seq, clock_()}}, *covered);
  return {};
}

}  // namespace herald::logic
