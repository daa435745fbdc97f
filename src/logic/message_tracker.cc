#include "logic/message_tracker.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <boost/system/errc.hpp>

#include "common/log.h"
#include "distribution/stream_filter.h"

namespace herald::logic {

namespace asio = boost::asio;
namespace json = boost::json;

namespace {

constexpr std::size_t kScanPage = 1024;
constexpr std::size_t kFindSeqLimit = 10'000;  // inbox entries searched for a lost stored stage

std::string inbox_key(std::string_view device) {
  std::string key = "i/";
  key.append(device);
  return key;
}

std::string stage_prefix(std::string_view app, std::string_view id) {
  std::string key = "mst/";
  key.append(app).append("/").append(id).append("/");
  return key;
}

std::string stage_key(std::string_view app, std::string_view id, std::string_view device,
                      char stage) {
  std::string key = stage_prefix(app, id);
  key.append(device).append("/").push_back(stage);
  return key;
}

std::int64_t to_int(std::string_view text) {
  std::int64_t v = 0;
  std::from_chars(text.data(), text.data() + text.size(), v);
  return v;
}

// The unsigned integer member `name` of `o`; 0 when it is absent or not one.
std::uint64_t uint_member(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return 0;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() > 0) return static_cast<std::uint64_t>(v->get_int64());
  return 0;
}

// The integer member `name` of `o`; `fallback` when it is absent; nullopt when it is not an
// integer.
std::optional<std::int64_t> int_member(const json::object& o, std::string_view name,
                                       std::int64_t fallback) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return fallback;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() &&
      v->get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(v->get_uint64());
  }
  return std::nullopt;
}

// A message record's value (MessageTracker::message_record); nullopt when it does not parse.
// Records written before scheduled sends existed have no state, send_at_ms or dropped: sent.
std::optional<TrackedMessage> parse_message(std::string_view text) {
  boost::system::error_code ec;
  json::value parsed = json::parse(text, ec);
  if (ec || !parsed.is_object()) return std::nullopt;
  const json::object& o = parsed.get_object();
  TrackedMessage m;
  const auto created = int_member(o, "created_at_ms", 0);
  const auto expires = int_member(o, "expires_at_ms", 0);
  const auto send_at = int_member(o, "send_at_ms", 0);
  const auto cancelled = int_member(o, "cancelled_at_ms", 0);
  const auto revoked = int_member(o, "revoked_at_ms", 0);
  if (!created || !expires || !send_at || !cancelled || !revoked) return std::nullopt;
  m.created_at_ms = *created;
  m.expires_at_ms = *expires;
  m.send_at_ms = *send_at;
  m.cancelled_at_ms = *cancelled;
  m.revoked_at_ms = *revoked;
  const json::array* devices = o.contains("devices") ? o.at("devices").if_array() : nullptr;
  if (devices == nullptr) return std::nullopt;
  for (const auto& d : *devices) {
    if (!d.is_string()) return std::nullopt;
    m.devices.emplace_back(d.get_string());
  }
  if (const json::value* state = o.if_contains("state")) {
    if (*state == "scheduled") {
      m.phase = TrackedMessage::Phase::kScheduled;
    } else if (*state == "cancelled") {
      m.phase = TrackedMessage::Phase::kCancelled;
    } else {
      return std::nullopt;
    }
  }
  if (const json::value* audience = o.if_contains("audience")) {
    const json::object* a = audience->if_object();
    const json::value* kind = a != nullptr ? a->if_contains("kind") : nullptr;
    const json::value* named = a != nullptr ? a->if_contains("text") : nullptr;
    const json::value* key = a != nullptr ? a->if_contains("stream_key") : nullptr;
    if (kind == nullptr || named == nullptr || key == nullptr || !named->is_string() ||
        !key->is_string()) {
      return std::nullopt;
    }
    TrackedAudience t;
    if (*kind == "topic") {
      t.kind = TrackedAudience::Kind::kTopic;
    } else if (*kind == "condition") {
      t.kind = TrackedAudience::Kind::kCondition;
    } else if (*kind == "broadcast") {
      t.kind = TrackedAudience::Kind::kBroadcast;
    } else {
      return std::nullopt;
    }
    t.text = named->get_string();
    t.stream_key = key->get_string();
    t.stream = uint_member(*a, "stream");
    m.audience = std::move(t);
  }
  if (const json::value* dropped = o.if_contains("dropped")) {
    if (!dropped->is_array()) return std::nullopt;
    for (const auto& d : dropped->get_array()) {
      const json::object* t = d.if_object();
      const json::value* device = t != nullptr ? t->if_contains("device") : nullptr;
      const json::value* reason = t != nullptr ? t->if_contains("reason") : nullptr;
      if (device == nullptr || reason == nullptr || !device->is_string() || !reason->is_string()) {
        return std::nullopt;
      }
      m.dropped.push_back({std::string(device->get_string()), std::string(reason->get_string())});
    }
  }
  return m;
}

}  // namespace

