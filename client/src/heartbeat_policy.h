// HeartbeatPolicy: the adaptive heartbeat's decisions (docs/protocol.md section 4), as pure logic
// with no I/O and no clock of its own: every call that needs the time is given `now`.
//
// Per network (an id the embedding app supplies: a Wi-Fi name, a carrier, ...) it keeps the
// interval in use and the longest one that worked:
//
//   interval  initial ─step─▶ ... ─step─▶ X (no Pong) ──▶ last good (settled)
//                                                           │ the probe wait (probe_after first)
//                                                           ▼
//                                                 last good + step, once (a probe) ──▶ ...
//
//   - Not settled: each success at the current interval lengthens it by `step`, up to `max`.
//   - A failure falls back to the last good interval (one step below the failed one when none is
//     known, never below `min`) and settles the network: the interval is kept.
//   - Settled: once the probe wait (probe_wait()) passed since the latest failure, the next
//     success lengthens the interval by one step, a probe. If it fails the network falls back
//     again; if it works it is the new last good interval, and the next probe is `probe_after`
//     after this one began.
//   - The probe wait backs off at the network's limit: a probe that fails at the same interval
//     as the network's failure before it (the probe before, or the failure that settled the
//     network: nothing changed there) doubles the wait, up to `probe_after_max`. Any other
//     failure, a probe that works and a network not seen yet wait `probe_after`. So a network
//     whose NAT forgets X for good costs one failure after 30 min, 1 h, 2 h, ... then one a day
//     (the defaults), not one every 30 min, and a NAT that grew more lenient is still found.
//
// A success or a failure names the idle period it ended (`idle`): a success at a shorter interval
// than the current one (the client waited less than the policy asks, as after a server clamp)
// proves nothing about the current one and does not lengthen it.
//
// A network not learned yet (no success, not settled) may start from a suggestion instead of
// `initial`: the interval the server learned from other devices on that network (suggest(); see
// docs/protocol.md section 4), used in one of two ways:
//   - kStart: only a start; the policy lengthens from it and falls back below it exactly as from
//     `initial` (it still fails once, just above the device's own limit, but gets there sooner);
//   - kHold: held as if the network had settled there: no lengthening until probe_after has
//     passed, then probes as a settled network does (no failure while converging when the
//     suggestion is within one step below the device's limit, slower when it is far below).
// A failure falls back below the suggestion as from any interval. settled_interval() reports only
// what the device found itself, never a suggestion it merely held.
//
// At most `max_networks` networks are remembered; the least recently used one is forgotten first
// and starts from `initial` again when it returns. Nothing is persisted.
//
// Not thread-safe: each client owns one and uses it on its strand.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
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
  // The longest the probe wait backs off to after probes that keep failing at one interval.
  std::chrono::seconds probe_after_max{std::chrono::hours(24)};
  std::size_t max_networks = 32;  // remembered networks (LRU)
};

class HeartbeatPolicy {
 public:
  using Clock = std::chrono::steady_clock;

  // Normalises the settings: min and step at least 1 s, max at least min, initial within
  // [min, max], probe_after_max at least probe_after, max_networks at least 1. Starts on the
  // network "" (unnamed).
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
  // How long the current network waits, once settled, from a failure or the start of a probe
  // until the next probe: probe_after, doubled by each probe that failed at the same interval as
  // the failure before it, up to probe_after_max (see the top of this file).
  [[nodiscard]] std::chrono::seconds probe_wait() const { return current_->second.probe_wait; }

  // The interval to report for the current network (Hello.settled_heartbeat_s): the longest that
  // worked once a longer one failed, or `max` once `max` worked (there is nothing longer to find);
  // 0 s while the network's limit is unknown.
  [[nodiscard]] std::chrono::seconds settled_interval() const;

  enum class Suggestion : std::uint8_t { kStart, kHold };
  // Starts network `id` from `start` (clamped into [min, max]) instead of `initial`, used as
  // `use` says (see the top of this file), when nothing was learned on it yet: no heartbeat
  // succeeded and none failed there since it was remembered (a newer suggestion replaces an
  // older one). A network not remembered is remembered now (as the most recently used after the
  // current one; the current network stays current). Returns false and changes nothing when the
  // network already learned something, or when it is not the current one and max_networks is 1.
  bool suggest(std::string_view id, std::chrono::seconds start, Clock::time_point now,
               Suggestion use = Suggestion::kStart);

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
    bool held = false;           // settled by a kHold suggestion, not by a failure of its own
    Clock::time_point probe_at;  // settled: when the next success may lengthen the interval
    // Settled: `current` is a probe, one step above what is known to work, not answered yet.
    bool probing = false;
    std::chrono::seconds probe_wait{0};   // in [probe_after, probe_after_max]
    std::chrono::seconds last_failed{0};  // the idle period of the latest failure; 0 s: none
  };
  using Networks = std::list<std::pair<std::string, NetworkState>>;  // most recent first

  [[nodiscard]] NetworkState fresh_state() const;  // a network not seen yet
  void advance(NetworkState& s, std::chrono::seconds idle, Clock::time_point now) const;

  HeartbeatSettings settings_;
  Networks networks_;
  std::unordered_map<std::string, Networks::iterator> index_;
  Networks::iterator current_;  // always networks_.begin()
};

}  // namespace herald::detail
