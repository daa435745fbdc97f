#include "distribution/redis/cluster_router.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <stdexcept>

#include "common/log.h"
#include "distribution/redis/cluster_message.h"
#include "storage/redis/redis_cluster_client.h"
#include "storage/redis/redis_error.h"

namespace herald::distribution {
namespace {

using storage::RedisClusterClient;
using storage::RedisCommand;
using storage::RedisValue;
using Clock = std::chrono::steady_clock;

// Deletes the route only while it still holds the caller's token: the detach of an older
// connection, on this node or another, leaves a newer route alone.
constexpr std::string_view kDeleteIfOurs =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";
// The sweep: writes the route again (with a fresh TTL) when it is missing or still ours; a route
// another node took since is left alone.
constexpr std::string_view kRefreshIfOursOrMissing =
    "local v = redis.call('GET', KEYS[1]) "
    "if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "return 1 end return 0";

using Reply = boost::system::result<RedisValue>;

// Runs each command on the master owning its key: one pipeline per master, so a batch costs one
// round trip per master. Replies (or the error of the command's pipeline) in the commands'
// order. A pipeline's retries follow the slot of its first key only, so while slots move a group
// can run out of redirects: its commands are then sent one by one, each routed by its own key.
std::vector<Reply> run_grouped(RedisClusterClient& client, const std::vector<std::string>& keys,
                               std::vector<RedisCommand> commands) {
  std::vector<Reply> replies(commands.size(),
                             Reply(make_error_code(storage::RedisError::kConnectFailed)));
  std::map<std::string, std::vector<std::size_t>> groups;  // owner "host:port" -> indexes
  for (std::size_t i = 0; i < keys.size(); ++i) {
    auto owner = client.owner(keys[i]);
    if (!owner) {
      // No slot map could be learned: the other keys would only wait out the same timeouts.
      std::fill(replies.begin(), replies.end(), Reply(owner.error()));
      return replies;
    }
    groups[owner->text()].push_back(i);
  }
  for (const auto& [owner, indexes] : groups) {
    std::vector<RedisCommand> group;
    group.reserve(indexes.size());
    for (const auto i : indexes) group.push_back(commands[i]);
    auto answers = client.pipeline(keys[indexes.front()], group);
    if (!answers && answers.error() == make_error_code(storage::RedisError::kTooManyRedirects)) {
      for (const auto i : indexes) replies[i] = client.call(keys[i], commands[i]);
      continue;
    }
    for (std::size_t j = 0; j < indexes.size(); ++j) {
      if (answers) {
        replies[indexes[j]] = std::move((*answers)[j]);
      } else {
        replies[indexes[j]] = answers.error();
      }
    }
  }
  return replies;
}

bool applied(const Reply& reply) { return reply && !reply->is_error(); }

// The node a route value "<token> <node>" names; empty for a value of another shape.
std::string_view node_of(const RedisValue& value) {
  if (value.type != RedisValue::Type::kString) return {};
  const std::string_view text = value.text;
  const auto space = text.find(' ');
  if (space == std::string_view::npos) return {};
  return text.substr(space + 1);
}

std::string random_token_prefix() {
  std::random_device device;
  const std::uint64_t high = device();
  const std::uint64_t low = device();
  char text[24];
  std::snprintf(text, sizeof(text), "%016llx-",
                static_cast<unsigned long long>((high << 32) ^ low));
  return text;
}

void validate(const ClusterRouterOptions& o) {
  const auto fail = [](const std::string& what) {
    throw std::invalid_argument("cluster router: " + what);
  };
  if (o.nodes.empty()) fail("no Redis nodes");
  if (o.node_name.empty() || o.node_name.size() > kMaxClusterNodeNameBytes) {
    fail("node name must be 1.." + std::to_string(kMaxClusterNodeNameBytes) + " bytes");
  }
  // Braces would change the hash tags of the keys and channels built from these names.
  for (const char c : o.node_name) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '{' || c == '}') {
      fail("node name must not contain spaces, control characters or braces");
    }
  }
  if (o.keyspace.empty() || o.keyspace.find_first_of("{}") != std::string::npos) {
    fail("keyspace must be non-empty, without '{' or '}'");
  }
  if (o.max_route_writes == 0 || o.max_forwards == 0 || o.max_batch == 0) {
    fail("queue and batch bounds must be above 0");
  }
  if (o.max_message_bytes < 2048) fail("max_message_bytes must be at least 2048");
  if (o.route_ttl.count() <= 0 || o.route_refresh.count() <= 0 || o.route_refresh >= o.route_ttl) {
    fail("route_refresh must be above 0 and below route_ttl");
  }
  if (o.poll_interval.count() <= 0 || o.resubscribe_min.count() <= 0 ||
      o.resubscribe_max < o.resubscribe_min) {
    fail("poll_interval and resubscribe backoff must be above 0");
  }
}

}  // namespace

