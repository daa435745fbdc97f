#include "logic/topic_service.h"

#include <algorithm>
#include <cstdio>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include "common/log.h"

namespace herald::logic {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;

// Subscriptions of one device fit one scan page: its topics plus one broadcast stream per app.
constexpr std::size_t kScanPage = 4096;

std::optional<std::int64_t> int_field(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->get_uint64());
  return std::nullopt;
}

std::optional<std::string> string_field(const json::object& o, std::string_view name) {
  const json::value* v = o.if_contains(name);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->get_string());
}

std::optional<TopicInfo> parse_topic(std::string_view app, std::string_view topic,
                                     std::string_view value) {
  boost::system::error_code ec;
  const json::value v = json::parse(value, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto stream = int_field(v.get_object(), "stream");
  if (!stream || *stream <= 0) return std::nullopt;
  TopicInfo info;
  info.stream = static_cast<std::uint64_t>(*stream);
  info.app = app;
  info.topic = topic;
  info.created_at_ms = int_field(v.get_object(), "created_at_ms").value_or(0);
  return info;
}

std::optional<Subscription> parse_subscription(std::uint64_t stream, std::string_view value) {
  boost::system::error_code ec;
  const json::value v = json::parse(value, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.get_object();
  auto app = string_field(o, "app");
  auto topic = string_field(o, "topic");
  if (!app || !topic) return std::nullopt;
  Subscription s;
  s.stream = stream;
  s.app = std::move(*app);
  s.topic = std::move(*topic);
  s.epoch = static_cast<std::uint64_t>(int_field(o, "epoch").value_or(0));
  s.start_seq = static_cast<std::uint64_t>(int_field(o, "start").value_or(0));
  s.since_ms = int_field(o, "since_ms").value_or(0);
  return s;
}

// The stream id at the end of a sub/<device>/<016x> key.
std::optional<std::uint64_t> stream_of_sub_key(std::string_view key) {
  if (key.size() < 16) return std::nullopt;
  std::uint64_t id = 0;
  for (char c : key.substr(key.size() - 16)) {
    id <<= 4;
    if (c >= '0' && c <= '9') {
      id |= static_cast<std::uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      id |= static_cast<std::uint64_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
  }
  return id;
}

}  // namespace

TopicService::TopicService(storage::StreamStore& streams, storage::RecordStore& records,
                           storage::DeviceStore& devices, const AppRegistry& apps,
                           distribution::Router& router, Clock clock,
                           std::size_t max_topics_per_app)
    : streams_(streams),
      records_(records),
      devices_(devices),
      apps_(apps),
      router_(router),
      clock_(std::move(clock)),
      max_topics_per_app_(max_topics_per_app) {}

bool TopicService::valid_topic(std::string_view topic) {
  if (topic.empty() || topic.size() > kMaxTopicBytes) return false;
  return std::all_of(topic.begin(), topic.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '~' || c == '%' || c == '-';
  });
}

std::string TopicService::stream_key(std::string_view app, std::string_view topic) {
  std::string key = topic.empty() ? "b/" : "t/";
  key.append(app);
  if (!topic.empty()) {
    key.push_back('/');
    key.append(topic);
  }
  return key;
}

std::string TopicService::topic_key(std::string_view app, std::string_view topic) {
  std::string key = "topic/";
  key.append(app);
  key.push_back('/');
  key.append(topic);
  return key;
}

std::string TopicService::sub_key(std::string_view device, std::uint64_t stream) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(stream));
  std::string key = "sub/";
  key.append(device);
  key.push_back('/');
  key.append(hex, 16);
  return key;
}

std::string TopicService::subr_key(std::string_view app, std::string_view topic,
                                   std::string_view device) {
  std::string key = "subr/";
  key.append(app);
  key.push_back('/');
  key.append(topic);
  key.push_back('/');
  key.append(device);
  return key;
}

boost::system::result<void> TopicService::open() {
  std::uint64_t highest = 0;
  std::unordered_map<std::string, std::size_t> counts;
  std::string after;
  for (;;) {
    auto page = records_.scan("topic/", after, kScanPage, clock_());
    if (!page) return storage_error(page.error());
    for (const auto& record : *page) {
      if (auto info = parse_topic("", "", record.value)) highest = std::max(highest, info->stream);
      // topic/<app>/<topic>: apps have no '/'.
      const std::string_view rest = std::string_view(record.key).substr(6);
      ++counts[std::string(rest.substr(0, rest.find('/')))];
    }
    if (page->size() < kScanPage) break;
    after = page->back().key;
  }
  next_stream_.store(highest + 1);
  std::lock_guard lock(cache_mu_);
  topics_of_app_ = std::move(counts);
  return {};
}