// What the stage records say about one target.
struct MessageTracker::Stages {
  std::string device;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
  std::map<char, std::int64_t> at;  // stage letter -> time (ms)
};

MessageTracker::MessageTracker(storage::StreamStore& streams, storage::RecordStore& records,
                               storage::DeviceStore& devices, distribution::Router& router,
                               Clock clock)
    : streams_(streams),
      records_(records),
      devices_(devices),
      router_(router),
      clock_(std::move(clock)) {}

std::string MessageTracker::message_key(std::string_view app, std::string_view id) {
  std::string key = "msg/";
  key.append(app).append("/").append(id);
  return key;
}

storage::Record MessageTracker::message_record(std::string_view app, std::string_view id,
                                               const TrackedMessage& message) {
  json::array devices;
  for (const auto& d : message.devices) devices.emplace_back(d);
  json::object o{{"created_at_ms", message.created_at_ms},
                 {"expires_at_ms", message.expires_at_ms},
                 {"devices", std::move(devices)}};
  if (message.phase == TrackedMessage::Phase::kScheduled) o["state"] = "scheduled";
  if (message.phase == TrackedMessage::Phase::kCancelled) {
    o["state"] = "cancelled";
    o["cancelled_at_ms"] = message.cancelled_at_ms;
  }
  if (message.send_at_ms != 0) o["send_at_ms"] = message.send_at_ms;
  if (message.revoked_at_ms != 0) o["revoked_at_ms"] = message.revoked_at_ms;
  if (message.audience) {
    static constexpr const char* kKinds[] = {"topic", "condition", "broadcast"};
    o["audience"] = json::object{{"kind", kKinds[static_cast<int>(message.audience->kind)]},
                                 {"text", message.audience->text},
                                 {"stream_key", message.audience->stream_key},
                                 {"stream", message.audience->stream}};
  }
  if (!message.dropped.empty()) {
    json::array dropped;
    for (const auto& d : message.dropped) {
      dropped.emplace_back(json::object{{"device", d.device}, {"reason", d.reason}});
    }
    o["dropped"] = std::move(dropped);
  }
  return {message_key(app, id), json::serialize(o), message.expires_at_ms + kRetentionMs};
}

boost::system::result<TrackedMessage> MessageTracker::message(std::string_view app,
                                                              std::string_view id) {
  auto record = records_.get(message_key(app, id), clock_());
  if (!record) return storage_error(record.error());
  if (!*record) return LogicError::kUnknownMessage;
  auto parsed = parse_message((*record)->value);
  if (!parsed) {
    log::error("message_record_corrupt", {{"app", app}, {"id", id}});
    return LogicError::kStorageFailed;
  }
  return std::move(*parsed);
}