struct ClusterRouter::Counters {
  std::atomic<std::uint64_t> forwarded{0};
  std::atomic<std::uint64_t> broadcast{0};
  std::atomic<std::uint64_t> no_route{0};
  std::atomic<std::uint64_t> unreachable{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> forward_failures{0};
  std::atomic<std::uint64_t> received{0};
  std::atomic<std::uint64_t> received_offline{0};
  std::atomic<std::uint64_t> malformed{0};
  std::atomic<std::uint64_t> route_writes{0};
  std::atomic<std::uint64_t> route_writes_dropped{0};
  std::atomic<std::uint64_t> route_writes_failed{0};
  std::atomic<std::uint64_t> routes_refreshed{0};
  std::atomic<std::uint64_t> sweeps{0};
  std::atomic<std::uint64_t> lookups_failed{0};
  std::atomic<std::uint64_t> subscriptions{0};
  std::atomic<std::uint64_t> subscriber_errors{0};
  std::atomic<bool> subscribed{false};

  static void add(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
};

ClusterRouter::ClusterRouter(ClusterRouterOptions options)
    : options_((validate(options), std::move(options))),
      token_prefix_(random_token_prefix()),
      route_writes_(options_.max_route_writes),
      forwards_(options_.max_forwards),
      counters_(std::make_unique<Counters>()) {}

ClusterRouter::~ClusterRouter() { stop(); }

std::unique_ptr<RedisClusterClient> ClusterRouter::new_client() const {
  storage::RedisClusterOptions client_options;
  client_options.seeds = options_.nodes;
  client_options.connect_timeout = options_.connect_timeout;
  client_options.command_timeout = options_.command_timeout;
  return std::make_unique<RedisClusterClient>(std::move(client_options));
}

void ClusterRouter::start() {
  std::lock_guard lock(stop_mu_);
  if (started_ || stopping_) return;
  started_ = true;
  route_writer_ = std::thread([this] { run_route_writer(); });
  forwarder_ = std::thread([this] { run_forwarder(); });
  subscriber_ = std::thread([this] { run_subscriber(); });
}

void ClusterRouter::stop() {
  {
    std::lock_guard lock(stop_mu_);
    if (stopping_) return;
    stopping_ = true;
    stop_requested_.store(true);
  }
  stop_cv_.notify_all();
  route_writes_.close();
  forwards_.close();
  for (std::thread* t : {&route_writer_, &forwarder_, &subscriber_}) {
    if (t->joinable()) t->join();
  }
}

bool ClusterRouter::wait_for_stop(std::chrono::milliseconds wait) {
  std::unique_lock lock(stop_mu_);
  return stop_cv_.wait_for(lock, wait, [this] { return stopping_; });
}

std::string ClusterRouter::route_key(std::string_view device) const {
  std::string key;
  key.reserve(options_.keyspace.size() + device.size() + 9);
  key.append(options_.keyspace).append(":route:{").append(device).append("}");
  return key;
}

std::string ClusterRouter::node_channel(std::string_view node) const {
  return options_.keyspace + ":node:{" + std::string(node) + "}";
}

std::string ClusterRouter::broadcast_channel() const { return options_.keyspace + ":streams"; }

std::string ClusterRouter::route_value(std::uint64_t token) const {
  char hex[20];
  std::snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(token));
  return token_prefix_ + hex + " " + options_.node_name;
}

ClusterRouter::Shard& ClusterRouter::shard_of(std::string_view device) {
  return shards_[std::hash<std::string_view>{}(device) % kShards];
}

void ClusterRouter::queue_route_write(RouteWrite write) {
  if (!route_writes_.push(std::move(write))) Counters::add(counters_->route_writes_dropped);
}

void ClusterRouter::queue_forward(Forward forward) {
  if (!forwards_.push(std::move(forward))) Counters::add(counters_->dropped);
}

// --- Routes -----------------------------------------------------------------------------------

AttachResult ClusterRouter::attach(std::string_view device, std::shared_ptr<DeviceLink> link,
                                   std::uint64_t race_id) {
  const DeviceLink* raw = link.get();
  Shard& s = shard_of(device);
  // Held across the local attach so that this node's route table, the local one and the order
  // of the queued Redis writes agree when two links of one device attach at once.
  std::lock_guard lock(s.mu);
  const auto result = local_.attach(device, std::move(link), race_id);
  if (result != AttachResult::kAttached) return result;
  const std::uint64_t token = next_token_.fetch_add(1, std::memory_order_relaxed);
  s.routes.insert_or_assign(std::string(device), OwnRoute{raw, token});
  queue_route_write({true, std::string(device), token});
  return result;
}

void ClusterRouter::detach(std::string_view device, const DeviceLink* link) {
  Shard& s = shard_of(device);
  std::lock_guard lock(s.mu);
  if (const auto it = s.routes.find(device); it != s.routes.end() && it->second.link == link) {
    queue_route_write({false, std::string(device), it->second.token});
    s.routes.erase(it);
  }
  local_.detach(device, link);
}

std::size_t ClusterRouter::size() { return local_.size(); }

void ClusterRouter::run_route_writer() {
  auto client = new_client();
  auto next_sweep = Clock::now() + options_.route_refresh;
  std::size_t sweep_shard = kShards;  // kShards: no sweep under way
  bool sweep_failed = false;          // some route of this sweep could not be written
  for (;;) {
    const bool closing = route_writes_.closed();
    auto batch = route_writes_.pop_batch(options_.max_batch, options_.poll_interval);
    if (closing) {
      // Stopping: apply what is queued, but do not wait out a Redis that is gone.
      if (batch.empty() || write_routes(*client, batch) != 0) return;
      continue;
    }
    // Lost writes: a sweep soon puts this node's routes back once Redis answers again.
    if (!batch.empty() && write_routes(*client, batch) != 0) {
      next_sweep = std::min(next_sweep, Clock::now() + options_.route_repair_delay);
    }
    if (sweep_shard == kShards && Clock::now() >= next_sweep) {
      sweep_shard = 0;
      sweep_failed = false;
      next_sweep = Clock::now() + options_.route_refresh;
    }
    // One shard per round, between batches: a sweep never holds attach writes back for long.
    if (sweep_shard < kShards) {
      if (!refresh_shard(*client, sweep_shard++)) sweep_failed = true;
      if (sweep_shard == kShards) {
        Counters::add(counters_->sweeps);
        if (sweep_failed) {
          next_sweep = std::min(next_sweep, Clock::now() + options_.route_repair_delay);
        }
      }
    }
  }
}

std::uint64_t ClusterRouter::write_routes(RedisClusterClient& client,
                                          const std::vector<RouteWrite>& writes) {
  std::vector<std::string> keys;
  std::vector<RedisCommand> commands;
  keys.reserve(writes.size());
  commands.reserve(writes.size());
  const std::string ttl = std::to_string(options_.route_ttl.count());
  for (const auto& w : writes) {
    keys.push_back(route_key(w.device));
    if (w.set) {
      commands.push_back({"SET", keys.back(), route_value(w.token), "EX", ttl});
    } else {
      commands.push_back(
          {"EVAL", std::string(kDeleteIfOurs), "1", keys.back(), route_value(w.token)});
    }
  }
  const auto replies = run_grouped(client, keys, std::move(commands));
  std::uint64_t failed = 0;
  for (const auto& reply : replies) {
    if (!applied(reply)) ++failed;
  }
  Counters::add(counters_->route_writes, replies.size() - failed);
  if (failed != 0) {
    Counters::add(counters_->route_writes_failed, failed);
    const auto& first =
        std::find_if(replies.begin(), replies.end(), [](const Reply& r) { return !applied(r); });
    log::warn("cluster_route_writes_failed",
              {{"count", failed}, {"error", *first ? (*first)->text : first->error().message()}});
  }
  return failed;
}

bool ClusterRouter::refresh_shard(RedisClusterClient& client, std::size_t shard) {
  std::vector<std::pair<std::string, std::uint64_t>> routes;
  {
    Shard& s = shards_[shard];
    std::lock_guard lock(s.mu);
    routes.reserve(s.routes.size());
    for (const auto& [device, own] : s.routes) {
      // A link that died without detaching keeps no route alive: it ends with its TTL.
      if (local_.is_online(device)) routes.emplace_back(device, own.token);
    }
  }
  const std::string ttl = std::to_string(options_.route_ttl.count());
  for (std::size_t begin = 0; begin < routes.size(); begin += options_.max_batch) {
    const std::size_t end = std::min(routes.size(), begin + options_.max_batch);
    std::vector<std::string> keys;
    std::vector<RedisCommand> commands;
    for (std::size_t i = begin; i < end; ++i) {
      keys.push_back(route_key(routes[i].first));
      commands.push_back({"EVAL", std::string(kRefreshIfOursOrMissing), "1", keys.back(),
                          route_value(routes[i].second), ttl});
    }
    std::uint64_t failed = 0;
    for (const auto& reply : run_grouped(client, keys, std::move(commands))) {
      if (!applied(reply)) {
        ++failed;
      } else if (reply->integer == 1) {
        Counters::add(counters_->routes_refreshed);
      }
    }
    // Redis is failing: the rest of the shard waits for the repair sweep.
    if (failed != 0) {
      Counters::add(counters_->route_writes_failed, failed);
      return false;
    }
  }
  return true;
}

bool ClusterRouter::is_online(std::string_view device) {
  if (local_.is_online(device)) return true;
  const auto now_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  };
  if (now_ns() < lookups_resume_at_ns_.load(std::memory_order_relaxed)) {
    Counters::add(counters_->lookups_failed);
    return false;
  }
  auto client = take_lookup_client();
  const auto key = route_key(device);
  auto reply = client->call(key, {"GET", key});
  give_back_lookup_client(std::move(client));
  if (!applied(reply)) {
    Counters::add(counters_->lookups_failed);
    lookups_resume_at_ns_.store(
        now_ns() +
            std::chrono::duration_cast<std::chrono::nanoseconds>(options_.lookup_backoff).count(),
        std::memory_order_relaxed);
    return false;
  }
  // A route naming this node without a local link is stale (its detach is still queued).
  const auto node = node_of(*reply);
  return !node.empty() && node != options_.node_name;
}

