// ClusterRouter: the Router of a heraldd node in cluster mode, where several nodes share a Redis
// Cluster and a business service may call any node's API for a device connected to another.
//
// Local links live in a LocalRouter it owns, exactly as in the embedded mode. Beside them:
//
//   routes     attach() records "device -> this node" in Redis, under <keyspace>:route:{<device>}
//              (the device is the hash tag, so routes spread over every master), as
//              "<token> <node name>" with a per-attach token; detach() deletes it only while it
//              still holds that token (a Lua compare-and-delete), so the late detach of an older
//              connection, here or on another node, never removes a newer route. Writes never
//              block the caller: a route-writer thread pipelines them from a bounded queue. Each
//              route has a TTL (route_ttl); a sweep re-writes this node's routes every
//              route_refresh (if the key is missing or still ours), so a long connection keeps
//              its route; after failed writes (a Redis outage) the next sweep comes after
//              route_repair_delay, so lost routes come back soon.
//   forwards   notify() / streams_changed() for a device without a local link go to a forwarder
//              thread (bounded queue; dropped and counted when full), which looks the route up
//              and SPUBLISHes them, packed per node, to the owner's shard channel
//              <keyspace>:node:{<node name>}. notify_stream() fans out locally and PUBLISHes to
//              the deployment-wide channel <keyspace>:streams, which Redis Cluster carries to
//              every node; the StreamFilter travels in its encoded form.
//   receiving  a subscriber thread SSUBSCRIBEs this node's channel on the master owning its slot
//              and SUBSCRIBEs the broadcast channel there, decodes what arrives
//              (cluster_message.h; malformed messages are ignored and counted) and hands it to
//              the LocalRouter. It resubscribes with backoff when the connection breaks or Redis
//              unsubscribes it (the slot moved).
//
// Losing a forward is harmless by the delivery design (docs: DESIGN.md "Delivery"): the device
// pulls on reconnect and with its heartbeats. So are stale routes of a crashed node: a notify
// published to a node that is gone reaches nobody (counted as `unreachable`).
//
// Thread-safe, like every Router. Construct, add fan-outs and the presence listener, start();
// the destructor stops the threads.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "distribution/local_router.h"
#include "distribution/redis/detail/bounded_queue.h"
#include "storage/redis/redis_connection.h"

namespace herald::storage {
class RedisClusterClient;
}

namespace herald::distribution {

struct ClusterRouterOptions {
  std::vector<storage::RedisEndpoint> nodes;  // seeds: any nodes of the Redis Cluster
  // Key and channel prefix, the same on every node; no '{' or '}'. heraldd's storage keyspace
  // fits: the storage's keys start with "{<keyspace>}", these with "<keyspace>:".
  std::string keyspace = "herald";
  // This heraldd node's name (one per process: worker processes of one host each need their
  // own), unique in the deployment: 1..255 bytes, no space, control character, '{' or '}'.
  std::string node_name;

  std::chrono::seconds route_ttl{86400};
  std::chrono::seconds route_refresh{6 * 3600};  // < route_ttl
  // After route writes failed (Redis unreachable), the next sweep comes this soon instead.
  std::chrono::milliseconds route_repair_delay{5000};
  std::size_t max_route_writes = 65536;   // queued route writes; more are dropped
  std::size_t max_forwards = 65536;       // queued forwards; more are dropped
  std::size_t max_batch = 512;            // items a thread takes per round trip
  std::size_t max_message_bytes = 16384;  // a message is published once it is this big

  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{2000};
  // How long the background threads wait for work or a pushed message before checking for a
  // stop: stop() takes about this long, plus a Redis call under way (at most the timeouts).
  std::chrono::milliseconds poll_interval{100};
  std::chrono::milliseconds resubscribe_min{100};   // backoff after a broken subscription,
  std::chrono::milliseconds resubscribe_max{5000};  // doubling up to this
  // After a failed is_online() lookup, further lookups answer "offline" at once for this long
  // rather than each waiting out the timeouts.
  std::chrono::milliseconds lookup_backoff{1000};
};

// Counters since construction, each read on its own (relaxed).
struct ClusterRouterStats {
  std::uint64_t forwarded = 0;         // notifies and streams-changed published to their node
  std::uint64_t broadcast = 0;         // stream notifies published to every node
  std::uint64_t no_route = 0;          // forwards for a device with no route elsewhere: not sent
  std::uint64_t unreachable = 0;       // of `forwarded`: published where no node was subscribed
  std::uint64_t dropped = 0;           // forwards refused: queue full, or not encodable
  std::uint64_t forward_failures = 0;  // forwards lost to a Redis error
  std::uint64_t received = 0;          // records from other nodes handed to the local router
  std::uint64_t received_offline = 0;  // received for a device no longer attached here
  std::uint64_t malformed = 0;         // pub/sub messages ignored as not well formed
  std::uint64_t route_writes = 0;      // route sets and deletes applied
  std::uint64_t route_writes_dropped = 0;  // refused: queue full
  std::uint64_t route_writes_failed = 0;   // lost to a Redis error (the sweep restores sets)
  std::uint64_t routes_refreshed = 0;      // routes re-written by the sweep
  std::uint64_t sweeps = 0;                // sweeps over every route of this node completed
  std::uint64_t lookups_failed = 0;        // is_online() answers "offline" for a Redis error
  std::uint64_t subscriptions = 0;         // times the subscriber got both its subscriptions
  std::uint64_t subscriber_errors = 0;     // broken subscriptions (then resubscribed)
  bool subscribed = false;                 // the subscriber holds its subscriptions now
};

class ClusterRouter final : public Router {
 public:
  // Throws std::invalid_argument for options that cannot work (no nodes, a bad node name, zero
  // bounds, route_refresh not below route_ttl). Connects to nothing yet.
  explicit ClusterRouter(ClusterRouterOptions options);
  // Stops the threads (stop()).
  ~ClusterRouter() override;
  ClusterRouter(const ClusterRouter&) = delete;
  ClusterRouter& operator=(const ClusterRouter&) = delete;

