// LocalRouter: the routing table of the embedded (one-process) mode. Devices are spread over
// shards by hash, each shard a mutex-protected map, so event-loop threads attaching, detaching and
// notifying different devices rarely contend. Routes hold weak references: a link that died
// without detaching is simply skipped. Thread-safe.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "distribution/router.h"

namespace herald::distribution {

class LocalRouter final : public Router {
 public:
  void attach(std::string_view device, std::shared_ptr<DeviceLink> link) override;
  void detach(std::string_view device, const DeviceLink* link) override;
  bool notify(std::string_view device, std::uint64_t stream, std::uint64_t head_seq) override;
  bool is_online(std::string_view device) override;
  std::size_t size() override;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, std::weak_ptr<DeviceLink>, StringHash, std::equal_to<>> routes;
  };
  static constexpr std::size_t kShards = 64;

  Shard& shard_of(std::string_view device);
  std::shared_ptr<DeviceLink> find(std::string_view device);

  std::array<Shard, kShards> shards_;
};

}  // namespace herald::distribution