std::unique_ptr<RedisClusterClient> ClusterRouter::take_lookup_client() {
  {
    std::lock_guard lock(lookup_mu_);
    if (!lookup_clients_.empty()) {
      auto client = std::move(lookup_clients_.back());
      lookup_clients_.pop_back();
      return client;
    }
  }
  return new_client();
}

void ClusterRouter::give_back_lookup_client(std::unique_ptr<RedisClusterClient> client) {
  constexpr std::size_t kMaxIdleLookupClients = 16;
  std::lock_guard lock(lookup_mu_);
  if (lookup_clients_.size() < kMaxIdleLookupClients) lookup_clients_.push_back(std::move(client));
}

// --- Forwarding -------------------------------------------------------------------------------

bool ClusterRouter::notify(std::string_view device, std::uint64_t stream, std::uint64_t head_seq,
                           NotifyPriority priority) {
  if (local_.notify(device, stream, head_seq, priority)) return true;
  Forward f{Forward::Kind::kNotify, std::string(device), stream, head_seq, priority, {}};
  queue_forward(std::move(f));
  return false;
}

bool ClusterRouter::streams_changed(std::string_view device) {
  if (local_.streams_changed(device)) return true;
  Forward f{Forward::Kind::kStreamsChanged, std::string(device), 0, 0, NotifyPriority::kHigh, {}};
  queue_forward(std::move(f));
  return false;
}

