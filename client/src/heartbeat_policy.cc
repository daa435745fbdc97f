#include "heartbeat_policy.h"

#include <algorithm>
#include <cassert>

namespace herald::detail {

namespace {

using std::chrono::seconds;

HeartbeatSettings normalised(HeartbeatSettings s) {
  s.min = std::max(s.min, seconds(1));
  s.step = std::max(s.step, seconds(1));
  s.max = std::max(s.max, s.min);
  s.initial = std::clamp(s.initial, s.min, s.max);
  s.max_networks = std::max<std::size_t>(s.max_networks, 1);
  return s;
}

}  // namespace

HeartbeatPolicy::HeartbeatPolicy(HeartbeatSettings settings)
    : settings_(normalised(settings)), current_(networks_.end()) {
  set_network("");
}

void HeartbeatPolicy::set_network(std::string_view id) {
  if (current_ != networks_.end() && current_->first == id) return;
  std::string key(id);
  if (auto it = index_.find(key); it != index_.end()) {
    networks_.splice(networks_.begin(), networks_, it->second);
  } else {
    NetworkState fresh;
    fresh.current = settings_.initial;
    networks_.emplace_front(std::move(key), fresh);
    index_[networks_.front().first] = networks_.begin();
    if (networks_.size() > settings_.max_networks) {
      index_.erase(networks_.back().first);
      networks_.pop_back();
    }
  }
  current_ = networks_.begin();
  assert(networks_.size() == index_.size() && networks_.size() <= settings_.max_networks);
}

void HeartbeatPolicy::advance(NetworkState& s, seconds idle, Clock::time_point now) const {
  const seconds worked = std::min(idle, settings_.max);
  s.last_good = std::max(s.last_good, worked);
  // A shorter wait than the one asked for says nothing about the one asked for.
  if (idle < s.current) return;
  if (s.settled) {
    if (now < s.probe_at) return;
    s.probe_at = now + settings_.probe_after;
  }
  s.current = std::min(worked + settings_.step, settings_.max);
}

seconds HeartbeatPolicy::interval_after_success(seconds idle, Clock::time_point now) const {
  NetworkState copy = current_->second;
  advance(copy, idle, now);
  return copy.current;
}

void HeartbeatPolicy::on_success(seconds idle, Clock::time_point now) {
  advance(current_->second, idle, now);
}

void HeartbeatPolicy::on_failure(seconds idle, Clock::time_point now) {
  NetworkState& s = current_->second;
  if (s.last_good >= idle) {
    // What worked before failed too (the network changed, or the loss had another cause): nothing
    // is known to work any more; try one step shorter.
    s.last_good = seconds(0);
  }
  s.current =
      s.last_good > seconds(0) ? s.last_good : std::max(idle - settings_.step, settings_.min);
  s.current = std::clamp(s.current, settings_.min, settings_.max);
  s.settled = true;
  s.probe_at = now + settings_.probe_after;
}

}  // namespace herald::detail
