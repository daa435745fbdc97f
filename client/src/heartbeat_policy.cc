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
  s.probe_after_max = std::max(s.probe_after_max, s.probe_after);
  s.max_networks = std::max<std::size_t>(s.max_networks, 1);
  return s;
}

}  // namespace

HeartbeatPolicy::NetworkState HeartbeatPolicy::fresh_state() const {
  NetworkState s;
  s.current = settings_.initial;
  s.probe_wait = settings_.probe_after;
  return s;
}

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
    networks_.emplace_front(std::move(key), fresh_state());
    index_[networks_.front().first] = networks_.begin();
    if (networks_.size() > settings_.max_networks) {
      index_.erase(networks_.back().first);
      networks_.pop_back();
    }
  }
  current_ = networks_.begin();
  assert(networks_.size() == index_.size() && networks_.size() <= settings_.max_networks);
}

seconds HeartbeatPolicy::settled_interval() const {
  const NetworkState& s = current_->second;
  if (s.last_good >= settings_.max) return s.last_good;
  return s.settled && !s.held ? s.last_good : seconds(0);
}

bool HeartbeatPolicy::suggest(std::string_view id, seconds start, Clock::time_point now,
                              Suggestion use) {
  auto it = index_.find(std::string(id));
  if (it == index_.end()) {
    if (settings_.max_networks < 2) return false;  // the only slot is the current network's
    const auto added =
        networks_.emplace(std::next(networks_.begin()), std::string(id), fresh_state());
    it = index_.emplace(added->first, added).first;
    if (networks_.size() > settings_.max_networks) {
      index_.erase(networks_.back().first);
      networks_.pop_back();
    }
  }
  NetworkState& s = it->second->second;
  // Something learned on the network itself outweighs what others learned on theirs.
  if ((s.settled && !s.held) || s.last_good > seconds(0)) return false;
  s.current = std::clamp(start, settings_.min, settings_.max);
  s.held = use == Suggestion::kHold;
  s.settled = s.held;
  if (s.held) s.probe_at = now + settings_.probe_after;
  assert(networks_.size() == index_.size() && networks_.size() <= settings_.max_networks);
  return true;
}

void HeartbeatPolicy::advance(NetworkState& s, seconds idle, Clock::time_point now) const {
  const seconds worked = std::min(idle, settings_.max);
  s.last_good = std::max(s.last_good, worked);
  // A shorter wait than the one asked for says nothing about the one asked for.
  if (idle < s.current) return;
  if (s.probing) {
    // The probe worked: the network keeps longer than it did, so it may keep longer still; the
    // next step is tried probe_after from the start of this one, whatever the wait was.
    s.probing = false;
    s.probe_wait = settings_.probe_after;
  }
  const seconds next = std::min(worked + settings_.step, settings_.max);
  if (s.settled) {
    if (now < s.probe_at) return;
    // If the probe fails, on_failure() sets the wait from its end instead.
    s.probe_at = now + settings_.probe_after;
    s.probing = next > worked;
  }
  s.current = next;
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
  s.held = false;  // the limit is its own from now on
  if (s.probing && idle == s.last_failed) {
    // The same interval failed as the last time: nothing changed on this network, and probing it
    // as often again would only cost connections. (A probe_after of 0 s or less stays put.)
    s.probe_wait =
        s.probe_wait > settings_.probe_after_max / 2
            ? settings_.probe_after_max
            : std::clamp(s.probe_wait * 2, settings_.probe_after, settings_.probe_after_max);
  } else {
    s.probe_wait = settings_.probe_after;
  }
  s.probing = false;
  s.last_failed = idle;
  s.probe_at = now + s.probe_wait;
}

}  // namespace herald::detail