void ClusterRouter::add_fanout(StreamFanout* fanout) { local_.add_fanout(fanout); }

void ClusterRouter::notify_stream(StreamNotify notify) {
  Forward f{Forward::Kind::kStreamNotify, {}, 0, 0, NotifyPriority::kHigh, notify};
  local_.notify_stream(std::move(notify));
  queue_forward(std::move(f));
}

void ClusterRouter::run_forwarder() {
  auto client = new_client();
  for (;;) {
    auto batch = forwards_.pop_batch(options_.max_batch, options_.poll_interval);
    if (forwards_.closed()) {
      Counters::add(counters_->dropped, batch.size() + forwards_.size());
      return;
    }
    if (!batch.empty()) forward(*client, batch);
  }
}

void ClusterRouter::forward(RedisClusterClient& client, std::vector<Forward>& batch) {
  // Messages to publish: channel, payload, records in it, whether it is the broadcast.
  struct Outgoing {
    std::string channel;
    std::string payload;
    std::size_t records = 0;
    bool broadcast = false;
  };
  std::vector<Outgoing> outgoing;
  std::map<std::string, ClusterMessageWriter, std::less<>> to_node;
  ClusterMessageWriter to_all(options_.node_name);
  const auto full = [&](const ClusterMessageWriter& writer) {
    return writer.size() >= options_.max_message_bytes || writer.records() == kMaxClusterRecords;
  };
  const auto flush = [&](ClusterMessageWriter& writer, std::string channel, bool broadcast) {
    if (writer.records() == 0) return;
    const auto records = writer.records();
    outgoing.push_back({std::move(channel), writer.take(), records, broadcast});
  };

  // Look up the routes of the devices, one GET each, pipelined per master.
  std::vector<std::string> keys;
  std::vector<RedisCommand> lookups;
  std::vector<const Forward*> looked_up;
  for (const auto& f : batch) {
    if (f.kind == Forward::Kind::kStreamNotify) {
      if (!to_all.add_stream_notify(f.stream_notify)) {
        Counters::add(counters_->dropped);
        continue;
      }
      if (full(to_all)) flush(to_all, broadcast_channel(), true);
      continue;
    }
    keys.push_back(route_key(f.device));
    lookups.push_back({"GET", keys.back()});
    looked_up.push_back(&f);
  }
  flush(to_all, broadcast_channel(), true);
  const auto routes = run_grouped(client, keys, std::move(lookups));
  for (std::size_t i = 0; i < routes.size(); ++i) {
    if (!applied(routes[i])) {
      Counters::add(counters_->forward_failures);
      continue;
    }
    const auto node = node_of(*routes[i]);
    // No route, or one naming this node although the device has no link here (its detach is
    // on the way): nobody to tell.
    if (node.empty() || node == options_.node_name) {
      Counters::add(counters_->no_route);
      continue;
    }
    auto it = to_node.find(node);
    if (it == to_node.end()) {
      it = to_node.emplace(std::string(node), ClusterMessageWriter(options_.node_name)).first;
    }
    const Forward& f = *looked_up[i];
    const bool added = f.kind == Forward::Kind::kNotify
                           ? it->second.add_notify(f.device, f.stream, f.head_seq, f.priority)
                           : it->second.add_streams_changed(f.device);
    if (!added) {
      Counters::add(counters_->dropped);
      continue;
    }
    if (full(it->second)) flush(it->second, node_channel(node), false);
  }
  for (auto& [node, writer] : to_node) flush(writer, node_channel(node), false);
  if (outgoing.empty()) return;

  keys.clear();
  std::vector<RedisCommand> publishes;
  for (const auto& o : outgoing) {
    keys.push_back(o.channel);
    // A node's channel is sharded (its slot's master carries it); the broadcast channel is
    // global: Redis Cluster carries a PUBLISH to every node, whichever node takes it.
    publishes.push_back({o.broadcast ? "PUBLISH" : "SPUBLISH", o.channel, o.payload});
  }
  const auto replies = run_grouped(client, keys, std::move(publishes));
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const auto& o = outgoing[i];
    if (!applied(replies[i])) {
      Counters::add(counters_->forward_failures, o.records);
      continue;
    }
    Counters::add(o.broadcast ? counters_->broadcast : counters_->forwarded, o.records);
    // SPUBLISH answers how many subscribers got it: none means the node is gone (or is
    // resubscribing). PUBLISH answers only for the node that took it: nothing to learn.
    if (!o.broadcast && replies[i]->integer == 0) {
      Counters::add(counters_->unreachable, o.records);
    }
  }
}

