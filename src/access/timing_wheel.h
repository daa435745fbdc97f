// TimingWheel: deadlines for many connections without a timer each (Varghese & Lauck's hashed
// wheel). One wheel per event loop; only that loop's thread may touch it.
//
//   slot:   0     1     2    ...   N-1        tick() visits one slot per tick_ms;
//         [a,d] [   ] [b]  ...  [c, e]       a member sits in the slot of its deadline and is
//            ^ cursor                         looked at only when the cursor reaches that slot.
//
// A member's deadline may move later at no cost (activity just updates the member's field):
// when its slot comes round, the wheel sees the deadline has not passed and files it again.
// A deadline moved earlier (a shorter heartbeat announced, a connection closing) must be told
// with refile_if_earlier(), which moves the member to its new slot: its hook says which slot
// holds it, so the wheel searches that one slot, never all of them.
// Deadlines beyond one revolution sit in the farthest slot and are refiled when reached.
// Members are held weakly, so a member that died is dropped on its next visit.
//
// T must derive from std::enable_shared_from_this<T> and provide `std::int64_t deadline_ms()
// const`, `bool closed() const` and `TimingWheelHook& wheel_hook()`.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace herald::access {

// Where a wheel filed its member, kept in the member (4 bytes) so that refiling needs no index
// of its own. Only the wheel reads or writes it.
class TimingWheelHook {
  template <class>
  friend class TimingWheel;
  std::uint32_t slot_plus_one_ = 0;  // 0: not filed (never, or taken out to be visited)
};

template <class T>
class TimingWheel {
 public:
  // `tick_ms` is the resolution; `slots` * `tick_ms` is one revolution.
  TimingWheel(std::int64_t tick_ms, std::size_t slots, std::int64_t now_ms)
      : tick_ms_(tick_ms), slots_(slots), now_tick_(now_ms / tick_ms) {}

  // Files `member` under its current deadline. Call once per member; the wheel keeps it filed
  // until it is closed or expired.
  void add(const std::shared_ptr<T>& member) {
    file(member, member->deadline_ms());
    ++size_;
  }

  // Call after `member`'s deadline may have moved earlier: if it now falls in a slot before the
  // one holding the member, the member moves there. A later or unchanged deadline costs a few
  // integer operations and changes nothing. A member not filed (never added, expired, or being
  // visited by advance() right now) is left alone: whoever files it next reads its deadline.
  void refile_if_earlier(T& member) {
    auto& hook = member.wheel_hook();
    if (hook.slot_plus_one_ == 0) return;
    const std::size_t slot = hook.slot_plus_one_ - 1;
    // Every filed member sits within one revolution from now_tick_, so its slot names its tick.
    const std::int64_t filed_tick =
        now_tick_ +
        static_cast<std::int64_t>((slot + slots_.size() - index(now_tick_)) % slots_.size());
    if (tick_of(member.deadline_ms()) >= filed_tick) return;
    auto& entries = slots_[slot];
    const auto weak = member.weak_from_this();
    for (auto& entry : entries) {
      if (!entry.owner_before(weak) && !weak.owner_before(entry)) {
        entry = std::move(entries.back());
        entries.pop_back();
        file(weak, member.deadline_ms(), hook);
        return;
      }
    }
    // Not found: advance() took this slot out and is visiting it; it reads the new deadline.
  }

  // Advances to `now_ms`, calling `expire(shared_ptr<T>)` for every member whose deadline has
  // passed (after which the wheel forgets it). Returns how many expired.
  template <class F>
  std::size_t advance(std::int64_t now_ms, F&& expire) {
    std::size_t expired = 0;
    const std::int64_t target = now_ms / tick_ms_;
    while (now_tick_ <= target) {
      // Invariant: now_tick_ is the first tick not yet visited, also while a slot is processed,
      // so a member refiled here never lands in the slot being emptied.
      auto& slot = slots_[index(now_tick_++)];
      std::vector<std::weak_ptr<T>> due;
      due.swap(slot);
      for (auto& weak : due) {
        auto member = weak.lock();
        if (!member) {
          --size_;
          continue;
        }
        member->wheel_hook().slot_plus_one_ = 0;
        if (member->closed()) {
          --size_;
          continue;
        }
        if (member->deadline_ms() <= now_ms) {
          --size_;
          ++expired;
          expire(std::move(member));
        } else {
          file(weak, member->deadline_ms(), member->wheel_hook());
        }
      }
      // Give memory back after a burst instead of keeping the high-water capacity per slot.
      if (slot.empty() && slot.capacity() > 1024) slot.shrink_to_fit();
    }
    return expired;
  }

  // Calls `f(shared_ptr<T>)` for every live member (e.g. to close them all at shutdown). `f` may
  // refile members (a closing connection's deadline moves earlier): the members are gathered
  // first, so the visit does not walk slots that change under it.
  template <class F>
  void for_each(F&& f) {
    std::vector<std::shared_ptr<T>> live;
    live.reserve(size_);
    for (auto& slot : slots_) {
      for (auto& weak : slot) {
        if (auto member = weak.lock(); member && !member->closed())
          live.push_back(std::move(member));
      }
    }
    for (auto& member : live) {
      if (!member->closed()) f(member);
    }
  }

  // Members filed, including ones that closed since their last visit.
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  std::size_t index(std::int64_t tick) const {
    return static_cast<std::size_t>(tick) % slots_.size();
  }

  // The tick a deadline is filed under. Never a visited tick (it would wait a whole revolution)
  // nor one beyond a revolution (it would wrap onto an earlier slot).
  std::int64_t tick_of(std::int64_t deadline_ms) const {
    const std::int64_t tick = (deadline_ms + tick_ms_ - 1) / tick_ms_;
    const std::int64_t max_tick = now_tick_ + static_cast<std::int64_t>(slots_.size()) - 1;
    return std::clamp(tick, now_tick_, max_tick);
  }

  void file(const std::shared_ptr<T>& member, std::int64_t deadline_ms) {
    file(std::weak_ptr<T>(member), deadline_ms, member->wheel_hook());
  }
  void file(std::weak_ptr<T> member, std::int64_t deadline_ms, TimingWheelHook& hook) {
    const std::size_t slot = index(tick_of(deadline_ms));
    hook.slot_plus_one_ = static_cast<std::uint32_t>(slot + 1);
    slots_[slot].push_back(std::move(member));
  }

  std::int64_t tick_ms_;
  std::vector<std::vector<std::weak_ptr<T>>> slots_;
  std::int64_t now_tick_;
  std::size_t size_ = 0;
};

}  // namespace herald::access
