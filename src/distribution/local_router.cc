#include "distribution/local_router.h"

namespace herald::distribution {

LocalRouter::Shard& LocalRouter::shard_of(std::string_view device) {
  return shards_[std::hash<std::string_view>{}(device) % kShards];
}

AttachResult LocalRouter::attach(std::string_view device, std::shared_ptr<DeviceLink> link,
                                 std::uint64_t race_id) {
  std::shared_ptr<DeviceLink> previous;
  {
    Shard& s = shard_of(device);
    std::lock_guard lock(s.mu);
    auto [it, inserted] = s.routes.try_emplace(std::string(device), Route{link, race_id});
    if (!inserted) {
      previous = it->second.link.lock();
      // A link that died without detaching is no live link: nothing to protect.
      if (race_id != 0 && previous && previous != link && it->second.race_id == race_id) {
        return AttachResult::kRaceLost;
      }
      it->second = Route{link, race_id};
    }
  }
  // Outside the lock: supersede() posts to the old link's loop and may re-enter detach().
  if (previous && previous != link) previous->supersede();
  if (presence_) presence_(device, true);
  return AttachResult::kAttached;
}

void LocalRouter::detach(std::string_view device, const DeviceLink* link) {
  bool removed = false;
  {
    Shard& s = shard_of(device);
    std::lock_guard lock(s.mu);
    const auto it = s.routes.find(device);
    if (it == s.routes.end()) return;
    const auto current = it->second.link.lock();
    if (!current || current.get() == link) {
      s.routes.erase(it);
      removed = true;
    }
  }
  if (removed && presence_) presence_(device, false);
}

std::shared_ptr<DeviceLink> LocalRouter::find(std::string_view device) {
  Shard& s = shard_of(device);
  std::lock_guard lock(s.mu);
  const auto it = s.routes.find(device);
  return it == s.routes.end() ? nullptr : it->second.link.lock();
}

bool LocalRouter::notify(std::string_view device, std::uint64_t stream, std::uint64_t head_seq,
                         NotifyPriority priority) {
  const auto link = find(device);
  if (!link) return false;
  link->notify(stream, head_seq, priority);
  return true;
}

bool LocalRouter::is_online(std::string_view device) { return find(device) != nullptr; }

std::size_t LocalRouter::size() {
  std::size_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.routes.size();
  }
  return n;
}

}  // namespace herald::distribution

namespace herald::distribution {

void LocalRouter::add_fanout(StreamFanout* fanout) {
  std::lock_guard lock(fanouts_mu_);
  fanouts_.push_back(fanout);
}

void LocalRouter::notify_stream(StreamNotify notify) {
  // One shared notify for every loop: its filter and values are built once per message.
  const auto shared = std::make_shared<const StreamNotify>(std::move(notify));
  std::lock_guard lock(fanouts_mu_);
  for (StreamFanout* fanout : fanouts_) fanout->fan_out(shared);
}

bool LocalRouter::streams_changed(std::string_view device) {
  const auto link = find(device);
  if (!link) return false;
  link->refresh_streams();
  return true;
}

}  // namespace herald::distribution