// --- Receiving --------------------------------------------------------------------------------

void ClusterRouter::run_subscriber() {
  auto client = new_client();
  const std::string own_channel = node_channel(options_.node_name);
  const std::string all_channel = broadcast_channel();
  auto backoff = options_.resubscribe_min;
  while (!stop_requested_.load()) {
    // One subscription: until the connection breaks, Redis unsubscribes us, or a stop.
    [&] {
      auto owner = client->owner(own_channel);
      if (!owner) {
        log::warn("cluster_subscribe_failed", {{"error", owner.error().message()}});
        return;
      }
      auto connected = storage::RedisConnection::connect(*owner, options_.connect_timeout,
                                                         options_.command_timeout);
      if (!connected) {
        log::warn("cluster_subscribe_failed",
                  {{"addr", owner->text()}, {"error", connected.error().message()}});
        return;
      }
      auto& connection = **connected;
      if (!connection.send({"SSUBSCRIBE", own_channel}) ||
          !connection.send({"SUBSCRIBE", all_channel})) {
        return;
      }
      int confirmed = 0;
      while (!stop_requested_.load()) {
        auto read = connection.read(options_.poll_interval);
        if (!read) {
          log::warn("cluster_subscription_lost",
                    {{"addr", owner->text()}, {"error", read.error().message()}});
          return;
        }
        if (!*read) continue;
        const RedisValue& value = **read;
        if (value.is_error()) {  // MOVED for SSUBSCRIBE: our slot map is stale
          log::warn("cluster_subscribe_refused", {{"addr", owner->text()}, {"error", value.text}});
          return;
        }
        if (value.type != RedisValue::Type::kArray || value.elements.size() < 3 ||
            value.elements[0].type != RedisValue::Type::kString) {
          continue;  // not a pub/sub push: nothing of ours
        }
        const std::string& kind = value.elements[0].text;
        if (kind == "smessage" || kind == "message") {
          receive(value.elements[2].text);
        } else if (kind == "ssubscribe" || kind == "subscribe") {
          if (++confirmed == 2) {
            counters_->subscribed.store(true);
            Counters::add(counters_->subscriptions);
            backoff = options_.resubscribe_min;
            log::info("cluster_subscribed", {{"addr", owner->text()}, {"channel", own_channel}});
          }
        } else if (kind == "sunsubscribe" || kind == "unsubscribe") {
          // Redis dropped the sharded subscription: the slot moved to another master.
          log::info("cluster_unsubscribed", {{"addr", owner->text()}});
          return;
        }
      }
    }();
    counters_->subscribed.store(false);
    if (stop_requested_.load()) return;
    Counters::add(counters_->subscriber_errors);
    if (wait_for_stop(backoff)) return;
    backoff = std::min(backoff * 2, options_.resubscribe_max);
    (void)client->masters();  // relearn the slot map: the owner may have changed
  }
}

