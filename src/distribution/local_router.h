// LocalRouter: the routing table of the embedded (one-process) mode. Devices are spread over
// shards by hash, each shard a mutex-protected map, so event-loop threads attaching, detaching and
// notifying different devices rarely contend. Routes hold weak references: a link that died
// without detaching is simply skipped. Thread-safe.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "distribution/router.h"

namespace herald::distribution {

class LocalRouter final : public Router {
 public:
  // Told when a device gets its route (online) and when its route goes (offline), outside any
  // lock, on the thread that attached or detached. Set before the first attach.
  using PresenceListener = std::function<void(std::string_view device, bool online)>;
  void set_presence_listener(PresenceListener listener) { presence_ = std::move(listener); }

  using Router::attach;
  AttachResult attach(std::string_view device, std::shared_ptr<DeviceLink> link,
                      std::uint64_t race_id) override;
  void detach(std::string_view device, const DeviceLink* link) override;
  bool notify(std::string_view device, std::uint64_t stream, std::uint64_t head_seq,
              NotifyPriority priority) override;
  bool is_online(std::string_view device) override;
  std::size_t size() override;
  void add_fanout(StreamFanout* fanout) override;
  void notify_stream(StreamNotify notify) override;
  bool streams_changed(std::string_view device) override;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Route {
    std::weak_ptr<DeviceLink> link;
    std::uint64_t race_id = 0;  // what the link was attached with; 0 = not racing
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Route, StringHash, std::equal_to<>> routes;
  };
  static constexpr std::size_t kShards = 64;

  Shard& shard_of(std::string_view device);
  std::shared_ptr<DeviceLink> find(std::string_view device);

  std::array<Shard, kShards> shards_;
  std::mutex fanouts_mu_;
  std::vector<StreamFanout*> fanouts_;  // one per access event loop; only ever grows
  PresenceListener presence_;
};

}  // namespace herald::distribution