void MessageTracker::write_unsynced(std::vector<storage::Record> records,
                                    std::vector<storage::AckUpdate> acks) {
  if (records.empty() && acks.empty()) return;
  storage::AppendBatch batch;
  batch.now_ms = clock_();
  batch.sync = false;
  batch.put_records = std::move(records);
  batch.acked_cursors = std::move(acks);
  streams_.async_append(std::move(batch),
                        [this](boost::system::error_code ec, storage::AppendOutcome) {
                          if (!ec) return;
                          if (ec == boost::system::errc::resource_unavailable_try_again) {
                            dropped_writes_.fetch_add(1, std::memory_order_relaxed);
                          } else {
                            log::warn("message_status_write_failed", {{"error", ec.message()}});
                          }
                        });
}

void MessageTracker::stored(std::string_view app, std::string_view id, std::int64_t expires_at_ms,
                            const std::vector<TrackedTarget>& targets) {
  const std::int64_t now_ms = clock_();
  const std::int64_t keep_until = expires_at_ms + kRetentionMs;
  std::vector<storage::Record> records;
  for (const auto& t : targets) {
    records.push_back(
        {stage_key(app, id, t.device, 's'),
         std::to_string(t.epoch) + ":" + std::to_string(t.seq) + ":" + std::to_string(now_ms),
         keep_until});
    if (t.notified) {
      records.push_back({stage_key(app, id, t.device, 'n'), std::to_string(now_ms), keep_until});
    }
  }
  write_unsynced(std::move(records));
}

asio::awaitable<boost::system::result<json::object>> MessageTracker::async_status(std::string app,
                                                                                  std::string id) {
  flush_counts();
  auto [ec, ignored] =
      co_await streams_.async_append(storage::AppendBatch{}, asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);
  co_return status(app, id);
}

void MessageTracker::delivered(std::string_view device,
                               const std::vector<storage::Entry>& entries) {
  const std::int64_t now_ms = clock_();
  std::vector<storage::Record> records;
  for (const auto& e : entries) {
    if (e.kind != storage::DataKind::kJson && e.kind != storage::DataKind::kBinary) continue;
    records.push_back({stage_key(e.app, e.message_id, device, 'd'), std::to_string(now_ms),
                       e.expires_at_ms + kRetentionMs});
  }
  write_unsynced(std::move(records));
}

void MessageTracker::replaced(std::string_view device, const storage::Entry& tombstone) {
  write_unsynced({{stage_key(tombstone.app, tombstone.message_id, device, 'x'),
                   std::to_string(clock_()), tombstone.expires_at_ms + kRetentionMs}});
}

void MessageTracker::acked(storage::AckUpdate ack, const std::vector<storage::Entry>& entries) {
  const std::int64_t now_ms = clock_();
  std::vector<storage::Record> records;
  for (const auto& e : entries) {
    if (e.kind != storage::DataKind::kJson && e.kind != storage::DataKind::kBinary) continue;
    records.push_back({stage_key(e.app, e.message_id, ack.device, 'a'), std::to_string(now_ms),
                       e.expires_at_ms + kRetentionMs});
  }
  write_unsynced(std::move(records), {std::move(ack)});
}

