// HeartbeatPolicy: the adaptive heartbeat's decisions (docs/protocol.md section 4), as pure logic
// with no I/O and no clock of its own: every call that needs the time is given `now`.
//
// Per network (an id the embedding app supplies: a Wi-Fi name, a carrier, ...) it keeps the
// interval in use and the longest one that worked:
//
//   interval  initial ─step─▶ ... ─step─▶ X (no Pong) ──▶ last good (settled)
//                                                           │ probe_after of stable operation
//                                                           ▼
//                                                 last good + step, once ──▶ ...
//
//   - Not settled: each success at the current interval lengthens it by `step`, up to `max`.
//   - A failure falls back to the last good interval (one step below the failed one when none is
//     known, never below `min`) and settles the network: the interval is kept.
//   - Settled: once `probe_after` passed since the network settled or last probed, the next
//     success lengthens the interval by one step, a probe. If it fails the network falls back
//     again; if it works it is the new last good interval, and the next probe is `probe_after`
//     later.
//
// A success or a failure names the idle period it ended (`idle`): a success at a shorter interval
// than the current one (the client waited less than the policy asks, as after a server clamp)
// proves nothing about the current one and does not lengthen it.
//
// At most `max_networks` networks are remembered; the least recently used one is forgotten first
// and starts from `initial` again when it returns. Nothing is persisted.
//
// Not thread-safe: each client owns one and uses it on its strand.
#pragma once

#include <chrono>
#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace herald::detail {

struct HeartbeatSettings {
  std::chrono::seconds initial{60};  // where a network not seen yet starts
  std::chrono::seconds min{60};      // no interval below it, fallbacks included
  std::chrono::seconds max{600};     // no interval above it, probes included
  std::chrono::seconds step{60};     // how much a success (or a probe) lengthens the interval
  std::chrono::seconds probe_after{std::chrono::minutes(30)};  // settled this long: probe again
  std::size_t max_networks = 32;                               // remembered networks (LRU)
};

class HeartbeatPolicy {
 public:
  using Clock = std::chrono::steady_clock;

  // Normalises the settings: min and step at least 1 s, max at least min, initial within
  // [min, max], max_networks at least 1. Starts on the network "" (unnamed).
  explicit HeartbeatPolicy(HeartbeatSettings settings);

  // Switches to network `id`, remembered or new (starting from `initial`). Switching to the
  // current network changes nothing.
  void set_network(std::string_view id);
  [[nodiscard]] const std::string& network() const { return current_->first; }

  // The interval to wait between heartbeats on the current network.
  [[nodiscard]] std::chrono::seconds interval() const { return current_->second.current; }
  // What interval() will be after on_success(idle, now): the client announces it in the Ping that
  // ends an idle period of `idle`, so the server's deadline already follows when the Pong comes.
  [[nodiscard]] std::chrono::seconds interval_after_success(std::chrono::seconds idle,
                                                            Clock::time_point now) const;
  // The longest interval that worked on the current network; 0 s when none is known.
  [[nodiscard]] std::chrono::seconds last_good() const { return current_->second.last_good; }
  // True once a failure fixed the interval of the current network (it only probes from then).
  [[nodiscard]] bool settled() const { return current_->second.settled; }

  // An idle period of `idle` ended with the server's answer: the connection survived it.
  void on_success(std::chrono::seconds idle, Clock::time_point now);
  // An idle period of `idle` ended without an answer (no Pong in time, or the connection lost
  // while waiting for one): the network does not keep a connection idle that long.
  void on_failure(std::chrono::seconds idle, Clock::time_point now);

  [[nodiscard]] const HeartbeatSettings& settings() const { return settings_; }

 private:
  struct NetworkState {
    std::chrono::seconds current{0};
    std::chrono::seconds last_good{0};
    bool settled = false;
    Clock::time_point probe_at;  // settled: when the next success may lengthen the interval
  };
  using Networks = std::list<std::pair<std::string, NetworkState>>;  // most recent first

  void advance(NetworkState& s, std::chrono::seconds idle, Clock::time_point now) const;

  HeartbeatSettings settings_;
  Networks networks_;
  std::unordered_map<std::string, Networks::iterator> index_;
  Networks::iterator current_;  // always networks_.begin()
};

}  // namespace herald::detail