boost::system::result<std::optional<TopicInfo>> TopicService::find_topic(std::string_view app,
                                                                         std::string_view topic) {
  const std::string key = topic_key(app, topic);
  {
    std::lock_guard lock(cache_mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
  }
  auto record = records_.get(key, clock_());
  if (!record) return storage_error(record.error());
  if (!*record) return std::optional<TopicInfo>();
  auto info = parse_topic(app, topic, (*record)->value);
  if (!info) return LogicError::kStorageFailed;
  std::lock_guard lock(cache_mu_);
  remember(key, *info);
  return std::optional<TopicInfo>(std::move(*info));
}

asio::awaitable<boost::system::result<TopicInfo>> TopicService::async_topic(std::string app,
                                                                            std::string topic) {
  auto found = find_topic(app, topic);
  if (!found) co_return found.error();
  if (*found) co_return std::move(**found);
  {
    std::lock_guard lock(cache_mu_);
    if (topics_of_app_[app] >= max_topics_per_app_) co_return LogicError::kTooManyTopics;
  }
  // Created once: of two first uses racing, the write that comes second finds the first's
  // record and takes its id (the id it drew is simply never used).
  TopicInfo info;
  auto claimed = co_await async_claim_stream_id(app, topic);
  if (!claimed) co_return claimed.error();
  info.stream = *claimed;
  info.app = app;
  info.topic = topic;
  info.created_at_ms = clock_();
  const std::string key = topic_key(app, topic);
  storage::AppendBatch batch;
  batch.now_ms = info.created_at_ms;
  batch.unless_record_exists = key;
  batch.put_records.push_back({key,
                               json::serialize(json::object{{"stream", info.stream},
                                                            {"created_at_ms", info.created_at_ms}}),
                               0});
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);
  if (outcome.existing) {
    auto existing = parse_topic(app, topic, outcome.existing->value);
    if (!existing) co_return LogicError::kStorageFailed;
    info = std::move(*existing);
  }
  std::lock_guard lock(cache_mu_);
  if (!outcome.existing) ++topics_of_app_[app];
  remember(key, info);
  co_return info;
}

// Stream ids come from a counter each process keeps (from the highest id stored when it opened),
// and in a cluster several processes share the storage: an id is a topic's only once its claim
// record is written, so two nodes drawing the same id give it to one topic, and the other draws
// again past it.
asio::awaitable<boost::system::result<std::uint64_t>> TopicService::async_claim_stream_id(
    std::string app, std::string topic) {
  constexpr int kMaxAttempts = 1000;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const std::uint64_t id = next_stream_.fetch_add(1);
    const std::string key = "topicid/" + std::to_string(id);
    storage::AppendBatch batch;
    batch.now_ms = clock_();
    batch.unless_record_exists = key;
    batch.put_records.push_back({key, app + "/" + topic, 0});
    auto [ec, outcome] =
        co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return storage_error(ec);
    if (!outcome.existing) co_return id;
  }
  co_return LogicError::kStorageFailed;
}

void TopicService::remember(const std::string& key, const TopicInfo& info) {
  if (cache_.size() < kMaxCachedTopics) cache_.emplace(key, info);
}

storage::Record TopicService::subscription_record(std::string_view device,
                                                  const Subscription& s) const {
  return {sub_key(device, s.stream),
          json::serialize(json::object{{"app", s.app},
                                       {"topic", s.topic},
                                       {"epoch", s.epoch},
                                       {"start", s.start_seq},
                                       {"since_ms", s.since_ms}}),
          0};
}

boost::system::result<std::vector<Subscription>> TopicService::scan_subscriptions(
    std::string_view device) {
  std::string prefix = "sub/";
  prefix.append(device);
  prefix.push_back('/');
  auto page = records_.scan(prefix, "", kScanPage, clock_());
  if (!page) return storage_error(page.error());
  std::vector<Subscription> out;
  out.reserve(page->size());
  for (const auto& record : *page) {
    auto stream = stream_of_sub_key(record.key);
    if (!stream) return LogicError::kStorageFailed;
    auto s = parse_subscription(*stream, record.value);
    if (!s) return LogicError::kStorageFailed;
    out.push_back(std::move(*s));
  }
  return out;  // key order is stream id order
}

boost::system::result<std::size_t> TopicService::add_joins(const std::string& device,
                                                           const std::vector<TopicInfo>& topics,
                                                           std::uint32_t history,
                                                           std::int64_t now_ms,
                                                           storage::AppendBatch& batch) {
  auto existing = scan_subscriptions(device);
  if (!existing) return existing.error();
  std::size_t joined_count = static_cast<std::size_t>(std::count_if(
      existing->begin(), existing->end(), [](const Subscription& s) { return !s.topic.empty(); }));
  std::size_t added = 0;
  for (const auto& info : topics) {
    const bool already = std::any_of(existing->begin(), existing->end(),
                                     [&](const auto& s) { return s.stream == info.stream; });
    if (already) continue;
    if (++joined_count > kMaxTopicsPerDevice) return LogicError::kTooManyTopics;
    auto head = streams_.head(stream_key(info.app, info.topic));
    if (!head) return storage_error(head.error());
    Subscription s;
    s.stream = info.stream;
    s.app = info.app;
    s.topic = info.topic;
    s.epoch = head->epoch;
    s.start_seq = head->head_seq - std::min<std::uint64_t>(history, head->head_seq);
    s.since_ms = now_ms;
    batch.put_records.push_back(subscription_record(device, s));
    batch.put_records.push_back({subr_key(info.app, info.topic, device), "", 0});
    ++added;
  }
  return added;
}