boost::system::result<std::vector<MessageTracker::Stages>> MessageTracker::read_stages(
    std::string_view app, std::string_view id, const std::vector<std::string>& devices) {
  const std::int64_t now_ms = clock_();
  std::map<std::string, Stages, std::less<>> by_device;
  for (const auto& d : devices) by_device[d].device = d;
  const std::string prefix = stage_prefix(app, id);
  std::string after;
  for (;;) {
    auto page = records_.scan(prefix, after, kScanPage, now_ms);
    if (!page) return storage_error(page.error());
    for (const auto& r : *page) {
      // <prefix><device>/<stage>
      const std::string_view rest = std::string_view(r.key).substr(prefix.size());
      const auto slash = rest.rfind('/');
      if (slash == std::string_view::npos || slash + 2 != rest.size()) continue;
      const auto it = by_device.find(rest.substr(0, slash));
      if (it == by_device.end()) continue;
      const char stage = rest.back();
      if (stage == 's') {
        const std::string_view v = r.value;
        const auto a = v.find(':');
        const auto b = v.find(':', a + 1);
        if (a == std::string_view::npos || b == std::string_view::npos) continue;
        it->second.epoch = static_cast<std::uint64_t>(to_int(v.substr(0, a)));
        it->second.seq = static_cast<std::uint64_t>(to_int(v.substr(a + 1, b - a - 1)));
        it->second.at['s'] = to_int(v.substr(b + 1));
      } else {
        it->second.at[stage] = to_int(r.value);
      }
    }
    if (page->size() < kScanPage) break;
    after = page->back().key;
  }
  std::vector<Stages> out;
  for (const auto& d : devices) out.push_back(std::move(by_device[d]));
  return out;
}

boost::system::result<json::object> MessageTracker::status(std::string_view app,
                                                           std::string_view id) {
  const std::int64_t now_ms = clock_();
  auto message = this->message(app, id);
  if (!message) return message.error();
  const TrackedMessage& m = *message;
  if (m.audience) return shared_status(app, id, m);
  const std::int64_t expires_at_ms = m.expires_at_ms;

  json::array targets;
  std::map<std::string, std::int64_t> totals;
  if (m.phase != TrackedMessage::Phase::kSent) {
    // Not in any inbox (yet, or ever): no stages to read.
    const bool cancelled = m.phase == TrackedMessage::Phase::kCancelled;
    const char* state = cancelled ? "cancelled" : "scheduled";
    for (const auto& d : m.devices) {
      json::object t{{"device", d}, {"state", state}};
      if (cancelled) t["cancelled_at_ms"] = m.cancelled_at_ms;
      targets.push_back(std::move(t));
    }
    if (!m.devices.empty()) totals[state] = static_cast<std::int64_t>(m.devices.size());
  } else {
    auto stages = read_stages(app, id, m.devices);
    if (!stages) return stages.error();
    static constexpr std::pair<char, const char*> kTimes[] = {
        {'s', "stored_at_ms"},  {'n', "notified_at_ms"}, {'d', "delivered_at_ms"},
        {'a', "acked_at_ms"},   {'r', "revoked_at_ms"},  {'c', "recalled_at_ms"},
        {'x', "replaced_at_ms"}};
    for (const auto& s : *stages) {
      json::object t{{"device", s.device}};
      if (s.seq != 0) {
        t["epoch"] = s.epoch;
        t["seq"] = s.seq;
      }
      for (const auto& [letter, name] : kTimes) {
        if (auto it = s.at.find(letter); it != s.at.end()) t[name] = it->second;
      }
      const auto has = [&](char c) { return s.at.count(c) != 0; };
      std::string state = "stored";
      if (has('c')) {
        state = "recalled";
      } else if (has('r')) {
        state = "revoked";
      } else if (has('x')) {
        state = "replaced";
      } else if (has('a')) {
        state = "acked";
      } else if (expires_at_ms <= now_ms) {
        state = "expired";
        t["expired_at_ms"] = expires_at_ms;
      } else if (has('d')) {
        state = "delivered";
      } else if (has('n')) {
        state = "notified";
      }
      ++totals[state];
      t["state"] = state;
      targets.push_back(std::move(t));
    }
    for (const auto& d : m.dropped) {
      targets.push_back(
          json::object{{"device", d.device}, {"state", "dropped"}, {"dropped_reason", d.reason}});
      ++totals["dropped"];
    }
  }
  json::object total_json;
  for (const auto& [state, n] : totals) total_json[state] = n;

  const char* state = "sent";
  if (m.phase == TrackedMessage::Phase::kScheduled) {
    state = "scheduled";
  } else if (m.phase == TrackedMessage::Phase::kCancelled) {
    state = "cancelled";
  } else if (m.revoked_at_ms != 0) {
    state = "revoked";
  } else if (m.devices.empty() && !m.dropped.empty()) {
    state = "dropped";  // no target got it
  }
  json::object out{{"id", id},
                   {"state", state},
                   {"created_at_ms", m.created_at_ms},
                   {"expires_at_ms", expires_at_ms}};
  if (m.send_at_ms != 0) out["send_at_ms"] = m.send_at_ms;
  if (m.phase == TrackedMessage::Phase::kCancelled) out["cancelled_at_ms"] = m.cancelled_at_ms;
  out["targets"] = std::move(targets);
  out["totals"] = std::move(total_json);
  return out;
}

