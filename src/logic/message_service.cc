#include "logic/message_service.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/errc.hpp>

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
                               MessageTracker& tracker, Clock clock)
    : limits_(limits),
      apps_(apps),
      streams_(streams),
      devices_(devices),
      router_(router),
      ids_(ids),
      tracker_(tracker),
      clock_(std::move(clock)) {}

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
    batch.put_records.push_back(std::move(*request.idempotency));
  }
  if (fire != nullptr) {
    batch.unless_record_exists = fire->settled.key;
    batch.delete_records.push_back(fire->consume_record);
    batch.put_records.push_back(fire->settled);
  }

  auto [ec, outcome] = co_await streams_.async_append(
      std::move(batch), boost::asio::as_tuple(boost::asio::use_awaitable));
  if (ec) {
    log::warn("append_failed", {{"app", request.app}, {"error", ec.message()}});
    co_return storage_error(ec);
  }
  if (outcome.existing) {
    result.existing = std::move(outcome.existing);
    result.targets.clear();
    co_return result;
  }

  // Commit before deliver: every entry is durable now, so notifies may go out.
  std::vector<TrackedTarget> tracked_targets;
  for (std::size_t i = 0; i < stored_targets.size(); ++i) {
    TargetResult t;
    t.device = std::move(stored_targets[i]);
    t.epoch = outcome.results[i].epoch;
    t.seq = outcome.results[i].seq;
    t.online = router_.notify(t.device, kInboxStream, t.seq, request.priority);
    tracked_targets.push_back({t.device, t.epoch, t.seq, t.online});
    if (outcome.results[i].collapsed_seq != 0) {
      replaced(t.device, outcome.results[i].collapsed_seq);
    }
    result.targets.push_back(std::move(t));
  }
  tracker_.stored(request.app, result.message_id, result.expires_at_ms, tracked_targets);
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
  if (stream != kInboxStream) return LogicError::kForbiddenStream;
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
  if (stream != kInboxStream) return LogicError::kForbiddenStream;
  const std::string key = inbox_key(device);
  auto head = streams_.head(key);
  if (!head) return storage_error(head.error());
  if (epoch != head->epoch || seq > head->head_seq) return LogicError::kBadRequest;
  auto previous = devices_.acked(device, key);
  // The acked stage of every message the ack covers: the entries after the previous ack. (An
  // ack still queued is not seen yet; its entries are then marked again, harmlessly.)
  storage::ReadRequest read;
  read.stream = key;
  read.epoch = epoch;
  read.after_seq = previous && *previous && (*previous)->epoch == epoch ? (*previous)->seq : 0;
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
  tracker_.acked({device, key, storage::AckedCursor{epoch, seq, clock_()}}, covered);
  return {};
}

}  // namespace herald::logic