asio::awaitable<boost::system::result<void>> TopicService::async_subscribe(
    std::string device, std::string app, std::vector<std::string> topics, std::uint32_t history,
    bool from_device) {
  if (!apps_.exists(app)) co_return LogicError::kUnknownApp;
  if (topics.empty() || topics.size() > kMaxTopicsPerRequest || history > kMaxHistory) {
    co_return LogicError::kBadRequest;
  }
  if (!std::all_of(topics.begin(), topics.end(), valid_topic)) co_return LogicError::kBadRequest;
  auto registered = devices_.is_registered(app, device);
  if (!registered) co_return storage_error(registered.error());
  if (!*registered) co_return LogicError::kUnknownDevice;
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
  std::vector<TopicInfo> infos;
  for (auto& topic : topics) {
    auto info = co_await async_topic(app, topic);
    if (!info) co_return info.error();
    infos.push_back(std::move(*info));
  }
  storage::AppendBatch batch;
  batch.now_ms = clock_();
  auto added = add_joins(device, infos, history, batch.now_ms, batch);
  if (!added) co_return added.error();
  if (*added == 0) co_return boost::system::result<void>{};
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);
  if (!from_device) router_.streams_changed(device);
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<void>> TopicService::async_join(
    std::string app, std::string topic, std::vector<std::string> devices, std::uint32_t history) {
  if (!apps_.exists(app)) co_return LogicError::kUnknownApp;
  if (devices.empty() || devices.size() > kMaxDevicesPerJoin || history > kMaxHistory ||
      !valid_topic(topic)) {
    co_return LogicError::kBadRequest;
  }
  auto info = co_await async_topic(app, topic);
  if (!info) co_return info.error();
  const std::vector<TopicInfo> infos{*info};
  std::sort(devices.begin(), devices.end());
  devices.erase(std::unique(devices.begin(), devices.end()), devices.end());
  storage::AppendBatch batch;
  batch.now_ms = clock_();
  std::vector<std::string> changed;
  for (const auto& device : devices) {
    auto registered = devices_.is_registered(app, device);
    if (!registered) co_return storage_error(registered.error());
    if (!*registered) co_return LogicError::kUnknownDevice;
    auto added = add_joins(device, infos, history, batch.now_ms, batch);
    if (!added) co_return added.error();
    if (*added != 0) changed.push_back(device);
  }
  if (changed.empty()) co_return boost::system::result<void>{};
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);
  for (const auto& device : changed) router_.streams_changed(device);
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<void>> TopicService::async_unsubscribe(
    std::string device, std::string app, std::vector<std::string> topics, bool from_device) {
  if (!apps_.exists(app)) co_return LogicError::kUnknownApp;
  if (topics.empty() || topics.size() > kMaxTopicsPerRequest) co_return LogicError::kBadRequest;
  if (!std::all_of(topics.begin(), topics.end(), valid_topic)) co_return LogicError::kBadRequest;
  auto registered = devices_.is_registered(app, device);
  if (!registered) co_return storage_error(registered.error());
  if (!*registered) co_return LogicError::kUnknownDevice;

  storage::AppendBatch batch;
  batch.now_ms = clock_();
  for (const auto& topic : topics) {
    auto info = find_topic(app, topic);
    if (!info) co_return info.error();
    if (!*info) continue;  // never used: nobody joined it
    batch.delete_records.push_back(sub_key(device, (*info)->stream));
    batch.delete_records.push_back(subr_key(app, topic, device));
  }
  if (batch.delete_records.empty()) co_return boost::system::result<void>{};
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);
  if (!from_device) router_.streams_changed(device);
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<void>> TopicService::async_registered(std::string app,
                                                                            std::string device) {
  auto started = co_await async_start_broadcast(app, device);
  if (!started) co_return started.error();
  router_.streams_changed(device);
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<void>> TopicService::async_start_broadcast(
    std::string app, std::string device) {
  auto info = co_await async_topic(app, "");
  if (!info) co_return info.error();
  auto head = streams_.head(stream_key(app, ""));
  if (!head) co_return storage_error(head.error());
  Subscription s;
  s.stream = info->stream;
  s.app = app;
  s.epoch = head->epoch;
  s.start_seq = head->head_seq;
  s.since_ms = clock_();
  storage::AppendBatch batch;
  batch.now_ms = s.since_ms;
  batch.put_records.push_back(subscription_record(device, s));
  batch.unless_record_exists = batch.put_records.back().key;  // a repeated registration keeps it
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<void>> TopicService::async_unregistered(std::string app,
                                                                              std::string device) {
  auto existing = scan_subscriptions(device);
  if (!existing) co_return existing.error();
  storage::AppendBatch batch;
  batch.now_ms = clock_();
  for (const auto& s : *existing) {
    if (s.app != app) continue;
    batch.delete_records.push_back(sub_key(device, s.stream));
    if (!s.topic.empty()) batch.delete_records.push_back(subr_key(app, s.topic, device));
  }
  if (batch.delete_records.empty()) co_return boost::system::result<void>{};
  auto [ec, outcome] =
      co_await streams_.async_append(std::move(batch), asio::as_tuple(asio::use_awaitable));
  if (ec) co_return storage_error(ec);
  router_.streams_changed(device);
  co_return boost::system::result<void>{};
}

asio::awaitable<boost::system::result<std::vector<Subscription>>> TopicService::async_subscriptions(
    std::string device) {
  auto subs = scan_subscriptions(device);
  if (!subs) co_return subs.error();
  auto apps = devices_.apps_of(device);
  if (!apps) co_return storage_error(apps.error());
  // Registrations made before broadcast streams existed get their start now.
  bool added = false;
  for (const auto& app : *apps) {
    const bool has_broadcast = std::any_of(
        subs->begin(), subs->end(), [&](const auto& s) { return s.app == app && s.topic.empty(); });
    if (has_broadcast || !apps_.exists(app)) continue;
    // The caller is loading the list: no need to tell the connection it changed.
    auto done = co_await async_start_broadcast(app, device);
    if (!done) co_return done.error();
    added = true;
  }
  if (added) {
    subs = scan_subscriptions(device);
    if (!subs) co_return subs.error();
  }
  // Subscriptions of apps the device left (a crash between the two writes) are not read.
  std::erase_if(*subs, [&](const Subscription& s) {
    return !std::binary_search(apps->begin(), apps->end(), s.app);
  });
  co_return std::move(*subs);
}

boost::system::result<std::optional<Subscription>> TopicService::subscription(
    std::string_view device, std::uint64_t stream) {
  auto record = records_.get(sub_key(device, stream), clock_());
  if (!record) return storage_error(record.error());
  if (!*record) return std::optional<Subscription>();
  auto s = parse_subscription(stream, (*record)->value);
  if (!s) return LogicError::kStorageFailed;
  return std::optional<Subscription>(std::move(*s));
}

boost::system::result<storage::StreamHead> TopicService::head(const Subscription& s) {
  auto head = streams_.head(stream_key(s.app, s.topic));
  if (!head) return storage_error(head.error());
  return *head;
}

boost::system::result<std::vector<Subscription>> TopicService::joined(std::string_view device) {
  auto subs = scan_subscriptions(device);
  if (!subs) return subs.error();
  std::erase_if(*subs, [](const Subscription& s) { return s.topic.empty(); });
  std::sort(subs->begin(), subs->end(), [](const Subscription& a, const Subscription& b) {
    return std::tie(a.app, a.topic) < std::tie(b.app, b.topic);
  });
  return subs;
}

boost::system::result<std::vector<std::string>> TopicService::subscribers(std::string_view app,
                                                                          std::string_view topic,
                                                                          std::string_view after,
                                                                          std::size_t limit) {
  if (topic.empty()) {
    auto devices = devices_.devices_of(app, after, limit);
    if (!devices) return storage_error(devices.error());
    return std::move(*devices);
  }
  const std::string prefix = subr_key(app, topic, "");
  const std::string after_key = after.empty() ? "" : prefix + std::string(after);
  auto page = records_.scan(prefix, after_key, limit, clock_());
  if (!page) return storage_error(page.error());
  std::vector<std::string> out;
  out.reserve(page->size());
  for (const auto& record : *page) out.push_back(record.key.substr(prefix.size()));
  return out;
}

asio::awaitable<boost::system::result<std::uint64_t>> TopicService::async_count_subscribers(
    std::string app, std::string topic, std::uint64_t limit) {
  const auto executor = co_await asio::this_coro::executor;
  std::uint64_t n = 0;
  std::string after;
  while (n < limit) {
    auto page = subscribers(app, topic, after, kScanPage);
    if (!page) co_return page.error();
    n += page->size();
    if (page->size() < kScanPage) break;
    after = page->back();
    co_await asio::post(executor, asio::use_awaitable);
  }
  co_return std::min(n, limit);
}

}  // namespace herald::logic