asio::awaitable<boost::system::result<json::object>> MessageTracker::async_revoke(
    std::string app, std::string id, std::string recall_id) {
  const std::int64_t now_ms = clock_();
  auto found = message(app, id);
  if (!found) co_return found.error();
  TrackedMessage tracked = std::move(*found);
  // Not in any inbox: a scheduled message is cancelled by the scheduler, which the API asks
  // first; one cancelled has nothing left to revoke.
  if (tracked.phase != TrackedMessage::Phase::kSent) co_return status(app, id);
  if (tracked.audience) {
    co_return co_await async_revoke_shared(std::move(app), std::move(id), std::move(tracked),
                                           std::move(recall_id), now_ms);
  }
  const std::vector<std::string>& devices = tracked.devices;
  const std::int64_t expires_at_ms = tracked.expires_at_ms;
  // A barrier through the writer, which applies writes in order: every stage record enqueued
  // before it (a pull's "delivered", an ack's "acked") is readable once it completes, so the
  // recall decision below sees them. What remains is a pull whose reply is being written while
  // this runs: its device is online, and an online device always gets the recall.
  {
    storage::AppendBatch barrier;
    barrier.now_ms = now_ms;
    barrier.sync = false;
    barrier.put_records.push_back({stage_prefix(app, id) + "~revoking", std::to_string(now_ms),
                                   expires_at_ms + kRetentionMs});
    auto [barrier_ec, ignored] =
        co_await streams_.async_append(std::move(barrier), asio::as_tuple(asio::use_awaitable));
    if (barrier_ec) co_return storage_error(barrier_ec);
  }
  auto stages = read_stages(app, id, devices);
  if (!stages) co_return stages.error();

  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  std::vector<std::size_t> tombstoned_target;  // index into *stages per batch.tombstones
  std::vector<std::size_t> recalled_target;
  for (std::size_t i = 0; i < stages->size(); ++i) {
    auto& s = (*stages)[i];
    if (s.seq == 0) {
      // The stored stage was lost (a machine crash, it is unsynced): find the entry by its id.
      storage::ReadRequest read;
      const std::string key = inbox_key(s.device);
      read.stream = key;
      read.now_ms = now_ms;
      read.max_entries = kFindSeqLimit;
      read.max_bytes = 64 << 20;
      auto r = streams_.read(read);
      if (!r) co_return storage_error(r.error());
      for (const auto& e : r->entries) {
        if (e.message_id == id && e.app == app) s.seq = e.seq;
      }
    }
    if (s.seq != 0) {
      batch.tombstones.push_back({inbox_key(s.device), s.seq, id});
      tombstoned_target.push_back(i);
    }
    const bool maybe_delivered =
        s.at.count('d') != 0 || s.at.count('a') != 0 || router_.is_online(s.device);
    if (maybe_delivered && expires_at_ms > now_ms) {
      storage::AppendRequest recall;
      recall.stream = inbox_key(s.device);
      recall.entry.app = app;
      recall.entry.message_id = recall_id;
      recall.entry.kind = storage::DataKind::kRecall;
      recall.entry.data = id;
      recall.entry.sent_at_ms = now_ms;
      recall.entry.expires_at_ms = expires_at_ms;
      batch.entries.push_back(std::move(recall));
      recalled_target.push_back(i);
    }
  }
  tracked.revoked_at_ms = now_ms;
  batch.put_records.push_back(message_record(app, id, tracked));
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);

  std::vector<storage::Record> records;
  const std::int64_t keep_until = expires_at_ms + kRetentionMs;
  for (std::size_t k = 0; k < tombstoned_target.size(); ++k) {
    if (outcome.tombstoned[k]) {
      records.push_back({stage_key(app, id, (*stages)[tombstoned_target[k]].device, 'r'),
                         std::to_string(now_ms), keep_until});
    }
  }
  for (std::size_t k = 0; k < recalled_target.size(); ++k) {
    const auto& device = (*stages)[recalled_target[k]].device;
    records.push_back({stage_key(app, id, device, 'c'), std::to_string(now_ms), keep_until});
    // A recall is urgent: the app must hide what it showed.
    router_.notify(device, 0, outcome.results[k].seq, distribution::NotifyPriority::kHigh);
  }
  // Synced like the revoke itself: the answer below reads them back.
  storage::AppendBatch stage_batch;
  stage_batch.now_ms = now_ms;
  stage_batch.put_records = std::move(records);
  auto [stage_ec, stage_outcome] =
      co_await streams_.async_append(std::move(stage_batch), asio::as_tuple(asio::use_awaitable));
  if (stage_ec) co_return storage_error(stage_ec);
  co_return status(app, id);
}

}  // namespace herald::logic