void ClusterRouter::receive(std::string_view payload) {
  auto message = decode_cluster_message(payload);
  if (!message) {
    Counters::add(counters_->malformed);
    log::debug("cluster_message_malformed", {{"bytes", payload.size()}});
    return;
  }
  if (message->sender == options_.node_name) return;  // our own broadcast
  for (auto& r : message->records) {
    bool here = true;
    switch (r.kind) {
      case ClusterRecordKind::kNotify:
        here = local_.notify(r.device, r.stream, r.head_seq, r.priority);
        break;
      case ClusterRecordKind::kStreamsChanged:
        here = local_.streams_changed(r.device);
        break;
      case ClusterRecordKind::kStreamNotify: {
        StreamNotify notify;
        notify.stream = r.stream;
        notify.head_seq = r.head_seq;
        notify.priority = r.priority;
        notify.spread_ms = r.spread_ms;
        notify.filter = std::move(r.filter);
        local_.notify_stream(std::move(notify));
        break;
      }
    }
    Counters::add(here ? counters_->received : counters_->received_offline);
  }
}

ClusterRouterStats ClusterRouter::stats() const {
  const Counters& c = *counters_;
  const auto get = [](const std::atomic<std::uint64_t>& v) {
    return v.load(std::memory_order_relaxed);
  };
  ClusterRouterStats s;
  s.forwarded = get(c.forwarded);
  s.broadcast = get(c.broadcast);
  s.no_route = get(c.no_route);
  s.unreachable = get(c.unreachable);
  s.dropped = get(c.dropped);
  s.forward_failures = get(c.forward_failures);
  s.received = get(c.received);
  s.received_offline = get(c.received_offline);
  s.malformed = get(c.malformed);
  s.route_writes = get(c.route_writes);
  s.route_writes_dropped = get(c.route_writes_dropped);
  s.route_writes_failed = get(c.route_writes_failed);
  s.routes_refreshed = get(c.routes_refreshed);
  s.sweeps = get(c.sweeps);
  s.lookups_failed = get(c.lookups_failed);
  s.subscriptions = get(c.subscriptions);
  s.subscriber_errors = get(c.subscriber_errors);
  s.subscribed = c.subscribed.load();
  return s;
}

}  // namespace herald::distribution