  // Starts the route writer, the forwarder and the subscriber. Redis need not be reachable: the
  // threads keep trying (route writes and forwards meanwhile fail and are counted). Call once.
  void start();
  // Stops the threads: the route writer first applies what is queued (giving up at the first
  // Redis error), queued forwards are dropped. Route writes and forwards after stop() are
  // refused (counted in route_writes_dropped and dropped); local links work on. Idempotent.
  void stop();

  // As LocalRouter's: told when a device gets or loses its route on this node. Set before the
  // first attach. It runs while the device's shard of this router is held: it must not attach
  // or detach other devices.
  void set_presence_listener(LocalRouter::PresenceListener listener) {
    local_.set_presence_listener(std::move(listener));
  }

  using Router::attach;
  // The local route as LocalRouter's; when attached, the Redis route is queued for writing.
  AttachResult attach(std::string_view device, std::shared_ptr<DeviceLink> link,
                      std::uint64_t race_id) override;
  void detach(std::string_view device, const DeviceLink* link) override;
  // A device attached here is notified at once: true. Otherwise the notify is queued for the
  // forwarder and the answer is false: whether the device is online elsewhere is not known
  // without a Redis round trip, which this call must not wait for. So "true" means "handed to a
  // connection of this node" (MessageService's `online`, the "notified" stage); devices on other
  // nodes show their delivery in the stages their pulls and acks write.
  bool notify(std::string_view device, std::uint64_t stream, std::uint64_t head_seq,
              NotifyPriority priority) override;
  // Attached here, or a route to another node is in Redis (one synchronous GET: the caller's
  // thread waits up to command_timeout). A route of a crashed node answers true until its TTL
  // ends. A Redis error answers false (counted in lookups_failed), and so does every lookup for
  // lookup_backoff after it.
  bool is_online(std::string_view device) override;
  // Devices attached to this node.
  std::size_t size() override;
  void add_fanout(StreamFanout* fanout) override;
  // Local fan-out at once, and a broadcast to every other node through the forwarder.
  void notify_stream(StreamNotify notify) override;
  // As notify(): true when refreshed here, false when queued for the forwarder.
  bool streams_changed(std::string_view device) override;

  [[nodiscard]] ClusterRouterStats stats() const;
  [[nodiscard]] const ClusterRouterOptions& options() const { return options_; }
  // The Redis key of `device`'s route and the channel of `node`, as every node spells them.
  [[nodiscard]] std::string route_key(std::string_view device) const;
  [[nodiscard]] std::string node_channel(std::string_view node) const;
  [[nodiscard]] std::string broadcast_channel() const;

 private:
  struct RouteWrite {
    bool set = true;  // false: compare-and-delete
    std::string device;
    std::uint64_t token = 0;
  };
  struct Forward {
    enum class Kind : std::uint8_t { kNotify, kStreamsChanged, kStreamNotify } kind;
    std::string device;
    std::uint64_t stream = 0;
    std::uint64_t head_seq = 0;
    NotifyPriority priority = NotifyPriority::kHigh;
    StreamNotify stream_notify;  // kStreamNotify
  };
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct OwnRoute {
    const DeviceLink* link = nullptr;
    std::uint64_t token = 0;
  };
  // This node's routes as written to Redis. Recursive: LocalRouter::attach() supersedes the old
  // link while the shard is held, and a link may detach itself from supersede().
  struct Shard {
    std::recursive_mutex mu;
    std::unordered_map<std::string, OwnRoute, StringHash, std::equal_to<>> routes;
  };
  static constexpr std::size_t kShards = 64;

  struct Counters;

  Shard& shard_of(std::string_view device);
  [[nodiscard]] std::string route_value(std::uint64_t token) const;
  void queue_route_write(RouteWrite write);
  void queue_forward(Forward forward);

  void run_route_writer();
  // Both answer how the writes went: the number that failed; whether all were applied.
  std::uint64_t write_routes(storage::RedisClusterClient& client,
                             const std::vector<RouteWrite>& writes);
  bool refresh_shard(storage::RedisClusterClient& client, std::size_t shard);
  void run_forwarder();
  void forward(storage::RedisClusterClient& client, std::vector<Forward>& batch);
  void run_subscriber();
  // Waits up to `wait` for stop(); true when it came.
  bool wait_for_stop(std::chrono::milliseconds wait);
  void receive(std::string_view payload);

  std::unique_ptr<storage::RedisClusterClient> new_client() const;
  std::unique_ptr<storage::RedisClusterClient> take_lookup_client();
  void give_back_lookup_client(std::unique_ptr<storage::RedisClusterClient> client);

  const ClusterRouterOptions options_;
  const std::string token_prefix_;  // random per instance: tokens never repeat across restarts
  LocalRouter local_;
  std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> next_token_{1};

  detail::BoundedQueue<RouteWrite> route_writes_;
  detail::BoundedQueue<Forward> forwards_;
  std::unique_ptr<Counters> counters_;

  std::atomic<std::int64_t> lookups_resume_at_ns_{0};  // steady clock; see lookup_backoff
  std::mutex lookup_mu_;
  std::vector<std::unique_ptr<storage::RedisClusterClient>> lookup_clients_;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::atomic<bool> stop_requested_{false};  // stopping_, for the threads' polls
  bool started_ = false;
  std::thread route_writer_;
  std::thread forwarder_;
  std::thread subscriber_;
};

}  // namespace herald::distribution