namespace herald::logic {
namespace {

std::string shared_key(std::string_view prefix, std::string_view app, std::string_view id) {
  std::string key(prefix);
  key.append(app).append("/").append(id);
  return key;
}

std::optional<json::object> parse_object_record(
    const boost::system::result<std::optional<storage::Record>>& record) {
  if (!record || !*record) return std::nullopt;
  boost::system::error_code ec;
  json::value v = json::parse((*record)->value, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

}  // namespace

void MessageTracker::stored_shared(std::string_view app, std::string_view id,
                                   std::int64_t expires_at_ms, std::uint64_t epoch,
                                   std::uint64_t seq) {
  write_unsynced(
      {{shared_key("msp/", app, id),
        json::serialize(json::object{{"epoch", epoch}, {"seq", seq}, {"stored_at_ms", clock_()}}),
        expires_at_ms + kRetentionMs}});
}

void MessageTracker::targeted(std::string_view app, std::string_view id, std::int64_t expires_at_ms,
                              std::uint64_t count) {
  write_unsynced({{shared_key("mtg/", app, id),
                   json::serialize(json::object{{"targeted", count}, {"counted_at_ms", clock_()}}),
                   expires_at_ms + kRetentionMs}});
}

MessageTracker::Counts& MessageTracker::counts_of(const storage::Entry& e) {
  auto [it, added] = counts_.try_emplace({e.app, e.message_id});
  Counts& c = it->second;
  if (added) {
    // This process's counts start from what earlier ones kept.
    c.expires_at_ms = e.expires_at_ms;
    auto kept =
        parse_object_record(records_.get(shared_key("msc/", e.app, e.message_id), clock_()));
    if (kept) {
      c.delivered = uint_member(*kept, "delivered");
      c.acked = uint_member(*kept, "acked");
    }
  }
  c.dirty = true;
  return c;
}

void MessageTracker::delivered_shared(const std::vector<storage::Entry>& entries) {
  std::lock_guard lock(counts_mu_);
  for (const auto& e : entries) {
    if (e.kind != storage::DataKind::kJson && e.kind != storage::DataKind::kBinary) continue;
    ++counts_of(e).delivered;
  }
}

void MessageTracker::acked_shared(storage::AckUpdate ack,
                                  const std::vector<storage::Entry>& entries) {
  {
    std::lock_guard lock(counts_mu_);
    for (const auto& e : entries) {
      if (e.kind != storage::DataKind::kJson && e.kind != storage::DataKind::kBinary) continue;
      ++counts_of(e).acked;
    }
  }
  write_unsynced({}, {std::move(ack)});
}

void MessageTracker::flush_counts() {
  if (const auto dropped = dropped_writes_.exchange(0, std::memory_order_relaxed)) {
    // Status is bookkeeping: under overload it gives way to the messages themselves.
    log::warn("message_status_writes_dropped",
              {{"writes", dropped}, {"reason", "writer queue full"}});
  }
  // Absolute values, written in the order of the flushes: a later write never holds less.
  const std::int64_t now_ms = clock_();
  std::vector<storage::Record> records;
  std::lock_guard lock(counts_mu_);
  for (auto it = counts_.begin(); it != counts_.end();) {
    Counts& c = it->second;
    const std::int64_t keep_until = c.expires_at_ms + kRetentionMs;
    if (c.dirty) {
      records.push_back(
          {shared_key("msc/", it->first.first, it->first.second),
           json::serialize(json::object{{"delivered", c.delivered}, {"acked", c.acked}}),
           keep_until});
      c.dirty = false;
    }
    // Past the message's retention nobody asks for it any more: forget it.
    it = keep_until <= now_ms ? counts_.erase(it) : std::next(it);
  }
  write_unsynced(std::move(records));
}

boost::system::result<json::object> MessageTracker::shared_status(std::string_view app,
                                                                  std::string_view id,
                                                                  const TrackedMessage& m) {
  const std::int64_t now_ms = clock_();
  json::object audience;
  switch (m.audience->kind) {
    case TrackedAudience::Kind::kTopic:
      audience["topic"] = m.audience->text;
      break;
    case TrackedAudience::Kind::kCondition:
      audience["condition"] = m.audience->text;
      break;
    case TrackedAudience::Kind::kBroadcast:
      audience["broadcast"] = true;
      break;
  }
  json::object out{{"id", id},
                   {"state", m.revoked_at_ms != 0 ? "revoked" : "sent"},
                   {"created_at_ms", m.created_at_ms},
                   {"expires_at_ms", m.expires_at_ms},
                   {"audience", std::move(audience)},
                   {"targets", json::array()},
                   {"totals", json::object()}};
  auto position = parse_object_record(records_.get(shared_key("msp/", app, id), now_ms));
  if (position) {
    const std::uint64_t epoch = uint_member(*position, "epoch");
    const std::uint64_t seq = uint_member(*position, "seq");
    out["stream"] = json::object{{"stream", m.audience->stream}, {"epoch", epoch}, {"seq", seq}};
    // Replaced by a newer message with its collapse key: its entry is a tombstone now.
    storage::ReadRequest read;
    read.stream = m.audience->stream_key;
    read.epoch = epoch;
    read.after_seq = seq - 1;
    read.max_entries = 1;
    read.now_ms = now_ms;
    auto entry = streams_.read(read);
    if (entry && !entry->epoch_changed && !entry->entries.empty() &&
        entry->entries.front().seq == seq &&
        entry->entries.front().kind == storage::DataKind::kTombstone && m.revoked_at_ms == 0) {
      out["state"] = "replaced";
    }
  }
  json::object stats;
  auto targeted = parse_object_record(records_.get(shared_key("mtg/", app, id), now_ms));
  auto counts = parse_object_record(records_.get(shared_key("msc/", app, id), now_ms));
  const std::uint64_t acked = counts ? uint_member(*counts, "acked") : 0;
  stats["delivered"] = counts ? uint_member(*counts, "delivered") : 0;
  stats["acked"] = acked;
  if (targeted) {
    const std::uint64_t n = uint_member(*targeted, "targeted");
    stats["targeted"] = n;
    if (m.expires_at_ms <= now_ms) stats["expired"] = n > acked ? n - acked : 0;
  }
  out["stats"] = std::move(stats);
  return out;
}

std::optional<MessageTracker::SharedPosition> MessageTracker::shared_position(std::string_view app,
                                                                              std::string_view id) {
  auto position = parse_object_record(records_.get(shared_key("msp/", app, id), clock_()));
  if (!position) return std::nullopt;
  return SharedPosition{uint_member(*position, "epoch"), uint_member(*position, "seq")};
}

boost::system::result<std::optional<MessageTracker::SharedEntry>> MessageTracker::find_shared(
    std::string_view app, std::string_view id, const TrackedAudience& audience,
    std::int64_t now_ms) {
  storage::ReadRequest read;
  read.stream = audience.stream_key;
  read.now_ms = now_ms;
  read.max_bytes = 64 << 20;
  if (auto at = shared_position(app, id)) {
    read.epoch = at->epoch;
    read.after_seq = at->seq - 1;
    read.max_entries = 1;
  } else {
    // The position record is written unsynced: a machine crash may have lost it.
    auto head = streams_.head(audience.stream_key);
    if (!head) return storage_error(head.error());
    read.epoch = head->epoch;
    read.after_seq = head->head_seq > kFindSeqLimit ? head->head_seq - kFindSeqLimit : 0;
    read.max_entries = kFindSeqLimit;
  }
  auto r = streams_.read(read);
  if (!r) return storage_error(r.error());
  if (r->epoch_changed) return std::nullopt;
  for (auto& e : r->entries) {
    if (e.message_id == id && e.app == app) return SharedEntry{r->epoch, std::move(e)};
  }
  return std::nullopt;
}

asio::awaitable<boost::system::result<json::object>> MessageTracker::async_revoke_shared(
    std::string app, std::string id, TrackedMessage tracked, std::string recall_id,
    std::int64_t now_ms) {
  const TrackedAudience& audience = *tracked.audience;
  auto found = find_shared(app, id, audience, now_ms);
  if (!found) co_return found.error();
  storage::AppendBatch batch;
  batch.now_ms = now_ms;
  const bool recall = *found && tracked.expires_at_ms > now_ms;
  if (*found) {
    const storage::Entry& entry = (*found)->entry;
    batch.tombstones.push_back({audience.stream_key, entry.seq, id});
    // Synced now: every pull that meets the recall looks the message's position up.
    batch.put_records.push_back(
        {shared_key("msp/", app, id),
         json::serialize(json::object{
             {"epoch", (*found)->epoch}, {"seq", entry.seq}, {"stored_at_ms", entry.sent_at_ms}}),
         tracked.expires_at_ms + kRetentionMs});
    if (recall) {
      storage::AppendRequest r;
      r.stream = audience.stream_key;
      r.entry.app = app;
      r.entry.message_id = recall_id;
      r.entry.kind = storage::DataKind::kRecall;
      r.entry.data = id;
      r.entry.sent_at_ms = now_ms;
      r.entry.expires_at_ms = tracked.expires_at_ms;
      r.entry.audience = entry.audience;  // for the devices the message was for
      batch.entries.push_back(std::move(r));
    }
  }
  tracked.revoked_at_ms = now_ms;
  batch.put_records.push_back(message_record(app, id, tracked));
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);
  if (recall && audience.stream != 0) {
    // A recall is urgent: the app must hide what it showed.
    distribution::StreamNotify notify;
    notify.stream = audience.stream;
    notify.head_seq = outcome.results.front().seq;
    notify.priority = distribution::NotifyPriority::kHigh;
    if (!(*found)->entry.audience.empty()) {
      auto filter = distribution::StreamFilter::decode((*found)->entry.audience);
      if (filter) notify.filter = std::make_shared<const distribution::StreamFilter>(*filter);
    }
    router_.notify_stream(std::move(notify));
  }
  co_return status(app, id);
}

}  // namespace herald::logic
